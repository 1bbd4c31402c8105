//! The gate equations of the classic recurrent cells (GRU, LSTM).

use crate::math::{sigmoid, tanh};

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

/// The reference [`GruGates`].
pub fn gru_gates(gi: &[f32], gh: &[f32], h: &mut [f32]) {
    let n = h.len();
    if gi.len() < 3 * n || gh.len() < 3 * n {
        return;
    }
    for j in 0..n {
        let r = sigmoid(gi[j] + gh[j]);
        let z = sigmoid(gi[n + j] + gh[n + j]);
        let c = tanh(gi[2 * n + j] + r * gh[2 * n + j]);
        h[j] = (1.0 - z) * c + z * h[j];
    }
}

/// The reference [`LstmGates`].
pub fn lstm_gates(gi: &[f32], gh: &[f32], state: &mut [f32]) {
    let n = state.len() / 2;
    if gi.len() < 4 * n || gh.len() < 4 * n {
        return;
    }
    let (hs, cs) = state.split_at_mut(n);
    for j in 0..n {
        let i = sigmoid(gi[j] + gh[j]);
        let f = sigmoid(gi[n + j] + gh[n + j]);
        let g = tanh(gi[2 * n + j] + gh[2 * n + j]);
        let o = sigmoid(gi[3 * n + j] + gh[3 * n + j]);
        cs[j] = f * cs[j] + i * g;
        hs[j] = o * tanh(cs[j]);
    }
}
