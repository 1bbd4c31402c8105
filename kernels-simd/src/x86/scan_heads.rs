//! AVX2 per-head diagonal scan (Mamba-2), bit-exact with
//! [`crate::reference::diagonal_scan_heads`]: the same operations per
//! lane, in the same order, no FMA.
//!
//! Per head, `dt` and the decay are one scalar each (the reference's
//! functions); the state update runs eight states per vector, channel by
//! channel. The `C·S` dot products keep the reference's eight partial
//! sums per channel and reduce eight channels together in its pairwise
//! order.
//!
//! The multi-token form runs head by head and, within a head, a block of
//! tokens at a time: a tile of one channel's states (up to 64) stays in
//! registers while it steps through the block's tokens, so the state is
//! loaded and stored once per block instead of once per token. Each
//! token's `C·S` partial sums carry from tile to tile in the states'
//! order (the reference's), and the block's `dt B` rows are computed once
//! and shared by the head's channels.

use super::{avx2_available, reduce_lanes8};
use crate::reference::{
    diagonal_scan_heads_by_token, each_head, each_head_chunk, each_head_token, scan_channel, HeadChunk,
    HeadScanArgs, HeadScanTokens, HeadStep,
};
use core::arch::x86_64::*;

/// Lanes per vector, and channels per block.
const LANES: usize = 8;
/// Channels updated side by side in a step (a divisor of [`LANES`]): one,
/// so the state, read from beyond the L2 cache, is one sequential stream
/// the hardware prefetcher follows (eight side by side, eight streams in
/// one 4 KiB page, ran 1.5-2x slower than the scalar reference).
const STEP_PASS: usize = 1;
/// Channels updated side by side in a chunk, where a head's state stays
/// in cache: two chains of `C·S` additions overlap and share each `dt B`
/// (measured faster than one or four).
const CHUNK_PASS: usize = 2;

/// See [`crate::DiagonalScanHeads`]. Runs the reference when `d_state`
/// is not a multiple of eight, a buffer is short or the CPU lacks AVX2.
pub fn diagonal_scan_heads(args: &HeadScanArgs<'_>, state: &mut [f32], y: &mut [f32]) {
    let ds = args.d_state;
    if ds == 0 || ds % LANES != 0 || !args.complete(state, y) || !avx2_available() {
        crate::reference::diagonal_scan_heads(args, state, y);
        return;
    }
    each_head(args, state, y, |head, state, y| {
        // SAFETY: AVX2 was detected; `complete` checked `x`, B, C,
        // `state` and `y` for every head, which `each_head` slices.
        unsafe { scan_head::<STEP_PASS>(head, state, y) }
    });
}

/// Tokens a head steps through with a tile of its state in registers:
/// their `dt B` rows ([`TileScratch`]) and the channels' `C·S` partial
/// sums stay in the L1 cache with the tile's C rows (on Mamba-2's 64 x
/// 128 heads, 8 ran a few % faster than 4, 12 or 16; 32 no faster than
/// the per-token form).
const TOKEN_BLOCK: usize = 8;
/// Largest `d_state` of the register-tiled form (its `dt B` rows are a
/// fixed buffer); larger states run head by head, token by token.
const MAX_TILED_STATE: usize = 256;
/// Vectors of states a tile keeps in registers (eight of the sixteen;
/// four, or two channels of four side by side, measured no faster).
const TILE: usize = 8;

