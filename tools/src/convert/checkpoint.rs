//! The tensors of a safetensors checkpoint (one file or shards listed by
//! `model.safetensors.index.json`), read one at a time: only the shards'
//! JSON headers are read up front, and each tensor's bytes are mapped for
//! as long as it takes to convert them, so memory (and address space)
//! stays about one tensor whatever the checkpoint's size.

use super::{io_err, ConvertError};
use safetensors::Dtype;
use serde_json::Value;
use std::collections::BTreeMap;
use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};

/// A tensor's shape and values, upcast to f32.
pub(super) type ShapedF32 = (Vec<usize>, Vec<f32>);

/// Largest safetensors JSON header accepted (the safetensors crate's own
/// limit).
const MAX_HEADER: u64 = 100_000_000;

/// Bytes of a mapped tensor decoded before their pages are dropped, so a
/// tensor is resident about once (as f32), not twice (mapped and decoded).
/// A multiple of every element width.
const RELEASE_STEP: usize = 8 << 20;

/// Where one tensor is stored.
struct Stored {
    /// Index into `Checkpoint::files`.
    file: usize,
    dtype: Dtype,
    shape: Vec<usize>,
    /// Absolute byte range in the file.
    start: u64,
    len: u64,
}

/// All tensors of a checkpoint directory; or, for a model that exists only
/// as a config (random weights), the shapes of the tensors a family's
/// converter inspects, with no data.
pub(super) struct Checkpoint {
    files: Vec<(PathBuf, File)>,
    tensors: BTreeMap<String, Stored>,
    declared: BTreeMap<String, Vec<usize>>,
}

/// The shard files of `dir`: those the index lists, or every
/// `*.safetensors`, sorted.
fn shard_paths(dir: &Path) -> Result<Vec<PathBuf>, ConvertError> {
    let index = dir.join("model.safetensors.index.json");
    let mut paths: Vec<PathBuf> = if index.exists() {
        let text = crate::validate::read_regular(&index).map_err(io_err(&index))?;
        let v: Value = serde_json::from_slice(&text)
            .map_err(|source| ConvertError::Json { path: index.clone(), source })?;
        let map = v.get("weight_map").and_then(Value::as_object).ok_or(ConvertError::ConfigKey {
            key: "weight_map",
            expected: "an object (in model.safetensors.index.json)",
        })?;
        map.values().filter_map(Value::as_str).map(|s| dir.join(s)).collect()
    } else {
        let mut v = Vec::new();
        for entry in std::fs::read_dir(dir).map_err(io_err(dir))? {
            let p = entry.map_err(io_err(dir))?.path();
            if p.extension().is_some_and(|e| e == "safetensors") {
                v.push(p);
            }
        }
        v
    };
    paths.sort();
    paths.dedup();
    if paths.is_empty() {
        return Err(ConvertError::NoWeights(dir.to_path_buf()));
    }
    Ok(paths)
}

fn dtype_of(name: &str) -> Option<Dtype> {
    Some(match name {
        "BOOL" => Dtype::BOOL,
        "U8" => Dtype::U8,
        "I8" => Dtype::I8,
        "I16" => Dtype::I16,
        "U16" => Dtype::U16,
        "F16" => Dtype::F16,
        "BF16" => Dtype::BF16,
        "I32" => Dtype::I32,
        "U32" => Dtype::U32,
        "F32" => Dtype::F32,
        "F64" => Dtype::F64,
        "I64" => Dtype::I64,
        "U64" => Dtype::U64,
        _ => return None,
    })
}

/// Read the header of shard number `index`: every tensor's dtype, shape
/// and byte range, checked against the file's length.
fn read_header(path: &Path, file: &mut File, index: usize) -> Result<Vec<(String, Stored)>, String> {
    let file_len = file.metadata().map_err(|e| e.to_string())?.len();
    let mut n = [0u8; 8];
    file.read_exact(&mut n).map_err(|e| format!("header length: {e}"))?;
    let n = u64::from_le_bytes(n);
    if n > MAX_HEADER || 8 + n > file_len {
        return Err(format!("header length {n} does not fit the file ({file_len} bytes)"));
    }
    let mut json = vec![0u8; n as usize];
    file.read_exact(&mut json).map_err(|e| format!("header: {e}"))?;
    let header: serde_json::Map<String, Value> =
        serde_json::from_slice(&json).map_err(|e| format!("header is not a JSON object: {e}"))?;
    let data_start = 8 + n;
    let mut out = Vec::new();
    for (name, info) in header {
        if name == "__metadata__" {
            continue;
        }
        let bad = |why: &str| format!("tensor `{name}` ({}): {why}", path.display());
        let dtype_name = info.get("dtype").and_then(Value::as_str).ok_or_else(|| bad("no dtype"))?;
        let dtype = dtype_of(dtype_name).ok_or_else(|| bad("unknown dtype"))?;
        let shape: Vec<usize> = info
            .get("shape")
            .and_then(Value::as_array)
            .and_then(|a| a.iter().map(|d| d.as_u64().map(|d| d as usize)).collect())
            .ok_or_else(|| bad("shape is not a list of sizes"))?;
        let offsets: Vec<u64> = info
            .get("data_offsets")
            .and_then(Value::as_array)
            .and_then(|a| a.iter().map(Value::as_u64).collect())
            .ok_or_else(|| bad("data_offsets is not a pair of offsets"))?;
        let [begin, end] = offsets[..] else { return Err(bad("data_offsets is not a pair of offsets")) };
        let numel = shape.iter().try_fold(1u64, |a, &d| a.checked_mul(d as u64));
        let bytes = numel.and_then(|n| n.checked_mul((dtype.bitsize() / 8) as u64));
        if end < begin || bytes != Some(end - begin) {
            return Err(bad("data_offsets do not match dtype and shape"));
        }
        if data_start + end > file_len {
            return Err(bad("data runs past the end of the file"));
        }
        out.push((name, Stored { file: index, dtype, shape, start: data_start + begin, len: end - begin }));
    }
    Ok(out)
}

