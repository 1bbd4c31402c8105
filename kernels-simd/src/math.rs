//! Scalar f32 functions of the recurrent layers, written branch-free (or
//! with selects) so that a SIMD kernel can evaluate exactly the same
//! operations lane by lane and match them bit for bit. No FMA: Rust never
//! contracts `a * b + c`, and the SIMD versions keep multiply and add
//! apart too.

use crate::ConvWeights;

/// `8 log2(e)`: [`exp_fast`] reduces its argument by eighths of an octave.
pub(crate) const LOG2E_8: f32 = 11.541_56;
/// `ln 2 / 8` split in a high part with 12 trailing zero bits (so `m *
/// LN2_8_HI` is exact for every `|m| <= 1016` the clamp allows) and a low
/// part.
pub(crate) const LN2_8_HI: f32 = 0.086_639_404;
/// See [`LN2_8_HI`].
pub(crate) const LN2_8_LO: f32 = 3.993_273e-6;
/// Adding and subtracting 1.5 * 2^23 rounds an f32 to the nearest integer.
pub(crate) const ROUND: f32 = 12_582_912.0;
/// Clamp range of [`exp_fast`]'s argument.
pub(crate) const EXP_MIN: f32 = -87.0;
/// See [`EXP_MIN`].
pub(crate) const EXP_MAX: f32 = 88.0;
/// `e^r ≈ 1 + r + c2 r² + c3 r³` on `|r| <= ln2 / 16`, fitted for the least
/// largest relative error (2.6e-8 before rounding; Taylor's 1/2, 1/6 give
/// 1.5e-7).
pub(crate) const EXP_C: [f32; 2] = [0.500_064_5, 0.166_668_58];
/// Bits of `2^(k/8)` for `k` in 0..8, each rounded to nearest.
pub(crate) const EXP2_EIGHTHS: [u32; 8] =
    [0x3f80_0000, 0x3f8b_95c2, 0x3f98_37f0, 0x3fa5_fed7, 0x3fb5_04f3, 0x3fc5_672a, 0x3fd7_44fd, 0x3fea_c0c7];
/// [`EXP2_EIGHTHS`] with `k << 20` taken off entry `k`, for SIMD versions
/// of [`exp_fast`]: `bits << 20` is `(n << 23) + (k << 20)` (mod 2^32), so
/// adding it unmasked to the biased entry gives exactly the reference's
/// `EXP2_EIGHTHS[k] + ((bits << 20) & EXP_FIELD)`, one operation fewer.
#[cfg_attr(not(any(target_arch = "x86_64", target_arch = "aarch64", eddy_mve_fp)), allow(dead_code))]
pub(crate) const EXP2_EIGHTHS_BIASED: [u32; 8] = {
    let mut table = EXP2_EIGHTHS;
    let mut k = 0;
    while k < 8 {
        table[k] = table[k].wrapping_sub((k as u32) << 20);
        k += 1;
    }
    table
};
/// Sign and exponent bits of an f32: where `n << 23` lands in [`exp_fast`].
pub(crate) const EXP_FIELD: u32 = 0xff80_0000;

/// `e^x` in branch-free f32 arithmetic that vectorizes (the scan calls it
/// `d_inner * d_state` times per layer and token; `libm::expf` is a call
/// per value). Range reduction `x = (8n + k) ln2/8 + r` with `|r| <= ln2/16`,
/// `2^(k/8)` from an 8-entry table (one register-wide permute in SIMD)
/// and a degree-3 polynomial for `e^r`: relative error below 3e-7 (about
/// 2 ulp) over the clamped range [-87, 88], with 7 multiplies where a
/// Taylor polynomial over a whole-octave reduction needed 10. Inputs below
/// give e^-87 (~1.6e-38), above e^88; NaN stays NaN.
#[inline(always)]
pub fn exp_fast(x: f32) -> f32 {
    let x = x.clamp(EXP_MIN, EXP_MAX);
    let t = x * LOG2E_8 + ROUND;
    let m = t - ROUND;
    let r = (x - m * LN2_8_HI) - m * LN2_8_LO;
    let [c2, c3] = EXP_C;
    let p = 1.0 + r * (1.0 + r * (c2 + r * c3));
    // `t`'s low mantissa bits hold m = 8n + k in two's complement (|m| <=
    // 1016 after the clamp): k indexes the table, and `bits << 20` puts n
    // in the exponent field, which adding to 2^(k/8)'s bits multiplies it
    // by 2^n (n >= -126 keeps the sum a normal number). Integer-only work
    // that vectorizes, unlike a saturating float-to-int cast.
    let bits = t.to_bits();
    let scale = EXP2_EIGHTHS[(bits & 7) as usize].wrapping_add((bits << 20) & EXP_FIELD);
    p * f32::from_bits(scale)
}

