//! The `.eddy` reader and writer on valid files (layout:
//! `runtime/FORMAT.md`), and the fuzzers' seed corpus. Malformed files are
//! in `file_format_header.rs`, `file_format_structure.rs` and
//! `file_format_model.rs`; every one must give a typed error, never a panic.

use eddy::file::{compute_checksum, AlignedBytes, DATA_ALIGN, MAGIC, MAX_DIMS, VERSION};
use eddy::mamba::{tensor_schema, Mamba1Config};
use eddy::schema::TensorKind;
use eddy::writer::FileBuilder;
use eddy::{Architecture, BlobKind, EddyFile, HParam, Model, ModelError, Session, TensorFormat};

mod common;
use common::*;

// ---------------------------------------------------------------------------
// Valid files
// ---------------------------------------------------------------------------

#[test]
fn valid_file_parses_and_loads() {
    let bytes = tiny();
    let a = AlignedBytes::copy_from(&bytes);
    let f = EddyFile::parse(a.as_slice()).unwrap();
    assert_eq!(f.architecture(), Architecture::Mamba1);
    assert_eq!(f.len(), bytes.len());
    assert!(!f.is_empty());
    assert_eq!(f.hparam(HParam::VocabSize), Some(TINY.vocab_size));
    assert_eq!(f.hparam(HParam::NormEps), Some(1e-5f32.to_bits()));
    assert_eq!(f.hparam(HParam::BosToken), None);
    let sch = schema(&TINY);
    assert_eq!(f.tensor_count() as usize, sch.len());
    let ts = tensors(&TINY, 1, false);
    for (i, (t, (name, shape, _))) in f.tensors().zip(&sch).enumerate() {
        assert_eq!(t.name, name);
        assert_eq!(t.shape(), &shape[..]);
        assert_eq!(t.format, TensorFormat::F32);
        assert_eq!(t.data, &ts[i].data[..]);
        assert_eq!(t.data.as_ptr() as usize % DATA_ALIGN, 0);
        assert_eq!(t.as_f32().unwrap().len() as u64, t.numel());
        assert!(t.as_f16_bits().is_none());
    }
    let (found, dup) = f.find_tensor("layers.1.A");
    assert_eq!(found.unwrap().shape(), &[TINY.d_inner, TINY.d_state]);
    assert!(!dup);
    assert!(f.find_tensor("nope").0.is_none());
    assert_eq!(f.blob_count(), 0);

    let m = Model::from_bytes(a.as_slice()).unwrap();
    assert_eq!(m.architecture(), Architecture::Mamba1);
    assert_eq!(m.vocab_size(), TINY.vocab_size as usize);
    assert!(m.tokenizer_json().is_none());
    let cfg = Mamba1Config::from_file(m.file()).unwrap();
    let scan = eddy::ScanShape { channels: TINY.d_inner as usize, d_state: TINY.d_state as usize };
    assert_eq!(m.offload_scan_shape(), Some(scan));
    assert_eq!(cfg.d_inner, TINY.d_inner);
    assert!(cfg.conv_bias && !cfg.proj_bias && !cfg.tied_embeddings);
    let mut s = Session::new_owned(&m);
    let logits = s.step(0).unwrap();
    assert_eq!(logits.len(), TINY.vocab_size as usize);
    assert!(logits.iter().all(|v| v.is_finite()));
}

#[test]
fn model_variants_load() {
    for (tied, proj_bias, conv_bias) in
        [(true, false, false), (false, true, false), (true, true, true), (false, false, false)]
    {
        let hp = Mamba1Config { tied_embeddings: tied, proj_bias, conv_bias, ..TINY };
        let bytes = build(&hp, 7);
        let a = AlignedBytes::copy_from(&bytes);
        let m = Model::from_bytes(a.as_slice()).unwrap_or_else(|e| panic!("{hp:?}: {e}"));
        let mut s = Session::new_owned(&m);
        assert!(s.prefill(&[1, 2, 3]).unwrap().iter().all(|v| v.is_finite()));
    }
    // d_conv = 1 (no conv window) and a single layer.
    let hp = Mamba1Config { d_conv: 1, n_layer: 1, ..TINY };
    let bytes = build(&hp, 8);
    let a = AlignedBytes::copy_from(&bytes);
    let m = Model::from_bytes(a.as_slice()).unwrap();
    assert!(Session::new_owned(&m).step(4).is_ok());
}

#[test]
fn test_schema_agrees_with_runtime_schema() {
    for hp in [TINY, Mamba1Config { tied_embeddings: true, proj_bias: true, conv_bias: false, ..TINY }] {
        let mut specs = Vec::new();
        tensor_schema(&hp, &mut |s| specs.push(s));
        let ours = schema(&hp);
        assert_eq!(specs.len(), ours.len());
        for (s, (name, shape, f32_only)) in specs.iter().zip(&ours) {
            let expect_name = match s.layer {
                Some(l) => s.pattern.replace("{i}", &l.to_string()),
                None => s.pattern.to_string(),
            };
            assert_eq!(&expect_name, name);
            let cols = *shape.last().unwrap() as u64;
            let rows: u64 = shape[..shape.len() - 1].iter().map(|&d| d as u64).product();
            assert_eq!((s.rows, s.cols), (rows, cols), "{name}");
            assert_eq!(s.kind == TensorKind::F32, *f32_only, "{name}");
        }
    }
}

