//! Elementwise f32 operations shared by all layers (scalar reference).

/// RMSNorm: `out = x / sqrt(mean(x^2) + eps) * weight`.
pub fn rms_norm(x: &[f32], weight: &[f32], eps: f32, out: &mut [f32]) {
    let mut ss = 0.0f32;
    for v in x {
        ss += v * v;
    }
    let inv = 1.0 / libm::sqrtf(ss / x.len() as f32 + eps);
    for ((o, v), w) in out.iter_mut().zip(x).zip(weight) {
        *o = w * (v * inv);
    }
}

/// [`rms_norm`] of `x` into itself (per-head query/key norms).
pub fn rms_norm_in_place(x: &mut [f32], weight: &[f32], eps: f32) {
    let mut ss = 0.0f32;
    for v in x.iter() {
        ss += v * v;
    }
    let inv = 1.0 / libm::sqrtf(ss / x.len() as f32 + eps);
    for (v, w) in x.iter_mut().zip(weight) {
        *v = w * (*v * inv);
    }
}

/// LayerNorm (PyTorch `nn.LayerNorm`): `(x - mean) / sqrt(var + eps) *
/// weight + bias`, biased variance.
pub fn layer_norm(x: &[f32], weight: &[f32], bias: &[f32], eps: f32, out: &mut [f32]) {
    let n = x.len() as f32;
    let mean = x.iter().sum::<f32>() / n;
    let var = x.iter().map(|v| (v - mean) * (v - mean)).sum::<f32>() / n;
    let inv = 1.0 / libm::sqrtf(var + eps);
    for (((o, v), w), b) in out.iter_mut().zip(x).zip(weight).zip(bias) {
        *o = (v - mean) * inv * w + b;
    }
}

/// Gated RMSNorm of Mamba-2 (gate before norm): `v = x * silu(gate)`,
/// then each group of `group` values is RMS-normalized and scaled by
/// `weight`. Written in place over `x`.
pub fn gated_group_rms_norm(x: &mut [f32], gate: &[f32], weight: &[f32], group: usize, eps: f32) {
    for (v, g) in x.iter_mut().zip(gate) {
        *v *= silu(*g);
    }
    for (xs, ws) in x.chunks_exact_mut(group).zip(weight.chunks_exact(group)) {
        let mut ss = 0.0f32;
        for v in xs.iter() {
            ss += v * v;
        }
        let inv = 1.0 / libm::sqrtf(ss / group as f32 + eps);
        for (v, w) in xs.iter_mut().zip(ws) {
            *v = w * (*v * inv);
        }
    }
}

// `exp_fast`, `silu` and `softplus` live with the kernels, whose SIMD
// versions must reproduce them bit for bit.
pub use eddy_kernels::math::{exp_fast, silu, softplus};

/// GELU with the tanh approximation (PyTorch `gelu(approximate="tanh")`).
#[inline]
pub fn gelu_tanh(x: f32) -> f32 {
    const SQRT_2_OVER_PI: f32 = 0.797_884_6;
    0.5 * x * (1.0 + libm::tanhf(SQRT_2_OVER_PI * (x + 0.044_715 * x * x * x)))
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

/// `y += x` elementwise (residual connections).
#[inline]
pub fn add_assign(y: &mut [f32], x: &[f32]) {
    for (a, b) in y.iter_mut().zip(x) {
        *a += b;
    }
}

/// One token of a causal depthwise convolution of width `width` (no
/// activation). `window` holds the previous `width - 1` inputs per channel,
/// oldest first; `xs` (the new inputs) is shifted into it. Weights are
/// `[channels, width]`, row-major.
pub fn causal_conv_step(
    weight: &[f32],
    bias: Option<&[f32]>,
    window: &mut [f32],
    xs: &[f32],
    out: &mut [f32],
    width: usize,
) {
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
pub fn causal_conv_silu_step(
    weight: &[f32],
    bias: Option<&[f32]>,
    window: &mut [f32],
    xs: &[f32],
    out: &mut [f32],
    width: usize,
) {
    causal_conv_step(weight, bias, window, xs, out, width);
    for o in out.iter_mut().take(xs.len()) {
        *o = silu(*o);
    }
}
