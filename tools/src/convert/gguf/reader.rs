//! A bounds-checked reader of GGUF headers (versions 2 and 3): metadata
//! key/values and the tensor table, parsed from a byte slice. Every length
//! and offset is checked against the bytes there are, so a truncated or
//! lying file is an error, never a panic or a huge allocation.

use super::dequant::GgmlType;
use std::collections::{BTreeMap, HashSet};

/// The four bytes every GGUF file starts with.
pub const MAGIC: &[u8; 4] = b"GGUF";

/// Nested metadata arrays deeper than this are refused (real files use 1).
const MAX_ARRAY_DEPTH: u32 = 4;

/// Most dimensions a tensor may have (ggml's `GGML_MAX_DIMS`).
const MAX_DIMS: u32 = 4;

/// Why a GGUF header could not be read.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum GgufError {
    /// The file does not start with `GGUF`.
    #[error("not a GGUF file (it does not start with the bytes `GGUF`)")]
    BadMagic,
    /// A version this reader does not know.
    #[error("GGUF version {0} is not supported (versions 2 and 3 are)")]
    UnsupportedVersion(u32),
    /// The file ends inside a structure.
    #[error("GGUF file is truncated: {what} at byte {offset} runs past the end ({len} bytes)")]
    Truncated {
        /// What was being read.
        what: String,
        /// Where it starts.
        offset: u64,
        /// The file's length.
        len: u64,
    },
    /// A string is not UTF-8.
    #[error("GGUF {what} at byte {offset} is not valid UTF-8")]
    BadString {
        /// What the string is.
        what: String,
        /// Where it starts.
        offset: u64,
    },
    /// A metadata value has a type code this reader does not know.
    #[error("GGUF metadata key `{key}` has unknown value type {code}")]
    UnknownValueType {
        /// The key.
        key: String,
        /// The type code.
        code: u32,
    },
    /// Arrays nested too deeply.
    #[error("GGUF metadata key `{key}` nests arrays more than {MAX_ARRAY_DEPTH} deep")]
    TooDeep {
        /// The key.
        key: String,
    },
    /// A key appears twice.
    #[error("GGUF metadata key `{0}` appears twice")]
    DuplicateKey(String),
    /// A tensor entry is inconsistent.
    #[error("GGUF tensor `{name}`: {why}")]
    BadTensor {
        /// The tensor.
        name: String,
        /// What is wrong.
        why: String,
    },
    /// `general.alignment` is unusable.
    #[error("GGUF `general.alignment` = {0} is not a power of two")]
    BadAlignment(u64),
}

/// One metadata value.
#[derive(Clone, Debug, PartialEq)]
pub enum MetaValue {
    /// An unsigned integer (u8, u16, u32 or u64 in the file).
    UInt(u64),
    /// A signed integer (i8, i16, i32 or i64 in the file).
    Int(i64),
    /// A float (f32 or f64 in the file).
    Float(f64),
    /// A boolean.
    Bool(bool),
    /// A UTF-8 string.
    Str(String),
    /// An array of values of one type.
    Array(Vec<MetaValue>),
}

impl MetaValue {
    /// The value as an unsigned integer, if it is a non-negative integer.
    pub fn as_u64(&self) -> Option<u64> {
        match *self {
            MetaValue::UInt(v) => Some(v),
            MetaValue::Int(v) => u64::try_from(v).ok(),
            _ => None,
        }
    }

    /// The value as a float, if it is a number.
    pub fn as_f64(&self) -> Option<f64> {
        match *self {
            MetaValue::Float(v) => Some(v),
            MetaValue::UInt(v) => Some(v as f64),
            MetaValue::Int(v) => Some(v as f64),
            _ => None,
        }
    }

    /// The value as a string, if it is one.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            MetaValue::Str(s) => Some(s),
            _ => None,
        }
    }

    /// The value as an array, if it is one.
    pub fn as_array(&self) -> Option<&[MetaValue]> {
        match self {
            MetaValue::Array(a) => Some(a),
            _ => None,
        }
    }
}

/// One entry of the tensor table, checked against the file.
#[derive(Clone, Debug, PartialEq)]
pub struct TensorInfo {
    /// The tensor's name.
    pub name: String,
    /// Dimensions in ggml order: `dims[0]` varies fastest (a row's length).
    pub dims: Vec<u64>,
    /// The ggml type code.
    pub type_code: u32,
    /// The type, if this reader knows it.
    pub ggml_type: Option<GgmlType>,
    /// Absolute byte offset of the data in the file.
    pub offset: u64,
    /// Byte length of the data (0 if the type is unknown).
    pub len: u64,
}

