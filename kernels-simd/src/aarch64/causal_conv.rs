//! NEON causal convolution without activation (LFM2, RecurrentGemma), one
//! token or a prefill chunk: the shared pass
//! ([`crate::causal_conv_pass`]) on the eight-lane [`Lanes`] (two
//! `float32x4_t`).

use super::kv::Lanes;
use crate::causal_conv_pass::{self, LANES, MAX_WIDTH};
use crate::reference::{conv_as_one_token, conv_tokens_by_blocks};
use crate::vector::ConvTokens;
use crate::ConvWeights;

/// See [`crate::CausalConv`]: the one-token case of [`causal_conv_tokens`].
pub fn causal_conv(w: &ConvWeights<'_>, window: &mut [f32], xs: &[f32], out: &mut [f32]) {
    conv_as_one_token(causal_conv_tokens, (w, window, xs, out));
}

/// See [`crate::reference::CausalConvTokens`].
pub fn causal_conv_tokens(args: &ConvTokens<'_>, window: &mut [f32], out: &mut [f32]) {
    conv_tokens_by_blocks((args, window, out), (LANES, MAX_WIDTH, true), |args, window, out, blocks| {
        // SAFETY: NEON is present on every CPU this module compiles for;
        // the driver checked the buffers.
        unsafe { causal_conv_pass::conv_blocks::<Lanes>(args, window, out, blocks) }
    });
}
