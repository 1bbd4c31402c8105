//! Multi-token kernel (prefill) with `sdot`: the codes of four rows are
//! unpacked once per 32 codes and multiplied with four tokens'
//! activations, over blocks of rows small enough to stay in cache while
//! every batch of tokens passes over them. Each (token, row) result comes
//! from exactly the operations of the matrix-vector kernel, so it is
//! bit-exact too.
//!
//! The plain-NEON version (`matmat_neon`) orders its loops differently so
//! that its sixteen (token, row) accumulators stay in registers.

use super::dotprod_available;
use super::f16x4_to_f32;
use super::group::{by_kind, unit_dot, unpack, Kind, Unit};
use super::matvec::{permute_activations, rows_permuted};
use crate::{ActsI8, IntShape, QuantMatrix};
use core::arch::aarch64::*;
use eddy_quant::GROUP_HEADER_BYTES;

/// Tokens one pass multiplies with each unpacked weight unit.
pub(super) const TOKENS: usize = 4;

/// Bytes of weights in one cache block of rows.
const BLOCK_BYTES: usize = 32 * 1024;

/// [`crate::MatmatI8`] with `sdot`: each unpacked weight unit is
/// multiplied with four tokens; bit-exact per token. On a CPU without
/// `dotprod`, and for shapes the kernels do not cover, one plain-NEON
/// matrix-vector product per token; the tokens after the last whole batch
/// of four use the `sdot` matrix-vector kernel.
pub fn matmat_i8_sdot(w: QuantMatrix<'_>, acts: &[ActsI8<'_>], out: &mut [f32], perm: &mut [i8]) {
    if !dotprod_available() {
        let rows = out.len() / acts.len().max(1);
        for (a, o) in acts.iter().zip(out.chunks_exact_mut(rows.max(1))) {
            super::matvec::matvec_i8(false, w, a, o, perm);
        }
        return;
    }
    let shape = IntShape::for_tokens(w, out.len(), acts, w.cols)
        .filter(|s| super::token_lanes::covers(s, acts.len(), perm.len()));
    if let Some(s) = shape {
        let kind = Kind::of(&s);
        // SAFETY: `dotprod` was detected; every token's shape check
        // passed, `covers` checked the scratch, and `by_kind` passes
        // `kind`'s code width.
        unsafe {
            by_kind!(kind, BITS, WIDE => super::token_lanes::matmat::<BITS, WIDE>(kind, &s, w.bytes, acts, out, perm))
        };
        return;
    }
    // SAFETY: `dotprod` was detected, as `rows4_tokens_sdot` needs.
    unsafe { matmat_with(true, rows4_tokens_sdot, w, acts, out, perm) }
}

