//! The multi-token kernel of prefill for W2, W4 and W8 weights (AVX2, or
//! AVX-512 VNNI's `vpdpbusd` on 256-bit vectors): eight tokens side by
//! side, one per 32-bit lane, bit-exact with `eddy_quant::matvec_i8` per
//! token.
//!
//! With one row per vector (the matrix-vector kernel's layout) every
//! group's dot product ends in a horizontal sum, which cost more than the
//! products themselves once several tokens share the unpacked codes. Here
//! the activations of eight tokens are interleaved four codes at a time,
//! so one `vpmaddubsw` multiplies four codes of one row, broadcast to all
//! lanes, with the same four positions of eight tokens, and a group's sums
//! land one token per lane with no reduction. Each token's f32 group step
//! then runs on its own lane in the reference's order (no FMA).
//!
//! With VNNI (the [`TileSums`] of `super::vnni`), one `vpdpbusd`
//! multiplies the four codes with the activations and adds the four
//! products into the i32 lane: no i16 sums to widen, and W8 codes are
//! multiplied as the unsigned bytes they are (one plane, no nibble split).
//! Integer sums are exact either way, so both give the same bits.
//!
//! Work order: the codes of a block of rows are unpacked to bytes once
//! (with their group headers as f32) into scratch, tile by tile, each
//! 4-code chunk of a tile's rows side by side (one pointer and constant
//! offsets reach them all, leaving registers free); then every batch of
//! eight tokens passes over the block, a tile of 12 rows at a time sharing
//! each load of activations. The block and one batch's activations stay in
//! L1.

use super::group::{Codes, Unpacked, MAX_BLOCKS};
use super::matvec::permute_activations;
use crate::{ActsI8, IntShape};
use core::arch::x86_64::*;
use eddy_quant::GROUP_HEADER_BYTES;

/// Tokens per vector (one per i32/f32 lane).
const LANES: usize = 8;

/// Rows computed together, sharing every activation load (12: their i16
/// sums, one activation and one code vector fill the 16 ymm registers;
/// 1.3x the throughput of 4 rows, `matmat 3072x768x64` bench).
const ROWS: usize = 12;

/// The largest tile of any [`TileSums`] (array sizes).
pub(super) const MAX_ROWS: usize = 12;

/// How a tile's integer group sums are formed: [`Maddubs`] (AVX2) or
/// `vpdpbusd` (`super::vnni`).
pub(super) trait TileSums {
    /// Entries of a tile (rows times planes), at most [`MAX_ROWS`].
    const ENTRIES: usize;
    /// Planes each W8 code unpacks to (W2/W4: 1).
    const W8_PLANES: usize;

    /// One group's sums of each of the first [`Self::ENTRIES`] entries'
    /// codes (4-code chunk `j` of entry `k` at `codes + 4 (j ENTRIES +
    /// k)`) times the batch's interleaved activations (chunk `j` at `xs +
    /// 32 j`), one token per i32 lane; `PLANES` as for [`matmat`].
    unsafe fn group_sums<C: Codes, const PLANES: usize>(
        codes: *const u8,
        xs: *const u8,
    ) -> [__m256i; MAX_ROWS];
}

/// AVX2's `vpmaddubsw` products summed in i16 for as long as they cannot
/// overflow, then widened by `vpmaddwd`.
pub(super) struct Maddubs;

impl TileSums for Maddubs {
    const ENTRIES: usize = ROWS;
    // Two nibbles: `vpmaddubsw` pair sums of a whole byte times 127 could
    // saturate.
    const W8_PLANES: usize = 2;

