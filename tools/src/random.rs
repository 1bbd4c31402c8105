//! Random-weight models of named shapes, so anyone can benchmark eddy
//! without a checkpoint.

use crate::convert::{eddy_name, mamba1_hparams, WeightDtype};
use eddy::arch::Architecture;
use eddy::mamba::{tensor_schema, Mamba1Config};
use eddy::schema::TensorKind;
use eddy::writer::{FileBuilder, TensorData};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// Named shapes of public Mamba-1 checkpoints (weights are random).
pub fn named_shape(name: &str) -> Option<Mamba1Config> {
    let (d_model, n_layer) = match name {
        "mamba-130m" => (768, 24),
        "mamba-370m" => (1024, 48),
        "mamba-790m" => (1536, 48),
        "mamba-1.4b" => (2048, 48),
        "mamba-2.8b" => (2560, 64),
        _ => return None,
    };
    Some(crate::shapes::mamba1_config(d_model, n_layer))
}

/// The names accepted by [`named_shape`].
pub const NAMED_SHAPES: &[&str] = &["mamba-130m", "mamba-370m", "mamba-790m", "mamba-1.4b", "mamba-2.8b"];

/// Serialize a Mamba-1 model of shape `c` with random weights scaled like a
/// trained model's (so activations stay in a realistic range).
pub fn random_mamba1(c: &Mamba1Config, dtype: WeightDtype, seed: u64) -> Vec<u8> {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut b = FileBuilder::new(Architecture::Mamba1);
    for (key, value) in mamba1_hparams(c) {
        b.hparam(key, value);
    }
    let mut specs = Vec::new();
    tensor_schema(c, &mut |s| specs.push(s));
    for spec in specs {
        let n = (spec.rows * spec.cols) as usize;
        let scale = 1.0 / (spec.cols as f32).sqrt();
        let values: Vec<f32> = if spec.pattern.ends_with(".A") {
            // Mamba's S4D-real initialization: A = -(1..=d_state).
            (0..n).map(|i| -((1 + i % spec.cols as usize) as f32)).collect()
        } else if spec.pattern.ends_with("norm.weight") || spec.pattern == "norm_f.weight" {
            vec![1.0; n]
        } else {
            (0..n).map(|_| rng.gen_range(-scale..scale)).collect()
        };
        let shape: Vec<u32> =
            if spec.rows == 1 { vec![spec.cols as u32] } else { vec![spec.rows as u32, spec.cols as u32] };
        let t = match (spec.kind, dtype) {
            (TensorKind::Matrix, WeightDtype::F16) => TensorData::f16(eddy_name(&spec), &shape, &values),
            _ => TensorData::f32(eddy_name(&spec), &shape, &values),
        };
        // Shapes come from the schema itself, so they always match.
        if let Err(e) = b.tensor(t) {
            unreachable!("schema tensor rejected: {e}");
        }
    }
    b.to_bytes()
}
