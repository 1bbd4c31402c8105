//! The real-gated linear recurrent unit (RG-LRU, Griffin / RecurrentGemma).

use crate::math::{exp_fast, gelu_tanh, sigmoid};

/// One token of the RG-LRU for `x.len()` channels, with its GELU output
/// gate.
#[derive(Clone, Copy, Debug)]
pub struct RgLruArgs<'x> {
    /// Input (the conv output), `[channels]`.
    pub x: &'x [f32],
    /// Input gate before the sigmoid, `[channels]`.
    pub input_gate: &'x [f32],
    /// Recurrence gate before the sigmoid, `[channels]`.
    pub a_gate: &'x [f32],
    /// `-8 softplus(Λ)`: log of the decay at full gate, `[channels]`.
    pub log_a_coef: &'x [f32],
    /// The other branch, gated with GELU onto the output, `[channels]`.
    pub y: &'x [f32],
    /// True at the sequence's first position: the state is the gated
    /// input, without decay or normalization.
    pub first: bool,
}

/// One token of the RG-LRU: `log a = log_a_coef σ(a_gate)`,
/// `h ← a h + sqrt(1 - a²) (x σ(input_gate))` (`h ← x σ(input_gate)` at
/// the first position), `out = h gelu(y)`. `h` and `out` are
/// `[channels]`; shorter buffers stop early. Used by RecurrentGemma.
pub type RgLru = fn(args: &RgLruArgs<'_>, h: &mut [f32], out: &mut [f32]);

/// The reference [`RgLru`].
pub fn rg_lru(args: &RgLruArgs<'_>, h: &mut [f32], out: &mut [f32]) {
    let inputs = args.x.iter().zip(args.input_gate).zip(args.a_gate).zip(args.log_a_coef).zip(args.y);
    for ((hc, oc), ((((&x, &gi), &ga), &coef), &y)) in h.iter_mut().zip(out.iter_mut()).zip(inputs) {
        let gated = x * sigmoid(gi);
        let log_a = coef * sigmoid(ga);
        *hc = if args.first {
            gated
        } else {
            let a = exp_fast(log_a);
            let multiplier = libm::sqrtf(1.0 - exp_fast(2.0 * log_a));
            a * *hc + multiplier * gated
        };
        *oc = *hc * gelu_tanh(y);
    }
}

/// The driver of a SIMD [`RgLru`] over blocks of `lanes` channels:
/// `blocks(args, h, out, done)` takes channels `0..done` (a multiple of
/// `lanes`) and the reference the rest, stopping at the shortest buffer as
/// the reference does.
#[cfg_attr(not(any(target_arch = "x86_64", target_arch = "aarch64")), allow(dead_code))]
pub(crate) fn rg_lru_by_blocks(
    (args, h, out): (&RgLruArgs<'_>, &mut [f32], &mut [f32]),
    lanes: usize,
    blocks: impl FnOnce(&RgLruArgs<'_>, &mut [f32], &mut [f32], usize),
) {
    let lens = [h.len(), out.len(), args.x.len(), args.input_gate.len(), args.a_gate.len()];
    let n = lens.into_iter().chain([args.log_a_coef.len(), args.y.len()]).min().unwrap_or(0);
    let done = n / lanes.max(1) * lanes;
    blocks(args, h, out, done);
    if done < n {
        let tail = RgLruArgs {
            x: &args.x[done..n],
            input_gate: &args.input_gate[done..n],
            a_gate: &args.a_gate[done..n],
            log_a_coef: &args.log_a_coef[done..n],
            y: &args.y[done..n],
            first: args.first,
        };
        rg_lru(&tail, &mut h[done..n], &mut out[done..n]);
    }
}
