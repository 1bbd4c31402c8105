//! AVX2 f32 kernels of the recurrent layers, bit-exact with the scalar
//! references in [`crate::scan`] and [`crate::math`]: the same operations
//! per lane, in the same order, no FMA.
//!
//! The selective scan takes eight channels at a time: their softplus and
//! gating run with one channel per lane, and each channel's state update
//! runs eight states per vector (`exp_fast` of eight values at once). The
//! `C·h` dot products keep the reference's eight partial sums per channel
//! and reduce eight channels together in its pairwise order.

use super::{avx2_available, reduce_lanes8};
use crate::math::{
    ATANH_C, EXP2_EIGHTHS_BIASED, EXP_C, EXP_MAX, EXP_MIN, LN2_8_HI, LN2_8_LO, LN_2, LOG2E_8, ROUND, SQRT_2,
};
use crate::vector::{selective_scan_scalar, selective_scan_scalar_from, ScanArgs};
use core::arch::x86_64::*;

/// Lanes per vector.
pub(super) const LANES: usize = 8;

/// [`crate::math::exp_fast`] of eight values.
#[inline(always)]
unsafe fn exp8(x: __m256) -> __m256 {
    exp8_each([x])[0]
}

/// [`exp8`] of `N` vectors, each step applied to all of them before the
/// next: the out-of-order core then sees `N` independent operations side
/// by side instead of one long dependency chain after another (one chain
/// at a time left the scan latency-bound at ~1.6x its current time).
#[inline(always)]
pub(super) unsafe fn exp8_each<const N: usize>(x: [__m256; N]) -> [__m256; N] {
    // Plain loops, not closures: a closure is a function of its own
    // without the caller's `target_feature`, and its intrinsics become
    // calls.
    let s = _mm256_set1_ps;
    let (mut x, mut t, mut r, mut p) = (x, [s(0.0); N], [s(0.0); N], [s(0.0); N]);
    for v in &mut x {
        // max/min return their second operand for NaN, like clamp.
        *v = _mm256_min_ps(s(EXP_MAX), _mm256_max_ps(s(EXP_MIN), *v));
    }
    for i in 0..N {
        t[i] = _mm256_add_ps(_mm256_mul_ps(x[i], s(LOG2E_8)), s(ROUND));
    }
    for i in 0..N {
        let m = _mm256_sub_ps(t[i], s(ROUND));
        r[i] =
            _mm256_sub_ps(_mm256_sub_ps(x[i], _mm256_mul_ps(m, s(LN2_8_HI))), _mm256_mul_ps(m, s(LN2_8_LO)));
    }
    let [c2, c3] = EXP_C;
    for (pi, ri) in p.iter_mut().zip(r) {
        *pi = _mm256_add_ps(s(c2), _mm256_mul_ps(ri, s(c3)));
    }
    for _ in 0..2 {
        for (pi, ri) in p.iter_mut().zip(r) {
            *pi = _mm256_add_ps(s(1.0), _mm256_mul_ps(ri, *pi));
        }
    }
    // The table lookup is one permute: it reads the low three bits of
    // each lane's index, which are k; the biased table needs no mask on
    // `bits << 20` (see `EXP2_EIGHTHS_BIASED`).
    static TABLE: [u32; 8] = EXP2_EIGHTHS_BIASED;
    let table = _mm256_loadu_si256(TABLE.as_ptr() as *const __m256i);
    for i in 0..N {
        let bits = _mm256_castps_si256(t[i]);
        let scale = _mm256_add_epi32(_mm256_permutevar8x32_epi32(table, bits), _mm256_slli_epi32::<20>(bits));
        p[i] = _mm256_mul_ps(p[i], _mm256_castsi256_ps(scale));
    }
    p
}