/// √2, where [`log1p_unit`] halves its argument.
pub(crate) const SQRT_2: f32 = core::f32::consts::SQRT_2;
/// `ln 2`.
pub(crate) const LN_2: f32 = core::f32::consts::LN_2;
/// Odd-series coefficients of `atanh(s) / s - 1` in `s²` (1/3 .. 1/9).
pub(crate) const ATANH_C: [f32; 4] = [1.0 / 3.0, 1.0 / 5.0, 1.0 / 7.0, 1.0 / 9.0];

/// `ln(1 + y)` for `y` in [0, 1] (what softplus needs) with selects only:
/// `u = 1 + y` rounded, `ln u = k ln2 + 2 atanh((m - 1) / (m + 1))` with
/// `m = u` or `u / 2` in [0.71, 1.42] (five terms of the series suffice:
/// |s| <= 0.172), plus `(y - (u - 1)) / u` for the rounding of `1 + y`.
/// Within 3e-7 relative of the exact value (tested); NaN stays NaN.
#[inline(always)]
pub fn log1p_unit(y: f32) -> f32 {
    let u = 1.0 + y;
    let rounding = (y - (u - 1.0)) / u;
    let halve = u > SQRT_2;
    let m = if halve { u * 0.5 } else { u };
    let k = if halve { LN_2 } else { 0.0 };
    let s = (m - 1.0) / (m + 1.0);
    let s2 = s * s;
    let [c3, c5, c7, c9] = ATANH_C;
    let p = s2 * (c3 + s2 * (c5 + s2 * (c7 + s2 * c9)));
    let two_s = s + s;
    k + ((two_s + two_s * p) + rounding)
}

/// Softplus `ln(1 + e^x)` with PyTorch's default threshold (linear above
/// 20), as `max(x, 0) + ln(1 + e^-|x|)` (no overflow, and the log's
/// argument stays in [1, 2]). Within 4e-7 relative (tested); NaN stays
/// NaN.
#[inline(always)]
pub fn softplus(x: f32) -> f32 {
    let positive = if x > 0.0 { x } else { 0.0 };
    let soft = positive + log1p_unit(exp_fast(-x.abs()));
    if x > 20.0 {
        x
    } else {
        soft
    }
}

/// SiLU (swish): `x * sigmoid(x)`, as `x / (1 + e^-x)`.
#[inline(always)]
pub fn silu(x: f32) -> f32 {
    x / (1.0 + exp_fast(-x))
}

/// Logistic sigmoid `1 / (1 + e^-x)`.
#[inline]
pub fn sigmoid(x: f32) -> f32 {
    1.0 / (1.0 + exp_fast(-x))
}

/// Hyperbolic tangent (libm: accurate to an ulp; RNN gates saturate it).
#[inline]
pub fn tanh(x: f32) -> f32 {
    libm::tanhf(x)
}

/// GELU with the tanh approximation (PyTorch `gelu(approximate="tanh")`).
#[inline]
pub fn gelu_tanh(x: f32) -> f32 {
    const SQRT_2_OVER_PI: f32 = 0.797_884_6;
    0.5 * x * (1.0 + libm::tanhf(SQRT_2_OVER_PI * (x + 0.044_715 * x * x * x)))
}

/// One token of a causal depthwise convolution (no activation). `window`
/// holds the previous `w.width - 1` inputs per channel, oldest first; `xs`
/// (the new inputs) is shifted into it.
pub fn causal_conv_step(w: &ConvWeights<'_>, window: &mut [f32], xs: &[f32], out: &mut [f32]) {
    let ConvWeights { weight, bias, width } = *w;
    let keep = width - 1;
    for (ch, o) in out.iter_mut().enumerate() {
        let win = &mut window[ch * keep..(ch + 1) * keep];
        let kw = &weight[ch * width..(ch + 1) * width];
        let mut acc = 0.0f32;
        for k in 0..keep {
            acc += kw[k] * win[k];
        }
        acc += kw[keep] * xs[ch];
        if let Some(b) = bias {
            acc += b[ch];
        }
        *o = acc;
        if keep > 0 {
            // Element moves, not `copy_within`: a `memmove` call per
            // channel of three floats cost more than the arithmetic.
            for k in 1..keep {
                win[k - 1] = win[k];
            }
            win[keep - 1] = xs[ch];
        }
    }
}

