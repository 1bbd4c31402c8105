//! Broken GGUF files are clear errors, never panics: every truncation of a
//! real file, and real files whose header lies (counts, offsets, types,
//! architecture, keys), rewritten by a small GGUF writer below.

use eddy_cli::convert::gguf::reader::{parse, GgufError, GgufHeader, MetaValue};
use eddy_cli::convert::gguf::{convert_bytes_into, GgufWeights};
use eddy_cli::convert::{ConvertError, WeightDtype};
use eddy_tests::fixture_dir;
use std::io::Cursor;

fn fixture() -> Vec<u8> {
    std::fs::read(fixture_dir("gguf").join("mamba-tiny-tied.f32.gguf")).unwrap()
}

fn convert(bytes: &[u8]) -> Result<(), ConvertError> {
    convert_bytes_into(bytes, WeightDtype::F32, GgufWeights::Keep, Cursor::new(Vec::new())).map(|_| ())
}

fn put_str(out: &mut Vec<u8>, s: &str) {
    out.extend((s.len() as u64).to_le_bytes());
    out.extend(s.as_bytes());
}

fn put_value(out: &mut Vec<u8>, v: &MetaValue) {
    match v {
        MetaValue::UInt(x) => out.extend(x.to_le_bytes()),
        MetaValue::Int(x) => out.extend(x.to_le_bytes()),
        MetaValue::Float(x) => out.extend(x.to_le_bytes()),
        MetaValue::Bool(b) => out.push(*b as u8),
        MetaValue::Str(s) => put_str(out, s),
        MetaValue::Array(items) => {
            out.extend(type_code(items.first().unwrap_or(&MetaValue::UInt(0))).to_le_bytes());
            out.extend((items.len() as u64).to_le_bytes());
            items.iter().for_each(|i| put_value(out, i));
        }
    }
}

/// Written as 64-bit (u64, i64, f64) so one code per variant.
fn type_code(v: &MetaValue) -> u32 {
    match v {
        MetaValue::UInt(_) => 10,
        MetaValue::Int(_) => 11,
        MetaValue::Float(_) => 12,
        MetaValue::Bool(_) => 7,
        MetaValue::Str(_) => 8,
        MetaValue::Array(_) => 9,
    }
}

/// A GGUF file with `h`'s metadata and tensor table (offsets relative to
/// the data, as given) followed by `data`.
fn write(h: &GgufHeader, data_start: u64, data: &[u8]) -> Vec<u8> {
    let mut out = b"GGUF".to_vec();
    out.extend(3u32.to_le_bytes());
    out.extend((h.tensors.len() as u64).to_le_bytes());
    out.extend((h.metadata.len() as u64).to_le_bytes());
    for (k, v) in &h.metadata {
        put_str(&mut out, k);
        out.extend(type_code(v).to_le_bytes());
        put_value(&mut out, v);
    }
    for t in &h.tensors {
        put_str(&mut out, &t.name);
        out.extend((t.dims.len() as u32).to_le_bytes());
        t.dims.iter().for_each(|d| out.extend(d.to_le_bytes()));
        out.extend(t.type_code.to_le_bytes());
        out.extend((t.offset - data_start).to_le_bytes());
    }
    while out.len() % 32 != 0 {
        out.push(0);
    }
    out.extend(data);
    out
}

/// The fixture's header and data, ready to be changed and rewritten.
fn parts() -> (GgufHeader, u64, Vec<u8>) {
    let bytes = fixture();
    let h = parse(&bytes).unwrap();
    let start = h.tensors.iter().map(|t| t.offset).min().unwrap();
    (h, start, bytes[start as usize..].to_vec())
}

#[test]
fn rewriting_the_fixture_unchanged_converts() {
    let (h, start, data) = parts();
    let bytes = write(&h, start, &data);
    assert_eq!(parse(&bytes).unwrap().tensors.len(), h.tensors.len());
    convert(&bytes).expect("a faithful rewrite converts");
}

#[test]
fn every_truncation_is_an_error() {
    let bytes = fixture();
    let data_start = parse(&bytes).unwrap().tensors.iter().map(|t| t.offset).min().unwrap() as usize;
    // Every cut inside the header, then every 997th through the data.
    let cuts = (0..data_start).chain((data_start..bytes.len()).step_by(997));
    for cut in cuts {
        let err = convert(&bytes[..cut]).expect_err("a truncated file must not convert");
        let text = err.to_string();
        assert!(text.contains("truncated") || text.contains("GGUF"), "cut at {cut}: {text}");
    }
}

#[test]
fn a_wrong_magic_or_version_is_named() {
    let mut bytes = fixture();
    bytes[0] = b'X';
    assert!(matches!(parse(&bytes), Err(GgufError::BadMagic)));
    let mut bytes = fixture();
    bytes[4..8].copy_from_slice(&7u32.to_le_bytes());
    assert_eq!(parse(&bytes), Err(GgufError::UnsupportedVersion(7)));
}

#[test]
fn lying_counts_are_errors_not_allocations() {
    let mut bytes = fixture();
    bytes[8..16].copy_from_slice(&u64::MAX.to_le_bytes());
    assert!(matches!(parse(&bytes), Err(GgufError::Truncated { .. })), "tensor count");
    let mut bytes = fixture();
    bytes[16..24].copy_from_slice(&(u64::MAX / 2).to_le_bytes());
    assert!(parse(&bytes).is_err(), "metadata count");
    // An array that claims more items than the file has bytes.
    let (mut h, start, data) = parts();
    h.metadata.insert("x.list".into(), MetaValue::Array(vec![MetaValue::UInt(1)]));
    let mut bytes = write(&h, start, &data);
    let at = bytes.windows(6).position(|w| w == b"x.list").unwrap() + 6 + 4 + 4;
    bytes[at..at + 8].copy_from_slice(&u64::MAX.to_le_bytes());
    assert!(matches!(parse(&bytes), Err(GgufError::Truncated { .. })));
}

