//! AVX2 integer kernels: quantized weights (W2/W4/W8) times int8
//! activations, one token ([`matvec_i8`]) or several ([`matmat_i8`]),
//! bit-exact with `eddy_quant::matvec_i8`.
//!
//! Codes are unpacked to bytes (W2/W4: shifts and a mask; W8: `c - 128` as
//! i8) and multiplied with the activations by `vpmaddubsw`. Unpacking
//! leaves codes in a fixed permuted order, so the activations are permuted
//! the same way once per call; W8 needs no reordering. Each format and
//! group size is its own instantiation ([`Codes`]), so the per-group loops
//! are fully unrolled and every vector stays in a register.
//!
//! Eight rows are computed at once: their group sums reduce together
//! (one row per lane), their group headers are loaded with one gather, and
//! the per-group f32 arithmetic runs with one row per lane in the
//! reference's order and without FMA, which keeps results bit-exact. While
//! one block of eight rows is computed, the next block is prefetched, so
//! decode (every weight read from memory once per token) streams.

use super::codes::{Codes, MAX_BLOCKS, W2, W4, W8};
use super::{avx2_available, token_lanes};
use crate::{ActsI8, IntShape};
use core::arch::x86_64::*;
use core::mem::MaybeUninit;
use eddy_quant::{TensorFormat, GROUP_HEADER_BYTES};

/// Rows computed together (one per f32 lane).
const ROWS: usize = 8;

/// Lane `r` of the result = Σ lanes of `v[r]` (eight horizontal sums at once).
#[inline(always)]
unsafe fn hsum8_i32(v: &[__m256i; ROWS]) -> __m256i {
    let a = _mm256_hadd_epi32(_mm256_hadd_epi32(v[0], v[1]), _mm256_hadd_epi32(v[2], v[3]));
    let b = _mm256_hadd_epi32(_mm256_hadd_epi32(v[4], v[5]), _mm256_hadd_epi32(v[6], v[7]));
    // a = [r0 r1 r2 r3 | r0 r1 r2 r3] partial halves, b likewise for r4..r7.
    _mm256_add_epi32(_mm256_permute2x128_si256(a, b, 0x20), _mm256_permute2x128_si256(a, b, 0x31))
}

/// The f16 scales and minimums of one group of eight rows, as f32 lanes.
/// `headers` points at row 0's group; row `r`'s is `offsets[r]` bytes on.
#[inline(always)]
unsafe fn headers8(headers: *const u8, offsets: __m256i) -> (__m256, __m256) {
    // Each row's 4-byte header (scale | min << 16) in one i32 lane.
    let h = _mm256_i32gather_epi32::<1>(headers as *const i32, offsets);
    // Scales to bytes 0..8 of each 128-bit half, minimums to 8..16, then
    // the halves' scales together (low 128 bits) and minimums (high).
    let split = _mm256_setr_epi8(
        0, 1, 4, 5, 8, 9, 12, 13, 2, 3, 6, 7, 10, 11, 14, 15, 0, 1, 4, 5, 8, 9, 12, 13, 2, 3, 6, 7, 10, 11,
        14, 15,
    );
    let p = _mm256_permute4x64_epi64::<0b11_01_10_00>(_mm256_shuffle_epi8(h, split));
    (_mm256_cvtph_ps(_mm256_castsi256_si128(p)), _mm256_cvtph_ps(_mm256_extracti128_si256::<1>(p)))
}

/// `result + s * (scale * acc + min * sum)`: the reference's group step
/// for eight rows (no FMA, same order).
#[inline(always)]
unsafe fn group_step(result: __m256, acc: __m256i, scale: __m256, min: __m256, s: f32, sum: i32) -> __m256 {
    let inner = _mm256_add_ps(
        _mm256_mul_ps(scale, _mm256_cvtepi32_ps(acc)),
        _mm256_mul_ps(min, _mm256_set1_ps(sum as f32)),
    );
    _mm256_add_ps(result, _mm256_mul_ps(_mm256_set1_ps(s), inner))
}

/// Where eight rows are: row `r` starts `offsets[r]` bytes after `base`
/// (rows past the matrix's end repeat its last row), plus the bytes to
/// prefetch meanwhile.
#[derive(Clone, Copy)]
struct RowBlock {
    base: *const u8,
    offsets: [usize; ROWS],
    /// Start of the bytes to prefetch.
    prefetch: *const u8,
    /// Bytes to prefetch per group (so that the last group has requested
    /// a whole block of rows).
    prefetch_share: usize,
    /// Bytes to prefetch in all.
    prefetch_end: usize,
}

