//! Diagonal-decay selective scan with one decay per head (Mamba-2, SSD).

use crate::math::{exp_fast, softplus};
use crate::vector::TokenRows;
use eddy_quant::dot_f32;

/// One token of the per-head scan for `dt.len()` heads of `head_dim`
/// channels; B and C are shared by groups of `heads_per_group` heads.
#[derive(Clone, Copy, Debug)]
pub struct HeadScanArgs<'x> {
    /// `A` per head (the decay rate, negative), `[heads]`.
    pub a: &'x [f32],
    /// `D` per head (skip connection), `[heads]`.
    pub d: &'x [f32],
    /// Time steps before the bias and softplus, `[heads]`.
    pub dt: &'x [f32],
    /// Time-step bias, `[heads]`.
    pub dt_bias: &'x [f32],
    /// Input `x`, `[heads, head_dim]`.
    pub x: &'x [f32],
    /// `B`, `[groups, d_state]`.
    pub b: &'x [f32],
    /// `C`, `[groups, d_state]`.
    pub c: &'x [f32],
    /// Channels per head.
    pub head_dim: usize,
    /// State size per channel.
    pub d_state: usize,
    /// Heads sharing one group of B and C.
    pub heads_per_group: usize,
}

impl HeadScanArgs<'_> {
    /// Heads the per-head parameters cover (the reference's bound before
    /// any other buffer runs out).
    pub fn heads(&self) -> usize {
        [self.a.len(), self.d.len(), self.dt.len(), self.dt_bias.len()]
            .into_iter()
            .fold(usize::MAX, usize::min)
    }

    /// True if `x`, B, C, `state` and `y` hold every one of
    /// [`heads`](Self::heads) heads: then a kernel may skip the
    /// reference's per-head clamping.
    pub fn complete(&self, state: &[f32], y: &[f32]) -> bool {
        let heads = self.heads();
        let channels = heads.checked_mul(self.head_dim);
        let groups = heads.div_ceil(self.heads_per_group.max(1));
        channels.is_some_and(|n| n <= self.x.len() && n <= y.len())
            && channels.and_then(|n| n.checked_mul(self.d_state)).is_some_and(|n| n <= state.len())
            && groups.checked_mul(self.d_state).is_some_and(|n| n <= self.b.len() && n <= self.c.len())
    }

    /// Head `h`'s `(dt, decay)`: `dt = softplus(dt_h + bias_h)`, `decay =
    /// exp(dt A_h)` (`h` below [`heads`](Self::heads)).
    #[inline]
    pub fn step(&self, h: usize) -> (f32, f32) {
        head_step(self.dt[h], self.dt_bias[h], self.a[h])
    }
}

/// `(dt, decay)` of a head: `dt = softplus(dt_raw + bias)`, `decay =
/// exp(dt a)`.
#[inline]
pub(crate) fn head_step(dt_raw: f32, bias: f32, a: f32) -> (f32, f32) {
    let dt = softplus(dt_raw + bias);
    (dt, exp_fast(dt * a))
}

