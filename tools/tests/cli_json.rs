//! `--json` output of inspect, eval and memory parses; `eval` reports the
//! perplexity so far on Ctrl-C; an uncalibrated quantization says so.

mod common;

use common::*;
use std::path::PathBuf;
use std::process::{Command, Stdio};

fn json(o: std::process::Output) -> serde_json::Value {
    let s = ok(o);
    serde_json::from_str(&s).unwrap_or_else(|e| panic!("not JSON ({e}): {s}"))
}

fn converted(name: &str) -> PathBuf {
    let (out, o) = convert_fixture("mamba-tiny-tied", name);
    // Progress ends with the phase's time, the summary with the total.
    assert!(stderr(&o).contains("convert: "), "{}", stderr(&o));
    assert!(ok(o).trim_end().ends_with(" s"));
    out
}

fn text_file(name: &str, repeat: usize) -> PathBuf {
    let p = tmp(name);
    std::fs::write(&p, "The quick brown fox jumps over the lazy dog. ".repeat(repeat)).unwrap();
    p
}

#[test]
fn inspect_and_memory_print_json() {
    let m = converted("inspect");
    let v = json(eddy(&["inspect", m.to_str().unwrap(), "--json"]));
    assert_eq!(v["architecture"], "mamba1");
    assert!(v["tensors"].as_array().unwrap().iter().any(|t| t["name"] == "layers.1.in_proj.weight"));
    assert!(v["state_bytes"].as_u64().unwrap() > 0);
    assert_eq!(v["chat_template"]["eos_token_ids"], serde_json::json!([0]));
    let v = json(eddy(&["memory", m.to_str().unwrap(), "--json", "--ctx", "16,32"]));
    assert_eq!(v["contexts"], serde_json::json!([16, 32]));
    assert_eq!(v["rows"][0]["bytes"].as_array().unwrap().len(), 2);
    let v = json(eddy(&["memory", "--shape", "lfm2-350m", "--json"]));
    assert_eq!(v["rows"].as_array().unwrap().len(), 4);
    let o = eddy(&["memory", "--shape", "no-such-shape"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(o.stdout.is_empty(), "only the error: {}", String::from_utf8_lossy(&o.stdout));
}

#[test]
fn eval_prints_json_equal_to_its_text_result() {
    let m = converted("eval");
    let t = text_file("eval.txt", 8);
    let v = json(eddy(&["eval", m.to_str().unwrap(), "--ppl", t.to_str().unwrap(), "--json"]));
    assert_eq!(v["complete"], true);
    let text = ok(eddy(&["eval", m.to_str().unwrap(), "--ppl", t.to_str().unwrap()]));
    assert!(text.contains(&format!("ppl: {:.4}", v["ppl"].as_f64().unwrap())), "{text} vs {v}");
    assert_eq!(v["tokens_evaluated"].as_u64().unwrap() + 1, {
        let n: u64 = text.split_whitespace().nth(2).unwrap().parse().unwrap();
        n + 1
    });
}

#[test]
fn ctrl_c_in_eval_reports_the_perplexity_so_far() {
    let m = converted("interrupt");
    let t = text_file("long.txt", 20_000);
    let child = Command::new(bin())
        .args(["eval", m.to_str().unwrap(), "--ppl", t.to_str().unwrap(), "--chunk", "64", "--json"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_secs(3));
    let killed = Command::new("kill").args(["-INT", &child.id().to_string()]).status().unwrap();
    assert!(killed.success());
    let o = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(130), "stderr: {err}");
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["complete"], false);
    let scored = v["tokens_evaluated"].as_u64().unwrap();
    assert!(scored > 0 && scored < 400_000, "{v}");
    assert!(v["ppl"].as_f64().unwrap().is_finite());
}

#[test]
fn quantize_without_calibration_warns_and_inspect_says_uncalibrated() {
    let m = converted("uncal");
    let q = tmp("uncal-w4a8.eddy");
    let o = eddy(&["quantize", m.to_str().unwrap(), "--recipe", "w4a8", "-o", q.to_str().unwrap()]);
    assert!(String::from_utf8_lossy(&o.stderr).contains("warning: no --calib"));
    ok(o);
    let text = ok(eddy(&["inspect", q.to_str().unwrap()]));
    assert!(text.contains("uncalibrated"), "{text}");
    let v = json(eddy(&["inspect", q.to_str().unwrap(), "--json"]));
    assert_eq!(v["quantized"]["calibrated"], false);
}

#[test]
fn runtime_options_where_they_do_not_apply_are_refused() {
    let src = fixture("mamba-tiny-tied");
    let out = tmp("refused.eddy");
    let o = eddy(&["convert", src.to_str().unwrap(), "-o", out.to_str().unwrap(), "--state-bits", "4"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stderr).contains("--state-bits does not apply to `eddy convert`"));
    assert!(!out.exists(), "nothing is written");
    let m = converted("applies");
    let t = text_file("applies.txt", 2);
    let o = eddy(&["eval", m.to_str().unwrap(), "--ppl", t.to_str().unwrap(), "--backend", "fpga-sim"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stderr).contains("--backend does not apply to `eddy eval`"));
    ok(eddy(&["eval", m.to_str().unwrap(), "--ppl", t.to_str().unwrap(), "--state-bits", "8"]));
}