impl TensorInfo {
    /// The shape in row-major order (slowest dimension first), as a
    /// checkpoint would list it.
    pub fn row_major_shape(&self) -> Vec<u64> {
        self.dims.iter().rev().copied().collect()
    }

    /// The number of elements.
    pub fn numel(&self) -> u64 {
        self.dims.iter().product()
    }
}

/// A parsed GGUF header.
#[derive(Clone, Debug, PartialEq)]
pub struct GgufHeader {
    /// The format version (2 or 3).
    pub version: u32,
    /// Every metadata key and its value.
    pub metadata: BTreeMap<String, MetaValue>,
    /// The tensor table, in file order.
    pub tensors: Vec<TensorInfo>,
}

impl GgufHeader {
    /// A metadata value.
    pub fn get(&self, key: &str) -> Option<&MetaValue> {
        self.metadata.get(key)
    }

    /// A tensor by name.
    pub fn tensor(&self, name: &str) -> Option<&TensorInfo> {
        self.tensors.iter().find(|t| t.name == name)
    }
}

/// A cursor over the file's bytes that refuses to read past the end.
struct Cursor<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Cursor<'a> {
    fn take(&mut self, n: u64, what: &dyn Fn() -> String) -> Result<&'a [u8], GgufError> {
        let truncated =
            || GgufError::Truncated { what: what(), offset: self.at as u64, len: self.bytes.len() as u64 };
        let n = usize::try_from(n).map_err(|_| truncated())?;
        let end = self.at.checked_add(n).filter(|&e| e <= self.bytes.len()).ok_or_else(truncated)?;
        let out = &self.bytes[self.at..end];
        self.at = end;
        Ok(out)
    }

    fn array<const N: usize>(&mut self, what: &dyn Fn() -> String) -> Result<[u8; N], GgufError> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.take(N as u64, what)?);
        Ok(out)
    }

    fn u32(&mut self, what: &dyn Fn() -> String) -> Result<u32, GgufError> {
        self.array(what).map(u32::from_le_bytes)
    }

    fn u64(&mut self, what: &dyn Fn() -> String) -> Result<u64, GgufError> {
        self.array(what).map(u64::from_le_bytes)
    }

    fn string(&mut self, what: &dyn Fn() -> String) -> Result<String, GgufError> {
        let len = self.u64(what)?;
        let offset = self.at as u64;
        let bytes = self.take(len, what)?;
        String::from_utf8(bytes.to_vec()).map_err(|_| GgufError::BadString { what: what(), offset })
    }

    /// Bytes left: an upper bound on how many elements an array can hold
    /// (every element takes at least one byte), so a lying count cannot
    /// make us allocate more than the file's size.
    fn remaining(&self) -> u64 {
        (self.bytes.len() - self.at) as u64
    }
}

fn value(c: &mut Cursor<'_>, key: &str, code: u32, depth: u32) -> Result<MetaValue, GgufError> {
    let what = || format!("the value of metadata key `{key}`");
    Ok(match code {
        0 => MetaValue::UInt(c.array::<1>(&what)?[0] as u64),
        1 => MetaValue::Int(c.array::<1>(&what)?[0] as i8 as i64),
        2 => MetaValue::UInt(u16::from_le_bytes(c.array(&what)?) as u64),
        3 => MetaValue::Int(i16::from_le_bytes(c.array(&what)?) as i64),
        4 => MetaValue::UInt(c.u32(&what)? as u64),
        5 => MetaValue::Int(i32::from_le_bytes(c.array(&what)?) as i64),
        6 => MetaValue::Float(f32::from_le_bytes(c.array(&what)?) as f64),
        7 => MetaValue::Bool(c.array::<1>(&what)?[0] != 0),
        8 => MetaValue::Str(c.string(&what)?),
        9 => {
            if depth >= MAX_ARRAY_DEPTH {
                return Err(GgufError::TooDeep { key: key.to_string() });
            }
            let item = c.u32(&what)?;
            let n = c.u64(&what)?;
            if n > c.remaining() {
                return Err(GgufError::Truncated {
                    what: what(),
                    offset: c.at as u64,
                    len: c.bytes.len() as u64,
                });
            }
            let mut items = Vec::with_capacity(n as usize);
            for _ in 0..n {
                items.push(value(c, key, item, depth + 1)?);
            }
            MetaValue::Array(items)
        }
        10 => MetaValue::UInt(c.u64(&what)?),
        11 => MetaValue::Int(i64::from_le_bytes(c.array(&what)?)),
        12 => MetaValue::Float(f64::from_le_bytes(c.array(&what)?)),
        _ => return Err(GgufError::UnknownValueType { key: key.to_string(), code }),
    })
}

