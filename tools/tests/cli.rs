//! The `eddy` binary end to end: conversion, inspection, generation, logits,
//! and one-line errors (never a panic) for bad input.

mod common;

use common::*;
use std::path::{Path, PathBuf};

fn converted(name: &str) -> PathBuf {
    // Tests run in parallel threads: each conversion gets its own file.
    static COUNTER: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    convert_fixture(name, &format!("{name}-{n}")).0
}

#[test]
fn inspect_lists_tensors_and_memory() {
    let m = converted("mamba-tiny-untied");
    let o = eddy(&["inspect", m.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    let s = String::from_utf8(o.stdout).unwrap();
    for needle in
        ["mamba1", "layers.2.in_proj.bias", "lm_head.weight", "state bytes:", "scratch bytes:", "d_state"]
    {
        assert!(s.contains(needle), "`{needle}` missing from:\n{s}");
    }
}

#[test]
fn run_generates_the_same_tokens_twice_greedy() {
    let m = converted("mamba-tiny-tied");
    let args = ["run", m.to_str().unwrap(), "--tokens", "1,2,3,4,5", "-n", "12", "--ids"];
    let a = eddy(&args);
    assert!(a.status.success(), "{}", stderr(&a));
    let ids: Vec<u32> =
        String::from_utf8(a.stdout.clone()).unwrap().trim().split(',').map(|t| t.parse().unwrap()).collect();
    assert_eq!(ids.len(), 12);
    assert_eq!(eddy(&args).stdout, a.stdout);
    assert!(stderr(&a).contains("tok/s"));
}

#[test]
fn run_with_text_prompt_uses_embedded_tokenizer() {
    let m = converted("mamba-tiny-tied");
    let o = eddy(&[
        "run",
        m.to_str().unwrap(),
        "--prompt",
        "Hello",
        "-n",
        "8",
        "--temperature",
        "0.8",
        "--seed",
        "3",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(String::from_utf8_lossy(&o.stdout).starts_with("Hello"));
}

#[test]
fn logits_npy_has_header_and_shape() {
    let m = converted("mamba-tiny-tied");
    let out = tmp("logits.npy");
    for extra in [None, Some("--stepwise")] {
        let mut args = vec!["logits", m.to_str().unwrap(), "--tokens", "5,6,7", "-o", out.to_str().unwrap()];
        args.extend(extra);
        let o = eddy(&args);
        assert!(o.status.success(), "{}", stderr(&o));
        let bytes = std::fs::read(&out).unwrap();
        assert_eq!(&bytes[..6], b"\x93NUMPY");
        let hlen = u16::from_le_bytes([bytes[8], bytes[9]]) as usize;
        let header = std::str::from_utf8(&bytes[10..10 + hlen]).unwrap();
        assert!(header.contains("'shape': (3, 300)"), "{header}");
        assert_eq!(bytes.len(), 10 + hlen + 3 * 300 * 4);
    }
}

#[test]
fn missing_file_is_a_clean_error() {
    assert_clean_error(&eddy(&["inspect", "/nonexistent/model.eddy"]), "/nonexistent/model.eddy");
    assert_clean_error(&eddy(&["run", "/nonexistent/m.eddy", "--tokens", "1"]), "cannot read");
}

#[test]
fn corrupted_file_is_a_clean_error() {
    let m = converted("mamba-tiny-tied");
    let mut bytes = std::fs::read(&m).unwrap();
    let n = bytes.len();
    bytes[n / 2] ^= 0x40;
    let bad = tmp("corrupt.eddy");
    std::fs::write(&bad, &bytes).unwrap();
    assert_clean_error(&eddy(&["inspect", bad.to_str().unwrap()]), "checksum mismatch");
    std::fs::write(&bad, &bytes[..n / 3]).unwrap();
    assert_clean_error(&eddy(&["inspect", bad.to_str().unwrap()]), "truncated");
    std::fs::write(&bad, b"not a model at all, just some text bytes that go on for a while........").unwrap();
    assert_clean_error(&eddy(&["run", bad.to_str().unwrap(), "--tokens", "1"]), "not an .eddy file");
}

#[test]
fn bad_tokens_are_clean_errors() {
    let m = converted("mamba-tiny-tied");
    let p = m.to_str().unwrap();
    assert_clean_error(&eddy(&["run", p, "--tokens", "1,999999"]), "out of range");
    assert_clean_error(&eddy(&["run", p, "--tokens", "1,x"]), "not a token id");
    assert_clean_error(&eddy(&["logits", p, "--tokens", "", "-o", "/tmp/x.npy"]), "empty");
}

#[test]
fn convert_rejects_unknown_architecture_and_bad_shapes() {
    let dir = tmp("bad-arch");
    copy_fixture("mamba-tiny-tied", &dir);
    let cfg_path = dir.join("config.json");
    let cfg = std::fs::read_to_string(&cfg_path).unwrap();
    std::fs::write(&cfg_path, cfg.replace("MambaForCausalLM", "LlamaForCausalLM")).unwrap();
    let out = tmp("never.eddy");
    let o = eddy(&["convert", dir.to_str().unwrap(), "-o", out.to_str().unwrap()]);
    assert_clean_error(&o, "LlamaForCausalLM");
    assert!(!out.exists(), "no output on failure");

    // A config that disagrees with the weights names the tensor.
    let mut v: serde_json::Value = serde_json::from_str(&cfg).unwrap();
    v["state_size"] = serde_json::json!(12);
    std::fs::write(&cfg_path, v.to_string()).unwrap();
    let o = eddy(&["convert", dir.to_str().unwrap(), "-o", out.to_str().unwrap()]);
    assert_clean_error(&o, "backbone.layers.0.mixer.x_proj.weight");

    std::fs::write(&cfg_path, "{ not json").unwrap();
    assert_clean_error(
        &eddy(&["convert", dir.to_str().unwrap(), "-o", out.to_str().unwrap()]),
        "invalid JSON",
    );
    assert_clean_error(&eddy(&["convert", "/nonexistent", "-o", out.to_str().unwrap()]), "config.json");
}

#[test]
fn bench_reports_every_test_and_thread_count_as_json() {
    let m = converted("mamba-tiny-tied");
    let args = [
        "bench",
        m.to_str().unwrap(),
        "-p",
        "5,9",
        "-n",
        "4",
        "-r",
        "1",
        "--sweep-threads",
        "1,2",
        "--no-roofline",
        "--json",
    ];
    let o = eddy(&args);
    assert!(o.status.success(), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let tests: Vec<(String, u64)> = v["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r["test"].as_str().unwrap().to_string(), r["threads"].as_u64().unwrap()))
        .collect();
    let want: Vec<(String, u64)> =
        [1u64, 2].iter().flat_map(|&t| ["pp5", "pp9", "tg4"].map(|n| (n.to_string(), t))).collect();
    assert_eq!(tests, want);
    assert!(v["results"].as_array().unwrap().iter().all(|r| r["tokens_per_s"].as_f64().unwrap() > 0.0));
    let o = eddy(&["bench", m.to_str().unwrap(), "--sweep-threads", "x"]);
    assert_clean_error(&o, "--sweep-threads");
}

#[test]
fn threads_do_not_change_tokens() {
    let m = converted("mamba-tiny-untied");
    let run = |threads: &str| {
        let o = eddy(&[
            "--threads",
            threads,
            "run",
            m.to_str().unwrap(),
            "--tokens",
            "1,2,3,4,5",
            "-n",
            "12",
            "--ids",
        ]);
        assert!(o.status.success(), "{}", stderr(&o));
        o.stdout
    };
    assert_eq!(run("1"), run("2"));
    let o = eddy(&["--threads", "0", "run", m.to_str().unwrap(), "--tokens", "1", "-n", "1"]);
    assert_clean_error(&o, "thread");
}

/// `eddy [flags] inspect path`'s report (the command must succeed).
fn inspect(path: &str, flags: &[&str]) -> String {
    let o = eddy(&[flags, &["inspect", path]].concat());
    assert!(o.status.success(), "{}", stderr(&o));
    String::from_utf8(o.stdout).unwrap()
}

/// The `state bytes:` figure of an `inspect` report.
fn reported_state_bytes(report: &str) -> usize {
    let line = report.lines().find(|l| l.starts_with("state bytes:")).unwrap();
    line.split_whitespace().nth(2).unwrap().parse().unwrap()
}

/// The state bytes `eddy [flags] inspect path` reports.
fn state_bytes_under(path: &str, flags: &[&str]) -> usize {
    reported_state_bytes(&inspect(path, flags))
}

#[test]
fn other_families_convert_inspect_quantize_and_run() {
    for (fixture, arch, needle) in [
        ("gru-tiny", "gru", "input_dim"),
        ("lstm-tiny", "lstm", "layers.1.weight_hh"),
        ("mamba2-tiny", "mamba2", "n_heads"),
        ("lfm2-tiny", "lfm2", "kv cache:      q4, 4 sinks + 4092 recent tokens"),
        ("recurrentgemma-tiny", "recurrent-gemma", "kv cache:      q4, 0 sinks + 8 recent tokens"),
    ] {
        let m = converted(fixture);
        let o = eddy(&["inspect", m.to_str().unwrap()]);
        assert!(o.status.success(), "{}", stderr(&o));
        let s = String::from_utf8(o.stdout).unwrap();
        for n in [arch, needle, "state growth:  0 bytes per token"] {
            assert!(s.contains(n), "{fixture}: `{n}` missing from:\n{s}");
        }
        let q = tmp(&format!("{fixture}-w2a8.eddy"));
        let o = eddy(&["quantize", m.to_str().unwrap(), "--recipe", "w2a8", "-o", q.to_str().unwrap()]);
        assert!(o.status.success(), "{fixture}: {}", stderr(&o));
        let run = |path: &PathBuf| {
            let o = eddy(&["run", path.to_str().unwrap(), "--tokens", "1,2,3", "-n", "6", "--ids"]);
            assert!(o.status.success(), "{fixture}: {}", stderr(&o));
            String::from_utf8(o.stdout).unwrap()
        };
        let (a, b) = (run(&m), run(&q));
        let ids = a.split(|c: char| !c.is_ascii_digit()).filter(|t| !t.is_empty()).count();
        assert!(ids >= 6, "{fixture}: expected 6 generated ids in {a:?}");
        assert!(!b.trim().is_empty(), "{fixture}: quantized run printed nothing");
    }
}

#[test]
fn state_bits_shrink_the_state_and_bad_widths_are_refused() {
    let m = converted("mamba2-tiny");
    let state_bytes = |bits: &str| -> (usize, String) {
        let s = inspect(m.to_str().unwrap(), &["--state-bits", bits]);
        let by_bits = s.lines().find(|l| l.starts_with("state by bits:")).unwrap().to_string();
        (reported_state_bytes(&s), by_bits)
    };
    let (f32_bytes, by_bits) = state_bytes("32");
    let (q8_bytes, _) = state_bytes("8");
    let (q4_bytes, _) = state_bytes("4");
    assert!(q4_bytes < q8_bytes && q8_bytes < f32_bytes, "{f32_bytes} {q8_bytes} {q4_bytes}");
    assert!(by_bits.contains(&format!("32 {f32_bytes}, 8 {q8_bytes}, 4 {q4_bytes}")), "{by_bits}");
    let run = |bits: &str| {
        eddy(&["run", m.to_str().unwrap(), "--tokens", "1,2,3", "-n", "6", "--ids", "--state-bits", bits])
    };
    let o = run("4");
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stderr(&o).contains(&format!("state q4 ({q4_bytes} bytes)")), "{}", stderr(&o));
    for bad in ["16", "0", "x"] {
        let o = run(bad);
        assert!(!o.status.success());
        let err = stderr(&o);
        assert!(err.contains("use 32 (f32), 8 or 4") && !err.contains("panicked"), "{err}");
    }
}

#[test]
fn kv_cache_flags_change_the_state_and_refuse_bad_input() {
    let m = converted("lfm2-tiny");
    let path = m.to_str().unwrap();
    let (q4, f16) = (state_bytes_under(path, &[]), state_bytes_under(path, &["--kv", "f16"]));
    assert!(q4 < f16, "q4 cache {q4} must be smaller than f16 {f16}");
    assert!(state_bytes_under(path, &["--kv-window", "60"]) < q4);
    let o = eddy(&["--kv", "q3", "inspect", path]);
    assert!(!o.status.success() && stderr(&o).contains("expected f32, f16, q8 or q4"), "{}", stderr(&o));
    let o = eddy(&["--kv-window", "0", "inspect", path]);
    assert!(!o.status.success() && stderr(&o).contains("window"), "{}", stderr(&o));
    // A model without attention layers says so instead of ignoring the flag.
    let gru = converted("gru-tiny");
    let o = eddy(&["--kv", "q4", "inspect", gru.to_str().unwrap()]);
    assert!(!o.status.success() && stderr(&o).contains("has none"), "{}", stderr(&o));
    // Generation runs with a wrapped Lambda window.
    let o = eddy(&[
        "--kv-sinks",
        "1",
        "--kv-window",
        "3",
        "run",
        path,
        "--tokens",
        "1,2,3,4,5",
        "-n",
        "8",
        "--ids",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
}

#[test]
fn memory_report_compares_full_and_bounded_caches() {
    let m = converted("lfm2-tiny");
    let o = eddy(&["memory", m.to_str().unwrap(), "--ctx", "1024,1048576"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let s = String::from_utf8(o.stdout).unwrap();
    // 2 attention layers x 2 kv heads x 16 values x 2 bytes x (K and V):
    // 256 bytes per token, so 1M tokens need 256 MiB; the q4 Lambda cache
    // stays the same at both lengths.
    let full = s.lines().find(|l| l.contains("full cache")).unwrap();
    assert!(full.contains("256.0 MiB"), "{s}");
    let q4 = s.lines().find(|l| l.starts_with("| q4")).unwrap();
    let cells: Vec<&str> = q4.split('|').map(str::trim).filter(|c| !c.is_empty()).collect();
    assert_eq!(cells[1], cells[2], "{s}");
    let o = eddy(&["memory", m.to_str().unwrap(), "--ctx", "0"]);
    assert!(!o.status.success());
}

#[test]
fn memory_of_named_public_shapes() {
    // RecurrentGemma-2B: 8 attention layers x 1 kv head x 256 values x f16 x
    // (K and V) = 8 KiB per token of full cache: 8 GiB at 1M tokens.
    let o = eddy(&["memory", "--shape", "recurrentgemma-2b", "--ctx", "1048576"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let s = String::from_utf8(o.stdout).unwrap();
    assert!(s.lines().any(|l| l.contains("full cache") && l.contains("8.00 GiB")), "{s}");
    let o = eddy(&["memory", "--shape", "gpt-5"]);
    assert!(!o.status.success() && stderr(&o).contains("known shapes:"), "{}", stderr(&o));
}

#[test]
fn state_bits_and_kv_flags_compose_on_a_hybrid() {
    let m = converted("recurrentgemma-tiny");
    let path = m.to_str().unwrap();
    // 4-bit state codes the RG-LRU state; an f16 cache is larger than the
    // default q4 one whatever the state format.
    let (f32_q4, bits4_q4) = (state_bytes_under(path, &[]), state_bytes_under(path, &["--state-bits", "4"]));
    let (f32_f16, bits4_f16) = (
        state_bytes_under(path, &["--kv", "f16"]),
        state_bytes_under(path, &["--state-bits", "4", "--kv", "f16"]),
    );
    assert!(bits4_q4 < f32_q4 && bits4_f16 < f32_f16, "{bits4_q4} {f32_q4} {bits4_f16} {f32_f16}");
    assert_eq!(f32_q4 - bits4_q4, f32_f16 - bits4_f16, "the state format must not change the cache");
    let o = eddy(&["--state-bits", "8", "--kv", "q8", "run", path, "--tokens", "1,2,3", "-n", "6", "--ids"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stderr(&o).contains("state q8"), "{}", stderr(&o));
    let o = eddy(&["--state-bits", "4", "memory", path, "--ctx", "1024"]);
    assert!(o.status.success() && String::from_utf8_lossy(&o.stdout).contains("state q4"), "{}", stderr(&o));
    // A public shape is sized in any state format from its header alone.
    let shape_bytes = |bits: &str| {
        let o = eddy(&["--state-bits", bits, "memory", "--shape", "recurrentgemma-2b", "--json"]);
        assert!(o.status.success(), "{}", stderr(&o));
        let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
        v["rows"][0]["bytes"][0].as_u64().unwrap()
    };
    assert!(shape_bytes("4") < shape_bytes("32"), "4-bit state must shrink the shape's state");
}

/// `--calib-ctx N` calibrates on separate sequences of N tokens: the file
/// differs from one calibrated on one sequence (the statistics change);
/// 0 is refused before anything is written.
#[test]
fn calib_ctx_splits_the_text_and_zero_is_refused() {
    let m = converted("lfm2-tiny");
    let text = Path::new(env!("CARGO_MANIFEST_DIR")).join("../data/fortunes/train.txt");
    let quantize = |out: &Path, extra: &[&str]| {
        let mut args = vec!["quantize", m.to_str().unwrap(), "--recipe", "w2a8", "--calib"];
        args.extend([text.to_str().unwrap(), "--calib-tokens", "96", "-o", out.to_str().unwrap()]);
        args.extend(extra);
        eddy(&args)
    };
    let (whole, split, zero) = (tmp("calib-whole.eddy"), tmp("calib-split.eddy"), tmp("calib-zero.eddy"));
    let o = quantize(&whole, &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    let o = quantize(&split, &["--calib-ctx", "16"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(std::fs::read(&whole).unwrap() != std::fs::read(&split).unwrap(), "--calib-ctx changed nothing");
    let o = quantize(&zero, &["--calib-ctx", "0"]);
    assert!(!o.status.success());
    assert!(stderr(&o).starts_with("error: ") && stderr(&o).contains("--calib-ctx"), "{}", stderr(&o));
    assert!(!zero.exists(), "a refused run wrote its output");
}
