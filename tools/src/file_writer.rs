//! Write a `.eddy` file tensor by tensor, so a converter never holds more
//! than the tensor it is writing. Data goes out in file order as it comes;
//! the header, tables and names (whose size depends only on the tensor
//! names and the number of blobs) are written last into the space left at
//! the start, with the checksum combined from the CRC of that head and the
//! CRC of the data streamed after it. The bytes are the same as
//! `eddy::writer::FileBuilder::to_bytes` for the same parts (tests check it).
//!
//! [`TempOutput`] puts the result at its path atomically: a run that fails
//! leaves no partial file and never touches an existing one.

use crate::file_layout::{FileLayout, TensorEntry};
use eddy::arch::Architecture;
use eddy::file::{BlobKind, BLOB_ENTRY_LEN, CHECKSUM_OFFSET, DATA_ALIGN, HEADER_LEN, HPARAM_ENTRY_LEN};
use eddy::file::{MAX_DIMS, TENSOR_ENTRY_LEN};
use eddy::writer::{TensorData, WriteError};
use eddy::TensorFormat;
use std::fs::File;
use std::io::{BufWriter, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

/// Why a streamed file could not be written.
#[derive(Debug, thiserror::Error)]
pub enum StreamError {
    /// The output could not be written.
    #[error("cannot write the output: {0}")]
    Io(#[from] std::io::Error),
    /// A tensor does not fit its format and shape.
    #[error("{0}")]
    Write(#[from] WriteError),
    /// Parts came in another order or number than announced.
    #[error("internal error: {0}")]
    Order(String),
}

/// Values per encoding chunk of [`StreamingFile::tensor_f32`]: bounds the
/// scratch buffer, whatever the tensor size.
const ENCODE_CHUNK: usize = 16 * 1024;

/// A `.eddy` file being written in order: tensors (names announced up
/// front), then blobs (their number announced up front), then
/// [`StreamingFile::finish`].
pub struct StreamingFile<W: Write + Seek> {
    out: W,
    architecture: Architecture,
    hparams: Vec<(u32, u32)>,
    names: Vec<String>,
    entries: Vec<TensorEntry>,
    blob_count: usize,
    blobs: Vec<(BlobKind, Vec<u8>)>,
    data_offset: u64,
    /// Absolute offset of the next byte written.
    pos: u64,
    /// CRC-32 state over `data_offset..pos`.
    data_crc: crc32fast::Hasher,
    scratch: Vec<u8>,
}

impl<W: Write + Seek> StreamingFile<W> {
    /// Start a file whose tensors will be `names` in this order and which
    /// will have `blob_count` blobs. Later values of a repeated
    /// hyper-parameter replace earlier ones, as in `FileBuilder`.
    pub fn new(
        mut out: W,
        architecture: Architecture,
        hparams: &[(u32, u32)],
        names: Vec<String>,
        blob_count: usize,
    ) -> Result<Self, StreamError> {
        let mut header: Vec<(u32, u32)> = Vec::new();
        for &(k, v) in hparams {
            header.retain(|(o, _)| *o != k);
            header.push((k, v));
        }
        let strings_len: usize = names.iter().map(String::len).sum();
        let tables_end = HEADER_LEN
            + header.len() * HPARAM_ENTRY_LEN
            + names.len() * TENSOR_ENTRY_LEN
            + blob_count * BLOB_ENTRY_LEN
            + strings_len;
        let data_offset = (tables_end.div_ceil(DATA_ALIGN) * DATA_ALIGN) as u64;
        out.seek(SeekFrom::Start(data_offset))?;
        Ok(StreamingFile {
            out,
            architecture,
            hparams: header,
            names,
            entries: Vec::new(),
            blob_count,
            blobs: Vec::new(),
            data_offset,
            pos: data_offset,
            data_crc: crc32fast::Hasher::new(),
            scratch: Vec::new(),
        })
    }

    /// Write `bytes` at the current position, hashing them.
    fn put(&mut self, bytes: &[u8]) -> Result<(), StreamError> {
        self.out.write_all(bytes)?;
        self.data_crc.update(bytes);
        self.pos += bytes.len() as u64;
        Ok(())
    }

    /// Zero padding up to the next `DATA_ALIGN` boundary.
    fn align(&mut self) -> Result<(), StreamError> {
        let pad = (self.pos.next_multiple_of(DATA_ALIGN as u64) - self.pos) as usize;
        self.put(&[0u8; DATA_ALIGN][..pad])
    }

    /// Check the next tensor against the announced names and its shape
    /// against its format as `FileBuilder::tensor` does; its byte length.
    fn begin_tensor(&mut self, entry: &TensorEntry) -> Result<u64, StreamError> {
        let i = self.entries.len();
        match self.names.get(i) {
            Some(n) if *n == entry.name => {}
            other => {
                return Err(StreamError::Order(format!(
                    "tensor `{}` written where {:?} was announced",
                    entry.name, other
                )))
            }
        }
        let bad = || WriteError::BadShape { name: entry.name.clone() };
        if entry.shape.is_empty() || entry.shape.len() > MAX_DIMS || entry.shape.contains(&0) {
            return Err(bad().into());
        }
        let cols = *entry.shape.last().unwrap_or(&1) as u64;
        let rows: u64 = entry.shape[..entry.shape.len() - 1].iter().map(|&d| d as u64).product();
        let len = entry.format.byte_len(rows, cols).map_err(|_| bad())?;
        if self.names[..i].contains(&entry.name) {
            return Err(WriteError::DuplicateName(entry.name.clone()).into());
        }
        self.align()?;
        Ok(len)
    }

    /// Write the next tensor from its bytes.
    pub fn tensor(&mut self, t: &TensorData) -> Result<(), StreamError> {
        let entry = TensorEntry { name: t.name.clone(), format: t.format, shape: t.shape.clone() };
        let expected = self.begin_tensor(&entry)?;
        if expected != t.data.len() as u64 {
            let got = t.data.len() as u64;
            return Err(WriteError::LengthMismatch { name: entry.name, expected, got }.into());
        }
        self.put(&t.data)?;
        self.entries.push(entry);
        Ok(())
    }

    /// Write the next tensor from f32 values, stored as `format` (F32 or
    /// F16, encoded as `TensorData::f32` / `TensorData::f16` do) a chunk
    /// at a time, without a second copy of the tensor.
    pub fn tensor_f32(
        &mut self,
        name: String,
        shape: &[u32],
        format: TensorFormat,
        values: &[f32],
    ) -> Result<(), StreamError> {
        let entry = TensorEntry { name, format, shape: shape.to_vec() };
        let width = match format {
            TensorFormat::F32 => 4,
            TensorFormat::F16 => 2,
            other => return Err(StreamError::Order(format!("tensor_f32 cannot encode {}", other.name()))),
        };
        let expected = self.begin_tensor(&entry)?;
        let got = values.len() as u64 * width;
        if expected != got {
            return Err(WriteError::LengthMismatch { name: entry.name, expected, got }.into());
        }
        let mut scratch = std::mem::take(&mut self.scratch);
        for chunk in values.chunks(ENCODE_CHUNK) {
            scratch.clear();
            if width == 4 {
                scratch.extend(chunk.iter().flat_map(|v| v.to_le_bytes()));
            } else {
                scratch.extend(chunk.iter().flat_map(|&v| eddy_quant::f32_to_f16_bits(v).to_le_bytes()));
            }
            self.put(&scratch)?;
        }
        self.scratch = scratch;
        self.entries.push(entry);
        Ok(())
    }

    /// Write the next blob (after every tensor).
    pub fn blob(&mut self, kind: BlobKind, data: Vec<u8>) -> Result<(), StreamError> {
        if self.entries.len() != self.names.len() || self.blobs.len() >= self.blob_count {
            return Err(StreamError::Order(format!(
                "blob {kind:?} written after {} of {} tensors and {} of {} blobs",
                self.entries.len(),
                self.names.len(),
                self.blobs.len(),
                self.blob_count
            )));
        }
        self.align()?;
        self.put(&data)?;
        self.blobs.push((kind, data));
        Ok(())
    }

    /// Write the head (header, tables, names, checksum) and return the
    /// output and the file length.
    pub fn finish(mut self) -> Result<(W, u64), StreamError> {
        if self.entries.len() != self.names.len() || self.blobs.len() != self.blob_count {
            return Err(StreamError::Order(format!(
                "file finished with {} of {} tensors and {} of {} blobs",
                self.entries.len(),
                self.names.len(),
                self.blobs.len(),
                self.blob_count
            )));
        }
        self.align()?;
        let layout = FileLayout::new(
            self.architecture,
            &self.hparams,
            std::mem::take(&mut self.entries),
            std::mem::take(&mut self.blobs),
        )?;
        // The layout places every part by the same rule as the writes
        // above; a difference would be a bug here, never a bad input.
        if layout.data_offset() as u64 != self.data_offset || layout.len() as u64 != self.pos {
            return Err(StreamError::Order("streamed parts do not match the file layout".into()));
        }
        let mut head = vec![0u8; layout.data_offset()];
        layout.write_head(&mut head);
        // CRC of the whole file, checksum field read as zero (it is zero
        // in `head` now): the head's CRC extended by the data's.
        let mut crc = crc32fast::Hasher::new();
        crc.update(&head);
        crc.combine(&self.data_crc);
        head[CHECKSUM_OFFSET..CHECKSUM_OFFSET + 4].copy_from_slice(&crc.finalize().to_le_bytes());
        self.out.seek(SeekFrom::Start(0))?;
        self.out.write_all(&head)?;
        self.out.flush()?;
        Ok((self.out, self.pos))
    }
}

/// A temporary file beside `dest` that becomes `dest` on
/// [`TempOutput::persist`] and is removed if dropped before.
pub struct TempOutput {
    tmp: PathBuf,
    dest: PathBuf,
    persisted: bool,
}

impl TempOutput {
    /// Create the temporary file (a new name in `dest`'s directory, so the
    /// final rename is atomic and concurrent runs do not collide).
    pub fn create(dest: &Path) -> std::io::Result<(Self, BufWriter<File>)> {
        let name = dest.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        let dir = dest.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
        let mut attempt = 0u32;
        loop {
            let tmp = dir.join(format!(".{name}.{}.{attempt}.tmp", std::process::id()));
            match std::fs::OpenOptions::new().read(true).write(true).create_new(true).open(&tmp) {
                Ok(file) => {
                    let guard = TempOutput { tmp, dest: dest.to_path_buf(), persisted: false };
                    return Ok((guard, BufWriter::with_capacity(1 << 20, file)));
                }
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists && attempt < 100 => attempt += 1,
                Err(e) => return Err(e),
            }
        }
    }

    /// The temporary file's path (to read back what was written).
    pub fn path(&self) -> &Path {
        &self.tmp
    }

    /// Flush `file` to disk and rename the temporary file to `dest`.
    pub fn persist(mut self, file: BufWriter<File>) -> std::io::Result<()> {
        let file = file.into_inner().map_err(|e| e.into_error())?;
        file.sync_all()?;
        drop(file);
        std::fs::rename(&self.tmp, &self.dest)?;
        self.persisted = true;
        Ok(())
    }
}

impl Drop for TempOutput {
    fn drop(&mut self) {
        if !self.persisted {
            // Best effort: the run already failed; a leftover temp file is
            // named so it is easy to recognize.
            let _ = std::fs::remove_file(&self.tmp);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use eddy::writer::FileBuilder;
    use std::io::Cursor;

    /// Tensors, header words and blobs of a small file.
    type Parts = (Vec<TensorData>, Vec<(u32, u32)>, Vec<(BlobKind, Vec<u8>)>);

    fn parts() -> Parts {
        let q = TensorFormat::from_code(4, 64).unwrap();
        let values: Vec<f32> = (0..35).map(|i| i as f32 * 0.37 - 3.0).collect();
        let tensors = vec![
            TensorData::f32("norm_f.weight", &[3], &[1.0, 2.0, 3.0]),
            TensorData { name: "layers.0.w".into(), format: q, shape: vec![2, 128], data: vec![7; 80] },
            TensorData::f16("embed.weight", &[5, 7], &values),
            TensorData::f32("big", &[3, 20_000], &vec![0.25; 60_000]),
        ];
        let hparams = vec![(1u32, 10u32), (2, 20), (1, 11)];
        let blobs = vec![(BlobKind::LayerKinds, vec![0u8, 1, 0]), (BlobKind::TokenizerJson, vec![b'x'; 70])];
        (tensors, hparams, blobs)
    }

    #[test]
    fn same_bytes_as_the_file_builder() {
        let (tensors, hparams, blobs) = parts();
        let mut b = FileBuilder::new(Architecture::Lfm2);
        for &(k, v) in &hparams {
            b.hparam_raw(k, v);
        }
        for t in tensors.iter().cloned() {
            b.tensor(t).unwrap();
        }
        for (k, d) in blobs.iter().cloned() {
            b.blob(k, d);
        }
        let expected = b.to_bytes();

        let names = tensors.iter().map(|t| t.name.clone()).collect();
        let mut w =
            StreamingFile::new(Cursor::new(Vec::new()), Architecture::Lfm2, &hparams, names, blobs.len())
                .unwrap();
        for t in &tensors {
            if t.format == TensorFormat::F16 && t.name == "embed.weight" {
                let values: Vec<f32> = (0..35).map(|i| i as f32 * 0.37 - 3.0).collect();
                w.tensor_f32(t.name.clone(), &t.shape, TensorFormat::F16, &values).unwrap();
            } else if t.name == "big" {
                w.tensor_f32(t.name.clone(), &t.shape, TensorFormat::F32, &vec![0.25; 60_000]).unwrap();
            } else {
                w.tensor(t).unwrap();
            }
        }
        for (k, d) in blobs {
            w.blob(k, d).unwrap();
        }
        let (out, len) = w.finish().unwrap();
        assert_eq!(len as usize, expected.len());
        assert_eq!(out.into_inner(), expected);
    }

    #[test]
    fn rejects_parts_out_of_order() {
        let (tensors, hparams, _) = parts();
        let names = vec!["a".to_string()];
        let mut w =
            StreamingFile::new(Cursor::new(Vec::new()), Architecture::Gru, &hparams, names, 0).unwrap();
        assert!(matches!(w.tensor(&tensors[0]), Err(StreamError::Order(_))));
        let names = vec![tensors[0].name.clone()];
        let w = StreamingFile::new(Cursor::new(Vec::new()), Architecture::Gru, &hparams, names, 1).unwrap();
        assert!(matches!(w.finish(), Err(StreamError::Order(_))));
        let bad = TensorData { data: vec![0; 8], ..tensors[0].clone() };
        let names = vec![bad.name.clone()];
        let mut w =
            StreamingFile::new(Cursor::new(Vec::new()), Architecture::Gru, &hparams, names, 0).unwrap();
        assert!(matches!(w.tensor(&bad), Err(StreamError::Write(WriteError::LengthMismatch { .. }))));
    }

    #[test]
    fn a_dropped_temp_output_leaves_nothing() {
        let dir = std::env::temp_dir().join(format!("eddy-temp-output-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let dest = dir.join("m.eddy");
        std::fs::write(&dest, b"old").unwrap();
        {
            let (guard, mut file) = TempOutput::create(&dest).unwrap();
            file.write_all(b"partial").unwrap();
            file.flush().unwrap();
            assert!(guard.path().exists());
        }
        let left: Vec<_> = std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(left, vec![std::ffi::OsString::from("m.eddy")]);
        assert_eq!(std::fs::read(&dest).unwrap(), b"old");
        let (guard, mut file) = TempOutput::create(&dest).unwrap();
        file.write_all(b"new").unwrap();
        guard.persist(file).unwrap();
        assert_eq!(std::fs::read(&dest).unwrap(), b"new");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