/// Four rows times one batch of [`TOKENS`] tokens (`out[t * stride + r]`
/// gets token `t`, row `r`): the `sdot` or the plain-NEON kernel.
pub(super) type Rows4Tokens = unsafe fn(&Batch<'_>, *const u8, &mut [f32], usize);

/// The multi-token product both aarch64 sets share: `kernel` on every
/// whole block of four rows times four tokens, over blocks of rows that
/// stay in cache while every batch of tokens passes over them; the rows
/// and tokens left over, and shapes the kernels do not cover, use the
/// matrix-vector kernel (`sdot` if `dot`).
///
/// # Safety
/// The CPU must run `kernel` (and `sdot` if `dot`).
pub(super) unsafe fn matmat_with(
    dot: bool,
    kernel: Rows4Tokens,
    w: QuantMatrix<'_>,
    acts: &[ActsI8<'_>],
    out: &mut [f32],
    perm: &mut [i8],
) {
    let (matrix, cols) = (w.bytes, w.cols);
    let tokens = acts.len();
    let rows = out.len() / tokens.max(1);
    if rows == 0 {
        return;
    }
    let shape = IntShape::for_tokens(w, out.len(), acts, perm.len() / tokens);
    let Some(shape) = shape else {
        for (a, o) in acts.iter().zip(out.chunks_exact_mut(rows)) {
            super::matvec::matvec_i8(dot, w, a, o, perm);
        }
        return;
    };
    let kind = Kind::of(&shape);
    let perm = &mut perm[..tokens * cols];
    for (a, p) in acts.iter().zip(perm.chunks_exact_mut(cols)) {
        // SAFETY: NEON is present; both slices hold `cols` bytes, a
        // multiple of the group.
        unsafe { permute_activations(kind, &a.q[..cols], p) };
    }
    let perm = &*perm;
    let row_bytes = shape.row_bytes;
    let (full_rows, full_tokens) = (rows / 4 * 4, tokens / TOKENS * TOKENS);
    let block_rows = (BLOCK_BYTES / row_bytes).max(4) / 4 * 4;
    for block_start in (0..full_rows).step_by(block_rows) {
        let block_end = (block_start + block_rows).min(full_rows);
        for first in (0..full_tokens).step_by(TOKENS) {
            let batch = Batch {
                kind,
                shape: &shape,
                acts: &acts[first..first + TOKENS],
                perm: &perm[first * cols..],
                cols,
            };
            for row0 in (block_start..block_end).step_by(4) {
                let rows4 = &matrix[row0 * row_bytes..(row0 + 4) * row_bytes];
                let o = &mut out[first * rows + row0..];
                // SAFETY: `rows4` holds 4 rows; `batch.perm` holds
                // `TOKENS * cols` permuted codes and each of its `acts`
                // `groups` scales and sums (checked by for_matvec); `o`
                // reaches row `row0 + 3` of token `first + 3`; the CPU
                // runs `kernel` (caller).
                unsafe { kernel(&batch, rows4.as_ptr(), o, rows) };
            }
        }
    }
    // Leftover rows of the batched tokens, and every row of the rest.
    for (t, (a, o)) in acts.iter().zip(out.chunks_exact_mut(rows)).enumerate() {
        let permuted = ActsI8 { q: &perm[t * cols..(t + 1) * cols], scales: a.scales, sums: a.sums };
        let first_row = if t < full_tokens { full_rows } else { 0 };
        rows_permuted(dot, kind, &shape, &matrix[first_row * row_bytes..], &permuted, &mut o[first_row..]);
    }
}

/// One batch of [`TOKENS`] tokens: their activations (scales, sums) and
/// permuted codes (`cols` per token, one after the other), and the shape
/// of the matrix they multiply.
pub(super) struct Batch<'a> {
    /// The matrix's code width and unit size.
    pub(super) kind: Kind,
    /// The matrix's checked shape.
    pub(super) shape: &'a IntShape,
    /// The tokens' activations (their scales and sums are used).
    pub(super) acts: &'a [ActsI8<'a>],
    /// Permuted codes, `cols` per token.
    pub(super) perm: &'a [i8],
    /// Codes per token.
    pub(super) cols: usize,
}

/// One code unit (32 codes, or 64 for W2 in wide units) of four rows and
/// the matching activations of a batch's [`TOKENS`] tokens.
pub(super) struct UnitAt {
    /// Each row's codes of the unit.
    pub(super) codes: [*const u8; 4],
    /// Each token's activations of the unit.
    pub(super) xs: [*const i8; TOKENS],
}

/// `acc[t][r]`: row `r` times token `t`, one group's i32 sums.
pub(super) type GroupAcc = [[int32x4_t; 4]; TOKENS];

/// One unit of four rows times a batch's tokens in the `sdot` ([`Sdot`])
/// or plain-NEON (`matmat_neon`) loop order; the rest of [`rows4_tokens`]
/// is the same for both.
pub(super) trait UnitDot {
    /// `acc[t][r] += Σ w·x` over the unit's codes.
    ///
    /// # Safety
    /// NEON (and whatever the implementation uses) must be present; the
    /// unit's code bytes and activations are readable.
    unsafe fn unit<const BITS: u32, const WIDE: bool>(at: &UnitAt, acc: &mut GroupAcc);
}

