//! Malformed `.eddy` headers and checksums: truncation, magic, versions,
//! lengths, alignment, and every single-byte flip. Each must give a typed
//! error, never a panic.

use eddy::file::{compute_checksum, AlignedBytes, HEADER_LEN};
use eddy::{EddyFile, FileError, Model, ModelError, Session};

mod common;
use common::*;

// ---------------------------------------------------------------------------
// Header errors
// ---------------------------------------------------------------------------

#[test]
fn truncation_at_every_length_is_an_error() {
    let bytes = build(&MINI, 2);
    for len in 0..bytes.len() {
        let prefix = &bytes[..len];
        let expected = FileError::Truncated {
            needed: if len < HEADER_LEN { HEADER_LEN as u64 } else { bytes.len() as u64 },
            got: len as u64,
        };
        assert_eq!(parse(prefix), Err(expected), "len {len}");
        assert_eq!(parse_nock(prefix), Err(expected), "len {len}");
        assert_eq!(load(prefix), Err(ModelError::File(expected)), "len {len}");
    }
    assert_eq!(parse(&bytes), Ok(()));
    // The bigger file too, at a coarser grid.
    let bytes = tiny();
    for len in (0..bytes.len()).step_by(7) {
        assert!(matches!(parse(&bytes[..len]), Err(FileError::Truncated { .. })), "len {len}");
    }
}

#[test]
fn wrong_magic() {
    let good = tiny();
    for (i, v) in [(0, b'e'), (1, 0), (3, b'Z')] {
        let mut b = good.clone();
        b[i] = v;
        assert_eq!(parse(&b), Err(FileError::BadMagic));
        reseal(&mut b);
        assert_eq!(parse(&b), Err(FileError::BadMagic));
    }
    let mut b = good.clone();
    b[..4].copy_from_slice(b"GGUF");
    assert_eq!(load(&b), Err(ModelError::File(FileError::BadMagic)));
}

#[test]
fn unsupported_versions() {
    for v in [0u16, 2, 3, 0x0100, u16::MAX] {
        let mut b = tiny();
        wr16(&mut b, 4, v);
        reseal(&mut b);
        assert_eq!(parse(&b), Err(FileError::UnsupportedVersion(v)));
        assert!(FileError::UnsupportedVersion(v).to_string().contains(&v.to_string()));
    }
}

#[test]
fn bad_header_len() {
    for l in [0u16, 32, 63, 65, 128, u16::MAX] {
        let mut b = tiny();
        wr16(&mut b, 6, l);
        reseal(&mut b);
        assert_eq!(parse(&b), Err(FileError::BadHeaderLen(l)));
    }
}

#[test]
fn misaligned_buffer() {
    let bytes = tiny();
    let mut padded = vec![0u8; 64];
    padded.extend_from_slice(&bytes);
    let a = AlignedBytes::copy_from(&padded);
    assert!(EddyFile::parse(&a.as_slice()[64..]).is_ok());
    for shift in [1usize, 2, 4, 8, 16, 32, 63] {
        // Same bytes at an address that is not 64-byte aligned.
        let mut buf = vec![0u8; shift];
        buf.extend_from_slice(&bytes);
        let al = AlignedBytes::copy_from(&buf);
        let s = &al.as_slice()[shift..];
        assert_eq!(s.as_ptr() as usize % 64, shift);
        assert_eq!(EddyFile::parse(s).err(), Some(FileError::MisalignedBuffer));
        assert_eq!(EddyFile::parse_without_checksum(s).err(), Some(FileError::MisalignedBuffer));
        assert_eq!(Model::from_bytes(s).err(), Some(ModelError::File(FileError::MisalignedBuffer)));
    }
}

#[test]
fn file_len_field() {
    let good = tiny();
    let n = good.len() as u64;
    // Larger than the buffer.
    let e = structural(&good, |b| wr64(b, 8, n + 64));
    assert_eq!(e, FileError::Truncated { needed: n + 64, got: n });
    let e = structural(&good, |b| wr64(b, 8, u64::MAX));
    assert!(matches!(e, FileError::Truncated { .. }));
    // Smaller than a header.
    for l in [0u64, 1, 63] {
        let e = structural(&good, |b| wr64(b, 8, l));
        assert_eq!(e, FileError::Truncated { needed: l, got: n });
    }
    // Shorter than the data: the tensors fall outside the file.
    let data_offset = rd64(&good, 40);
    let e = structural(&good, |b| wr64(b, 8, data_offset + 64));
    assert!(matches!(e, FileError::OutOfBounds { table: "tensor", .. }));
    // Shorter than the tables.
    let e = structural(&good, |b| wr64(b, 8, 128));
    assert_eq!(e, FileError::TablesOutOfBounds);
}

// ---------------------------------------------------------------------------
// Checksum
// ---------------------------------------------------------------------------

#[test]
fn checksum_mismatch_on_every_single_byte_flip() {
    let good = build(&MINI, 4);
    assert!(good.len() < 8192);
    let stored = rd32(&good, 16);
    for i in 0..good.len() {
        for mask in [0x01u8, 0x80, 0xFF] {
            let mut b = good.clone();
            b[i] ^= mask;
            let r = parse(&b);
            match i {
                0..=3 => assert_eq!(r, Err(FileError::BadMagic)),
                4..=5 => assert!(matches!(r, Err(FileError::UnsupportedVersion(_)))),
                6..=7 => assert!(matches!(r, Err(FileError::BadHeaderLen(_)))),
                // file_len: too long -> truncated; shorter -> checksum of a
                // different prefix, or shorter than a header.
                8..=15 => assert!(
                    matches!(r, Err(FileError::Truncated { .. } | FileError::ChecksumMismatch { .. })),
                    "byte {i}: {r:?}"
                ),
                _ => match r {
                    Err(FileError::ChecksumMismatch { stored: s, computed }) => {
                        assert_ne!(s, computed);
                        if !(16..20).contains(&i) {
                            assert_eq!(s, stored);
                            assert_eq!(computed, compute_checksum(&b));
                        }
                    }
                    other => panic!("byte {i} mask {mask:#x}: {other:?}"),
                },
            }
            assert!(load(&b).is_err());
        }
    }
}

#[test]
fn every_single_byte_flip_without_checksum_never_panics() {
    // Without the checksum, flips reach the structural checks and the model
    // loader; whatever they give must be a value, not a panic. A run that
    // loads must also step.
    let good = build(&MINI, 5);
    let mut loaded = 0;
    for i in 0..good.len() {
        for mask in [0x01u8, 0x10, 0x80, 0xFF] {
            let mut b = good.clone();
            b[i] ^= mask;
            let a = AlignedBytes::copy_from(&b);
            let Ok(f) = EddyFile::parse_without_checksum(a.as_slice()) else {
                continue;
            };
            for t in f.tensors() {
                assert!(t.data.len() as u64 <= f.len() as u64);
                let _ = (t.shape(), t.numel(), t.as_f32(), t.as_f16_bits());
            }
            if let Ok(m) = Model::from_file(f) {
                loaded += 1;
                let mut s = Session::new_owned(&m);
                s.step(0).unwrap();
            }
        }
    }
    // Flipped weights and padding still load.
    assert!(loaded > 100);
}
