//! Typed errors. Every message says what is wrong and, where it helps, what
//! was expected, so a user can act on it.

use crate::state_store::StateFormat;
use core::fmt;
use eddy_quant::FormatError;

/// A `.eddy` file is malformed. Returned by [`crate::EddyFile::parse`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FileError {
    /// Fewer bytes than the fixed header, or than the header's `file_len`.
    Truncated {
        /// Bytes needed.
        needed: u64,
        /// Bytes present.
        got: u64,
    },
    /// The first four bytes are not `EDDY`.
    BadMagic,
    /// Written by a newer eddy than this reader understands.
    UnsupportedVersion(u16),
    /// The header length field is not one this version can read.
    BadHeaderLen(u16),
    /// The bytes in memory do not start on a 64-byte boundary, so tensors
    /// cannot be used in place.
    MisalignedBuffer,
    /// The stored checksum does not match the contents.
    ChecksumMismatch {
        /// Checksum stored in the header.
        stored: u32,
        /// Checksum computed over the file.
        computed: u32,
    },
    /// A table count is larger than this reader allows.
    TooManyEntries {
        /// Which table.
        table: &'static str,
        /// The count in the header.
        count: u32,
    },
    /// Header tables do not fit in the file.
    TablesOutOfBounds,
    /// A tensor or blob name is out of the string table or not UTF-8.
    BadName {
        /// Index of the tensor table entry.
        index: u32,
    },
    /// A tensor's format code or parameter is invalid.
    BadFormat {
        /// Index of the tensor table entry.
        index: u32,
        /// What is wrong with it.
        error: FormatError,
    },
    /// A tensor's shape is invalid (0 or more than 4 dimensions, a zero
    /// dimension, or unused dimensions not zero).
    BadShape {
        /// Index of the tensor table entry.
        index: u32,
    },
    /// A tensor's stored length is not what its format and shape need.
    LengthMismatch {
        /// Index of the tensor table entry.
        index: u32,
        /// Bytes the format and shape need.
        expected: u64,
        /// Bytes the entry says.
        stored: u64,
    },
    /// A tensor or blob offset is not a multiple of 64.
    Misaligned {
        /// Table ("tensor" or "blob").
        table: &'static str,
        /// Entry index.
        index: u32,
    },
    /// A tensor or blob lies outside the data area of the file.
    OutOfBounds {
        /// Table ("tensor" or "blob").
        table: &'static str,
        /// Entry index.
        index: u32,
    },
    /// A tensor or blob starts before the previous one ends (entries must be
    /// stored in increasing offset order without overlap).
    Overlap {
        /// Table ("tensor" or "blob").
        table: &'static str,
        /// Entry index.
        index: u32,
    },
    /// A reserved field is not zero (written by an incompatible tool).
    ReservedNotZero,
    /// The architecture code is not known to this version.
    UnknownArchitecture(u32),
}

impl fmt::Display for FileError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FileError::Truncated { needed, got } => {
                write!(f, "file is truncated: needs {needed} bytes, has {got}")
            }
            FileError::BadMagic => write!(f, "not an .eddy file (magic bytes are not \"EDDY\")"),
            FileError::UnsupportedVersion(v) => {
                write!(f, "file format version {v} is newer than this eddy understands (1); upgrade eddy")
            }
            FileError::BadHeaderLen(l) => write!(f, "header length {l} is invalid (expected 64)"),
            FileError::MisalignedBuffer => {
                write!(f, "model bytes must start at a 64-byte aligned address to be used in place")
            }
            FileError::ChecksumMismatch { stored, computed } => write!(
                f,
                "checksum mismatch (stored {stored:#010x}, computed {computed:#010x}): the file is corrupted"
            ),
            FileError::TooManyEntries { table, count } => {
                write!(f, "{table} table has {count} entries, more than allowed")
            }
            FileError::TablesOutOfBounds => write!(f, "header tables extend past the end of the file"),
            FileError::BadName { index } => {
                write!(f, "tensor/blob {index}: name is out of bounds or not UTF-8")
            }
            FileError::BadFormat { index, error } => write!(f, "tensor {index}: {error}"),
            FileError::BadShape { index } => {
                write!(f, "tensor {index}: shape must have 1 to 4 non-zero dimensions")
            }
            FileError::LengthMismatch { index, expected, stored } => write!(
                f,
                "tensor {index}: stored length {stored} bytes, but format and shape need {expected}"
            ),
            FileError::Misaligned { table, index } => {
                write!(f, "{table} {index}: data offset is not a multiple of 64")
            }
            FileError::OutOfBounds { table, index } => {
                write!(f, "{table} {index}: data lies outside the file's data area")
            }
            FileError::Overlap { table, index } => {
                write!(f, "{table} {index}: data overlaps the previous entry or is out of order")
            }
            FileError::ReservedNotZero => write!(f, "a reserved header field is not zero"),
            FileError::UnknownArchitecture(c) => {
                write!(f, "architecture code {c} is not supported by this eddy")
            }
        }
    }
}

