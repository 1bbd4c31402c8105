//! Shared helpers for eddy's cross-crate tests: fixture paths, converting
//! them, running a model both ways, and reading the reference outputs
//! written by `tools/python/make_fixtures.py`.

use eddy::file::AlignedBytes;
use eddy::{KvCacheOptions, KvFormat, Model, Session, SessionError};
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

/// A fixture converted at f32, with the input ids of its reference.
pub fn f32_with_ids(fixture: &str) -> (AlignedBytes, Vec<u32>) {
    (convert(fixture, WeightDtype::F32), load_reference(fixture).input_ids)
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

/// Logits of the second half of `ids` continued from a snapshot: session
/// `a` prefills the first half, is snapshotted and steps the rest
/// (`want`); session `b` sees other tokens (the first three of that rest),
/// restores the snapshot and steps the rest (`got`). Returns `(want, got)`
/// and both sessions' positions afterwards.
pub fn resume_from_snapshot(model: &Model<'_>, ids: &[u32]) -> (Vec<f32>, Vec<f32>, [u64; 2]) {
    let (head, tail) = ids.split_at(ids.len() / 2);
    let mut a = Session::new_owned(model);
    a.prefill(head).unwrap();
    let saved = a.snapshot().to_vec();
    let want: Vec<f32> = tail.iter().flat_map(|&t| a.step(t).unwrap().to_vec()).collect();
    let mut b = Session::new_owned(model);
    b.prefill(&tail[..3]).unwrap(); // some other context, then restore
    b.restore(&saved).unwrap();
    let got: Vec<f32> = tail.iter().flat_map(|&t| b.step(t).unwrap().to_vec()).collect();
    (want, got, [a.position(), b.position()])
}

/// Restore the snapshot of a session of `from`, taken after one step (token
/// 1), into a fresh session of `into`.
pub fn restore_one_step_snapshot(from: &Model<'_>, into: &Model<'_>) -> Result<(), SessionError> {
    let mut a = Session::new_owned(from);
    a.step(1).unwrap();
    let mut b = Session::new_owned(into);
    b.restore(a.snapshot())
}

/// Two cache layouts of `base` whose states have the same byte length (f16
/// rows of 16 values take 32 bytes, q8 rows 18, so 9 f16 slots = 16 q8
/// slots): a snapshot must still not restore across them.
pub fn same_length_kv_layouts<'a>(base: &Model<'a>) -> (Model<'a>, Model<'a>) {
    let f16 = base.with_kv_cache(KvCacheOptions { format: KvFormat::F16, sinks: 0, window: 9 }).unwrap();
    let q8 = base.with_kv_cache(KvCacheOptions { format: KvFormat::Q8, sinks: 0, window: 16 }).unwrap();
    assert_eq!(f16.state_bytes(), q8.state_bytes());
    (f16, q8)
}
