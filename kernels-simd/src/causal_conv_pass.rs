//! The SIMD causal convolution without activation (LFM2, RecurrentGemma),
//! written once for every ISA over its eight-lane vector ([`KvLanes`]);
//! `#[inline(always)]`, so it is compiled inside each ISA's entry point
//! with its features. Bit-exact with [`crate::reference::causal_conv`]
//! per token.
//!
//! Eight channels per vector: their weights and windows (interleaved per
//! channel in memory) are transposed into one vector per tap once per call,
//! then every token is `width` multiplies and adds in the reference's order
//! (from 0.0, oldest tap first, the new input, then the bias; no FMA), and
//! the window shifts in registers. Widths 2 to 4 (LFM2 uses 3,
//! RecurrentGemma 4) take this path; other widths and the last
//! `channels % 8` channels run the reference (see
//! [`crate::reference::conv_tokens_by_blocks`]).

use crate::kv_pass::{KvLanes, LANES as KV_LANES};
use crate::vector::ConvTokens;

/// Channels per vector.
pub(crate) const LANES: usize = KV_LANES;
/// Widest convolution the vector path takes.
pub(crate) const MAX_WIDTH: usize = 4;

/// The first `blocks * 8` channels of the convolution, every token.
///
/// # Safety
/// The ISA's features present; the buffers hold what
/// [`crate::reference::conv_tokens_by_blocks`] checked (a width from 2 to
/// [`MAX_WIDTH`]).
#[inline(always)]
pub(crate) unsafe fn conv_blocks<V: KvLanes>(
    args: &ConvTokens<'_>,
    window: &mut [f32],
    out: &mut [f32],
    blocks: usize,
) {
    // SAFETY (all three): as this function's contract.
    unsafe {
        match args.conv.width {
            2 => conv_blocks_of::<V, 2>(args, window, out, blocks),
            3 => conv_blocks_of::<V, 3>(args, window, out, blocks),
            _ => conv_blocks_of::<V, 4>(args, window, out, blocks),
        }
    }
}

/// [`conv_blocks`] of width `W`.
///
/// # Safety
/// As [`conv_blocks`], with `W == args.conv.width`.
#[inline(always)]
unsafe fn conv_blocks_of<V: KvLanes, const W: usize>(
    args: &ConvTokens<'_>,
    window: &mut [f32],
    out: &mut [f32],
    blocks: usize,
) {
    let taps = W - 1;
    let (weight, xs) = (args.conv.weight, args.xs);
    for b in 0..blocks {
        let ch0 = b * LANES;
        // Gathered lane by lane from the `[channel, k]` layouts.
        let (mut w, mut h) = ([[0f32; LANES]; MAX_WIDTH], [[0f32; LANES]; MAX_WIDTH]);
        for i in 0..LANES {
            for k in 0..W {
                w[k][i] = weight[(ch0 + i) * W + k];
            }
            for j in 0..taps {
                h[j][i] = window[(ch0 + i) * taps + j];
            }
        }
        // SAFETY: the loads and stores cover channels `ch0..ch0 + 8` <=
        // `channels` of the bias, the input rows and the output rows the
        // driver checked, or the local arrays.
        unsafe {
            let mut wv = [V::zero(); MAX_WIDTH];
            let mut hv = [V::zero(); MAX_WIDTH];
            for k in 0..W {
                wv[k] = V::load(w[k].as_ptr());
                hv[k] = V::load(h[k].as_ptr());
            }
            // A `match`, not `Option::map`: a closure would not inherit the
            // ISA's features.
            #[allow(clippy::manual_map)]
            let bias = match args.conv.bias {
                Some(bias) => Some(V::load(bias.as_ptr().add(ch0))),
                None => None,
            };
            for t in 0..args.tokens {
                let x = V::load(xs.data.as_ptr().add(t * xs.stride + ch0));
                // The reference's sum from 0.0, in its order.
                let mut acc = V::zero();
                for j in 0..taps {
                    acc = acc.add(wv[j].mul(hv[j]));
                }
                acc = acc.add(wv[taps].mul(x));
                if let Some(bias) = bias {
                    acc = acc.add(bias);
                }
                acc.store(out.as_mut_ptr().add(t * args.channels + ch0));
                for j in 1..taps {
                    hv[j - 1] = hv[j];
                }
                hv[taps - 1] = x;
            }
            for j in 0..taps {
                hv[j].store(h[j].as_mut_ptr());
            }
        }
        for i in 0..LANES {
            for j in 0..taps {
                window[(ch0 + i) * taps + j] = h[j][i];
            }
        }
    }
}
