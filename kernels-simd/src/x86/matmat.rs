//! The AVX2 multi-token integer kernel (prefill): each unpacked weight
//! group multiplied with a batch of tokens, bit-exact per token with
//! [`super::matvec`]'s kernel.

use super::group::{Codes, W2, W4, W8};
use super::matvec::{
    group_step, headers8, hsum8_i32, kernel_for, kernels_cover, offsets_i32, permute_activations, store_rows,
    Prefetch, RowBlock, ROWS,
};
use super::token_lanes::{Maddubs, TileSums};
use super::{avx2_available, token_lanes};
use crate::{ActsI8, IntShape, QuantMatrix};
use core::arch::x86_64::*;
use core::mem::MaybeUninit;
use eddy_quant::GROUP_HEADER_BYTES;

/// One format's kernel over all rows and tokens (see [`matmat_rows`]).
pub(super) type MatmatRows = unsafe fn(&IntShape, &[u8], &[i8], &[ActsI8<'_>], &mut [f32]);

/// A kernel set's choice of [`MatmatRows`] for a shape.
pub(super) type PickMatmat = fn(&IntShape) -> Option<MatmatRows>;

/// Tokens one multi-token pass multiplies with each unpacked weight group.
const TOKEN_BATCH: usize = 8;

/// Bytes of weights in one cache block of the multi-token kernel.
const BLOCK_BYTES: usize = 32 * 1024;

/// See [`crate::MatmatI8`]. Codes are unpacked once per row and group and
/// multiplied with up to eight tokens (~10% less time per token than four
/// on the dev machine, `matvec_time`), over blocks of rows that stay in
/// cache while every token passes over them; each (row, token) result is
/// computed by exactly the operations of [`super::matvec_i8`].
pub fn matmat_i8(w: QuantMatrix<'_>, acts: &[ActsI8<'_>], out: &mut [f32], perm: &mut [i8]) {
    matmat_i8_lanes::<Maddubs>(token_lanes_kernel, avx2_matmat, w, acts, out, perm);
}

/// The token-lane kernel of one shape.
pub(super) type TokenLanes = unsafe fn(&IntShape, &[u8], &[ActsI8<'_>], &mut [f32], &mut [i8]);

/// A kernel set's choice of [`TokenLanes`] for a shape (`None`: the CPU
/// lacks the instructions, or the format is not covered).
pub(super) type PickLanes = fn(&IntShape) -> Option<TokenLanes>;

/// [`crate::MatmatI8`] with the token-lane kernel `lanes` picks (tiles
/// summed by `T`) when the scratch suffices, else with the kernels
/// `fallback` picks ([`matmat_i8_with`]).
pub(super) fn matmat_i8_lanes<T: TileSums>(
    lanes: PickLanes,
    fallback: PickMatmat,
    w: QuantMatrix<'_>,
    acts: &[ActsI8<'_>],
    out: &mut [f32],
    perm: &mut [i8],
) {
    let picked = batch_shape(w, acts, out.len(), w.cols)
        .filter(|s| token_lanes::covers::<T>(s, acts.len(), perm.len()))
        .and_then(|s| Some((s, lanes(&s)?)));
    match picked {
        // SAFETY: `lanes` returns kernels only when the CPU has their
        // instructions; every token's shape check passed and `covers`
        // checked the scratch for `T`.
        Some((shape, kernel)) => unsafe { kernel(&shape, w.bytes, acts, out, perm) },
        None => matmat_i8_with(fallback, w, acts, out, perm),
    }
}

/// [`token_lanes::matmat`] with [`Maddubs`] for a shape, if this CPU has
/// AVX2.
fn token_lanes_kernel(s: &IntShape) -> Option<TokenLanes> {
    if !avx2_available() {
        return None;
    }
    kernel_for!(s, avx2_lanes, W2 1, W4 1, W8 2)
}

/// [`token_lanes::matmat`] with [`Maddubs`].
///
/// # Safety
/// As for [`token_lanes::matmat`].
#[target_feature(enable = "avx2,f16c")]
unsafe fn avx2_lanes<C: Codes, const PLANES: usize>(
    s: &IntShape,
    matrix: &[u8],
    acts: &[ActsI8<'_>],
    out: &mut [f32],
    scratch: &mut [i8],
) {
    token_lanes::matmat::<C, PLANES, Maddubs>(s, matrix, acts, out, scratch)
}

/// The shape every token's product has (`None` if any token's check
/// fails or there are none). `perm_per_token`: scratch bytes per token
/// the caller's kernel needs.
fn batch_shape(
    w: QuantMatrix<'_>,
    acts: &[ActsI8<'_>],
    out_len: usize,
    perm_per_token: usize,
) -> Option<IntShape> {
    IntShape::for_tokens(w, out_len, acts, perm_per_token).filter(kernels_cover)
}

/// The AVX2 multi-token kernel for a shape, if this CPU has AVX2.
fn avx2_matmat(s: &IntShape) -> Option<MatmatRows> {
    if !avx2_available() {
        return None;
    }
    kernel_for!(s, matmat_rows, W2, W4, W8)
}

/// [`crate::MatmatI8`] with the kernels `pick` chooses (the scalar
/// reference per token when it chooses none).
pub(super) fn matmat_i8_with(
    pick: PickMatmat,
    w: QuantMatrix<'_>,
    acts: &[ActsI8<'_>],
    out: &mut [f32],
    perm: &mut [i8],
) {
    let QuantMatrix { format, bytes: matrix, cols } = w;
    let tokens = acts.len();
    if tokens == 0 {
        return;
    }
    let rows = out.len() / tokens;
    let shape = batch_shape(w, acts, out.len(), perm.len() / tokens);
    match shape.and_then(|s| Some((s, pick(&s)?))) {
        Some((shape, kernel)) => {
            for (a, p) in acts.iter().zip(perm.chunks_exact_mut(cols)) {
                permute_activations(shape.bits, shape.group, &a.q[..cols], p);
            }
            // SAFETY: `pick` returns kernels only when the CPU has their
            // instructions; every token's shape check passed, `perm`
            // holds `tokens * cols` reordered codes and `out` `tokens *
            // rows` values.
            unsafe { kernel(&shape, matrix, perm, acts, out) }
        }
        None => {
            for (a, o) in acts.iter().zip(out.chunks_exact_mut(rows.max(1))) {
                eddy_quant::matvec_i8(format, matrix, cols, a.q, a.scales, a.sums, o);
            }
        }
    }
}

/// Blocks of rows that stay in cache while batches of tokens pass over
/// them. Both x86 sets run it, with their own `C`.
#[target_feature(enable = "avx2,f16c")]
pub(super) unsafe fn matmat_rows<C: Codes>(
    s: &IntShape,
    matrix: &[u8],
    perm: &[i8],
    acts: &[ActsI8<'_>],
    out: &mut [f32],
) {
    let tokens = acts.len();
    let (rows, cols) = (out.len() / tokens, s.groups * C::GROUP);
    let block_rows = ((BLOCK_BYTES / s.row_bytes.max(1)) / ROWS * ROWS).max(ROWS);
    for block_start in (0..rows).step_by(block_rows) {
        let block_end = (block_start + block_rows).min(rows);
        for first in (0..tokens).step_by(TOKEN_BATCH) {
            let count = TOKEN_BATCH.min(tokens - first);
            // A short last batch repeats its first token; the extra
            // results are dropped (every lane is then written, so nothing
            // needs zeroing in the kernel).
            let token = |t: usize| first + if t < count { t } else { 0 };
            let batch = TokenBatch {
                acts: core::array::from_fn(|t| perm.as_ptr().add(token(t) * cols)),
                scales: core::array::from_fn(|t| acts[token(t)].scales.as_ptr()),
                sums: core::array::from_fn(|t| acts[token(t)].sums.as_ptr()),
            };
            for row0 in (block_start..block_end).step_by(ROWS) {
                // The rows are in cache: they were read for the first batch.
                let block = RowBlock::new(matrix.as_ptr(), rows, s.row_bytes, row0, Prefetch::NONE);
                let results = rows8_tokens::<C>(s, &block, &batch);
                for (t, res) in results.iter().enumerate().take(count) {
                    let at = (first + t) * rows + row0;
                    store_rows(*res, &mut out[at..(at + ROWS).min((first + t + 1) * rows)]);
                }
            }
        }
    }
}

/// The tokens of one multi-token pass: each one's permuted activations,
/// scales and sums (one per group).
struct TokenBatch {
    acts: [*const i8; TOKEN_BATCH],
    scales: [*const f32; TOKEN_BATCH],
    sums: [*const i32; TOKEN_BATCH],
}

/// Eight rows times [`TOKEN_BATCH`] tokens: each row's group is unpacked
/// once and multiplied with every token's activations.
#[inline(always)]
unsafe fn rows8_tokens<C: Codes>(
    s: &IntShape,
    block: &RowBlock,
    batch: &TokenBatch,
) -> [__m256; TOKEN_BATCH] {
    let offsets = offsets_i32(&block.offsets);
    let mut results = [_mm256_setzero_ps(); TOKEN_BATCH];
    for g in 0..s.groups {
        let group = block.base.add(g * s.group_bytes);
        // Uninitialized: zeroing 1 KiB per group was a `memset` call.
        let mut lanes = [[MaybeUninit::<__m256i>::uninit(); ROWS]; TOKEN_BATCH];
        for r in 0..ROWS {
            let w = C::unpack(group.add(block.offsets[r] + GROUP_HEADER_BYTES));
            for (t, token_lanes) in lanes.iter_mut().enumerate() {
                token_lanes[r].write(C::dot(&w, batch.acts[t].add(g * C::GROUP)));
            }
        }
        let (scale, min) = headers8(group, offsets);
        for (t, res) in results.iter_mut().enumerate() {
            let (x_scale, x_sum) = (*batch.scales[t].add(g), *batch.sums[t].add(g));
            // SAFETY: the loops above wrote every (token, row) entry.
            let token_lanes: [__m256i; ROWS] = core::array::from_fn(|r| lanes[t][r].assume_init());
            let acc = _mm256_add_epi32(hsum8_i32(&token_lanes), _mm256_set1_epi32(C::SUM_BIAS * x_sum));
            *res = group_step(*res, acc, scale, min, x_scale, x_sum);
        }
    }
    results
}