/// Four rows times the batch's four tokens; `out[t * stride + r]` gets
/// token `t`, row `r`: per group, the rows' headers, `D` on each unit,
/// then [`finish_group`].
///
/// # Safety
/// NEON and what `D` uses must be present; `rows` points at 4 rows of
/// `s.row_bytes` (`s` = `batch.shape`, of `batch.kind`); `batch.perm` holds `TOKENS * batch.cols` codes and
/// `batch.acts` `TOKENS` entries of at least `s.groups` scales and sums;
/// `out` holds `3 * stride + 4` floats; `s.group` is a multiple of 32 (of
/// 64 if `WIDE`).
#[inline(always)]
pub(super) unsafe fn rows4_tokens<D: UnitDot, const BITS: u32, const WIDE: bool>(
    batch: &Batch<'_>,
    rows: *const u8,
    out: &mut [f32],
    stride: usize,
) {
    let s = batch.shape;
    // Halves of 32 codes per unit, bytes of codes per unit.
    let (halves, unit_bytes) = if WIDE { (2, 16) } else { (1, 4 * BITS as usize) };
    let units = s.group / (32 * halves);
    let row_at: [*const u8; 4] = core::array::from_fn(|r| rows.wrapping_add(r * s.row_bytes));
    let x_at: [*const i8; TOKENS] =
        core::array::from_fn(|t| batch.perm.as_ptr().wrapping_add(t * batch.cols));
    // SAFETY: code pointers stay inside row `r < 4`, group `g`, unit `u`
    // (within `s.group_bytes`); activation pointers inside token `t`'s
    // `cols = s.groups * s.group` codes; the features per the contract.
    unsafe {
        let mut result = [vdupq_n_f32(0.0); TOKENS];
        for g in 0..s.groups {
            let group: [*const u8; 4] = core::array::from_fn(|r| row_at[r].add(g * s.group_bytes));
            let headers: [u32; 4] = core::array::from_fn(|r| (group[r] as *const u32).read_unaligned());
            let mut acc = [[vdupq_n_s32(0); 4]; TOKENS];
            for u in 0..units {
                let at = UnitAt {
                    codes: core::array::from_fn(|r| group[r].add(GROUP_HEADER_BYTES + u * unit_bytes)),
                    xs: core::array::from_fn(|t| x_at[t].add(g * s.group + u * halves * 32)),
                };
                D::unit::<BITS, WIDE>(&at, &mut acc);
            }
            finish_group::<BITS>(&mut result, &acc, &headers, batch.acts, g);
        }
        for (t, res) in result.iter().enumerate() {
            vst1q_f32(out[t * stride..t * stride + 4].as_mut_ptr(), *res);
        }
    }
}

/// The `sdot` loop: per 32 codes each row's codes are unpacked once (W2
/// with 64-code units: loaded once per 64; W8: re-biased once, with `128
/// Σx` added per token) and multiplied with every token.
pub(super) struct Sdot;

impl UnitDot for Sdot {
    /// See [`UnitDot::unit`]; `dotprod` must be present too.
    #[inline(always)]
    unsafe fn unit<const BITS: u32, const WIDE: bool>(at: &UnitAt, acc: &mut GroupAcc) {
        // SAFETY: reads inside the unit's codes and activations; the
        // features per the contract.
        unsafe {
            let zero = vdupq_n_s8(0);
            // W2 wide: each row's 64 codes loaded once, unpacked per half.
            let mut loaded = [vdupq_n_u8(0); 4];
            if WIDE {
                for (v, &c) in loaded.iter_mut().zip(&at.codes) {
                    *v = vld1q_u8(c);
                }
            }
            for h in 0..if WIDE { 2 } else { 1 } {
                let mut w: [Unit; 4] = [[zero; 4]; 4];
                for (r, wr) in w.iter_mut().enumerate() {
                    *wr = if WIDE { wide_half(loaded[r], h) } else { unpack::<BITS, false>(at.codes[r]) };
                }
                for (acc_t, xs) in acc.iter_mut().zip(&at.xs) {
                    let xs = xs.add(h * 32);
                    let x: Unit = [vld1q_s8(xs), vld1q_s8(xs.add(16)), zero, zero];
                    for (a, wr) in acc_t.iter_mut().zip(&w) {
                        *a = unit_dot::<BITS, false, true>(*a, wr, &x);
                    }
                }
            }
        }
    }
}

