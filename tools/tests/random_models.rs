//! `eddy bench --random-model`: every family's random model is the file
//! `eddy convert` writes for the same config (then quantized), it loads and
//! runs, and every public shape is a config its converter accepts.

use eddy::arch::Architecture;
use eddy::file::{AlignedBytes, EddyFile};
use eddy::{Model, Session};
use eddy_cli::calibrate::CalibrationOptions;
use eddy_cli::convert::{convert_dir, WeightDtype};
use eddy_cli::quantize::quantize_model;
use eddy_cli::random::{build, Storage};
use eddy_cli::recipe::Recipe;
use eddy_cli::shapes::{public_shape_table, small_shapes, ShapeConfig, PUBLIC_SHAPES};
use safetensors::tensor::TensorView;
use safetensors::Dtype;
use std::collections::BTreeSet;

mod common;

use common::eddy;

const PLAIN: CalibrationOptions =
    CalibrationOptions { clip_search: false, activation_aware: false, gptq: false };

/// A file's architecture, header words, tensor table (name, shape,
/// format) and blobs: everything but the tensor values.
#[derive(Debug, PartialEq)]
struct Structure(Architecture, Vec<(u32, u32)>, Vec<(String, Vec<u32>, String)>, Vec<Vec<u8>>);

fn structure(bytes: &[u8]) -> Structure {
    let aligned = AlignedBytes::copy_from(bytes);
    let f = EddyFile::parse(aligned.as_slice()).expect("a valid file");
    let tensors =
        f.tensors().map(|t| (t.name.to_string(), t.shape().to_vec(), t.format.name().to_string())).collect();
    let blobs = (0..f.blob_count()).filter_map(|i| f.blob_at(i)).map(|(_, b)| b.to_vec()).collect();
    Structure(f.architecture(), f.hparams().collect(), tensors, blobs)
}

/// Write a checkpoint of `shape` (config.json and safetensors with the
/// converter's names and shapes, small finite values) and convert it.
fn converted(shape: &ShapeConfig, dir: &std::path::Path) -> Vec<u8> {
    let plan = shape.plan().unwrap();
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(dir.join("config.json"), shape.config.to_string()).unwrap();
    let tensors: Vec<(String, Vec<usize>, Vec<u8>)> = plan
        .specs()
        .iter()
        .map(|s| {
            let hf_shape = plan.hf_shape(s);
            let n: usize = hf_shape.iter().product();
            let data = (0..n).flat_map(|i| (((i % 7) as f32 - 3.0) * 0.01).to_le_bytes()).collect();
            (plan.hf_name(s), hf_shape, data)
        })
        .collect();
    let views =
        tensors.iter().map(|(n, s, d)| (n.clone(), TensorView::new(Dtype::F32, s.clone(), d).unwrap()));
    let st = safetensors::tensor::serialize(views, None).unwrap();
    std::fs::write(dir.join("model.safetensors"), st).unwrap();
    convert_dir(dir, WeightDtype::F32).unwrap().bytes
}

