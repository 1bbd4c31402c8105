//! NEON f32 kernels of the recurrent layers, bit-exact with the scalar
//! references in [`crate::vector`] and [`crate::math`]: the same
//! operations per lane, in the same order (operands too, so NaN payloads
//! agree), multiply and add kept apart (no FMA).
//!
//! The selective scan takes four channels at a time: their softplus and
//! gating run with one channel per lane, and each channel's state update
//! runs eight states per pass in two vectors (`exp_fast` of four values per
//! vector). The two vectors are the reference dot product's lanes 0..4 and
//! 4..8 (`eddy_quant::dot_f32`), so `C·h` keeps its eight partial sums and
//! its pairwise reduction.
//!
//! NaN: NEON's `fmax`/`fmin` return the NaN operand (quieted; with the
//! default FPCR, as Linux sets it), which is what `f32::clamp` returns for
//! a NaN argument, so the clamp in `exp4` is exact for NaN too; every
//! select tests the same comparison as the reference (false for NaN).

use crate::math::{
    ATANH_C, EXP2_EIGHTHS_BIASED, EXP_C, EXP_MAX, EXP_MIN, LN2_8_HI, LN2_8_LO, LN_2, LOG2E_8, ROUND, SQRT_2,
};
use crate::vector::{selective_scan_scalar, selective_scan_scalar_from, ScanArgs};
use core::arch::aarch64::*;

/// Lanes per vector.
const LANES: usize = 4;
/// Channels per block of the scan (one per lane).
const BLOCK: usize = 4;

/// [`crate::math::exp_fast`] of four values.
///
/// # Safety
/// NEON must be present.
#[inline(always)]
pub(super) unsafe fn exp4(x: float32x4_t) -> float32x4_t {
    let s = vdupq_n_f32;
    // A NaN `x` comes out of max and min unchanged (see the module docs).
    let x = vminq_f32(vmaxq_f32(x, s(EXP_MIN)), s(EXP_MAX));
    let t = vaddq_f32(vmulq_f32(x, s(LOG2E_8)), s(ROUND));
    let m = vsubq_f32(t, s(ROUND));
    let r = vsubq_f32(vsubq_f32(x, vmulq_f32(m, s(LN2_8_HI))), vmulq_f32(m, s(LN2_8_LO)));
    let [c2, c3] = EXP_C;
    let mut p = vaddq_f32(s(c2), vmulq_f32(r, s(c3)));
    p = vaddq_f32(s(1.0), vmulq_f32(r, p));
    p = vaddq_f32(s(1.0), vmulq_f32(r, p));
    // 2^(k/8) and 2^n from `t`'s low mantissa bits, as the reference (the
    // biased table needs no mask on `bits << 20`, see
    // `EXP2_EIGHTHS_BIASED`). The table lookup is a byte shuffle: lane
    // byte j of entry k is table byte 4k + j.
    let bits = vreinterpretq_u32_f32(t);
    let k = vandq_u32(bits, vdupq_n_u32(7));
    let bytes = vmlaq_u32(vdupq_n_u32(0x0302_0100), k, vdupq_n_u32(0x0404_0404));
    static TABLE: [u32; 8] = EXP2_EIGHTHS_BIASED;
    let table = TABLE.as_ptr();
    let table =
        uint8x16x2_t(vreinterpretq_u8_u32(vld1q_u32(table)), vreinterpretq_u8_u32(vld1q_u32(table.add(4))));
    let eighths = vreinterpretq_u32_u8(vqtbl2q_u8(table, vreinterpretq_u8_u32(bytes)));
    let scale = vaddq_u32(eighths, vshlq_n_u32::<20>(bits));
    vmulq_f32(p, vreinterpretq_f32_u32(scale))
}

/// [`crate::math::log1p_unit`] of four values.
///
/// # Safety
/// NEON must be present.
#[inline(always)]
pub(super) unsafe fn log1p_unit4(y: float32x4_t) -> float32x4_t {
    let s = vdupq_n_f32;
    let one = s(1.0);
    let u = vaddq_f32(one, y);
    let rounding = vdivq_f32(vsubq_f32(y, vsubq_f32(u, one)), u);
    let halve = vcgtq_f32(u, s(SQRT_2));
    let m = vbslq_f32(halve, vmulq_f32(u, s(0.5)), u);
    let k = vbslq_f32(halve, s(LN_2), s(0.0));
    let sv = vdivq_f32(vsubq_f32(m, one), vaddq_f32(m, one));
    let s2 = vmulq_f32(sv, sv);
    let [c3, c5, c7, c9] = ATANH_C;
    let mut p = vaddq_f32(s(c7), vmulq_f32(s2, s(c9)));
    p = vaddq_f32(s(c5), vmulq_f32(s2, p));
    p = vaddq_f32(s(c3), vmulq_f32(s2, p));
    p = vmulq_f32(s2, p);
    let two_s = vaddq_f32(sv, sv);
    vaddq_f32(k, vaddq_f32(vaddq_f32(two_s, vmulq_f32(two_s, p)), rounding))
}

