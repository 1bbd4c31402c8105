//! Integer group dot products: plain NEON (`smull`/`smlal` + `sadalp`) and
//! `sdot`, for one row or four rows at a time. `BITS` is 2, 4 or 8; groups
//! are whole blocks of 32 codes; activations come permuted (see
//! `permute_activations`).

use super::headers_to_f32;
use crate::IntShape;
use core::arch::aarch64::*;
use eddy_quant::GROUP_HEADER_BYTES;

/// One block of 32 codes unpacked to two i8 vectors matching the permuted
/// activations: W2/W4 codes as they are (0..=3, 0..=15), W8 re-biased to
/// `c - 128` (the caller adds `128 Σx`).
///
/// # Safety
/// NEON must be present; `codes` points at `32 * BITS / 8` readable bytes.
#[inline(always)]
unsafe fn unpack32<const BITS: u32>(codes: *const u8) -> (int8x16_t, int8x16_t) {
    // SAFETY: the loads read 8 (W2), 16 (W4) or 32 (W8) bytes, what the
    // caller guarantees; the rest is register arithmetic.
    unsafe {
        match BITS {
            2 => {
                let c = vld1_u8(codes);
                let m = vdup_n_u8(3);
                let w0 = vcombine_u8(vand_u8(c, m), vand_u8(vshr_n_u8::<2>(c), m));
                let w1 = vcombine_u8(vand_u8(vshr_n_u8::<4>(c), m), vshr_n_u8::<6>(c));
                (vreinterpretq_s8_u8(w0), vreinterpretq_s8_u8(w1))
            }
            4 => {
                let c = vld1q_u8(codes);
                (vreinterpretq_s8_u8(vandq_u8(c, vdupq_n_u8(0x0f))), vreinterpretq_s8_u8(vshrq_n_u8::<4>(c)))
            }
            _ => {
                let bias = vdupq_n_u8(0x80);
                let w0 = veorq_u8(vld1q_u8(codes), bias);
                let w1 = veorq_u8(vld1q_u8(codes.add(16)), bias);
                (vreinterpretq_s8_u8(w0), vreinterpretq_s8_u8(w1))
            }
        }
    }
}

/// `acc + Σ w·x` over one block of 32 with widening multiplies. W2/W4: four
/// products per i16 lane, at most 4·15·127 = 7620; W8 (|w| <= 128): two per
/// i16 lane, at most 2·128·127 = 32512. No i16 overflow either way.
///
/// # Safety
/// NEON must be present.
#[inline(always)]
unsafe fn block_mull<const BITS: u32>(
    acc: int32x4_t,
    w: (int8x16_t, int8x16_t),
    x: (int8x16_t, int8x16_t),
) -> int32x4_t {
    // SAFETY: register-only NEON arithmetic.
    unsafe {
        let p = vmlal_high_s8(vmull_s8(vget_low_s8(w.0), vget_low_s8(x.0)), w.0, x.0);
        let (acc, p) = if BITS == 8 {
            (vpadalq_s16(acc, p), vmull_s8(vget_low_s8(w.1), vget_low_s8(x.1)))
        } else {
            (acc, vmlal_s8(p, vget_low_s8(w.1), vget_low_s8(x.1)))
        };
        vpadalq_s16(acc, vmlal_high_s8(p, w.1, x.1))
    }
}

/// `acc + Σ a·b` by `sdot` (four i8 products into each i32 lane).
///
/// # Safety
/// The CPU must have `dotprod`.
#[target_feature(enable = "dotprod")]
#[inline]
unsafe fn sdot(mut acc: int32x4_t, a: int8x16_t, b: int8x16_t) -> int32x4_t {
    // SAFETY: register-only instruction, available per this function's
    // contract; no memory, stack or flags touched.
    unsafe {
        core::arch::asm!(
            "sdot {acc:v}.4s, {a:v}.16b, {b:v}.16b",
            acc = inout(vreg) acc,
            a = in(vreg) a,
            b = in(vreg) b,
            options(pure, nomem, nostack, preserves_flags)
        );
    }
    acc
}

/// `acc + Σ w·x` over one block of 32 with two `sdot`.
///
/// # Safety
/// The CPU must have `dotprod`.
#[target_feature(enable = "dotprod")]
#[inline]
unsafe fn block_sdot(acc: int32x4_t, w: (int8x16_t, int8x16_t), x: (int8x16_t, int8x16_t)) -> int32x4_t {
    // SAFETY: `dotprod` per this function's contract.
    unsafe { sdot(sdot(acc, w.0, x.0), w.1, x.1) }
}

/// Σ code·act of one group as four i32 lanes (W8 without the `128 Σx`).
///
/// # Safety
/// NEON must be present, and `dotprod` if `DOT`; `codes` holds
/// `acts.len() * BITS / 8` bytes; `acts.len()` is a multiple of 32.
#[inline(always)]
unsafe fn group_lanes<const BITS: u32, const DOT: bool>(codes: &[u8], acts: &[i8]) -> int32x4_t {
    let block_bytes = 4 * BITS as usize;
    // SAFETY: block k reads codes[k*block_bytes..][..block_bytes] and
    // acts[32k..][..32], in bounds by the contract; `sdot` needs `dotprod`,
    // which the contract guarantees when `DOT`.
    unsafe {
        let mut acc = vdupq_n_s32(0);
        for k in 0..acts.len() / 32 {
            let w = unpack32::<BITS>(codes.as_ptr().add(k * block_bytes));
            let a = acts.as_ptr().add(32 * k);
            let x = (vld1q_s8(a), vld1q_s8(a.add(16)));
            acc = if DOT { block_sdot(acc, w, x) } else { block_mull::<BITS>(acc, w, x) };
        }
        acc
    }
}

