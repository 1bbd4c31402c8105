//! NEON int8 activation quantization, exactly
//! `eddy_quant::quantize_activations_i8`: per group `amax = max |x|`,
//! `scale = amax / 127`, `q = clamp(round_half_away(x * (1 / scale)),
//! ±127)`, `sum = Σ q`.
//!
//! The maximum is order-independent for finite values (and one pass of
//! it over the whole input is also the finiteness check: `fmax` propagates
//! NaN); the multiplication is the reference's; `fcvtas` rounds to nearest
//! with ties away from zero, as `round_half_away` (C's `roundf`) does, and
//! saturates (infinity to `i32::MAX`, NaN to 0) where the reference clamps
//! infinity to ±127 and casts NaN to 0 (infinity and NaN arise when `amax`
//! is so small that `1 / scale` overflows). Saturating narrowing to i16
//! keeps the order of values, so clamping the i16 to ±127 is the
//! reference's clamp: codes, scales and sums are identical.

use crate::acts_pass::GroupQuantizer;
use core::arch::aarch64::*;

/// Values per step (four vectors of four, narrowed to 16 bytes).
const STEP: usize = 16;

/// The NEON group kernel: the set's [`crate::QuantizeActs`] is
/// [`crate::acts_pass::quantize_activations_i8`] with it. Whole groups that are a
/// multiple of 16 values run with NEON; the pass sends the rest to the
/// reference.
pub(super) struct NeonGroups;

impl GroupQuantizer for NeonGroups {
    const STEP: usize = STEP;

    fn usable() -> bool {
        // NEON is present: this module compiles only with it.
        true
    }

    #[inline(always)]
    unsafe fn all_finite(x: &[f32]) -> bool {
        // SAFETY: NEON is present; `x.len()` is a multiple of 16 (the
        // trait's contract).
        unsafe { abs_max(x) }.is_finite()
    }

    #[inline(always)]
    unsafe fn quantize_group(x: &[f32], q: &mut [i8]) -> (f32, i32) {
        // SAFETY: NEON is present; the lengths are the trait's contract.
        unsafe { quantize_group(x, q) }
    }
}

/// `max |v|` over `x`; NaN if any value is NaN (`fmax` and `fmaxv`
/// propagate it), infinite if any is infinite: finite exactly when every
/// value is.
///
/// # Safety
/// NEON must be present; `x.len()` is a multiple of 16.
#[inline(always)]
unsafe fn abs_max(x: &[f32]) -> f32 {
    // SAFETY: each chunk holds 16 floats: four 4-float loads.
    unsafe {
        let mut m = [vdupq_n_f32(0.0); 4];
        for c in x.chunks_exact(STEP) {
            for (k, mk) in m.iter_mut().enumerate() {
                *mk = vmaxq_f32(*mk, vabsq_f32(vld1q_f32(c.as_ptr().add(4 * k))));
            }
        }
        vmaxvq_f32(vmaxq_f32(vmaxq_f32(m[0], m[1]), vmaxq_f32(m[2], m[3])))
    }
}

/// One group of finite values (a multiple of 16): writes the codes and
/// returns `(scale, Σ codes)`.
///
/// # Safety
/// NEON must be present; `q` holds at least `x.len()` codes, and
/// `x.len()` is a multiple of 16.
unsafe fn quantize_group(x: &[f32], q: &mut [i8]) -> (f32, i32) {
    // SAFETY: `x.len()` is a multiple of 16; every chunk holds 16 floats,
    // and `q`'s chunks 16 codes.
    unsafe {
        // The maximum of finite values does not depend on the order.
        let amax = abs_max(x);
        // The reference's scalar arithmetic.
        let scale = amax / 127.0;
        let inv = if scale > 0.0 { 1.0 / scale } else { 0.0 };
        let inv = vdupq_n_f32(inv);
        let (lo, hi) = (vdupq_n_s16(-127), vdupq_n_s16(127));
        let mut sums = vdupq_n_s32(0);
        for (xs, qs) in x.chunks_exact(STEP).zip(q.chunks_exact_mut(STEP)) {
            let round = |k: usize| vcvtaq_s32_f32(vmulq_f32(vld1q_f32(xs.as_ptr().add(4 * k)), inv));
            // Saturating narrowing, then the reference's clamp (see the
            // module docs).
            let clamp =
                |a: int32x4_t, b: int32x4_t| vminq_s16(vmaxq_s16(vqmovn_high_s32(vqmovn_s32(a), b), lo), hi);
            let (low, high) = (clamp(round(0), round(1)), clamp(round(2), round(3)));
            sums = vpadalq_s16(vpadalq_s16(sums, low), high);
            // Exact narrowing: every code is within ±127.
            vst1q_s8(qs.as_mut_ptr(), vmovn_high_s16(vmovn_s16(low), high));
        }
        (scale, vaddvq_s32(sums))
    }
}
