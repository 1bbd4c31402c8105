//! RWKV-4's WKV written once for every ISA (see
//! `crate::linear_attention_pass` for the entry points): an ISA supplies
//! its eight-lane vector with an exp, a division, a negation and `max`
//! ([`WkvLanes`]); each lane runs one channel through the reference's
//! expressions, so the results are the reference's bit for bit.

use crate::linear_attention_pass::{StateLanes, LANES};
use crate::reference;

/// An eight-lane vector with what RWKV-4's WKV also needs.
pub(crate) trait WkvLanes: StateLanes {
    /// [`crate::math::exp_fast`] per lane.
    unsafe fn exp(self) -> Self;
    /// `self / b` per lane.
    unsafe fn div(self, b: Self) -> Self;
    /// `-self` per lane (the sign flipped, NaN too).
    unsafe fn neg(self) -> Self;
    /// `f32::max(self, b)` per lane, as the scalar reference computes it
    /// (NaN and signed zeros included).
    unsafe fn max_num(self, b: Self) -> Self;
}

/// Pointers to eight channels of a WKV call: inputs, state rows, output.
struct WkvLanesAt {
    k: *const f32,
    v: *const f32,
    r: *const f32,
    first: *const f32,
    decay: *const f32,
    num: *mut f32,
    den: *mut f32,
    max: *mut f32,
    out: *mut f32,
}

/// See [`reference::Wkv`]; bit-exact with [`reference::wkv`]: eight
/// channels per vector, the last `channels % 8` through a padded copy.
///
/// # Safety
/// The CPU must run `V`'s instructions.
#[inline(always)]
pub(crate) unsafe fn wkv<V: WkvLanes>(a: &reference::WkvArgs<'_>, state: &mut [f32], out: &mut [f32]) {
    let dm = out.len();
    if state.len() < 3 * dm {
        return;
    }
    // The reference stops at the shortest input.
    let channels = [a.k, a.v, a.r, a.first, a.decay].iter().map(|x| x.len()).fold(dm, usize::min);
    let (num, rest) = state.split_at_mut(dm);
    let (den, max) = rest.split_at_mut(dm);
    let full = channels - channels % LANES;
    for c in (0..full).step_by(LANES) {
        // SAFETY: channels `c..c + 8` lie inside every slice.
        unsafe {
            wkv_lanes::<V>(&WkvLanesAt {
                k: a.k.as_ptr().add(c),
                v: a.v.as_ptr().add(c),
                r: a.r.as_ptr().add(c),
                first: a.first.as_ptr().add(c),
                decay: a.decay.as_ptr().add(c),
                num: num.as_mut_ptr().add(c),
                den: den.as_mut_ptr().add(c),
                max: max.as_mut_ptr().add(c),
                out: out.as_mut_ptr().add(c),
            })
        };
    }
    let tail = channels - full;
    if tail == 0 {
        return;
    }
    // Lanes are independent: the tail runs padded, its lanes kept.
    let mut pad = [[0f32; LANES]; 9];
    let sources: [&[f32]; 8] = [a.k, a.v, a.r, a.first, a.decay, num, den, max];
    for (p, s) in pad.iter_mut().zip(sources) {
        p[..tail].copy_from_slice(&s[full..channels]);
    }
    let [k, v, r, first, decay, pn, pd, pm, po] = &mut pad;
    // SAFETY: every pointer is to eight values of `pad`.
    unsafe {
        wkv_lanes::<V>(&WkvLanesAt {
            k: k.as_ptr(),
            v: v.as_ptr(),
            r: r.as_ptr(),
            first: first.as_ptr(),
            decay: decay.as_ptr(),
            num: pn.as_mut_ptr(),
            den: pd.as_mut_ptr(),
            max: pm.as_mut_ptr(),
            out: po.as_mut_ptr(),
        })
    };
    for (d, p) in [num, den, max, out].into_iter().zip([&pad[5], &pad[6], &pad[7], &pad[8]]) {
        d[full..channels].copy_from_slice(&p[..tail]);
    }
}

/// Eight channels of WKV, the reference's expressions per lane.
///
/// # Safety
/// Every pointer is to eight values; the CPU runs `V`.
#[inline(always)]
unsafe fn wkv_lanes<V: WkvLanes>(p: &WkvLanesAt) {
    // SAFETY: eight values at every pointer, as the caller guarantees.
    unsafe {
        let (k, v, r) = (V::load(p.k), V::load(p.v), V::load(p.r));
        let (num, den, max) = (V::load(p.num), V::load(p.den), V::load(p.max));
        let one = V::splat(1.0);
        let ku = k.add(V::load(p.first));
        let m_out = max.max_num(ku);
        let (e1, e2) = (max.sub(m_out).exp(), ku.sub(m_out).exp());
        let sigmoid = one.div(one.add(r.neg().exp()));
        sigmoid.mul(e1.mul(num).add(e2.mul(v)).div(e1.mul(den).add(e2))).store(p.out);
        let decayed = max.add(V::load(p.decay));
        let m_state = decayed.max_num(k);
        let (e1, e2) = (decayed.sub(m_state).exp(), k.sub(m_state).exp());
        e1.mul(num).add(e2.mul(v)).store(p.num);
        e1.mul(den).add(e2).store(p.den);
        m_state.store(p.max);
    }
}
