//! Tiny Mamba-1 `.eddy` files and raw access to their layout, shared by
//! the `file_format*` tests (layout: `runtime/FORMAT.md`).

// Each test binary uses its own subset of these helpers.
#![allow(dead_code)]

use eddy::file::{
    compute_checksum, AlignedBytes, BLOB_ENTRY_LEN, CHECKSUM_OFFSET, HEADER_LEN, HPARAM_ENTRY_LEN,
    TENSOR_ENTRY_LEN,
};
use eddy::writer::{FileBuilder, TensorData};
use eddy::{Architecture, EddyFile, FileError, HParam, Model, ModelError, TensorFormat};
use eddy_testkit::Rng;

// ---------------------------------------------------------------------------
// Tiny Mamba-1 models
// ---------------------------------------------------------------------------

/// Hyper-parameters of a test model: the runtime's own config type.
pub use eddy::mamba::Mamba1Config;

pub const TINY: Mamba1Config = Mamba1Config {
    vocab_size: 11,
    d_model: 8,
    n_layer: 2,
    d_state: 4,
    d_conv: 3,
    d_inner: 16,
    dt_rank: 2,
    norm_eps: 1e-5,
    tied_embeddings: false,
    proj_bias: false,
    conv_bias: true,
};

/// A model small enough that every byte can be corrupted in turn.
pub const MINI: Mamba1Config = Mamba1Config {
    vocab_size: 5,
    d_model: 4,
    n_layer: 2,
    d_state: 2,
    d_conv: 2,
    d_inner: 4,
    dt_rank: 1,
    norm_eps: 1e-5,
    tied_embeddings: false,
    proj_bias: false,
    conv_bias: true,
};

/// The canonical tensor list written independently of `eddy::mamba` (it is
/// what FORMAT.md documents): (name, shape, must be f32).
pub fn schema(hp: &Mamba1Config) -> Vec<(String, Vec<u32>, bool)> {
    let (v, dm, di, ds, dc, dr) = (hp.vocab_size, hp.d_model, hp.d_inner, hp.d_state, hp.d_conv, hp.dt_rank);
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
    if !hp.tied_embeddings {
        s.push(("lm_head.weight".to_string(), vec![v, dm], false));
    }
    s
}

/// Random weights for every tensor of the schema, in canonical order.
/// Matrices are f16 when `f16_matrices`.
pub fn tensors(hp: &Mamba1Config, seed: u64, f16_matrices: bool) -> Vec<TensorData> {
    let mut rng = Rng::new(seed);
    schema(hp)
        .into_iter()
        .map(|(name, shape, f32_only)| {
            let n: u32 = shape.iter().product();
            let norm = name.ends_with("norm.weight") || name == "norm_f.weight";
            let values: Vec<f32> = (0..n)
                .map(|_| if norm { 1.0 + 0.2 * rng.uniform(-0.5, 0.5) } else { rng.uniform(-0.5, 0.5) })
                .collect();
            if f16_matrices && !f32_only {
                TensorData::f16(name, &shape, &values)
            } else {
                TensorData::f32(name, &shape, &values)
            }
        })
        .collect()
}

/// A builder with the hyper-parameters of `hp` and the given tensors.
pub fn builder_with(hp: &Mamba1Config, ts: Vec<TensorData>) -> FileBuilder {
    let mut b = header(hp);
    for t in ts {
        b.tensor(t).expect("valid test tensor");
    }
    b
}

/// A builder with the hyper-parameters of `hp` and no tensors yet.
pub fn header(hp: &Mamba1Config) -> FileBuilder {
    let mut b = FileBuilder::new(Architecture::Mamba1);
    b.hparam(HParam::VocabSize, hp.vocab_size)
        .hparam(HParam::DModel, hp.d_model)
        .hparam(HParam::NLayer, hp.n_layer)
        .hparam(HParam::DState, hp.d_state)
        .hparam(HParam::DConv, hp.d_conv)
        .hparam(HParam::DInner, hp.d_inner)
        .hparam(HParam::DtRank, hp.dt_rank)
        .hparam_f32(HParam::NormEps, hp.norm_eps)
        .hparam(HParam::TiedEmbeddings, hp.tied_embeddings as u32)
        .hparam(HParam::ProjBias, hp.proj_bias as u32)
        .hparam(HParam::ConvBias, hp.conv_bias as u32);
    b
}

pub fn build(hp: &Mamba1Config, seed: u64) -> Vec<u8> {
    builder_with(hp, tensors(hp, seed, false)).to_bytes()
}