/// See [`crate::DiagonalScanHeadsTokens`]: head by head, a block of
/// tokens at a time with a tile of each channel's state in registers.
/// Runs head by head over every token (the state of one head stays in
/// cache) when `d_state` is over [`MAX_TILED_STATE`], token by token when
/// a row is short, `d_state` is not a multiple of eight or the CPU lacks
/// AVX2.
pub fn diagonal_scan_heads_tokens(args: &HeadScanTokens<'_>, state: &mut [f32], y: &mut [f32]) {
    let ds = args.d_state;
    if ds == 0 || ds % LANES != 0 || !args.complete(state, y) || !avx2_available() {
        diagonal_scan_heads_by_token(diagonal_scan_heads, args, state, y);
        return;
    }
    if ds <= MAX_TILED_STATE {
        let mut scratch = TileScratch::new();
        each_head_chunk(args, state, y, |head, state, y| {
            // SAFETY: AVX2 was detected; `complete` checked every token's
            // rows, `state` and `y` for every head, which
            // `each_head_chunk` slices; `d_state` is a multiple of eight
            // up to `MAX_TILED_STATE`.
            unsafe { scan_head_chunk(head, &mut scratch, state, y) }
        });
        return;
    }
    each_head_token(args, state, y, |head, state, y| {
        // SAFETY: AVX2 was detected; `complete` checked every token's
        // rows, `state` and `y` for every head, which `each_head_token`
        // slices.
        unsafe { scan_head::<CHUNK_PASS>(head, state, y) }
    });
}

/// One head of one token: `state` is `[head_dim, d_state]`, `y`
/// `[head_dim]`.
///
/// # Safety
/// AVX2 is present; `state` holds `x.len() * b.len()` values, `y` and
/// `x` as many as each other, `b` and `c` the same multiple of eight.
#[target_feature(enable = "avx2")]
unsafe fn scan_head<const PASS: usize>(head: &HeadStep<'_>, state: &mut [f32], y: &mut [f32]) {
    let ds = head.b.len();
    let (dt, decay) = head.step;
    let blocks = head.x.len() / LANES;
    let (b, c, s) = (head.b.as_ptr(), head.c.as_ptr(), state.as_mut_ptr());
    // SAFETY (whole block): channels `ch0..ch0 + 8` and their `ds` states
    // lie inside the slices (the function's contract).
    unsafe {
        let (dt8, decay8) = (_mm256_set1_ps(dt), _mm256_set1_ps(decay));
        for ch0 in (0..blocks * LANES).step_by(LANES) {
            let x8 = _mm256_loadu_ps(head.x.as_ptr().add(ch0));
            let mut xs = [_mm256_setzero_ps(); LANES];
            for (i, xi) in xs.iter_mut().enumerate() {
                *xi = _mm256_set1_ps(head.x[ch0 + i]);
            }
            let mut dots = [_mm256_setzero_ps(); LANES];
            // PASS channels at a time, each over its states in order.
            for i0 in (0..LANES).step_by(PASS) {
                let row = s.add((ch0 + i0) * ds);
                for j in (0..ds).step_by(LANES) {
                    let (bj, cj) = (_mm256_loadu_ps(b.add(j)), _mm256_loadu_ps(c.add(j)));
                    // The reference's `dt * b` (then `* x`).
                    let dtb = _mm256_mul_ps(dt8, bj);
                    for k in 0..PASS {
                        // S = decay S + (dt b) x, then dot += S c.
                        let at = row.add(k * ds + j);
                        let sv = _mm256_add_ps(
                            _mm256_mul_ps(decay8, _mm256_loadu_ps(at)),
                            _mm256_mul_ps(dtb, xs[i0 + k]),
                        );
                        _mm256_storeu_ps(at, sv);
                        dots[i0 + k] = _mm256_add_ps(dots[i0 + k], _mm256_mul_ps(sv, cj));
                    }
                }
            }
            let dx = _mm256_mul_ps(_mm256_set1_ps(head.d), x8);
            _mm256_storeu_ps(y.as_mut_ptr().add(ch0), _mm256_add_ps(reduce_lanes8(&dots), dx));
        }
    }
    for p in blocks * LANES..head.x.len() {
        let sp = &mut state[p * ds..(p + 1) * ds];
        y[p] = scan_channel(head.step, (head.b, head.c), (head.d, head.x[p]), sp);
    }
}