    #[inline(always)]
    unsafe fn group_sums<C: Codes, const PLANES: usize>(
        codes: *const u8,
        xs: *const u8,
    ) -> [__m256i; MAX_ROWS] {
        let ones = _mm256_set1_epi16(1);
        // 4-code chunks per group, and per stretch summed in i16
        // (compile-time constants, so the loops unroll); W8's nibbles sum
        // like W4 codes.
        let chunks = C::GROUP / 4;
        let stretch = if PLANES == 2 { 8 } else { C::I16_SUMS }.min(chunks);
        let mut acc32 = [_mm256_setzero_si256(); MAX_ROWS];
        for first in (0..chunks).step_by(stretch) {
            let mut acc16 = [_mm256_setzero_si256(); MAX_ROWS];
            for j in first..first + stretch {
                let x = _mm256_loadu_si256(xs.add(32 * j) as *const __m256i);
                for (k, a) in acc16.iter_mut().enumerate().take(Self::ENTRIES) {
                    let four = (codes.add((j * Self::ENTRIES + k) * 4) as *const i32).read_unaligned();
                    *a = _mm256_add_epi16(*a, _mm256_maddubs_epi16(_mm256_set1_epi32(four), x));
                }
            }
            for k in 0..Self::ENTRIES {
                acc32[k] = _mm256_add_epi32(acc32[k], _mm256_madd_epi16(acc16[k], ones));
            }
        }
        acc32
    }
}

/// Planes a `bits`-bit code unpacks to for `T`.
fn planes<T: TileSums>(bits: u32) -> usize {
    if bits == 8 {
        T::W8_PLANES
    } else {
        1
    }
}

/// Bytes of unpacked codes per row block (with a batch's activations,
/// within a 32 KiB L1 for rows of up to 2048 codes).
const UNPACKED_BYTES: usize = 16 * 1024;

/// The scratch layout for `tokens` tokens of `cols` codes in groups of
/// `group`: where each part starts, in bytes.
struct Layout {
    /// Interleaved activations: batch `b`, 4-code chunk `q`, lane `t` at
    /// `(b * cols / 4 + q) * 32 + 4 t`.
    interleaved: usize,
    /// Per batch and group, the eight tokens' scales then their code sums
    /// (as f32): 64 bytes.
    token_groups: usize,
    /// One token's permuted codes (`cols` bytes).
    permuted: usize,
    /// Unpacked codes of a row block (`block_rows * planes * cols` bytes),
    /// tile by tile (`entries * cols` bytes each): 4-code chunk `q` of
    /// entry `e` (row `e / planes` of the tile, plane `e % planes`) at
    /// `(q * entries + e) * 4`, so one pointer reaches a whole tile.
    unpacked: usize,
    /// Per tile, group and row of the tile, its scale and minimum as f32.
    headers: usize,
    /// Rows per block.
    block_rows: usize,
    /// Total bytes.
    len: usize,
}

impl Layout {
    /// `planes`: bytes each code unpacks to ([`planes`]); `entries`: a
    /// tile's ([`TileSums::ENTRIES`]).
    fn new(cols: usize, tokens: usize, groups: usize, planes: usize, entries: usize) -> Layout {
        let batches = tokens.div_ceil(LANES);
        let tile = entries / planes;
        let block_rows = (UNPACKED_BYTES / (planes * cols).max(1)).max(tile) / tile * tile;
        let interleaved = 0;
        let token_groups = interleaved + batches * LANES * cols;
        let permuted = token_groups + batches * groups * 2 * LANES * 4;
        let unpacked = permuted + cols;
        let headers = unpacked + block_rows * planes * cols;
        let len = ALIGN - 1 + headers + block_rows * groups * 2 * 4;
        Layout { interleaved, token_groups, permuted, unpacked, headers, block_rows, len }
    }
}

/// Alignment of the scratch layout's start.
const ALIGN: usize = 32;

/// The first 32-byte aligned byte of `scratch`.
fn aligned_start(scratch: &mut [i8]) -> *mut u8 {
    let ptr = scratch.as_mut_ptr() as *mut u8;
    ptr.wrapping_add(ptr.align_offset(ALIGN).min(ALIGN - 1))
}

/// Bytes of scratch [`matmat`] needs (groups of at least 32 codes); never
/// less for more columns or tokens, so a buffer sized for the largest
/// product serves every smaller one.
pub(crate) const fn scratch_len(cols: usize, tokens: usize) -> usize {
    let batches = tokens.div_ceil(LANES);
    // A block's unpacked codes take at most this (`entries / planes` rows
    // of `planes * cols` bytes, or the block size); its f32 headers (8
    // bytes per group of at least 32 codes) a quarter of it.
    let block = if MAX_ROWS * cols > UNPACKED_BYTES { MAX_ROWS * cols } else { UNPACKED_BYTES };
    ALIGN - 1 + batches * LANES * cols + batches * (cols / 32) * 2 * LANES * 4 + cols + block + block / 4
}

