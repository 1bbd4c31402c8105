#![cfg(not(feature = "fpga"))]
//! A CLI built without the `fpga` feature (`--no-default-features`): the
//! FPGA backend and subcommands stop with one clear error, and the CPU path
//! still works.

mod common;

use common::{eddy, fixture, tmp};
use std::process::Output;

fn assert_no_fpga_error(o: &Output) {
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "stderr: {err}");
    assert!(err.starts_with("error: ") && err.contains("built without FPGA support"), "stderr: {err}");
    assert!(!err.contains("panicked"), "stderr: {err}");
}

#[test]
fn fpga_subcommand_and_backend_say_the_build_has_no_fpga() {
    assert_no_fpga_error(&eddy(&["fpga", "predict"]));
    let model = tmp("tied.eddy");
    let dir = model.parent().unwrap().to_path_buf();
    let fixture = fixture("mamba-tiny-tied");
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