/// [`crate::math::log1p_unit`] of eight values.
#[inline(always)]
unsafe fn log1p_unit8(y: __m256) -> __m256 {
    let s = _mm256_set1_ps;
    let one = s(1.0);
    let u = _mm256_add_ps(one, y);
    let rounding = _mm256_div_ps(_mm256_sub_ps(y, _mm256_sub_ps(u, one)), u);
    let halve = _mm256_cmp_ps::<_CMP_GT_OQ>(u, s(SQRT_2));
    let m = _mm256_blendv_ps(u, _mm256_mul_ps(u, s(0.5)), halve);
    let k = _mm256_and_ps(halve, s(LN_2));
    let sv = _mm256_div_ps(_mm256_sub_ps(m, one), _mm256_add_ps(m, one));
    let s2 = _mm256_mul_ps(sv, sv);
    let [c3, c5, c7, c9] = ATANH_C;
    let mut p = _mm256_add_ps(s(c7), _mm256_mul_ps(s2, s(c9)));
    p = _mm256_add_ps(s(c5), _mm256_mul_ps(s2, p));
    p = _mm256_add_ps(s(c3), _mm256_mul_ps(s2, p));
    p = _mm256_mul_ps(s2, p);
    let two_s = _mm256_add_ps(sv, sv);
    _mm256_add_ps(k, _mm256_add_ps(_mm256_add_ps(two_s, _mm256_mul_ps(two_s, p)), rounding))
}

/// [`crate::math::softplus`] of eight values.
#[inline(always)]
pub(super) unsafe fn softplus8(x: __m256) -> __m256 {
    softplus8_with(x, exp8(neg_abs8(x)))
}

/// `-|x|`, the argument of softplus's `exp`.
#[inline(always)]
pub(super) unsafe fn neg_abs8(x: __m256) -> __m256 {
    let abs = _mm256_and_ps(x, _mm256_castsi256_ps(_mm256_set1_epi32(i32::MAX)));
    _mm256_xor_ps(abs, _mm256_set1_ps(-0.0))
}

/// [`softplus8`] given `e = exp8(neg_abs8(x))`.
#[inline(always)]
pub(super) unsafe fn softplus8_with(x: __m256, e: __m256) -> __m256 {
    let zero = _mm256_setzero_ps();
    let positive = _mm256_and_ps(x, _mm256_cmp_ps::<_CMP_GT_OQ>(x, zero));
    let soft = _mm256_add_ps(positive, log1p_unit8(e));
    _mm256_blendv_ps(soft, x, _mm256_cmp_ps::<_CMP_GT_OQ>(x, _mm256_set1_ps(20.0)))
}

/// [`crate::math::silu`] of eight values.
#[inline(always)]
pub(super) unsafe fn silu8(x: __m256) -> __m256 {
    silu8_with(x, exp8(_mm256_xor_ps(x, _mm256_set1_ps(-0.0))))
}

/// [`silu8`] given `e = exp8(-x)`.
#[inline(always)]
pub(super) unsafe fn silu8_with(x: __m256, e: __m256) -> __m256 {
    _mm256_div_ps(x, _mm256_add_ps(_mm256_set1_ps(1.0), e))
}

/// See [`crate::vector::SelectiveScan`]; bit-exact with
/// [`selective_scan_scalar`]. Runs the reference for state sizes that are
/// not a multiple of eight and for the last `channels % 8` channels.
pub fn selective_scan(args: &ScanArgs<'_>, state: &mut [f32], y: &mut [f32]) {
    let ds = args.d_state;
    let channels = args.channels(state, y);
    if ds == 0 || ds % LANES != 0 || args.b.len() < ds || args.c.len() < ds || !avx2_available() {
        selective_scan_scalar(args, state, y);
        return;
    }
    let blocks = channels / LANES;
    // SAFETY: AVX2 was detected; every per-channel slice holds at least
    // `channels` values, `state` and `a` `channels * ds`, `b` and `c` `ds`.
    unsafe { scan_blocks(args, state, y, blocks) };
    let done = blocks * LANES;
    selective_scan_scalar_from(done, args, state, y);
}

/// Blocks of eight channels whose softplus and gate are computed before
/// any of their state updates (interleaved with them, the divisions'
/// latency stalled the updates: ~1.35x slower).
const AHEAD_BLOCKS: usize = 8;