/// One token of the diagonal-decay scan with a scalar decay per head: per
/// head `h` (group `g`), `dt = softplus(dt_h + bias_h)`, and per channel
/// `p` of the head `S_p = exp(dt A_h) S_p + dt B_g x_p`,
/// `y_p = C_g · S_p + D_h x_p`. `state` is `[heads * head_dim, d_state]`,
/// `y` is `[heads * head_dim]`; shorter buffers stop early. Used by
/// Mamba-2 (Mamba-1's per-channel scan is
/// [`SelectiveScan`](crate::SelectiveScan)).
pub type DiagonalScanHeads = fn(args: &HeadScanArgs<'_>, state: &mut [f32], y: &mut [f32]);

/// The reference [`DiagonalScanHeads`].
pub fn diagonal_scan_heads(args: &HeadScanArgs<'_>, state: &mut [f32], y: &mut [f32]) {
    let (hd, ds) = (args.head_dim, args.d_state);
    for h in 0..args.heads() {
        let g = h / args.heads_per_group.max(1);
        let (Some(bg), Some(cg)) = (args.b.get(g * ds..(g + 1) * ds), args.c.get(g * ds..(g + 1) * ds))
        else {
            return;
        };
        let (dt, decay) = args.step(h);
        for p in 0..hd {
            let ch = h * hd + p;
            let (Some(&xv), Some(s), Some(yc)) =
                (args.x.get(ch), state.get_mut(ch * ds..(ch + 1) * ds), y.get_mut(ch))
            else {
                return;
            };
            *yc = scan_channel((dt, decay), (bg, cg), (args.d[h], xv), s);
        }
    }
}

/// One channel of the reference: `S = decay S + dt B x`, returns
/// `C · S + D x` (`d_x` is `(D, x)`). The SIMD kernels' tail channels.
#[inline]
pub(crate) fn scan_channel(
    (dt, decay): (f32, f32),
    (b, c): (&[f32], &[f32]),
    (d, x): (f32, f32),
    s: &mut [f32],
) -> f32 {
    for (sv, &bv) in s.iter_mut().zip(b) {
        *sv = decay * *sv + dt * bv * x;
    }
    dot_f32(s, c) + d * x
}

/// Several tokens of the per-head scan (a prefill chunk) for the heads of
/// `a`: the per-token inputs are token-major rows.
#[derive(Clone, Copy, Debug)]
pub struct HeadScanTokens<'x> {
    /// `A` per head, `[heads]`.
    pub a: &'x [f32],
    /// `D` per head, `[heads]`.
    pub d: &'x [f32],
    /// Time-step bias, `[heads]`.
    pub dt_bias: &'x [f32],
    /// Time steps before the bias and softplus, a row of `heads` per token.
    pub dt: TokenRows<'x>,
    /// Input `x`, a row of `heads * head_dim` per token.
    pub x: TokenRows<'x>,
    /// `B`, a row of `groups * d_state` per token.
    pub b: TokenRows<'x>,
    /// `C`, a row of `groups * d_state` per token.
    pub c: TokenRows<'x>,
    /// Channels per head.
    pub head_dim: usize,
    /// State size per channel.
    pub d_state: usize,
    /// Heads sharing one group of B and C.
    pub heads_per_group: usize,
    /// Tokens, in order.
    pub tokens: usize,
}

impl<'x> HeadScanTokens<'x> {
    /// Heads of every token (the shortest per-head parameter).
    pub fn heads(&self) -> usize {
        self.a.len().min(self.d.len()).min(self.dt_bias.len())
    }

    /// Width of a B or C row: the groups of every head, `d_state` each.
    fn bc_width(&self) -> usize {
        self.heads().div_ceil(self.heads_per_group.max(1)).saturating_mul(self.d_state)
    }

    /// Token `t`'s one-token arguments.
    pub fn token(&self, t: usize) -> HeadScanArgs<'x> {
        let heads = self.heads();
        let bc = self.bc_width();
        HeadScanArgs {
            a: self.a,
            d: self.d,
            dt: self.dt.row(t, heads),
            dt_bias: self.dt_bias,
            x: self.x.row(t, heads.saturating_mul(self.head_dim)),
            b: self.b.row(t, bc),
            c: self.c.row(t, bc),
            head_dim: self.head_dim,
            d_state: self.d_state,
            heads_per_group: self.heads_per_group,
        }
    }

    /// True if every token's rows are complete and `state` (`[heads *
    /// head_dim, d_state]`) and `y` (`[tokens, heads * head_dim]`) are
    /// large enough: then a kernel may skip the per-token clamping.
    pub fn complete(&self, state: &[f32], y: &[f32]) -> bool {
        let heads = self.heads();
        let channels = heads.checked_mul(self.head_dim);
        channels.and_then(|n| n.checked_mul(self.d_state)).is_some_and(|n| n <= state.len())
            && channels.and_then(|n| n.checked_mul(self.tokens)).is_some_and(|n| n <= y.len())
            && self.dt.holds(self.tokens, heads)
            && channels.is_some_and(|n| self.x.holds(self.tokens, n))
            && [self.b, self.c].iter().all(|r| r.holds(self.tokens, self.bc_width()))
    }
}

