//! NEON per-head diagonal scan (Mamba-2), bit-exact with
//! [`crate::reference::diagonal_scan_heads`]: the same operations per
//! lane, in the same order (operands too, so NaN payloads agree), no FMA.
//!
//! Per head, `dt` and the decay are one scalar each (the reference's
//! functions); the state update runs channel by channel, eight states per
//! pass in two vectors, which are the reference dot product's lanes
//! 0..4 and 4..8 (`eddy_quant::dot_f32`): `C·S` keeps its eight partial
//! sums and its pairwise reduction ([`super::scan::reduce4`]).
//!
//! The multi-token form runs head by head and, within a head, a block of
//! tokens at a time: a tile of one channel's states (up to 64, sixteen
//! vectors) stays in registers while it steps through the block's tokens,
//! so the state is loaded and stored once per block instead of once per
//! token. Each token's `C·S` partial sums carry from tile to tile in the
//! states' order (the reference's), and the block's `dt B` rows are
//! computed once and shared by the head's channels (as on x86).

use super::scan::reduce4;
use crate::reference::{
    diagonal_scan_heads_by_token, each_head, each_head_chunk, scan_channel, HeadChunk, HeadScanArgs,
    HeadScanTokens, HeadStep,
};
use core::arch::aarch64::*;

/// Lanes per vector.
const LANES: usize = 4;
/// Channels per block (one per output lane).
const BLOCK: usize = 4;

/// See [`crate::DiagonalScanHeads`]. Runs the reference when `d_state`
/// is not a multiple of four or a buffer is short.
pub fn diagonal_scan_heads(args: &HeadScanArgs<'_>, state: &mut [f32], y: &mut [f32]) {
    let ds = args.d_state;
    if ds == 0 || ds % LANES != 0 || !args.complete(state, y) {
        crate::reference::diagonal_scan_heads(args, state, y);
        return;
    }
    each_head(args, state, y, scan_head);
}

/// Tokens a head steps through with a tile of its state in registers
/// (as on x86): their `dt B` rows and the channels' `C·S` partial sums
/// stay in the L1 cache with the tile's C rows.
const TOKEN_BLOCK: usize = 8;
/// Largest `d_state` of the register-tiled form (its `dt B` rows are a
/// fixed buffer); larger states run head by head, token by token.
const MAX_TILED_STATE: usize = 256;
/// Vectors of states a tile keeps in registers (sixteen of the 32).
const TILE: usize = 16;

/// See [`crate::DiagonalScanHeadsTokens`]: head by head, a block of
/// tokens at a time with a tile of each channel's state in registers.
/// Runs head by head over every token when `d_state` is over
/// [`MAX_TILED_STATE`], token by token when a row is short or `d_state`
/// is not a multiple of four.
pub fn diagonal_scan_heads_tokens(args: &HeadScanTokens<'_>, state: &mut [f32], y: &mut [f32]) {
    let ds = args.d_state;
    if ds == 0 || ds % LANES != 0 || !args.complete(state, y) {
        diagonal_scan_heads_by_token(diagonal_scan_heads, args, state, y);
        return;
    }
    if ds <= MAX_TILED_STATE {
        let mut scratch = TileScratch::new();
        each_head_chunk(args, state, y, |head, state, y| {
            // SAFETY: NEON is present on every aarch64 target this module
            // compiles for; `complete` checked every token's rows, `state`
            // and `y` for every head, which `each_head_chunk` slices;
            // `d_state` is a multiple of four up to `MAX_TILED_STATE`.
            unsafe { scan_head_chunk(head, &mut scratch, state, y) }
        });
        return;
    }
    crate::reference::each_head_token(args, state, y, scan_head);
}

