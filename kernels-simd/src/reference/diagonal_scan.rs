//! Diagonal-decay selective scan with one decay per head (Mamba-2, SSD).

use crate::math::{exp_fast, softplus};
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
    let heads = args.a.len().min(args.d.len());
    for (h, (&raw, &bias)) in args.dt.iter().zip(args.dt_bias).enumerate().take(heads) {
        let g = h / args.heads_per_group.max(1);
        let (Some(bg), Some(cg)) = (args.b.get(g * ds..(g + 1) * ds), args.c.get(g * ds..(g + 1) * ds))
        else {
            return;
        };
        let dt = softplus(raw + bias);
        let decay = exp_fast(dt * args.a[h]);
        for p in 0..hd {
            let ch = h * hd + p;
            let (Some(&xv), Some(s), Some(yc)) =
                (args.x.get(ch), state.get_mut(ch * ds..(ch + 1) * ds), y.get_mut(ch))
            else {
                return;
            };
            for (sv, &bv) in s.iter_mut().zip(bg) {
                *sv = decay * *sv + dt * bv * xv;
            }
            *yc = dot_f32(s, cg) + args.d[h] * xv;
        }
    }
}
