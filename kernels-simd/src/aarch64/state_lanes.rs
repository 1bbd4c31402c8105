//! NEON's eight-lane f32 vector for the linear-attention state updates
//! (`crate::linear_attention_pass`): the attention kernels' two
//! `float32x4_t` (`kv::Lanes`, lanes 0..4 and 4..8) with a subtraction
//! and a transpose, and for WKV an exp, a division, a negation and a
//! max.

use super::kv::Lanes;
use super::scan::exp4;
use crate::linear_attention_pass::{StateLanes, LANES};
use crate::wkv_pass::WkvLanes;
use core::arch::aarch64::*;

/// The 4 x 4 transpose of `a, b, c, d`.
///
/// # Safety
/// NEON must be present.
#[inline(always)]
unsafe fn transpose4(a: float32x4_t, b: float32x4_t, c: float32x4_t, d: float32x4_t) -> [float32x4_t; 4] {
    // SAFETY: register shuffles of base NEON.
    unsafe {
        let (ab0, ab1, cd0, cd1) = (vtrn1q_f32(a, b), vtrn2q_f32(a, b), vtrn1q_f32(c, d), vtrn2q_f32(c, d));
        let low = |x: float32x4_t, y: float32x4_t| {
            vreinterpretq_f32_f64(vtrn1q_f64(vreinterpretq_f64_f32(x), vreinterpretq_f64_f32(y)))
        };
        let high = |x: float32x4_t, y: float32x4_t| {
            vreinterpretq_f32_f64(vtrn2q_f64(vreinterpretq_f64_f32(x), vreinterpretq_f64_f32(y)))
        };
        [low(ab0, cd0), low(ab1, cd1), high(ab0, cd0), high(ab1, cd1)]
    }
}

impl StateLanes for Lanes {
    #[inline(always)]
    unsafe fn sub(self, b: Self) -> Self {
        // SAFETY: NEON is present.
        unsafe { Lanes(vsubq_f32(self.0, b.0), vsubq_f32(self.1, b.1)) }
    }
    #[inline(always)]
    unsafe fn transpose(rows: &mut [Self; LANES]) {
        let r = *rows;
        // SAFETY: NEON is present. The 8 x 8 block is four 4 x 4 ones:
        // rows 0..4 give lanes 0..4 of every column, rows 4..8 lanes 4..8.
        unsafe {
            let top_lo = transpose4(r[0].0, r[1].0, r[2].0, r[3].0);
            let top_hi = transpose4(r[0].1, r[1].1, r[2].1, r[3].1);
            let bottom_lo = transpose4(r[4].0, r[5].0, r[6].0, r[7].0);
            let bottom_hi = transpose4(r[4].1, r[5].1, r[6].1, r[7].1);
            for c in 0..4 {
                rows[c] = Lanes(top_lo[c], bottom_lo[c]);
                rows[c + 4] = Lanes(top_hi[c], bottom_hi[c]);
            }
        }
    }
}

impl WkvLanes for Lanes {
    #[inline(always)]
    unsafe fn exp(self) -> Self {
        // SAFETY: NEON is present.
        unsafe { Lanes(exp4(self.0), exp4(self.1)) }
    }
    #[inline(always)]
    unsafe fn div(self, b: Self) -> Self {
        // SAFETY: NEON is present.
        unsafe { Lanes(vdivq_f32(self.0, b.0), vdivq_f32(self.1, b.1)) }
    }
    #[inline(always)]
    unsafe fn neg(self) -> Self {
        // SAFETY: NEON is present.
        unsafe { Lanes(vnegq_f32(self.0), vnegq_f32(self.1)) }
    }
    #[inline(always)]
    unsafe fn max_num(self, b: Self) -> Self {
        // `f32::max` is `fmaxnm` on aarch64.
        // SAFETY: NEON is present.
        unsafe { Lanes(vmaxnmq_f32(self.0, b.0), vmaxnmq_f32(self.1, b.1)) }
    }
}