/// [`crate::math::softplus`] of four values.
///
/// # Safety
/// NEON must be present.
#[inline(always)]
pub(super) unsafe fn softplus4(x: float32x4_t) -> float32x4_t {
    let zero = vdupq_n_f32(0.0);
    let positive = vbslq_f32(vcgtq_f32(x, zero), x, zero);
    // `-x.abs()`: clear, then flip the sign bit (NaN included).
    let neg_abs = vnegq_f32(vabsq_f32(x));
    let soft = vaddq_f32(positive, log1p_unit4(exp4(neg_abs)));
    vbslq_f32(vcgtq_f32(x, vdupq_n_f32(20.0)), x, soft)
}

/// [`crate::math::silu`] of four values.
///
/// # Safety
/// NEON must be present.
#[inline(always)]
pub(super) unsafe fn silu4(x: float32x4_t) -> float32x4_t {
    vdivq_f32(x, vaddq_f32(vdupq_n_f32(1.0), exp4(vnegq_f32(x))))
}

/// See [`crate::vector::SelectiveScan`]; bit-exact with
/// [`selective_scan_scalar`]. State sizes that are a multiple of four run
/// with NEON (eight states per pass, a last four alone: the reference's
/// dot-product lanes 0..4); other state sizes and the last
/// `channels % 4` channels run the reference.
pub fn selective_scan(args: &ScanArgs<'_>, state: &mut [f32], y: &mut [f32]) {
    let ds = args.d_state;
    let channels = args.channels(state, y);
    if ds == 0 || ds % LANES != 0 || args.b.len() < ds || args.c.len() < ds {
        selective_scan_scalar(args, state, y);
        return;
    }
    let done = channels / BLOCK * BLOCK;
    // SAFETY: NEON is present (this module compiles only with it); every
    // per-channel slice holds at least `channels >= done` values, `state`
    // and `a` `channels * ds`, `b` and `c` `ds` (checked above).
    unsafe { scan_blocks(args, state, y, done) };
    selective_scan_scalar_from(done, args, state, y);
}

/// One channel's state update for four states at `at` (an offset into
/// `a` and the state): `h = exp(a delta) h + (delta b) u`, then
/// `dot += h c`.
///
/// # Safety
/// NEON must be present; `a` and `state` hold four values from `at`.
#[inline(always)]
unsafe fn update4(
    a: *const f32,
    state: *mut f32,
    at: usize,
    (delta, u): (float32x4_t, float32x4_t),
    (b, c): (float32x4_t, float32x4_t),
    dot: &mut float32x4_t,
) {
    // SAFETY: the caller's contract.
    unsafe {
        let h = state.add(at);
        let decay = exp4(vmulq_f32(vld1q_f32(a.add(at)), delta));
        let input = vmulq_f32(vmulq_f32(delta, b), u);
        let hv = vaddq_f32(vmulq_f32(decay, vld1q_f32(h)), input);
        vst1q_f32(h, hv);
        *dot = vaddq_f32(*dot, vmulq_f32(hv, c));
    }
}

/// `(l0 + l2) + (l1 + l3)` of `lo + hi`, which is the reference's
/// `((a0 + a4) + (a2 + a6)) + ((a1 + a5) + (a3 + a7))`, for four channels
/// at once (one per output lane).
///
/// # Safety
/// NEON must be present.
#[inline(always)]
pub(super) unsafe fn reduce4(lo: &[float32x4_t; BLOCK], hi: &[float32x4_t; BLOCK]) -> float32x4_t {
    // [a0 + a4, a1 + a5, a2 + a6, a3 + a7] per channel, then its halves
    // added: [(a0 + a4) + (a2 + a6), (a1 + a5) + (a3 + a7)].
    let half = |i: usize| {
        let s = vaddq_f32(lo[i], hi[i]);
        vadd_f32(vget_low_f32(s), vget_high_f32(s))
    };
    let (p01, p23) = (vcombine_f32(half(0), half(1)), vcombine_f32(half(2), half(3)));
    // Adjacent pairs: [ch0, ch1, ch2, ch3], first + second as the reference.
    vpaddq_f32(p01, p23)
}

