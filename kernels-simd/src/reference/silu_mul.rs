//! The SiLU-gated product of a gated MLP (LFM2's feed-forward block).

use crate::math::silu;

/// `gate[i] = silu(gate[i]) * up[i]` for every `i` both slices hold (the
/// shorter one's length): the gating between a gated MLP's up and down
/// projections. Used by the SiLU-gated MLPs (LFM2).
pub type SiluMul = fn(gate: &mut [f32], up: &[f32]);

/// The reference [`SiluMul`].
pub fn silu_mul(gate: &mut [f32], up: &[f32]) {
    for (g, u) in gate.iter_mut().zip(up) {
        *g = silu(*g) * *u;
    }
}
