//! The gate equations of the classic recurrent cells (GRU, LSTM).

use crate::math::{exp_fast, sigmoid};

/// One token of a GRU cell's gates (PyTorch `nn.GRU` order `r, z, n`):
/// `gi`/`gh` are the input and hidden products, biases included, each
/// `[3, hidden]`; `h` (`[hidden]`) is updated:
/// `r = σ(gi_r + gh_r)`, `z = σ(gi_z + gh_z)`, `n = tanh(gi_n + r gh_n)`,
/// `h ← (1 - z) n + z h`. Used by the GRU family.
pub type GruGates = fn(gi: &[f32], gh: &[f32], h: &mut [f32]);

/// One token of an LSTM cell's gates (PyTorch `nn.LSTM` order
/// `i, f, g, o`): `gi`/`gh` as for [`GruGates`] but `[4, hidden]`;
/// `state` is `h` then `c` (`[2, hidden]`): `c ← σ(f) c + σ(i) tanh(g)`,
/// `h ← σ(o) tanh(c)`. Used by the LSTM family.
pub type LstmGates = fn(gi: &[f32], gh: &[f32], state: &mut [f32]);

/// `tanh x = 1 - 2 / (1 + e^{2x})` with [`exp_fast`], so that the SIMD
/// gates compute it lane by lane bit for bit (`libm::tanhf` does not
/// vectorize). Within 5e-7 absolute of the exact value (tested): the
/// gates' outputs are in [-1, 1], so the absolute error is what counts.
/// ±1 at the clamp of `exp_fast`; NaN stays NaN.
#[inline(always)]
pub fn tanh_by_exp(x: f32) -> f32 {
    1.0 - 2.0 / (1.0 + exp_fast(x + x))
}

/// Channel `j` of a GRU gate update (`n` channels): the new `h`.
#[inline(always)]
pub(crate) fn gru_channel(gi: &[f32], gh: &[f32], n: usize, j: usize, h: f32) -> f32 {
    let r = sigmoid(gi[j] + gh[j]);
    let z = sigmoid(gi[n + j] + gh[n + j]);
    let c = tanh_by_exp(gi[2 * n + j] + r * gh[2 * n + j]);
    (1.0 - z) * c + z * h
}

/// Channel `j` of an LSTM gate update (`n` channels): the new `(h, c)`.
#[inline(always)]
pub(crate) fn lstm_channel(gi: &[f32], gh: &[f32], n: usize, j: usize, c: f32) -> (f32, f32) {
    let i = sigmoid(gi[j] + gh[j]);
    let f = sigmoid(gi[n + j] + gh[n + j]);
    let g = tanh_by_exp(gi[2 * n + j] + gh[2 * n + j]);
    let o = sigmoid(gi[3 * n + j] + gh[3 * n + j]);
    let c = f * c + i * g;
    (o * tanh_by_exp(c), c)
}

/// The reference [`GruGates`].
pub fn gru_gates(gi: &[f32], gh: &[f32], h: &mut [f32]) {
    let n = h.len();
    if gi.len() < 3 * n || gh.len() < 3 * n {
        return;
    }
    for (j, hj) in h.iter_mut().enumerate() {
        *hj = gru_channel(gi, gh, n, j, *hj);
    }
}

/// The reference [`LstmGates`].
pub fn lstm_gates(gi: &[f32], gh: &[f32], state: &mut [f32]) {
    let n = state.len() / 2;
    if gi.len() < 4 * n || gh.len() < 4 * n {
        return;
    }
    let (hs, cs) = state.split_at_mut(n);
    for (j, (hj, cj)) in hs.iter_mut().zip(cs.iter_mut()).enumerate() {
        (*hj, *cj) = lstm_channel(gi, gh, n, j, *cj);
    }
}

#[cfg(test)]
mod tests {
    use super::tanh_by_exp;

    #[test]
    fn tanh_by_exp_is_within_5e7_absolute_and_saturates() {
        let mut worst = 0f64;
        for i in -400_000..=400_000 {
            let x = i as f32 * 2.5e-5;
            let err = (tanh_by_exp(x) as f64 - (x as f64).tanh()).abs();
            worst = worst.max(err);
        }
        assert!(worst < 5e-7, "worst absolute error {worst}");
        for (x, want) in [(100.0, 1.0), (-100.0, -1.0), (f32::INFINITY, 1.0), (f32::NEG_INFINITY, -1.0)] {
            assert_eq!(tanh_by_exp(x), want, "tanh({x})");
        }
        assert!(tanh_by_exp(f32::NAN).is_nan());
    }
}
