//! AVX2 per-head diagonal scan (Mamba-2), bit-exact with
//! [`crate::reference::diagonal_scan_heads`]: the same operations per
//! lane, in the same order, no FMA.
//!
//! Per head, `dt` and the decay are one scalar each (the reference's
//! functions); the state update runs eight states per vector, channel by
//! channel. The `C·S` dot products keep the reference's eight partial
//! sums per channel and reduce eight channels together in its pairwise
//! order. The multi-token form runs head by head, each head over every
//! token, so a head's state (`head_dim * d_state` values, 32 KiB for
//! Mamba-2's 64 x 128) stays in cache across the tokens.

use super::{avx2_available, reduce_lanes8};
use crate::reference::{
    diagonal_scan_heads_by_token, each_head, each_head_token, scan_channel, HeadScanArgs, HeadScanTokens,
    HeadStep,
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

/// See [`crate::DiagonalScanHeadsTokens`]: head by head over every token
/// (the state of one head stays in cache). Runs token by token when a
/// row is short, `d_state` is not a multiple of eight or the CPU lacks
/// AVX2.
pub fn diagonal_scan_heads_tokens(args: &HeadScanTokens<'_>, state: &mut [f32], y: &mut [f32]) {
    let ds = args.d_state;
    if ds == 0 || ds % LANES != 0 || !args.complete(state, y) || !avx2_available() {
        diagonal_scan_heads_by_token(diagonal_scan_heads, args, state, y);
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
