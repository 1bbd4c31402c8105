//! Writer of `.eddy` files (host side, `std` feature).

use crate::arch::{Architecture, HParam};
use crate::file::{
    compute_checksum, BlobKind, BLOB_ENTRY_LEN, CHECKSUM_OFFSET, DATA_ALIGN, HEADER_LEN, HPARAM_ENTRY_LEN,
    MAGIC, MAX_DIMS, TENSOR_ENTRY_LEN, VERSION,
};
use eddy_quant::TensorFormat;
use std::string::String;
use std::vec::Vec;

/// Reasons a file cannot be written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WriteError {
    /// A tensor's byte length does not match its format and shape.
    LengthMismatch {
        /// Tensor name.
        name: String,
        /// Bytes needed.
        expected: u64,
        /// Bytes given.
        got: u64,
    },
    /// A tensor shape has 0 or more than 4 dimensions, or a zero dimension.
    BadShape {
        /// Tensor name.
        name: String,
    },
    /// Two tensors share a name.
    DuplicateName(String),
}

impl core::fmt::Display for WriteError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            WriteError::LengthMismatch { name, expected, got } => {
                write!(f, "tensor `{name}`: {got} bytes given, format and shape need {expected}")
            }
            WriteError::BadShape { name } => {
                write!(f, "tensor `{name}`: shape must have 1 to 4 non-zero dimensions")
            }
            WriteError::DuplicateName(n) => write!(f, "tensor `{n}` added twice"),
        }
    }
}

impl std::error::Error for WriteError {}

/// A tensor to be written.
#[derive(Debug, Clone)]
pub struct TensorData {
    /// Canonical name.
    pub name: String,
    /// Storage format of `data`.
    pub format: TensorFormat,
    /// Shape, outermost first.
    pub shape: Vec<u32>,
    /// Encoded bytes.
    pub data: Vec<u8>,
}

impl TensorData {
    /// An f32 tensor.
    pub fn f32(name: impl Into<String>, shape: &[u32], values: &[f32]) -> Self {
        TensorData {
            name: name.into(),
            format: TensorFormat::F32,
            shape: shape.to_vec(),
            data: values.iter().flat_map(|v| v.to_le_bytes()).collect(),
        }
    }

    /// An f16 tensor, rounded from f32 values (ties to even).
    pub fn f16(name: impl Into<String>, shape: &[u32], values: &[f32]) -> Self {
        TensorData {
            name: name.into(),
            format: TensorFormat::F16,
            shape: shape.to_vec(),
            data: values.iter().flat_map(|&v| eddy_quant::f32_to_f16_bits(v).to_le_bytes()).collect(),
        }
    }
}

/// Collects the parts of a file and serializes them.
#[derive(Debug, Clone)]
pub struct FileBuilder {
    architecture: Architecture,
    hparams: Vec<(u32, u32)>,
    tensors: Vec<TensorData>,
    blobs: Vec<(BlobKind, Vec<u8>)>,
}

fn pad_to(buf: &mut Vec<u8>, align: usize) {
    while buf.len() % align != 0 {
        buf.push(0);
    }
}

impl FileBuilder {
    /// Start a file for an architecture.
    pub fn new(architecture: Architecture) -> Self {
        FileBuilder { architecture, hparams: Vec::new(), tensors: Vec::new(), blobs: Vec::new() }
    }

    /// Set a hyper-parameter (replaces an earlier value).
    pub fn hparam(&mut self, key: HParam, value: u32) -> &mut Self {
        self.hparams.retain(|(k, _)| *k != key.code());
        self.hparams.push((key.code(), value));
        self
    }

    /// Set a hyper-parameter by its raw key code (to copy keys a newer
    /// writer added that this version does not know).
    pub fn hparam_raw(&mut self, code: u32, value: u32) -> &mut Self {
        self.hparams.retain(|(k, _)| *k != code);
        self.hparams.push((code, value));
        self
    }

    /// Set a float hyper-parameter.
    pub fn hparam_f32(&mut self, key: HParam, value: f32) -> &mut Self {
        self.hparam(key, value.to_bits())
    }

    /// Add a tensor; checks its length against format and shape.
    pub fn tensor(&mut self, t: TensorData) -> Result<&mut Self, WriteError> {
        if t.shape.is_empty() || t.shape.len() > MAX_DIMS || t.shape.contains(&0) {
            return Err(WriteError::BadShape { name: t.name });
        }
        let cols = *t.shape.last().unwrap_or(&1) as u64;
        let rows: u64 = t.shape[..t.shape.len() - 1].iter().map(|&d| d as u64).product();
        let expected =
            t.format.byte_len(rows, cols).map_err(|_| WriteError::BadShape { name: t.name.clone() })?;
        if expected != t.data.len() as u64 {
            return Err(WriteError::LengthMismatch { name: t.name, expected, got: t.data.len() as u64 });
        }
        if self.tensors.iter().any(|o| o.name == t.name) {
            return Err(WriteError::DuplicateName(t.name));
        }
        self.tensors.push(t);
        Ok(self)
    }

