//! The per-token vector work around the matrix products: int8 activation
//! quantization and the f32 work of Mamba's layers (the causal
//! convolution + SiLU and the Mamba-1 selective scan): their argument
//! types, the scalar references and the by-token wrappers. They are
//! fields of [`Kernels`](crate::Kernels), so choosing a set chooses them
//! too (SIMD versions: `crate::x86`, `crate::aarch64`, `crate::arm::helium`).
//!
//! Every SIMD version evaluates the reference's operations lane by lane in
//! the same order, without FMA, so results are bit-identical: the choice of
//! kernel set never changes a token.

use crate::math::{exp_fast, silu, softplus};
use crate::ConvWeights;
use eddy_quant::QuantError;

/// One token of the Mamba-1 selective scan for `dt.len()` channels.
#[derive(Clone, Copy, Debug)]
pub struct ScanArgs<'x> {
    /// `A`, `[channels, d_state]`.
    pub a: &'x [f32],
    /// `D`, `[channels]`.
    pub d: &'x [f32],
    /// Time steps before softplus, `[channels]`.
    pub dt: &'x [f32],
    /// Input `u` (conv output), `[channels]`.
    pub u: &'x [f32],
    /// `B`, `[d_state]`.
    pub b: &'x [f32],
    /// `C`, `[d_state]`.
    pub c: &'x [f32],
    /// Gate `z`, `[channels]`.
    pub z: &'x [f32],
    /// State size per channel.
    pub d_state: usize,
}

/// One token of the selective scan: per channel `delta = softplus(dt)`,
/// `h = exp(A delta) h + delta B u`, `y = (C·h + D u) silu(z)`. `state` is
/// `[channels, d_state]`, `y` is `[channels]`; shorter inputs stop early.
pub type SelectiveScan = fn(args: &ScanArgs<'_>, state: &mut [f32], y: &mut [f32]);

/// Rows of a token-major matrix: token `t`'s values start at `t * stride`
/// (so one row of a wider matrix, such as `z` inside `in_proj`'s output,
/// is read in place).
#[derive(Clone, Copy, Debug)]
pub struct TokenRows<'x> {
    /// The values, token `t`'s at `t * stride..`.
    pub data: &'x [f32],
    /// Distance between two tokens' first values.
    pub stride: usize,
}

impl<'x> TokenRows<'x> {
    /// Token `t`'s first `width` values (fewer if `data` ends sooner).
    pub fn row(&self, t: usize, width: usize) -> &'x [f32] {
        &self.data[row_range(t.saturating_mul(self.stride), width, self.data.len())]
    }

    /// True if every one of `tokens` rows holds `width` values.
    pub fn holds(&self, tokens: usize, width: usize) -> bool {
        tokens == 0
            || (tokens - 1)
                .checked_mul(self.stride)
                .and_then(|last| last.checked_add(width))
                .is_some_and(|end| end <= self.data.len())
    }
}

/// `start..start + width`, both ends clamped to `len`: one token's row of a
/// token-major buffer that may end early.
fn row_range(start: usize, width: usize, len: usize) -> core::ops::Range<usize> {
    let start = start.min(len);
    start..start.saturating_add(width).min(len)
}

/// Several tokens of the Mamba-1 selective scan (a prefill chunk) for the
/// channels of `d`: the per-token inputs are token-major rows.
#[derive(Clone, Copy, Debug)]
pub struct ScanTokens<'x> {
    /// `A`, `[channels, d_state]`.
    pub a: &'x [f32],
    /// `D`, `[channels]`; its length is the channel count.
    pub d: &'x [f32],
    /// Time steps before softplus, a row of `channels` per token.
    pub dt: TokenRows<'x>,
    /// Input `u` (conv output), a row of `channels` per token.
    pub u: TokenRows<'x>,
    /// Gate `z`, a row of `channels` per token.
    pub z: TokenRows<'x>,
    /// `B`, a row of `d_state` per token.
    pub b: TokenRows<'x>,
    /// `C`, a row of `d_state` per token.
    pub c: TokenRows<'x>,
    /// State size per channel.
    pub d_state: usize,
    /// Tokens, in order.
    pub tokens: usize,
}

impl<'x> ScanTokens<'x> {
    /// Token `t`'s one-token arguments.
    pub fn token(&self, t: usize) -> ScanArgs<'x> {
        let (channels, ds) = (self.d.len(), self.d_state);
        ScanArgs {
            a: self.a,
            d: self.d,
            dt: self.dt.row(t, channels),
            u: self.u.row(t, channels),
            z: self.z.row(t, channels),
            b: self.b.row(t, ds),
            c: self.c.row(t, ds),
            d_state: ds,
        }
    }

    /// True if every token's rows are complete and `state` (`[channels,
    /// d_state]`), `a` and `y` (`[tokens, channels]`) are large enough:
    /// then a kernel may skip the one-token scan's per-input clamping.
    pub fn complete(&self, state: &[f32], y: &[f32]) -> bool {
        let (channels, ds) = (self.d.len(), self.d_state);
        let states = channels.checked_mul(ds);
        states.is_some_and(|n| n <= state.len() && n <= self.a.len())
            && channels.checked_mul(self.tokens).is_some_and(|n| n <= y.len())
            && [self.dt, self.u, self.z].iter().all(|r| r.holds(self.tokens, channels))
            && [self.b, self.c].iter().all(|r| r.holds(self.tokens, ds))
    }
}

