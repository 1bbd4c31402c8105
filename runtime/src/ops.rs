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
    gate_by_silu(x, gate);
    for (xs, ws) in x.chunks_exact_mut(group).zip(weight.chunks_exact(group)) {
        let mut ss = 0.0f32;
        for v in xs.iter() {
            ss += v * v;
        }
        normalize(xs, ws, ss, eps);
    }
}

/// `v *= silu(g)`. Not inlined: as a function of its own (`x` and `gate`
/// known not to overlap) the loop vectorizes; inlined into the rows form
/// it ran one value at a time.
#[inline(never)]
fn gate_by_silu(x: &mut [f32], gate: &[f32]) {
    for (v, g) in x.iter_mut().zip(gate) {
        *v *= silu(*g);
    }
}

/// `v = w * (v * inv)` with `inv = 1 / sqrt(ss / len + eps)`: the end of
/// [`gated_group_rms_norm`] for one group of `xs`.
#[inline]
fn normalize(xs: &mut [f32], ws: &[f32], ss: f32, eps: f32) {
    let inv = 1.0 / libm::sqrtf(ss / xs.len() as f32 + eps);
    for (v, w) in xs.iter_mut().zip(ws) {
        *v = w * (*v * inv);
    }
}

/// Rows whose sums of squares [`gated_group_rms_norm_rows`] runs side by
/// side.
const NORM_ROWS: usize = 8;

/// [`gated_group_rms_norm`] of every row of `xs` (rows of `weight.len()`
/// values), row `r` gated by `gates.row(r, weight.len())`: the same
/// values bit for bit. The sum of squares of a group is one chain of
/// dependent additions (Mamba-2's single group: 1536 per token), so
/// [`NORM_ROWS`] rows run their chains side by side, each in its own
/// order.
pub fn gated_group_rms_norm_rows(
    xs: &mut [f32],
    gates: TokenRows<'_>,
    weight: &[f32],
    group: usize,
    eps: f32,
) {
    let width = weight.len();
    if width == 0 || group == 0 {
        return;
    }
    for (b, block) in xs.chunks_mut(NORM_ROWS * width).enumerate() {
        let first = b * NORM_ROWS;
        if block.len() < NORM_ROWS * width {
            for (r, x) in block.chunks_exact_mut(width).enumerate() {
                gated_group_rms_norm(x, gates.row(first + r, width), weight, group, eps);
            }
            continue;
        }
        for (r, x) in block.chunks_exact_mut(width).enumerate() {
            gate_by_silu(x, gates.row(first + r, width));
        }
        for (g0, ws) in (0..).step_by(group).zip(weight.chunks_exact(group)) {
            let rows: [&[f32]; NORM_ROWS] = core::array::from_fn(|r| &block[r * width + g0..][..group]);
            let mut ss = [0.0f32; NORM_ROWS];
            for k in 0..group {
                for (s, row) in ss.iter_mut().zip(&rows) {
                    let v = row[k];
                    *s += v * v;
                }
            }
            for (r, &s) in ss.iter().enumerate() {
                normalize(&mut block[r * width + g0..r * width + g0 + group], ws, s, eps);
            }
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

use eddy_kernels::TokenRows;

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

#[cfg(test)]
mod tests {
    use super::*;
    extern crate std;
    use eddy_testkit::Lcg as Rng;
    use std::vec::Vec;

    /// The rows form equals the one-row form bit for bit: row counts
    /// around the side-by-side block, one and several groups, odd sizes,
    /// gate rows inside wider rows.
    #[test]
    fn gated_group_rms_norm_rows_equals_row_by_row() {
        let mut rng = Rng(3);
        let mut vec = |n: usize, scale: f32| (0..n).map(|_| rng.f() * scale).collect::<Vec<f32>>();
        for (width, group) in [(1536, 1536), (24, 8), (13, 13), (30, 10), (7, 1)] {
            for rows in (1..=17).chain([64]) {
                let stride = width + 5;
                let gates = vec(rows * stride, 3.0);
                let weight = vec(width, 1.0);
                let x = vec(rows * width, 2.0);
                let mut want = x.clone();
                for (r, row) in want.chunks_exact_mut(width).enumerate() {
                    gated_group_rms_norm(row, &gates[r * stride..][..width], &weight, group, 1e-5);
                }
                let mut got = x;
                gated_group_rms_norm_rows(&mut got, TokenRows { data: &gates, stride }, &weight, group, 1e-5);
                let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
                assert_eq!(bits(&got), bits(&want), "width {width} group {group} rows {rows}");
            }
        }
    }
}