    /// Add an optional blob.
    pub fn blob(&mut self, kind: BlobKind, data: Vec<u8>) -> &mut Self {
        self.blobs.push((kind, data));
        self
    }

    /// The tensors added so far.
    pub fn tensors(&self) -> &[TensorData] {
        &self.tensors
    }

    /// Serialize to bytes (layout in `runtime/FORMAT.md`).
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut strings = Vec::new();
        let mut name_refs = Vec::new();
        for t in &self.tensors {
            name_refs.push((strings.len() as u32, t.name.len() as u32));
            strings.extend_from_slice(t.name.as_bytes());
        }
        let tables_end = HEADER_LEN
            + self.hparams.len() * HPARAM_ENTRY_LEN
            + self.tensors.len() * TENSOR_ENTRY_LEN
            + self.blobs.len() * BLOB_ENTRY_LEN
            + strings.len();
        let data_offset = tables_end.div_ceil(DATA_ALIGN) * DATA_ALIGN;

        // Lay out data first so the tables can carry offsets.
        let mut offsets = Vec::new();
        let mut cursor = data_offset;
        for t in &self.tensors {
            offsets.push(cursor);
            cursor = (cursor + t.data.len()).div_ceil(DATA_ALIGN) * DATA_ALIGN;
        }
        let mut blob_offsets = Vec::new();
        for (_, b) in &self.blobs {
            blob_offsets.push(cursor);
            cursor = (cursor + b.len()).div_ceil(DATA_ALIGN) * DATA_ALIGN;
        }
        let file_len = cursor;

        let mut out = Vec::with_capacity(file_len);
        out.extend_from_slice(&MAGIC);
        out.extend_from_slice(&VERSION.to_le_bytes());
        out.extend_from_slice(&(HEADER_LEN as u16).to_le_bytes());
        out.extend_from_slice(&(file_len as u64).to_le_bytes());
        out.extend_from_slice(&0u32.to_le_bytes()); // checksum, filled below
        out.extend_from_slice(&self.architecture.code().to_le_bytes());
        out.extend_from_slice(&(self.hparams.len() as u32).to_le_bytes());
        out.extend_from_slice(&(self.tensors.len() as u32).to_le_bytes());
        out.extend_from_slice(&(self.blobs.len() as u32).to_le_bytes());
        out.extend_from_slice(&(strings.len() as u32).to_le_bytes());
        out.extend_from_slice(&(data_offset as u64).to_le_bytes());
        out.resize(HEADER_LEN, 0);
        for (k, v) in &self.hparams {
            out.extend_from_slice(&k.to_le_bytes());
            out.extend_from_slice(&v.to_le_bytes());
        }
        for ((t, (noff, nlen)), off) in self.tensors.iter().zip(&name_refs).zip(&offsets) {
            out.extend_from_slice(&noff.to_le_bytes());
            out.extend_from_slice(&nlen.to_le_bytes());
            out.extend_from_slice(&t.format.code().to_le_bytes());
            out.extend_from_slice(&t.format.param().to_le_bytes());
            out.extend_from_slice(&(t.shape.len() as u32).to_le_bytes());
            for i in 0..MAX_DIMS {
                out.extend_from_slice(&t.shape.get(i).copied().unwrap_or(0).to_le_bytes());
            }
            out.extend_from_slice(&0u32.to_le_bytes());
            out.extend_from_slice(&(*off as u64).to_le_bytes());
            out.extend_from_slice(&(t.data.len() as u64).to_le_bytes());
            out.extend_from_slice(&0u64.to_le_bytes());
        }
        for ((kind, b), off) in self.blobs.iter().zip(&blob_offsets) {
            out.extend_from_slice(&kind.code().to_le_bytes());
            out.extend_from_slice(&0u32.to_le_bytes());
            out.extend_from_slice(&(*off as u64).to_le_bytes());
            out.extend_from_slice(&(b.len() as u64).to_le_bytes());
            out.extend_from_slice(&0u64.to_le_bytes());
        }
        out.extend_from_slice(&strings);
        pad_to(&mut out, DATA_ALIGN);
        for t in &self.tensors {
            out.extend_from_slice(&t.data);
            pad_to(&mut out, DATA_ALIGN);
        }
        for (_, b) in &self.blobs {
            out.extend_from_slice(b);
            pad_to(&mut out, DATA_ALIGN);
        }
        debug_assert_eq!(out.len(), file_len);
        let crc = compute_checksum(&out);
        out[CHECKSUM_OFFSET..CHECKSUM_OFFSET + 4].copy_from_slice(&crc.to_le_bytes());
        out
    }
}