/// A well-formed file does not describe a model this runtime can run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ModelError {
    /// The file itself is malformed.
    File(FileError),
    /// A required hyper-parameter is absent.
    MissingHParam(&'static str),
    /// A hyper-parameter has an unusable value.
    BadHParam {
        /// Key name.
        name: &'static str,
        /// Its value.
        value: u32,
    },
    /// A required tensor is absent. The name is the canonical eddy name with
    /// the layer index, e.g. `layers.{i}.in_proj.weight`.
    MissingTensor {
        /// Canonical name pattern.
        name: &'static str,
        /// Layer index, if per-layer.
        layer: Option<u32>,
    },
    /// A tensor is present twice.
    DuplicateTensor {
        /// Canonical name pattern.
        name: &'static str,
        /// Layer index, if per-layer.
        layer: Option<u32>,
    },
    /// A tensor has the wrong shape.
    ShapeMismatch {
        /// Canonical name pattern.
        name: &'static str,
        /// Layer index, if per-layer.
        layer: Option<u32>,
        /// Expected (rows, cols); a vector is (1, n).
        expected: (u64, u64),
        /// Found (rows, cols).
        found: (u64, u64),
    },
    /// A tensor has a format this layer cannot use.
    UnsupportedFormat {
        /// Canonical name pattern.
        name: &'static str,
        /// Layer index, if per-layer.
        layer: Option<u32>,
        /// The tensor's format name.
        format: &'static str,
    },
    /// A tensor is present but not at its place in the canonical order
    /// (see `runtime/FORMAT.md`).
    OutOfOrder {
        /// Canonical name pattern.
        name: &'static str,
        /// Layer index, if per-layer.
        layer: Option<u32>,
        /// Index where it was expected.
        index: u32,
    },
    /// The file has more tensors than the architecture uses.
    UnexpectedTensor {
        /// Index of the first extra tensor.
        index: u32,
    },
    /// State or scratch size does not fit in memory addresses.
    SizeOverflow,
    /// The file's model family was left out of this build (cargo feature).
    FamilyNotCompiled(&'static str),
    /// A hybrid model's layer-kinds table is missing or malformed.
    BadLayerKinds,
    /// KV cache options that attention layers cannot use.
    BadKvCache {
        /// Cache format name.
        format: &'static str,
        /// Values per head.
        head_dim: u32,
        /// Attention sinks asked for.
        sinks: u32,
        /// Window asked for.
        window: u32,
    },
    /// A KV distance limit of 0 (LM-Infinite's limit must be at least 1).
    BadKvDistanceLimit {
        /// Limit asked for.
        limit: u32,
    },
}

impl From<FileError> for ModelError {
    fn from(e: FileError) -> Self {
        ModelError::File(e)
    }
}

struct TensorName(&'static str, Option<u32>);

impl fmt::Display for TensorName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.1 {
            // Canonical names are written with a `{i}` placeholder for the layer.
            Some(l) => {
                let mut parts = self.0.splitn(2, "{i}");
                let head = parts.next().unwrap_or("");
                write!(f, "{head}{l}")?;
                if let Some(tail) = parts.next() {
                    write!(f, "{tail}")?;
                }
                Ok(())
            }
            None => write!(f, "{}", self.0),
        }
    }
}