/// One head of one token: `state` is `[head_dim, d_state]` (`head_dim =
/// x.len()`, `d_state = b.len() = c.len()`, a multiple of four), `y`
/// `[head_dim]`; the callers slice them so.
#[inline]
fn scan_head(head: &HeadStep<'_>, state: &mut [f32], y: &mut [f32]) {
    let ds = head.b.len();
    let blocks = head.x.len() / BLOCK;
    if head.c.len() != ds || state.len() < head.x.len() * ds || y.len() < head.x.len() {
        return;
    }
    // SAFETY: NEON is present on every aarch64 target this module
    // compiles for; the lengths were checked above.
    unsafe { scan_blocks(head, state.as_mut_ptr(), y.as_mut_ptr(), blocks) };
    for p in blocks * BLOCK..head.x.len() {
        let sp = &mut state[p * ds..(p + 1) * ds];
        y[p] = scan_channel(head.step, (head.b, head.c), (head.d, head.x[p]), sp);
    }
}

/// `S = decay S + (dt b) x` for four states at `at`, then `dot += S c`.
///
/// # Safety
/// NEON must be present; `state` holds four values from `at`.
#[inline(always)]
unsafe fn update4(
    state: *mut f32,
    at: usize,
    (decay, x): (float32x4_t, float32x4_t),
    (dtb, c): (float32x4_t, float32x4_t),
    dot: &mut float32x4_t,
) {
    // SAFETY: the caller's contract.
    unsafe {
        let s = state.add(at);
        let sv = vaddq_f32(vmulq_f32(decay, vld1q_f32(s)), vmulq_f32(dtb, x));
        vst1q_f32(s, sv);
        *dot = vaddq_f32(*dot, vmulq_f32(sv, c));
    }
}

/// The first `blocks * 4` channels of one head.
///
/// # Safety
/// NEON must be present; `state` holds `blocks * 4 * d_state` values and
/// `y` `blocks * 4`, `d_state = head.b.len()` a multiple of four.
unsafe fn scan_blocks(head: &HeadStep<'_>, state: *mut f32, y: *mut f32, blocks: usize) {
    let ds = head.b.len();
    let (b, c) = (head.b.as_ptr(), head.c.as_ptr());
    let (dt, decay) = head.step;
    let pairs = ds / 8 * 8;
    // SAFETY (whole function): channels `ch0..ch0 + 4` and states `0..ds`
    // of each lie inside the buffers (the function's contract).
    unsafe {
        let (dt4, decay4) = (vdupq_n_f32(dt), vdupq_n_f32(decay));
        for ch0 in (0..blocks * BLOCK).step_by(BLOCK) {
            let x4 = vld1q_f32(head.x.as_ptr().add(ch0));
            let xs = [
                (decay4, vdupq_laneq_f32::<0>(x4)),
                (decay4, vdupq_laneq_f32::<1>(x4)),
                (decay4, vdupq_laneq_f32::<2>(x4)),
                (decay4, vdupq_laneq_f32::<3>(x4)),
            ];
            let mut lo = [vdupq_n_f32(0.0); BLOCK];
            let mut hi = [vdupq_n_f32(0.0); BLOCK];
            // One channel at a time, over its states in order: one
            // sequential stream through memory for the prefetcher (a step
            // reads the state from beyond the L2 cache).
            for i in 0..BLOCK {
                let row = (ch0 + i) * ds;
                for j in (0..pairs).step_by(8) {
                    // The reference's `dt * b` (then `* x`).
                    let bc_lo = (vmulq_f32(dt4, vld1q_f32(b.add(j))), vld1q_f32(c.add(j)));
                    let bc_hi = (vmulq_f32(dt4, vld1q_f32(b.add(j + 4))), vld1q_f32(c.add(j + 4)));
                    update4(state, row + j, xs[i], bc_lo, &mut lo[i]);
                    update4(state, row + j + 4, xs[i], bc_hi, &mut hi[i]);
                }
                if pairs < ds {
                    // The reference's remainder of four goes to lanes 0..4.
                    let bc = (vmulq_f32(dt4, vld1q_f32(b.add(pairs))), vld1q_f32(c.add(pairs)));
                    update4(state, row + pairs, xs[i], bc, &mut lo[i]);
                }
            }
            let dx = vmulq_f32(vdupq_n_f32(head.d), x4);
            vst1q_f32(y.add(ch0), vaddq_f32(reduce4(&lo, &hi), dx));
        }
    }
}

