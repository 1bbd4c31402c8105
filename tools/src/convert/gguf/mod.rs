//! `eddy convert FILE.gguf`: llama.cpp's GGUF files, read with a small
//! bounds-checked reader ([`reader`]), their architecture and
//! hyper-parameters mapped onto an eddy family's `config.json`
//! ([`arch`]), tensors dequantized or repacked ([`dequant`],
//! [`storage`]) and the tokenizer rebuilt from `tokenizer.ggml.*`
//! ([`tokenizer`]). The family's own converter plans the schema, so a GGUF
//! model is checked exactly as its Hugging Face checkpoint would be.

pub mod dequant;
pub mod reader;
pub mod storage;
pub mod tokenizer;

mod arch;

use super::checkpoint::Checkpoint;
use super::{eddy_name, io_err, plan_for, ConvertError, ConvertSummary, WeightDtype};
use crate::file_writer::StreamingFile;
use dequant::GgmlType;
use eddy::schema::TensorSpec;
use eddy::{BlobKind, TensorFormat};
use reader::{GgufHeader, TensorInfo};
use std::io::{Read, Seek, Write};
use std::path::Path;
use storage::{Stored, Treatment};

/// Whether `path` is a file that starts with GGUF's magic bytes.
pub fn is_gguf(path: &Path) -> bool {
    let mut magic = [0u8; 4];
    path.is_file()
        && std::fs::File::open(path).and_then(|mut f| f.read_exact(&mut magic)).is_ok()
        && &magic == reader::MAGIC
}

/// Whether quantized GGUF tensors may stay quantized in the output.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GgufWeights {
    /// Keep Q8_0/Q4_0/Q4_1 exactly and re-quantize other quantized types to
    /// the nearest eddy format (the default).
    Keep,
    /// Dequantize everything to floats (for a recipe applied afterwards).
    Dequantize,
}

/// One line of the convert report: what happened to a tensor.
fn describe(spec: &TensorSpec, t: &TensorInfo, ty: GgmlType, how: Treatment) -> String {
    let name = eddy_name(spec);
    match how {
        Treatment::Kept(f) => {
            format!("{name}: {} kept as {} (same values, not re-quantized)", ty.name(), f.name())
        }
        Treatment::Requantized(f) => {
            format!("{name}: {} dequantized and re-quantized to {} (min/max groups)", ty.name(), f.name())
        }
        Treatment::Float(f) if ty.is_float() => format!("{name}: {} stored as {}", ty.name(), f.name()),
        Treatment::Float(f) => format!("{name} (`{}`): {} dequantized to {}", t.name, ty.name(), f.name()),
    }
}

/// The tensor `spec` is stored under, with its type, checked against the
/// schema's shape.
fn find<'h>(
    h: &'h GgufHeader,
    spec: &TensorSpec,
    gguf_name: &str,
) -> Result<(&'h TensorInfo, GgmlType), ConvertError> {
    let t = h.tensor(gguf_name).ok_or_else(|| ConvertError::MissingTensor {
        hf_name: gguf_name.to_string(),
        eddy_name: eddy_name(spec),
    })?;
    let ty = t
        .ggml_type
        .ok_or_else(|| ConvertError::GgufTensorType { name: t.name.clone(), code: t.type_code })?;
    let found: Vec<usize> = t.row_major_shape().iter().map(|&d| d as usize).collect();
    let expected = super::common::plain_shape(spec);
    // Vectors may carry unit dimensions (llama.cpp stores Mamba-2's A as
    // [heads, 1] and its grouped norm as [groups, width / groups]): their
    // element count is what matters; matrices must match exactly.
    let ok = match spec.rows {
        1 => t.numel() == spec.cols,
        _ => found == expected,
    };
    if !ok {
        return Err(ConvertError::ShapeMismatch { hf_name: t.name.clone(), expected, found });
    }
    Ok((t, ty))
}

/// Convert the GGUF file `path`, writing the `.eddy` file to `out`; see
/// [`convert_bytes_into`].
pub fn convert_into<W: Write + Seek>(
    path: &Path,
    dtype: WeightDtype,
    weights: GgufWeights,
    out: W,
) -> Result<(W, ConvertSummary), ConvertError> {
    let file = std::fs::File::open(path).map_err(io_err(path))?;
    // SAFETY: a read-only map of an input file we do not modify; every
    // range read from it is checked against its length by the reader.
    let map = unsafe { memmap2::Mmap::map(&file) }.map_err(io_err(path))?;
    convert_bytes_into(&map, dtype, weights, out).map_err(|e| match e {
        ConvertError::Gguf { error, .. } => ConvertError::Gguf { path: path.to_path_buf(), error },
        other => other,
    })
}

