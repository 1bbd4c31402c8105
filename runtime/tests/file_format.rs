//! The `.eddy` reader against valid and malformed files (layout:
//! `runtime/FORMAT.md`). Every malformed file must give a typed error, never
//! a panic. Structural corruptions are re-sealed with a correct checksum so
//! that the structural check, not the checksum, is what fires.

use eddy::file::{
    compute_checksum, AlignedBytes, BLOB_ENTRY_LEN, CHECKSUM_OFFSET, DATA_ALIGN, HEADER_LEN,
    HPARAM_ENTRY_LEN, MAGIC, MAX_BLOBS, MAX_DIMS, MAX_HPARAMS, MAX_STRINGS_LEN, MAX_TENSORS,
    TENSOR_ENTRY_LEN, VERSION,
};
use eddy::mamba::{tensor_schema, Mamba1Config};
use eddy::schema::TensorKind;
use eddy::writer::{FileBuilder, TensorData};
use eddy::{Architecture, BlobKind, EddyFile, FileError, HParam, Model, ModelError, Session, TensorFormat};
use eddy_quant::FormatError;

// ---------------------------------------------------------------------------
// Tiny Mamba-1 models
// ---------------------------------------------------------------------------

/// Hyper-parameters of a test model.
#[derive(Clone, Copy, Debug)]
struct Hp {
    vocab: u32,
    d_model: u32,
    n_layer: u32,
    d_state: u32,
    d_conv: u32,
    d_inner: u32,
    dt_rank: u32,
    tied: bool,
    proj_bias: bool,
    conv_bias: bool,
}

const TINY: Hp = Hp {
    vocab: 11,
    d_model: 8,
    n_layer: 2,
    d_state: 4,
    d_conv: 3,
    d_inner: 16,
    dt_rank: 2,
    tied: false,
    proj_bias: false,
    conv_bias: true,
};

/// A model small enough that every byte can be corrupted in turn.
const MINI: Hp = Hp {
    vocab: 5,
    d_model: 4,
    n_layer: 2,
    d_state: 2,
    d_conv: 2,
    d_inner: 4,
    dt_rank: 1,
    tied: false,
    proj_bias: false,
    conv_bias: true,
};

/// Deterministic xorshift64* generator (no dev-dependencies needed).
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Self {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// Uniform in [-0.5, 0.5).
    fn f32(&mut self) -> f32 {
        (self.next_u64() >> 40) as f32 / (1u64 << 24) as f32 - 0.5
    }
}

/// The canonical tensor list written independently of `eddy::mamba` (it is
/// what FORMAT.md documents): (name, shape, must be f32).
fn schema(hp: &Hp) -> Vec<(String, Vec<u32>, bool)> {
    let (v, dm, di, ds, dc, dr) = (hp.vocab, hp.d_model, hp.d_inner, hp.d_state, hp.d_conv, hp.dt_rank);
    let mut s = vec![("embed.weight".to_string(), vec![v, dm], false)];
    for i in 0..hp.n_layer {
        let p = |n: &str| format!("layers.{i}.{n}");
        s.push((p("norm.weight"), vec![dm], true));
        s.push((p("in_proj.weight"), vec![2 * di, dm], false));
        if hp.proj_bias {
            s.push((p("in_proj.bias"), vec![2 * di], true));
        }
        // Stored with the Hugging Face 3-D shape: rows = d_inner * 1.
        s.push((p("conv1d.weight"), vec![di, 1, dc], true));
        if hp.conv_bias {
            s.push((p("conv1d.bias"), vec![di], true));
        }
        s.push((p("x_proj.weight"), vec![dr + 2 * ds, di], false));
        s.push((p("dt_proj.weight"), vec![di, dr], false));
        s.push((p("dt_proj.bias"), vec![di], true));
        s.push((p("A"), vec![di, ds], true));
        s.push((p("D"), vec![di], true));
        s.push((p("out_proj.weight"), vec![dm, di], false));
        if hp.proj_bias {
            s.push((p("out_proj.bias"), vec![dm], true));
        }
    }
    s.push(("norm_f.weight".to_string(), vec![dm], true));
    if !hp.tied {
        s.push(("lm_head.weight".to_string(), vec![v, dm], false));
    }
    s
}

/// Random weights for every tensor of the schema, in canonical order.
/// Matrices are f16 when `f16_matrices`.
fn tensors(hp: &Hp, seed: u64, f16_matrices: bool) -> Vec<TensorData> {
    let mut rng = Rng::new(seed);
    schema(hp)
        .into_iter()
        .map(|(name, shape, f32_only)| {
            let n: u32 = shape.iter().product();
            let norm = name.ends_with("norm.weight") || name == "norm_f.weight";
            let values: Vec<f32> =
                (0..n).map(|_| if norm { 1.0 + 0.2 * rng.f32() } else { rng.f32() }).collect();
            if f16_matrices && !f32_only {
                TensorData::f16(name, &shape, &values)
            } else {
                TensorData::f32(name, &shape, &values)
            }
        })
        .collect()
}

/// A builder with the hyper-parameters of `hp` and the given tensors.
fn builder_with(hp: &Hp, ts: Vec<TensorData>) -> FileBuilder {
    let mut b = FileBuilder::new(Architecture::Mamba1);
    b.hparam(HParam::VocabSize, hp.vocab)
        .hparam(HParam::DModel, hp.d_model)
        .hparam(HParam::NLayer, hp.n_layer)
        .hparam(HParam::DState, hp.d_state)
        .hparam(HParam::DConv, hp.d_conv)
        .hparam(HParam::DInner, hp.d_inner)
        .hparam(HParam::DtRank, hp.dt_rank)
        .hparam_f32(HParam::NormEps, 1e-5)
        .hparam(HParam::TiedEmbeddings, hp.tied as u32)
        .hparam(HParam::ProjBias, hp.proj_bias as u32)
        .hparam(HParam::ConvBias, hp.conv_bias as u32);
    for t in ts {
        b.tensor(t).expect("valid test tensor");
    }
    b
}

fn build(hp: &Hp, seed: u64) -> Vec<u8> {
    builder_with(hp, tensors(hp, seed, false)).to_bytes()
}

// ---------------------------------------------------------------------------
// Raw access to the layout
// ---------------------------------------------------------------------------

