//! Helpers shared by the `eddy` binary's end-to-end tests: running the
//! binary, the repository's fixtures, per-test-binary temporary files and
//! the shape of a clean error. Each test file uses a subset.
#![allow(dead_code)]

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

/// The binary under test: `EDDY_TEST_BIN` runs the tests against another
/// build (e.g. one before a fix, to see a test fail), else this crate's.
pub fn bin() -> String {
    std::env::var("EDDY_TEST_BIN").unwrap_or_else(|_| env!("CARGO_BIN_EXE_eddy").to_string())
}

/// `eddy args`, waiting for it to end.
pub fn eddy(args: &[&str]) -> Output {
    Command::new(bin()).args(args).output().expect("eddy runs")
}

/// `eddy args` with `input` on its stdin.
pub fn eddy_with_stdin(args: &[&str], input: &str) -> Output {
    let mut child = Command::new(bin())
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("eddy runs");
    child.stdin.take().unwrap().write_all(input.as_bytes()).unwrap();
    child.wait_with_output().unwrap()
}

/// A fixture folder or file under `tests/fixtures`.
pub fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures").join(name)
}

/// `name` in a temporary folder of this test binary and process (test
/// binaries run at the same time must not share files).
pub fn tmp(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("eddy-{}-{}", env!("CARGO_CRATE_NAME"), std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir.join(name)
}

/// The command's stderr as text.
pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// The stdout of a command that must have succeeded.
pub fn ok(o: Output) -> String {
    assert!(o.status.success(), "stderr: {}", stderr(&o));
    String::from_utf8(o.stdout).unwrap()
}

/// Exit code 1, one `error:` line (the last) containing `needle`, no
/// panic. Lines before it may be progress or warnings.
pub fn assert_clean_error(o: &Output, needle: &str) {
    let err = stderr(o);
    assert_eq!(o.status.code(), Some(1), "stderr: {err}");
    let last = err.trim_end().lines().last().unwrap_or("");
    assert!(last.starts_with("error: "), "stderr: {err}");
    assert_eq!(err.matches("error:").count(), 1, "one error line expected: {err}");
    assert!(!err.contains("panicked"), "stderr: {err}");
    assert!(last.contains(needle), "`{needle}` not in: {err}");
}

/// Copies the files of fixture folder `name` into `dest`.
pub fn copy_fixture(name: &str, dest: &Path) {
    std::fs::create_dir_all(dest).unwrap();
    for e in std::fs::read_dir(fixture(name)).unwrap() {
        let p = e.unwrap().path();
        std::fs::copy(&p, dest.join(p.file_name().unwrap())).unwrap();
    }
}

/// Converts fixture `name` to the temporary file `out_name`.eddy and
/// returns the command's output (stdout) checked for success.
pub fn convert_fixture(name: &str, out_name: &str) -> (PathBuf, Output) {
    let out = tmp(&format!("{out_name}.eddy"));
    let o = eddy(&["convert", fixture(name).to_str().unwrap(), "-o", out.to_str().unwrap()]);
    assert!(o.status.success(), "convert failed: {}", stderr(&o));
    (out, o)
}
