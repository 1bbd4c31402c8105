//! AVX2 causal convolution without activation (LFM2, RecurrentGemma), one
//! token or a prefill chunk, bit-exact with
//! [`crate::reference::causal_conv`] per token.
//!
//! Eight channels per vector: their weights and windows (interleaved per
//! channel in memory) are transposed into one vector per tap once per call,
//! then every token is `width` multiplies and adds in the reference's order
//! (from 0.0, oldest tap first, the new input, then the bias), and the
//! window shifts in registers. Widths 2 to 4 (LFM2 uses 3, RecurrentGemma
//! 4) take this path; other widths and the last `channels % 8` channels run
//! the reference.

use super::avx2_available;
use crate::reference::{conv_as_one_token, conv_tokens_by_blocks};
use crate::vector::ConvTokens;
use crate::ConvWeights;
use core::arch::x86_64::*;

/// Channels per vector.
const LANES: usize = 8;
/// Widest convolution the vector path takes.
const MAX_WIDTH: usize = 4;

/// See [`crate::CausalConv`]: the one-token case of [`causal_conv_tokens`].
pub fn causal_conv(w: &ConvWeights<'_>, window: &mut [f32], xs: &[f32], out: &mut [f32]) {
    conv_as_one_token(causal_conv_tokens, (w, window, xs, out));
}

/// See [`crate::reference::CausalConvTokens`].
pub fn causal_conv_tokens(args: &ConvTokens<'_>, window: &mut [f32], out: &mut [f32]) {
    conv_tokens_by_blocks(
        (args, window, out),
        (LANES, MAX_WIDTH, avx2_available()),
        |args, window, out, blocks| {
            // SAFETY: AVX2 was detected; the driver checked the weights,
            // bias, window and output for `channels` channels and every
            // token's input row.
            unsafe {
                match args.conv.width {
                    2 => conv_blocks::<2>(args, window, out, blocks),
                    3 => conv_blocks::<3>(args, window, out, blocks),
                    _ => conv_blocks::<4>(args, window, out, blocks),
                }
            }
        },
    );
}

/// The first `blocks * 8` channels of a width-`W` convolution, every token.
#[target_feature(enable = "avx2")]
unsafe fn conv_blocks<const W: usize>(
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
        let mut wv = [_mm256_setzero_ps(); MAX_WIDTH];
        let mut hv = [_mm256_setzero_ps(); MAX_WIDTH];
        for k in 0..W {
            wv[k] = _mm256_loadu_ps(w[k].as_ptr());
            hv[k] = _mm256_loadu_ps(h[k].as_ptr());
        }
        // A `match`, not `Option::map`: a closure would not inherit AVX2.
        #[allow(clippy::manual_map)]
        let bias = match args.conv.bias {
            Some(bias) => Some(_mm256_loadu_ps(bias.as_ptr().add(ch0))),
            None => None,
        };
        for t in 0..args.tokens {
            let x = _mm256_loadu_ps(xs.data.as_ptr().add(t * xs.stride + ch0));
            // The reference's sum from 0.0, in its order.
            let mut acc = _mm256_setzero_ps();
            for j in 0..taps {
                acc = _mm256_add_ps(acc, _mm256_mul_ps(wv[j], hv[j]));
            }
            acc = _mm256_add_ps(acc, _mm256_mul_ps(wv[taps], x));
            if let Some(bias) = bias {
                acc = _mm256_add_ps(acc, bias);
            }
            _mm256_storeu_ps(out.as_mut_ptr().add(t * args.channels + ch0), acc);
            for j in 1..taps {
                hv[j - 1] = hv[j];
            }
            hv[taps - 1] = x;
        }
        for j in 0..taps {
            _mm256_storeu_ps(h[j].as_mut_ptr(), hv[j]);
        }
        for i in 0..LANES {
            for j in 0..taps {
                window[(ch0 + i) * taps + j] = h[j][i];
            }
        }
    }
}
