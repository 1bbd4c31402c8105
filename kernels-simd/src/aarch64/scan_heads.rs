//! NEON per-head diagonal scan (Mamba-2), bit-exact with
//! [`crate::reference::diagonal_scan_heads`]: the same operations per
//! lane, in the same order (operands too, so NaN payloads agree), no FMA.
//!
//! Per head, `dt` and the decay are one scalar each (the reference's
//! functions); the state update runs channel by channel, eight states per
//! pass in two vectors, which are the reference dot product's lanes
//! 0..4 and 4..8 (`eddy_quant::dot_f32`): `C·S` keeps its eight partial
//! sums and its pairwise reduction ([`super::scan::reduce4`]). The
//! multi-token form runs head by head, each head over every token, so a
//! head's state stays in cache across the tokens.

use super::scan::reduce4;
use crate::reference::{
    diagonal_scan_heads_by_token, each_head, each_head_token, scan_channel, HeadScanArgs, HeadScanTokens,
    HeadStep,
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

/// See [`crate::DiagonalScanHeadsTokens`]: head by head over every token
/// (the state of one head stays in cache). Runs token by token when a
/// row is short or `d_state` is not a multiple of four.
pub fn diagonal_scan_heads_tokens(args: &HeadScanTokens<'_>, state: &mut [f32], y: &mut [f32]) {
    let ds = args.d_state;
    if ds == 0 || ds % LANES != 0 || !args.complete(state, y) {
        diagonal_scan_heads_by_token(diagonal_scan_heads, args, state, y);
        return;
    }
    each_head_token(args, state, y, scan_head);
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