/// Parse the header of the GGUF file `bytes` (the whole file, so tensor
/// ranges can be checked against its length).
pub fn parse(bytes: &[u8]) -> Result<GgufHeader, GgufError> {
    let mut c = Cursor { bytes, at: 0 };
    if c.take(4, &|| "the magic".into()).ok() != Some(&MAGIC[..]) {
        return Err(GgufError::BadMagic);
    }
    let version = c.u32(&|| "the version".into())?;
    if !(2..=3).contains(&version) {
        return Err(GgufError::UnsupportedVersion(version));
    }
    let n_tensors = c.u64(&|| "the tensor count".into())?;
    let n_kv = c.u64(&|| "the metadata count".into())?;
    let mut metadata = BTreeMap::new();
    for i in 0..n_kv {
        let key = c.string(&|| format!("metadata key number {i}"))?;
        let code = c.u32(&|| format!("the type of metadata key `{key}`"))?;
        let v = value(&mut c, &key, code, 0)?;
        if metadata.insert(key.clone(), v).is_some() {
            return Err(GgufError::DuplicateKey(key));
        }
    }
    let alignment = match metadata.get("general.alignment") {
        None => 32,
        Some(v) => match v.as_u64() {
            Some(a) if a.is_power_of_two() && a <= 1 << 20 => a,
            _ => return Err(GgufError::BadAlignment(v.as_u64().unwrap_or(0))),
        },
    };
    // Each entry takes at least 24 bytes, which bounds a lying count.
    if n_tensors > c.remaining() / 24 {
        return Err(GgufError::Truncated {
            what: format!("a table of {n_tensors} tensors"),
            offset: c.at as u64,
            len: bytes.len() as u64,
        });
    }
    let mut raw = Vec::with_capacity(n_tensors as usize);
    for i in 0..n_tensors {
        let name = c.string(&|| format!("the name of tensor number {i}"))?;
        let what = || format!("the entry of tensor `{name}`");
        let n_dims = c.u32(&what)?;
        if n_dims == 0 || n_dims > MAX_DIMS {
            return Err(GgufError::BadTensor {
                name,
                why: format!("{n_dims} dimensions (1 to {MAX_DIMS} allowed)"),
            });
        }
        let mut dims = Vec::with_capacity(n_dims as usize);
        for _ in 0..n_dims {
            dims.push(c.u64(&what)?);
        }
        let type_code = c.u32(&what)?;
        let offset = c.u64(&what)?;
        raw.push((name, dims, type_code, offset));
    }
    let data_start = (c.at as u64).div_ceil(alignment) * alignment;
    let mut tensors: Vec<TensorInfo> = Vec::with_capacity(raw.len());
    let mut seen = HashSet::new();
    for (name, dims, type_code, offset) in raw {
        let bad = |why: String| GgufError::BadTensor { name: name.clone(), why };
        if !seen.insert(name.clone()) {
            return Err(bad("appears twice in the tensor table".into()));
        }
        if offset % alignment != 0 {
            return Err(bad(format!("data offset {offset} is not a multiple of the alignment {alignment}")));
        }
        let numel = dims
            .iter()
            .try_fold(1u64, |a, &d| a.checked_mul(d))
            .ok_or_else(|| bad("size overflows".into()))?;
        let ggml_type = GgmlType::from_code(type_code);
        let len = match ggml_type {
            Some(t) => t.byte_len(dims[0], numel).map_err(bad)?,
            None => 0,
        };
        let start = data_start.checked_add(offset).ok_or_else(|| bad("data offset overflows".into()))?;
        if start.checked_add(len).is_none_or(|end| end > bytes.len() as u64) {
            return Err(bad(format!(
                "its {len} bytes at byte {start} run past the end of the file ({} bytes): the file is truncated",
                bytes.len()
            )));
        }
        tensors.push(TensorInfo { name, dims, type_code, ggml_type, offset: start, len });
    }
    Ok(GgufHeader { version, metadata, tensors })
}
