//! RWKV-4's WKV: an exponentially decaying weighted average of values.

use crate::math::{exp_fast, sigmoid};

/// One token of WKV for `k.len()` channels.
#[derive(Clone, Copy, Debug)]
pub struct WkvArgs<'x> {
    /// Keys, `[channels]`.
    pub k: &'x [f32],
    /// Values, `[channels]`.
    pub v: &'x [f32],
    /// Receptance before the sigmoid, `[channels]`.
    pub r: &'x [f32],
    /// Bonus `u` of the current token, `[channels]`.
    pub first: &'x [f32],
    /// Log decay `w` per token (negative), `[channels]`.
    pub decay: &'x [f32],
}

/// One token of WKV with the numerically stable state `(num, den, max)`
/// (`state` is `[3, channels]`): `out = σ(r) (e^{max} num + e^{u+k} v) /
/// (e^{max} den + e^{u+k})` (shifted by the larger exponent), then the
/// state decays by `e^w` and takes `e^k v`. `out` is `[channels]`. Used
/// by RWKV-4.
pub type Wkv = fn(args: &WkvArgs<'_>, state: &mut [f32], out: &mut [f32]);

/// The reference [`Wkv`].
pub fn wkv(args: &WkvArgs<'_>, state: &mut [f32], out: &mut [f32]) {
    let dm = out.len();
    if state.len() < 3 * dm {
        return;
    }
    let (num, rest) = state.split_at_mut(dm);
    let (den, max) = rest.split_at_mut(dm);
    let inputs = args.k.iter().zip(args.v).zip(args.r).zip(args.first).zip(args.decay);
    let states = num.iter_mut().zip(den.iter_mut()).zip(max.iter_mut());
    for ((o, ((num, den), max)), ((((&kc, &vc), &r), &u), &w)) in out.iter_mut().zip(states).zip(inputs) {
        let ku = kc + u;
        let m_out = max.max(ku);
        let (e1, e2) = (exp_fast(*max - m_out), exp_fast(ku - m_out));
        *o = sigmoid(r) * ((e1 * *num + e2 * vc) / (e1 * *den + e2));
        let decayed = *max + w;
        let m_state = decayed.max(kc);
        let (e1, e2) = (exp_fast(decayed - m_state), exp_fast(kc - m_state));
        *num = e1 * *num + e2 * vc;
        *den = e1 * *den + e2;
        *max = m_state;
    }
}