/// Σ code·act of one group, exactly as `eddy_quant::group_dot_i32`.
#[inline(always)]
unsafe fn group_dot<const BITS: u32, const DOT: bool>(codes: &[u8], acts: &[i8], x_sum: i32) -> i32 {
    // SAFETY: forwarded contract (see `group_dot_mull`/`group_dot_sdot`).
    let lanes = unsafe { vaddvq_s32(group_lanes::<BITS, DOT>(codes, acts)) };
    if BITS == 8 {
        lanes.wrapping_add(x_sum.wrapping_mul(128))
    } else {
        lanes
    }
}

/// Σ code·act of one group with plain NEON (`x_sum`: the group's code sum,
/// used by W8).
///
/// # Safety
/// NEON must be present; `codes` holds `acts.len() * BITS / 8` bytes and
/// `acts.len()` is a multiple of 32.
pub(crate) unsafe fn group_dot_mull<const BITS: u32>(codes: &[u8], acts: &[i8], x_sum: i32) -> i32 {
    // SAFETY: same contract.
    unsafe { group_dot::<BITS, false>(codes, acts, x_sum) }
}

/// Σ code·act of one group with `sdot`.
///
/// # Safety
/// As [`group_dot_mull`], and the CPU must have `dotprod`.
#[target_feature(enable = "dotprod")]
pub(crate) unsafe fn group_dot_sdot<const BITS: u32>(codes: &[u8], acts: &[i8], x_sum: i32) -> i32 {
    // SAFETY: same contract, plus `dotprod`.
    unsafe { group_dot::<BITS, true>(codes, acts, x_sum) }
}

/// Four rows times the permuted activations: `out[r] = Σ_g s_g (scale_rg
/// acc_rg + min_rg sum_g)` with one row per f32 lane, in the reference's
/// order and without FMA.
#[inline(always)]
unsafe fn rows4<const BITS: u32, const DOT: bool>(
    s: &IntShape,
    rows: &[u8],
    acts: &[i8],
    x_scales: &[f32],
    x_sums: &[i32],
    out: &mut [f32],
) {
    // SAFETY: every slice below is bounds-checked; the kernels' contract
    // (NEON, `dotprod` if `DOT`, code/act lengths) is forwarded from the
    // caller; `out` holds 4 floats for the final store.
    unsafe {
        let mut result = vdupq_n_f32(0.0);
        for g in 0..s.groups {
            let group_acts = &acts[g * s.group..(g + 1) * s.group];
            let mut lanes = [vdupq_n_s32(0); 4];
            let mut scales = [0u16; 4];
            let mut mins = [0u16; 4];
            for r in 0..4 {
                let start = r * s.row_bytes + g * s.group_bytes;
                let gbytes = &rows[start..start + s.group_bytes];
                scales[r] = u16::from_le_bytes([gbytes[0], gbytes[1]]);
                mins[r] = u16::from_le_bytes([gbytes[2], gbytes[3]]);
                lanes[r] = group_lanes::<BITS, DOT>(&gbytes[GROUP_HEADER_BYTES..], group_acts);
            }
            // Lane r = Σ lanes[r]: exact integer sums of each row's group.
            let mut acc = vpaddq_s32(vpaddq_s32(lanes[0], lanes[1]), vpaddq_s32(lanes[2], lanes[3]));
            if BITS == 8 {
                acc = vaddq_s32(acc, vdupq_n_s32(x_sums[g].wrapping_mul(128)));
            }
            let acc = vcvtq_f32_s32(acc);
            let (scale, min) = headers_to_f32(&scales, &mins);
            let sum = vdupq_n_f32(x_sums[g] as f32);
            // result += s * (scale * acc + min * sum), as the reference.
            let inner = vaddq_f32(vmulq_f32(scale, acc), vmulq_f32(min, sum));
            result = vaddq_f32(result, vmulq_f32(vdupq_n_f32(x_scales[g]), inner));
        }
        let out = &mut out[..4];
        vst1q_f32(out.as_mut_ptr(), result);
    }
}

/// Four rows with plain NEON (see `rows4`).
///
/// # Safety
/// NEON must be present; `rows` holds 4 rows of `s.row_bytes`, `acts`
/// `s.groups * s.group` codes, `x_scales`/`x_sums` `s.groups` entries,
/// `out` 4 floats; `s.group` is a multiple of 32.
pub(crate) unsafe fn rows4_mull<const BITS: u32>(
    s: &IntShape,
    rows: &[u8],
    acts: &[i8],
    x_scales: &[f32],
    x_sums: &[i32],
    out: &mut [f32],
) {
    // SAFETY: same contract.
    unsafe { rows4::<BITS, false>(s, rows, acts, x_scales, x_sums, out) }
}

/// Four rows with `sdot` (see `rows4`).
///
/// # Safety
/// As [`rows4_mull`], and the CPU must have `dotprod`.
#[target_feature(enable = "dotprod")]
pub(crate) unsafe fn rows4_sdot<const BITS: u32>(
    s: &IntShape,
    rows: &[u8],
    acts: &[i8],
    x_scales: &[f32],
    x_sums: &[i32],
    out: &mut [f32],
) {
    // SAFETY: same contract, plus `dotprod`.
    unsafe { rows4::<BITS, true>(s, rows, acts, x_scales, x_sums, out) }
}
