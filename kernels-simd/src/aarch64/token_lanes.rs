//! Multi-token kernel (prefill) with `sdot` by element: four tokens side by
//! side, one per i32 lane, bit-exact with the matrix-vector kernels.
//!
//! The activations of four tokens are interleaved four codes at a time, so
//! `sdot vd.4s, x.16b, w.4b[i]` multiplies four codes of one row (chunk `i`
//! of an unpacked 16-code vector, no broadcast needed) with the same four
//! positions of four tokens, and a group's sums land one token per lane:
//! no pairwise reduction per (row, token) and group, unlike the
//! row-per-lane kernel in `matmat.rs`. Four rows times two batches of four
//! tokens share each unpacked code vector and each activation load.

use super::f16x4_to_f32;
use super::group::{unpack, Kind};
use super::matvec::permute_activations;
use crate::{ActsI8, IntShape};
use core::arch::aarch64::*;
use eddy_quant::GROUP_HEADER_BYTES;

/// Tokens per vector (one per i32/f32 lane).
const LANES: usize = 4;
/// Rows per pass.
const ROWS: usize = 4;
/// Batches of [`LANES`] tokens per pass.
const BATCHES: usize = 2;
/// Bytes per batch and group of token data: scales, sums (f32) and W8's
/// `128 Σx` (i32), four each.
const TOKEN_GROUP_BYTES: usize = 48;

/// Bytes of scratch [`matmat`] needs (groups of at least 32 codes); never
/// less for more columns or tokens.
pub(crate) const fn scratch_len(cols: usize, tokens: usize) -> usize {
    let batches = tokens.div_ceil(LANES * BATCHES) * BATCHES;
    15 + batches * LANES * cols + batches * (cols / 32) * TOKEN_GROUP_BYTES + cols
}

/// Where each part of the scratch starts, in bytes from its aligned start.
struct Layout {
    /// Interleaved activations: batch `b`, 4-code chunk `q`, lane `t` at
    /// `(b * cols / 4 + q) * 16 + 4 t`.
    interleaved: usize,
    /// Per batch and group, [`TOKEN_GROUP_BYTES`].
    token_groups: usize,
    /// One token's permuted codes.
    permuted: usize,
    /// Batches (a multiple of [`BATCHES`]).
    batches: usize,
}

impl Layout {
    fn new(cols: usize, tokens: usize, groups: usize) -> Layout {
        let batches = tokens.div_ceil(LANES * BATCHES) * BATCHES;
        let token_groups = batches * LANES * cols;
        let permuted = token_groups + batches * groups * TOKEN_GROUP_BYTES;
        Layout { interleaved: 0, token_groups, permuted, batches }
    }
}

/// True if [`matmat`] can run `tokens` tokens of shape `s` in `scratch`
/// bytes.
pub(super) fn covers(s: &IntShape, tokens: usize, scratch: usize) -> bool {
    scratch >= scratch_len(s.groups * s.group, tokens)
}

/// `acc + Σ x·w` with `sdot` by element: lane `l` gets four codes of
/// token `l` (`x`) times chunk `I` of `w`.
///
/// # Safety
/// The CPU must have `dotprod`.
#[target_feature(enable = "dotprod")]
#[inline]
unsafe fn sdot_lane<const I: i32>(mut acc: int32x4_t, x: int8x16_t, w: int8x16_t) -> int32x4_t {
    // SAFETY: register-only instruction, available per this function's
    // contract; no memory, stack or flags touched.
    unsafe {
        core::arch::asm!(
            "sdot {acc:v}.4s, {x:v}.16b, {w:v}.4b[{i}]",
            acc = inout(vreg) acc,
            x = in(vreg) x,
            w = in(vreg) w,
            i = const I,
            options(pure, nomem, nostack, preserves_flags)
        );
    }
    acc
}

