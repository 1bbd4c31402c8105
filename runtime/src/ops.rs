//! Elementwise f32 operations shared by all layers (scalar reference).

/// RMSNorm: `out = x / sqrt(mean(x^2) + eps) * weight`.
pub fn rms_norm(x: &[f32], weight: &[f32], eps: f32, out: &mut [f32]) {
    // The reference dot product's eight partial sums: one running sum was a
    // chain of `d_model` dependent adds per token (~1.3% of a prefill).
    let ss = eddy_quant::dot_f32(x, x);
    let inv = 1.0 / libm::sqrtf(ss / x.len() as f32 + eps);
    for ((o, v), w) in out.iter_mut().zip(x).zip(weight) {
        *o = w * (v * inv);
    }
}

/// [`rms_norm`] of every row of `xs` (rows as wide as `weight`) into the
/// rows of `out`; stops at the shorter of the two.
pub fn rms_norm_rows(xs: &[f32], weight: &[f32], eps: f32, out: &mut [f32]) {
    let width = weight.len().max(1);
    for (x, o) in xs.chunks_exact(width).zip(out.chunks_exact_mut(width)) {
        rms_norm(x, weight, eps, o);
    }
}

/// [`rms_norm`] of `x` into itself (per-head query/key norms).
pub fn rms_norm_in_place(x: &mut [f32], weight: &[f32], eps: f32) {
    let ss = eddy_quant::dot_f32(x, x);
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

/// Gated RMSNorm per head (GLA, Gated DeltaNet; norm before gate): each
/// head of `weight.len()` values of `o` is RMS-normalized, scaled by
/// `weight` and multiplied by `silu` of the same values of `gate`, in
/// place.
pub fn gated_rms_norm_heads(o: &mut [f32], gate: &[f32], weight: &[f32], eps: f32) {
    let width = weight.len().max(1);
    for (oh, gh) in o.chunks_exact_mut(width).zip(gate.chunks_exact(width)) {
        let ss: f32 = oh.iter().map(|x| x * x).sum();
        let inv = 1.0 / libm::sqrtf(ss / width as f32 + eps);
        for ((ov, wv), gv) in oh.iter_mut().zip(weight).zip(gh) {
            *ov = wv * (*ov * inv) * silu(*gv);
        }
    }
}

// These live with the kernels, whose SIMD versions must reproduce them bit
// for bit.
pub use eddy_kernels::math::{exp_fast, gelu_tanh, sigmoid, silu, softplus, tanh};

/// `y += x` elementwise (residual connections).
#[inline]
pub fn add_assign(y: &mut [f32], x: &[f32]) {
    for (a, b) in y.iter_mut().zip(x) {
        *a += b;
    }
}