// ---------------------------------------------------------------------------
// Raw access to the layout
// ---------------------------------------------------------------------------

pub fn rd32(b: &[u8], off: usize) -> u32 {
    u32::from_le_bytes(b[off..off + 4].try_into().unwrap())
}

pub fn rd64(b: &[u8], off: usize) -> u64 {
    u64::from_le_bytes(b[off..off + 8].try_into().unwrap())
}

pub fn wr16(b: &mut [u8], off: usize, v: u16) {
    b[off..off + 2].copy_from_slice(&v.to_le_bytes());
}

pub fn wr32(b: &mut [u8], off: usize, v: u32) {
    b[off..off + 4].copy_from_slice(&v.to_le_bytes());
}

pub fn wr64(b: &mut [u8], off: usize, v: u64) {
    b[off..off + 8].copy_from_slice(&v.to_le_bytes());
}

pub fn hparam_count(b: &[u8]) -> usize {
    rd32(b, 24) as usize
}

pub fn tensor_count(b: &[u8]) -> usize {
    rd32(b, 28) as usize
}

/// Byte offset of tensor table entry `i`.
pub fn tensor_entry(b: &[u8], i: usize) -> usize {
    HEADER_LEN + hparam_count(b) * HPARAM_ENTRY_LEN + i * TENSOR_ENTRY_LEN
}

/// Byte offset of blob table entry `i`.
pub fn blob_entry(b: &[u8], i: usize) -> usize {
    HEADER_LEN + hparam_count(b) * HPARAM_ENTRY_LEN + tensor_count(b) * TENSOR_ENTRY_LEN + i * BLOB_ENTRY_LEN
}

pub fn strings_start(b: &[u8]) -> usize {
    blob_entry(b, rd32(b, 32) as usize)
}

/// Recompute the checksum over `[0, file_len)` after an edit.
pub fn reseal(b: &mut [u8]) {
    let n = (rd64(b, 8) as usize).min(b.len());
    let crc = compute_checksum(&b[..n]);
    wr32(b, CHECKSUM_OFFSET, crc);
}

/// Bitwise CRC-32 (IEEE 802.3, reflected, polynomial 0xEDB88320), written
/// from the definition to check FORMAT.md's claim independently.
pub fn crc32_ieee(data: &[u8]) -> u32 {
    let mut c = !0u32;
    for &byte in data {
        c ^= byte as u32;
        for _ in 0..8 {
            c = if c & 1 != 0 { (c >> 1) ^ 0xEDB8_8320 } else { c >> 1 };
        }
    }
    !c
}

pub fn parse(bytes: &[u8]) -> Result<(), FileError> {
    let a = AlignedBytes::copy_from(bytes);
    EddyFile::parse(a.as_slice()).map(|_| ())
}

pub fn parse_nock(bytes: &[u8]) -> Result<(), FileError> {
    let a = AlignedBytes::copy_from(bytes);
    EddyFile::parse_without_checksum(a.as_slice()).map(|_| ())
}

pub fn load(bytes: &[u8]) -> Result<(), ModelError> {
    let a = AlignedBytes::copy_from(bytes);
    Model::from_bytes(a.as_slice()).map(|_| ())
}

/// Apply `edit` to a copy of `file`, re-seal, and parse. Also checks that the
/// unsealed edit gives the same error when the checksum is skipped, and that
/// `Model::from_bytes` reports it wrapped.
pub fn structural(file: &[u8], edit: impl Fn(&mut Vec<u8>)) -> FileError {
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

pub fn tiny() -> Vec<u8> {
    build(&TINY, 1)
}

/// A matrix quantized row by row with the reference quantizer.
pub fn quantized(t: &TensorData, format: TensorFormat) -> TensorData {
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
pub fn quantized_tensors(hp: &Mamba1Config, seed: u64) -> Vec<TensorData> {
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

// ---------------------------------------------------------------------------
// Model-level helpers
// ---------------------------------------------------------------------------

pub fn without(hp: &Mamba1Config, name: &str) -> Vec<TensorData> {
    let mut ts = tensors(hp, 1, false);
    let n = ts.len();
    ts.retain(|t| t.name != name);
    assert_eq!(ts.len(), n - 1, "{name} not in schema");
    ts
}

pub fn load_tensors(ts: Vec<TensorData>) -> Result<(), ModelError> {
    load(&builder_with(&TINY, ts).to_bytes())
}