/// Per-call buffers of the register-tiled form, on the stack (one
/// `memset` per call, not per head).
#[repr(C, align(64))]
struct TileScratch {
    /// `dt B` of the block's tokens, `[TOKEN_BLOCK, d_state]`.
    dtb: [f32; TOKEN_BLOCK * MAX_TILED_STATE],
    /// The decay of the block's tokens.
    decay: [f32; TOKEN_BLOCK],
    /// `C·S` partial sums (lanes 0..4 and 4..8 of the reference dot
    /// product) of the four channels of a block, per token.
    dots: [[[float32x4_t; 2]; BLOCK]; TOKEN_BLOCK],
}

impl TileScratch {
    fn new() -> Self {
        // SAFETY: NEON is present (this module's targets).
        let zero = unsafe { vdupq_n_f32(0.0) };
        TileScratch {
            dtb: [0.0; TOKEN_BLOCK * MAX_TILED_STATE],
            decay: [0.0; TOKEN_BLOCK],
            dots: [[[zero; 2]; BLOCK]; TOKEN_BLOCK],
        }
    }
}

/// The tokens `t0..t0 + tokens` of a head's block and its `d_state`.
struct TokenBlock {
    t0: usize,
    tokens: usize,
    ds: usize,
}

/// One head over every token of a chunk, [`TOKEN_BLOCK`] tokens at a
/// time: `state` is the head's `[head_dim, d_state]`, `y` its outputs
/// (token `t`'s at `t * y_stride`).
///
/// # Safety
/// NEON is present; `d_state` is a multiple of four up to
/// [`MAX_TILED_STATE`]; `state` holds `head_dim * d_state` values; every
/// token's row of `head` holds the head's values (`dt` one, `x`
/// `head_dim`, B and C `d_state`) and `y` `(tokens - 1) * y_stride +
/// head_dim` values.
unsafe fn scan_head_chunk(head: &HeadChunk<'_>, scratch: &mut TileScratch, state: &mut [f32], y: &mut [f32]) {
    let (hd, ds) = (head.head_dim, head.d_state);
    for t0 in (0..head.tokens).step_by(TOKEN_BLOCK) {
        let nt = TOKEN_BLOCK.min(head.tokens - t0);
        for t in 0..nt {
            let (dt, decay) = head.step(t0 + t);
            scratch.decay[t] = decay;
            let b = &head.b.data[(t0 + t) * head.b.stride..][..ds];
            let dtb = &mut scratch.dtb[t * ds..][..ds];
            // SAFETY: both slices hold `ds` values, a multiple of four.
            unsafe {
                let dt4 = vdupq_n_f32(dt);
                for j in (0..ds).step_by(LANES) {
                    // The reference's `dt * b`.
                    vst1q_f32(dtb.as_mut_ptr().add(j), vmulq_f32(dt4, vld1q_f32(b.as_ptr().add(j))));
                }
            }
        }
        let block = TokenBlock { t0, tokens: nt, ds };
        for p0 in (0..hd).step_by(BLOCK) {
            let width = BLOCK.min(hd - p0);
            for i in 0..width {
                let row = state[(p0 + i) * ds..][..ds].as_mut_ptr();
                // SAFETY: `row` is channel `p0 + i`'s `ds` states; the
                // rows as the function's contract says.
                unsafe { scan_channel_tiles(head, scratch, &block, (p0 + i, i), row) };
            }
            for t in 0..nt {
                let dots = &scratch.dots[t];
                let (lo, hi) = ([0, 1, 2, 3].map(|i| dots[i][0]), [0, 1, 2, 3].map(|i| dots[i][1]));
                let x = &head.x.data[(t0 + t) * head.x.stride + p0..][..width];
                let out = &mut y[(t0 + t) * head.y_stride + p0..][..width];
                // SAFETY: NEON is present; `x` and `out` hold `width`
                // values, four when they are read as a vector.
                unsafe {
                    let sums = reduce4(&lo, &hi);
                    if width == BLOCK {
                        let dx = vmulq_f32(vdupq_n_f32(head.d), vld1q_f32(x.as_ptr()));
                        vst1q_f32(out.as_mut_ptr(), vaddq_f32(sums, dx));
                    } else {
                        let mut lanes = [0.0f32; BLOCK];
                        vst1q_f32(lanes.as_mut_ptr(), sums);
                        for ((o, &s), &xv) in out.iter_mut().zip(&lanes).zip(x) {
                            *o = s + head.d * xv;
                        }
                    }
                }
            }
        }
    }
}

