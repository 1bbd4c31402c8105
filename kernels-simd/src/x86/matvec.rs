//! AVX2 integer kernels: quantized weights (W2/W4/W8) times int8
//! activations, one token ([`matvec_i8`]) or several ([`super::matmat_i8`]),
//! bit-exact with `eddy_quant::matvec_i8`.
//!
//! Codes are unpacked to bytes (W2/W4: shifts and a mask; W8: `c - 128` as
//! i8) and multiplied with the activations by `vpmaddubsw`. Unpacking
//! leaves codes in a fixed permuted order, so the activations are permuted
//! the same way once per call; W8 needs no reordering. Each format and
//! group size is its own instantiation (`group::Codes`), so the per-group loops
//! are fully unrolled and every vector stays in a register.
//!
//! Eight rows are computed at once: their group sums reduce together
//! (one row per lane), their group headers are loaded with one gather, and
//! the per-group f32 arithmetic runs with one row per lane in the
//! reference's order and without FMA, which keeps results bit-exact. While
//! one block of eight rows is computed, the next block is prefetched, so
//! decode (every weight read from memory once per token) streams.

use super::avx2_available;
use super::group::{Codes, MAX_BLOCKS, W2, W4, W8};
use crate::{ActsI8, IntShape, QuantMatrix};
use core::arch::x86_64::*;
use eddy_quant::GROUP_HEADER_BYTES;

/// Rows computed together (one per f32 lane).
pub(super) const ROWS: usize = 8;

/// Lane `r` of the result = Σ lanes of `v[r]` (eight horizontal sums at once).
#[inline(always)]
pub(super) unsafe fn hsum8_i32(v: &[__m256i; ROWS]) -> __m256i {
    let a = _mm256_hadd_epi32(_mm256_hadd_epi32(v[0], v[1]), _mm256_hadd_epi32(v[2], v[3]));
    let b = _mm256_hadd_epi32(_mm256_hadd_epi32(v[4], v[5]), _mm256_hadd_epi32(v[6], v[7]));
    // a = [r0 r1 r2 r3 | r0 r1 r2 r3] partial halves, b likewise for r4..r7.
    _mm256_add_epi32(_mm256_permute2x128_si256(a, b, 0x20), _mm256_permute2x128_si256(a, b, 0x31))
}

/// The f16 scales and minimums of one group of eight rows, as f32 lanes.
/// `headers` points at row 0's group; row `r`'s is `offsets[r]` bytes on.
#[inline(always)]
pub(super) unsafe fn headers8(headers: *const u8, offsets: __m256i) -> (__m256, __m256) {
    // Each row's 4-byte header (scale | min << 16) in one i32 lane.
    split_headers(_mm256_i32gather_epi32::<1>(headers as *const i32, offsets))
}

/// [`headers8`] with eight loads instead of a gather: fewer micro-ops on
/// the CPUs we measured (AMD Zen 4: matvec_rows W2 g128 about 10% faster).
#[inline(always)]
pub(super) unsafe fn headers8_loaded(headers: *const u8, offsets: &[usize; ROWS]) -> (__m256, __m256) {
    // SAFETY (caller): every row's header (4 bytes) is readable.
    let h = |r: usize| _mm_cvtsi32_si128((headers.add(offsets[r]) as *const i32).read_unaligned());
    let quad = |r: usize| {
        _mm_unpacklo_epi64(_mm_unpacklo_epi32(h(r), h(r + 1)), _mm_unpacklo_epi32(h(r + 2), h(r + 3)))
    };
    split_headers(_mm256_set_m128i(quad(4), quad(0)))
}