/// Per-call buffers of the register-tiled form, on the stack (one
/// `memset` per call, not per head), cache-line aligned so no vector
/// load of `dt B` straddles two lines.
#[repr(C, align(64))]
struct TileScratch {
    /// `dt B` of the block's tokens, `[TOKEN_BLOCK, d_state]`.
    dtb: [f32; TOKEN_BLOCK * MAX_TILED_STATE],
    /// The decay of the block's tokens.
    decay: [f32; TOKEN_BLOCK],
    /// `C·S` partial sums (the reference dot product's eight lanes) of
    /// the eight channels of a group, per token of the block.
    dots: [[__m256; LANES]; TOKEN_BLOCK],
}

impl TileScratch {
    fn new() -> Self {
        // SAFETY: an all-zero `__m256` is a valid value (eight 0.0f32).
        let zero = unsafe { _mm256_setzero_ps() };
        TileScratch {
            dtb: [0.0; TOKEN_BLOCK * MAX_TILED_STATE],
            decay: [0.0; TOKEN_BLOCK],
            dots: [[zero; LANES]; TOKEN_BLOCK],
        }
    }
}

/// One head over every token of a chunk, [`TOKEN_BLOCK`] tokens at a
/// time: `state` is the head's `[head_dim, d_state]`, `y` its outputs
/// (token `t`'s at `t * y_stride`).
///
/// # Safety
/// AVX2 is present; `d_state` is a multiple of eight up to
/// [`MAX_TILED_STATE`]; `state` holds `head_dim * d_state` values; every
/// token's row of `head` holds the head's values (`dt` one, `x`
/// `head_dim`, B and C `d_state`) and `y` `(tokens - 1) * y_stride +
/// head_dim` values.
#[target_feature(enable = "avx2")]
unsafe fn scan_head_chunk(head: &HeadChunk<'_>, scratch: &mut TileScratch, state: &mut [f32], y: &mut [f32]) {
    let hd = head.head_dim;
    if hd == 0 {
        return;
    }
    let ds = head.d_state;
    for t0 in (0..head.tokens).step_by(TOKEN_BLOCK) {
        let nt = TOKEN_BLOCK.min(head.tokens - t0);
        for t in 0..nt {
            let (dt, decay) = head.step(t0 + t);
            scratch.decay[t] = decay;
            let b = &head.b.data[(t0 + t) * head.b.stride..][..ds];
            let dtb = &mut scratch.dtb[t * ds..][..ds];
            // SAFETY: both slices hold `ds` values, a multiple of eight.
            unsafe {
                let dt8 = _mm256_set1_ps(dt);
                for j in (0..ds).step_by(LANES) {
                    // The reference's `dt * b`.
                    let v = _mm256_mul_ps(dt8, _mm256_loadu_ps(b.as_ptr().add(j)));
                    _mm256_storeu_ps(dtb.as_mut_ptr().add(j), v);
                }
            }
        }
        let block = TokenBlock { t0, tokens: nt, ds };
        for p0 in (0..hd).step_by(LANES) {
            let width = LANES.min(hd - p0);
            for i in 0..width {
                let row = state[(p0 + i) * ds..][..ds].as_mut_ptr();
                // SAFETY: `row` is channel `p0 + i`'s `ds` states; the
                // rows as the function's contract says.
                unsafe { scan_channel_tiles(head, scratch, &block, (p0 + i, i), row) };
            }
            let dx_d = _mm256_set1_ps(head.d);
            for t in 0..nt {
                let sums = reduce_lanes8(&scratch.dots[t]);
                let x = &head.x.data[(t0 + t) * head.x.stride + p0..][..width];
                let out = &mut y[(t0 + t) * head.y_stride + p0..][..width];
                if width == LANES {
                    // SAFETY: `x` and `out` hold eight values.
                    unsafe {
                        let dx = _mm256_mul_ps(dx_d, _mm256_loadu_ps(x.as_ptr()));
                        _mm256_storeu_ps(out.as_mut_ptr(), _mm256_add_ps(sums, dx));
                    }
                } else {
                    let mut lanes = [0.0f32; LANES];
                    // SAFETY: `lanes` holds eight values.
                    unsafe { _mm256_storeu_ps(lanes.as_mut_ptr(), sums) };
                    for ((o, &s), &xv) in out.iter_mut().zip(&lanes).zip(x) {
                        *o = s + head.d * xv;
                    }
                }
            }
        }
    }
}