fn rd32(b: &[u8], off: usize) -> u32 {
    u32::from_le_bytes(b[off..off + 4].try_into().unwrap())
}

fn rd64(b: &[u8], off: usize) -> u64 {
    u64::from_le_bytes(b[off..off + 8].try_into().unwrap())
}

fn wr16(b: &mut [u8], off: usize, v: u16) {
    b[off..off + 2].copy_from_slice(&v.to_le_bytes());
}

fn wr32(b: &mut [u8], off: usize, v: u32) {
    b[off..off + 4].copy_from_slice(&v.to_le_bytes());
}

fn wr64(b: &mut [u8], off: usize, v: u64) {
    b[off..off + 8].copy_from_slice(&v.to_le_bytes());
}

fn hparam_count(b: &[u8]) -> usize {
    rd32(b, 24) as usize
}

fn tensor_count(b: &[u8]) -> usize {
    rd32(b, 28) as usize
}

/// Byte offset of tensor table entry `i`.
fn tensor_entry(b: &[u8], i: usize) -> usize {
    HEADER_LEN + hparam_count(b) * HPARAM_ENTRY_LEN + i * TENSOR_ENTRY_LEN
}

/// Byte offset of blob table entry `i`.
fn blob_entry(b: &[u8], i: usize) -> usize {
    HEADER_LEN + hparam_count(b) * HPARAM_ENTRY_LEN + tensor_count(b) * TENSOR_ENTRY_LEN + i * BLOB_ENTRY_LEN
}

fn strings_start(b: &[u8]) -> usize {
    blob_entry(b, rd32(b, 32) as usize)
}

/// Recompute the checksum over `[0, file_len)` after an edit.
fn reseal(b: &mut [u8]) {
    let n = (rd64(b, 8) as usize).min(b.len());
    let crc = compute_checksum(&b[..n]);
    wr32(b, CHECKSUM_OFFSET, crc);
}

/// Bitwise CRC-32 (IEEE 802.3, reflected, polynomial 0xEDB88320), written
/// from the definition to check FORMAT.md's claim independently.
fn crc32_ieee(data: &[u8]) -> u32 {
    let mut c = !0u32;
    for &byte in data {
        c ^= byte as u32;
        for _ in 0..8 {
            c = if c & 1 != 0 { (c >> 1) ^ 0xEDB8_8320 } else { c >> 1 };
        }
    }
    !c
}

fn parse(bytes: &[u8]) -> Result<(), FileError> {
    let a = AlignedBytes::copy_from(bytes);
    EddyFile::parse(a.as_slice()).map(|_| ())
}

fn parse_nock(bytes: &[u8]) -> Result<(), FileError> {
    let a = AlignedBytes::copy_from(bytes);
    EddyFile::parse_without_checksum(a.as_slice()).map(|_| ())
}

fn load(bytes: &[u8]) -> Result<(), ModelError> {
    let a = AlignedBytes::copy_from(bytes);
    Model::from_bytes(a.as_slice()).map(|_| ())
}

/// Apply `edit` to a copy of `file`, re-seal, and parse. Also checks that the
/// unsealed edit gives the same error when the checksum is skipped, and that
/// `Model::from_bytes` reports it wrapped.
fn structural(file: &[u8], edit: impl Fn(&mut Vec<u8>)) -> FileError {
    let mut b = file.to_vec();
    edit(&mut b);
    let unsealed = parse_nock(&b);
    reseal(&mut b);
    let err = parse(&b).expect_err("corrupted file must be rejected");
    assert_eq!(unsealed, Err(err), "parse_without_checksum disagrees");
    assert_eq!(load(&b), Err(ModelError::File(err)));
    assert!(!err.to_string().is_empty());
    err
}

fn tiny() -> Vec<u8> {
    build(&TINY, 1)
}

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
    assert_eq!(f.hparam(HParam::VocabSize), Some(TINY.vocab));
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
    assert_eq!(m.vocab_size(), TINY.vocab as usize);
    assert!(m.tokenizer_json().is_none());
    let cfg = Mamba1Config::from_file(m.file()).unwrap();
    let scan = eddy::ScanShape { channels: TINY.d_inner as usize, d_state: TINY.d_state as usize };
    assert_eq!(m.offload_scan_shape(), Some(scan));
    assert_eq!(cfg.d_inner, TINY.d_inner);
    assert!(cfg.conv_bias && !cfg.proj_bias && !cfg.tied_embeddings);
    let mut s = Session::new_owned(&m);
    let logits = s.step(0).unwrap();
    assert_eq!(logits.len(), TINY.vocab as usize);
    assert!(logits.iter().all(|v| v.is_finite()));
}

#[test]
fn model_variants_load() {
    for (tied, proj_bias, conv_bias) in
        [(true, false, false), (false, true, false), (true, true, true), (false, false, false)]
    {
        let hp = Hp { tied, proj_bias, conv_bias, ..TINY };
        let bytes = build(&hp, 7);
        let a = AlignedBytes::copy_from(&bytes);
        let m = Model::from_bytes(a.as_slice()).unwrap_or_else(|e| panic!("{hp:?}: {e}"));
        let mut s = Session::new_owned(&m);
        assert!(s.prefill(&[1, 2, 3]).unwrap().iter().all(|v| v.is_finite()));
    }
    // d_conv = 1 (no conv window) and a single layer.
    let hp = Hp { d_conv: 1, n_layer: 1, ..TINY };
    let bytes = build(&hp, 8);
    let a = AlignedBytes::copy_from(&bytes);
    let m = Model::from_bytes(a.as_slice()).unwrap();
    assert!(Session::new_owned(&m).step(4).is_ok());
}

