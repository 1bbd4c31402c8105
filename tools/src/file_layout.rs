//! A `.eddy` file laid out before its tensor data exists, so tensors can be
//! written one at a time straight into their place in the final buffer
//! (`eddy::writer::FileBuilder` holds every tensor until `to_bytes`, then
//! copies them all). The bytes are the same as `FileBuilder::to_bytes`
//! gives for the same parts (a test checks it); the format is
//! `runtime/FORMAT.md`.

use eddy::arch::Architecture;
use eddy::file::{
    compute_checksum, BlobKind, BLOB_ENTRY_LEN, CHECKSUM_OFFSET, DATA_ALIGN, HEADER_LEN, HPARAM_ENTRY_LEN,
    MAGIC, MAX_DIMS, TENSOR_ENTRY_LEN, VERSION,
};
use eddy::writer::WriteError;
use eddy::TensorFormat;
use std::ops::Range;

/// A tensor's table entry, before its data.
#[derive(Clone, Debug)]
pub struct TensorEntry {
    /// Canonical name.
    pub name: String,
    /// Storage format.
    pub format: TensorFormat,
    /// Shape, outermost first.
    pub shape: Vec<u32>,
}

/// Where every part of a file goes.
#[derive(Clone, Debug)]
pub struct FileLayout {
    architecture: Architecture,
    hparams: Vec<(u32, u32)>,
    tensors: Vec<TensorEntry>,
    /// Byte range of each tensor's data.
    ranges: Vec<Range<usize>>,
    blobs: Vec<(BlobKind, Vec<u8>)>,
    blob_offsets: Vec<usize>,
    data_offset: usize,
    len: usize,
}

impl FileLayout {
    /// Lay out a file; checks every shape as `FileBuilder::tensor` does.
    /// Later values of a repeated hyper-parameter replace earlier ones.
    pub fn new(
        architecture: Architecture,
        hparams: &[(u32, u32)],
        tensors: Vec<TensorEntry>,
        blobs: Vec<(BlobKind, Vec<u8>)>,
    ) -> Result<Self, WriteError> {
        let mut header: Vec<(u32, u32)> = Vec::new();
        for &(k, v) in hparams {
            header.retain(|(o, _)| *o != k);
            header.push((k, v));
        }
        let mut lengths = Vec::with_capacity(tensors.len());
        for (i, t) in tensors.iter().enumerate() {
            let bad = || WriteError::BadShape { name: t.name.clone() };
            if t.shape.is_empty() || t.shape.len() > MAX_DIMS || t.shape.contains(&0) {
                return Err(bad());
            }
            let cols = *t.shape.last().unwrap_or(&1) as u64;
            let rows: u64 = t.shape[..t.shape.len() - 1].iter().map(|&d| d as u64).product();
            let bytes = t.format.byte_len(rows, cols).map_err(|_| bad())?;
            lengths.push(usize::try_from(bytes).map_err(|_| bad())?);
            if tensors[..i].iter().any(|o| o.name == t.name) {
                return Err(WriteError::DuplicateName(t.name.clone()));
            }
        }
        let strings_len: usize = tensors.iter().map(|t| t.name.len()).sum();
        let tables_end = HEADER_LEN
            + header.len() * HPARAM_ENTRY_LEN
            + tensors.len() * TENSOR_ENTRY_LEN
            + blobs.len() * BLOB_ENTRY_LEN
            + strings_len;
        let data_offset = tables_end.div_ceil(DATA_ALIGN) * DATA_ALIGN;
        let mut cursor = data_offset;
        let mut ranges = Vec::with_capacity(tensors.len());
        for len in lengths {
            ranges.push(cursor..cursor + len);
            cursor = (cursor + len).div_ceil(DATA_ALIGN) * DATA_ALIGN;
        }
        let mut blob_offsets = Vec::with_capacity(blobs.len());
        for (_, b) in &blobs {
            blob_offsets.push(cursor);
            cursor = (cursor + b.len()).div_ceil(DATA_ALIGN) * DATA_ALIGN;
        }
        Ok(FileLayout {
            architecture,
            hparams: header,
            tensors,
            ranges,
            blobs,
            blob_offsets,
            data_offset,
            len: cursor,
        })
    }

    /// Total file length in bytes.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the file is empty (never: the header alone has bytes).
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The tensor entries in file order.
    pub fn tensors(&self) -> &[TensorEntry] {
        &self.tensors
    }

    /// Where tensor `i`'s data goes in the file.
    pub fn tensor_range(&self, i: usize) -> Range<usize> {
        self.ranges.get(i).cloned().unwrap_or(0..0)
    }

    /// Where tensor data starts: the header, tables and names fill
    /// `0..data_offset()`.
    pub fn data_offset(&self) -> usize {
        self.data_offset
    }

    /// Where blob `i`'s data goes in the file.
    pub fn blob_range(&self, i: usize) -> Range<usize> {
        match (self.blob_offsets.get(i), self.blobs.get(i)) {
            (Some(&off), Some((_, b))) => off..off + b.len(),
            _ => 0..0,
        }
    }

    /// Write header, tables, names and blobs into `out` (`len()` bytes,
    /// zeroed: padding is not written). Tensor data goes into
    /// `tensor_range`s; then [`FileLayout::seal`].
    pub fn write_tables(&self, out: &mut [u8]) {
        let head = out.len().min(self.data_offset);
        self.write_head(&mut out[..head]);
        for ((_, b), &off) in self.blobs.iter().zip(&self.blob_offsets) {
            if let Some(dst) = out.get_mut(off..off + b.len()) {
                dst.copy_from_slice(b);
            }
        }
    }

