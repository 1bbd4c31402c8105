//! NEON causal convolution + SiLU, bit-exact with
//! [`crate::math::causal_conv_silu_step`].

use super::scan::silu4;
use crate::ConvWeights;
use core::arch::aarch64::*;

/// Lanes per vector.
const LANES: usize = 4;

/// See [`crate::ConvSilu`]; bit-exact with
/// [`crate::math::causal_conv_silu_step`]. Width 4 (Mamba's) runs four
/// channels per pass: `ld4`/`ld3` split the weights and the window into
/// one vector per tap, the reference's sums run in its order (from 0.0, so
/// a -0.0 product gives +0.0 as there), SiLU follows and `st3` writes the
/// shifted window back. Other widths, a ragged last `channels % 4` and
/// short buffers run the reference.
pub fn conv_silu(w: &ConvWeights<'_>, window: &mut [f32], xs: &[f32], out: &mut [f32]) {
    let n = out.len();
    if !w.fits(4, window, xs, n) {
        crate::math::causal_conv_silu_step(w, window, xs, out);
        return;
    }
    let done = n / LANES * LANES;
    // SAFETY: NEON is present (this module compiles only with it); the
    // checks above give every slice room for `done` channels.
    unsafe { conv_silu_blocks(w.weight, w.bias, window, xs, out, done) };
    let rest = w.from_channel(done);
    crate::math::causal_conv_silu_step(&rest, &mut window[3 * done..], &xs[done..], &mut out[done..]);
}

/// The first `channels` (a multiple of four) channels of a width-4
/// convolution + SiLU.
///
/// # Safety
/// NEON must be present; `weight` holds `4 * channels` values, `window`
/// `3 * channels`, `xs`, `out` and `bias` (if any) `channels`.
unsafe fn conv_silu_blocks(
    weight: &[f32],
    bias: Option<&[f32]>,
    window: &mut [f32],
    xs: &[f32],
    out: &mut [f32],
    channels: usize,
) {
    let zero = vdupq_n_f32(0.0);
    for ch in (0..channels).step_by(LANES) {
        // SAFETY: channels `ch..ch + 4` lie inside every slice (see the
        // function's contract): 16 weights, 12 window values, 4 of the rest.
        unsafe {
            let w = vld4q_f32(weight.as_ptr().add(4 * ch));
            let win_at = window.as_mut_ptr().add(3 * ch);
            let win = vld3q_f32(win_at);
            let x = vld1q_f32(xs.as_ptr().add(ch));
            let mut acc = vaddq_f32(zero, vmulq_f32(w.0, win.0));
            acc = vaddq_f32(acc, vmulq_f32(w.1, win.1));
            acc = vaddq_f32(acc, vmulq_f32(w.2, win.2));
            acc = vaddq_f32(acc, vmulq_f32(w.3, x));
            if let Some(b) = bias {
                acc = vaddq_f32(acc, vld1q_f32(b.as_ptr().add(ch)));
            }
            vst1q_f32(out.as_mut_ptr().add(ch), silu4(acc));
            vst3q_f32(win_at, float32x4x3_t(win.1, win.2, x));
        }
    }
}

/// See [`crate::vector::ConvSiluTokens`]: this set's one-token convolution,
/// token by token.
pub fn conv_silu_tokens(args: &crate::ConvTokens<'_>, window: &mut [f32], out: &mut [f32]) {
    crate::vector::conv_silu_by_token(conv_silu, args, window, out);
}
