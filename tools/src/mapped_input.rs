//! A `.eddy` file mapped for reading by a tool that walks it tensor by
//! tensor (`eddy quantize`): validated without touching every page of the
//! map (the checksum is computed with ordinary reads), and with a way to
//! drop the pages of a tensor once it is done, so the resident memory stays
//! about one tensor instead of growing to the whole file.

use eddy::file::{EddyFile, CHECKSUM_OFFSET};
use std::io::Read;
use std::path::{Path, PathBuf};

/// Why a mapped model could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum MapError {
    /// The file could not be read.
    #[error("cannot read {path}: {source}")]
    Io {
        /// The path.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The file is not a valid `.eddy` file.
    #[error("{path}: {message}")]
    Invalid {
        /// The path.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
}

/// A read-only map of a `.eddy` file.
pub struct MappedInput {
    map: memmap2::Mmap,
}

/// CRC-32 of the first `len` bytes of `path` read in chunks, the checksum
/// field read as zero (as `eddy::file::compute_checksum`).
fn checksum_by_reading(path: &Path, len: usize) -> std::io::Result<u32> {
    let mut file = std::fs::File::open(path)?.take(len as u64);
    let mut crc = crc32fast::Hasher::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut at = 0usize;
    loop {
        let n = file.read(&mut buf)?;
        if n == 0 {
            break;
        }
        let chunk = &mut buf[..n];
        // Zero the part of the checksum field inside this chunk.
        for (i, b) in chunk.iter_mut().enumerate() {
            if (CHECKSUM_OFFSET..CHECKSUM_OFFSET + 4).contains(&(at + i)) {
                *b = 0;
            }
            if at + i >= CHECKSUM_OFFSET + 4 {
                break;
            }
        }
        crc.update(chunk);
        at += n;
    }
    if at != len {
        return Err(std::io::Error::new(
            std::io::ErrorKind::UnexpectedEof,
            "file shorter than its header says",
        ));
    }
    Ok(crc.finalize())
}

impl MappedInput {
    /// Map `path` and validate it completely (structure and checksum).
    pub fn open(path: &Path) -> Result<Self, MapError> {
        let io = |source| MapError::Io { path: path.to_path_buf(), source };
        let file = crate::validate::open_regular(path).map_err(io)?;
        // SAFETY: the map is read-only; eddy's tools never modify a model
        // file in place (they write a new file and rename it).
        let map = unsafe { memmap2::Mmap::map(&file) }.map_err(io)?;
        let invalid = |message: String| MapError::Invalid { path: path.to_path_buf(), message };
        let parsed = EddyFile::parse_without_checksum(&map).map_err(|e| invalid(e.to_string()))?;
        let crc = checksum_by_reading(path, parsed.len()).map_err(io)?;
        if crc != parsed.checksum() {
            return Err(invalid(format!(
                "checksum mismatch: header says {:#010x}, contents give {crc:#010x}",
                parsed.checksum()
            )));
        }
        Ok(MappedInput { map })
    }

    /// The parsed file (already fully validated by `open`).
    pub fn file(&self) -> Result<EddyFile<'_>, eddy::FileError> {
        EddyFile::parse_without_checksum(&self.map)
    }

    /// Drop the resident pages behind `part` (a slice of this map, e.g. a
    /// tensor's data once it has been processed); a later read of it just
    /// reads the file again. Slices from elsewhere are ignored.
    pub fn release(&self, part: &[u8]) {
        let base = self.map.as_ptr() as usize;
        let start = part.as_ptr() as usize;
        if start < base || start + part.len() > base + self.map.len() || part.is_empty() {
            return;
        }
        // SAFETY: MADV_DONTNEED on a read-only private file mapping only
        // drops clean page-cache-backed pages from this process; the next
        // access faults the same bytes back in from the unmodified file, so
        // every live borrow of the map keeps reading the same values.
        let done = unsafe {
            self.map.unchecked_advise_range(memmap2::UncheckedAdvice::DontNeed, start - base, part.len())
        };
        // Releasing is only a memory saving; a refusal changes nothing else.
        drop(done);
    }
}
