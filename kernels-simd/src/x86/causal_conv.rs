//! AVX2 causal convolution without activation (LFM2, RecurrentGemma), one
//! token or a prefill chunk: the shared pass
//! ([`crate::causal_conv_pass`]) on `__m256`.

use super::avx2_available;
use crate::causal_conv_pass::{self, LANES, MAX_WIDTH};
use crate::reference::{conv_as_one_token, conv_tokens_by_blocks};
use crate::vector::ConvTokens;
use crate::ConvWeights;
use core::arch::x86_64::*;

/// See [`crate::CausalConv`]: the one-token case of [`causal_conv_tokens`].
pub fn causal_conv(w: &ConvWeights<'_>, window: &mut [f32], xs: &[f32], out: &mut [f32]) {
    conv_as_one_token(causal_conv_tokens, (w, window, xs, out));
}

/// See [`crate::reference::CausalConvTokens`].
pub fn causal_conv_tokens(args: &ConvTokens<'_>, window: &mut [f32], out: &mut [f32]) {
    conv_tokens_by_blocks(
        (args, window, out),
        (LANES, MAX_WIDTH, avx2_available()),
        // SAFETY: AVX2 was detected; the driver checked the buffers.
        |args, window, out, blocks| unsafe { conv_blocks(args, window, out, blocks) },
    );
}

/// [`causal_conv_pass::conv_blocks`] compiled with AVX2.
#[target_feature(enable = "avx2")]
unsafe fn conv_blocks(args: &ConvTokens<'_>, window: &mut [f32], out: &mut [f32], blocks: usize) {
    // SAFETY: AVX2 is enabled here; the buffers per the caller.
    unsafe { causal_conv_pass::conv_blocks::<__m256>(args, window, out, blocks) }
}