#[test]
fn writer_layout_matches_format_doc() {
    let mut b = builder_with(&TINY, tensors(&TINY, 3, true));
    b.blob(BlobKind::TokenizerJson, b"{\"model\":{}}".to_vec());
    b.blob(BlobKind::Unknown(77), vec![9; 70]);
    let bytes = b.to_bytes();
    assert_eq!(&bytes[0..4], &MAGIC);
    assert_eq!(&bytes[0..4], b"EDDY");
    assert_eq!(u16::from_le_bytes([bytes[4], bytes[5]]), VERSION);
    assert_eq!(VERSION, 1);
    assert_eq!(u16::from_le_bytes([bytes[6], bytes[7]]), 64);
    assert_eq!(rd64(&bytes, 8), bytes.len() as u64);
    assert_eq!(bytes.len() % DATA_ALIGN, 0);
    assert_eq!(rd32(&bytes, 20), 1, "architecture code of Mamba-1");
    let nh = rd32(&bytes, 24) as usize;
    let nt = rd32(&bytes, 28) as usize;
    assert_eq!(nh, 11);
    assert_eq!(nt, schema(&TINY).len());
    assert_eq!(rd32(&bytes, 32), 2);
    let strings_len = rd32(&bytes, 36) as usize;
    let data_offset = rd64(&bytes, 40) as usize;
    assert!(bytes[48..64].iter().all(|&x| x == 0));
    let strings = strings_start(&bytes);
    assert_eq!(strings, 64 + nh * 8 + nt * 64 + 2 * 32);
    assert_eq!(data_offset, (strings + strings_len).div_ceil(64) * 64);

    // Checksum: CRC-32/IEEE over [0, file_len) with the field read as zero.
    let mut zeroed = bytes.clone();
    wr32(&mut zeroed, 16, 0);
    assert_eq!(rd32(&bytes, 16), crc32_ieee(&zeroed));
    assert_eq!(rd32(&bytes, 16), compute_checksum(&bytes));
    assert_eq!(crc32_ieee(b"123456789"), 0xCBF4_3926);

    // Hyper-parameters: (key, value) pairs in the order they were set.
    assert_eq!((rd32(&bytes, 64), rd32(&bytes, 68)), (1, TINY.vocab_size));
    assert_eq!(rd32(&bytes, 64 + 7 * 8), 8);
    assert_eq!(rd32(&bytes, 64 + 7 * 8 + 4), 1e-5f32.to_bits());

    // Tensor entries.
    let mut prev_end = data_offset as u64;
    for (i, (name, shape, f32_only)) in schema(&TINY).iter().enumerate() {
        let e = tensor_entry(&bytes, i);
        let (noff, nlen) = (rd32(&bytes, e) as usize, rd32(&bytes, e + 4) as usize);
        assert_eq!(&bytes[strings + noff..strings + noff + nlen], name.as_bytes());
        let code = rd32(&bytes, e + 8);
        assert_eq!(code, if *f32_only { 0 } else { 1 });
        assert_eq!(rd32(&bytes, e + 12), 0);
        assert_eq!(rd32(&bytes, e + 16) as usize, shape.len());
        for d in 0..MAX_DIMS {
            assert_eq!(rd32(&bytes, e + 20 + 4 * d), shape.get(d).copied().unwrap_or(0));
        }
        assert_eq!(rd32(&bytes, e + 36), 0);
        let (off, len) = (rd64(&bytes, e + 40), rd64(&bytes, e + 48));
        let numel: u64 = shape.iter().map(|&d| d as u64).product();
        assert_eq!(len, numel * if code == 0 { 4 } else { 2 });
        assert_eq!(rd64(&bytes, e + 56), 0);
        assert_eq!(off % 64, 0);
        assert!(off >= prev_end);
        prev_end = off + len;
    }
    // Blob entries come after all tensors.
    for (i, (kind, len)) in [(1u32, 12u64), (77, 70)].into_iter().enumerate() {
        let e = blob_entry(&bytes, i);
        assert_eq!(rd32(&bytes, e), kind);
        assert_eq!(rd32(&bytes, e + 4), 0);
        let off = rd64(&bytes, e + 8);
        assert_eq!(off % 64, 0);
        assert!(off >= prev_end);
        assert_eq!(rd64(&bytes, e + 16), len);
        assert_eq!(rd64(&bytes, e + 24), 0);
        prev_end = off + len;
    }

    let a = AlignedBytes::copy_from(&bytes);
    let m = Model::from_bytes(a.as_slice()).unwrap();
    assert_eq!(m.tokenizer_json(), Some(&b"{\"model\":{}}"[..]));
    let f = m.file();
    assert_eq!(f.blob_count(), 2);
    assert_eq!(f.blob_at(1), Some((BlobKind::Unknown(77), &[9u8; 70][..])));
    assert_eq!(f.blob_at(2), None);
    assert_eq!(f.blob(BlobKind::QuantReport), None);
    assert_eq!(BlobKind::from_code(2), BlobKind::QuantReport);
    assert_eq!(f.tensor_at(1).unwrap().format, TensorFormat::F32);
    assert_eq!(f.tensor_at(2).unwrap().format, TensorFormat::F16);
    assert!(f.tensor_at(2).unwrap().as_f16_bits().is_some());
    assert!(f.tensor_at(f.tensor_count()).is_none());
}