#[test]
fn every_family_builds_as_converted_and_runs() {
    let tmp = std::env::temp_dir().join(format!("eddy-random-{}", std::process::id()));
    let recipe = Recipe::preset("w2a8").unwrap();
    let w2a8 = Storage::Recipe(recipe.clone());
    let mut families = BTreeSet::new();
    for (family, shape) in small_shapes() {
        let plan = shape.plan().unwrap_or_else(|e| panic!("{family}: {e}"));
        assert_eq!(plan.architecture().name(), family);
        families.insert(plan.architecture().name());

        // Unquantized, the random file is the converted checkpoint's file
        // in everything but the values.
        let random = build(&plan, &Storage::Converted(WeightDtype::F32), 3).unwrap();
        let reference = converted(&shape, &tmp.join(family));
        assert_eq!(structure(random.bytes.as_slice()), structure(&reference), "{family}");

        // Quantized while generated, it holds the bytes `eddy quantize`
        // writes for the same f32 weights (the seed draws the same values).
        let quantized = build(&plan, &w2a8, 3).unwrap();
        let f32_model = Model::from_bytes(random.bytes.as_slice()).unwrap();
        let (requantized, _) = quantize_model(&f32_model, &recipe, None, 0, PLAIN, |_, _| {}).unwrap();
        let requantized = AlignedBytes::copy_from(&requantized);
        let q = EddyFile::parse(requantized.as_slice()).unwrap();
        let model = Model::from_bytes(quantized.bytes.as_slice()).unwrap();
        for t in model.file().tensors() {
            let (other, _) = q.find_tensor(t.name);
            let other = other.unwrap_or_else(|| panic!("{family}: {} missing", t.name));
            assert_eq!((t.format, t.data), (other.format, other.data), "{family}: {}", t.name);
        }

        // It loads and runs: prefill, then steps.
        let matrices = model.file().tensors().filter(|t| t.format.group_size().is_some()).count();
        assert!(matrices > 0, "{family}: nothing was quantized");
        let mut session = Session::new_owned(&model);
        let prompt: Vec<u32> = (0..9).map(|i| (i * 37) % 300).collect();
        session.prefill_chunked(&prompt, 4, false, |_, _| {}).unwrap();
        for t in [5, 6] {
            let logits = session.step(t).unwrap();
            assert_eq!(logits.len(), 300, "{family}");
            assert!(logits.iter().all(|v| v.is_finite()), "{family}: non-finite logits");
        }
    }
    let _ = std::fs::remove_dir_all(&tmp);
    let all: BTreeSet<&str> = Architecture::ALL.iter().map(|a| a.name()).collect();
    assert_eq!(families, all, "a family without a small shape");
}

#[test]
fn random_models_are_seeded() {
    let (_, shape) = small_shapes().swap_remove(1);
    let plan = shape.plan().unwrap();
    let storage = Storage::Converted(WeightDtype::F16);
    let a = build(&plan, &storage, 9).unwrap();
    let b = build(&plan, &storage, 9).unwrap();
    let c = build(&plan, &storage, 10).unwrap();
    assert_eq!(a.bytes.as_slice(), b.bytes.as_slice());
    assert_ne!(a.bytes.as_slice(), c.bytes.as_slice());
}

#[test]
fn every_public_shape_is_a_config_its_converter_accepts() {
    let mut names = BTreeSet::new();
    let mut families = BTreeSet::new();
    for s in PUBLIC_SHAPES {
        let plan = s.config().plan().unwrap_or_else(|e| panic!("{}: {e}", s.name));
        assert!(names.insert(s.name), "{} listed twice", s.name);
        assert!(plan.parameters() > 10_000_000, "{}", s.name);
        families.insert(plan.architecture().name());
    }
    let all: BTreeSet<&str> = Architecture::ALL.iter().map(|a| a.name()).collect();
    assert_eq!(families, all, "a family without a public shape");
    for required in [
        "mamba2-130m",
        "mamba2-780m",
        "lfm2-350m",
        "lfm2-1.2b",
        "rwkv7-0.1b",
        "rwkv7-0.4b",
        "gla-340m",
        "gated-deltanet-0.4b",
        "recurrentgemma-2b",
        "gru-50m",
        "lstm-50m",
        "rwkv4-169m",
    ] {
        assert!(names.contains(required), "{required} missing");
    }
    // The issue's published sizes, as the converter counts them.
    let params = |name: &str| {
        let s = PUBLIC_SHAPES.iter().find(|s| s.name == name).unwrap();
        s.config().plan().unwrap().parameters() as f64 / 1e6
    };
    assert!((params("mamba2-130m") - 129.0).abs() < 1.0);
    assert!((params("lfm2-350m") - 354.5).abs() < 1.0);
    assert!((params("recurrentgemma-2b") - 2682.9).abs() < 1.0);
}

#[test]
fn list_and_unknown_shape_name_every_shape_with_family_and_size() {
    let list = eddy(&["bench", "--random-model", "list"]);
    assert!(list.status.success());
    let listed = String::from_utf8(list.stdout).unwrap();
    assert_eq!(listed, public_shape_table());
    let unknown = eddy(&["bench", "--random-model", "mamba-7b"]);
    assert!(!unknown.status.success());
    let err = String::from_utf8(unknown.stderr).unwrap();
    assert!(err.contains("unknown shape `mamba-7b`"), "{err}");
    for s in PUBLIC_SHAPES {
        let family = s.config().plan().unwrap().architecture().name();
        let line = err.lines().find(|l| l.split_whitespace().next() == Some(s.name));
        let line = line.unwrap_or_else(|| panic!("{} not listed:\n{err}", s.name));
        assert!(line.contains(family) && line.contains("M params"), "{line}");
    }
}

