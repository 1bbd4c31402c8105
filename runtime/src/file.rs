//! Zero-copy reader of the `.eddy` file format (layout: `runtime/FORMAT.md`).
//!
//! [`EddyFile::parse`] validates everything a later access relies on, so
//! tensor views handed out afterwards are always in bounds and aligned.

use crate::arch::{Architecture, HParam};
use crate::error::FileError;
use eddy_quant::TensorFormat;

/// File magic, the first four bytes.
pub const MAGIC: [u8; 4] = *b"EDDY";
/// Format version this reader and the writer implement.
pub const VERSION: u16 = 1;
/// Length of the fixed header in bytes.
pub const HEADER_LEN: usize = 64;
/// Size of one hyper-parameter entry.
pub const HPARAM_ENTRY_LEN: usize = 8;
/// Size of one tensor table entry.
pub const TENSOR_ENTRY_LEN: usize = 64;
/// Size of one blob table entry.
pub const BLOB_ENTRY_LEN: usize = 32;
/// Alignment of every tensor and blob, and of the file start in memory.
pub const DATA_ALIGN: usize = 64;
/// Byte offset of the checksum field in the header.
pub const CHECKSUM_OFFSET: usize = 16;
/// Most hyper-parameter entries a file may have.
pub const MAX_HPARAMS: u32 = 256;
/// Most tensors a file may have.
pub const MAX_TENSORS: u32 = 65_536;
/// Most blobs a file may have.
pub const MAX_BLOBS: u32 = 64;
/// Largest string table.
pub const MAX_STRINGS_LEN: u32 = 16 << 20;
/// Most dimensions of a tensor.
pub const MAX_DIMS: usize = 4;

/// Kind of an optional blob.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BlobKind {
    /// A Hugging Face `tokenizer.json`, UTF-8.
    TokenizerJson,
    /// A JSON quantization report written by `eddy quantize`.
    QuantReport,
    /// One byte per layer of a hybrid model: 0 for the recurrent (or
    /// convolution) mixer, 1 for attention.
    LayerKinds,
    /// The checkpoint's chat template and special tokens (JSON written by
    /// `eddy convert` from `tokenizer_config.json`).
    ChatTemplate,
    /// A kind this version does not know (kept, ignored).
    Unknown(u32),
}

impl BlobKind {
    /// Decode a blob kind code.
    pub fn from_code(code: u32) -> Self {
        match code {
            1 => BlobKind::TokenizerJson,
            2 => BlobKind::QuantReport,
            3 => BlobKind::LayerKinds,
            4 => BlobKind::ChatTemplate,
            c => BlobKind::Unknown(c),
        }
    }

    /// File code of the kind.
    pub fn code(self) -> u32 {
        match self {
            BlobKind::TokenizerJson => 1,
            BlobKind::QuantReport => 2,
            BlobKind::LayerKinds => 3,
            BlobKind::ChatTemplate => 4,
            BlobKind::Unknown(c) => c,
        }
    }
}

/// A validated `.eddy` file borrowed from memory.
#[derive(Clone, Copy, Debug)]
pub struct EddyFile<'a> {
    bytes: &'a [u8],
    architecture: Architecture,
    checksum: u32,
    hparam_count: u32,
    tensor_count: u32,
    blob_count: u32,
    strings_start: usize,
    strings_len: usize,
}

/// One tensor, borrowed from the file.
#[derive(Clone, Copy, Debug)]
pub struct TensorView<'a> {
    /// Canonical eddy name, e.g. `layers.0.in_proj.weight`.
    pub name: &'a str,
    /// Storage format.
    pub format: TensorFormat,
    dims: [u32; MAX_DIMS],
    ndim: u8,
    /// The tensor's bytes, 64-byte aligned.
    pub data: &'a [u8],
}

impl<'a> TensorView<'a> {
    /// An empty f32 vector named "" (a total fallback; never in a file).
    pub const EMPTY: TensorView<'static> =
        TensorView { name: "", format: TensorFormat::F32, dims: [0; MAX_DIMS], ndim: 1, data: &[] };

    /// A matrix view over `data` without a file (unit tests).
    #[cfg(test)]
    pub(crate) fn matrix(format: TensorFormat, rows: u32, cols: u32, data: &'a [u8]) -> Self {
        let mut dims = [0; MAX_DIMS];
        dims[0] = rows;
        dims[1] = cols;
        TensorView { name: "test", format, dims, ndim: 2, data }
    }

