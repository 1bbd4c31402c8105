//! Bad input to the `eddy` binary ends in one `error:` line and exit 1:
//! never an abort, a hang, a silent change or a leftover file. One test
//! per case of issue 22. `EDDY_TEST_BIN` runs them against another build
//! (e.g. the one before the fixes, to see them fail).

mod common;

use common::*;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// `eddy args` under a shell with `limits` (e.g. `ulimit -v 1000000`).
fn eddy_limited(limits: &str, args: &[&str]) -> Output {
    let quoted: Vec<String> = args.iter().map(|a| format!("'{a}'")).collect();
    let script = format!("{limits}; exec '{}' {}", bin(), quoted.join(" "));
    Command::new("sh").arg("-c").arg(script).output().expect("sh runs")
}

fn converted(name: &str, tag: &str) -> PathBuf {
    convert_fixture(name, &format!("{name}-{tag}")).0
}

/// Files in `dir` whose names end in `.tmp`.
fn temp_files(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".tmp"))
        .collect()
}

#[test]
fn case1_a_huge_kv_window_is_an_allocation_error_not_an_abort() {
    let m = converted("lfm2-tiny", "case1");
    let args =
        ["--kv-window", "16777212", "run", m.to_str().unwrap(), "--tokens", "1,2,3", "-n", "4", "--ids"];
    // 1.6 GB of state under a 1 GB address-space limit.
    let o = eddy_limited("ulimit -v 1000000", &args);
    assert_clean_error(&o, "bytes");
    // A limit the caller sets is checked before allocating.
    let o = Command::new(bin())
        .env("EDDY_MAX_STATE_BYTES", "100000")
        .args(["run", m.to_str().unwrap(), "--tokens", "1,2", "-n", "1", "--ids"])
        .output()
        .unwrap();
    assert_clean_error(&o, "EDDY_MAX_STATE_BYTES");
}

#[test]
fn case2_thread_counts_are_bounded() {
    let m = converted("mamba-tiny-tied", "case2");
    let p = m.to_str().unwrap();
    for n in ["100000", "18446744073709551615", "0"] {
        let started = std::time::Instant::now();
        assert_clean_error(
            &eddy(&["--threads", n, "run", p, "--tokens", "1,2", "-n", "2", "--ids"]),
            "per core",
        );
        assert!(started.elapsed().as_secs() < 10, "refused before spawning");
    }
    let o = Command::new(bin())
        .env("EDDY_THREADS", "100000")
        .args(["run", p, "--tokens", "1,2", "-n", "2", "--ids"])
        .output()
        .unwrap();
    assert_clean_error(&o, "EDDY_THREADS");
}

/// `model` with its final norm set to NaN (checksum fixed up), as a file.
fn with_nan_weights(model: &Path) -> PathBuf {
    let mut bytes = std::fs::read(model).unwrap();
    let (start, len) = {
        let aligned = eddy::file::AlignedBytes::copy_from(&bytes);
        let file = eddy::EddyFile::parse(aligned.as_slice()).unwrap();
        let t = file.tensors().find(|t| t.name == "norm_f.weight").unwrap();
        (t.data.as_ptr() as usize - aligned.as_slice().as_ptr() as usize, t.data.len())
    };
    for w in bytes[start..start + len].chunks_mut(4) {
        w.copy_from_slice(&f32::NAN.to_le_bytes());
    }
    let crc = eddy::file::compute_checksum(&bytes);
    let at = eddy::file::CHECKSUM_OFFSET;
    bytes[at..at + 4].copy_from_slice(&crc.to_le_bytes());
    let out = model.with_extension("nan.eddy");
    std::fs::write(&out, bytes).unwrap();
    out
}

#[test]
fn case3_sampling_options_are_validated_and_nan_logits_reported() {
    let m = converted("mamba-tiny-tied", "case3");
    let p = m.to_str().unwrap();
    for (flag, value) in
        [("--temperature", "nan"), ("--temperature", "inf"), ("--top-p", "2"), ("--top-p", "nan")]
    {
        assert_clean_error(&eddy(&["run", p, "--tokens", "1,2", "-n", "2", flag, value]), flag);
    }
    let nan = with_nan_weights(&m);
    let nan = nan.to_str().unwrap();
    assert_clean_error(
        &eddy(&["run", nan, "--tokens", "1,2,3", "-n", "4", "--ids"]),
        "NaN logits at position 2",
    );
    let npy = tmp("case3.npy");
    let o = eddy(&["logits", nan, "--tokens", "1,2", "-o", npy.to_str().unwrap()]);
    assert_clean_error(&o, "NaN logits at position 0");
    assert!(!npy.exists(), "no NaN array written");
    let text = tmp("case3.txt");
    std::fs::write(&text, "Hello world, hello again.").unwrap();
    let o = eddy(&["eval", nan, "--ppl", text.to_str().unwrap()]);
    assert_clean_error(&o, "NaN logits at position 0");
}

