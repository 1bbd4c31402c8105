//! Files that parse but are not a valid Mamba-1 model: missing, misshapen,
//! misordered or extra tensors, bad hyper-parameters, wrong storage, and
//! the writer's own checks.

use eddy::file::{HEADER_LEN, HPARAM_ENTRY_LEN};
use eddy::writer::{FileBuilder, TensorData};
use eddy::{Architecture, HParam, ModelError};

mod common;
use common::*;

// ---------------------------------------------------------------------------
// Model-level errors
// ---------------------------------------------------------------------------

#[test]
fn missing_tensor() {
    for (name, pattern, layer) in [
        ("embed.weight", "embed.weight", None),
        ("layers.1.D", "layers.{i}.D", Some(1)),
        ("layers.0.norm.weight", "layers.{i}.norm.weight", Some(0)),
        ("layers.1.out_proj.weight", "layers.{i}.out_proj.weight", Some(1)),
        ("lm_head.weight", "lm_head.weight", None),
    ] {
        let err = load_tensors(without(&TINY, name)).unwrap_err();
        assert_eq!(err, ModelError::MissingTensor { name: pattern, layer });
        let msg = err.to_string();
        assert!(msg.contains(&format!("`{name}`")), "{msg}");
        assert!(msg.contains("missing"), "{msg}");
    }
}

#[test]
fn wrong_shape_names_the_tensor() {
    let mut ts = tensors(&TINY, 1, false);
    let i = ts.iter().position(|t| t.name == "layers.1.in_proj.weight").unwrap();
    let (r, c) = (2 * TINY.d_inner, TINY.d_model + 1);
    ts[i] = TensorData::f32("layers.1.in_proj.weight", &[r, c], &vec![0.0; (r * c) as usize]);
    let err = load_tensors(ts).unwrap_err();
    assert_eq!(
        err,
        ModelError::ShapeMismatch {
            name: "layers.{i}.in_proj.weight",
            layer: Some(1),
            expected: (2 * TINY.d_inner as u64, TINY.d_model as u64),
            found: (r as u64, c as u64),
        }
    );
    let msg = err.to_string();
    assert!(msg.contains("layers.1.in_proj.weight"), "{msg}");
    assert!(msg.contains("32x9") && msg.contains("32x8"), "{msg}");

    // Vectors too, and a transposed matrix.
    let mut ts = tensors(&TINY, 1, false);
    ts[0] = TensorData::f32(
        "embed.weight",
        &[TINY.d_model, TINY.vocab_size],
        &vec![0.0; (TINY.vocab_size * TINY.d_model) as usize],
    );
    assert!(matches!(
        load_tensors(ts),
        Err(ModelError::ShapeMismatch { name: "embed.weight", layer: None, .. })
    ));
    let mut ts = tensors(&TINY, 1, false);
    let i = ts.iter().position(|t| t.name == "norm_f.weight").unwrap();
    ts[i] = TensorData::f32("norm_f.weight", &[TINY.d_model - 1], &[1.0; 7]);
    let err = load_tensors(ts).unwrap_err();
    assert!(err.to_string().contains("norm_f.weight"));
}

#[test]
fn out_of_order_tensors() {
    let mut ts = tensors(&TINY, 1, false);
    let a = ts.iter().position(|t| t.name == "layers.0.A").unwrap();
    let d = ts.iter().position(|t| t.name == "layers.0.D").unwrap();
    ts.swap(a, d);
    let err = load_tensors(ts).unwrap_err();
    assert_eq!(err, ModelError::OutOfOrder { name: "layers.{i}.A", layer: Some(0), index: a as u32 });
    assert!(err.to_string().contains("layers.0.A"));

    // Whole layers swapped.
    let ts = tensors(&TINY, 1, false);
    let per_layer = (ts.len() - 3) / 2;
    let mut swapped = vec![ts[0].clone()];
    swapped.extend_from_slice(&ts[1 + per_layer..1 + 2 * per_layer]);
    swapped.extend_from_slice(&ts[1..1 + per_layer]);
    swapped.extend_from_slice(&ts[1 + 2 * per_layer..]);
    assert_eq!(
        load_tensors(swapped),
        Err(ModelError::OutOfOrder { name: "layers.{i}.norm.weight", layer: Some(0), index: 1 })
    );
}

#[test]
fn layer_names_must_be_canonical() {
    let mut ts = tensors(&TINY, 1, false);
    let i = ts.iter().position(|t| t.name == "layers.1.D").unwrap();
    ts[i].name = "layers.01.D".to_string();
    assert_eq!(load_tensors(ts), Err(ModelError::MissingTensor { name: "layers.{i}.D", layer: Some(1) }));
}

#[test]
fn extra_tensor() {
    let mut ts = tensors(&TINY, 1, false);
    let n = ts.len() as u32;
    ts.push(TensorData::f32("layers.2.D", &[4], &[0.0; 4]));
    assert_eq!(load_tensors(ts), Err(ModelError::UnexpectedTensor { index: n }));
    // A tied model must not carry an lm_head.
    let hp = Mamba1Config { tied_embeddings: true, ..TINY };
    let mut ts = tensors(&hp, 1, false);
    let n = ts.len() as u32;
    ts.extend(tensors(&TINY, 1, false).pop());
    let err = load(&builder_with(&hp, ts).to_bytes()).unwrap_err();
    assert_eq!(err, ModelError::UnexpectedTensor { index: n });
    assert!(err.to_string().contains(&n.to_string()));
}

