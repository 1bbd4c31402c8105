//! The `avx512-amx` set's multi-token integer product (prefill) with AMX
//! tiles: `tdpbusd` multiplies 16 rows of unsigned codes with 16 tokens'
//! int8 activations, 64 codes deep, into a 16x16 tile of exact i32 sums
//! (the tile instructions are in [`super::amx_tiles`], with the guarded
//! availability check).
//!
//! Work order: a block of rows is unpacked to bytes once (the `vpdpbusd`
//! kernels' unpacking, so unsigned codes, W8 as stored) with its group
//! headers as f32; the tokens' permuted activations are interleaved four
//! codes at a time for 16 tokens (the tile layout `tdpbusd` reads). Then
//! for each 32 tokens and 32 rows, group by group: four accumulator tiles
//! (2 x 2 of 16 rows x 16 tokens) take the group's codes in steps of 64
//! (32 for groups of 32), are stored, and each (row, token) i32 sum goes
//! through the reference's f32 group step (`result + x_scale * (scale *
//! acc + min * sum)`, no FMA, groups in order) on AVX2 lanes, as in the
//! other kernels. Integer sums are exact, so results are bit-identical
//! to the scalar reference.
//!
//! Tiles pay only with enough tokens (padding to 32 costs): below
//! [`MIN_TOKENS`] tokens, and when the scratch is too small, the
//! `avx512-vnni` multi-token kernel runs instead.

use super::amx_tiles::{self, TileConfig, TILE_BYTES, TILE_ROWS};
use super::group::Codes;
use super::matvec::{kernel_for, kernels_cover, permute_activations};
use super::vnni::{self, W2Dp, W4Dp, W8Dp};
use crate::{ActsI8, IntShape, QuantMatrix};
use core::arch::x86_64::*;
use eddy_quant::GROUP_HEADER_BYTES;

pub use super::amx_tiles::{amx_available, amx_status, AmxStatus};

/// Tokens and rows of one pass (two tiles of 16 each).
const PASS: usize = 2 * TILE_ROWS;

/// Fewest tokens the tile kernel takes; fewer run the `avx512-vnni`
/// kernel (a pass pads its tokens to 32).
pub const MIN_TOKENS: usize = 16;

/// Bytes of unpacked codes per row block (with its headers and the
/// tokens' activations, within the L2 cache).
const UNPACKED_BYTES: usize = 48 * 1024;

/// Alignment of the scratch layout's start (a cache line: tile rows
/// never split one).
const ALIGN: usize = 64;

/// Bytes of four stored accumulator tiles, and of a pass's f32 results.
const TILES_BYTES: usize = 4 * TILE_ROWS * TILE_BYTES;

/// See [`crate::MatmatI8`]: the AMX tile kernel for 16 tokens or more when
/// the CPU and OS run AMX ([`amx_available`]) and the scratch suffices,
/// else the `avx512-vnni` multi-token kernel (which falls back in turn).
pub fn matmat_i8(w: QuantMatrix<'_>, acts: &[ActsI8<'_>], out: &mut [f32], perm: &mut [i8]) {
    let picked = (acts.len() >= MIN_TOKENS)
        .then(|| IntShape::for_tokens(w, out.len(), acts, w.cols))
        .flatten()
        .filter(kernels_cover)
        .filter(|s| Layout::new(s.groups * s.group, acts.len(), s.groups).len <= perm.len())
        .and_then(|s| Some((s, pick(&s)?)));
    match picked {
        // SAFETY: `pick` returns kernels only when AMX (and AVX2) run
        // here; every token's shape check passed and the scratch holds
        // the layout.
        Some((shape, kernel)) => unsafe { kernel(&shape, w.bytes, acts, out, perm) },
        None => vnni::matmat_i8(w, acts, out, perm),
    }
}

