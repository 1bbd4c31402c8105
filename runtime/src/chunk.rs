//! Chunk-wide work of a prefill split across workers by blocks of
//! channels, once per layer (not once per token): each block runs every
//! token of its channels, which depend only on their own past (the
//! depthwise convolution's windows, the recurrences' per-channel or
//! per-head states). Shared by the families that prefill this way.

use crate::family::Compute;
use eddy_kernels::{ConvTokens, ConvWeights, TokenRows};

/// Channels one job covers over all the tokens when several workers share
/// a layer (one worker takes every channel in one call).
pub(crate) const BLOCK_CHANNELS: usize = 128;

/// Run `job(c0, width, state, out)` over the `channels` channels of a
/// chunk of `tokens` tokens (`out` is `[tokens, channels]`, `state`
/// `state_width` words per channel) in blocks of `block` channels: with
/// one worker, one call for every channel writing `out` itself; else the
/// blocks split across the workers, each writing its outputs token-major
/// (`[tokens, width]`) into its own part of `staging` (`[tokens,
/// channels]` words), then copied into place. The job gets its channels'
/// `state` and an output of `tokens * width` words.
pub(crate) fn by_channel_blocks(
    cx: Compute<'_>,
    (channels, block, state_width): (usize, usize, usize),
    state: &mut [f32],
    staging: &mut [f32],
    out: &mut [f32],
    job: impl Fn(usize, usize, &mut [f32], &mut [f32]) + Sync,
) {
    let tokens = out.len() / channels.max(1);
    let staging = match staging.get_mut(..tokens * channels) {
        Some(staging) if cx.workers.count() > 1 && state_width > 0 => staging,
        // One worker (or no room to stage the blocks): every channel at once.
        _ => return job(0, channels, state, out),
    };
    cx.workers.for_chunk_pairs(staging, tokens * block, state, block * state_width, |i, out_block, state| {
        job(i * block, state.len() / state_width, state, out_block);
    });
    unblock_channels(staging, out, tokens, block);
}

/// Copy channel blocks (`blocked`: block `i` of `block` channels at `i *
/// tokens * block`, token-major, the last one possibly narrower) into
/// `out`, `[tokens, channels]`. Also the head blocks' gather
/// (`families/head_blocks.rs`), a block being its heads' outputs.
pub(crate) fn unblock_channels(blocked: &[f32], out: &mut [f32], tokens: usize, block: usize) {
    let channels = out.len() / tokens.max(1);
    for (b, out_block) in blocked.chunks(tokens * block).enumerate() {
        let (c0, wb) = (b * block, out_block.len() / tokens.max(1));
        for (t, src) in out_block.chunks_exact(wb.max(1)).enumerate() {
            out[t * channels + c0..t * channels + c0 + wb].copy_from_slice(src);
        }
    }
}

/// The causal conv + SiLU of a chunk's tokens: `xs` holds a row of
/// `channels` inputs per token, `out` is `[tokens, channels]`, `window`
/// the conv state (`[channels, width - 1]`). Blocks of
/// [`BLOCK_CHANNELS`] channels split across workers (see
/// [`by_channel_blocks`]; `staging` as there). The kernel set's
/// `conv_silu_tokens` equals one `conv_silu` call per token, so results
/// are bit-identical to stepping.
pub(crate) fn conv_silu_chunk(
    conv: &ConvWeights<'_>,
    xs: TokenRows<'_>,
    window: &mut [f32],
    staging: &mut [f32],
    out: &mut [f32],
    cx: Compute<'_>,
) {
    let (width, taps) = (conv.width, conv.width.saturating_sub(1));
    let channels = conv.weight.len() / width.max(1);
    if taps == 0 || channels == 0 {
        // No window to split the blocks by (width 1): token by token.
        for (t, o) in out.chunks_exact_mut(channels.max(1)).enumerate() {
            (cx.kernels.conv_silu)(conv, window, xs.row(t, channels), o);
        }
        return;
    }
    let tokens = out.len() / channels;
    // Channels `c0..c0 + wb` over every token, into `out` (`[tokens, wb]`).
    let conv_block = |c0: usize, wb: usize, window: &mut [f32], out: &mut [f32]| {
        let conv = ConvWeights {
            weight: &conv.weight[c0 * width..(c0 + wb) * width],
            bias: conv.bias.map(|b| &b[c0..c0 + wb]),
            width,
        };
        let xs = TokenRows { data: &xs.data[c0..], stride: xs.stride };
        let args = ConvTokens { conv, xs, channels: wb, tokens };
        (cx.kernels.conv_silu_tokens)(&args, window, out);
    };
    by_channel_blocks(cx, (channels, BLOCK_CHANNELS, taps), window, staging, out, conv_block);
}