#[test]
fn missing_and_bad_hparams() {
    // The eight keys Mamba-1 requires lead `HParam::ALL`, up to NormEps.
    let required = &HParam::ALL[..8];
    assert_eq!(required.last(), Some(&HParam::NormEps));
    for &key in required {
        // Build the file by hand without `key` (the builder can only replace).
        let mut b = FileBuilder::new(Architecture::Mamba1);
        for k in HParam::ALL {
            if k == key {
                continue;
            }
            let v = match k {
                HParam::VocabSize => TINY.vocab_size,
                HParam::DModel => TINY.d_model,
                HParam::NLayer => TINY.n_layer,
                HParam::DState => TINY.d_state,
                HParam::DConv => TINY.d_conv,
                HParam::DInner => TINY.d_inner,
                HParam::DtRank => TINY.dt_rank,
                HParam::NormEps => 1e-5f32.to_bits(),
                HParam::ConvBias => 1,
                HParam::BosToken | HParam::EosToken => u32::MAX,
                _ => 0,
            };
            b.hparam(k, v);
        }
        for t in tensors(&TINY, 1, false) {
            b.tensor(t).unwrap();
        }
        let err = load(&b.to_bytes()).unwrap_err();
        assert_eq!(err, ModelError::MissingHParam(key.name()));
        assert!(err.to_string().contains(key.name()));
    }
    for (key, value) in [
        (HParam::DConv, 0),
        (HParam::DConv, 65),
        (HParam::NLayer, 4097),
        (HParam::DState, 0),
        (HParam::VocabSize, (1 << 24) + 1),
        (HParam::TiedEmbeddings, 2),
        (HParam::ConvBias, u32::MAX),
        (HParam::NormEps, f32::NAN.to_bits()),
        (HParam::NormEps, f32::INFINITY.to_bits()),
        (HParam::NormEps, (-1.0f32).to_bits()),
    ] {
        let mut b = builder_with(&TINY, tensors(&TINY, 1, false));
        b.hparam(key, value);
        assert_eq!(load(&b.to_bytes()), Err(ModelError::BadHParam { name: key.name(), value }));
    }
    // Unknown keys are ignored; a repeated key takes its first value.
    let mut b = builder_with(&TINY, tensors(&TINY, 1, false));
    b.hparam(HParam::BosToken, 0);
    let mut bytes = b.to_bytes();
    assert!(load(&bytes).is_ok());
    let last = HEADER_LEN + (hparam_count(&bytes) - 1) * HPARAM_ENTRY_LEN;
    wr32(&mut bytes, last, 1000);
    reseal(&mut bytes);
    assert!(load(&bytes).is_ok());
    wr32(&mut bytes, last, HParam::VocabSize.code());
    wr32(&mut bytes, last + 4, 3);
    reseal(&mut bytes);
    assert!(load(&bytes).is_ok());
}

#[test]
fn f16_where_f32_required() {
    for name in ["layers.0.conv1d.weight", "layers.1.A", "layers.0.norm.weight", "norm_f.weight"] {
        let mut ts = tensors(&TINY, 1, false);
        let i = ts.iter().position(|t| t.name == name).unwrap();
        let vals: Vec<f32> =
            ts[i].data.chunks_exact(4).map(|c| f32::from_le_bytes(c.try_into().unwrap())).collect();
        ts[i] = TensorData::f16(name, &ts[i].shape.clone(), &vals);
        let err = load_tensors(ts).unwrap_err();
        assert!(matches!(err, ModelError::UnsupportedFormat { format: "f16", .. }), "{err:?}");
        let msg = err.to_string();
        assert!(msg.contains(name) && msg.contains("f16"), "{msg}");
    }
    // f16 is fine for every matrix.
    let bytes = builder_with(&TINY, tensors(&TINY, 1, true)).to_bytes();
    assert!(load(&bytes).is_ok());
}

#[test]
fn writer_rejects_bad_tensors() {
    use eddy::writer::WriteError;
    let mut b = FileBuilder::new(Architecture::Mamba1);
    assert!(matches!(b.tensor(TensorData::f32("a", &[], &[])), Err(WriteError::BadShape { .. })));
    assert!(matches!(b.tensor(TensorData::f32("a", &[1, 0], &[])), Err(WriteError::BadShape { .. })));
    assert!(matches!(
        b.tensor(TensorData::f32("a", &[1, 1, 1, 1, 1], &[0.0])),
        Err(WriteError::BadShape { .. })
    ));
    assert_eq!(
        b.tensor(TensorData::f32("a", &[2, 2], &[0.0; 3])).unwrap_err(),
        WriteError::LengthMismatch { name: "a".into(), expected: 16, got: 12 }
    );
    b.tensor(TensorData::f32("a", &[2], &[0.0; 2])).unwrap();
    assert_eq!(
        b.tensor(TensorData::f32("a", &[2], &[0.0; 2])).unwrap_err(),
        WriteError::DuplicateName("a".into())
    );
    assert_eq!(b.tensors().len(), 1);
}