/// The tokens `t0..t0 + tokens` of a head's block and its `d_state`.
struct TokenBlock {
    t0: usize,
    tokens: usize,
    ds: usize,
}

/// Channel `p` (lane `i` of its group) of a head over a block of tokens,
/// its states in tiles of up to [`TILE`] vectors, each tile over every
/// token of the block: leaves each token's `C·S` partial sums in
/// `scratch.dots[t][i]`.
///
/// # Safety
/// AVX2 is present; `row` is the channel's `ds` states; the block's rows
/// and `scratch` as [`scan_head_chunk`] prepared them.
#[target_feature(enable = "avx2")]
unsafe fn scan_channel_tiles(
    head: &HeadChunk<'_>,
    scratch: &mut TileScratch,
    block: &TokenBlock,
    (p, i): (usize, usize),
    row: *mut f32,
) {
    let full = block.ds / (TILE * LANES) * (TILE * LANES);
    // SAFETY (whole block): every tile lies in the channel's `ds` states.
    unsafe {
        for n0 in (0..full).step_by(TILE * LANES) {
            tile::<TILE>(head, scratch, block, (p, i), (row, n0));
        }
        let n0 = full;
        match (block.ds - full) / LANES {
            1 => tile::<1>(head, scratch, block, (p, i), (row, n0)),
            2 => tile::<2>(head, scratch, block, (p, i), (row, n0)),
            3 => tile::<3>(head, scratch, block, (p, i), (row, n0)),
            4 => tile::<4>(head, scratch, block, (p, i), (row, n0)),
            5 => tile::<5>(head, scratch, block, (p, i), (row, n0)),
            6 => tile::<6>(head, scratch, block, (p, i), (row, n0)),
            7 => tile::<7>(head, scratch, block, (p, i), (row, n0)),
            _ => {}
        }
    }
}

/// States `n0..n0 + 8K` of channel `p` in `K` registers over every token
/// of the block: per token `S = decay S + (dt b) x`, then its partial
/// sums (from the previous tile, zero for the first) `+= S c`, vector by
/// vector in the states' order, as the reference's dot product adds them.
///
/// # Safety
/// AVX2 is present; `row + n0` holds `8K` states; the rows and `scratch`
/// as [`scan_channel_tiles`] says.
#[inline(always)]
unsafe fn tile<const K: usize>(
    head: &HeadChunk<'_>,
    scratch: &mut TileScratch,
    block: &TokenBlock,
    (p, i): (usize, usize),
    (row, n0): (*mut f32, usize),
) {
    // SAFETY (whole block): the function's contract.
    unsafe {
        let at = row.add(n0);
        let mut s = [_mm256_setzero_ps(); K];
        for (k, sk) in s.iter_mut().enumerate() {
            *sk = _mm256_loadu_ps(at.add(k * LANES));
        }
        let (x, c) = (head.x.data.as_ptr().add(p), head.c.data.as_ptr().add(n0));
        for t in 0..block.tokens {
            let tt = block.t0 + t;
            let xv = _mm256_set1_ps(*x.add(tt * head.x.stride));
            let decay = _mm256_set1_ps(scratch.decay[t]);
            let (dtb, ct) = (scratch.dtb.as_ptr().add(t * block.ds + n0), c.add(tt * head.c.stride));
            let mut dot = if n0 == 0 { _mm256_setzero_ps() } else { scratch.dots[t][i] };
            for (k, sk) in s.iter_mut().enumerate() {
                *sk = _mm256_add_ps(
                    _mm256_mul_ps(decay, *sk),
                    _mm256_mul_ps(_mm256_loadu_ps(dtb.add(k * LANES)), xv),
                );
                dot = _mm256_add_ps(dot, _mm256_mul_ps(*sk, _mm256_loadu_ps(ct.add(k * LANES))));
            }
            scratch.dots[t][i] = dot;
        }
        for (k, sk) in s.iter().enumerate() {
            _mm256_storeu_ps(at.add(k * LANES), *sk);
        }
    }
}
