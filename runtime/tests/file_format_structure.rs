//! Structurally malformed `.eddy` files: reserved fields, tables, regions,
//! tensor shapes, lengths, formats, names and blobs. Corruptions are
//! re-sealed with a correct checksum so that the structural check, not the
//! checksum, is what fires.

use eddy::file::{AlignedBytes, MAX_BLOBS, MAX_HPARAMS, MAX_STRINGS_LEN, MAX_TENSORS};
use eddy::writer::TensorData;
use eddy::{BlobKind, FileError, Model, ModelError, Session, TensorFormat};
use eddy_quant::FormatError;

mod common;
use common::*;

// ---------------------------------------------------------------------------
// Structural errors (re-sealed)
// ---------------------------------------------------------------------------

#[test]
fn reserved_fields_must_be_zero() {
    let mut bl = builder_with(&TINY, tensors(&TINY, 1, false));
    bl.blob(BlobKind::TokenizerJson, b"{}".to_vec());
    let good = bl.to_bytes();
    for off in 48..64 {
        assert_eq!(structural(&good, |b| b[off] = 1), FileError::ReservedNotZero, "header byte {off}");
    }
    for field in [36usize, 56, 60] {
        for i in [0usize, 5] {
            let e = structural(&good, |b| {
                let at = tensor_entry(b, i) + field;
                b[at] = 0x40;
            });
            assert_eq!(e, FileError::ReservedNotZero, "tensor {i} field {field}");
        }
    }
    for field in [4usize, 24, 31] {
        let e = structural(&good, |b| {
            let at = blob_entry(b, 0) + field;
            b[at] = 2;
        });
        assert_eq!(e, FileError::ReservedNotZero, "blob field {field}");
    }
}

#[test]
fn unknown_architecture() {
    for code in [0u32, 11, 99, u32::MAX] {
        let e = structural(&tiny(), |b| wr32(b, 20, code));
        assert_eq!(e, FileError::UnknownArchitecture(code));
    }
}

#[test]
fn too_many_entries() {
    let good = tiny();
    let cases = [
        (24usize, MAX_HPARAMS + 1, "hyper-parameter"),
        (24, u32::MAX, "hyper-parameter"),
        (28, MAX_TENSORS + 1, "tensor"),
        (28, u32::MAX, "tensor"),
        (32, MAX_BLOBS + 1, "blob"),
        (36, MAX_STRINGS_LEN + 1, "string"),
        (36, u32::MAX, "string"),
    ];
    for (off, count, table) in cases {
        let e = structural(&good, |b| wr32(b, off, count));
        assert_eq!(e, FileError::TooManyEntries { table, count });
    }
    // At the limits the counts are accepted, but the tables do not fit.
    for (off, count) in [(24usize, MAX_HPARAMS), (28, MAX_TENSORS), (32, MAX_BLOBS), (36, MAX_STRINGS_LEN)] {
        let e = structural(&good, |b| wr32(b, off, count));
        assert_eq!(e, FileError::TablesOutOfBounds, "offset {off}");
    }
}

#[test]
fn tables_and_data_area_bounds() {
    let good = tiny();
    let data_offset = rd64(&good, 40);
    let n = good.len() as u64;
    // Strings run into the data area start: data_offset < tables_end.
    let e = structural(&good, |b| {
        let sl = rd32(b, 36);
        wr32(b, 36, sl + 64)
    });
    assert_eq!(e, FileError::TablesOutOfBounds);
    for off in [0u64, 64, n + 64, !63u64] {
        let e = structural(&good, |b| wr64(b, 40, off));
        assert_eq!(e, FileError::TablesOutOfBounds, "data_offset {off}");
    }
    let e = structural(&good, |b| wr64(b, 40, data_offset + 4));
    assert_eq!(e, FileError::Misaligned { table: "data area", index: 0 });
    // A later data area start leaves tensor 0 before it.
    let e = structural(&good, |b| wr64(b, 40, data_offset + 64));
    assert_eq!(e, FileError::Overlap { table: "tensor", index: 0 });
    // A tensor count larger than the table really is: the extra entries are
    // read from the string table and the strings move past the data start.
    let e = structural(&good, |b| {
        let c = rd32(b, 28);
        wr32(b, 28, c + 2);
    });
    assert!(matches!(
        e,
        FileError::BadName { .. } | FileError::BadFormat { .. } | FileError::TablesOutOfBounds
    ));
}