/// [`causal_conv_step`], then SiLU (Mamba's convolution).
pub fn causal_conv_silu_step(w: &ConvWeights<'_>, window: &mut [f32], xs: &[f32], out: &mut [f32]) {
    causal_conv_step(w, window, xs, out);
    for o in out.iter_mut().take(xs.len()) {
        *o = silu(*o);
    }
}

/// Inputs the SIMD `exp`/softplus/SiLU tests compare with the scalar
/// functions bit for bit: a sweep, the clamp and softplus thresholds,
/// subnormals, infinities, NaNs with payloads and signs, padded with 0.5
/// to a multiple of `lanes`.
#[cfg(test)]
pub(crate) fn special_inputs(lanes: usize) -> std::vec::Vec<f32> {
    let mut xs: std::vec::Vec<f32> = (-4000..4000).map(|i| i as f32 * 0.0311).collect();
    xs.extend([0.0, -0.0, 20.0, 20.000002, 87.9, -86.9, 1e-30, -1e-30, f32::INFINITY, f32::NEG_INFINITY]);
    xs.extend([f32::NAN, -f32::NAN, 1000.0, -1000.0, f32::MIN_POSITIVE, 3e-39, -3e-39, 88.0, -87.0]);
    xs.extend([f32::from_bits(0x7fc0_1234), f32::from_bits(0xffa0_0001), f32::MAX, f32::MIN]);
    while xs.len() % lanes.max(1) != 0 {
        xs.push(0.5);
    }
    xs
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exp_fast_is_within_3e7_relative() {
        let mut worst = 0.0f64;
        let mut x = -87.0f32;
        while x <= 88.0 {
            let want = (x as f64).exp();
            let got = exp_fast(x) as f64;
            worst = worst.max(((got - want) / want).abs());
            x += 0.00137;
        }
        assert!(worst < 3e-7, "worst relative error {worst:e}");
        assert!(exp_fast(f32::NAN).is_nan());
        assert!(exp_fast(-1000.0) > 0.0 && exp_fast(-1000.0) < 1e-37);
        assert!(exp_fast(1000.0).is_finite());
        assert_eq!(exp_fast(0.0), 1.0);
    }

    #[test]
    fn log1p_unit_is_within_3e7_relative() {
        let mut worst = 0.0f64;
        for i in 0..=2_000_000u32 {
            let y = i as f32 / 2_000_000.0;
            let want = (y as f64).ln_1p();
            let got = log1p_unit(y) as f64;
            let err = if want == 0.0 { got.abs() } else { ((got - want) / want).abs() };
            worst = worst.max(err);
        }
        // Tiny arguments: ln(1 + y) = y to f32 precision.
        for y in [1e-30f32, 1e-20, 1e-10, 1e-7, 3e-5] {
            let want = (y as f64).ln_1p();
            worst = worst.max(((log1p_unit(y) as f64 - want) / want).abs());
        }
        assert!(worst < 3e-7, "worst relative error {worst:e}");
        assert!(log1p_unit(f32::NAN).is_nan());
    }

    #[test]
    fn softplus_is_within_4e7_relative() {
        let mut worst = 0.0f64;
        let mut x = -80.0f32;
        while x <= 30.0 {
            let xd = x as f64;
            let want = if xd > 20.0 { xd } else { xd.max(0.0) + (-xd.abs()).exp().ln_1p() };
            let got = softplus(x) as f64;
            worst = worst.max(((got - want) / want).abs());
            x += 0.000_917;
        }
        assert!(worst < 4e-7, "worst relative error {worst:e}");
        assert!(softplus(f32::NAN).is_nan());
        assert_eq!(softplus(25.0), 25.0);
        assert!(softplus(f32::NEG_INFINITY) >= 0.0);
    }

    #[test]
    fn silu_matches_its_definition() {
        for x in [-10.0f32, -1.0, -0.1, 0.0, 0.3, 2.0, 15.0] {
            let want = x as f64 / (1.0 + (-(x as f64)).exp());
            assert!((silu(x) as f64 - want).abs() <= 1e-6 * want.abs().max(1e-6), "silu({x})");
        }
    }
}