/// The first `blocks * 8` channels.
#[target_feature(enable = "avx2")]
unsafe fn scan_blocks(args: &ScanArgs<'_>, state: &mut [f32], y: &mut [f32], blocks: usize) {
    let ds = args.d_state;
    let (b, c) = (args.b.as_ptr(), args.c.as_ptr());
    let state = state.as_mut_ptr();
    for first in (0..blocks).step_by(AHEAD_BLOCKS) {
        let count = AHEAD_BLOCKS.min(blocks - first);
        let mut deltas = [[0f32; LANES]; AHEAD_BLOCKS];
        let mut gates = [_mm256_setzero_ps(); AHEAD_BLOCKS];
        for (k, (d, g)) in deltas.iter_mut().zip(&mut gates).take(count).enumerate() {
            let ch0 = (first + k) * LANES;
            _mm256_storeu_ps(d.as_mut_ptr(), softplus8(_mm256_loadu_ps(args.dt.as_ptr().add(ch0))));
            *g = silu8(_mm256_loadu_ps(args.z.as_ptr().add(ch0)));
        }
        for (k, (deltas, gate)) in deltas.iter().zip(gates).take(count).enumerate() {
            let ch0 = (first + k) * LANES;
            let u8v = _mm256_loadu_ps(args.u.as_ptr().add(ch0));
            let mut us = [0f32; LANES];
            _mm256_storeu_ps(us.as_mut_ptr(), u8v);
            let mut dots = [_mm256_setzero_ps(); LANES];
            // Eight states of all eight channels per pass, their `exp8`s
            // side by side (see `exp8_each`).
            for j in (0..ds).step_by(LANES) {
                let (bj, cj) = (_mm256_loadu_ps(b.add(j)), _mm256_loadu_ps(c.add(j)));
                let at = |i: usize| (ch0 + i) * ds + j;
                let mut decays = [_mm256_setzero_ps(); LANES];
                for (i, d) in decays.iter_mut().enumerate() {
                    *d =
                        _mm256_mul_ps(_mm256_loadu_ps(args.a.as_ptr().add(at(i))), _mm256_set1_ps(deltas[i]));
                }
                let decays = exp8_each(decays);
                for (i, (decay, dot)) in decays.into_iter().zip(&mut dots).enumerate() {
                    // h = exp(a delta) h + (delta b) u, then dot += h c.
                    let (delta, u) = (_mm256_set1_ps(deltas[i]), _mm256_set1_ps(us[i]));
                    let h = state.add(at(i));
                    let input = _mm256_mul_ps(_mm256_mul_ps(delta, bj), u);
                    let hv = _mm256_add_ps(_mm256_mul_ps(decay, _mm256_loadu_ps(h)), input);
                    _mm256_storeu_ps(h, hv);
                    *dot = _mm256_add_ps(*dot, _mm256_mul_ps(hv, cj));
                }
            }
            let du = _mm256_mul_ps(u8v, _mm256_loadu_ps(args.d.as_ptr().add(ch0)));
            let out = _mm256_mul_ps(_mm256_add_ps(reduce_lanes8(&dots), du), gate);
            _mm256_storeu_ps(y.as_mut_ptr().add(ch0), out);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::math::{exp_fast, silu, softplus};

    fn lanes(v: __m256) -> [f32; 8] {
        let mut out = [0f32; 8];
        // SAFETY: `out` holds 8 floats.
        unsafe { _mm256_storeu_ps(out.as_mut_ptr(), v) };
        out
    }

    #[test]
    fn vector_functions_equal_scalar_bit_for_bit() {
        if !avx2_available() {
            return;
        }
        let xs = crate::math::special_inputs(8);
        for chunk in xs.chunks_exact(8) {
            // SAFETY: AVX2 checked above; `chunk` holds 8 floats.
            let v = unsafe { _mm256_loadu_ps(chunk.as_ptr()) };
            // SAFETY: as above.
            let (e, sp, si) = unsafe { (lanes(exp8(v)), lanes(softplus8(v)), lanes(silu8(v))) };
            let ys: [f32; 8] = core::array::from_fn(|i| (chunk[i].abs() / 64.0).min(1.0));
            // SAFETY: as above.
            let l = unsafe { lanes(log1p_unit8(_mm256_loadu_ps(ys.as_ptr()))) };
            for i in 0..8 {
                let x = chunk[i];
                assert_eq!(e[i].to_bits(), exp_fast(x).to_bits(), "exp {x}");
                assert_eq!(sp[i].to_bits(), softplus(x).to_bits(), "softplus {x}");
                assert_eq!(si[i].to_bits(), silu(x).to_bits(), "silu {x}");
                assert_eq!(l[i].to_bits(), crate::math::log1p_unit(ys[i]).to_bits(), "log1p {}", ys[i]);
            }
        }
    }
}