#[test]
fn tensor_region_errors() {
    let good = tiny();
    let n = good.len() as u64;
    let off_of = |b: &[u8], i: usize| rd64(b, tensor_entry(b, i) + 40);

    // Overlap: tensor 1 starts where tensor 0 starts.
    let e = structural(&good, |b| {
        let o = off_of(b, 0);
        let at = tensor_entry(b, 1) + 40;
        wr64(b, at, o);
    });
    assert_eq!(e, FileError::Overlap { table: "tensor", index: 1 });
    // Out of order: swap the offsets of two tensors of equal length.
    let e = structural(&good, |b| {
        let (e4, e7) = (tensor_entry(b, 4), tensor_entry(b, 7));
        // layers.0.conv1d.bias and layers.0.dt_proj.bias: both d_inner f32.
        assert_eq!(rd64(b, e4 + 48), rd64(b, e7 + 48));
        let (o4, o7) = (rd64(b, e4 + 40), rd64(b, e7 + 40));
        wr64(b, e4 + 40, o7);
        wr64(b, e7 + 40, o4);
    });
    assert_eq!(e, FileError::Overlap { table: "tensor", index: 5 });
    // Out of bounds, with and without u64 overflow of offset + length.
    let last = tensor_count(&good) - 1;
    for off in [n, n + 640, (u64::MAX - 100) & !63] {
        let e = structural(&good, |b| {
            let at = tensor_entry(b, last) + 40;
            wr64(b, at, off)
        });
        assert_eq!(e, FileError::OutOfBounds { table: "tensor", index: last as u32 }, "offset {off}");
    }
    // Unaligned offsets.
    for delta in [1u64, 4, 32, 63] {
        let e = structural(&good, |b| {
            let o = off_of(b, 2);
            let at = tensor_entry(b, 2) + 40;
            wr64(b, at, o + delta)
        });
        assert_eq!(e, FileError::Misaligned { table: "tensor", index: 2 });
    }
}

#[test]
fn tensor_shape_errors() {
    let good = tiny();
    let set_dims = |ndim: u32, dims: [u32; 4]| {
        move |b: &mut Vec<u8>| {
            let e = tensor_entry(b, 2);
            wr32(b, e + 16, ndim);
            for (k, d) in dims.iter().enumerate() {
                wr32(b, e + 20 + 4 * k, *d);
            }
        }
    };
    let bad_shape = FileError::BadShape { index: 2 };
    assert_eq!(structural(&good, set_dims(0, [0; 4])), bad_shape);
    assert_eq!(structural(&good, set_dims(0, [8, 0, 0, 0])), bad_shape);
    assert_eq!(structural(&good, set_dims(5, [1, 1, 1, 1])), bad_shape);
    assert_eq!(structural(&good, set_dims(u32::MAX, [1; 4])), bad_shape);
    assert_eq!(structural(&good, set_dims(2, [0, 8, 0, 0])), bad_shape);
    assert_eq!(structural(&good, set_dims(2, [32, 0, 0, 0])), bad_shape);
    assert_eq!(structural(&good, set_dims(4, [32, 8, 1, 0])), bad_shape);
    // Unused dimensions must be zero.
    assert_eq!(structural(&good, set_dims(2, [32, 8, 1, 0])), bad_shape);
    assert_eq!(structural(&good, set_dims(1, [256, 0, 0, 7])), bad_shape);

    // Byte sizes that overflow u64.
    let overflow = FileError::BadFormat { index: 2, error: FormatError::SizeOverflow };
    assert_eq!(structural(&good, set_dims(4, [u32::MAX; 4])), overflow);
    assert_eq!(structural(&good, set_dims(3, [u32::MAX, u32::MAX, u32::MAX, 0])), overflow);
    assert_eq!(structural(&good, set_dims(2, [u32::MAX, u32::MAX, 0, 0])), overflow);
    // Large but representable sizes are a length mismatch.
    let e = structural(&good, set_dims(1, [u32::MAX, 0, 0, 0]));
    assert_eq!(e, FileError::LengthMismatch { index: 2, expected: 4 * u32::MAX as u64, stored: 32 * 8 * 4 });
    // An equivalent shape with the same element count is accepted by the
    // reader (the model loader checks rows x cols).
    let mut b = good.clone();
    set_dims(4, [2, 16, 1, 8])(&mut b);
    reseal(&mut b);
    assert_eq!(parse(&b), Ok(()));
    assert!(load(&b).is_ok());
    let mut b = good.clone();
    set_dims(2, [8, 32, 0, 0])(&mut b);
    reseal(&mut b);
    assert_eq!(parse(&b), Ok(()));
    assert!(matches!(
        load(&b),
        Err(ModelError::ShapeMismatch { name: "layers.{i}.in_proj.weight", layer: Some(0), .. })
    ));
}