/// How far ahead of the rows being computed the kernels prefetch: far
/// enough to cover the memory latency while a block is computed.
const PREFETCH_AHEAD_BYTES: usize = 4096;

/// Prefetch plan of one matrix: blocks of 8 rows, `ahead` blocks ahead.
#[derive(Clone, Copy)]
struct Prefetch {
    /// Blocks between the one computed and the one prefetched.
    ahead: usize,
    /// Bytes per group and block: `8 * row_bytes / groups`, rounded up.
    share: usize,
}

impl Prefetch {
    fn new(s: &IntShape) -> Self {
        let block_bytes = ROWS * s.row_bytes;
        Prefetch {
            ahead: PREFETCH_AHEAD_BYTES.div_ceil(block_bytes).max(1),
            share: block_bytes.div_ceil(s.groups.max(1)),
        }
    }

    /// No prefetching (the rows are in cache already).
    const NONE: Prefetch = Prefetch { ahead: 0, share: 0 };
}

impl RowBlock {
    /// Rows `first..first + 8` (clamped to `rows`) of a matrix at `matrix`,
    /// prefetching the block `plan.ahead` blocks on.
    fn new(matrix: *const u8, rows: usize, row_bytes: usize, first: usize, plan: Prefetch) -> Self {
        let offsets = core::array::from_fn(|r| (first + r).min(rows - 1).saturating_sub(first) * row_bytes);
        let next = first + plan.ahead * ROWS;
        let ahead = if plan.ahead == 0 { 0 } else { rows.saturating_sub(next).min(ROWS) * row_bytes };
        RowBlock {
            base: matrix.wrapping_add(first * row_bytes),
            offsets,
            prefetch: matrix.wrapping_add(next * row_bytes),
            prefetch_share: plan.share,
            prefetch_end: ahead,
        }
    }
}

/// Prefetch `bytes` bytes at `at` (whole lines), e.g. the blocks between
/// the first one and the first one prefetched while computing.
#[inline(always)]
unsafe fn prefetch_range(at: *const u8, bytes: usize) {
    for line in (0..bytes).step_by(64) {
        // Prefetching never faults; the caller keeps the range inside the
        // matrix.
        _mm_prefetch::<_MM_HINT_T0>(at.wrapping_add(line) as *const i8);
    }
}

/// Prefetch group `g`'s share of the next block (lines spread evenly over
/// the groups, so the whole block is requested by the last group).
#[inline(always)]
unsafe fn prefetch_share(block: &RowBlock, g: usize) {
    let share = block.prefetch_share;
    let (start, end) = (g * share, ((g + 1) * share).min(block.prefetch_end));
    let mut at = start;
    while at < end {
        // Prefetching never faults; the address lies inside the matrix.
        _mm_prefetch::<_MM_HINT_T0>(block.prefetch.wrapping_add(at) as *const i8);
        at += 64;
    }
}

/// Eight rows times one token: returns the rows' results as f32 lanes.
#[inline(always)]
unsafe fn rows8<C: Codes>(
    s: &IntShape,
    block: &RowBlock,
    acts: *const i8,
    x_scales: &[f32],
    x_sums: &[i32],
) -> __m256 {
    let offsets = offsets_i32(&block.offsets);
    let mut result = _mm256_setzero_ps();
    for g in 0..s.groups {
        prefetch_share(block, g);
        let group = block.base.add(g * s.group_bytes);
        let group_acts = acts.add(g * C::GROUP);
        let mut lanes = [_mm256_setzero_si256(); ROWS];
        for (r, l) in lanes.iter_mut().enumerate() {
            let codes = group.add(block.offsets[r] + GROUP_HEADER_BYTES);
            *l = C::dot(&C::unpack(codes), group_acts);
        }
        let acc = _mm256_add_epi32(hsum8_i32(&lanes), _mm256_set1_epi32(C::SUM_BIAS * x_sums[g]));
        let (scale, min) = headers8(group, offsets);
        result = group_step(result, acc, scale, min, x_scales[g], x_sums[g]);
    }
    result
}

