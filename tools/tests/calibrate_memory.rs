//! `eddy quantize --calib` of a model many times larger than one of its
//! layers, its peak resident memory read from the kernel (`wait4`'s
//! `ru_maxrss`): calibration drops each layer's mapped pages once a chunk
//! has moved past it, so the peak stays far below the model's size, where
//! a calibration that keeps every weight it has read resident (the base,
//! 4533770) peaks above the whole model.

use eddy::mamba::Mamba1Config;
use eddy::BlobKind;
use eddy_cli::convert::{plan_config, WeightDtype};
use eddy_cli::random::{build, mamba1_hf_config, Storage};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// A Mamba-1 shape of ~39M parameters (~157 MB of f32) in 24 layers of
/// ~6.5 MB each, with the fortunes tokenizer's 1,024-token vocabulary (the
/// embedding is 2 MB).
fn shape() -> Mamba1Config {
    Mamba1Config {
        vocab_size: 1024,
        d_model: 512,
        n_layer: 24,
        d_state: 16,
        d_conv: 4,
        d_inner: 1024,
        dt_rank: 32,
        norm_eps: 1e-5,
        tied_embeddings: true,
        proj_bias: false,
        conv_bias: true,
    }
}

/// Write the random f32 model with `models/mamba-fortunes`' tokenizer.
fn write_model(path: &Path) -> u64 {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let tokenizer = std::fs::read(root.join("models/mamba-fortunes/tokenizer.json")).unwrap();
    let plan = plan_config(&mamba1_hf_config(&shape()), &[]).unwrap();
    let plan = plan.with_blob(BlobKind::TokenizerJson, tokenizer);
    let built = build(&plan, &Storage::Converted(WeightDtype::F32), 3).unwrap();
    std::fs::write(path, built.bytes.as_slice()).unwrap();
    built.bytes.as_slice().len() as u64
}

/// Run `eddy` with `args`; its exit status and peak resident memory in
/// bytes (this child's own, not any other process's).
// The child is reaped by `wait4` (which `Child::wait` cannot give the
// resource usage of), not by `Child::wait`.
#[allow(clippy::zombie_processes)]
fn run_measured(eddy: &Path, args: &[&str], stderr: &Path) -> (bool, u64) {
    let child = Command::new(eddy)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(stderr).unwrap())
        .spawn()
        .unwrap();
    let mut status = 0;
    // SAFETY: a zeroed rusage is a valid value for wait4 to overwrite.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: `child` is this process's child, not yet waited for; both
    // pointers are to live locals.
    let pid = unsafe { libc::wait4(child.id() as libc::pid_t, &mut status, 0, &mut usage) };
    assert_eq!(pid, child.id() as libc::pid_t, "wait4 failed");
    let ok = libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0;
    // Linux reports ru_maxrss in KiB.
    (ok, usage.ru_maxrss as u64 * 1024)
}

struct TempDir(PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Quantize `model` calibrated on 256 tokens (one chunk; no clip search
/// and no GPTQ, so the quantization phase stays a few seconds).
fn quantize(eddy: &Path, dir: &Path, model: &Path, tag: &str) -> (bool, u64, String) {
    let calib = dir.join("calib.txt");
    let out = dir.join(format!("{tag}.eddy"));
    let log = dir.join(format!("{tag}.log"));
    let args = [
        "quantize",
        model.to_str().unwrap(),
        "--recipe",
        "w8a8",
        "--calib",
        calib.to_str().unwrap(),
        "--calib-tokens",
        "256",
        "--no-clip-search",
        "--no-gptq",
        "--threads",
        "2",
        "-o",
        out.to_str().unwrap(),
    ];
    let (ok, peak) = run_measured(eddy, &args, &log);
    (ok, peak, std::fs::read_to_string(&log).unwrap_or_default())
}

#[cfg(target_os = "linux")]
#[test]
fn calibration_keeps_about_one_layer_of_the_mapped_model_resident() {
    let dir = TempDir(std::env::temp_dir().join(format!("eddy-calib-memory-{}", std::process::id())));
    std::fs::create_dir_all(&dir.0).unwrap();
    let model = dir.0.join("f32.eddy");
    let size = write_model(&model);
    // The first 64 KB of the fortunes text: the tokenizer's buffers for the
    // whole 2.3 MB (~0.3 GB) would hide the calibration's own memory.
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let text = std::fs::read(root.join("data/fortunes/train.txt")).unwrap();
    let cut = text[..64 << 10].iter().rposition(|&b| b == b'\n').unwrap();
    std::fs::write(dir.0.join("calib.txt"), &text[..cut + 1]).unwrap();
    assert!(size > 150 << 20, "model of {size} bytes");
    // A child's peak includes this process's peak at the time it was
    // spawned (the kernel carries it over the child's exec): reset ours,
    // now that the model is written and freed.
    std::fs::write("/proc/self/clear_refs", "5").expect("cannot reset the peak resident memory");

    // Half the model: the binary, one layer's weights, the quantization
    // phase's buffers (a tensor's f32 copy and its output) fit several
    // times over; the whole mapped model does not.
    let limit = size / 2;
    let (ok, peak, log) = quantize(Path::new(env!("CARGO_BIN_EXE_eddy")), &dir.0, &model, "new");
    assert!(ok, "quantize failed: {log}");
    assert!(log.contains("calibrated on 256 tokens"), "{log}");
    assert!(peak < limit, "peak resident memory {peak} bytes, limit {limit} (model {size} bytes)");

    // With EDDY_BASE_BIN set to an older `eddy` (e.g. the base 4533770),
    // check that it does exceed the limit (run by hand; not every machine
    // has one).
    if let Some(old) = std::env::var_os("EDDY_BASE_BIN") {
        let (ok, old_peak, log) = quantize(Path::new(&old), &dir.0, &model, "old");
        assert!(ok, "{old:?} failed: {log}");
        assert!(old_peak >= limit, "{old:?} peaked at {old_peak} bytes, under {limit} too");
        eprintln!("peak resident memory: new {peak} bytes, base {old_peak} bytes, model {size} bytes");
    }
}
