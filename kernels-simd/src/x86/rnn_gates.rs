//! The GRU and LSTM gates on AVX2: the pass of `crate::rnn_gates_pass`
//! with eight channels per vector.

use crate::reference;
use core::arch::x86_64::__m256;

/// See [`crate::GruGates`]; bit-exact with [`crate::reference::gru_gates`].
pub fn gru_gates(gi: &[f32], gh: &[f32], h: &mut [f32]) {
    #[target_feature(enable = "avx2")]
    unsafe fn run(gi: &[f32], gh: &[f32], h: &mut [f32]) {
        // SAFETY: AVX2 is enabled here, which is all the pass needs.
        unsafe { crate::rnn_gates_pass::gru_gates::<__m256>(gi, gh, h) }
    }
    if !super::avx2_available() {
        return reference::gru_gates(gi, gh, h);
    }
    // SAFETY: the CPU has AVX2.
    unsafe { run(gi, gh, h) }
}

/// See [`crate::LstmGates`]; bit-exact with [`crate::reference::lstm_gates`].
pub fn lstm_gates(gi: &[f32], gh: &[f32], state: &mut [f32]) {
    #[target_feature(enable = "avx2")]
    unsafe fn run(gi: &[f32], gh: &[f32], state: &mut [f32]) {
        // SAFETY: AVX2 is enabled here, which is all the pass needs.
        unsafe { crate::rnn_gates_pass::lstm_gates::<__m256>(gi, gh, state) }
    }
    if !super::avx2_available() {
        return reference::lstm_gates(gi, gh, state);
    }
    // SAFETY: the CPU has AVX2.
    unsafe { run(gi, gh, state) }
}
