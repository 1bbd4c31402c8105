//! AVX2 causal convolution + SiLU of several tokens (Mamba-1 prefill),
//! bit-exact with one [`super::scan::conv_silu`] call per token.
//!
//! The one-token kernel convolves channel by channel in scalar code (a
//! token's inputs are one per channel, so there is nothing to put side by
//! side but channels, whose weights and windows are interleaved). Over a
//! chunk, eight channels' weights and windows are transposed into vectors
//! once; then every token's convolution is four multiplies and five adds
//! for eight channels, the windows shift in registers, and SiLU follows
//! on the same vector.

use super::conv::conv_silu;
use super::scan::{exp8_each, silu8_with, LANES};
use crate::vector::{conv_silu_by_token, ConvTokens};
use core::arch::x86_64::*;

/// The convolution width the vector path takes (Mamba's); others run the
/// one-token kernel per token.
const WIDTH: usize = 4;
/// Window values per channel.
const TAPS: usize = WIDTH - 1;
/// Tokens whose SiLUs are evaluated side by side.
const TOKEN_BLOCK: usize = 8;

/// See [`crate::vector::ConvSiluTokens`].
pub fn conv_silu_tokens(args: &ConvTokens<'_>, window: &mut [f32], out: &mut [f32]) {
    let (channels, tokens) = (args.channels, args.tokens);
    let conv = &args.conv;
    let fits = conv.width == WIDTH
        && conv.weight.len() >= WIDTH * channels
        && window.len() >= TAPS * channels
        && conv.bias.is_none_or(|b| b.len() >= channels)
        && args.xs.holds(tokens, channels)
        && channels.checked_mul(tokens).is_some_and(|n| n <= out.len());
    if !fits || !super::avx2_available() {
        conv_silu_by_token(conv_silu, args, window, out);
        return;
    }
    let blocks = channels / LANES;
    // SAFETY: AVX2 was detected; `fits` checked the weights, bias, window
    // and output for `channels` channels and every token's input row.
    unsafe { conv_blocks(args, window, out, blocks) };
    let done = blocks * LANES;
    if done < channels {
        // The last `channels % 8` channels, token by token (channels are
        // independent, so the order does not matter).
        for t in 0..tokens {
            let x = &args.xs.row(t, channels)[done..];
            let o = &mut out[t * channels + done..(t + 1) * channels];
            crate::math::causal_conv_silu_step(&conv.from_channel(done), &mut window[done * TAPS..], x, o);
        }
    }
}

/// Blocks of eight channels swept together, token tile by token tile: 64
/// channels are four whole cache lines of every input and two of every
/// output row. (One block over every token before the next used half a
/// line per row and fetched each input line twice: memory-bound.)
const GROUP_BLOCKS: usize = 8;

/// One block's weights (weight `k` of its eight channels per vector) and
/// window (oldest first), carried from tile to tile.
#[derive(Clone, Copy)]
struct BlockConv {
    /// Weights, one vector per tap.
    w: [__m256; WIDTH],
    /// The last `TAPS` inputs.
    h: [__m256; TAPS],
}

/// The first `blocks * 8` channels, every token.
#[target_feature(enable = "avx2")]
unsafe fn conv_blocks(args: &ConvTokens<'_>, window: &mut [f32], out: &mut [f32], blocks: usize) {
    let zero = _mm256_setzero_ps();
    let mut group = [BlockConv { w: [zero; WIDTH], h: [zero; TAPS] }; GROUP_BLOCKS];
    for first in (0..blocks).step_by(GROUP_BLOCKS) {
        let count = GROUP_BLOCKS.min(blocks - first);
        for (g, conv) in group.iter_mut().enumerate().take(count) {
            let ch0 = (first + g) * LANES;
            // Gathered lane by lane from the `[channel, k]` layouts.
            let (mut w, mut win) = ([[0f32; LANES]; WIDTH], [[0f32; LANES]; TAPS]);
            for i in 0..LANES {
                for (k, wk) in w.iter_mut().enumerate() {
                    wk[i] = args.conv.weight[(ch0 + i) * WIDTH + k];
                }
                for (j, wj) in win.iter_mut().enumerate() {
                    wj[i] = window[(ch0 + i) * TAPS + j];
                }
            }
            for (v, wk) in conv.w.iter_mut().zip(&w) {
                *v = _mm256_loadu_ps(wk.as_ptr());
            }
            for (v, wj) in conv.h.iter_mut().zip(&win) {
                *v = _mm256_loadu_ps(wj.as_ptr());
            }
        }
        let mut t0 = 0;
        while t0 < args.tokens {
            let tb = TOKEN_BLOCK.min(args.tokens - t0);
            for (g, conv) in group.iter_mut().enumerate().take(count) {
                conv_tile(args, conv, (first + g) * LANES, t0, tb, out);
            }
            t0 += tb;
        }
        for (g, conv) in group.iter().enumerate().take(count) {
            let ch0 = (first + g) * LANES;
            let mut win = [[0f32; LANES]; TAPS];
            for (wj, v) in win.iter_mut().zip(conv.h) {
                _mm256_storeu_ps(wj.as_mut_ptr(), v);
            }
            for i in 0..LANES {
                for (j, wj) in win.iter().enumerate() {
                    window[(ch0 + i) * TAPS + j] = wj[i];
                }
            }
        }
    }
}

/// Tokens `t0..t0 + tb` of the eight channels from `ch0`: the convolutions,
/// then their SiLUs' `exp`s side by side (one token's SiLU after another
/// left the out-of-order core waiting on each `exp` chain).
#[inline(always)]
unsafe fn conv_tile(
    args: &ConvTokens<'_>,
    conv: &mut BlockConv,
    ch0: usize,
    t0: usize,
    tb: usize,
    out: &mut [f32],
) {
    let [w0, w1, w2, w3] = conv.w;
    let [mut h0, mut h1, mut h2] = conv.h;
    // A `match`, not `Option::map`: a closure would not inherit AVX2 and
    // would call its intrinsic.
    #[allow(clippy::manual_map)]
    let bias = match args.conv.bias {
        Some(b) => Some(_mm256_loadu_ps(b.as_ptr().add(ch0))),
        None => None,
    };
    let (mut acc, mut neg) = ([_mm256_setzero_ps(); TOKEN_BLOCK], [_mm256_setzero_ps(); TOKEN_BLOCK]);
    for t in 0..tb {
        let x = _mm256_loadu_ps(args.xs.data.as_ptr().add((t0 + t) * args.xs.stride + ch0));
        // The reference's sum from 0.0, in its order.
        let mut a = _mm256_add_ps(_mm256_setzero_ps(), _mm256_mul_ps(w0, h0));
        a = _mm256_add_ps(a, _mm256_mul_ps(w1, h1));
        a = _mm256_add_ps(a, _mm256_mul_ps(w2, h2));
        a = _mm256_add_ps(a, _mm256_mul_ps(w3, x));
        if let Some(b) = bias {
            a = _mm256_add_ps(a, b);
        }
        (h0, h1, h2) = (h1, h2, x);
        acc[t] = a;
        neg[t] = _mm256_xor_ps(a, _mm256_set1_ps(-0.0));
    }
    conv.h = [h0, h1, h2];
    let e = exp8_each(neg);
    for t in 0..tb {
        let o = out.as_mut_ptr().add((t0 + t) * args.channels + ch0);
        _mm256_storeu_ps(o, silu8_with(acc[t], e[t]));
    }
}