#[test]
fn tensor_length_and_format_errors() {
    let good = tiny();
    let len_at = |b: &[u8]| tensor_entry(b, 1) + 48;
    let stored = rd64(&good, len_at(&good));
    // The error of `good` with tensor `index`'s format code, and its
    // parameter when given, replaced.
    let with_format = |index: usize, code: u32, param: Option<u32>| {
        structural(&good, |b| {
            let at = tensor_entry(b, index) + 8;
            wr32(b, at, code);
            if let Some(param) = param {
                wr32(b, at + 4, param);
            }
        })
    };
    for new in [0u64, stored - 4, stored + 4, stored * 2, u64::MAX] {
        let e = structural(&good, |b| {
            let at = len_at(b);
            wr64(b, at, new)
        });
        assert_eq!(e, FileError::LengthMismatch { index: 1, expected: stored, stored: new });
    }
    // Unknown format codes and bad parameters.
    for code in [99u32, 1000, u32::MAX] {
        let e = with_format(1, code, None);
        assert_eq!(e, FileError::BadFormat { index: 1, error: FormatError::UnknownFormat(code) });
    }
    for (code, param) in [(0u32, 1u32), (1, 64), (0, u32::MAX)] {
        let e = with_format(1, code, Some(param));
        assert_eq!(e, FileError::BadFormat { index: 1, error: FormatError::BadParameter { code, param } });
    }
    // Relabelling f32 data as f16 halves the needed length.
    let e = with_format(1, 1, None);
    assert_eq!(e, FileError::LengthMismatch { index: 1, expected: stored / 2, stored });

    // Integer group formats: the group must divide the columns, and the
    // parameter must be a supported group size. Tensor 2 is in_proj, 32 x 8.
    let e = with_format(2, 2, Some(32));
    assert_eq!(e, FileError::BadFormat { index: 2, error: FormatError::RaggedGroup { cols: 8, group: 32 } });
    for (code, param) in [(2u32, 0u32), (3, 48), (4, 16), (4, 512)] {
        let e = with_format(2, code, Some(param));
        assert_eq!(e, FileError::BadFormat { index: 2, error: FormatError::BadParameter { code, param } });
    }
    // A W2 g32 view of a 4 x 256 shape needs 4 * 8 groups * (4 + 8) bytes.
    let e = structural(&good, |b| {
        let at = tensor_entry(b, 2);
        wr32(b, at + 8, 4);
        wr32(b, at + 12, 32);
        wr32(b, at + 20, 4);
        wr32(b, at + 24, 256);
    });
    assert_eq!(e, FileError::LengthMismatch { index: 2, expected: 4 * 8 * 12, stored: 1024 });
}

#[test]
fn quantized_matrices_load() {
    let hp = Mamba1Config { d_model: 32, d_inner: 32, ..MINI };
    let bytes = builder_with(&hp, quantized_tensors(&hp, 9)).to_bytes();
    let a = AlignedBytes::copy_from(&bytes);
    let m = Model::from_bytes(a.as_slice()).unwrap();
    let formats: Vec<&str> = m.file().tensors().map(|t| t.format.name()).collect();
    for f in ["w8g32", "w4g32", "w2g32"] {
        assert!(formats.contains(&f), "{formats:?}");
    }
    let mut s = Session::new_owned(&m);
    assert!(s.prefill(&[0, 1, 2, 3, 4]).unwrap().iter().all(|v| v.is_finite()));
    // Integer formats are matrices only.
    let mut ts = tensors(&hp, 9, false);
    let i = ts.iter().position(|t| t.name == "layers.0.A").unwrap();
    let t = TensorData::f32("layers.0.A", &[hp.d_inner, 32], &vec![0.5; hp.d_inner as usize * 32]);
    ts[i] = quantized(&t, TensorFormat::W4 { group: 32 });
    let hp32 = Mamba1Config { d_state: 32, ..hp };
    let mut ts32 = tensors(&hp32, 9, false);
    ts32[i] = ts[i].clone();
    let err = load(&builder_with(&hp32, ts32).to_bytes()).unwrap_err();
    assert_eq!(err, ModelError::UnsupportedFormat { name: "layers.{i}.A", layer: Some(0), format: "w4g32" });
}