    /// The shape, outermost dimension first.
    pub fn shape(&self) -> &[u32] {
        &self.dims[..self.ndim as usize]
    }

    /// Number of columns (the innermost dimension).
    pub fn cols(&self) -> u64 {
        self.dims[self.ndim as usize - 1] as u64
    }

    /// Number of rows (product of all but the innermost dimension; 1 for a
    /// vector).
    pub fn rows(&self) -> u64 {
        self.dims[..self.ndim as usize - 1].iter().map(|&d| d as u64).product()
    }

    /// Rows `first..first + count` of a matrix as a matrix of their own
    /// (one expert of a stacked tensor: every format stores whole rows
    /// one after another); `None` if out of range.
    pub fn row_block(&self, first: u64, count: u64) -> Option<TensorView<'a>> {
        let cols = self.cols();
        let end = first.checked_add(count).filter(|&e| e <= self.rows() && self.ndim == 2)?;
        let start_byte = usize::try_from(self.format.byte_len(first, cols).ok()?).ok()?;
        let end_byte = usize::try_from(self.format.byte_len(end, cols).ok()?).ok()?;
        let mut dims = self.dims;
        dims[0] = count as u32;
        Some(TensorView { dims, data: self.data.get(start_byte..end_byte)?, ..*self })
    }

    /// Total element count.
    pub fn numel(&self) -> u64 {
        self.rows() * self.cols()
    }

    /// The data as f32 values, if the format is f32.
    pub fn as_f32(&self) -> Option<&'a [f32]> {
        match self.format {
            TensorFormat::F32 => bytemuck::try_cast_slice(self.data).ok(),
            _ => None,
        }
    }

    /// The data as raw f16 bits, if the format is f16.
    pub fn as_f16_bits(&self) -> Option<&'a [u16]> {
        match self.format {
            TensorFormat::F16 => bytemuck::try_cast_slice(self.data).ok(),
            _ => None,
        }
    }
}

fn read_u16(b: &[u8], off: usize) -> u16 {
    let mut a = [0u8; 2];
    if let Some(s) = b.get(off..off + 2) {
        a.copy_from_slice(s);
    }
    u16::from_le_bytes(a)
}

fn read_u32(b: &[u8], off: usize) -> u32 {
    let mut a = [0u8; 4];
    if let Some(s) = b.get(off..off + 4) {
        a.copy_from_slice(s);
    }
    u32::from_le_bytes(a)
}

fn read_u64(b: &[u8], off: usize) -> u64 {
    let mut a = [0u8; 8];
    if let Some(s) = b.get(off..off + 8) {
        a.copy_from_slice(s);
    }
    u64::from_le_bytes(a)
}

/// CRC-32 of `bytes` with the header's checksum field read as zero.
pub fn compute_checksum(bytes: &[u8]) -> u32 {
    let mut h = crc32fast::Hasher::new();
    let split = CHECKSUM_OFFSET.min(bytes.len());
    h.update(&bytes[..split]);
    if bytes.len() >= CHECKSUM_OFFSET + 4 {
        h.update(&[0u8; 4]);
        h.update(&bytes[CHECKSUM_OFFSET + 4..]);
    }
    h.finalize()
}

/// A decoded, not yet validated tensor table entry.
struct RawTensor {
    name_off: u32,
    name_len: u32,
    format_code: u32,
    format_param: u32,
    ndim: u32,
    dims: [u32; MAX_DIMS],
    reserved: u32,
    offset: u64,
    length: u64,
    reserved2: u64,
}

impl RawTensor {
    fn decode(e: &[u8]) -> Self {
        RawTensor {
            name_off: read_u32(e, 0),
            name_len: read_u32(e, 4),
            format_code: read_u32(e, 8),
            format_param: read_u32(e, 12),
            ndim: read_u32(e, 16),
            dims: [read_u32(e, 20), read_u32(e, 24), read_u32(e, 28), read_u32(e, 32)],
            reserved: read_u32(e, 36),
            offset: read_u64(e, 40),
            length: read_u64(e, 48),
            reserved2: read_u64(e, 56),
        }
    }
}

impl<'a> EddyFile<'a> {
    /// Validate `bytes` as a `.eddy` file, including its checksum.
    ///
    /// `bytes` must start at a 64-byte aligned address (mmap, flash, or
    /// [`AlignedBytes`](crate::file::AlignedBytes)); it may be longer than the
    /// file (e.g. a flash partition). Never panics, whatever the bytes.
    pub fn parse(bytes: &'a [u8]) -> Result<Self, FileError> {
        Self::parse_inner(bytes, true)
    }