/// The end of group `g` for four rows and [`TOKENS`] tokens: each token's
/// four accumulators per row summed (lane `r` = row `r`), W8's `128 Σx`
/// added, then `result += s * (scale * acc + min * sum)` with the rows'
/// f16 headers (`scale | min << 16`), exactly as the matrix-vector kernel.
///
/// # Safety
/// NEON must be present; every token's scales and sums hold group `g`.
#[inline(always)]
pub(super) unsafe fn finish_group<const BITS: u32>(
    result: &mut [float32x4_t; TOKENS],
    acc: &[[int32x4_t; 4]; TOKENS],
    headers: &[u32; 4],
    acts: &[ActsI8<'_>],
    g: usize,
) {
    // SAFETY: NEON per the contract; `headers` holds four u32.
    unsafe {
        let hv = vld1q_u32(headers.as_ptr());
        let scale = f16x4_to_f32(vmovn_u32(hv));
        let min = f16x4_to_f32(vshrn_n_u32::<16>(hv));
        for ((res, acc_t), a) in result.iter_mut().zip(acc).zip(acts) {
            // Lane r = Σ acc_t[r], as in the matrix-vector kernel.
            let mut sums = vpaddq_s32(vpaddq_s32(acc_t[0], acc_t[1]), vpaddq_s32(acc_t[2], acc_t[3]));
            if BITS == 8 {
                sums = vaddq_s32(sums, vdupq_n_s32(a.sums[g].wrapping_mul(128)));
            }
            let sum = vdupq_n_f32(a.sums[g] as f32);
            let inner = vaddq_f32(vmulq_f32(scale, vcvtq_f32_s32(sums)), vmulq_f32(min, sum));
            *res = vaddq_f32(*res, vmulq_f32(vdupq_n_f32(a.scales[g]), inner));
        }
    }
}

/// Half `h` (0 or 1) of 64 W2 codes loaded as 16 bytes, unpacked like
/// `group::unpack` (vectors `2h` and `2h + 1` of its wide unit).
///
/// # Safety
/// NEON must be present.
#[inline(always)]
pub(super) unsafe fn wide_half(v: uint8x16_t, h: usize) -> Unit {
    let m = vdupq_n_u8(3);
    let (a, b) = if h == 0 {
        (vandq_u8(v, m), vandq_u8(vshrq_n_u8::<2>(v), m))
    } else {
        (vandq_u8(vshrq_n_u8::<4>(v), m), vshrq_n_u8::<6>(v))
    };
    let zero = vdupq_n_s8(0);
    [vreinterpretq_s8_u8(a), vreinterpretq_s8_u8(b), zero, zero]
}

/// [`rows4_tokens`] with [`Sdot`], dispatched on `b.kind`.
///
/// # Safety
/// As [`rows4_tokens`], with `dotprod`.
#[target_feature(enable = "dotprod")]
unsafe fn rows4_tokens_sdot(b: &Batch<'_>, rows: *const u8, out: &mut [f32], stride: usize) {
    // SAFETY: same contract, plus `dotprod`.
    unsafe { by_kind!(b.kind, BITS, WIDE => rows4_tokens::<Sdot, BITS, WIDE>(b, rows, out, stride)) }
}
