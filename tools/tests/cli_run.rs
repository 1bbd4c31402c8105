//! `eddy run` for everyday use: prompts from stdin and files, stopping at
//! EOS and stop strings, state files, and a closed output pipe.

mod common;

use common::*;
use std::io::Read;
use std::path::PathBuf;
use std::process::{Command, Stdio};

/// Convert `fixture` (with `config.json` edited by `edit`) to `name`.eddy.
fn converted(fixture_name: &str, name: &str, edit: impl Fn(&mut serde_json::Value)) -> PathBuf {
    let dir = tmp(&format!("{name}-ckpt"));
    copy_fixture(fixture_name, &dir);
    let cfg_path = dir.join("config.json");
    let mut cfg: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&cfg_path).unwrap()).unwrap();
    edit(&mut cfg);
    std::fs::write(&cfg_path, cfg.to_string()).unwrap();
    let _ = std::fs::remove_file(dir.join("generation_config.json"));
    let out = tmp(&format!("{name}.eddy"));
    ok(eddy(&["convert", dir.to_str().unwrap(), "-o", out.to_str().unwrap()]));
    out
}

fn ids(s: &str) -> Vec<u32> {
    s.trim().split(',').filter(|t| !t.is_empty()).map(|t| t.parse().unwrap()).collect()
}

#[test]
fn a_saved_state_continues_exactly_like_the_whole_prompt() {
    let m = converted("mamba-tiny-tied", "state", |_| {});
    let m = m.to_str().unwrap();
    let s = tmp("prefix.state");
    let s = s.to_str().unwrap();
    let whole = ok(eddy(&["run", m, "--tokens", "1,2,3,4,5", "-n", "12", "--ids", "--ignore-eos"]));
    assert_eq!(ids(&whole).len(), 12);
    ok(eddy(&["run", m, "--tokens", "1,2,3", "-n", "0", "--save-state", s]));
    let resumed =
        ok(eddy(&["run", m, "--load-state", s, "--tokens", "4,5", "-n", "12", "--ids", "--ignore-eos"]));
    assert_eq!(resumed, whole);
    // Saved after generation, the state holds the generated tokens too.
    let first =
        ok(eddy(&["run", m, "--tokens", "1,2,3", "-n", "2", "--ids", "--ignore-eos", "--save-state", s]));
    let mut prompt = vec![1, 2, 3];
    prompt.extend(ids(&first));
    prompt.push(7);
    let list: Vec<String> = prompt.iter().map(u32::to_string).collect();
    let whole = ok(eddy(&["run", m, "--tokens", &list.join(","), "-n", "6", "--ids", "--ignore-eos"]));
    let resumed =
        ok(eddy(&["run", m, "--load-state", s, "--tokens", "7", "-n", "6", "--ids", "--ignore-eos"]));
    assert_eq!(resumed, whole);
}

#[test]
fn a_state_file_of_another_model_format_or_garbage_is_refused() {
    let m = converted("mamba-tiny-tied", "state-mismatch", |_| {});
    let other = converted("mamba2-tiny", "state-other", |_| {});
    let (m, other) = (m.to_str().unwrap(), other.to_str().unwrap());
    let s = tmp("mismatch.state");
    let s = s.to_str().unwrap();
    ok(eddy(&["run", m, "--tokens", "1,2,3", "-n", "0", "--save-state", s]));
    assert_clean_error(
        &eddy(&["run", other, "--load-state", s, "--tokens", "4"]),
        "the state of another model",
    );
    assert_clean_error(
        &eddy(&["run", m, "--state-bits", "8", "--load-state", s, "--tokens", "4"]),
        "--state-bits 32",
    );
    let mut bytes = std::fs::read(s).unwrap();
    bytes.truncate(bytes.len() - 4);
    std::fs::write(s, &bytes).unwrap();
    assert_clean_error(&eddy(&["run", m, "--load-state", s, "--tokens", "4"]), "state bytes");
    std::fs::write(s, b"not a state").unwrap();
    assert_clean_error(&eddy(&["run", m, "--load-state", s, "--tokens", "4"]), "not an eddy state file");
}

#[test]
fn stdin_and_file_prompts_equal_the_inline_prompt() {
    let m = converted("mamba-tiny-tied", "prompts", |_| {});
    let m = m.to_str().unwrap();
    let text = "The cat sat on the mat.\nThen it left.";
    let file = tmp("prompt.txt");
    std::fs::write(&file, text).unwrap();
    let common = ["-n", "10", "--ids", "--ignore-eos"];
    let inline = ok(eddy(&[&["run", m, "--prompt", text][..], &common].concat()));
    assert_eq!(ids(&inline).len(), 10);
    let from_file = ok(eddy(&[&["run", m, "-f", file.to_str().unwrap()][..], &common].concat()));
    let from_stdin = ok(eddy_with_stdin(&[&["run", m, "--prompt", "-"][..], &common].concat(), text));
    assert_eq!(from_file, inline);
    assert_eq!(from_stdin, inline);
    assert_clean_error(&eddy(&["run", m, "-f", "/nonexistent/prompt.txt"]), "cannot read the prompt file");
}

#[test]
fn generation_stops_at_eos_unless_told_to_ignore_it() {
    let plain = converted("mamba-tiny-tied", "eos-free", |c| c["eos_token_id"] = serde_json::Value::Null);
    let all = ids(&ok(eddy(&["run", plain.to_str().unwrap(), "--tokens", "1,2,3", "-n", "12", "--ids"])));
    assert_eq!(all.len(), 12);
    // Make the fourth generated token the end-of-sequence token.
    let eos = all[3];
    assert!(!all[..3].contains(&eos), "the test needs a fresh token: {all:?}");
    let m = converted("mamba-tiny-tied", "eos", |c| c["eos_token_id"] = eos.into());
    let m = m.to_str().unwrap();
    let stopped = ids(&ok(eddy(&["run", m, "--tokens", "1,2,3", "-n", "12", "--ids"])));
    assert_eq!(stopped, all[..3]);
    let ignored = ids(&ok(eddy(&["run", m, "--tokens", "1,2,3", "-n", "12", "--ids", "--ignore-eos"])));
    assert_eq!(ignored, all);
}

#[test]
fn a_stop_string_ends_the_text_before_it() {
    let m = converted("mamba-tiny-tied", "stop", |_| {});
    let m = m.to_str().unwrap();
    let full = ok(eddy(&["run", m, "--prompt", "Hello", "-n", "24", "--ignore-eos"]));
    let generated = full.strip_prefix("Hello").unwrap().trim_end_matches('\n').to_string();
    let chars: Vec<char> = generated.chars().collect();
    assert!(chars.len() > 6, "{generated:?}");
    let stop: String = chars[4..6].iter().collect();
    let cut = generated.find(&stop).unwrap();
    let stopped = ok(eddy(&["run", m, "--prompt", "Hello", "-n", "24", "--ignore-eos", "--stop", &stop]));
    assert_eq!(stopped, format!("Hello{}\n", &generated[..cut]));
}

#[test]
fn a_closed_output_pipe_ends_quietly_with_status_0() {
    let m = converted("mamba-tiny-tied", "pipe", |_| {});
    let mut child = Command::new(bin())
        .args(["run", m.to_str().unwrap(), "--tokens", "1,2", "-n", "100000", "--ids", "--ignore-eos"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut first = [0u8; 16];
    child.stdout.as_mut().unwrap().read_exact(&mut first).unwrap();
    drop(child.stdout.take());
    let o = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(0), "stderr: {err}");
    assert!(!err.contains("error") && !err.contains("panicked"), "stderr: {err}");
}
