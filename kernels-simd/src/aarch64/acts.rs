//! NEON int8 activation quantization, exactly
//! `eddy_quant::quantize_activations_i8`: per group `amax = max |x|`,
//! `scale = amax / 127`, `q = clamp(round_half_away(x * (1 / scale)),
//! ±127)`, `sum = Σ q`. The maximum is order-independent for finite
//! values; the multiplication is the reference's; `fcvtas` rounds to
//! nearest with ties away from zero, as `round_half_away` (C's `roundf`)
//! does, and saturates (infinity to `i32::MAX`, NaN to 0) where the
//! reference clamps infinity to ±127 and casts NaN to 0, so after the
//! integer clamp codes, scales and sums are identical. (Infinity and NaN
//! arise when `amax` is so small that `1 / scale` overflows.)

use core::arch::aarch64::*;
use eddy_quant::QuantError;

/// Values per step (four vectors of four, narrowed to 16 bytes).
const STEP: usize = 16;

/// See [`crate::QuantizeActs`]. Whole groups that are a multiple of 16
/// values run with NEON; a ragged last group and non-finite input (an
/// error) go to the reference, as do bad buffer lengths (an error).
pub fn quantize_activations_i8(
    x: &[f32],
    group: usize,
    out_q: &mut [i8],
    out_scales: &mut [f32],
    out_sums: &mut [i32],
) -> Result<(), QuantError> {
    let groups = x.len().div_ceil(group.max(1));
    let lengths_ok =
        group != 0 && out_q.len() >= x.len() && out_scales.len() >= groups && out_sums.len() >= groups;
    if !lengths_ok || group % STEP != 0 {
        return eddy_quant::quantize_activations_i8(x, group, out_q, out_scales, out_sums);
    }
    let whole = x.len() / group;
    // SAFETY: NEON is present (this module compiles only with it).
    if !unsafe { all_finite(x) } {
        // The reference finds and reports the first non-finite value.
        return eddy_quant::quantize_activations_i8(x, group, out_q, out_scales, out_sums);
    }
    for g in 0..whole {
        let span = g * group..(g + 1) * group;
        // SAFETY: NEON is present; `span` lies inside `x` and `out_q` (the
        // length checks above), and `group` is a multiple of 16.
        let (scale, sum) = unsafe { quantize_group(&x[span.clone()], &mut out_q[span]) };
        out_scales[g] = scale;
        out_sums[g] = sum;
    }
    if whole < groups {
        let at = whole * group;
        let tail = (&mut out_scales[whole..groups], &mut out_sums[whole..groups]);
        eddy_quant::quantize_activations_i8(&x[at..], group, &mut out_q[at..x.len()], tail.0, tail.1)?;
    }
    Ok(())
}

/// True if no value is infinite or NaN.
///
/// # Safety
/// NEON must be present.
unsafe fn all_finite(x: &[f32]) -> bool {
    let chunks = x.chunks_exact(4);
    let rest = chunks.remainder();
    // SAFETY: each chunk holds 4 floats.
    let bad = unsafe {
        let inf = vdupq_n_f32(f32::INFINITY);
        let mut finite = vdupq_n_u32(u32::MAX);
        for c in chunks {
            // |v| < inf is false for ±inf and NaN.
            finite = vandq_u32(finite, vcltq_f32(vabsq_f32(vld1q_f32(c.as_ptr())), inf));
        }
        vminvq_u32(finite) == 0
    };
    !bad && rest.iter().all(|v| v.is_finite())
}

/// One group of finite values (a multiple of 16): writes the codes and
/// returns `(scale, Σ codes)`.
///
/// # Safety
/// NEON must be present; `q` holds at least `x.len()` codes, and
/// `x.len()` is a multiple of 16.
unsafe fn quantize_group(x: &[f32], q: &mut [i8]) -> (f32, i32) {
    // SAFETY: every chunk holds 4 (or 16) floats, and `q`'s chunks 16
    // codes.
    unsafe {
        let mut amax = vdupq_n_f32(0.0);
        for c in x.chunks_exact(4) {
            amax = vmaxq_f32(amax, vabsq_f32(vld1q_f32(c.as_ptr())));
        }
        let amax = vmaxvq_f32(amax);
        // The reference's scalar arithmetic.
        let scale = amax / 127.0;
        let inv = if scale > 0.0 { 1.0 / scale } else { 0.0 };
        let inv = vdupq_n_f32(inv);
        let (lo, hi) = (vdupq_n_s32(-127), vdupq_n_s32(127));
        let mut sums = vdupq_n_s32(0);
        for (xs, qs) in x.chunks_exact(STEP).zip(q.chunks_exact_mut(STEP)) {
            let code = |k: usize| {
                let v = vmulq_f32(vld1q_f32(xs.as_ptr().add(4 * k)), inv);
                vminq_s32(vmaxq_s32(vcvtaq_s32_f32(v), lo), hi)
            };
            let codes = [code(0), code(1), code(2), code(3)];
            for c in codes {
                sums = vaddq_s32(sums, c);
            }
            // Exact narrowing: every code is within ±127.
            let low = vcombine_s16(vmovn_s32(codes[0]), vmovn_s32(codes[1]));
            let high = vcombine_s16(vmovn_s32(codes[2]), vmovn_s32(codes[3]));
            vst1q_s8(qs.as_mut_ptr(), vcombine_s8(vmovn_s16(low), vmovn_s16(high)));
        }
        (scale, vaddvq_s32(sums))
    }
}