    /// Write header, tables and names into `out` (`data_offset()` bytes,
    /// zeroed), with the checksum field left zero: the part of the file
    /// before any data, which a streaming writer puts in place last.
    pub fn write_head(&self, out: &mut [u8]) {
        let mut w = Cursor { out, at: 0 };
        w.put(&MAGIC);
        w.put(&VERSION.to_le_bytes());
        w.put(&(HEADER_LEN as u16).to_le_bytes());
        w.put(&(self.len as u64).to_le_bytes());
        w.put(&0u32.to_le_bytes()); // checksum, set by `seal`
        w.put(&self.architecture.code().to_le_bytes());
        w.put(&(self.hparams.len() as u32).to_le_bytes());
        w.put(&(self.tensors.len() as u32).to_le_bytes());
        w.put(&(self.blobs.len() as u32).to_le_bytes());
        let strings_len: usize = self.tensors.iter().map(|t| t.name.len()).sum();
        w.put(&(strings_len as u32).to_le_bytes());
        w.put(&(self.data_offset as u64).to_le_bytes());
        w.at = HEADER_LEN;
        for (k, v) in &self.hparams {
            w.put(&k.to_le_bytes());
            w.put(&v.to_le_bytes());
        }
        let mut name_off = 0u32;
        for (t, range) in self.tensors.iter().zip(&self.ranges) {
            w.put(&name_off.to_le_bytes());
            w.put(&(t.name.len() as u32).to_le_bytes());
            name_off += t.name.len() as u32;
            w.put(&t.format.code().to_le_bytes());
            w.put(&t.format.param().to_le_bytes());
            w.put(&(t.shape.len() as u32).to_le_bytes());
            for i in 0..MAX_DIMS {
                w.put(&t.shape.get(i).copied().unwrap_or(0).to_le_bytes());
            }
            w.put(&0u32.to_le_bytes());
            w.put(&(range.start as u64).to_le_bytes());
            w.put(&(range.len() as u64).to_le_bytes());
            w.put(&0u64.to_le_bytes());
        }
        for ((kind, b), off) in self.blobs.iter().zip(&self.blob_offsets) {
            w.put(&kind.code().to_le_bytes());
            w.put(&0u32.to_le_bytes());
            w.put(&(*off as u64).to_le_bytes());
            w.put(&(b.len() as u64).to_le_bytes());
            w.put(&0u64.to_le_bytes());
        }
        for t in &self.tensors {
            w.put(t.name.as_bytes());
        }
    }

    /// Set the checksum of a fully written file.
    pub fn seal(out: &mut [u8]) {
        let crc = compute_checksum(out);
        if let Some(field) = out.get_mut(CHECKSUM_OFFSET..CHECKSUM_OFFSET + 4) {
            field.copy_from_slice(&crc.to_le_bytes());
        }
    }
}

/// Sequential writes into a preallocated buffer.
struct Cursor<'a> {
    out: &'a mut [u8],
    at: usize,
}

impl Cursor<'_> {
    fn put(&mut self, bytes: &[u8]) {
        // The layout sized `out` for every part, so this always fits.
        if let Some(dst) = self.out.get_mut(self.at..self.at + bytes.len()) {
            dst.copy_from_slice(bytes);
        }
        self.at += bytes.len();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use eddy::writer::{FileBuilder, TensorData};

    #[test]
    fn same_bytes_as_the_file_builder() {
        let q = TensorFormat::from_code(4, 64).unwrap();
        let parts = [
            TensorData::f32("norm_f.weight", &[3], &[1.0, 2.0, 3.0]),
            TensorData { name: "layers.0.w".into(), format: q, shape: vec![2, 128], data: vec![7; 80] },
            TensorData::f16("embed.weight", &[5, 7], &[0.5; 35]),
        ];
        let hparams = [(1u32, 10u32), (2, 20), (1, 11)];
        let blobs = vec![(BlobKind::LayerKinds, vec![0u8, 1, 0]), (BlobKind::TokenizerJson, vec![b'x'; 70])];
        let mut b = FileBuilder::new(Architecture::Lfm2);
        for (k, v) in hparams {
            b.hparam_raw(k, v);
        }
        for t in parts.iter().cloned() {
            b.tensor(t).unwrap();
        }
        for (k, d) in blobs.iter().cloned() {
            b.blob(k, d);
        }
        let expected = b.to_bytes();

        let entries = parts
            .iter()
            .map(|t| TensorEntry { name: t.name.clone(), format: t.format, shape: t.shape.clone() })
            .collect();
        let layout = FileLayout::new(Architecture::Lfm2, &hparams, entries, blobs).unwrap();
        let mut out = vec![0u8; layout.len()];
        layout.write_tables(&mut out);
        for (i, t) in parts.iter().enumerate() {
            out[layout.tensor_range(i)].copy_from_slice(&t.data);
        }
        FileLayout::seal(&mut out);
        assert_eq!(out, expected);
    }

    #[test]
    fn rejects_what_the_builder_rejects() {
        let e =
            |name: &str, shape: Vec<u32>| TensorEntry { name: name.into(), format: TensorFormat::F32, shape };
        let bad = FileLayout::new(Architecture::Gru, &[], vec![e("a", vec![0, 3])], vec![]);
        assert!(matches!(bad, Err(WriteError::BadShape { .. })));
        let dup = FileLayout::new(Architecture::Gru, &[], vec![e("a", vec![3]), e("a", vec![2])], vec![]);
        assert_eq!(dup.unwrap_err(), WriteError::DuplicateName("a".into()));
    }
}
