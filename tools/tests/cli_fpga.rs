#![cfg(feature = "fpga")]
//! `eddy run`/`eddy logits --backend fpga-sim`: the same tokens and
//! bit-identical logits as the CPU for a W2A8 model, and clean errors.

mod common;

use common::{eddy, fixture, tmp};
use std::path::PathBuf;

fn ok(o: &std::process::Output) -> String {
    assert!(o.status.success(), "stderr: {}", String::from_utf8_lossy(&o.stderr));
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// The tiny tied fixture converted and quantized W2A8 (plain, no calibration).
fn w2a8_model() -> PathBuf {
    let fixture = fixture("mamba-tiny-tied");
    // Tests run in parallel threads: each gets its own files.
    static COUNTER: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let (f32_path, q_path) = (tmp(&format!("tied-{n}.eddy")), tmp(&format!("tied-w2a8-{n}.eddy")));
    ok(&eddy(&["convert", fixture.to_str().unwrap(), "-o", f32_path.to_str().unwrap()]));
    ok(&eddy(&["quantize", f32_path.to_str().unwrap(), "--recipe", "w2a8", "-o", q_path.to_str().unwrap()]));
    q_path
}

#[test]
fn fpga_sim_backend_matches_the_cpu() {
    let m = w2a8_model();
    let m = m.to_str().unwrap();
    let run = |extra: &[&str]| {
        let mut args = vec!["run", m, "--tokens", "1,2,3,4,5", "-n", "24", "--ids"];
        args.extend_from_slice(extra);
        eddy(&args)
    };
    let cpu = ok(&run(&[]));
    let fpga = run(&["--backend", "fpga-sim"]);
    assert_eq!(ok(&fpga), cpu, "fpga-sim tokens differ from the CPU's");
    let err = String::from_utf8_lossy(&fpga.stderr);
    assert!(err.contains("fpga-sim (PE ") && err.contains("matvecs"), "{err}");
    assert_eq!(
        ok(&run(&["--backend", "fpga-sim", "--fpga-scan"])),
        cpu,
        "scan on the device changed greedy tokens"
    );

    let (a, b) = (tmp("cpu.npy"), tmp("fpga.npy"));
    ok(&eddy(&["logits", m, "--tokens", "5,9,2,7,1,3", "-o", a.to_str().unwrap()]));
    ok(&eddy(&["logits", m, "--tokens", "5,9,2,7,1,3", "-o", b.to_str().unwrap(), "--backend", "fpga-sim"]));
    assert!(
        std::fs::read(&a).unwrap() == std::fs::read(&b).unwrap(),
        "fpga-sim logits are not bit-identical"
    );
}

#[test]
fn fpga_scan_without_the_fpga_backend_is_a_clean_error() {
    let m = w2a8_model();
    let o = eddy(&["run", m.to_str().unwrap(), "--tokens", "1", "-n", "2", "--fpga-scan"]);
    assert_eq!(o.status.code(), Some(1));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.starts_with("error: ") && err.contains("--backend fpga-sim"), "{err}");
    let o = eddy(&["run", m.to_str().unwrap(), "--tokens", "1", "--backend", "gpu"]);
    assert_ne!(o.status.code(), Some(0));
}

#[test]
fn fpga_export_and_predict() {
    let dir = tmp("export-u280");
    let out = ok(&eddy(&["fpga", "export", "--board", "u280", "-o", dir.to_str().unwrap(), "--pe", "128"]));
    assert!(out.contains("PE 128 x SIMD 4"), "{out}");
    let tcl = std::fs::read_to_string(dir.join("run_hls.tcl")).unwrap();
    assert!(
        tcl.contains("xcu280") && tcl.contains("-DEDDY_PE=128") && tcl.contains("set_top eddy_accel"),
        "{tcl}"
    );
    assert!(dir.join("connectivity.cfg").exists() && dir.join("eddy-host.conf").exists());
    let o = eddy(&["fpga", "export", "--board", "u280", "-o", dir.to_str().unwrap(), "--simd", "16"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stderr).contains("too wide"));
    assert_ne!(
        eddy(&["fpga", "export", "--board", "vu9p", "-o", dir.to_str().unwrap()]).status.code(),
        Some(0)
    );
    let table = ok(&eddy(&["fpga", "predict"]));
    assert!(
        table.contains("not measurements") && table.contains("Mamba-2.8B") && table.contains("kv260"),
        "{table}"
    );
}

#[test]
fn fpga_predict_prints_json_matching_the_table() {
    let v: serde_json::Value = serde_json::from_str(&ok(&eddy(&["fpga", "predict", "--json"]))).unwrap();
    let rows = v["predictions"].as_array().unwrap();
    assert_eq!(rows.len(), 4, "{v}");
    let table = ok(&eddy(&["fpga", "predict"]));
    for r in rows {
        let cells = format!("| {} | {} |", r["model"].as_str().unwrap(), r["board"].as_str().unwrap());
        assert!(table.contains(&cells), "{cells} not in {table}");
        let cycles = format!("| {} ({}) |", r["cycles_per_token"], r["scan_cycles_per_token"]);
        assert!(table.contains(&cycles), "{cycles} not in {table}");
    }
}
