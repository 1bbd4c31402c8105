//! Shared helpers for eddy's cross-crate tests: fixture paths, converting
//! them, running a model both ways, and reading the reference outputs
//! written by `tools/python/make_fixtures.py`.

use eddy::file::AlignedBytes;
use eddy::{Model, Session};
use eddy_cli::convert::{convert_dir, WeightDtype};
use safetensors::{Dtype, SafeTensors};
use std::path::PathBuf;

/// Directory of a committed fixture, e.g. `fixture_dir("mamba-tiny-tied")`.
pub fn fixture_dir(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fixtures").join(name)
}

/// Reference outputs of one fixture.
pub struct Reference {
    /// Input token ids.
    pub input_ids: Vec<u32>,
    /// Logits of the full-sequence forward, row-major [len, vocab].
    pub logits_forward: Vec<f32>,
    /// Logits of token-by-token decode with the cache, [len, vocab].
    pub logits_decode: Vec<f32>,
    /// Vocabulary size.
    pub vocab: usize,
}

fn f32s(st: &SafeTensors<'_>, name: &str) -> (Vec<usize>, Vec<f32>) {
    let t = st.tensor(name).unwrap_or_else(|e| panic!("reference tensor {name}: {e}"));
    assert_eq!(t.dtype(), Dtype::F32, "{name} must be f32");
    let v = t.data().chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect();
    (t.shape().to_vec(), v)
}

/// Load `reference.safetensors` of a fixture.
pub fn load_reference(name: &str) -> Reference {
    let path = fixture_dir(name).join("reference.safetensors");
    let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let st = SafeTensors::deserialize(&bytes).expect("reference.safetensors parses");
    let ids = st.tensor("input_ids").expect("input_ids");
    assert_eq!(ids.dtype(), Dtype::I32);
    let input_ids =
        ids.data().chunks_exact(4).map(|b| i32::from_le_bytes([b[0], b[1], b[2], b[3]]) as u32).collect();
    let (shape, logits_forward) = f32s(&st, "logits_forward");
    let (_, logits_decode) = f32s(&st, "logits_decode");
    Reference { input_ids, logits_forward, logits_decode, vocab: shape[1] }
}

/// Largest absolute difference between two equally long slices.
pub fn max_abs_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len(), "length mismatch");
    a.iter().zip(b).map(|(x, y)| (x - y).abs()).fold(0.0, f32::max)
}

/// A fixture converted by eddy's converter, in an aligned buffer.
pub fn convert(fixture: &str, dtype: WeightDtype) -> AlignedBytes {
    AlignedBytes::copy_from(&convert_dir(&fixture_dir(fixture), dtype).expect("convert").bytes)
}

/// Logits of every position: (token by token, batched prefill in chunks of 5).
pub fn step_and_prefill(model: &Model<'_>, ids: &[u32]) -> (Vec<f32>, Vec<f32>) {
    let mut session = Session::new_owned(model);
    let mut stepwise = Vec::new();
    for &t in ids {
        stepwise.extend_from_slice(session.step(t).unwrap());
    }
    session.reset();
    let mut batched = Vec::new();
    session.prefill_chunked(ids, 5, true, |_, l| batched.extend_from_slice(l)).unwrap();
    (stepwise, batched)
}