/// Convert the GGUF file `bytes`, writing the `.eddy` file to `out`. Every
/// tensor's presence, type and shape is checked before anything is
/// written; the summary's notes say per tensor how it was stored, and why
/// no tokenizer was rebuilt if none was.
pub fn convert_bytes_into<W: Write + Seek>(
    bytes: &[u8],
    dtype: WeightDtype,
    weights: GgufWeights,
    out: W,
) -> Result<(W, ConvertSummary), ConvertError> {
    let header =
        reader::parse(bytes).map_err(|error| ConvertError::Gguf { path: "GGUF input".into(), error })?;
    let arch_name = header
        .get("general.architecture")
        .and_then(reader::MetaValue::as_str)
        .ok_or(ConvertError::GgufKey { key: "general.architecture".into(), expected: "a string" })?;
    let arch = arch::ARCHS.iter().find(|a| a.name == arch_name).ok_or_else(|| {
        ConvertError::GgufArchitecture { found: arch_name.to_string(), supported: arch::names() }
    })?;
    let cfg = (arch.config)(&arch::Keys { header: &header, arch: arch_name })?;
    let plan = plan_for(&cfg, &Checkpoint::declared(&(arch.declared)(&header)))?;
    let mut found = Vec::with_capacity(plan.specs.len());
    for spec in &plan.specs {
        found.push(find(&header, spec, &(arch.tensor)(spec))?);
    }
    let mut notes = Vec::new();
    let tokenizer = match tokenizer::rebuild(&header) {
        Ok(json) => Some(json),
        Err(tokenizer::NoTokenizer(why)) => {
            notes.push(format!("no tokenizer rebuilt: {why}; use token ids with `eddy run --tokens`"));
            None
        }
    };
    let hparams: Vec<(u32, u32)> = plan.hparams.iter().map(|&(k, v)| (k.code(), v)).collect();
    let names = plan.specs.iter().map(eddy_name).collect();
    let blob_count = plan.blobs.len() + usize::from(tokenizer.is_some());
    let mut w = StreamingFile::new(out, plan.architecture, &hparams, names, blob_count)?;
    let float = match dtype {
        WeightDtype::F32 => TensorFormat::F32,
        WeightDtype::F16 => TensorFormat::F16,
    };
    for (spec, &(t, ty)) in plan.specs.iter().zip(&found) {
        let data = &bytes[t.offset as usize..(t.offset + t.len) as usize];
        let keep = weights == GgufWeights::Keep;
        let (stored, how) = storage::store(spec, ty, data, keep, float)
            .map_err(|e| ConvertError::GgufTensor { name: t.name.clone(), why: e.to_string() })?;
        let shape: Vec<u32> =
            if spec.rows == 1 { vec![spec.cols as u32] } else { vec![spec.rows as u32, spec.cols as u32] };
        match stored {
            Stored::Bytes(format, data) => {
                w.tensor(&eddy::writer::TensorData { name: eddy_name(spec), format, shape, data })?
            }
            Stored::Values(format, values) => {
                if values.iter().any(|v| !v.is_finite()) {
                    return Err(ConvertError::NonFinite { hf_name: t.name.clone() });
                }
                w.tensor_f32(eddy_name(spec), &shape, format, &values)?
            }
        }
        notes.push(describe(spec, t, ty, how));
    }
    for (kind, blob) in plan.blobs {
        w.blob(kind, blob)?;
    }
    let has_tokenizer = tokenizer.is_some();
    if let Some(tok) = tokenizer {
        w.blob(BlobKind::TokenizerJson, tok)?;
    }
    let (out, len) = w.finish()?;
    let used: Vec<&str> = found.iter().map(|(t, _)| t.name.as_str()).collect();
    let ignored =
        header.tensors.iter().filter(|t| !used.contains(&t.name.as_str())).map(|t| t.name.clone()).collect();
    let summary = ConvertSummary {
        architecture: plan.architecture,
        shape: plan.shape,
        has_tokenizer,
        ignored,
        len,
        notes,
    };
    Ok((out, summary))
}
