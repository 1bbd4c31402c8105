//! The GRU and LSTM gates on NEON: the pass of `crate::rnn_gates_pass`
//! with eight channels per vector (two `float32x4_t`).

use super::kv::Lanes;

/// See [`crate::GruGates`]; bit-exact with [`crate::reference::gru_gates`].
pub fn gru_gates(gi: &[f32], gh: &[f32], h: &mut [f32]) {
    // SAFETY: every aarch64 CPU this module compiles for has NEON.
    unsafe { crate::rnn_gates_pass::gru_gates::<Lanes>(gi, gh, h) }
}

/// See [`crate::LstmGates`]; bit-exact with [`crate::reference::lstm_gates`].
pub fn lstm_gates(gi: &[f32], gh: &[f32], state: &mut [f32]) {
    // SAFETY: every aarch64 CPU this module compiles for has NEON.
    unsafe { crate::rnn_gates_pass::lstm_gates::<Lanes>(gi, gh, state) }
}