impl fmt::Display for ModelError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            ModelError::File(e) => write!(f, "{e}"),
            ModelError::MissingHParam(n) => write!(f, "hyper-parameter `{n}` is missing"),
            ModelError::BadHParam { name, value } => {
                write!(f, "hyper-parameter `{name}` has unusable value {value}")
            }
            ModelError::MissingTensor { name, layer } => {
                write!(f, "tensor `{}` is missing", TensorName(name, layer))
            }
            ModelError::DuplicateTensor { name, layer } => {
                write!(f, "tensor `{}` appears more than once", TensorName(name, layer))
            }
            ModelError::ShapeMismatch { name, layer, expected, found } => write!(
                f,
                "tensor `{}` has shape {}x{}, expected {}x{}",
                TensorName(name, layer),
                found.0,
                found.1,
                expected.0,
                expected.1
            ),
            ModelError::UnsupportedFormat { name, layer, format } => write!(
                f,
                "tensor `{}` is stored as {format}, which this layer cannot use",
                TensorName(name, layer)
            ),
            ModelError::OutOfOrder { name, layer, index } => write!(
                f,
                "tensor `{}` is not at position {index} of the canonical order; re-run `eddy convert`",
                TensorName(name, layer)
            ),
            ModelError::UnexpectedTensor { index } => {
                write!(f, "tensor {index} is not part of this architecture's schema")
            }
            ModelError::SizeOverflow => write!(f, "state/scratch size overflows memory"),
            ModelError::FamilyNotCompiled(name) => write!(
                f,
                "this build of eddy does not include the `{name}` family; enable its cargo feature (or `all-families`)"
            ),
            ModelError::BadLayerKinds => write!(
                f,
                "the layer-kinds table (which layers are attention) is missing or does not list one 0/1 entry per layer; re-run `eddy convert`"
            ),
            ModelError::BadKvCache { format, head_dim, sinks, window } => write!(
                f,
                "KV cache {format} with {sinks} sinks + window {window} is unusable for heads of {head_dim} values: the window must be at least 1, sinks + window at most {}, and q4 needs an even head size",
                crate::attention::MAX_CACHE_SLOTS
            ),
            ModelError::BadKvDistanceLimit { limit } => write!(
                f,
                "KV distance limit {limit} is unusable: it must be at least 1 (use the model's trained context, or leave it off)"
            ),
        }
    }
}

/// A session cannot be created or advanced.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SessionError {
    /// A caller-provided buffer is too small.
    BufferTooSmall {
        /// Which buffer ("state" or "scratch").
        which: &'static str,
        /// Bytes needed.
        needed: usize,
        /// Bytes given.
        got: usize,
    },
    /// A caller-provided buffer is not 4-byte aligned.
    BufferMisaligned {
        /// Which buffer.
        which: &'static str,
    },
    /// A token id is not below the vocabulary size.
    TokenOutOfRange {
        /// The token.
        token: u32,
        /// Vocabulary size.
        vocab: u32,
    },
    /// `prefill` was given no tokens.
    EmptyPrompt,
    /// A snapshot has the wrong length or belongs to another model or KV
    /// cache layout.
    BadSnapshot,
    /// A snapshot was taken with another state format than this session's.
    StateFormatMismatch {
        /// The snapshot's state format.
        snapshot: StateFormat,
        /// This session's (its model's) state format.
        session: StateFormat,
    },
    /// An owned buffer could not be allocated (fallible allocation).
    OutOfMemory {
        /// Which buffer ("state", "scratch" or "prefill scratch").
        which: &'static str,
        /// Bytes asked for.
        bytes: usize,
    },
}

impl fmt::Display for SessionError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            SessionError::BufferTooSmall { which, needed, got } => {
                write!(f, "{which} buffer too small: needs {needed} bytes, got {got}")
            }
            SessionError::BufferMisaligned { which } => {
                write!(f, "{which} buffer must be 4-byte aligned")
            }
            SessionError::TokenOutOfRange { token, vocab } => {
                write!(f, "token id {token} is out of range (vocabulary size {vocab})")
            }
            SessionError::EmptyPrompt => write!(f, "prefill needs at least one token"),
            SessionError::BadSnapshot => {
                write!(
                    f,
                    "snapshot does not match this model (wrong length, model checksum or KV cache layout)"
                )
            }
            SessionError::StateFormatMismatch { snapshot, session } => write!(
                f,
                "snapshot state is stored as {snapshot} but this session stores {session}; \
                 restore it into a session of a model set to {snapshot} state"
            ),
            SessionError::OutOfMemory { which, bytes } => write!(
                f,
                "cannot allocate the {which} ({bytes} bytes); use a smaller KV window or state format"
            ),
        }
    }
}

#[cfg(feature = "std")]
impl std::error::Error for FileError {}
#[cfg(feature = "std")]
impl std::error::Error for ModelError {}
#[cfg(feature = "std")]
impl std::error::Error for SessionError {}