#[test]
fn test_schema_agrees_with_runtime_schema() {
    for hp in [TINY, Hp { tied: true, proj_bias: true, conv_bias: false, ..TINY }] {
        let cfg = Mamba1Config {
            vocab_size: hp.vocab,
            d_model: hp.d_model,
            n_layer: hp.n_layer,
            d_state: hp.d_state,
            d_conv: hp.d_conv,
            d_inner: hp.d_inner,
            dt_rank: hp.dt_rank,
            norm_eps: 1e-5,
            tied_embeddings: hp.tied,
            proj_bias: hp.proj_bias,
            conv_bias: hp.conv_bias,
        };
        let mut specs = Vec::new();
        tensor_schema(&cfg, &mut |s| specs.push(s));
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
    assert_eq!((rd32(&bytes, 64), rd32(&bytes, 68)), (1, TINY.vocab));
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
// Header errors
// ---------------------------------------------------------------------------

#[test]
fn truncation_at_every_length_is_an_error() {
    let bytes = build(&MINI, 2);
    for len in 0..bytes.len() {
        let prefix = &bytes[..len];
        let expected = FileError::Truncated {
            needed: if len < HEADER_LEN { HEADER_LEN as u64 } else { bytes.len() as u64 },
            got: len as u64,
        };
        assert_eq!(parse(prefix), Err(expected), "len {len}");
        assert_eq!(parse_nock(prefix), Err(expected), "len {len}");
        assert_eq!(load(prefix), Err(ModelError::File(expected)), "len {len}");
    }
    assert_eq!(parse(&bytes), Ok(()));
    // The bigger file too, at a coarser grid.
    let bytes = tiny();
    for len in (0..bytes.len()).step_by(7) {
        assert!(matches!(parse(&bytes[..len]), Err(FileError::Truncated { .. })), "len {len}");
    }
}

#[test]
fn wrong_magic() {
    let good = tiny();
    for (i, v) in [(0, b'e'), (1, 0), (3, b'Z')] {
        let mut b = good.clone();
        b[i] = v;
        assert_eq!(parse(&b), Err(FileError::BadMagic));
        reseal(&mut b);
        assert_eq!(parse(&b), Err(FileError::BadMagic));
    }
    let mut b = good.clone();
    b[..4].copy_from_slice(b"GGUF");
    assert_eq!(load(&b), Err(ModelError::File(FileError::BadMagic)));
}

#[test]
fn unsupported_versions() {
    for v in [0u16, 2, 3, 0x0100, u16::MAX] {
        let mut b = tiny();
        wr16(&mut b, 4, v);
        reseal(&mut b);
        assert_eq!(parse(&b), Err(FileError::UnsupportedVersion(v)));
        assert!(FileError::UnsupportedVersion(v).to_string().contains(&v.to_string()));
    }
}

#[test]
fn bad_header_len() {
    for l in [0u16, 32, 63, 65, 128, u16::MAX] {
        let mut b = tiny();
        wr16(&mut b, 6, l);
        reseal(&mut b);
        assert_eq!(parse(&b), Err(FileError::BadHeaderLen(l)));
    }
}

#[test]
fn misaligned_buffer() {
    let bytes = tiny();
    let mut padded = vec![0u8; 64];
    padded.extend_from_slice(&bytes);
    let a = AlignedBytes::copy_from(&padded);
    assert!(EddyFile::parse(&a.as_slice()[64..]).is_ok());
    for shift in [1usize, 2, 4, 8, 16, 32, 63] {
        // Same bytes at an address that is not 64-byte aligned.
        let mut buf = vec![0u8; shift];
        buf.extend_from_slice(&bytes);
        let al = AlignedBytes::copy_from(&buf);
        let s = &al.as_slice()[shift..];
        assert_eq!(s.as_ptr() as usize % 64, shift);
        assert_eq!(EddyFile::parse(s).err(), Some(FileError::MisalignedBuffer));
        assert_eq!(EddyFile::parse_without_checksum(s).err(), Some(FileError::MisalignedBuffer));
        assert_eq!(Model::from_bytes(s).err(), Some(ModelError::File(FileError::MisalignedBuffer)));
    }
}

#[test]
fn file_len_field() {
    let good = tiny();
    let n = good.len() as u64;
    // Larger than the buffer.
    let e = structural(&good, |b| wr64(b, 8, n + 64));
    assert_eq!(e, FileError::Truncated { needed: n + 64, got: n });
    let e = structural(&good, |b| wr64(b, 8, u64::MAX));
    assert!(matches!(e, FileError::Truncated { .. }));
    // Smaller than a header.
    for l in [0u64, 1, 63] {
        let e = structural(&good, |b| wr64(b, 8, l));
        assert_eq!(e, FileError::Truncated { needed: l, got: n });
    }
    // Shorter than the data: the tensors fall outside the file.
    let data_offset = rd64(&good, 40);
    let e = structural(&good, |b| wr64(b, 8, data_offset + 64));
    assert!(matches!(e, FileError::OutOfBounds { table: "tensor", .. }));
    // Shorter than the tables.
    let e = structural(&good, |b| wr64(b, 8, 128));
    assert_eq!(e, FileError::TablesOutOfBounds);
}

// ---------------------------------------------------------------------------
// Checksum
// ---------------------------------------------------------------------------

#[test]
fn checksum_mismatch_on_every_single_byte_flip() {
    let good = build(&MINI, 4);
    assert!(good.len() < 8192);
    let stored = rd32(&good, 16);
    for i in 0..good.len() {
        for mask in [0x01u8, 0x80, 0xFF] {
            let mut b = good.clone();
            b[i] ^= mask;
            let r = parse(&b);
            match i {
                0..=3 => assert_eq!(r, Err(FileError::BadMagic)),
                4..=5 => assert!(matches!(r, Err(FileError::UnsupportedVersion(_)))),
                6..=7 => assert!(matches!(r, Err(FileError::BadHeaderLen(_)))),
                // file_len: too long -> truncated; shorter -> checksum of a
                // different prefix, or shorter than a header.
                8..=15 => assert!(
                    matches!(r, Err(FileError::Truncated { .. } | FileError::ChecksumMismatch { .. })),
                    "byte {i}: {r:?}"
                ),
                _ => match r {
                    Err(FileError::ChecksumMismatch { stored: s, computed }) => {
                        assert_ne!(s, computed);
                        if !(16..20).contains(&i) {
                            assert_eq!(s, stored);
                            assert_eq!(computed, compute_checksum(&b));
                        }
                    }
                    other => panic!("byte {i} mask {mask:#x}: {other:?}"),
                },
            }
            assert!(load(&b).is_err());
        }
    }
}

#[test]
fn every_single_byte_flip_without_checksum_never_panics() {
    // Without the checksum, flips reach the structural checks and the model
    // loader; whatever they give must be a value, not a panic. A run that
    // loads must also step.
    let good = build(&MINI, 5);
    let mut loaded = 0;
    for i in 0..good.len() {
        for mask in [0x01u8, 0x10, 0x80, 0xFF] {
            let mut b = good.clone();
            b[i] ^= mask;
            let a = AlignedBytes::copy_from(&b);
            let Ok(f) = EddyFile::parse_without_checksum(a.as_slice()) else {
                continue;
            };
            for t in f.tensors() {
                assert!(t.data.len() as u64 <= f.len() as u64);
                let _ = (t.shape(), t.numel(), t.as_f32(), t.as_f16_bits());
            }
            if let Ok(m) = Model::from_file(f) {
                loaded += 1;
                let mut s = Session::new_owned(&m);
                s.step(0).unwrap();
            }
        }
    }
    // Flipped weights and padding still load.
    assert!(loaded > 100);
}

// ---------------------------------------------------------------------------
// Structural errors (re-sealed)
// ---------------------------------------------------------------------------

#[test]
fn reserved_fields_must_be_zero() {
    let mut bl = builder_with(&TINY, tensors(&TINY, 1, false));
    bl.blob(BlobKind::TokenizerJson, b"{}".to_vec());
    let good = bl.to_bytes();
    for off in 48..64 {
        assert_eq!(structural(&good, |b| b[off] = 1), FileError::ReservedNotZero, "header byte {off}");
    }
    for field in [36usize, 56, 60] {
        for i in [0usize, 5] {
            let e = structural(&good, |b| {
                let at = tensor_entry(b, i) + field;
                b[at] = 0x40;
            });
            assert_eq!(e, FileError::ReservedNotZero, "tensor {i} field {field}");
        }
    }
    for field in [4usize, 24, 31] {
        let e = structural(&good, |b| {
            let at = blob_entry(b, 0) + field;
            b[at] = 2;
        });
        assert_eq!(e, FileError::ReservedNotZero, "blob field {field}");
    }
}

#[test]
fn unknown_architecture() {
    for code in [0u32, 11, 99, u32::MAX] {
        let e = structural(&tiny(), |b| wr32(b, 20, code));
        assert_eq!(e, FileError::UnknownArchitecture(code));
    }
}

#[test]
fn too_many_entries() {
    let good = tiny();
    let cases = [
        (24usize, MAX_HPARAMS + 1, "hyper-parameter"),
        (24, u32::MAX, "hyper-parameter"),
        (28, MAX_TENSORS + 1, "tensor"),
        (28, u32::MAX, "tensor"),
        (32, MAX_BLOBS + 1, "blob"),
        (36, MAX_STRINGS_LEN + 1, "string"),
        (36, u32::MAX, "string"),
    ];
    for (off, count, table) in cases {
        let e = structural(&good, |b| wr32(b, off, count));
        assert_eq!(e, FileError::TooManyEntries { table, count });
    }
    // At the limits the counts are accepted, but the tables do not fit.
    for (off, count) in [(24usize, MAX_HPARAMS), (28, MAX_TENSORS), (32, MAX_BLOBS), (36, MAX_STRINGS_LEN)] {
        let e = structural(&good, |b| wr32(b, off, count));
        assert_eq!(e, FileError::TablesOutOfBounds, "offset {off}");
    }
}

#[test]
fn tables_and_data_area_bounds() {
    let good = tiny();
    let data_offset = rd64(&good, 40);
    let n = good.len() as u64;
    // Strings run into the data area start: data_offset < tables_end.
    let e = structural(&good, |b| {
        let sl = rd32(b, 36);
        wr32(b, 36, sl + 64)
    });
    assert_eq!(e, FileError::TablesOutOfBounds);
    for off in [0u64, 64, n + 64, !63u64] {
        let e = structural(&good, |b| wr64(b, 40, off));
        assert_eq!(e, FileError::TablesOutOfBounds, "data_offset {off}");
    }
    let e = structural(&good, |b| wr64(b, 40, data_offset + 4));
    assert_eq!(e, FileError::Misaligned { table: "data area", index: 0 });
    // A later data area start leaves tensor 0 before it.
    let e = structural(&good, |b| wr64(b, 40, data_offset + 64));
    assert_eq!(e, FileError::Overlap { table: "tensor", index: 0 });
    // A tensor count larger than the table really is: the extra entries are
    // read from the string table and the strings move past the data start.
    let e = structural(&good, |b| {
        let c = rd32(b, 28);
        wr32(b, 28, c + 2);
    });
    assert!(matches!(
        e,
        FileError::BadName { .. } | FileError::BadFormat { .. } | FileError::TablesOutOfBounds
    ));
}

#[test]
fn tensor_region_errors() {
    let good = tiny();
    let n = good.len() as u64;
    let off_of = |b: &[u8], i: usize| rd64(b, tensor_entry(b, i) + 40);

    // Overlap: tensor 1 starts where tensor 0 starts.
    let e = structural(&good, |b| {
        let o = off_of(b, 0);
        let at = tensor_entry(b, 1) + 40;
        wr64(b, at, o);
    });
    assert_eq!(e, FileError::Overlap { table: "tensor", index: 1 });
    // Out of order: swap the offsets of two tensors of equal length.
    let e = structural(&good, |b| {
        let (e4, e7) = (tensor_entry(b, 4), tensor_entry(b, 7));
        // layers.0.conv1d.bias and layers.0.dt_proj.bias: both d_inner f32.
        assert_eq!(rd64(b, e4 + 48), rd64(b, e7 + 48));
        let (o4, o7) = (rd64(b, e4 + 40), rd64(b, e7 + 40));
        wr64(b, e4 + 40, o7);
        wr64(b, e7 + 40, o4);
    });
    assert_eq!(e, FileError::Overlap { table: "tensor", index: 5 });
    // Out of bounds, with and without u64 overflow of offset + length.
    let last = tensor_count(&good) - 1;
    for off in [n, n + 640, (u64::MAX - 100) & !63] {
        let e = structural(&good, |b| {
            let at = tensor_entry(b, last) + 40;
            wr64(b, at, off)
        });
        assert_eq!(e, FileError::OutOfBounds { table: "tensor", index: last as u32 }, "offset {off}");
    }
    // Unaligned offsets.
    for delta in [1u64, 4, 32, 63] {
        let e = structural(&good, |b| {
            let o = off_of(b, 2);
            let at = tensor_entry(b, 2) + 40;
            wr64(b, at, o + delta)
        });
        assert_eq!(e, FileError::Misaligned { table: "tensor", index: 2 });
    }
}

#[test]
fn tensor_shape_errors() {
    let good = tiny();
    let set_dims = |ndim: u32, dims: [u32; 4]| {
        move |b: &mut Vec<u8>| {
            let e = tensor_entry(b, 2);
            wr32(b, e + 16, ndim);
            for (k, d) in dims.iter().enumerate() {
                wr32(b, e + 20 + 4 * k, *d);
            }
        }
    };
    let bad_shape = FileError::BadShape { index: 2 };
    assert_eq!(structural(&good, set_dims(0, [0; 4])), bad_shape);
    assert_eq!(structural(&good, set_dims(0, [8, 0, 0, 0])), bad_shape);
    assert_eq!(structural(&good, set_dims(5, [1, 1, 1, 1])), bad_shape);
    assert_eq!(structural(&good, set_dims(u32::MAX, [1; 4])), bad_shape);
    assert_eq!(structural(&good, set_dims(2, [0, 8, 0, 0])), bad_shape);
    assert_eq!(structural(&good, set_dims(2, [32, 0, 0, 0])), bad_shape);
    assert_eq!(structural(&good, set_dims(4, [32, 8, 1, 0])), bad_shape);
    // Unused dimensions must be zero.
    assert_eq!(structural(&good, set_dims(2, [32, 8, 1, 0])), bad_shape);
    assert_eq!(structural(&good, set_dims(1, [256, 0, 0, 7])), bad_shape);

    // Byte sizes that overflow u64.
    let overflow = FileError::BadFormat { index: 2, error: FormatError::SizeOverflow };
    assert_eq!(structural(&good, set_dims(4, [u32::MAX; 4])), overflow);
    assert_eq!(structural(&good, set_dims(3, [u32::MAX, u32::MAX, u32::MAX, 0])), overflow);
    assert_eq!(structural(&good, set_dims(2, [u32::MAX, u32::MAX, 0, 0])), overflow);
    // Large but representable sizes are a length mismatch.
    let e = structural(&good, set_dims(1, [u32::MAX, 0, 0, 0]));
    assert_eq!(e, FileError::LengthMismatch { index: 2, expected: 4 * u32::MAX as u64, stored: 32 * 8 * 4 });
    // An equivalent shape with the same element count is accepted by the
    // reader (the model loader checks rows x cols).
    let mut b = good.clone();
    set_dims(4, [2, 16, 1, 8])(&mut b);
    reseal(&mut b);
    assert_eq!(parse(&b), Ok(()));
    assert!(load(&b).is_ok());
    let mut b = good.clone();
    set_dims(2, [8, 32, 0, 0])(&mut b);
    reseal(&mut b);
    assert_eq!(parse(&b), Ok(()));
    assert!(matches!(
        load(&b),
        Err(ModelError::ShapeMismatch { name: "layers.{i}.in_proj.weight", layer: Some(0), .. })
    ));
}

#[test]
fn tensor_length_and_format_errors() {
    let good = tiny();
    let len_at = |b: &[u8]| tensor_entry(b, 1) + 48;
    let stored = rd64(&good, len_at(&good));
    for new in [0u64, stored - 4, stored + 4, stored * 2, u64::MAX] {
        let e = structural(&good, |b| {
            let at = len_at(b);
            wr64(b, at, new)
        });
        assert_eq!(e, FileError::LengthMismatch { index: 1, expected: stored, stored: new });
    }
    // Unknown format codes and bad parameters.
    for code in [99u32, 1000, u32::MAX] {
        let e = structural(&good, |b| {
            let at = tensor_entry(b, 1) + 8;
            wr32(b, at, code)
        });
        assert_eq!(e, FileError::BadFormat { index: 1, error: FormatError::UnknownFormat(code) });
    }
    for (code, param) in [(0u32, 1u32), (1, 64), (0, u32::MAX)] {
        let e = structural(&good, |b| {
            let at = tensor_entry(b, 1) + 8;
            wr32(b, at, code);
            wr32(b, at + 4, param);
        });
        assert_eq!(e, FileError::BadFormat { index: 1, error: FormatError::BadParameter { code, param } });
    }
    // Relabelling f32 data as f16 halves the needed length.
    let e = structural(&good, |b| {
        let at = tensor_entry(b, 1) + 8;
        wr32(b, at, 1)
    });
    assert_eq!(e, FileError::LengthMismatch { index: 1, expected: stored / 2, stored });

    // Integer group formats: the group must divide the columns, and the
    // parameter must be a supported group size. Tensor 2 is in_proj, 32 x 8.
    let e = structural(&good, |b| {
        let at = tensor_entry(b, 2) + 8;
        wr32(b, at, 2);
        wr32(b, at + 4, 32);
    });
    assert_eq!(e, FileError::BadFormat { index: 2, error: FormatError::RaggedGroup { cols: 8, group: 32 } });
    for (code, param) in [(2u32, 0u32), (3, 48), (4, 16), (4, 512)] {
        let e = structural(&good, |b| {
            let at = tensor_entry(b, 2) + 8;
            wr32(b, at, code);
            wr32(b, at + 4, param);
        });
        assert_eq!(e, FileError::BadFormat { index: 2, error: FormatError::BadParameter { code, param } });
    }
    // A W2 g32 view of a 4 x 256 shape needs 4 * 8 groups * (4 + 8) bytes.
    let e = structural(&good, |b| {
        let at = tensor_entry(b, 2);
        wr32(b, at + 8, 4);
        wr32(b, at + 12, 32);
        wr32(b, at + 20, 4);
        wr32(b, at + 24, 256);
    });
    assert_eq!(e, FileError::LengthMismatch { index: 2, expected: 4 * 8 * 12, stored: 1024 });
}

/// A matrix quantized row by row with the reference quantizer.
fn quantized(t: &TensorData, format: TensorFormat) -> TensorData {
    let values: Vec<f32> =
        t.data.chunks_exact(4).map(|c| f32::from_le_bytes(c.try_into().unwrap())).collect();
    let cols = *t.shape.last().unwrap() as usize;
    let row_bytes = format.byte_len(1, cols as u64).unwrap() as usize;
    let mut data = vec![0u8; values.len() / cols * row_bytes];
    for (row, out) in values.chunks_exact(cols).zip(data.chunks_exact_mut(row_bytes)) {
        eddy_quant::quantize_row(format, row, out).unwrap();
    }
    TensorData { name: t.name.clone(), format, shape: t.shape.clone(), data }
}

/// `hp`'s tensors with every matrix whose columns allow it stored in an
/// integer group format (W8, W4, W2 in turn, group 32).
fn quantized_tensors(hp: &Hp, seed: u64) -> Vec<TensorData> {
    let formats =
        [TensorFormat::W8 { group: 32 }, TensorFormat::W4 { group: 32 }, TensorFormat::W2 { group: 32 }];
    let f32_only: Vec<bool> = schema(hp).into_iter().map(|(_, _, f)| f).collect();
    let mut n = 0;
    tensors(hp, seed, false)
        .into_iter()
        .zip(f32_only)
        .map(|(t, f32_only)| {
            if !f32_only && t.shape.last().unwrap() % 32 == 0 {
                n += 1;
                quantized(&t, formats[n % 3])
            } else {
                t
            }
        })
        .collect()
}

#[test]
fn quantized_matrices_load() {
    let hp = Hp { d_model: 32, d_inner: 32, ..MINI };
    let bytes = builder_with(&hp, quantized_tensors(&hp, 9)).to_bytes();
    let a = AlignedBytes::copy_from(&bytes);
    let m = Model::from_bytes(a.as_slice()).unwrap();
    let formats: Vec<&str> = m.file().tensors().map(|t| t.format.name()).collect();
    for f in ["w8g32", "w4g32", "w2g32"] {
        assert!(formats.contains(&f), "{formats:?}");
    }
    let mut s = Session::new_owned(&m);
    assert!(s.prefill(&[0, 1, 2, 3, 4]).unwrap().iter().all(|v| v.is_finite()));
    // Integer formats are matrices only.
    let mut ts = tensors(&hp, 9, false);
    let i = ts.iter().position(|t| t.name == "layers.0.A").unwrap();
    let t = TensorData::f32("layers.0.A", &[hp.d_inner, 32], &vec![0.5; hp.d_inner as usize * 32]);
    ts[i] = quantized(&t, TensorFormat::W4 { group: 32 });
    let hp32 = Hp { d_state: 32, ..hp };
    let mut ts32 = tensors(&hp32, 9, false);
    ts32[i] = ts[i].clone();
    let err = load(&builder_with(&hp32, ts32).to_bytes()).unwrap_err();
    assert_eq!(err, ModelError::UnsupportedFormat { name: "layers.{i}.A", layer: Some(0), format: "w4g32" });
}

#[test]
fn tensor_name_errors() {
    let good = tiny();
    let strings_len = rd32(&good, 36);
    let bad = FileError::BadName { index: 3 };
    // Invalid UTF-8 inside the name.
    for byte in [0xFFu8, 0x80, 0xC0] {
        let e = structural(&good, |b| {
            let e = tensor_entry(b, 3);
            let at = strings_start(b) + rd32(b, e) as usize + 1;
            b[at] = byte;
        });
        assert_eq!(e, bad);
    }
    // Out of the string table.
    let edits: [(usize, u32); 5] =
        [(4, strings_len + 1), (4, u32::MAX), (0, strings_len), (0, u32::MAX), (0, strings_len - 3)];
    for (field, v) in edits {
        let e = structural(&good, |b| {
            let at = tensor_entry(b, 3) + field;
            wr32(b, at, v)
        });
        assert_eq!(e, bad, "field {field} = {v}");
    }
    // A name ending exactly at the table end is fine; an empty name too
    // (the model loader then reports the tensor missing).
    let mut b = good.clone();
    let e = tensor_entry(&b, 3);
    wr32(&mut b, e, strings_len);
    wr32(&mut b, e + 4, 0);
    reseal(&mut b);
    assert_eq!(parse(&b), Ok(()));
    assert_eq!(load(&b), Err(ModelError::MissingTensor { name: "layers.{i}.conv1d.weight", layer: Some(0) }));
}

#[test]
fn blob_region_errors() {
    let mut bl = builder_with(&TINY, tensors(&TINY, 1, false));
    bl.blob(BlobKind::TokenizerJson, vec![b'x'; 100]);
    bl.blob(BlobKind::QuantReport, vec![b'y'; 10]);
    let good = bl.to_bytes();
    assert_eq!(parse(&good), Ok(()));
    let n = good.len() as u64;
    let last_tensor = tensor_count(&good) - 1;
    let t_off = rd64(&good, tensor_entry(&good, last_tensor) + 40);
    let cases: [(usize, u64, FileError); 6] = [
        // Blob 0 overlapping the last tensor.
        (0, t_off, FileError::Overlap { table: "blob", index: 0 }),
        // Blob before the tensors.
        (0, rd64(&good, 40), FileError::Overlap { table: "blob", index: 0 }),
        // Blob 1 before blob 0.
        (1, rd64(&good, blob_entry(&good, 0) + 8), FileError::Overlap { table: "blob", index: 1 }),
        (1, n, FileError::OutOfBounds { table: "blob", index: 1 }),
        (1, !63u64, FileError::OutOfBounds { table: "blob", index: 1 }),
        (1, rd64(&good, blob_entry(&good, 1) + 8) + 8, FileError::Misaligned { table: "blob", index: 1 }),
    ];
    for (i, off, want) in cases {
        let e = structural(&good, |b| {
            let at = blob_entry(b, i) + 8;
            wr64(b, at, off)
        });
        assert_eq!(e, want, "blob {i} at {off}");
    }
    let e = structural(&good, |b| {
        let at = blob_entry(b, 1) + 16;
        wr64(b, at, u64::MAX)
    });
    assert_eq!(e, FileError::OutOfBounds { table: "blob", index: 1 });
    // Unknown blob kinds are kept and ignored.
    let mut b = good.clone();
    let at = blob_entry(&b, 0);
    wr32(&mut b, at, 1234);
    reseal(&mut b);
    let a = AlignedBytes::copy_from(&b);
    let m = Model::from_bytes(a.as_slice()).unwrap();
    assert_eq!(m.tokenizer_json(), None);
    assert_eq!(m.file().blob_at(0).map(|(k, d)| (k, d.len())), Some((BlobKind::Unknown(1234), 100)));
}

#[test]
fn display_messages_are_specific() {
    let cases: [(FileError, &str); 8] = [
        (FileError::Truncated { needed: 100, got: 7 }, "100"),
        (FileError::BadMagic, "EDDY"),
        (FileError::BadHeaderLen(65), "65"),
        (FileError::MisalignedBuffer, "64-byte"),
        (FileError::ChecksumMismatch { stored: 0xdead_beef, computed: 1 }, "0xdeadbeef"),
        (FileError::TooManyEntries { table: "blob", count: 65 }, "blob"),
        (FileError::LengthMismatch { index: 3, expected: 12, stored: 13 }, "tensor 3"),
        (FileError::Overlap { table: "blob", index: 2 }, "blob 2"),
    ];
    for (e, needle) in cases {
        let s = e.to_string();
        assert!(s.contains(needle), "{s:?} lacks {needle:?}");
        assert_eq!(ModelError::File(e).to_string(), s);
    }
}

// ---------------------------------------------------------------------------
// Model-level errors
// ---------------------------------------------------------------------------

fn without(hp: &Hp, name: &str) -> Vec<TensorData> {
    let mut ts = tensors(hp, 1, false);
    let n = ts.len();
    ts.retain(|t| t.name != name);
    assert_eq!(ts.len(), n - 1, "{name} not in schema");
    ts
}

fn load_tensors(ts: Vec<TensorData>) -> Result<(), ModelError> {
    load(&builder_with(&TINY, ts).to_bytes())
}

#[test]
fn missing_tensor() {
    for (name, pattern, layer) in [
        ("embed.weight", "embed.weight", None),
        ("layers.1.D", "layers.{i}.D", Some(1)),
        ("layers.0.norm.weight", "layers.{i}.norm.weight", Some(0)),
        ("layers.1.out_proj.weight", "layers.{i}.out_proj.weight", Some(1)),
        ("lm_head.weight", "lm_head.weight", None),
    ] {
        let err = load_tensors(without(&TINY, name)).unwrap_err();
        assert_eq!(err, ModelError::MissingTensor { name: pattern, layer });
        let msg = err.to_string();
        assert!(msg.contains(&format!("`{name}`")), "{msg}");
        assert!(msg.contains("missing"), "{msg}");
    }
}

#[test]
fn wrong_shape_names_the_tensor() {
    let mut ts = tensors(&TINY, 1, false);
    let i = ts.iter().position(|t| t.name == "layers.1.in_proj.weight").unwrap();
    let (r, c) = (2 * TINY.d_inner, TINY.d_model + 1);
    ts[i] = TensorData::f32("layers.1.in_proj.weight", &[r, c], &vec![0.0; (r * c) as usize]);
    let err = load_tensors(ts).unwrap_err();
    assert_eq!(
        err,
        ModelError::ShapeMismatch {
            name: "layers.{i}.in_proj.weight",
            layer: Some(1),
            expected: (2 * TINY.d_inner as u64, TINY.d_model as u64),
            found: (r as u64, c as u64),
        }
    );
    let msg = err.to_string();
    assert!(msg.contains("layers.1.in_proj.weight"), "{msg}");
    assert!(msg.contains("32x9") && msg.contains("32x8"), "{msg}");

    // Vectors too, and a transposed matrix.
    let mut ts = tensors(&TINY, 1, false);
    ts[0] = TensorData::f32(
        "embed.weight",
        &[TINY.d_model, TINY.vocab],
        &vec![0.0; (TINY.vocab * TINY.d_model) as usize],
    );
    assert!(matches!(
        load_tensors(ts),
        Err(ModelError::ShapeMismatch { name: "embed.weight", layer: None, .. })
    ));
    let mut ts = tensors(&TINY, 1, false);
    let i = ts.iter().position(|t| t.name == "norm_f.weight").unwrap();
    ts[i] = TensorData::f32("norm_f.weight", &[TINY.d_model - 1], &[1.0; 7]);
    let err = load_tensors(ts).unwrap_err();
    assert!(err.to_string().contains("norm_f.weight"));
}

#[test]
fn out_of_order_tensors() {
    let mut ts = tensors(&TINY, 1, false);
    let a = ts.iter().position(|t| t.name == "layers.0.A").unwrap();
    let d = ts.iter().position(|t| t.name == "layers.0.D").unwrap();
    ts.swap(a, d);
    let err = load_tensors(ts).unwrap_err();
    assert_eq!(err, ModelError::OutOfOrder { name: "layers.{i}.A", layer: Some(0), index: a as u32 });
    assert!(err.to_string().contains("layers.0.A"));

    // Whole layers swapped.
    let ts = tensors(&TINY, 1, false);
    let per_layer = (ts.len() - 3) / 2;
    let mut swapped = vec![ts[0].clone()];
    swapped.extend_from_slice(&ts[1 + per_layer..1 + 2 * per_layer]);
    swapped.extend_from_slice(&ts[1..1 + per_layer]);
    swapped.extend_from_slice(&ts[1 + 2 * per_layer..]);
    assert_eq!(
        load_tensors(swapped),
        Err(ModelError::OutOfOrder { name: "layers.{i}.norm.weight", layer: Some(0), index: 1 })
    );
}

#[test]
fn layer_names_must_be_canonical() {
    let mut ts = tensors(&TINY, 1, false);
    let i = ts.iter().position(|t| t.name == "layers.1.D").unwrap();
    ts[i].name = "layers.01.D".to_string();
    assert_eq!(load_tensors(ts), Err(ModelError::MissingTensor { name: "layers.{i}.D", layer: Some(1) }));
}

#[test]
fn extra_tensor() {
    let mut ts = tensors(&TINY, 1, false);
    let n = ts.len() as u32;
    ts.push(TensorData::f32("layers.2.D", &[4], &[0.0; 4]));
    assert_eq!(load_tensors(ts), Err(ModelError::UnexpectedTensor { index: n }));
    // A tied model must not carry an lm_head.
    let hp = Hp { tied: true, ..TINY };
    let mut ts = tensors(&hp, 1, false);
    let n = ts.len() as u32;
    ts.extend(tensors(&TINY, 1, false).pop());
    let err = load(&builder_with(&hp, ts).to_bytes()).unwrap_err();
    assert_eq!(err, ModelError::UnexpectedTensor { index: n });
    assert!(err.to_string().contains(&n.to_string()));
}

#[test]
fn missing_and_bad_hparams() {
    for key in [
        HParam::VocabSize,
        HParam::DModel,
        HParam::NLayer,
        HParam::DState,
        HParam::DConv,
        HParam::DInner,
        HParam::DtRank,
        HParam::NormEps,
    ] {
        // Build the file by hand without `key` (the builder can only replace).
        let mut b = FileBuilder::new(Architecture::Mamba1);
        for k in HParam::ALL {
            if k == key {
                continue;
            }
            let v = match k {
                HParam::VocabSize => TINY.vocab,
                HParam::DModel => TINY.d_model,
                HParam::NLayer => TINY.n_layer,
                HParam::DState => TINY.d_state,
                HParam::DConv => TINY.d_conv,
                HParam::DInner => TINY.d_inner,
                HParam::DtRank => TINY.dt_rank,
                HParam::NormEps => 1e-5f32.to_bits(),
                HParam::ConvBias => 1,
                HParam::BosToken | HParam::EosToken => u32::MAX,
                _ => 0,
            };
            b.hparam(k, v);
        }
        for t in tensors(&TINY, 1, false) {
            b.tensor(t).unwrap();
        }
        let err = load(&b.to_bytes()).unwrap_err();
        assert_eq!(err, ModelError::MissingHParam(key.name()));
        assert!(err.to_string().contains(key.name()));
    }
    for (key, value) in [
        (HParam::DConv, 0),
        (HParam::DConv, 65),
        (HParam::NLayer, 4097),
        (HParam::DState, 0),
        (HParam::VocabSize, (1 << 24) + 1),
        (HParam::TiedEmbeddings, 2),
        (HParam::ConvBias, u32::MAX),
        (HParam::NormEps, f32::NAN.to_bits()),
        (HParam::NormEps, f32::INFINITY.to_bits()),
        (HParam::NormEps, (-1.0f32).to_bits()),
    ] {
        let mut b = builder_with(&TINY, tensors(&TINY, 1, false));
        b.hparam(key, value);
        assert_eq!(load(&b.to_bytes()), Err(ModelError::BadHParam { name: key.name(), value }));
    }
    // Unknown keys are ignored; a repeated key takes its first value.
    let mut b = builder_with(&TINY, tensors(&TINY, 1, false));
    b.hparam(HParam::BosToken, 0);
    let mut bytes = b.to_bytes();
    assert!(load(&bytes).is_ok());
    let last = HEADER_LEN + (hparam_count(&bytes) - 1) * HPARAM_ENTRY_LEN;
    wr32(&mut bytes, last, 1000);
    reseal(&mut bytes);
    assert!(load(&bytes).is_ok());
    wr32(&mut bytes, last, HParam::VocabSize.code());
    wr32(&mut bytes, last + 4, 3);
    reseal(&mut bytes);
    assert!(load(&bytes).is_ok());
}

#[test]
fn f16_where_f32_required() {
    for name in ["layers.0.conv1d.weight", "layers.1.A", "layers.0.norm.weight", "norm_f.weight"] {
        let mut ts = tensors(&TINY, 1, false);
        let i = ts.iter().position(|t| t.name == name).unwrap();
        let vals: Vec<f32> =
            ts[i].data.chunks_exact(4).map(|c| f32::from_le_bytes(c.try_into().unwrap())).collect();
        ts[i] = TensorData::f16(name, &ts[i].shape.clone(), &vals);
        let err = load_tensors(ts).unwrap_err();
        assert!(matches!(err, ModelError::UnsupportedFormat { format: "f16", .. }), "{err:?}");
        let msg = err.to_string();
        assert!(msg.contains(name) && msg.contains("f16"), "{msg}");
    }
    // f16 is fine for every matrix.
    let bytes = builder_with(&TINY, tensors(&TINY, 1, true)).to_bytes();
    assert!(load(&bytes).is_ok());
}

#[test]
fn writer_rejects_bad_tensors() {
    use eddy::writer::WriteError;
    let mut b = FileBuilder::new(Architecture::Mamba1);
    assert!(matches!(b.tensor(TensorData::f32("a", &[], &[])), Err(WriteError::BadShape { .. })));
    assert!(matches!(b.tensor(TensorData::f32("a", &[1, 0], &[])), Err(WriteError::BadShape { .. })));
    assert!(matches!(
        b.tensor(TensorData::f32("a", &[1, 1, 1, 1, 1], &[0.0])),
        Err(WriteError::BadShape { .. })
    ));
    assert_eq!(
        b.tensor(TensorData::f32("a", &[2, 2], &[0.0; 3])).unwrap_err(),
        WriteError::LengthMismatch { name: "a".into(), expected: 16, got: 12 }
    );
    b.tensor(TensorData::f32("a", &[2], &[0.0; 2])).unwrap();
    assert_eq!(
        b.tensor(TensorData::f32("a", &[2], &[0.0; 2])).unwrap_err(),
        WriteError::DuplicateName("a".into())
    );
    assert_eq!(b.tensors().len(), 1);
}

// ---------------------------------------------------------------------------
// Fuzzing seeds
// ---------------------------------------------------------------------------

/// The seed corpus of `fuzz/`: small valid files covering the schema
/// variants, formats and blobs.
fn fuzz_seeds() -> Vec<(&'static str, Vec<u8>)> {
    let mini_tied = Hp { tied: true, proj_bias: true, conv_bias: false, n_layer: 1, ..MINI };
    let mini_conv1 = Hp { d_conv: 1, n_layer: 1, ..MINI };
    let mini_quant = Hp { d_model: 32, d_inner: 32, n_layer: 1, ..MINI };
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
