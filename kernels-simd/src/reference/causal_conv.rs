//! Short causal depthwise convolution without activation.

/// One token of a causal depthwise convolution of width `width`, no
/// activation (LFM2's short conv, RecurrentGemma's conv before the RG-LRU;
/// Mamba-1/2 and Gated DeltaNet use the fused SiLU version,
/// [`ConvSilu`](crate::ConvSilu)). `window` holds the previous `width - 1`
/// inputs per channel, oldest first; `xs` is shifted into it. Weights are
/// `[channels, width]`; `out` has one value per channel.
pub type CausalConv =
    fn(weight: &[f32], bias: Option<&[f32]>, window: &mut [f32], xs: &[f32], out: &mut [f32], width: usize);

/// The reference [`CausalConv`]: [`crate::math::causal_conv_step`].
pub fn causal_conv(
    weight: &[f32],
    bias: Option<&[f32]>,
    window: &mut [f32],
    xs: &[f32],
    out: &mut [f32],
    width: usize,
) {
    crate::math::causal_conv_step(weight, bias, window, xs, out, width);
}