/// Row offsets as i32 lanes for the header gather (checked to fit by
/// [`fits_gather`]).
#[inline(always)]
unsafe fn offsets_i32(offsets: &[usize; ROWS]) -> __m256i {
    let o = offsets.map(|v| v as i32);
    // SAFETY: `o` holds 8 i32 = 32 bytes.
    _mm256_loadu_si256(o.as_ptr() as *const __m256i)
}

/// True if eight rows' offsets fit the i32 lanes of the header gather.
fn fits_gather(row_bytes: usize) -> bool {
    row_bytes.checked_mul(ROWS).is_some_and(|b| b <= i32::MAX as usize)
}

/// Reorder int8 activations to the order [`Codes::unpack`] leaves codes in.
pub(super) fn permute_activations(bits: u32, group: usize, xq: &[i8], perm: &mut [i8]) {
    match bits {
        2 if group % 64 == 0 => {
            for (src, dst) in xq.chunks_exact(64).zip(perm.chunks_exact_mut(64)) {
                for k in 0..4 {
                    for i in 0..16 {
                        dst[16 * k + i] = src[4 * i + k];
                    }
                }
            }
        }
        2 => {
            for (src, dst) in xq.chunks_exact(32).zip(perm.chunks_exact_mut(32)) {
                for j in 0..4 {
                    for k in 0..8 {
                        dst[8 * j + k] = src[4 * k + j];
                    }
                }
            }
        }
        4 => {
            for (src, dst) in xq.chunks_exact(32).zip(perm.chunks_exact_mut(32)) {
                for k in 0..16 {
                    dst[k] = src[2 * k];
                    dst[16 + k] = src[2 * k + 1];
                }
            }
        }
        _ => perm.copy_from_slice(xq),
    }
}

/// The activations a kernel reads: W8 uses the codes as they are.
fn kernel_acts<'p>(bits: u32, group: usize, xq: &'p [i8], perm: &'p mut [i8]) -> &'p [i8] {
    if bits == 8 {
        return xq;
    }
    permute_activations(bits, group, xq, perm);
    perm
}

/// `$f::<Codes type>` for a format's bits and group size, as a function
/// pointer (`None` for formats the kernels do not cover), with one
/// [`Codes`] family per multiply instruction (`$w2`, `$w4`, `$w8`).
macro_rules! kernel_for {
    ($shape:expr, $f:ident, $w2:ident, $w4:ident, $w8:ident) => {
        match ($shape.bits, $shape.group) {
            (2, 32) => Some($f::<$w2<32>>),
            (2, 64) => Some($f::<$w2<64>>),
            (2, 128) => Some($f::<$w2<128>>),
            (2, 256) => Some($f::<$w2<256>>),
            (4, 32) => Some($f::<$w4<32>>),
            (4, 64) => Some($f::<$w4<64>>),
            (4, 128) => Some($f::<$w4<128>>),
            (4, 256) => Some($f::<$w4<256>>),
            (8, 32) => Some($f::<$w8<32>>),
            (8, 64) => Some($f::<$w8<64>>),
            (8, 128) => Some($f::<$w8<128>>),
            (8, 256) => Some($f::<$w8<256>>),
            _ => None,
        }
    };
}
pub(super) use kernel_for;

/// One format's kernel over all rows of one token (see [`matvec_rows_body`]).
pub(super) type MatvecRows = unsafe fn(&IntShape, &[u8], &[i8], &[f32], &[i32], &mut [f32]);

