//! AVX2 causal convolution + SiLU of one token, bit-exact with
//! [`crate::math::causal_conv_silu_step`].

use super::avx2_available;
use super::scan::{silu8, LANES};
use crate::ConvWeights;
use core::arch::x86_64::*;

/// See [`crate::ConvSilu`]; bit-exact with
/// [`crate::math::causal_conv_silu_step`]. Width 4 (Mamba's) runs a
/// straight-line convolution per channel (the reference's sums in its
/// order) and SiLU eight channels at a time; other widths run the
/// reference.
pub fn conv_silu(w: &ConvWeights<'_>, window: &mut [f32], xs: &[f32], out: &mut [f32]) {
    if !w.fits(4, window, xs, out.len()) || !avx2_available() {
        crate::math::causal_conv_silu_step(w, window, xs, out);
        return;
    }
    let ConvWeights { weight, bias, .. } = *w;
    for (ch, ((o, &x), (kw, win))) in
        out.iter_mut().zip(xs).zip(weight.chunks_exact(4).zip(window.chunks_exact_mut(3))).enumerate()
    {
        let mut acc = 0.0f32;
        acc += kw[0] * win[0];
        acc += kw[1] * win[1];
        acc += kw[2] * win[2];
        acc += kw[3] * x;
        if let Some(b) = bias {
            acc += b[ch];
        }
        *o = acc;
        win[0] = win[1];
        win[1] = win[2];
        win[2] = x;
    }
    // SAFETY: AVX2 was detected.
    unsafe { silu_in_place(out) };
}

/// `v = silu(v)` for every value.
#[target_feature(enable = "avx2")]
unsafe fn silu_in_place(v: &mut [f32]) {
    let mut chunks = v.chunks_exact_mut(LANES);
    for c in &mut chunks {
        _mm256_storeu_ps(c.as_mut_ptr(), silu8(_mm256_loadu_ps(c.as_ptr())));
    }
    for x in chunks.into_remainder() {
        *x = crate::math::silu(*x);
    }
}