impl Checkpoint {
    /// Read the headers of every shard in `dir`.
    pub(super) fn open(dir: &Path) -> Result<Self, ConvertError> {
        let mut files = Vec::new();
        let mut tensors = BTreeMap::new();
        for p in shard_paths(dir)? {
            let mut f = crate::validate::open_regular(&p).map_err(io_err(&p))?;
            let header = read_header(&p, &mut f, files.len())
                .map_err(|message| ConvertError::SafeTensors { path: p.clone(), message })?;
            for (name, stored) in header {
                // The first shard that has a name wins, as before.
                tensors.entry(name).or_insert(stored);
            }
            files.push((p, f));
        }
        Ok(Checkpoint { files, tensors, declared: BTreeMap::new() })
    }

    /// A checkpoint without data whose tensors have the `declared` shapes.
    pub(super) fn declared(declared: &[(String, Vec<usize>)]) -> Self {
        Checkpoint {
            files: Vec::new(),
            tensors: BTreeMap::new(),
            declared: declared.iter().cloned().collect(),
        }
    }

    /// Every stored tensor name, sorted.
    pub(super) fn names(&self) -> Vec<String> {
        self.tensors.keys().cloned().collect()
    }

    /// The shape of a tensor, if present.
    pub(super) fn shape(&self, name: &str) -> Option<Vec<usize>> {
        match self.tensors.get(name) {
            Some(t) => Some(t.shape.clone()),
            None => self.declared.get(name).cloned(),
        }
    }

    /// Shape of a stored tensor whose dtype converts to f32; `None` if
    /// absent. For checking every tensor before any is read.
    pub(super) fn check_readable(&self, name: &str) -> Result<Option<Vec<usize>>, ConvertError> {
        let Some(t) = self.tensors.get(name) else { return Ok(None) };
        match t.dtype {
            Dtype::F32 | Dtype::F16 | Dtype::BF16 => Ok(Some(t.shape.clone())),
            other => {
                Err(ConvertError::UnsupportedDtype { hf_name: name.to_string(), dtype: format!("{other:?}") })
            }
        }
    }

    /// Read a tensor as f32 values with its shape, if present. Only this
    /// tensor's bytes are mapped, and only while they are converted.
    pub(super) fn read_f32(&self, name: &str) -> Result<Option<ShapedF32>, ConvertError> {
        let Some(t) = self.tensors.get(name) else { return Ok(None) };
        self.check_readable(name)?;
        let decode: fn(&[u8]) -> f32 = match t.dtype {
            Dtype::F32 => |b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]),
            Dtype::F16 => |b| half::f16::from_le_bytes([b[0], b[1]]).to_f32(),
            _ => |b| half::bf16::from_le_bytes([b[0], b[1]]).to_f32(),
        };
        let (path, file) = &self.files[t.file];
        if t.len == 0 {
            return Ok(Some((t.shape.clone(), Vec::new())));
        }
        // SAFETY: a read-only map of an input file we do not modify; it
        // lives only until the values are copied out below.
        let map = unsafe { memmap2::MmapOptions::new().offset(t.start).len(t.len as usize).map(file) }
            .map_err(io_err(path))?;
        // `check_readable` let only F32, F16 and BF16 through.
        let width = t.dtype.bitsize() / 8;
        let mut values = Vec::with_capacity(t.len as usize / width);
        let mut at = 0;
        while at < map.len() {
            let end = (at + RELEASE_STEP).min(map.len());
            values.extend(map[at..end].chunks_exact(width).map(decode));
            // SAFETY: MADV_DONTNEED on this read-only private file mapping
            // only drops clean pages (already decoded); a later access would
            // fault the same bytes back in from the unmodified file.
            let dropped =
                unsafe { map.unchecked_advise_range(memmap2::UncheckedAdvice::DontNeed, at, end - at) };
            // Dropping pages early only saves memory; a refusal changes nothing.
            drop(dropped);
            at = end;
        }
        Ok(Some((t.shape.clone(), values)))
    }
}