#[test]
fn tensor_name_errors() {
    let good = tiny();
    let strings_len = rd32(&good, 36);
    let bad = FileError::BadName { index: 3 };
    // Invalid UTF-8 inside the name.
    for byte in [0xFFu8, 0x80, 0xC0] {
        let e = structural(&good, |b| {
            let e = tensor_entry(b, 3);
            let at = strings_start(b) + rd32(b, e) as usize + 1;
            b[at] = byte;
        });
        assert_eq!(e, bad);
    }
    // Out of the string table.
    let edits: [(usize, u32); 5] =
        [(4, strings_len + 1), (4, u32::MAX), (0, strings_len), (0, u32::MAX), (0, strings_len - 3)];
    for (field, v) in edits {
        let e = structural(&good, |b| {
            let at = tensor_entry(b, 3) + field;
            wr32(b, at, v)
        });
        assert_eq!(e, bad, "field {field} = {v}");
    }
    // A name ending exactly at the table end is fine; an empty name too
    // (the model loader then reports the tensor missing).
    let mut b = good.clone();
    let e = tensor_entry(&b, 3);
    wr32(&mut b, e, strings_len);
    wr32(&mut b, e + 4, 0);
    reseal(&mut b);
    assert_eq!(parse(&b), Ok(()));
    assert_eq!(load(&b), Err(ModelError::MissingTensor { name: "layers.{i}.conv1d.weight", layer: Some(0) }));
}

#[test]
fn blob_region_errors() {
    let mut bl = builder_with(&TINY, tensors(&TINY, 1, false));
    bl.blob(BlobKind::TokenizerJson, vec![b'x'; 100]);
    bl.blob(BlobKind::QuantReport, vec![b'y'; 10]);
    let good = bl.to_bytes();
    assert_eq!(parse(&good), Ok(()));
    let n = good.len() as u64;
    let last_tensor = tensor_count(&good) - 1;
    let t_off = rd64(&good, tensor_entry(&good, last_tensor) + 40);
    let cases: [(usize, u64, FileError); 6] = [
        // Blob 0 overlapping the last tensor.
        (0, t_off, FileError::Overlap { table: "blob", index: 0 }),
        // Blob before the tensors.
        (0, rd64(&good, 40), FileError::Overlap { table: "blob", index: 0 }),
        // Blob 1 before blob 0.
        (1, rd64(&good, blob_entry(&good, 0) + 8), FileError::Overlap { table: "blob", index: 1 }),
        (1, n, FileError::OutOfBounds { table: "blob", index: 1 }),
        (1, !63u64, FileError::OutOfBounds { table: "blob", index: 1 }),
        (1, rd64(&good, blob_entry(&good, 1) + 8) + 8, FileError::Misaligned { table: "blob", index: 1 }),
    ];
    for (i, off, want) in cases {
        let e = structural(&good, |b| {
            let at = blob_entry(b, i) + 8;
            wr64(b, at, off)
        });
        assert_eq!(e, want, "blob {i} at {off}");
    }
    let e = structural(&good, |b| {
        let at = blob_entry(b, 1) + 16;
        wr64(b, at, u64::MAX)
    });
    assert_eq!(e, FileError::OutOfBounds { table: "blob", index: 1 });
    // Unknown blob kinds are kept and ignored.
    let mut b = good.clone();
    let at = blob_entry(&b, 0);
    wr32(&mut b, at, 1234);
    reseal(&mut b);
    let a = AlignedBytes::copy_from(&b);
    let m = Model::from_bytes(a.as_slice()).unwrap();
    assert_eq!(m.tokenizer_json(), None);
    assert_eq!(m.file().blob_at(0).map(|(k, d)| (k, d.len())), Some((BlobKind::Unknown(1234), 100)));
}

#[test]
fn display_messages_are_specific() {
    let cases: [(FileError, &str); 8] = [
        (FileError::Truncated { needed: 100, got: 7 }, "100"),
        (FileError::BadMagic, "EDDY"),
        (FileError::BadHeaderLen(65), "65"),
        (FileError::MisalignedBuffer, "64-byte"),
        (FileError::ChecksumMismatch { stored: 0xdead_beef, computed: 1 }, "0xdeadbeef"),
        (FileError::TooManyEntries { table: "blob", count: 65 }, "blob"),
        (FileError::LengthMismatch { index: 3, expected: 12, stored: 13 }, "tensor 3"),
        (FileError::Overlap { table: "blob", index: 2 }, "blob 2"),
    ];
    for (e, needle) in cases {
        let s = e.to_string();
        assert!(s.contains(needle), "{s:?} lacks {needle:?}");
        assert_eq!(ModelError::File(e).to_string(), s);
    }
}