/// True if [`matmat`] with `T` covers this format and `scratch` bytes
/// suffice.
pub(super) fn covers<T: TileSums>(s: &IntShape, tokens: usize, scratch: usize) -> bool {
    let (planes, entries) = (planes::<T>(s.bits), T::ENTRIES);
    matches!(s.bits, 2 | 4 | 8)
        && Layout::new(s.groups * s.group, tokens, s.groups, planes, entries).len <= scratch
}

/// `out[t * rows + r]` = row `r` times token `t`, for the shapes [`covers`]
/// accepts. `PLANES` is [`planes`]: with [`Maddubs`], W2/W4 with 1, W8
/// (`C` = `W8<G>`) with 2, its codes split into two nibbles (`c = 16 hi +
/// lo`) so that `vpmaddubsw` sums cannot saturate (a whole byte times
/// 127, twice, can); with VNNI every format with 1 (`C` unpacks W8 codes
/// to the unsigned bytes they are stored as).
///
/// # Safety
/// The CPU has AVX2 and F16C and what `T`'s instructions need;
/// `s` is `matrix`'s checked shape (rows of
/// `s.row_bytes`, `out.len() / acts.len()` of them); every token's `q`
/// holds `cols` codes and its scales and sums `s.groups` values;
/// `scratch` passed [`covers`].
#[target_feature(enable = "avx2,f16c")]
pub(super) unsafe fn matmat<C: Codes, const PLANES: usize, T: TileSums>(
    s: &IntShape,
    matrix: &[u8],
    acts: &[ActsI8<'_>],
    out: &mut [f32],
    scratch: &mut [i8],
) {
    let tokens = acts.len();
    let (rows, cols, groups) = (out.len() / tokens, s.groups * C::GROUP, s.groups);
    // Whole quads of entries ([`unpack_block`]), within the arrays.
    const { assert!(T::ENTRIES % 4 == 0 && T::ENTRIES <= MAX_ROWS) };
    let entries = T::ENTRIES;
    let layout = Layout::new(cols, tokens, groups, PLANES, entries);
    // 32-byte aligned: activation loads never split a cache line.
    let base = aligned_start(scratch);
    interleave_tokens(s, acts, base, &layout);
    let batches = tokens.div_ceil(LANES);
    for block_start in (0..rows).step_by(layout.block_rows) {
        let block_len = layout.block_rows.min(rows - block_start);
        unpack_block::<C, PLANES>(s, matrix, (block_start, block_len), entries, base, &layout);
        for b in 0..batches {
            let first = b * LANES;
            let count = LANES.min(tokens - first);
            let xs = base.add(layout.interleaved + b * LANES * cols) as *const u8;
            let token_groups = base.add(layout.token_groups + b * groups * 2 * LANES * 4) as *const f32;
            for (i, tile) in (0..block_len).step_by(entries / PLANES).enumerate() {
                // Entries past the block's end hold stale bytes; their
                // results are dropped.
                let codes = base.add(layout.unpacked + i * entries * cols) as *const u8;
                let headers = base.add(layout.headers + i * groups * (entries / PLANES) * 8) as *const f32;
                let results = row_tile::<C, PLANES, T>(s, codes, headers, xs, token_groups);
                let valid = (block_len - tile).min(entries / PLANES);
                store_tile(&results, valid, out, rows, (first, count), block_start + tile);
            }
        }
    }
}

/// The first `valid` rows of a tile's results (`res[k]`: row `r0 + k`,
/// token `first + t` in lane `t`) to `out[(first + t) * rows + r0 + k]`
/// for the first `count` tokens: eight rows at a time transposed to one
/// vector per token.
#[inline(always)]
unsafe fn store_tile(
    res: &[__m256; MAX_ROWS],
    valid: usize,
    out: &mut [f32],
    rows: usize,
    (first, count): (usize, usize),
    r0: usize,
) {
    for k0 in (0..valid).step_by(LANES) {
        let n = (valid - k0).min(LANES);
        let mut v = [_mm256_setzero_ps(); LANES];
        for (i, vi) in v.iter_mut().enumerate().take(MAX_ROWS.saturating_sub(k0)) {
            *vi = res[k0 + i];
        }
        let by_token = transpose8(v);
        for (t, tv) in by_token.iter().enumerate().take(count) {
            let at = (first + t) * rows + r0 + k0;
            let dst = &mut out[at..at + n];
            match n {
                LANES => _mm256_storeu_ps(dst.as_mut_ptr(), *tv),
                4 => _mm_storeu_ps(dst.as_mut_ptr(), _mm256_castps256_ps128(*tv)),
                _ => {
                    let mut lanes = [0f32; LANES];
                    _mm256_storeu_ps(lanes.as_mut_ptr(), *tv);
                    dst.copy_from_slice(&lanes[..n]);
                }
            }
        }
    }
}

/// Lane `i` of result `t` = lane `t` of `v[i]` (an 8x8 transpose).
#[inline(always)]
unsafe fn transpose8(v: [__m256; 8]) -> [__m256; 8] {
    let (t0, t1) = (_mm256_unpacklo_ps(v[0], v[1]), _mm256_unpackhi_ps(v[0], v[1]));
    let (t2, t3) = (_mm256_unpacklo_ps(v[2], v[3]), _mm256_unpackhi_ps(v[2], v[3]));
    let (t4, t5) = (_mm256_unpacklo_ps(v[4], v[5]), _mm256_unpackhi_ps(v[4], v[5]));
    let (t6, t7) = (_mm256_unpacklo_ps(v[6], v[7]), _mm256_unpackhi_ps(v[6], v[7]));
    // [v0..v3 lane c | lane c + 4] for c = 0..4, then the same of v4..v7.
    let s = [
        _mm256_shuffle_ps::<0x44>(t0, t2),
        _mm256_shuffle_ps::<0xee>(t0, t2),
        _mm256_shuffle_ps::<0x44>(t1, t3),
        _mm256_shuffle_ps::<0xee>(t1, t3),
        _mm256_shuffle_ps::<0x44>(t4, t6),
        _mm256_shuffle_ps::<0xee>(t4, t6),
        _mm256_shuffle_ps::<0x44>(t5, t7),
        _mm256_shuffle_ps::<0xee>(t5, t7),
    ];
    [
        _mm256_permute2f128_ps::<0x20>(s[0], s[4]),
        _mm256_permute2f128_ps::<0x20>(s[1], s[5]),
        _mm256_permute2f128_ps::<0x20>(s[2], s[6]),
        _mm256_permute2f128_ps::<0x20>(s[3], s[7]),
        _mm256_permute2f128_ps::<0x31>(s[0], s[4]),
        _mm256_permute2f128_ps::<0x31>(s[1], s[5]),
        _mm256_permute2f128_ps::<0x31>(s[2], s[6]),
        _mm256_permute2f128_ps::<0x31>(s[3], s[7]),
    ]
}

/// One tile's `T::ENTRIES / PLANES` rows (their codes and headers in the
/// tile layout, see [`Layout`]) times one batch of eight tokens: results
/// in the first that many entries.
#[inline(always)]
unsafe fn row_tile<C: Codes, const PLANES: usize, T: TileSums>(
    s: &IntShape,
    codes: *const u8,
    headers: *const f32,
    xs: *const u8,
    token_groups: *const f32,
) -> [__m256; MAX_ROWS] {
    let (entries, tile_rows) = (T::ENTRIES, T::ENTRIES / PLANES);
    let mut results = [_mm256_setzero_ps(); MAX_ROWS];
    for g in 0..s.groups {
        let mut acc32 =
            T::group_sums::<C, PLANES>(codes.add(g * C::GROUP * entries), xs.add(g * C::GROUP * LANES));
        if PLANES == 2 {
            // Σ c·x = 16 Σ hi·x + Σ lo·x, exact in i32.
            for k in 0..entries / 2 {
                acc32[k] = _mm256_add_epi32(acc32[2 * k], _mm256_slli_epi32::<4>(acc32[2 * k + 1]));
            }
        }
        // The reference's group step, one token per lane:
        // result + s * (scale * acc + min * sum).
        let x_scale = _mm256_loadu_ps(token_groups.add(g * 2 * LANES));
        let x_sum = _mm256_loadu_ps(token_groups.add(g * 2 * LANES + LANES));
        let group_headers = headers.add(g * tile_rows * 2);
        for k in 0..tile_rows {
            let scale = _mm256_set1_ps(group_headers.add(2 * k).read_unaligned());
            let min = _mm256_set1_ps(group_headers.add(2 * k + 1).read_unaligned());
            let inner =
                _mm256_add_ps(_mm256_mul_ps(scale, _mm256_cvtepi32_ps(acc32[k])), _mm256_mul_ps(min, x_sum));
            results[k] = _mm256_add_ps(results[k], _mm256_mul_ps(x_scale, inner));
        }
    }
    results
}

/// Every token's codes permuted to the unpacked order and interleaved four
/// at a time, and its group scales and sums, batch by batch (missing
/// tokens of the last batch are zeros).
#[inline(always)]
unsafe fn interleave_tokens(s: &IntShape, acts: &[ActsI8<'_>], base: *mut u8, layout: &Layout) {
    let (cols, groups) = (s.groups * s.group, s.groups);
    let batches = acts.len().div_ceil(LANES);
    let permuted = core::slice::from_raw_parts_mut(base.add(layout.permuted) as *mut i8, cols);
    for t in 0..batches * LANES {
        let (b, lane) = (t / LANES, t % LANES);
        let chunks = base.add(layout.interleaved + b * LANES * cols + 4 * lane);
        let token_groups = base.add(layout.token_groups + b * groups * 2 * LANES * 4) as *mut f32;
        match acts.get(t) {
            Some(a) => {
                permute_activations(s.bits, s.group, &a.q[..cols], permuted);
                for q in 0..cols / 4 {
                    let four = (permuted.as_ptr().add(4 * q) as *const u32).read_unaligned();
                    (chunks.add(q * 32) as *mut u32).write_unaligned(four);
                }
                for g in 0..groups {
                    token_groups.add(g * 2 * LANES + lane).write_unaligned(a.scales[g]);
                    token_groups.add(g * 2 * LANES + LANES + lane).write_unaligned(a.sums[g] as f32);
                }
            }
            None => {
                for q in 0..cols / 4 {
                    (chunks.add(q * 32) as *mut u32).write_unaligned(0);
                }
                for g in 0..groups {
                    token_groups.add(g * 2 * LANES + lane).write_unaligned(0.0);
                    token_groups.add(g * 2 * LANES + LANES + lane).write_unaligned(0.0);
                }
            }
        }
    }
}

/// Unpack rows `first..first + count` to bytes (in the order
/// [`Codes::unpack`] leaves them, which the interleaved activations
/// follow; W8 with `PLANES` 2: low nibbles then high ones) and their group
/// headers to f32 pairs, in the tile layout of [`Layout`] for tiles of
/// `entries` entries (a multiple of 4). Four entries at a time, their
/// chunks transposed in registers so that each store writes four entries
/// of one chunk.
#[inline(always)]
unsafe fn unpack_block<C: Codes, const PLANES: usize>(
    s: &IntShape,
    matrix: &[u8],
    (first, count): (usize, usize),
    entries: usize,
    base: *mut u8,
    layout: &Layout,
) {
    let cols = s.groups * C::GROUP;
    let tile_rows = entries / PLANES;
    for tile in 0..count.div_ceil(tile_rows) {
        let codes = base.add(layout.unpacked + tile * entries * cols);
        for quad in (0..entries).step_by(4) {
            if tile * tile_rows + quad / PLANES >= count {
                // Entries past the block's end are never used.
                break;
            }
            // Entry `quad + i`: its row (the block's last one past the
            // end) and plane.
            let row: [*const u8; 4] = core::array::from_fn(|i| {
                let r = (tile * tile_rows + (quad + i) / PLANES).min(count - 1);
                matrix.as_ptr().add((first + r) * s.row_bytes)
            });
            for g in 0..s.groups {
                // A loop, not `array::from_fn`: a closure would not get the
                // AVX2 target feature, and the intrinsics would become calls.
                let mut w = [[_mm256_setzero_si256(); MAX_BLOCKS]; 4];
                for (i, wi) in w.iter_mut().enumerate() {
                    let group = row[i].add(g * s.group_bytes + GROUP_HEADER_BYTES);
                    *wi =
                        if PLANES == 2 { nibble_plane::<C>(group, (quad + i) % 2) } else { C::unpack(group) };
                }
                let chunks = codes.add(g * C::GROUP * entries + 4 * quad);
                for (v, w0) in w[0].iter().enumerate().take(C::BLOCKS.min(MAX_BLOCKS)) {
                    store_transposed(chunks.add(32 * v * entries), entries, [*w0, w[1][v], w[2][v], w[3][v]]);
                }
            }
        }
    }
    for r in 0..count {
        let row = matrix.as_ptr().add((first + r) * s.row_bytes);
        let (tile, k) = (r / tile_rows, r % tile_rows);
        let headers = base.add(layout.headers + (tile * s.groups * tile_rows + k) * 8) as *mut f32;
        for g in 0..s.groups {
            let header = (row.add(g * s.group_bytes) as *const i32).read_unaligned();
            let pair = _mm_cvtph_ps(_mm_cvtsi32_si128(header));
            let mut both = [0f32; 4];
            _mm_storeu_ps(both.as_mut_ptr(), pair);
            headers.add(2 * g * tile_rows).write_unaligned(both[0]);
            headers.add(2 * g * tile_rows + 1).write_unaligned(both[1]);
        }
    }
}

/// One nibble plane (0: low, 1: high) of a group of W8 codes at `codes`.
#[inline(always)]
unsafe fn nibble_plane<C: Codes>(codes: *const u8, plane: usize) -> Unpacked {
    let nibble = _mm256_set1_epi8(0x0f);
    let mut w = [_mm256_setzero_si256(); MAX_BLOCKS];
    for (v, wv) in w.iter_mut().enumerate().take(C::BLOCKS.min(MAX_BLOCKS)) {
        let c = _mm256_loadu_si256(codes.add(32 * v) as *const __m256i);
        *wv = _mm256_and_si256(if plane == 0 { c } else { _mm256_srli_epi16::<4>(c) }, nibble);
    }
    w
}

/// Four entries' eight 4-byte chunks (`v[i]`: entry `i`) to `dst`: chunk
/// `c` of the four entries as 16 bytes at `dst + 4 c entries`.
#[inline(always)]
unsafe fn store_transposed(dst: *mut u8, entries: usize, v: [__m256i; 4]) {
    // Per 128-bit half, a 4x4 transpose of i32 lanes: `t[c]` holds chunk
    // `c` of the four entries (low half) and chunk `c + 4` (high half).
    let (a, b) = (_mm256_unpacklo_epi32(v[0], v[1]), _mm256_unpacklo_epi32(v[2], v[3]));
    let (c, d) = (_mm256_unpackhi_epi32(v[0], v[1]), _mm256_unpackhi_epi32(v[2], v[3]));
    let t = [
        _mm256_unpacklo_epi64(a, b),
        _mm256_unpackhi_epi64(a, b),
        _mm256_unpacklo_epi64(c, d),
        _mm256_unpackhi_epi64(c, d),
    ];
    for (c, tc) in t.iter().enumerate() {
        _mm_storeu_si128(dst.add(4 * c * entries) as *mut __m128i, _mm256_castsi256_si128(*tc));
        _mm_storeu_si128(dst.add(4 * (c + 4) * entries) as *mut __m128i, _mm256_extracti128_si256::<1>(*tc));
    }
}
