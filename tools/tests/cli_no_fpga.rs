#![cfg(not(feature = "fpga"))]
//! A CLI built without the `fpga` feature (`--no-default-features`): the
//! FPGA backend and subcommands stop with one clear error, and the CPU path
//! still works.

use std::path::Path;
use std::process::{Command, Output};

fn eddy(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_eddy")).args(args).output().expect("eddy runs")
}

fn assert_no_fpga_error(o: &Output) {
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "stderr: {err}");
    assert!(err.starts_with("error: ") && err.contains("built without FPGA support"), "stderr: {err}");
    assert!(!err.contains("panicked"), "stderr: {err}");
}

#[test]
fn fpga_subcommand_and_backend_say_the_build_has_no_fpga() {
    assert_no_fpga_error(&eddy(&["fpga", "predict"]));
    let dir = std::env::temp_dir().join(format!("eddy-cli-no-fpga-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let model = dir.join("tied.eddy");
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/mamba-tiny-tied");
    let o = eddy(&["convert", fixture.to_str().unwrap(), "-o", model.to_str().unwrap()]);
    assert!(o.status.success(), "stderr: {}", String::from_utf8_lossy(&o.stderr));
    let m = model.to_str().unwrap();
    let npy = dir.join("l.npy");
    let n = npy.to_str().unwrap();
    assert_no_fpga_error(&eddy(&["--backend", "fpga-sim", "logits", m, "--tokens", "1,2", "-o", n]));
    let cpu = eddy(&["logits", m, "--tokens", "1,2", "-o", n]);
    assert!(cpu.status.success(), "stderr: {}", String::from_utf8_lossy(&cpu.stderr));
    std::fs::remove_dir_all(&dir).ok();
}