/// Channel `p` (lane `i` of its block) of a head over a block of tokens,
/// its states in tiles of up to [`TILE`] vectors, each tile over every
/// token of the block: leaves each token's `C·S` partial sums in
/// `scratch.dots[t][i]`. Tiles start at multiples of eight states, so a
/// tile's even vectors are the reference's lanes 0..4 and its odd ones
/// lanes 4..8 (a last vector of four, as the reference's remainder, lanes
/// 0..4).
///
/// # Safety
/// NEON is present; `row` is the channel's `ds` states; the block's rows
/// and `scratch` as [`scan_head_chunk`] prepared them.
unsafe fn scan_channel_tiles(
    head: &HeadChunk<'_>,
    scratch: &mut TileScratch,
    block: &TokenBlock,
    (p, i): (usize, usize),
    row: *mut f32,
) {
    let mut n0 = 0;
    // SAFETY (whole block): every tile lies in the channel's `ds` states.
    unsafe {
        while block.ds - n0 >= TILE * LANES {
            tile::<TILE>(head, scratch, block, (p, i), (row, n0));
            n0 += TILE * LANES;
        }
        // The rest in tiles of 8, 4, 2 and 1 vectors (each but the last
        // a whole number of eight states).
        for q in [8, 4, 2, 1] {
            if block.ds - n0 >= q * LANES {
                match q {
                    8 => tile::<8>(head, scratch, block, (p, i), (row, n0)),
                    4 => tile::<4>(head, scratch, block, (p, i), (row, n0)),
                    2 => tile::<2>(head, scratch, block, (p, i), (row, n0)),
                    _ => tile::<1>(head, scratch, block, (p, i), (row, n0)),
                }
                n0 += q * LANES;
            }
        }
    }
}

/// States `n0..n0 + 4Q` of channel `p` in `Q` registers over every token
/// of the block: per token `S = decay S + (dt b) x`, then its partial
/// sums (from the previous tile, zero for the first) `+= S c`, even
/// vectors into lanes 0..4, odd ones into lanes 4..8, in the states'
/// order, as the reference's dot product adds them.
///
/// # Safety
/// NEON is present; `n0` is a multiple of eight and `row + n0` holds `4Q`
/// states; the rows and `scratch` as [`scan_channel_tiles`] says.
#[inline(always)]
unsafe fn tile<const Q: usize>(
    head: &HeadChunk<'_>,
    scratch: &mut TileScratch,
    block: &TokenBlock,
    (p, i): (usize, usize),
    (row, n0): (*mut f32, usize),
) {
    // SAFETY (whole block): the function's contract.
    unsafe {
        let at = row.add(n0);
        let mut s = [vdupq_n_f32(0.0); Q];
        for (k, sk) in s.iter_mut().enumerate() {
            *sk = vld1q_f32(at.add(k * LANES));
        }
        let (x, c) = (head.x.data.as_ptr().add(p), head.c.data.as_ptr().add(n0));
        for t in 0..block.tokens {
            let tt = block.t0 + t;
            let xv = vdupq_n_f32(*x.add(tt * head.x.stride));
            let decay = vdupq_n_f32(scratch.decay[t]);
            let (dtb, ct) = (scratch.dtb.as_ptr().add(t * block.ds + n0), c.add(tt * head.c.stride));
            let zero = vdupq_n_f32(0.0);
            let mut dot = if n0 == 0 { [zero; 2] } else { scratch.dots[t][i] };
            for (k, sk) in s.iter_mut().enumerate() {
                *sk = vaddq_f32(vmulq_f32(decay, *sk), vmulq_f32(vld1q_f32(dtb.add(k * LANES)), xv));
                dot[k % 2] = vaddq_f32(dot[k % 2], vmulq_f32(*sk, vld1q_f32(ct.add(k * LANES))));
            }
            scratch.dots[t][i] = dot;
        }
        for (k, sk) in s.iter().enumerate() {
            vst1q_f32(at.add(k * LANES), *sk);
        }
    }
}