    /// Like [`parse`](Self::parse) but skips the checksum pass over the whole
    /// file (structure is still fully validated). For large files on slow
    /// media whose integrity is ensured otherwise.
    pub fn parse_without_checksum(bytes: &'a [u8]) -> Result<Self, FileError> {
        Self::parse_inner(bytes, false)
    }

    fn parse_inner(bytes: &'a [u8], verify_checksum: bool) -> Result<Self, FileError> {
        if bytes.len() < HEADER_LEN {
            return Err(FileError::Truncated { needed: HEADER_LEN as u64, got: bytes.len() as u64 });
        }
        if bytes[0..4] != MAGIC {
            return Err(FileError::BadMagic);
        }
        let version = read_u16(bytes, 4);
        if version != VERSION {
            return Err(FileError::UnsupportedVersion(version));
        }
        let header_len = read_u16(bytes, 6);
        if header_len as usize != HEADER_LEN {
            return Err(FileError::BadHeaderLen(header_len));
        }
        if (bytes.as_ptr() as usize) % DATA_ALIGN != 0 {
            return Err(FileError::MisalignedBuffer);
        }
        let file_len = read_u64(bytes, 8);
        if file_len > bytes.len() as u64 || file_len < HEADER_LEN as u64 {
            return Err(FileError::Truncated { needed: file_len, got: bytes.len() as u64 });
        }
        // file_len <= bytes.len(), so it fits in usize.
        let bytes = &bytes[..file_len as usize];
        let stored = read_u32(bytes, CHECKSUM_OFFSET);
        if verify_checksum {
            let computed = compute_checksum(bytes);
            if computed != stored {
                return Err(FileError::ChecksumMismatch { stored, computed });
            }
        }
        let arch_code = read_u32(bytes, 20);
        let hparam_count = read_u32(bytes, 24);
        let tensor_count = read_u32(bytes, 28);
        let blob_count = read_u32(bytes, 32);
        let strings_len = read_u32(bytes, 36);
        let data_offset = read_u64(bytes, 40);
        if bytes[48..64].iter().any(|&b| b != 0) {
            return Err(FileError::ReservedNotZero);
        }
        let architecture =
            Architecture::from_code(arch_code).ok_or(FileError::UnknownArchitecture(arch_code))?;
        for (table, count, max) in [
            ("hyper-parameter", hparam_count, MAX_HPARAMS),
            ("tensor", tensor_count, MAX_TENSORS),
            ("blob", blob_count, MAX_BLOBS),
            ("string", strings_len, MAX_STRINGS_LEN),
        ] {
            if count > max {
                return Err(FileError::TooManyEntries { table, count });
            }
        }
        // All counts are bounded above, so these sums cannot overflow u64.
        let strings_start = HEADER_LEN as u64
            + hparam_count as u64 * HPARAM_ENTRY_LEN as u64
            + tensor_count as u64 * TENSOR_ENTRY_LEN as u64
            + blob_count as u64 * BLOB_ENTRY_LEN as u64;
        let tables_end = strings_start + strings_len as u64;
        if tables_end > file_len || data_offset < tables_end || data_offset > file_len {
            return Err(FileError::TablesOutOfBounds);
        }
        if data_offset % DATA_ALIGN as u64 != 0 {
            return Err(FileError::Misaligned { table: "data area", index: 0 });
        }
        let file = EddyFile {
            bytes,
            architecture,
            checksum: stored,
            hparam_count,
            tensor_count,
            blob_count,
            strings_start: strings_start as usize,
            strings_len: strings_len as usize,
        };
        let mut prev_end = data_offset;
        for i in 0..tensor_count {
            let t = RawTensor::decode(file.tensor_entry(i));
            file.validate_tensor(i, &t, &mut prev_end)?;
        }
        for i in 0..blob_count {
            let e = file.blob_entry(i);
            if read_u32(e, 4) != 0 || read_u64(e, 24) != 0 {
                return Err(FileError::ReservedNotZero);
            }
            let (offset, length) = (read_u64(e, 8), read_u64(e, 16));
            check_region("blob", i, offset, length, &mut prev_end, file_len)?;
        }
        Ok(file)
    }