/// Chunk `I` of every row's code vector `w[k]` times the batches'
/// activations for that chunk (`xs[b] + q * 16`).
///
/// # Safety
/// `dotprod` must be present; the activation loads stay in the scratch.
#[inline(always)]
unsafe fn chunk<const I: i32>(
    acc: &mut [[int32x4_t; BATCHES]; ROWS],
    xs: &[*const i8; BATCHES],
    q: usize,
    w: &[int8x16_t; ROWS],
) {
    // SAFETY: per the contract.
    unsafe {
        let mut x = [vdupq_n_s8(0); BATCHES];
        for (b, xb) in x.iter_mut().enumerate() {
            *xb = vld1q_s8(xs[b].add(q * 16));
        }
        for (acc_k, wk) in acc.iter_mut().zip(w) {
            for (a, xb) in acc_k.iter_mut().zip(&x) {
                *a = sdot_lane::<I>(*a, *xb, *wk);
            }
        }
    }
}

/// `out[t * rows + r]` = row `r` times token `t` for a shape of `kind`
/// (W`BITS`, in 64-code units if `WIDE`; see `group::by_kind`).
///
/// # Safety
/// NEON and `dotprod` must be present; `s` is `matrix`'s checked shape for
/// `out.len() / acts.len()` rows and every token; `BITS` and `WIDE` are
/// `kind`'s; `scratch` passed [`covers`].
#[target_feature(enable = "dotprod")]
pub(super) unsafe fn matmat<const BITS: u32, const WIDE: bool>(
    kind: Kind,
    s: &IntShape,
    matrix: &[u8],
    acts: &[ActsI8<'_>],
    out: &mut [f32],
    scratch: &mut [i8],
) {
    let tokens = acts.len();
    let (rows, cols, groups) = (out.len() / tokens, s.groups * s.group, s.groups);
    let layout = Layout::new(cols, tokens, groups);
    // Unpacked vectors per unit, codes and bytes per unit.
    let n = if BITS == 2 && WIDE { 4 } else { 2 };
    let (unit_codes, unit_bytes) = (16 * n, if WIDE { 16 } else { 4 * BITS as usize });
    let units = s.group / unit_codes;
    // SAFETY: the scratch holds the layout from a 16-byte aligned start
    // (`covers`); every matrix read stays inside row `r < rows`, group `g`
    // (its header and `s.group_bytes`); NEON and `dotprod` per the
    // contract.
    unsafe {
        let base = scratch.as_mut_ptr().add(scratch.as_ptr().align_offset(16).min(15));
        interleave_tokens(kind, s, acts, base, &layout);
        for r0 in (0..rows).step_by(ROWS) {
            // Rows past the end repeat the last one; their results are dropped.
            let row_at = |k: usize| matrix.as_ptr().add((r0 + k).min(rows - 1) * s.row_bytes);
            for pass in 0..layout.batches / BATCHES {
                let batch = |b: usize| pass * BATCHES + b;
                let xs: [*const i8; BATCHES] = core::array::from_fn(|b| {
                    base.add(layout.interleaved + batch(b) * LANES * cols) as *const i8
                });
                let token_groups: [*const f32; BATCHES] = core::array::from_fn(|b| {
                    base.add(layout.token_groups + batch(b) * groups * TOKEN_GROUP_BYTES) as *const f32
                });
                let mut result = [[vdupq_n_f32(0.0); BATCHES]; ROWS];
                for g in 0..groups {
                    let mut acc = [[vdupq_n_s32(0); BATCHES]; ROWS];
                    for u in 0..units {
                        let mut w = [[vdupq_n_s8(0); 4]; ROWS];
                        for (k, wk) in w.iter_mut().enumerate() {
                            let codes =
                                row_at(k).add(g * s.group_bytes + GROUP_HEADER_BYTES + u * unit_bytes);
                            *wk = unpack::<BITS, WIDE>(codes);
                        }
                        // Vector `v` of every row's unit (`n` of the 4 are used).
                        #[allow(clippy::needless_range_loop)]
                        for v in 0..n {
                            let wv: [int8x16_t; ROWS] = core::array::from_fn(|k| w[k][v]);
                            let q = (g * s.group + u * unit_codes + 16 * v) / 4;
                            chunk::<0>(&mut acc, &xs, q, &wv);
                            chunk::<1>(&mut acc, &xs, q + 1, &wv);
                            chunk::<2>(&mut acc, &xs, q + 2, &wv);
                            chunk::<3>(&mut acc, &xs, q + 3, &wv);
                        }
                    }
                    // The reference's group step, one token per lane:
                    // result + s * (scale * acc + min * sum).
                    for (k, (res_k, acc_k)) in result.iter_mut().zip(&acc).enumerate() {
                        let header = (row_at(k).add(g * s.group_bytes) as *const u32).read_unaligned();
                        // [scale, min, scale, min] from the f16 pair.
                        let pair = f16x4_to_f32(vreinterpret_u16_u32(vdup_n_u32(header)));
                        let (scale, min) = (vdupq_laneq_f32::<0>(pair), vdupq_laneq_f32::<1>(pair));
                        for (b, (res, a)) in res_k.iter_mut().zip(acc_k).enumerate() {
                            let t = token_groups[b].add(g * TOKEN_GROUP_BYTES / 4);
                            let (x_scale, x_sum) = (vld1q_f32(t), vld1q_f32(t.add(4)));
                            let sums =
                                if BITS == 8 { vaddq_s32(*a, vld1q_s32(t.add(8) as *const i32)) } else { *a };
                            let inner =
                                vaddq_f32(vmulq_f32(scale, vcvtq_f32_s32(sums)), vmulq_f32(min, x_sum));
                            *res = vaddq_f32(*res, vmulq_f32(x_scale, inner));
                        }
                    }
                }
                for (k, res_k) in result.iter().enumerate().take(rows - r0) {
                    for (b, res) in res_k.iter().enumerate() {
                        let first = batch(b) * LANES;
                        let mut lanes = [0f32; LANES];
                        vst1q_f32(lanes.as_mut_ptr(), *res);
                        for (t, v) in lanes.iter().enumerate().take(tokens.saturating_sub(first)) {
                            out[(first + t) * rows + r0 + k] = *v;
                        }
                    }
                }
            }
        }
    }
}

/// Every token's codes permuted to the unpacked order and interleaved four
/// at a time, and its group scales, sums and `128 Σx`, batch by batch
/// (missing tokens are zeros).
///
/// # Safety
/// NEON must be present; `base` holds the layout.
#[inline(always)]
unsafe fn interleave_tokens(kind: Kind, s: &IntShape, acts: &[ActsI8<'_>], base: *mut i8, layout: &Layout) {
    let (cols, groups) = (s.groups * s.group, s.groups);
    // SAFETY: every write stays inside the layout's parts; NEON per the
    // contract.
    unsafe {
        let permuted = core::slice::from_raw_parts_mut(base.add(layout.permuted), cols);
        for t in 0..layout.batches * LANES {
            let (b, lane) = (t / LANES, t % LANES);
            let chunks = base.add(layout.interleaved + b * LANES * cols + 4 * lane);
            let token_groups = base.add(layout.token_groups + b * groups * TOKEN_GROUP_BYTES) as *mut f32;
            let a = acts.get(t);
            if let Some(a) = a {
                permute_activations(kind, &a.q[..cols], permuted);
            }
            for q in 0..cols / 4 {
                let four = a.map_or(0, |_| (permuted.as_ptr().add(4 * q) as *const u32).read_unaligned());
                (chunks.add(q * 16) as *mut u32).write_unaligned(four);
            }
            for g in 0..groups {
                let at = token_groups.add(g * TOKEN_GROUP_BYTES / 4 + lane);
                let (scale, sum) = a.map_or((0.0, 0), |a| (a.scales[g], a.sums[g]));
                at.write_unaligned(scale);
                at.add(4).write_unaligned(sum as f32);
                (at.add(8) as *mut i32).write_unaligned(sum.wrapping_mul(128));
            }
        }
    }
}