/// Several tokens of the per-head scan, exactly `tokens` calls of the
/// set's [`DiagonalScanHeads`] in order, token `t` with
/// [`HeadScanTokens::token`] and output row `y[t * channels..(t + 1) *
/// channels]` (`channels = heads * head_dim`; fewer if `y` ends sooner).
/// One call per prefill chunk and block of heads lets a kernel keep each
/// head's state in cache over the tokens.
pub type DiagonalScanHeadsTokens = fn(args: &HeadScanTokens<'_>, state: &mut [f32], y: &mut [f32]);

/// [`DiagonalScanHeadsTokens`] as one `scan` call per token.
pub fn diagonal_scan_heads_by_token(
    scan: DiagonalScanHeads,
    args: &HeadScanTokens<'_>,
    state: &mut [f32],
    y: &mut [f32],
) {
    let channels = args.heads().saturating_mul(args.head_dim);
    for t in 0..args.tokens {
        let start = t.saturating_mul(channels).min(y.len());
        let end = start.saturating_add(channels).min(y.len());
        scan(&args.token(t), state, &mut y[start..end]);
    }
}

/// The reference [`DiagonalScanHeadsTokens`].
pub fn diagonal_scan_heads_tokens(args: &HeadScanTokens<'_>, state: &mut [f32], y: &mut [f32]) {
    diagonal_scan_heads_by_token(diagonal_scan_heads, args, state, y);
}

/// One head of one token as the SIMD kernels take it.
#[cfg_attr(not(any(target_arch = "x86_64", target_arch = "aarch64")), allow(dead_code))]
pub(crate) struct HeadStep<'x> {
    /// `(dt, decay)`, see [`HeadScanArgs::step`].
    pub step: (f32, f32),
    /// `D` of the head.
    pub d: f32,
    /// The head's `x`, `[head_dim]`.
    pub x: &'x [f32],
    /// The group's B, `[d_state]`.
    pub b: &'x [f32],
    /// The group's C, `[d_state]`.
    pub c: &'x [f32],
}

