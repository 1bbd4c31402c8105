//! AVX2 int8 activation quantization, exactly
//! `eddy_quant::quantize_activations_i8`: per group `amax = max |x|`,
//! `scale = amax / 127`, `q = clamp(round_half_away(x / scale), ±127)`,
//! `sum = Σ q`. The maximum is order-independent, `x * (1 / scale)` is the
//! reference's multiplication, rounding half away from zero is done on the
//! truncated integer (`t + (frac >= 0.5) - (frac <= -0.5)`, as the
//! reference), so codes, scales and sums are identical.

use super::avx2_available;
use crate::acts_pass::GroupQuantizer;
use core::arch::x86_64::*;

/// Values per step (four vectors of eight, packed to 32 bytes).
const STEP: usize = 32;

/// The AVX2 group kernel: the set's [`crate::QuantizeActs`] is
/// [`crate::acts_pass::quantize_activations_i8`] with it. Whole groups that are a
/// multiple of 32 values run with AVX2; the pass sends the rest to the
/// reference.
pub(super) struct Avx2Groups;

impl GroupQuantizer for Avx2Groups {
    const STEP: usize = STEP;

    fn usable() -> bool {
        avx2_available()
    }

    #[inline(always)]
    unsafe fn all_finite(x: &[f32]) -> bool {
        // SAFETY: AVX2 is present (the trait's contract).
        unsafe { all_finite(x) }
    }

    #[inline(always)]
    unsafe fn quantize_group(x: &[f32], q: &mut [i8]) -> (f32, i32) {
        // SAFETY: AVX2 is present; the lengths are the trait's contract.
        unsafe { quantize_group(x, q) }
    }
}

/// True if no value is infinite or NaN.
#[target_feature(enable = "avx2")]
unsafe fn all_finite(x: &[f32]) -> bool {
    let abs_mask = _mm256_castsi256_ps(_mm256_set1_epi32(i32::MAX));
    let inf = _mm256_set1_ps(f32::INFINITY);
    let mut bad = _mm256_setzero_ps();
    let chunks = x.chunks_exact(8);
    let rest = chunks.remainder();
    for c in chunks {
        // |v| < inf is false for ±inf and NaN.
        let a = _mm256_and_ps(_mm256_loadu_ps(c.as_ptr()), abs_mask);
        bad = _mm256_or_ps(bad, _mm256_cmp_ps::<_CMP_NLT_UQ>(a, inf));
    }
    _mm256_movemask_ps(bad) == 0 && rest.iter().all(|v| v.is_finite())
}

/// One group of finite values (a multiple of 32): writes the codes and
/// returns `(scale, Σ codes)`.
#[target_feature(enable = "avx2")]
unsafe fn quantize_group(x: &[f32], q: &mut [i8]) -> (f32, i32) {
    let abs_mask = _mm256_castsi256_ps(_mm256_set1_epi32(i32::MAX));
    let mut amax = _mm256_setzero_ps();
    for c in x.chunks_exact(8) {
        amax = _mm256_max_ps(amax, _mm256_and_ps(_mm256_loadu_ps(c.as_ptr()), abs_mask));
    }
    let mut lanes = [0f32; 8];
    _mm256_storeu_ps(lanes.as_mut_ptr(), amax);
    let amax = lanes.iter().fold(0f32, |m, &v| m.max(v));
    // The reference's scalar arithmetic.
    let scale = amax / 127.0;
    let inv = if scale > 0.0 { 1.0 / scale } else { 0.0 };
    if !inv.is_finite() {
        // `1 / scale` overflowed (a subnormal group): `x * inv` is ±inf or
        // NaN, which the truncating conversion below does not map the
        // reference's way (±127, and 0 for NaN). Rare: the reference's
        // per-value arithmetic.
        let mut sum = 0i32;
        for (code, &v) in q.iter_mut().zip(x) {
            *code = eddy_quant::round_half_away(v * inv).clamp(-127.0, 127.0) as i8;
            sum += *code as i32;
        }
        return (scale, sum);
    }
    let inv = _mm256_set1_ps(inv);
    let (half, neg_half) = (_mm256_set1_ps(0.5), _mm256_set1_ps(-0.5));
    let (lo, hi) = (_mm256_set1_epi32(-127), _mm256_set1_epi32(127));
    let mut sums = _mm256_setzero_si256();
    for (xs, qs) in x.chunks_exact(STEP).zip(q.chunks_exact_mut(STEP)) {
        let mut codes = [_mm256_setzero_si256(); 4];
        for (k, code) in codes.iter_mut().enumerate() {
            let v = _mm256_mul_ps(_mm256_loadu_ps(xs.as_ptr().add(8 * k)), inv);
            // Truncate, then step away from zero on a fraction of 1/2 or
            // more (compare masks are -1 where true).
            let t = _mm256_cvttps_epi32(v);
            let frac = _mm256_sub_ps(v, _mm256_cvtepi32_ps(t));
            let up = _mm256_castps_si256(_mm256_cmp_ps::<_CMP_GE_OQ>(frac, half));
            let down = _mm256_castps_si256(_mm256_cmp_ps::<_CMP_LE_OQ>(frac, neg_half));
            let r = _mm256_add_epi32(_mm256_sub_epi32(t, up), down);
            *code = _mm256_min_epi32(_mm256_max_epi32(r, lo), hi);
            sums = _mm256_add_epi32(sums, *code);
        }
        // i32 -> i16 -> i8 packs interleave 128-bit halves; the permute
        // puts the 32 codes back in order.
        let packed = _mm256_packs_epi16(
            _mm256_packs_epi32(codes[0], codes[1]),
            _mm256_packs_epi32(codes[2], codes[3]),
        );
        let ordered = _mm256_permutevar8x32_epi32(packed, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
        _mm256_storeu_si256(qs.as_mut_ptr() as *mut __m256i, ordered);
    }
    let mut s = [0i32; 8];
    _mm256_storeu_si256(s.as_mut_ptr() as *mut __m256i, sums);
    (scale, s.iter().sum())
}
