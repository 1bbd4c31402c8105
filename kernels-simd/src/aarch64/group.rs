//! Integer row blocks: plain NEON (`smull`/`smlal` into i16, `sadalp` into
//! i32) and `sdot`, four rows (or one, for the ragged tail) at a time.
//!
//! Within a group, each step loads one unit of activations (32 codes, or
//! 64 for W2 when the group allows) once and multiplies it with the same
//! unit of every row in the block. Activations come permuted to match the
//! unpacked code order (see `permute_activations`).

use super::f16x4_to_f32;
use crate::{ActsI8, IntShape};
use core::arch::aarch64::*;
use eddy_quant::GROUP_HEADER_BYTES;

/// One unit of unpacked codes or activations: two (32 codes) or four (64
/// codes, W2 with `WIDE`) 16-lane vectors; unused vectors stay zero.
pub(super) type Unit = [int8x16_t; 4];

/// Vectors per unit.
const fn vectors(bits: u32, wide: bool) -> usize {
    if bits == 2 && wide {
        4
    } else {
        2
    }
}

/// Bytes of codes per unit.
const fn unit_bytes(bits: u32, wide: bool) -> usize {
    vectors(bits, wide) * 16 * bits as usize / 8
}

/// One unit of codes unpacked to i8 vectors in the permuted order: W2 wide
/// (64 codes from 16 bytes): vector `j` lane `k` = code `4k + j`; W2 narrow
/// (32 codes from 8 bytes): lane `8j + k` of the 32 = code `4k + j`; W4:
/// lane `k` = code `2k`, lane `16 + k` = code `2k + 1`; W8: in order,
/// re-biased to `c - 128` (the caller adds `128 Σx`).
///
/// # Safety
/// NEON must be present; `c` points at `unit_bytes(BITS, WIDE)` readable
/// bytes.
#[inline(always)]
pub(super) unsafe fn unpack<const BITS: u32, const WIDE: bool>(c: *const u8) -> Unit {
    let zero = vdupq_n_s8(0);
    // SAFETY: the loads read exactly `unit_bytes(BITS, WIDE)` bytes from
    // `c`, as the caller guarantees; the rest is register arithmetic.
    unsafe {
        let m2 = vdupq_n_u8(3);
        match (BITS, WIDE) {
            (2, true) => {
                let v = vld1q_u8(c);
                [
                    vreinterpretq_s8_u8(vandq_u8(v, m2)),
                    vreinterpretq_s8_u8(vandq_u8(vshrq_n_u8::<2>(v), m2)),
                    vreinterpretq_s8_u8(vandq_u8(vshrq_n_u8::<4>(v), m2)),
                    vreinterpretq_s8_u8(vshrq_n_u8::<6>(v)),
                ]
            }
            (2, false) => {
                // The 8 code bytes in both halves, shifted right by 0|2 and
                // 4|6 bits per half (`ushl` by a negative count).
                let h = vld1_u8(c);
                let v = vcombine_u8(h, h);
                let s01 = vcombine_s8(vdup_n_s8(0), vdup_n_s8(-2));
                let s23 = vcombine_s8(vdup_n_s8(-4), vdup_n_s8(-6));
                let w0 = vandq_u8(vshlq_u8(v, s01), m2);
                let w1 = vandq_u8(vshlq_u8(v, s23), m2);
                [vreinterpretq_s8_u8(w0), vreinterpretq_s8_u8(w1), zero, zero]
            }
            (4, _) => {
                let v = vld1q_u8(c);
                let w0 = vandq_u8(v, vdupq_n_u8(0x0f));
                [vreinterpretq_s8_u8(w0), vreinterpretq_s8_u8(vshrq_n_u8::<4>(v)), zero, zero]
            }
            _ => {
                let bias = vdupq_n_u8(0x80);
                let w0 = veorq_u8(vld1q_u8(c), bias);
                let w1 = veorq_u8(vld1q_u8(c.add(16)), bias);
                [vreinterpretq_s8_u8(w0), vreinterpretq_s8_u8(w1), zero, zero]
            }
        }
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

/// `acc + Σ w·x` over one unit: exact i32 sums either way. Plain NEON
/// accumulates W2/W4 products in i16 first: at most 8 per lane, each at
/// most 15·128 = 1920 in magnitude, so 15360 cannot overflow; W8 (|w| <=
/// 128, |x| <= 127 as the quantizer makes them) two per lane, at most
/// 32512, then widens.
///
/// # Safety
/// NEON must be present, and `dotprod` if `DOT`.
#[inline(always)]
pub(super) unsafe fn unit_dot<const BITS: u32, const WIDE: bool, const DOT: bool>(
    acc: int32x4_t,
    w: &Unit,
    x: &Unit,
) -> int32x4_t {
    let n = vectors(BITS, WIDE);
    // SAFETY: register-only arithmetic; `sdot` only when `DOT`, in which
    // case the caller guarantees `dotprod`.
    unsafe {
        if DOT {
            let mut acc = acc;
            for i in 0..n {
                acc = sdot(acc, w[i], x[i]);
            }
            acc
        } else if BITS == 8 {
            let mut acc = acc;
            for i in 0..n {
                let p = vmull_s8(vget_low_s8(w[i]), vget_low_s8(x[i]));
                acc = vpadalq_s16(acc, vmlal_high_s8(p, w[i], x[i]));
            }
            acc
        } else {
            let mut p = vmull_s8(vget_low_s8(w[0]), vget_low_s8(x[0]));
            p = vmlal_high_s8(p, w[0], x[0]);
            for i in 1..n {
                p = vmlal_high_s8(vmlal_s8(p, vget_low_s8(w[i]), vget_low_s8(x[i])), w[i], x[i]);
            }
            vpadalq_s16(acc, p)
        }
    }
}

/// `R` rows (1 or 4) times the permuted activations: `out[r] = Σ_g s_g
/// (scale_rg acc_rg + min_rg sum_g)` with one row per f32 lane, in the
/// reference's order and without FMA, so bit-exact with it.
///
/// # Safety
/// NEON must be present, and `dotprod` if `DOT`; `rows` points at `R` rows
/// of `s.row_bytes` bytes; `acts` holds `s.groups * s.group` permuted
/// codes; `x_scales`/`x_sums` hold `s.groups` entries; `out` holds `R`
/// floats; `s.group` is a multiple of 32 (of 64 if `WIDE`).
#[inline(always)]
unsafe fn rows<const BITS: u32, const WIDE: bool, const DOT: bool, const R: usize>(
    s: &IntShape,
    rows: *const u8,
    acts: &[i8],
    x_scales: &[f32],
    x_sums: &[i32],
    out: &mut [f32],
) {
    let n = vectors(BITS, WIDE);
    let (unit_codes, unit_bytes) = (16 * n, unit_bytes(BITS, WIDE));
    let units = s.group / unit_codes;
    // SAFETY: every pointer below stays inside row `r < R` (group `g <
    // s.groups`, unit `u < units`, within `s.group_bytes`) or inside
    // `acts` (sliced, so bounds-checked); NEON/`dotprod` per the contract.
    unsafe {
        let mut result = vdupq_n_f32(0.0);
        for (g, group_acts) in acts.chunks_exact(s.group).take(s.groups).enumerate() {
            let mut acc = [vdupq_n_s32(0); 4];
            let mut headers = [0u32; 4];
            let group_at = |r: usize| rows.add(r * s.row_bytes + g * s.group_bytes);
            for (r, h) in headers.iter_mut().enumerate().take(R) {
                *h = (group_at(r) as *const u32).read_unaligned();
            }
            for (u, xs) in group_acts.chunks_exact(unit_codes).take(units).enumerate() {
                let mut x = [vdupq_n_s8(0); 4];
                for (i, v) in x.iter_mut().enumerate().take(n) {
                    *v = vld1q_s8(xs.as_ptr().add(16 * i));
                }
                for (r, a) in acc.iter_mut().enumerate().take(R) {
                    let w = unpack::<BITS, WIDE>(group_at(r).add(GROUP_HEADER_BYTES + u * unit_bytes));
                    *a = unit_dot::<BITS, WIDE, DOT>(*a, &w, &x);
                }
            }
            // Lane r = Σ acc[r]: the exact integer sum of row r's group.
            let mut sums = vpaddq_s32(vpaddq_s32(acc[0], acc[1]), vpaddq_s32(acc[2], acc[3]));
            if BITS == 8 {
                sums = vaddq_s32(sums, vdupq_n_s32(x_sums[g].wrapping_mul(128)));
            }
            // Headers are little-endian (scale, min) f16 pairs.
            let h = vld1q_u32(headers.as_ptr());
            let scale = f16x4_to_f32(vmovn_u32(h));
            let min = f16x4_to_f32(vshrn_n_u32::<16>(h));
            let sum = vdupq_n_f32(x_sums[g] as f32);
            // result += s * (scale * acc + min * sum), as the reference.
            let inner = vaddq_f32(vmulq_f32(scale, vcvtq_f32_s32(sums)), vmulq_f32(min, sum));
            result = vaddq_f32(result, vmulq_f32(vdupq_n_f32(x_scales[g]), inner));
        }
        if R == 4 {
            vst1q_f32(out[..4].as_mut_ptr(), result);
        } else {
            let mut lanes = [0f32; 4];
            vst1q_f32(lanes.as_mut_ptr(), result);
            out[..R].copy_from_slice(&lanes[..R]);
        }
    }
}

/// `$body` with the const generics `$bits: u32` and `$wide: bool` of the
/// kernel `$kind` (a [`Kind`]) names: one match, however many kernels are
/// instantiated per kind.
macro_rules! by_kind {
    ($kind:expr, $bits:ident, $wide:ident => $body:expr) => {
        match $kind {
            Kind::W2Wide => {
                const $bits: u32 = 2;
                const $wide: bool = true;
                $body
            }
            Kind::W2 => {
                const $bits: u32 = 2;
                const $wide: bool = false;
                $body
            }
            Kind::W4 => {
                const $bits: u32 = 4;
                const $wide: bool = false;
                $body
            }
            Kind::W8 => {
                const $bits: u32 = 8;
                const $wide: bool = false;
                $body
            }
        }
    };
}
pub(super) use by_kind;

/// Which row-block kernel: code width and unit size.
#[derive(Clone, Copy)]
pub(crate) enum Kind {
    /// W2, 64-code units (group a multiple of 64).
    W2Wide,
    /// W2, 32-code units (group 32).
    W2,
    /// W4, 32-code units.
    W4,
    /// W8, 32-code units.
    W8,
}

impl Kind {
    /// The kernel for `s`.
    pub(crate) fn of(s: &IntShape) -> Kind {
        match s.bits {
            2 if s.group % 64 == 0 => Kind::W2Wide,
            2 => Kind::W2,
            4 => Kind::W4,
            _ => Kind::W8,
        }
    }
}

/// `out.len()` rows of `matrix` (from its first byte) times the permuted
/// activations: blocks of four rows, then single rows ([`rows`] with
/// `DOT`), one `kind` dispatch per call.
///
/// # Safety
/// NEON must be present, and `dotprod` if `DOT`; `matrix` holds
/// `out.len()` rows of `s.row_bytes`; `acts.q` holds `s.groups * s.group`
/// permuted codes, its scales and sums `s.groups` entries; `s.group` is a
/// multiple of 32 (of 64 if `kind` is [`Kind::W2Wide`]).
#[inline(always)]
unsafe fn rows_all<const DOT: bool>(
    kind: Kind,
    s: &IntShape,
    matrix: &[u8],
    acts: &ActsI8<'_>,
    out: &mut [f32],
) {
    let (q, scales, sums) = (acts.q, acts.scales, acts.sums);
    let full = out.len() / 4 * 4;
    let (out4, out_tail) = out.split_at_mut(full);
    let blocks4 = out4.chunks_exact_mut(4).zip(matrix.chunks_exact(4 * s.row_bytes));
    let tail = out_tail.chunks_exact_mut(1).zip(matrix[full * s.row_bytes..].chunks_exact(s.row_bytes));
    // SAFETY: each `rows` slice holds the 4 (or 1) rows the kernel reads,
    // `o` 4 (or 1) floats; the rest per the contract.
    unsafe {
        by_kind!(kind, BITS, WIDE => {
            for (o, rows4) in blocks4 {
                rows::<BITS, WIDE, DOT, 4>(s, rows4.as_ptr(), q, scales, sums, o);
            }
            for (o, row) in tail {
                rows::<BITS, WIDE, DOT, 1>(s, row.as_ptr(), q, scales, sums, o);
            }
        })
    }
}

/// [`rows_all`] with plain NEON.
///
/// # Safety
/// As [`rows_all`].
pub(crate) unsafe fn rows_mull(kind: Kind, s: &IntShape, matrix: &[u8], acts: &ActsI8<'_>, out: &mut [f32]) {
    // SAFETY: same contract.
    unsafe { rows_all::<false>(kind, s, matrix, acts, out) }
}

/// [`rows_all`] with `sdot`.
///
/// # Safety
/// As [`rows_all`], and the CPU must have `dotprod`.
#[target_feature(enable = "dotprod")]
pub(crate) unsafe fn rows_sdot(kind: Kind, s: &IntShape, matrix: &[u8], acts: &ActsI8<'_>, out: &mut [f32]) {
    // SAFETY: same contract, plus `dotprod`.
    unsafe { rows_all::<true>(kind, s, matrix, acts, out) }
}