/// `head(step, state, y)` for every head of `args` in order, with the
/// head's `[head_dim, d_state]` state and `[head_dim]` outputs. The caller
/// checked `args.complete(state, y)`.
#[cfg_attr(not(any(target_arch = "x86_64", target_arch = "aarch64")), allow(dead_code))]
pub(crate) fn each_head(
    args: &HeadScanArgs<'_>,
    state: &mut [f32],
    y: &mut [f32],
    head: impl Fn(&HeadStep<'_>, &mut [f32], &mut [f32]),
) {
    let (hd, ds) = (args.head_dim, args.d_state);
    for h in 0..args.heads() {
        let (g, ch) = (h / args.heads_per_group.max(1), h * hd);
        let step = HeadStep {
            step: args.step(h),
            d: args.d[h],
            x: &args.x[ch..ch + hd],
            b: &args.b[g * ds..(g + 1) * ds],
            c: &args.c[g * ds..(g + 1) * ds],
        };
        head(&step, &mut state[ch * ds..(ch + hd) * ds], &mut y[ch..ch + hd]);
    }
}

/// [`each_head`] for every token of a chunk, head by head (each head over
/// every token, so its state stays in cache). The caller checked
/// `args.complete(state, y)`.
#[cfg_attr(not(any(target_arch = "x86_64", target_arch = "aarch64")), allow(dead_code))]
pub(crate) fn each_head_token(
    args: &HeadScanTokens<'_>,
    state: &mut [f32],
    y: &mut [f32],
    head: impl Fn(&HeadStep<'_>, &mut [f32], &mut [f32]),
) {
    let (hd, ds) = (args.head_dim, args.d_state);
    let channels = args.heads() * hd;
    for h in 0..args.heads() {
        let (g, ch) = (h / args.heads_per_group.max(1), h * hd);
        let head_state = &mut state[ch * ds..(ch + hd) * ds];
        for t in 0..args.tokens {
            let (dt, x) = (args.dt.row(t, h + 1), args.x.row(t, ch + hd));
            let (b, c) = (args.b.row(t, (g + 1) * ds), args.c.row(t, (g + 1) * ds));
            let step = HeadStep {
                step: head_step(dt[h], args.dt_bias[h], args.a[h]),
                d: args.d[h],
                x: &x[ch..ch + hd],
                b: &b[g * ds..(g + 1) * ds],
                c: &c[g * ds..(g + 1) * ds],
            };
            head(&step, head_state, &mut y[t * channels + ch..t * channels + ch + hd]);
        }
    }
}

/// One head over every token of a chunk as the SIMD kernels take it
/// (their register-tiled form, which keeps a tile of the state in
/// registers across tokens).
#[cfg_attr(not(any(target_arch = "x86_64", target_arch = "aarch64")), allow(dead_code))]
pub(crate) struct HeadChunk<'x> {
    /// `A` of the head (the decay rate).
    pub a: f32,
    /// `D` of the head.
    pub d: f32,
    /// Time-step bias of the head.
    pub dt_bias: f32,
    /// The head's time step first in each token's row.
    pub dt: TokenRows<'x>,
    /// The head's `x` (`head_dim` values) first in each token's row.
    pub x: TokenRows<'x>,
    /// The group's B (`d_state` values) first in each token's row.
    pub b: TokenRows<'x>,
    /// The group's C (`d_state` values) first in each token's row.
    pub c: TokenRows<'x>,
    /// Distance between two tokens' outputs (the channels of every head).
    pub y_stride: usize,
    /// Channels of the head.
    pub head_dim: usize,
    /// State size per channel.
    pub d_state: usize,
    /// Tokens, in order.
    pub tokens: usize,
}

#[cfg_attr(not(any(target_arch = "x86_64", target_arch = "aarch64")), allow(dead_code))]
impl HeadChunk<'_> {
    /// Token `t`'s `(dt, decay)`, see [`HeadScanArgs::step`].
    #[inline]
    pub fn step(&self, t: usize) -> (f32, f32) {
        head_step(self.dt.data[t * self.dt.stride], self.dt_bias, self.a)
    }
}

/// `head(chunk, state, y)` for every head of `args` in order, with the
/// head's `[head_dim, d_state]` state and the outputs from its first
/// channel on (token `t`'s at `t * y_stride`). The caller checked
/// `args.complete(state, y)`, so every row the head reads and every
/// output it writes is in bounds.
#[cfg_attr(not(any(target_arch = "x86_64", target_arch = "aarch64")), allow(dead_code))]
pub(crate) fn each_head_chunk<'x>(
    args: &HeadScanTokens<'x>,
    state: &mut [f32],
    y: &mut [f32],
    mut head: impl FnMut(&HeadChunk<'x>, &mut [f32], &mut [f32]),
) {
    let (hd, ds) = (args.head_dim, args.d_state);
    let channels = args.heads() * hd;
    let from = |rows: TokenRows<'x>, at: usize| -> TokenRows<'x> {
        TokenRows { data: &rows.data[at.min(rows.data.len())..], ..rows }
    };
    for h in 0..args.heads() {
        let (g, ch) = (h / args.heads_per_group.max(1), h * hd);
        let chunk = HeadChunk {
            a: args.a[h],
            d: args.d[h],
            dt_bias: args.dt_bias[h],
            dt: from(args.dt, h),
            x: from(args.x, ch),
            b: from(args.b, g * ds),
            c: from(args.c, g * ds),
            y_stride: channels,
            head_dim: hd,
            d_state: ds,
            tokens: args.tokens,
        };
        head(&chunk, &mut state[ch * ds..(ch + hd) * ds], &mut y[ch..]);
    }
}