/// The tile kernel of one shape.
type TileKernel = unsafe fn(&IntShape, &[u8], &[ActsI8<'_>], &mut [f32], &mut [i8]);

/// The tile kernel for a shape, if AMX runs here.
fn pick(s: &IntShape) -> Option<TileKernel> {
    if !amx_available() {
        return None;
    }
    kernel_for!(s, tiles, W2Dp, W4Dp, W8Dp)
}

/// Bytes of scratch [`matmat_i8`]'s tile kernel needs (groups of at least
/// 32 codes); never less for more columns or tokens.
pub(crate) const fn scratch_len(cols: usize, tokens: usize) -> usize {
    let passes = tokens.div_ceil(PASS);
    let block = if PASS * cols > UNPACKED_BYTES { PASS * cols } else { UNPACKED_BYTES };
    // Interleaved activations, per-token group scales and sums (8 bytes
    // per group of at least 32 codes), one permuted token, the unpacked
    // block and its headers, the stored tiles and the pass's results, and
    // the two cache-line roundings of [`Layout`].
    ALIGN - 1
        + passes * PASS * cols
        + passes * PASS * (cols / 32) * 8
        + cols
        + block
        + block / 4
        + 2 * TILES_BYTES
        + 2 * ALIGN
}

/// Where each part of the scratch starts, in bytes from the aligned start.
struct Layout {
    /// Interleaved activations: token tile `j` (16 tokens), 4-code chunk
    /// `q`, token `t` of the tile at `(j * cols / 4 + q) * 64 + 4 t`.
    interleaved: usize,
    /// Per token tile and group, the 16 tokens' scales then their code
    /// sums as f32 (128 bytes).
    token_groups: usize,
    /// One token's permuted codes (`cols` bytes).
    permuted: usize,
    /// A row block's unpacked codes, row `r` at `r * cols`.
    unpacked: usize,
    /// Per row of the block and group, its scale and minimum as f32.
    headers: usize,
    /// Four stored accumulator tiles.
    sums: usize,
    /// The pass's f32 results, row `r` token `t` at `(r * 32 + t) * 4`.
    results: usize,
    /// Rows per block (a multiple of 32).
    block_rows: usize,
    /// Total bytes, with the alignment slack.
    len: usize,
}

impl Layout {
    /// The layout for `tokens` tokens of `cols` codes in `groups` groups.
    fn new(cols: usize, tokens: usize, groups: usize) -> Layout {
        let token_tiles = tokens.div_ceil(PASS) * 2;
        let block_rows = (UNPACKED_BYTES / cols.max(1)) / PASS * PASS;
        let block_rows = block_rows.max(PASS);
        let interleaved = 0;
        let token_groups = interleaved + token_tiles * TILE_ROWS * cols;
        let permuted = token_groups + token_tiles * groups * 2 * TILE_ROWS * 4;
        // Cache-line aligned from here on.
        let unpacked = (permuted + cols).next_multiple_of(ALIGN);
        let headers = unpacked + block_rows * cols;
        let sums = (headers + block_rows * groups * 8).next_multiple_of(ALIGN);
        let results = sums + TILES_BYTES;
        let len = ALIGN - 1 + results + TILES_BYTES;
        Layout { interleaved, token_groups, permuted, unpacked, headers, sums, results, block_rows, len }
    }
}

/// `out[t * rows + r]` = row `r` times token `t` by AMX tiles (module docs).
///
/// # Safety
/// AMX runs here ([`amx_available`]) and AVX2 and F16C; `s` is `matrix`'s
/// checked shape (rows of `s.row_bytes`, `out.len() / acts.len()` of
/// them); every token's `q` holds `cols` codes and its scales and sums
/// `s.groups` values; `scratch` holds [`Layout::len`] bytes.
#[target_feature(enable = "avx2,f16c")]
unsafe fn tiles<C: Codes>(
    s: &IntShape,
    matrix: &[u8],
    acts: &[ActsI8<'_>],
    out: &mut [f32],
    scratch: &mut [i8],
) {
    let tokens = acts.len();
    let (rows, cols, groups) = (out.len() / tokens, s.groups * C::GROUP, s.groups);
    let layout = Layout::new(cols, tokens, groups);
    let ptr = scratch.as_mut_ptr() as *mut u8;
    let base = ptr.add(ptr.align_offset(ALIGN).min(ALIGN - 1));
    interleave_tokens(s, acts, base, &layout);
    // Codes per `tdpbusd` step: the group, at most 64.
    let k = C::GROUP.min(64);
    let cfg = TileConfig::new(k);
    amx_tiles::load_config(&cfg);
    for block_start in (0..rows).step_by(layout.block_rows) {
        let block_len = layout.block_rows.min(rows - block_start);
        unpack_block::<C>(s, matrix, (block_start, block_len), base, &layout);
        for first in (0..tokens).step_by(PASS) {
            let count = PASS.min(tokens - first);
            let tile0 = first / TILE_ROWS;
            let xs = base.add(layout.interleaved + tile0 * TILE_ROWS * cols) as *const u8;
            let token_groups =
                base.add(layout.token_groups + tile0 * groups * 2 * TILE_ROWS * 4) as *const f32;
            for r0 in (0..block_len).step_by(PASS) {
                let results = base.add(layout.results) as *mut f32;
                core::ptr::write_bytes(results, 0, PASS * PASS);
                let codes = base.add(layout.unpacked + r0 * cols) as *const u8;
                let headers = base.add(layout.headers + r0 * groups * 8) as *const f32;
                let sums = base.add(layout.sums);
                for g in 0..groups {
                    amx_tiles::zero_accumulators();
                    for k0 in (g * C::GROUP..(g + 1) * C::GROUP).step_by(k) {
                        let a0 = codes.add(k0);
                        let b0 = xs.add(k0 * TILE_ROWS);
                        amx_tiles::multiply(a0, a0.add(TILE_ROWS * cols), cols, b0, b0.add(TILE_ROWS * cols));
                    }
                    amx_tiles::store_accumulators(sums);
                    let token_group = token_groups.add(g * 2 * TILE_ROWS);
                    group_steps(sums as *const i32, headers.add(g * 2), groups, token_group, results);
                }
                let valid = PASS.min(block_len - r0);
                for t in 0..count {
                    let dst = &mut out[(first + t) * rows + block_start + r0..][..valid];
                    for (r, d) in dst.iter_mut().enumerate() {
                        *d = *results.add(r * PASS + t);
                    }
                }
            }
        }
    }
    amx_tiles::release();
}

/// One group's f32 step for a pass's 32 rows x 32 tokens: `results[r][t]
/// += x_scale[t] * (scale[r] * sums[r][t] + min[r] * x_sum[t])`, the
/// reference's operations in its order, eight tokens per vector. `sums`:
/// the four stored tiles (tile `2 i + j`: rows `16 i..`, tokens `16 j..`);
/// `headers`: row `r`'s scale and minimum at `2 r groups`; `token_groups`:
/// token tile `j`'s 16 scales then 16 sums at `2 * 16 * groups * j`.
#[inline(always)]
unsafe fn group_steps(
    sums: *const i32,
    headers: *const f32,
    groups: usize,
    token_groups: *const f32,
    results: *mut f32,
) {
    const LANES: usize = 8;
    for j in 0..2 {
        for h in 0..TILE_ROWS / LANES {
            let tg = token_groups.add(j * groups * 2 * TILE_ROWS);
            let x_scale = _mm256_loadu_ps(tg.add(h * LANES));
            let x_sum = _mm256_loadu_ps(tg.add(TILE_ROWS + h * LANES));
            for r in 0..PASS {
                let (i, m) = (r / TILE_ROWS, r % TILE_ROWS);
                let acc = _mm256_loadu_si256(
                    sums.add((2 * i + j) * TILE_ROWS * TILE_ROWS + m * TILE_ROWS + h * LANES)
                        as *const __m256i,
                );
                let scale = _mm256_broadcast_ss(&*headers.add(2 * r * groups));
                let min = _mm256_broadcast_ss(&*headers.add(2 * r * groups + 1));
                let inner =
                    _mm256_add_ps(_mm256_mul_ps(scale, _mm256_cvtepi32_ps(acc)), _mm256_mul_ps(min, x_sum));
                let res = results.add(r * PASS + j * TILE_ROWS + h * LANES);
                _mm256_storeu_ps(res, _mm256_add_ps(_mm256_loadu_ps(res), _mm256_mul_ps(x_scale, inner)));
            }
        }
    }
}

/// Every token's codes permuted to the unpacked order and interleaved four
/// at a time, 16 tokens per tile, and its group scales and sums; the
/// missing tokens of the last pass are zeros.
#[inline(always)]
unsafe fn interleave_tokens(s: &IntShape, acts: &[ActsI8<'_>], base: *mut u8, layout: &Layout) {
    let (cols, groups) = (s.groups * s.group, s.groups);
    let permuted = core::slice::from_raw_parts_mut(base.add(layout.permuted) as *mut i8, cols);
    for t in 0..acts.len().div_ceil(PASS) * PASS {
        let (tile, lane) = (t / TILE_ROWS, t % TILE_ROWS);
        let chunks = base.add(layout.interleaved + tile * TILE_ROWS * cols + 4 * lane);
        let token_groups = base.add(layout.token_groups + tile * groups * 2 * TILE_ROWS * 4) as *mut f32;
        let scale = |g: usize| g * 2 * TILE_ROWS + lane;
        let sum = |g: usize| g * 2 * TILE_ROWS + TILE_ROWS + lane;
        match acts.get(t) {
            Some(a) => {
                permute_activations(s.bits, s.group, &a.q[..cols], permuted);
                for q in 0..cols / 4 {
                    let four = (permuted.as_ptr().add(4 * q) as *const u32).read_unaligned();
                    (chunks.add(q * TILE_BYTES) as *mut u32).write_unaligned(four);
                }
                for g in 0..groups {
                    token_groups.add(scale(g)).write_unaligned(a.scales[g]);
                    token_groups.add(sum(g)).write_unaligned(a.sums[g] as f32);
                }
            }
            None => {
                for q in 0..cols / 4 {
                    (chunks.add(q * TILE_BYTES) as *mut u32).write_unaligned(0);
                }
                for g in 0..groups {
                    token_groups.add(scale(g)).write_unaligned(0.0);
                    token_groups.add(sum(g)).write_unaligned(0.0);
                }
            }
        }
    }
}

/// Rows `first..first + count` unpacked to unsigned code bytes (in the
/// order [`Codes::unpack`] leaves them, which the permuted activations
/// follow), row `r` at `unpacked + r * cols`, and their group headers as
/// f32 pairs. Rows of the block past `count` keep stale bytes; their
/// results are never stored.
#[inline(always)]
unsafe fn unpack_block<C: Codes>(
    s: &IntShape,
    matrix: &[u8],
    (first, count): (usize, usize),
    base: *mut u8,
    layout: &Layout,
) {
    let cols = s.groups * C::GROUP;
    for r in 0..count {
        let row = matrix.as_ptr().add((first + r) * s.row_bytes);
        let dst = base.add(layout.unpacked + r * cols);
        let headers = base.add(layout.headers + r * s.groups * 8) as *mut f32;
        for g in 0..s.groups {
            let group = row.add(g * s.group_bytes);
            let w = C::unpack(group.add(GROUP_HEADER_BYTES));
            for (b, wb) in w.iter().enumerate().take(C::BLOCKS) {
                _mm256_storeu_si256(dst.add(g * C::GROUP + 32 * b) as *mut __m256i, *wb);
            }
            let header = (group as *const i32).read_unaligned();
            let pair = _mm_cvtph_ps(_mm_cvtsi32_si128(header));
            _mm_storel_epi64(headers.add(2 * g) as *mut __m128i, _mm_castps_si128(pair));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The scratch the callers size with [`scratch_len`] always holds the
    /// layout the tile kernel needs, so the kernel never falls back for
    /// want of scratch.
    #[test]
    fn scratch_len_covers_the_layout() {
        for group in [32, 64, 128, 256] {
            for groups in 1..=80 {
                let cols = group * groups;
                for tokens in [MIN_TOKENS, 17, 31, 32, 33, 64, 65] {
                    let need = Layout::new(cols, tokens, groups).len;
                    assert!(need <= scratch_len(cols, tokens), "{cols} cols, {tokens} tokens");
                    assert!(scratch_len(cols, tokens) <= crate::matmat_scratch_len(cols, tokens));
                }
            }
        }
    }
}
