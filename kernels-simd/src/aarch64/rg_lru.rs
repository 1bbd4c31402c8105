//! NEON RG-LRU (RecurrentGemma), bit-exact with [`crate::reference::rg_lru`]:
//! four channels per vector, the same operations per lane in the same
//! order (no FMA). The sigmoids and decays use `exp_fast` four at a time
//! and `sqrt` is correctly rounded in both; the GELU of the output gate
//! calls `libm::tanhf` lane by lane, as the reference does.

use super::scan::exp4;
use crate::math::gelu_tanh;
use crate::reference::{rg_lru_by_blocks, RgLruArgs};
use core::arch::aarch64::*;

/// Channels per vector.
const LANES: usize = 4;

/// See [`crate::RgLru`].
pub fn rg_lru(args: &RgLruArgs<'_>, h: &mut [f32], out: &mut [f32]) {
    rg_lru_by_blocks((args, h, out), LANES, |args, h, out, done| {
        // SAFETY: NEON is present on every CPU this module compiles for;
        // every buffer holds `done` values.
        unsafe { rg_lru_blocks(args, h, out, done) }
    });
}

/// Channels `0..done` (a multiple of four).
///
/// # Safety
/// NEON must be present, and every buffer hold `done` values.
unsafe fn rg_lru_blocks(args: &RgLruArgs<'_>, h: &mut [f32], out: &mut [f32], done: usize) {
    let one = vdupq_n_f32(1.0);
    let load = |v: &[f32], c: usize| vld1q_f32(v.as_ptr().add(c));
    for c in (0..done).step_by(LANES) {
        // sigmoid(v) = 1 / (1 + exp_fast(-v)).
        let si = vdivq_f32(one, vaddq_f32(one, exp4(vnegq_f32(load(args.input_gate, c)))));
        let sa = vdivq_f32(one, vaddq_f32(one, exp4(vnegq_f32(load(args.a_gate, c)))));
        let gated = vmulq_f32(load(args.x, c), si);
        let log_a = vmulq_f32(load(args.log_a_coef, c), sa);
        let hv = if args.first {
            gated
        } else {
            let a = exp4(log_a);
            let multiplier = vsqrtq_f32(vsubq_f32(one, exp4(vmulq_f32(vdupq_n_f32(2.0), log_a))));
            vaddq_f32(vmulq_f32(a, load(h, c)), vmulq_f32(multiplier, gated))
        };
        vst1q_f32(h.as_mut_ptr().add(c), hv);
        let mut gelu = [0f32; LANES];
        for (g, &y) in gelu.iter_mut().zip(&args.y[c..c + LANES]) {
            *g = gelu_tanh(y);
        }
        vst1q_f32(out.as_mut_ptr().add(c), vmulq_f32(hv, vld1q_f32(gelu.as_ptr())));
    }
}