#[test]
fn bench_runs_a_public_shape() {
    let args = ["bench", "--random-model", "gru-50m", "--recipe", "w2a8", "-p", "8", "-n", "2", "-r", "1"];
    let o = eddy(&[&args[..], &["--threads", "1", "--no-roofline", "--json"]].concat());
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let tests: Vec<&str> =
        v["results"].as_array().unwrap().iter().map(|r| r["test"].as_str().unwrap()).collect();
    assert_eq!(tests, ["pp8", "tg2"]);
    assert!(v["params"].as_u64().unwrap() > 50_000_000);
}

#[test]
fn matrices_quantized_a_block_of_rows_at_a_time_match_eddy_quantize() {
    // gru-50m's 10000 x 1024 embedding and head span ten generation blocks.
    let shape = PUBLIC_SHAPES.iter().find(|s| s.name == "gru-50m").unwrap().config();
    let plan = shape.plan().unwrap();
    let recipe = Recipe::preset("w4a8").unwrap();
    let f32_bytes = build(&plan, &Storage::Converted(WeightDtype::F32), 5).unwrap().bytes;
    let f32_model = Model::from_bytes(f32_bytes.as_slice()).unwrap();
    let (expected, _) = quantize_model(&f32_model, &recipe, None, 0, PLAIN, |_, _| {}).unwrap();
    let expected = AlignedBytes::copy_from(&expected);
    let expected = EddyFile::parse(expected.as_slice()).unwrap();
    let built = build(&plan, &Storage::Recipe(recipe), 5).unwrap().bytes;
    let built = EddyFile::parse(built.as_slice()).unwrap();
    assert_eq!(built.tensor_count(), expected.tensor_count());
    for t in built.tensors() {
        let other = expected.find_tensor(t.name).0.unwrap();
        assert!(t.format == other.format && t.data == other.data, "{}", t.name);
    }
}

/// `eddy memory --shape` sizes a shape from the header alone
/// (`ModelSizes`): for every family it equals the built model's own
/// state and scratch sizes, in every state format and cache setting.
#[test]
fn header_only_sizes_equal_the_loaded_models() {
    use eddy::{KvCacheOptions, KvFormat, ModelSizes, StateFormat};
    for (family, shape) in small_shapes() {
        let plan = shape.plan().unwrap();
        let built = build(&plan, &Storage::Converted(WeightDtype::F32), 1).unwrap();
        let header = eddy_cli::random::header_only(&plan).unwrap();
        let sizes = ModelSizes::from_file(EddyFile::parse(header.as_slice()).unwrap()).unwrap();
        let model = Model::from_bytes(built.bytes.as_slice()).unwrap();
        assert_eq!(sizes.kv_cache(), model.kv_cache(), "{family}");
        // A model without its tensors must not load as a runnable model.
        assert!(Model::from_bytes(header.as_slice()).is_err(), "{family}");
        let settings = match model.kv_cache() {
            None => vec![None],
            Some(_) => vec![None, Some(KvCacheOptions { format: KvFormat::F16, sinks: 2, window: 40 })],
        };
        for kv in settings {
            let (sizes, model) = match kv {
                None => (sizes, model),
                Some(kv) => (sizes.with_kv_cache(kv).unwrap(), model.with_kv_cache(kv).unwrap()),
            };
            for format in StateFormat::ALL {
                let m = model.with_state_format(format).unwrap();
                let what = format!("{family}, {format}, {kv:?}");
                assert_eq!(sizes.state_bytes(format).unwrap(), m.state_bytes(), "{what}");
                assert_eq!(sizes.scratch_bytes(format).unwrap(), m.scratch_bytes(), "{what}");
            }
        }
    }
}

#[test]
fn memory_sizes_every_public_shape() {
    for shape in eddy_cli::shapes::PUBLIC_SHAPES {
        let o = eddy(&["memory", "--shape", shape.name, "--json"]);
        assert!(o.status.success(), "{}: {}", shape.name, String::from_utf8_lossy(&o.stderr));
        let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
        let first = v["rows"][0]["bytes"][0].as_u64().unwrap();
        assert!(first > 0, "{}", shape.name);
    }
}
