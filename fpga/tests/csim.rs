//! The HLS sources under g++ C-simulation: the testbench must pass on the
//! golden vectors for several (PE, SIMD) builds, and the committed golden
//! files must be what the Rust reference produces today.

use std::path::{Path, PathBuf};
use std::process::Command;

fn fpga_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

#[test]
fn golden_files_are_current() {
    let dir = fpga_dir().join("hls/golden");
    let files = eddy_fpga::golden::all_files();
    assert!(files.len() >= 10);
    for (name, bytes) in files {
        let committed = std::fs::read(dir.join(&name)).unwrap_or_else(|e| {
            panic!("{name}: {e}; regenerate with `cargo run -p eddy-fpga --bin eddy-fpga-golden`")
        });
        assert!(
            committed == bytes,
            "{name} differs from the Rust reference; regenerate with `cargo run -p eddy-fpga --bin eddy-fpga-golden`"
        );
    }
}

/// Compile the top function and the testbench with g++ for one (PE, SIMD).
fn build_testbench(pe: u32, simd: u32) -> PathBuf {
    let out = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("tb_accel_pe{pe}_simd{simd}"));
    let hls = fpga_dir().join("hls");
    let cxx = std::env::var("CXX").unwrap_or_else(|_| "g++".to_string());
    let status = Command::new(&cxx)
        .args(["-std=c++17", "-O2", "-Wall", "-Wextra", "-Werror", "-ffp-contract=off"])
        .args(["-Wno-unknown-pragmas", "-Wno-unused-label"])
        .arg(format!("-DEDDY_PE={pe}"))
        .arg(format!("-DEDDY_SIMD={simd}"))
        .arg(format!("-DEDDY_SCAN_LANES={}", pe.max(1)))
        .arg("-I")
        .arg(&hls)
        .arg(hls.join("eddy_accel.cpp"))
        .arg(hls.join("tb/tb_accel.cpp"))
        .arg("-o")
        .arg(&out)
        .status()
        .unwrap_or_else(|e| panic!("cannot run `{cxx}` ({e}); scripts/setup.sh installs g++"));
    assert!(status.success(), "g++ failed to build the C-sim testbench (PE={pe}, SIMD={simd})");
    out
}

#[test]
fn csim_testbench_passes_for_several_parallelisms() {
    let mut golden: Vec<PathBuf> = std::fs::read_dir(fpga_dir().join("hls/golden"))
        .expect("golden dir")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "bin"))
        .collect();
    golden.sort();
    let n = golden.len();
    for (pe, simd) in [(8, 4), (1, 1), (3, 8), (16, 32)] {
        let tb = build_testbench(pe, simd);
        let out = Command::new(&tb).args(&golden).output().expect("run testbench");
        let text = String::from_utf8_lossy(&out.stdout);
        println!("{text}");
        assert!(out.status.success(), "C-sim testbench failed (PE={pe}, SIMD={simd}):\n{text}");
        // Every golden file plus the argument-check group passed.
        assert!(text.contains(&format!("{} passed, 0 failed", n + 1)), "{text}");
    }
}

#[test]
fn csim_testbench_detects_a_wrong_golden_value() {
    // Flip one bit of one expected output: the testbench must fail.
    let case = &eddy_fpga::golden::matvec_cases()[0];
    let mut bytes = case.to_bytes();
    let last = bytes.len() - 1;
    bytes[last - 2] ^= 1;
    let path = Path::new(env!("CARGO_TARGET_TMPDIR")).join("corrupt_golden.bin");
    std::fs::write(&path, &bytes).expect("write");
    let tb = build_testbench(4, 16);
    let out = Command::new(&tb).arg(&path).output().expect("run testbench");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(!out.status.success(), "{text}");
    assert!(text.contains("FAIL") && text.contains("row 36"), "{text}");
}