#[test]
fn trailing_bytes_after_file_len_are_ignored() {
    let mut bytes = tiny();
    let n = bytes.len();
    bytes.extend_from_slice(&[0xA5; 200]);
    let a = AlignedBytes::copy_from(&bytes);
    let f = EddyFile::parse(a.as_slice()).unwrap();
    assert_eq!(f.len(), n);
    assert!(Model::from_bytes(a.as_slice()).is_ok());
}

#[test]
fn empty_model_file_parses_but_is_not_a_model() {
    let mut b = FileBuilder::new(Architecture::Mamba1);
    b.hparam(HParam::VocabSize, 4);
    let bytes = b.to_bytes();
    assert_eq!(bytes.len(), 128);
    assert_eq!(parse(&bytes), Ok(()));
    assert!(matches!(load(&bytes), Err(ModelError::MissingHParam(_))));
    let bytes = builder_with(&TINY, Vec::new()).to_bytes();
    assert_eq!(load(&bytes), Err(ModelError::MissingTensor { name: "embed.weight", layer: None }));
}

// ---------------------------------------------------------------------------
// Fuzzing seeds
// ---------------------------------------------------------------------------

/// The seed corpus of `fuzz/`: small valid files covering the schema
/// variants, formats and blobs.
fn fuzz_seeds() -> Vec<(&'static str, Vec<u8>)> {
    let mini_tied =
        Mamba1Config { tied_embeddings: true, proj_bias: true, conv_bias: false, n_layer: 1, ..MINI };
    let mini_conv1 = Mamba1Config { d_conv: 1, n_layer: 1, ..MINI };
    let mini_quant = Mamba1Config { d_model: 32, d_inner: 32, n_layer: 1, ..MINI };
    let mut with_blobs = builder_with(&mini_tied, tensors(&mini_tied, 3, true));
    with_blobs.blob(BlobKind::TokenizerJson, br#"{"model":{"vocab":{}}}"#.to_vec());
    with_blobs.blob(BlobKind::QuantReport, b"{}".to_vec());
    vec![
        ("seed-mini-f32.eddy", build(&MINI, 1)),
        ("seed-mini-f16.eddy", builder_with(&MINI, tensors(&MINI, 2, true)).to_bytes()),
        ("seed-tied-bias-blobs.eddy", with_blobs.to_bytes()),
        ("seed-conv1.eddy", build(&mini_conv1, 4)),
        ("seed-quantized.eddy", builder_with(&mini_quant, quantized_tensors(&mini_quant, 5)).to_bytes()),
    ]
}

/// The committed seeds must stay valid models, or the fuzzers start from
/// files the reader rejects at once. After a format change, regenerate them:
/// `EDDY_WRITE_FUZZ_SEEDS=1 cargo test -p eddy --test file_format fuzz_seeds`.
#[test]
fn fuzz_seeds_are_valid_models() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/corpus");
    let write = std::env::var_os("EDDY_WRITE_FUZZ_SEEDS").is_some();
    for (name, bytes) in fuzz_seeds() {
        assert!(bytes.len() < 8192, "{name}: {} bytes", bytes.len());
        assert!(load(&bytes).is_ok(), "{name}");
        for target in ["from_bytes", "from_bytes_nochecksum"] {
            let path = root.join(target).join(name);
            if write {
                std::fs::create_dir_all(path.parent().unwrap()).unwrap();
                std::fs::write(&path, &bytes).unwrap();
            } else if let Ok(committed) = std::fs::read(&path) {
                assert!(
                    load(&committed).is_ok(),
                    "{} no longer loads: regenerate with \
                     EDDY_WRITE_FUZZ_SEEDS=1 cargo test -p eddy --test file_format fuzz_seeds",
                    path.display()
                );
            }
        }
    }
}

#[test]
fn state_size_arithmetic_is_checked() {
    // `state_words` runs before the tensors are checked, on raw header
    // values; it must report overflow rather than panic or wrap (with 32-bit
    // `usize` even in-range hyper-parameters overflow).
    let cfg = Mamba1Config {
        vocab_size: u32::MAX,
        d_model: u32::MAX,
        n_layer: u32::MAX,
        d_state: u32::MAX,
        d_conv: 64,
        d_inner: u32::MAX,
        dt_rank: u32::MAX,
        norm_eps: 1e-5,
        tied_embeddings: false,
        proj_bias: false,
        conv_bias: false,
    };
    assert_eq!(cfg.state_words(), None);
    let small = Mamba1Config { n_layer: 3, d_state: 16, d_conv: 4, d_inner: 10, ..cfg };
    assert_eq!(small.state_words(), Some(3 * 10 * (3 + 16)));
}