    fn validate_tensor(&self, i: u32, t: &RawTensor, prev_end: &mut u64) -> Result<(), FileError> {
        if t.reserved != 0 || t.reserved2 != 0 {
            return Err(FileError::ReservedNotZero);
        }
        self.name(t.name_off, t.name_len).ok_or(FileError::BadName { index: i })?;
        let format = TensorFormat::from_code(t.format_code, t.format_param)
            .map_err(|error| FileError::BadFormat { index: i, error })?;
        let ndim = t.ndim as usize;
        if ndim == 0
            || ndim > MAX_DIMS
            || t.dims[..ndim].contains(&0)
            || t.dims[ndim..].iter().any(|&d| d != 0)
        {
            return Err(FileError::BadShape { index: i });
        }
        let cols = t.dims[ndim - 1] as u64;
        let mut rows = 1u64;
        for &d in &t.dims[..ndim - 1] {
            // Four u32 factors can overflow u64 only through absurd shapes.
            rows = rows
                .checked_mul(d as u64)
                .ok_or(FileError::BadFormat { index: i, error: eddy_quant::FormatError::SizeOverflow })?;
        }
        let expected =
            format.byte_len(rows, cols).map_err(|error| FileError::BadFormat { index: i, error })?;
        if expected != t.length {
            return Err(FileError::LengthMismatch { index: i, expected, stored: t.length });
        }
        check_region("tensor", i, t.offset, t.length, prev_end, self.bytes.len() as u64)
    }

    fn name(&self, off: u32, len: u32) -> Option<&'a str> {
        let end = (off as usize).checked_add(len as usize)?;
        if end > self.strings_len {
            return None;
        }
        let s = self.bytes.get(self.strings_start + off as usize..self.strings_start + end)?;
        core::str::from_utf8(s).ok()
    }

    fn tensor_entry(&self, i: u32) -> &'a [u8] {
        let start =
            HEADER_LEN + self.hparam_count as usize * HPARAM_ENTRY_LEN + i as usize * TENSOR_ENTRY_LEN;
        self.bytes.get(start..start + TENSOR_ENTRY_LEN).unwrap_or(&[])
    }

    fn blob_entry(&self, i: u32) -> &'a [u8] {
        let start = HEADER_LEN
            + self.hparam_count as usize * HPARAM_ENTRY_LEN
            + self.tensor_count as usize * TENSOR_ENTRY_LEN
            + i as usize * BLOB_ENTRY_LEN;
        self.bytes.get(start..start + BLOB_ENTRY_LEN).unwrap_or(&[])
    }

    /// The model family.
    pub fn architecture(&self) -> Architecture {
        self.architecture
    }

    /// The checksum stored in the header (identifies the model's contents).
    pub fn checksum(&self) -> u32 {
        self.checksum
    }

    /// Total file length in bytes.
    pub fn len(&self) -> usize {
        self.bytes.len()
    }

    /// Always false for a parsed file (it has at least a header).
    pub fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }

    /// All hyper-parameters as `(key code, value)` pairs, in file order.
    pub fn hparams(&self) -> impl Iterator<Item = (u32, u32)> + 'a {
        let bytes = self.bytes;
        (0..self.hparam_count as usize).map(move |i| {
            let off = HEADER_LEN + i * HPARAM_ENTRY_LEN;
            (read_u32(bytes, off), read_u32(bytes, off + 4))
        })
    }

    /// The value of a hyper-parameter (the first if repeated).
    pub fn hparam(&self, key: HParam) -> Option<u32> {
        self.hparams().find(|&(k, _)| k == key.code()).map(|(_, v)| v)
    }

    /// Number of tensors.
    pub fn tensor_count(&self) -> u32 {
        self.tensor_count
    }

    /// The i-th tensor, in file order.
    pub fn tensor_at(&self, i: u32) -> Option<TensorView<'a>> {
        if i >= self.tensor_count {
            return None;
        }
        let t = RawTensor::decode(self.tensor_entry(i));
        // Entries were validated in `parse`; the `?`s only guard the invariant.
        let name = self.name(t.name_off, t.name_len)?;
        let format = TensorFormat::from_code(t.format_code, t.format_param).ok()?;
        let data = self.bytes.get(t.offset as usize..(t.offset + t.length) as usize)?;
        Some(TensorView { name, format, dims: t.dims, ndim: t.ndim as u8, data })
    }

    /// All tensors in file order.
    pub fn tensors(&self) -> impl Iterator<Item = TensorView<'a>> + '_ {
        (0..self.tensor_count).filter_map(move |i| self.tensor_at(i))
    }

    /// Find tensors by name: returns the first match and whether there was
    /// more than one.
    pub fn find_tensor(&self, name: &str) -> (Option<TensorView<'a>>, bool) {
        let mut found = None;
        for t in self.tensors() {
            if t.name == name {
                if found.is_some() {
                    return (found, true);
                }
                found = Some(t);
            }
        }
        (found, false)
    }

    /// Number of blobs.
    pub fn blob_count(&self) -> u32 {
        self.blob_count
    }

    /// The i-th blob: its kind and bytes.
    pub fn blob_at(&self, i: u32) -> Option<(BlobKind, &'a [u8])> {
        if i >= self.blob_count {
            return None;
        }
        let e = self.blob_entry(i);
        let (offset, length) = (read_u64(e, 8) as usize, read_u64(e, 16) as usize);
        Some((BlobKind::from_code(read_u32(e, 0)), self.bytes.get(offset..offset + length)?))
    }

    /// The first blob of a kind.
    pub fn blob(&self, kind: BlobKind) -> Option<&'a [u8]> {
        (0..self.blob_count).filter_map(|i| self.blob_at(i)).find(|(k, _)| *k == kind).map(|(_, b)| b)
    }
}

