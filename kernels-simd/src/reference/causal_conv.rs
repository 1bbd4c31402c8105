//! Short causal depthwise convolution without activation, and the
//! weights every causal convolution takes.

/// A causal depthwise convolution's parameters: `width` taps per channel.
#[derive(Clone, Copy, Debug)]
pub struct ConvWeights<'w> {
    /// Weights, `[channels, width]`, row-major (oldest tap first).
    pub weight: &'w [f32],
    /// Optional bias, one per channel.
    pub bias: Option<&'w [f32]>,
    /// Taps per channel (`d_conv`).
    pub width: usize,
}

impl<'w> ConvWeights<'w> {
    /// True if the convolution has `taps` taps and `window`, `xs` and the
    /// weights hold `channels` channels (`xs` exactly): what a SIMD kernel
    /// for that width needs before it takes the call.
    #[inline]
    pub fn fits(&self, taps: usize, window: &[f32], xs: &[f32], channels: usize) -> bool {
        self.width == taps
            && xs.len() == channels
            && self.weight.len() >= taps * channels
            && window.len() >= taps.saturating_sub(1) * channels
            && self.bias.is_none_or(|b| b.len() >= channels)
    }

    /// The channels from `first` on (as the weights of a convolution that
    /// starts there).
    #[inline]
    pub fn from_channel(&self, first: usize) -> Self {
        ConvWeights {
            weight: &self.weight[first * self.width..],
            bias: self.bias.map(|b| &b[first..]),
            width: self.width,
        }
    }
}

/// One token of a causal depthwise convolution, no activation (LFM2's
/// short conv, RecurrentGemma's conv before the RG-LRU; Mamba-1/2 and
/// Gated DeltaNet use the fused SiLU version, [`ConvSilu`](crate::ConvSilu)).
/// `window` holds the previous `width - 1` inputs per channel, oldest
/// first; `xs` is shifted into it. `out` has one value per channel.
pub type CausalConv = fn(w: &ConvWeights<'_>, window: &mut [f32], xs: &[f32], out: &mut [f32]);

/// The reference [`CausalConv`]: [`crate::math::causal_conv_step`].
pub fn causal_conv(w: &ConvWeights<'_>, window: &mut [f32], xs: &[f32], out: &mut [f32]) {
    crate::math::causal_conv_step(w, window, xs, out);
}

/// Several tokens of [`CausalConv`] (a prefill chunk), exactly `tokens`
/// calls of the set's [`CausalConv`] in order: token `t` with input row
/// `xs.row(t, channels)` and output `out[t * channels..(t + 1) *
/// channels]`, `window` carried over as between those calls. One call per
/// chunk (and channel block) lets a kernel keep the windows in registers.
pub type CausalConvTokens = fn(args: &crate::vector::ConvTokens<'_>, window: &mut [f32], out: &mut [f32]);

/// The reference [`CausalConvTokens`]: one [`causal_conv`] per token.
pub fn causal_conv_tokens(args: &crate::vector::ConvTokens<'_>, window: &mut [f32], out: &mut [f32]) {
    crate::vector::conv_silu_by_token(causal_conv, args, window, out);
}

/// A [`CausalConv`] as the one-token case of a [`CausalConvTokens`]
/// (`out` as long as `xs`; else the reference runs, with its own handling
/// of ragged lengths).
#[cfg_attr(not(any(target_arch = "x86_64", target_arch = "aarch64")), allow(dead_code))]
pub(crate) fn conv_as_one_token(
    tokens_conv: CausalConvTokens,
    (w, window, xs, out): (&ConvWeights<'_>, &mut [f32], &[f32], &mut [f32]),
) {
    let channels = xs.len();
    if out.len() != channels {
        causal_conv(w, window, xs, out);
        return;
    }
    let xs = crate::vector::TokenRows { data: xs, stride: channels };
    tokens_conv(&crate::vector::ConvTokens { conv: *w, xs, channels, tokens: 1 }, window, out);
}

/// The driver of a SIMD [`CausalConvTokens`] that convolves blocks of
/// `lanes` channels for widths `2..=max_width`: when every buffer holds
/// what the call says and `usable` (the CPU runs the kernel),
/// `blocks(args, window, out, block_count)` takes the first `block_count *
/// lanes` channels and the reference the rest, token by token; otherwise
/// the reference runs the whole call.
#[cfg_attr(not(any(target_arch = "x86_64", target_arch = "aarch64")), allow(dead_code))]
pub(crate) fn conv_tokens_by_blocks(
    (args, window, out): (&crate::vector::ConvTokens<'_>, &mut [f32], &mut [f32]),
    (lanes, max_width, usable): (usize, usize, bool),
    blocks: impl FnOnce(&crate::vector::ConvTokens<'_>, &mut [f32], &mut [f32], usize),
) {
    let (channels, tokens, conv) = (args.channels, args.tokens, &args.conv);
    let width = conv.width;
    let fits = (2..=max_width).contains(&width)
        && conv.weight.len() >= width * channels
        && window.len() >= (width - 1) * channels
        && conv.bias.is_none_or(|b| b.len() >= channels)
        && args.xs.holds(tokens, channels)
        && channels.checked_mul(tokens).is_some_and(|n| n <= out.len());
    if !fits || !usable {
        crate::vector::conv_silu_by_token(causal_conv, args, window, out);
        return;
    }
    let count = channels / lanes.max(1);
    blocks(args, window, out, count);
    let done = count * lanes;
    if done < channels {
        // The last channels, token by token (channels are independent).
        let taps = width - 1;
        for t in 0..tokens {
            let x = &args.xs.row(t, channels)[done..];
            let o = &mut out[t * channels + done..(t + 1) * channels];
            crate::math::causal_conv_step(&conv.from_channel(done), &mut window[done * taps..], x, o);
        }
    }
}
