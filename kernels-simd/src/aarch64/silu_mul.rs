//! NEON [`crate::reference::silu_mul`]: four lanes per vector with the
//! scan's `silu4` (the reference's `silu`, same operations per lane, no
//! fused multiply-add); the last `len % 4` values run the reference.

use super::scan::silu4;
use core::arch::aarch64::*;

/// Lanes per vector.
const LANES: usize = 4;

/// See [`crate::reference::SiluMul`]; bit-exact with the reference.
pub fn silu_mul(gate: &mut [f32], up: &[f32]) {
    let n = gate.len().min(up.len());
    let whole = n / LANES * LANES;
    for (g, u) in gate[..whole].chunks_exact_mut(LANES).zip(up[..whole].chunks_exact(LANES)) {
        // SAFETY: NEON is present (this module compiles only with it);
        // `g` and `u` hold four values.
        unsafe { vst1q_f32(g.as_mut_ptr(), vmulq_f32(silu4(vld1q_f32(g.as_ptr())), vld1q_f32(u.as_ptr()))) };
    }
    crate::reference::silu_mul(&mut gate[whole..n], &up[whole..n]);
}