fn check_region(
    table: &'static str,
    index: u32,
    offset: u64,
    length: u64,
    prev_end: &mut u64,
    file_len: u64,
) -> Result<(), FileError> {
    if offset % DATA_ALIGN as u64 != 0 {
        return Err(FileError::Misaligned { table, index });
    }
    let end = offset.checked_add(length).ok_or(FileError::OutOfBounds { table, index })?;
    if end > file_len {
        return Err(FileError::OutOfBounds { table, index });
    }
    if offset < *prev_end {
        return Err(FileError::Overlap { table, index });
    }
    *prev_end = end;
    Ok(())
}

/// Owned bytes whose start is 64-byte aligned, for files read into memory
/// (e.g. `std::fs::read` gives no alignment guarantee).
#[cfg(feature = "alloc")]
pub struct AlignedBytes {
    blocks: alloc::vec::Vec<AlignedBlock>,
    len: usize,
}

#[cfg(feature = "alloc")]
#[derive(Clone, Copy)]
#[repr(C, align(64))]
struct AlignedBlock([u8; 64]);

#[cfg(feature = "alloc")]
impl AlignedBytes {
    /// Copy `src` into fresh 64-byte aligned memory.
    pub fn copy_from(src: &[u8]) -> Self {
        let mut blocks = alloc::vec![AlignedBlock([0; 64]); src.len().div_ceil(64)];
        for (b, chunk) in blocks.iter_mut().zip(src.chunks(64)) {
            b.0[..chunk.len()].copy_from_slice(chunk);
        }
        AlignedBytes { blocks, len: src.len() }
    }

    /// The bytes.
    pub fn as_slice(&self) -> &[u8] {
        let all: &[u8] = self.blocks_as_bytes();
        &all[..self.len]
    }

    /// The bytes, mutably (e.g. to corrupt them in tests).
    pub fn as_mut_slice(&mut self) -> &mut [u8] {
        let len = self.len;
        // SAFETY-free: AlignedBlock is a plain byte array wrapper.
        let all: &mut [u8] = self.blocks_as_bytes_mut();
        &mut all[..len]
    }

    fn blocks_as_bytes(&self) -> &[u8] {
        let n = self.blocks.len() * 64;
        // Flatten the blocks without unsafe: each block is a [u8; 64].
        let flat: &[[u8; 64]] = bytemuck_blocks(&self.blocks);
        flat.as_flattened().get(..n).unwrap_or(&[])
    }

    fn blocks_as_bytes_mut(&mut self) -> &mut [u8] {
        let flat: &mut [[u8; 64]] = bytemuck_blocks_mut(&mut self.blocks);
        flat.as_flattened_mut()
    }
}

#[cfg(feature = "alloc")]
fn bytemuck_blocks(b: &[AlignedBlock]) -> &[[u8; 64]] {
    bytemuck::cast_slice(b)
}

#[cfg(feature = "alloc")]
fn bytemuck_blocks_mut(b: &mut [AlignedBlock]) -> &mut [[u8; 64]] {
    bytemuck::cast_slice_mut(b)
}

#[cfg(feature = "alloc")]
// SAFETY: AlignedBlock is repr(C) around a byte array: no padding, any bit
// pattern is valid.
unsafe impl bytemuck::Zeroable for AlignedBlock {}
#[cfg(feature = "alloc")]
// SAFETY: as above.
unsafe impl bytemuck::Pod for AlignedBlock {}