/// Several tokens of the selective scan, exactly `tokens` calls of the
/// set's [`SelectiveScan`] in order, token `t` with [`ScanTokens::token`]
/// and output row `y[t * channels..(t + 1) * channels]` (fewer if `y` ends
/// sooner). One call per prefill chunk and channel block lets a kernel
/// keep the block's state in cache and evaluate many tokens' decays side
/// by side.
pub type SelectiveScanTokens = fn(args: &ScanTokens<'_>, state: &mut [f32], y: &mut [f32]);

/// [`SelectiveScanTokens`] as one `scan` call per token.
pub fn selective_scan_by_token(scan: SelectiveScan, args: &ScanTokens<'_>, state: &mut [f32], y: &mut [f32]) {
    let channels = args.d.len();
    for t in 0..args.tokens {
        let y_t = row_range(t.saturating_mul(channels), channels, y.len());
        scan(&args.token(t), state, &mut y[y_t]);
    }
}

/// The reference [`SelectiveScanTokens`].
pub fn selective_scan_tokens_scalar(args: &ScanTokens<'_>, state: &mut [f32], y: &mut [f32]) {
    selective_scan_by_token(selective_scan_scalar, args, state, y);
}

/// Several tokens of Mamba's causal convolution + SiLU (a prefill chunk)
/// for `channels` channels.
#[derive(Clone, Copy, Debug)]
pub struct ConvTokens<'x> {
    /// The convolution.
    pub conv: ConvWeights<'x>,
    /// Inputs, a row of `channels` per token.
    pub xs: TokenRows<'x>,
    /// Channels.
    pub channels: usize,
    /// Tokens, in order.
    pub tokens: usize,
}

/// Several tokens of the convolution + SiLU, exactly `tokens` calls of the
/// set's [`ConvSilu`] in order: token `t` with input row
/// `xs.row(t, channels)` and output `out[t * channels..(t + 1) *
/// channels]`. `window` (`[channels, width - 1]`) carries over as between
/// those calls. One call per prefill chunk and channel block lets a
/// kernel keep the windows in registers and run one channel per lane.
pub type ConvSiluTokens = fn(args: &ConvTokens<'_>, window: &mut [f32], out: &mut [f32]);

/// [`ConvSiluTokens`] as one `conv` call per token.
pub fn conv_silu_by_token(conv: ConvSilu, args: &ConvTokens<'_>, window: &mut [f32], out: &mut [f32]) {
    let channels = args.channels;
    for t in 0..args.tokens {
        let out_t = row_range(t.saturating_mul(channels), channels, out.len());
        conv(&args.conv, window, args.xs.row(t, channels), &mut out[out_t]);
    }
}

/// The reference [`ConvSiluTokens`].
pub fn conv_silu_tokens_scalar(args: &ConvTokens<'_>, window: &mut [f32], out: &mut [f32]) {
    conv_silu_by_token(crate::math::causal_conv_silu_step, args, window, out);
}

/// int8 activation quantization per group, exactly
/// `eddy_quant::quantize_activations_i8` (same codes, scales, sums and
/// errors).
pub type QuantizeActs = fn(
    x: &[f32],
    group: usize,
    out_q: &mut [i8],
    out_scales: &mut [f32],
    out_sums: &mut [i32],
) -> Result<(), QuantError>;

/// One token of Mamba's causal depthwise convolution followed by SiLU, exactly `math::causal_conv_silu_step`.
pub type ConvSilu = fn(w: &ConvWeights<'_>, window: &mut [f32], xs: &[f32], out: &mut [f32]);

impl ScanArgs<'_> {
    /// Channels a scan of these inputs into `state` and `y` covers: the
    /// reference stops at the shortest input.
    pub fn channels(&self, state: &[f32], y: &[f32]) -> usize {
        [y.len(), self.dt.len(), self.u.len(), self.d.len(), self.z.len()]
            .into_iter()
            .fold(state.len().min(self.a.len()) / self.d_state.max(1), usize::min)
    }
}

/// The reference scan of the channels from `first` on: the tail a SIMD
/// kernel leaves (`first` at most [`ScanArgs::channels`]).
#[cfg_attr(not(any(target_arch = "x86_64", target_arch = "aarch64")), allow(dead_code))]
pub(crate) fn selective_scan_scalar_from(
    first: usize,
    args: &ScanArgs<'_>,
    state: &mut [f32],
    y: &mut [f32],
) {
    let ds = args.d_state;
    let rest = ScanArgs {
        a: &args.a[first * ds..],
        dt: &args.dt[first..],
        u: &args.u[first..],
        d: &args.d[first..],
        z: &args.z[first..],
        ..*args
    };
    selective_scan_scalar(&rest, &mut state[first * ds..], &mut y[first..]);
}

/// The reference selective scan (see [`SelectiveScan`]).
pub fn selective_scan_scalar(args: &ScanArgs<'_>, state: &mut [f32], y: &mut [f32]) {
    let ds = args.d_state;
    if ds == 0 {
        return;
    }
    let channels = state.chunks_exact_mut(ds).zip(args.a.chunks_exact(ds));
    for (ch, (yc, (h, a))) in y.iter_mut().zip(channels).enumerate() {
        let (Some(&dt), Some(&u), Some(&d), Some(&z)) =
            (args.dt.get(ch), args.u.get(ch), args.d.get(ch), args.z.get(ch))
        else {
            return;
        };
        let delta = softplus(dt);
        for ((hs, &av), &bv) in h.iter_mut().zip(a).zip(args.b) {
            *hs = exp_fast(av * delta) * *hs + delta * bv * u;
        }
        *yc = (eddy_quant::dot_f32(h, args.c) + u * d) * silu(z);
    }
}