#[test]
fn case4_a_write_past_the_file_size_limit_leaves_no_temp_file() {
    let dir = tmp("case4");
    std::fs::create_dir_all(&dir).unwrap();
    let out = dir.join("small.eddy");
    let src = fixture("mamba-tiny-tied");
    let args = ["convert", src.to_str().unwrap(), "-o", out.to_str().unwrap()];
    // 100 blocks of 512 bytes: far less than the model.
    let o = eddy_limited("ulimit -f 100", &args);
    assert_clean_error(&o, "too large");
    assert!(temp_files(&dir).is_empty(), "left behind: {:?}", temp_files(&dir));
    assert!(!out.exists());
    // An output path that is a directory: refused, nothing left behind.
    let o = eddy(&["convert", fixture("mamba-tiny-tied").to_str().unwrap(), "-o", dir.to_str().unwrap()]);
    assert_clean_error(&o, "output");
    assert!(temp_files(dir.parent().unwrap()).is_empty());
}

#[cfg(unix)]
fn mkfifo(path: &Path) {
    let _ = std::fs::remove_file(path);
    let ok = Command::new("mkfifo").arg(path).status().unwrap().success();
    assert!(ok, "mkfifo");
}

/// `eddy args` must finish within a few seconds (a FIFO read blocks).
fn eddy_within(secs: u64, args: &[&str]) -> Output {
    let mut child = Command::new(bin())
        .args(args)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let started = std::time::Instant::now();
    while child.try_wait().unwrap().is_none() {
        if started.elapsed().as_secs() >= secs {
            child.kill().unwrap();
            panic!("eddy {args:?} still running after {secs} s");
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    child.wait_with_output().unwrap()
}

#[cfg(unix)]
#[test]
fn case5_fifos_are_refused_not_waited_on() {
    let fifo = tmp("case5.eddy");
    mkfifo(&fifo);
    assert_clean_error(&eddy_within(20, &["inspect", fifo.to_str().unwrap()]), "not a regular file");
    let dir = tmp("case5-ckpt");
    copy_fixture("mamba-tiny-tied", &dir);
    mkfifo(&dir.join("model.safetensors"));
    let out = tmp("case5-out.eddy");
    let o = eddy_within(20, &["convert", dir.to_str().unwrap(), "-o", out.to_str().unwrap()]);
    assert_clean_error(&o, "not a regular file");
    let text = tmp("case5.txt");
    mkfifo(&text);
    let m = converted("mamba-tiny-tied", "case5");
    let o = eddy_within(20, &["eval", m.to_str().unwrap(), "--ppl", text.to_str().unwrap()]);
    assert_clean_error(&o, "not a regular file");
}

#[test]
fn case6_a_broken_tokenizer_fails_the_conversion() {
    let dir = tmp("case6");
    copy_fixture("mamba-tiny-tied", &dir);
    let out = tmp("case6.eddy");
    for garbage in [&b"{}"[..], &[0xde, 0xad, 0xbe, 0xef, 0x00, 0x17][..]] {
        std::fs::write(dir.join("tokenizer.json"), garbage).unwrap();
        let o = eddy(&["convert", dir.to_str().unwrap(), "-o", out.to_str().unwrap()]);
        assert_clean_error(&o, "tokenizer.json: not a usable tokenizer");
        assert!(!out.exists());
    }
}

/// Convert `fixture` with `edit` applied to its config.json (as a JSON
/// value) and, optionally, to a tensor of its checkpoint.
fn convert_edited(fixture_name: &str, tag: &str, edit: impl FnOnce(&mut serde_json::Value)) -> Output {
    let dir = tmp(&format!("case7-{tag}"));
    copy_fixture(fixture_name, &dir);
    let cfg_path = dir.join("config.json");
    let mut cfg: serde_json::Value = serde_json::from_slice(&std::fs::read(&cfg_path).unwrap()).unwrap();
    edit(&mut cfg);
    std::fs::write(&cfg_path, cfg.to_string()).unwrap();
    let out = tmp(&format!("case7-{tag}.eddy"));
    let o = eddy(&["convert", dir.to_str().unwrap(), "-o", out.to_str().unwrap()]);
    assert!(o.status.success() || !out.exists(), "no output on failure");
    o
}

#[test]
fn case7_config_and_checkpoint_disagreements_are_refused() {
    let o = convert_edited("mamba-tiny-tied", "layers", |c| c["num_hidden_layers"] = 1.into());
    assert_clean_error(&o, "`num_hidden_layers` = 1, but the checkpoint has tensor `backbone.layers.1.");
    for (tag, value) in [("abc", serde_json::json!("abc")), ("null", serde_json::Value::Null)] {
        let o = convert_edited("mamba-tiny-tied", tag, |c| c["layer_norm_epsilon"] = value);
        assert_clean_error(&o, "`layer_norm_epsilon`");
    }
    let o = convert_edited("mamba-tiny-tied", "negative", |c| c["layer_norm_epsilon"] = (-1e-5).into());
    assert_clean_error(&o, "must be positive");
}

#[test]
fn case7_values_that_overflow_in_conversion_are_refused_by_name() {
    // A_log = 65504 (the f16 maximum) is finite; A = -exp(A_log) is not.
    let dir = tmp("case7-alog");
    copy_fixture("mamba-tiny-tied", &dir);
    let st = dir.join("model.safetensors");
    let mut bytes = std::fs::read(&st).unwrap();
    let header_len = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    let header: serde_json::Value = serde_json::from_slice(&bytes[8..8 + header_len]).unwrap();
    let name = "backbone.layers.0.mixer.A_log";
    assert_eq!(header[name]["dtype"], "F32");
    let begin = 8 + header_len + header[name]["data_offsets"][0].as_u64().unwrap() as usize;
    bytes[begin..begin + 4].copy_from_slice(&65504f32.to_le_bytes());
    std::fs::write(&st, bytes).unwrap();
    let out = tmp("case7-alog.eddy");
    let o = eddy(&["convert", dir.to_str().unwrap(), "-o", out.to_str().unwrap()]);
    assert_clean_error(
        &o,
        "`backbone.layers.0.mixer.A_log` (eddy `layers.0.A`) has NaN or infinite values after conversion",
    );
}

#[test]
fn case8_errors_say_what_happened_once() {
    let out = tmp("case8.eddy");
    let o = eddy(&["convert", "/nonexistent", "-o", out.to_str().unwrap()]);
    assert_clean_error(&o, "config.json");
    assert_eq!(stderr(&o).matches("os error").count(), 1, "{}", stderr(&o));
    // An unreadable (not missing) config.json is not "no such file".
    let dir = tmp("case8-dir");
    copy_fixture("mamba-tiny-tied", &dir);
    std::fs::remove_file(dir.join("config.json")).unwrap();
    std::fs::create_dir(dir.join("config.json")).unwrap();
    let o = eddy(&["convert", dir.to_str().unwrap(), "-o", out.to_str().unwrap()]);
    assert_clean_error(&o, "not a regular file (a directory)");
    // An RWKV-7 checkpoint without its marker tensor names the tensor.
    let rwkv = tmp("case8-rwkv");
    copy_fixture("rwkv7-tiny", &rwkv);
    let _ = std::fs::remove_file(rwkv.join("config.json"));
    let st = rwkv.join("model.safetensors");
    let mut bytes = std::fs::read(&st).unwrap();
    let header_end = 8 + u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    let key = b"\"blocks.0.att.r_k\"";
    let at = bytes[..header_end].windows(key.len()).position(|w| w == key).unwrap();
    bytes[at + key.len() - 2] = b'X'; // same length: offsets stay valid
    std::fs::write(&st, bytes).unwrap();
    let o = eddy(&["convert", rwkv.to_str().unwrap(), "-o", out.to_str().unwrap()]);
    assert_clean_error(&o, "blocks.0.att.r_k");
    // A context length beyond u32 is too long, not "not positive".
    let m = converted("mamba-tiny-tied", "case8");
    assert_clean_error(&eddy(&["memory", m.to_str().unwrap(), "--ctx", "4294967296000"]), "too long");
    // A negative epsilon is the config's fault, not an internal error.
    let o = convert_edited("mamba-tiny-tied", "case8-eps", |c| c["layer_norm_epsilon"] = (-1.0).into());
    assert!(!stderr(&o).contains("internal error"), "{}", stderr(&o));
}

#[test]
fn case9_override_rules_that_match_nothing_or_are_not_globs_are_errors() {
    let m = converted("mamba-tiny-tied", "case9");
    let out = tmp("case9-q.eddy");
    for (rule, needle) in
        [("[=w4g64", "only `*` is special"), ("=w4g64", "not understood"), ("*.A=w4g64", "matches no matrix")]
    {
        let o = eddy(&[
            "quantize",
            m.to_str().unwrap(),
            "-o",
            out.to_str().unwrap(),
            "--recipe",
            "w4a8",
            "--set",
            rule,
        ]);
        assert_clean_error(&o, needle);
        assert!(!out.exists());
    }
    let o = eddy(&[
        "quantize",
        m.to_str().unwrap(),
        "-o",
        out.to_str().unwrap(),
        "--recipe",
        "w4a8",
        "--set",
        "*.in_proj.weight=w8g64",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
}

/// Peak resident memory (kB) of `eddy args` as GNU time reports it.
fn peak_rss_kb(args: &[&str]) -> Option<u64> {
    let o = Command::new("/usr/bin/time").arg("-v").arg(bin()).args(args).output().ok()?;
    assert!(o.status.success(), "{}", stderr(&o));
    stderr(&o)
        .lines()
        .find_map(|l| l.trim().strip_prefix("Maximum resident set size (kbytes): "))
        .and_then(|v| v.trim().parse().ok())
}

#[test]
fn case10_eval_memory_does_not_grow_with_the_text() {
    if !Path::new("/usr/bin/time").exists() {
        eprintln!("skipped: /usr/bin/time (GNU time) is not installed");
        return;
    }
    let m = converted("mamba-tiny-tied", "case10");
    let sentence = "The quick brown fox jumps over the lazy dog, again and again. ";
    let small = tmp("case10-small.txt");
    let large = tmp("case10-large.txt");
    std::fs::write(&small, sentence.repeat(2_000)).unwrap(); // 124 kB
    std::fs::write(&large, sentence.repeat(40_000)).unwrap(); // 2.5 MB
    let rss = |text: &Path| {
        peak_rss_kb(&["eval", m.to_str().unwrap(), "--ppl", text.to_str().unwrap(), "--limit", "64"]).unwrap()
    };
    let (a, b) = (rss(&small), rss(&large));
    // Reading the whole text costs ~150 bytes per byte: 350 MB here.
    assert!(b < a + 30_000, "peak RSS {a} kB for 124 kB of text, {b} kB for 2.5 MB");
}

#[test]
fn eval_in_pieces_scores_the_same_tokens_as_the_whole_text() {
    let m = converted("mamba-tiny-tied", "pieces");
    let mapped = eddy::MappedModel::open(&m).unwrap();
    let model = mapped.model().unwrap();
    let codec = eddy_cli::text::TextCodec::from_json(model.tokenizer_json().unwrap()).unwrap();
    let text: String = (0..3000).map(|i| format!("word{} and, {}  more\n", i % 17, i % 5)).collect();
    let whole = codec.encode(&text).unwrap();
    let mut pieces = eddy_cli::text::TextPieces::new(text.as_bytes(), 1000);
    let mut streamed = Vec::new();
    while let Some(p) = pieces.next_piece().unwrap() {
        streamed.extend(codec.encode(&p).unwrap());
    }
    assert_eq!(streamed, whole);
    let vocab = model.vocab_size() as u32;
    let ids: Vec<u32> = whole.iter().map(|&t| t % vocab).take(300).collect();
    let reference = eddy_cli::eval::perplexity_in_windows(&model, &ids, 64, 100, |_| {}).unwrap();
    let mut scorer = eddy_cli::eval::StreamScorer::new(&model, 7, 100).unwrap();
    for part in ids.chunks(13) {
        scorer.push(part, &mut |_, _| true).unwrap();
    }
    let streamed = scorer.finish(&mut |_, _| true).unwrap();
    assert_eq!(streamed.predicted, reference.predicted);
    assert!((streamed.mean_nll - reference.mean_nll).abs() < 1e-9);
}