/// One format's kernel over all rows and tokens (see [`matmat_rows_body`]).
pub(super) type MatmatRows = unsafe fn(&IntShape, &[u8], &[i8], &[ActsI8<'_>], &mut [f32]);

/// A kernel set's choice of [`MatvecRows`] for a shape (`None`: the CPU
/// lacks the instructions, or the format is not covered).
pub(super) type PickMatvec = fn(&IntShape) -> Option<MatvecRows>;

/// A kernel set's choice of [`MatmatRows`] for a shape.
pub(super) type PickMatmat = fn(&IntShape) -> Option<MatmatRows>;

/// The shape of a product the kernels cover (whether the CPU runs them is
/// the [`PickMatvec`]'s business).
fn covered(
    format: TensorFormat,
    cols: usize,
    rows: usize,
    matrix: &[u8],
    acts: &ActsI8<'_>,
    perm_len: usize,
) -> Option<IntShape> {
    IntShape::for_matvec(format, cols, rows, matrix, acts, perm_len).filter(|s| rows > 0 && kernels_cover(s))
}

/// True if the kernels' header gather and unpacked groups fit `s`.
fn kernels_cover(s: &IntShape) -> bool {
    fits_gather(s.row_bytes) && s.group <= 32 * MAX_BLOCKS
}

/// See [`crate::MatvecI8`]. Falls back to the scalar reference on a CPU
/// without AVX2 or for shapes it does not cover.
pub fn matvec_i8(
    format: TensorFormat,
    matrix: &[u8],
    cols: usize,
    acts: &ActsI8<'_>,
    out: &mut [f32],
    perm: &mut [i8],
) {
    matvec_i8_with(avx2_matvec, format, matrix, cols, acts, out, perm);
}

/// The AVX2 kernel for a shape, if this CPU has AVX2.
fn avx2_matvec(s: &IntShape) -> Option<MatvecRows> {
    if !avx2_available() {
        return None;
    }
    kernel_for!(s, matvec_rows, W2, W4, W8)
}

/// [`crate::MatvecI8`] with the kernels `pick` chooses (the scalar
/// reference when it chooses none).
pub(super) fn matvec_i8_with(
    pick: PickMatvec,
    format: TensorFormat,
    matrix: &[u8],
    cols: usize,
    acts: &ActsI8<'_>,
    out: &mut [f32],
    perm: &mut [i8],
) {
    let chosen =
        covered(format, cols, out.len(), matrix, acts, perm.len()).and_then(|s| Some((s, pick(&s)?)));
    match chosen {
        Some((shape, kernel)) => {
            let xq = kernel_acts(shape.bits, shape.group, &acts.q[..cols], &mut perm[..cols]);
            let (scales, sums) = (&acts.scales[..shape.groups], &acts.sums[..shape.groups]);
            // SAFETY: `pick` returns kernels only when the CPU has their
            // instructions; the shape check guarantees `matrix` holds
            // `out.len()` rows of `row_bytes`, `xq` `cols` codes and
            // scales/sums one per group.
            unsafe { kernel(&shape, matrix, xq, scales, sums, out) }
        }
        None => eddy_quant::matvec_i8(format, matrix, cols, acts.q, acts.scales, acts.sums, out),
    }
}

#[target_feature(enable = "avx2,f16c")]
unsafe fn matvec_rows<C: Codes>(
    s: &IntShape,
    matrix: &[u8],
    xq: &[i8],
    x_scales: &[f32],
    x_sums: &[i32],
    out: &mut [f32],
) {
    matvec_rows_body::<C>(s, matrix, xq, x_scales, x_sums, out)
}

/// Every block of eight rows of one token, prefetching ahead (inlined into
/// each kernel set's `target_feature` function).
#[inline(always)]
pub(super) unsafe fn matvec_rows_body<C: Codes>(
    s: &IntShape,
    matrix: &[u8],
    xq: &[i8],
    x_scales: &[f32],
    x_sums: &[i32],
    out: &mut [f32],
) {
    let rows = out.len();
    let plan = Prefetch::new(s);
    // The blocks before the first one prefetched on the way.
    let early = (plan.ahead * ROWS).min(rows).saturating_sub(ROWS) * s.row_bytes;
    prefetch_range(matrix.as_ptr().wrapping_add(ROWS * s.row_bytes), early);
    for (b, o) in out.chunks_mut(ROWS).enumerate() {
        let block = RowBlock::new(matrix.as_ptr(), rows, s.row_bytes, b * ROWS, plan);
        let result = rows8::<C>(s, &block, xq.as_ptr(), x_scales, x_sums);
        store_rows(result, o);
    }
}

/// Store the first `o.len()` (at most 8) lanes of `v`.
#[inline(always)]
unsafe fn store_rows(v: __m256, o: &mut [f32]) {
    if o.len() >= ROWS {
        // SAFETY: `o` has at least 8 floats. (A variable-length copy
        // here was a `memcpy` call per block.)
        _mm256_storeu_ps(o.as_mut_ptr(), v);
        return;
    }
    let mut lanes = [0f32; ROWS];
    // SAFETY: `lanes` holds 8 floats.
    _mm256_storeu_ps(lanes.as_mut_ptr(), v);
    o.copy_from_slice(&lanes[..o.len()]);
}

/// Tokens one multi-token pass multiplies with each unpacked weight group.
const TOKEN_BATCH: usize = 8;

/// Bytes of weights in one cache block of the multi-token kernel.
const BLOCK_BYTES: usize = 32 * 1024;

/// See [`crate::MatmatI8`]. Codes are unpacked once per row and group and
/// multiplied with up to eight tokens (~10% less time per token than four
/// on the dev machine, `matvec_time`), over blocks of rows that stay in
/// cache while every token passes over them; each (row, token) result is
/// computed by exactly the operations of [`matvec_i8`].
pub fn matmat_i8(
    format: TensorFormat,
    matrix: &[u8],
    cols: usize,
    acts: &[ActsI8<'_>],
    out: &mut [f32],
    perm: &mut [i8],
) {
    let lanes = batch_shape(format, matrix, cols, acts, out.len(), cols)
        .filter(|s| avx2_available() && token_lanes::covers(s, acts.len(), perm.len()))
        .and_then(|s| Some((s, token_lanes_kernel(&s)?)));
    match lanes {
        // SAFETY: AVX2 and F16C were detected; every token's shape check
        // passed and `covers` checked the scratch.
        Some((shape, kernel)) => unsafe { kernel(&shape, matrix, acts, out, perm) },
        None => matmat_i8_with(avx2_matmat, format, matrix, cols, acts, out, perm),
    }
}

/// The token-lane kernel of one shape.
type TokenLanes = unsafe fn(&IntShape, &[u8], &[ActsI8<'_>], &mut [f32], &mut [i8]);

/// [`token_lanes::matmat`] for a shape.
fn token_lanes_kernel(s: &IntShape) -> Option<TokenLanes> {
    match (s.bits, s.group) {
        (2, 32) => Some(token_lanes::matmat::<W2<32>, 1>),
        (2, 64) => Some(token_lanes::matmat::<W2<64>, 1>),
        (2, 128) => Some(token_lanes::matmat::<W2<128>, 1>),
        (2, 256) => Some(token_lanes::matmat::<W2<256>, 1>),
        (4, 32) => Some(token_lanes::matmat::<W4<32>, 1>),
        (4, 64) => Some(token_lanes::matmat::<W4<64>, 1>),
        (4, 128) => Some(token_lanes::matmat::<W4<128>, 1>),
        (4, 256) => Some(token_lanes::matmat::<W4<256>, 1>),
        (8, 32) => Some(token_lanes::matmat::<W8<32>, 2>),
        (8, 64) => Some(token_lanes::matmat::<W8<64>, 2>),
        (8, 128) => Some(token_lanes::matmat::<W8<128>, 2>),
        (8, 256) => Some(token_lanes::matmat::<W8<256>, 2>),
        _ => None,
    }
}

/// The shape every token's product has (`None` if any token's check
/// fails or there are none). `perm_per_token`: scratch bytes per token
/// the caller's kernel needs.
fn batch_shape(
    format: TensorFormat,
    matrix: &[u8],
    cols: usize,
    acts: &[ActsI8<'_>],
    out_len: usize,
    perm_per_token: usize,
) -> Option<IntShape> {
    IntShape::for_tokens(format, cols, out_len, matrix, acts, perm_per_token).filter(kernels_cover)
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
    format: TensorFormat,
    matrix: &[u8],
    cols: usize,
    acts: &[ActsI8<'_>],
    out: &mut [f32],
    perm: &mut [i8],
) {
    let tokens = acts.len();
    if tokens == 0 {
        return;
    }
    let rows = out.len() / tokens;
    let shape = batch_shape(format, matrix, cols, acts, out.len(), perm.len() / tokens);
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

#[target_feature(enable = "avx2,f16c")]
unsafe fn matmat_rows<C: Codes>(
    s: &IntShape,
    matrix: &[u8],
    perm: &[i8],
    acts: &[ActsI8<'_>],
    out: &mut [f32],
) {
    matmat_rows_body::<C>(s, matrix, perm, acts, out)
}

/// Blocks of rows that stay in cache while batches of tokens pass over
/// them (inlined into each kernel set's `target_feature` function).
#[inline(always)]
pub(super) unsafe fn matmat_rows_body<C: Codes>(
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
