//! Shared body of the fuzz targets: use everything a loaded model hands out.

use eddy::{Model, Session};

mod session;
pub use session::drive_session;

/// Touch every tensor, blob and hyper-parameter of a model that loaded, then
/// run one step on token 0 and a snapshot round trip in an owned session.
pub fn exercise(model: &Model<'_>) {
    let file = model.file();
    let mut sum = 0u64;
    for t in file.tensors() {
        sum = sum.wrapping_add(t.numel());
        sum = sum.wrapping_add(t.shape().len() as u64);
        sum = sum.wrapping_add(t.data.iter().map(|&b| b as u64).sum::<u64>());
        if let Some(v) = t.as_f32() {
            assert_eq!(v.len() as u64, t.numel());
        }
        if let Some(v) = t.as_f16_bits() {
            assert_eq!(v.len() as u64, t.numel());
        }
        let (found, _) = file.find_tensor(t.name);
        assert!(found.is_some());
    }
    for i in 0..file.blob_count() {
        let (_, data) = file.blob_at(i).expect("validated blob");
        sum = sum.wrapping_add(data.len() as u64);
    }
    for (k, v) in file.hparams() {
        sum = sum.wrapping_add(k as u64 ^ v as u64);
    }
    let _ = model.tokenizer_json();
    std::hint::black_box(sum);

    let mut session = Session::new_owned(model);
    let logits = session.step(0).expect("token 0 is always in range");
    assert_eq!(logits.len(), model.vocab_size());
    assert_eq!(session.position(), 1);
    let snap = session.snapshot().to_vec();
    assert_eq!(snap.len(), model.state_bytes());
    session.reset();
    session.restore(&snap).expect("own snapshot restores");
    assert_eq!(session.position(), 1);
}