/// The first `channels` (a multiple of four) channels of the scan.
///
/// # Safety
/// NEON must be present; `d_state` is a positive multiple of four, `b`
/// and `c` hold `d_state` values, `a` and `state` `channels * d_state`,
/// `dt`, `u`, `d`, `z` and `y` `channels`.
unsafe fn scan_blocks(args: &ScanArgs<'_>, state: &mut [f32], y: &mut [f32], channels: usize) {
    let ds = args.d_state;
    let (a, b, c) = (args.a.as_ptr(), args.b.as_ptr(), args.c.as_ptr());
    let state = state.as_mut_ptr();
    let pairs = ds / 8 * 8;
    for ch0 in (0..channels).step_by(BLOCK) {
        // SAFETY (whole block): channels `ch0..ch0 + 4` and states
        // `0..ds` of each lie inside the slices (the function's contract).
        unsafe {
            let u4 = vld1q_f32(args.u.as_ptr().add(ch0));
            let delta4 = softplus4(vld1q_f32(args.dt.as_ptr().add(ch0)));
            let per_channel = [
                (vdupq_laneq_f32::<0>(delta4), vdupq_laneq_f32::<0>(u4)),
                (vdupq_laneq_f32::<1>(delta4), vdupq_laneq_f32::<1>(u4)),
                (vdupq_laneq_f32::<2>(delta4), vdupq_laneq_f32::<2>(u4)),
                (vdupq_laneq_f32::<3>(delta4), vdupq_laneq_f32::<3>(u4)),
            ];
            let mut lo = [vdupq_n_f32(0.0); BLOCK];
            let mut hi = [vdupq_n_f32(0.0); BLOCK];
            // Eight states of all four channels per pass, written out:
            // eight independent `exp4` chains in a row keep the pipes busy.
            for j in (0..pairs).step_by(8) {
                let bc_lo = (vld1q_f32(b.add(j)), vld1q_f32(c.add(j)));
                let bc_hi = (vld1q_f32(b.add(j + 4)), vld1q_f32(c.add(j + 4)));
                for i in 0..BLOCK {
                    let at = (ch0 + i) * ds + j;
                    update4(a, state, at, per_channel[i], bc_lo, &mut lo[i]);
                    update4(a, state, at + 4, per_channel[i], bc_hi, &mut hi[i]);
                }
            }
            if pairs < ds {
                // The reference's remainder of four goes to lanes 0..4.
                let bc = (vld1q_f32(b.add(pairs)), vld1q_f32(c.add(pairs)));
                for i in 0..BLOCK {
                    update4(a, state, (ch0 + i) * ds + pairs, per_channel[i], bc, &mut lo[i]);
                }
            }
            let du = vmulq_f32(u4, vld1q_f32(args.d.as_ptr().add(ch0)));
            let gate = silu4(vld1q_f32(args.z.as_ptr().add(ch0)));
            let out = vmulq_f32(vaddq_f32(reduce4(&lo, &hi), du), gate);
            vst1q_f32(y.as_mut_ptr().add(ch0), out);
        }
    }
}

/// See [`crate::vector::SelectiveScanTokens`]: this set's one-token scan,
/// token by token.
pub fn selective_scan_tokens(args: &crate::ScanTokens<'_>, state: &mut [f32], y: &mut [f32]) {
    crate::vector::selective_scan_by_token(selective_scan, args, state, y);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::math::{exp_fast, log1p_unit, silu, softplus};

    fn lanes(v: float32x4_t) -> [f32; 4] {
        let mut out = [0f32; 4];
        // SAFETY: `out` holds 4 floats.
        unsafe { vst1q_f32(out.as_mut_ptr(), v) };
        out
    }

    #[test]
    fn vector_functions_equal_scalar_bit_for_bit() {
        let xs = crate::math::special_inputs(4);
        for chunk in xs.chunks_exact(4) {
            // SAFETY: NEON is present (this module compiles only with it);
            // `chunk` holds 4 floats.
            let v = unsafe { vld1q_f32(chunk.as_ptr()) };
            // SAFETY: as above.
            let (e, sp, si) = unsafe { (lanes(exp4(v)), lanes(softplus4(v)), lanes(silu4(v))) };
            let ys: [f32; 4] = core::array::from_fn(|i| (chunk[i].abs() / 64.0).min(1.0));
            // SAFETY: as above.
            let l = unsafe { lanes(log1p_unit4(vld1q_f32(ys.as_ptr()))) };
            for i in 0..4 {
                let x = chunk[i];
                assert_eq!(e[i].to_bits(), exp_fast(x).to_bits(), "exp {x} ({:#x})", x.to_bits());
                assert_eq!(sp[i].to_bits(), softplus(x).to_bits(), "softplus {x} ({:#x})", x.to_bits());
                assert_eq!(si[i].to_bits(), silu(x).to_bits(), "silu {x} ({:#x})", x.to_bits());
                assert_eq!(l[i].to_bits(), log1p_unit(ys[i]).to_bits(), "log1p {}", ys[i]);
            }
        }
    }
}