#[test]
fn a_tensor_past_the_end_or_misaligned_is_named() {
    let (mut h, start, data) = parts();
    h.tensors[1].offset += 1 << 30;
    let err = parse(&write(&h, start, &data)).unwrap_err();
    assert!(
        err.to_string().contains(&h.tensors[1].name) && err.to_string().contains("past the end"),
        "{err}"
    );
    let (mut h, start, data) = parts();
    h.tensors[1].offset += 4;
    let err = parse(&write(&h, start, &data)).unwrap_err();
    assert!(err.to_string().contains("alignment"), "{err}");
}

#[test]
fn an_unreadable_type_names_the_tensor() {
    let (mut h, start, data) = parts();
    let t = h.tensors.iter_mut().find(|t| t.name == "blk.0.ssm_in.weight").unwrap();
    t.type_code = 16; // IQ2_XXS
    let err = convert(&write(&h, start, &data)).unwrap_err().to_string();
    assert!(err.contains("blk.0.ssm_in.weight") && err.contains("cannot read"), "{err}");
}

#[test]
fn unknown_architecture_missing_key_and_missing_tensor_are_named() {
    let (mut h, start, data) = parts();
    h.metadata.insert("general.architecture".into(), MetaValue::Str("llama".into()));
    let err = convert(&write(&h, start, &data)).unwrap_err().to_string();
    assert!(err.contains("\"llama\"") && err.contains("mamba"), "{err}");

    let (mut h, start, data) = parts();
    h.metadata.remove("mamba.ssm.state_size");
    let err = convert(&write(&h, start, &data)).unwrap_err().to_string();
    assert!(err.contains("mamba.ssm.state_size"), "{err}");

    let (mut h, start, data) = parts();
    h.tensors.retain(|t| t.name != "blk.1.ssm_out.weight");
    let err = convert(&write(&h, start, &data)).unwrap_err().to_string();
    assert!(err.contains("blk.1.ssm_out.weight") && err.contains("layers.1.out_proj.weight"), "{err}");
}

#[test]
fn a_block_count_beyond_the_tensors_is_refused_before_planning() {
    let (mut h, start, data) = parts();
    h.metadata.insert("mamba.block_count".into(), MetaValue::UInt(4_000_000_000));
    let err = convert(&write(&h, start, &data)).unwrap_err().to_string();
    assert!(err.contains("mamba.block_count"), "{err}");
}

#[test]
fn a_file_that_is_not_gguf_is_named() {
    let path = std::env::temp_dir().join(format!("eddy-not-gguf-{}.txt", std::process::id()));
    std::fs::write(&path, b"hello").unwrap();
    let err = eddy_cli::convert::convert_dir(&path, WeightDtype::F32).unwrap_err().to_string();
    std::fs::remove_file(&path).unwrap();
    assert!(err.contains("not a GGUF file"), "{err}");
}

/// Random byte changes anywhere in the header (and a few in the data)
/// give an error or a file that loads, never a panic: a seeded, cheap
/// stand-in for the `gguf` fuzz target in every test run.
#[test]
fn random_byte_changes_never_panic() {
    let bytes = fixture();
    let header_len = parse(&bytes).unwrap().tensors.iter().map(|t| t.offset).min().unwrap() as usize;
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    for round in 0..400 {
        let mut mutated = bytes.clone();
        for _ in 0..1 + next() % 4 {
            let span = if round % 8 == 0 { mutated.len() } else { header_len };
            let at = (next() % span as u64) as usize;
            mutated[at] = next() as u8;
        }
        let result =
            convert_bytes_into(&mutated, WeightDtype::F32, GgufWeights::Keep, Cursor::new(Vec::new()));
        if let Ok((out, _)) = result {
            let file = eddy::file::AlignedBytes::copy_from(&out.into_inner());
            assert!(
                eddy::Model::from_bytes(file.as_slice()).is_ok(),
                "round {round}: converted file does not load"
            );
        }
    }
}

/// A pre-tokenizer eddy has not mapped converts the weights without a
/// tokenizer and says why; control tokens become special added tokens.
#[test]
fn tokenizer_rebuild_names_what_it_cannot_map_and_keeps_control_tokens() {
    let (mut h, start, data) = parts();
    h.metadata.insert("tokenizer.ggml.pre".into(), MetaValue::Str("llama-bpe".into()));
    let (_, summary) = convert_bytes_into(
        &write(&h, start, &data),
        WeightDtype::F32,
        GgufWeights::Keep,
        Cursor::new(Vec::new()),
    )
    .expect("the weights still convert");
    assert!(!summary.has_tokenizer);
    assert!(summary.notes.iter().any(|n| n.contains("\"llama-bpe\" is not mapped")), "{:?}", summary.notes);

    let (mut h, _, _) = parts();
    let MetaValue::Array(types) = h.metadata.get_mut("tokenizer.ggml.token_type").unwrap() else { panic!() };
    types[3] = MetaValue::Int(3);
    let json = eddy_cli::convert::gguf::tokenizer::rebuild(&h).unwrap();
    let json: serde_json::Value = serde_json::from_slice(&json).unwrap();
    let added = json["added_tokens"].as_array().unwrap();
    assert_eq!(added.len(), 1);
    assert_eq!((added[0]["id"].as_u64(), added[0]["special"].as_bool()), (Some(3), Some(true)));
}