/// Eight headers (scale | min << 16 in each i32 lane) as f32 scales and
/// minimums.
#[inline(always)]
unsafe fn split_headers(h: __m256i) -> (__m256, __m256) {
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
pub(super) unsafe fn group_step(
    result: __m256,
    acc: __m256i,
    scale: __m256,
    min: __m256,
    s: f32,
    sum: i32,
) -> __m256 {
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
pub(super) struct RowBlock {
    pub(super) base: *const u8,
    pub(super) offsets: [usize; ROWS],
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
pub(super) struct Prefetch {
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
    pub(super) const NONE: Prefetch = Prefetch { ahead: 0, share: 0 };
}

impl RowBlock {
    /// Rows `first..first + 8` (clamped to `rows`) of a matrix at `matrix`,
    /// prefetching the block `plan.ahead` blocks on.
    pub(super) fn new(
        matrix: *const u8,
        rows: usize,
        row_bytes: usize,
        first: usize,
        plan: Prefetch,
    ) -> Self {
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
    let mut result = _mm256_setzero_ps();
    for g in 0..s.groups {
        prefetch_share(block, g);
        let group = block.base.add(g * s.group_bytes);
        let group_acts = acts.add(g * C::GROUP);
        let mut lanes = [_mm256_setzero_si256(); ROWS];
        for (r, l) in lanes.iter_mut().enumerate() {
            let codes = group.add(block.offsets[r] + GROUP_HEADER_BYTES);
            *l = C::dot_packed(codes, group_acts);
        }
        let acc = _mm256_add_epi32(hsum8_i32(&lanes), _mm256_set1_epi32(C::SUM_BIAS * x_sums[g]));
        let (scale, min) = headers8_loaded(group, &block.offsets);
        result = group_step(result, acc, scale, min, x_scales[g], x_sums[g]);
    }
    result
}

/// Row offsets as i32 lanes for the header gather (checked to fit by
/// [`fits_gather`]).
#[inline(always)]
pub(super) unsafe fn offsets_i32(offsets: &[usize; ROWS]) -> __m256i {
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
        2 if group % 128 == 0 => {
            for (src, dst) in xq.chunks_exact(128).zip(perm.chunks_exact_mut(128)) {
                for k in 0..4 {
                    for j in 0..32 {
                        dst[32 * k + j] = src[4 * j + k];
                    }
                }
            }
        }
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
/// [`Codes`] family per multiply instruction (`$w2`, `$w4`, `$w8`, each
/// optionally followed by a second const argument of `$f`).
macro_rules! kernel_for {
    (@group $shape:expr, $($f:ident)::+, $w:ident $(, $arg:literal)?) => {
        match $shape.group {
            32 => Some($($f)::+::<$w<32> $(, $arg)?>),
            64 => Some($($f)::+::<$w<64> $(, $arg)?>),
            128 => Some($($f)::+::<$w<128> $(, $arg)?>),
            256 => Some($($f)::+::<$w<256> $(, $arg)?>),
            _ => None,
        }
    };
    ($shape:expr, $($f:ident)::+, $w2:ident $($a2:literal)?, $w4:ident $($a4:literal)?, $w8:ident $($a8:literal)?) => {
        match $shape.bits {
            2 => kernel_for!(@group $shape, $($f)::+, $w2 $(, $a2)?),
            4 => kernel_for!(@group $shape, $($f)::+, $w4 $(, $a4)?),
            8 => kernel_for!(@group $shape, $($f)::+, $w8 $(, $a8)?),
            _ => None,
        }
    };
}
pub(super) use kernel_for;

/// One format's kernel over all rows of one token (see [`matvec_rows`]).
pub(super) type MatvecRows = unsafe fn(&IntShape, &[u8], &[i8], &[f32], &[i32], &mut [f32]);

/// A kernel set's choice of [`MatvecRows`] for a shape (`None`: the CPU
/// lacks the instructions, or the format is not covered).
pub(super) type PickMatvec = fn(&IntShape) -> Option<MatvecRows>;

/// The shape of a product the kernels cover (whether the CPU runs them is
/// the [`PickMatvec`]'s business).
fn covered(w: QuantMatrix<'_>, rows: usize, acts: &ActsI8<'_>, perm_len: usize) -> Option<IntShape> {
    IntShape::for_matvec(w, rows, acts, perm_len).filter(|s| rows > 0 && kernels_cover(s))
}

/// True if the kernels' header gather and unpacked groups fit `s`.
pub(super) fn kernels_cover(s: &IntShape) -> bool {
    fits_gather(s.row_bytes) && s.group <= 32 * MAX_BLOCKS
}

/// See [`crate::MatvecI8`]. Falls back to the scalar reference on a CPU
/// without AVX2 or for shapes it does not cover.
pub fn matvec_i8(w: QuantMatrix<'_>, acts: &ActsI8<'_>, out: &mut [f32], perm: &mut [i8]) {
    matvec_i8_with(avx2_matvec, w, acts, out, perm);
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
    w: QuantMatrix<'_>,
    acts: &ActsI8<'_>,
    out: &mut [f32],
    perm: &mut [i8],
) {
    let QuantMatrix { format, bytes: matrix, cols } = w;
    let chosen = covered(w, out.len(), acts, perm.len()).and_then(|s| Some((s, pick(&s)?)));
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

/// Every block of eight rows of one token, prefetching ahead. Both x86
/// sets run it: they differ only in `C`'s dot product (`vpmaddubsw` or
/// `vpdpbusd`, see [`super::vnni`]).
#[target_feature(enable = "avx2,f16c")]
pub(super) unsafe fn matvec_rows<C: Codes>(
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
pub(super) unsafe fn store_rows(v: __m256, o: &mut [f32]) {
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
