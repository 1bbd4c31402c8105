//! The GRU and LSTM gates written once for every ISA (entry points in
//! each ISA folder's `rnn_gates.rs`): eight channels per [`WkvLanes`]
//! vector, each lane running the reference's expressions
//! ([`reference::gru_channel`], [`reference::lstm_channel`]) in the same
//! order, so the results are the reference's bit for bit; the last
//! `hidden % 8` channels run the reference's per-channel function.

use crate::linear_attention_pass::LANES;
use crate::reference::{gru_channel, lstm_channel};
use crate::wkv_pass::WkvLanes;

/// `1 / (1 + e^-x)`, as [`crate::math::sigmoid`].
#[inline(always)]
unsafe fn sigmoid<V: WkvLanes>(x: V) -> V {
    // SAFETY: the caller's CPU runs `V`.
    unsafe {
        let one = V::splat(1.0);
        one.div(one.add(x.neg().exp()))
    }
}

/// `1 - 2 / (1 + e^{2x})`, as [`crate::reference::tanh_by_exp`].
#[inline(always)]
unsafe fn tanh<V: WkvLanes>(x: V) -> V {
    // SAFETY: the caller's CPU runs `V`.
    unsafe {
        let one = V::splat(1.0);
        let two = V::splat(2.0);
        one.sub(two.div(one.add(x.add(x).exp())))
    }
}

/// `gi[at..at + 8] + gh[at..at + 8]` (a function, not a closure: a
/// closure would not inherit the entry point's `target_feature`).
///
/// # Safety
/// Eight values at `gi + at` and `gh + at`; the CPU runs `V`.
#[inline(always)]
unsafe fn gate<V: WkvLanes>(gi: *const f32, gh: *const f32, at: usize) -> V {
    // SAFETY: as the caller guarantees.
    unsafe { V::load(gi.add(at)).add(V::load(gh.add(at))) }
}

/// See [`crate::GruGates`]; bit-exact with [`crate::reference::gru_gates`].
///
/// # Safety
/// The CPU must run `V`'s instructions.
#[inline(always)]
pub(crate) unsafe fn gru_gates<V: WkvLanes>(gi: &[f32], gh: &[f32], h: &mut [f32]) {
    let n = h.len();
    if gi.len() < 3 * n || gh.len() < 3 * n {
        return;
    }
    let full = n - n % LANES;
    let (pi, ph, ps) = (gi.as_ptr(), gh.as_ptr(), h.as_mut_ptr());
    for j in (0..full).step_by(LANES) {
        // SAFETY: channels `j..j + 8` of each of the three gate blocks lie
        // inside `gi` and `gh` (checked above), and inside `h`.
        unsafe {
            let (r, z) = (sigmoid(gate::<V>(pi, ph, j)), sigmoid(gate::<V>(pi, ph, n + j)));
            let c = tanh(V::load(pi.add(2 * n + j)).add(r.mul(V::load(ph.add(2 * n + j)))));
            let old = V::load(ps.add(j));
            V::splat(1.0).sub(z).mul(c).add(z.mul(old)).store(ps.add(j));
        }
    }
    for (j, hj) in h.iter_mut().enumerate().skip(full) {
        *hj = gru_channel(gi, gh, n, j, *hj);
    }
}

/// See [`crate::LstmGates`]; bit-exact with [`crate::reference::lstm_gates`].
///
/// # Safety
/// The CPU must run `V`'s instructions.
#[inline(always)]
pub(crate) unsafe fn lstm_gates<V: WkvLanes>(gi: &[f32], gh: &[f32], state: &mut [f32]) {
    let n = state.len() / 2;
    if gi.len() < 4 * n || gh.len() < 4 * n {
        return;
    }
    let full = n - n % LANES;
    let (pi, ph) = (gi.as_ptr(), gh.as_ptr());
    let (hs, cs) = state.split_at_mut(n);
    let (hp, cp) = (hs.as_mut_ptr(), cs.as_mut_ptr());
    for j in (0..full).step_by(LANES) {
        // SAFETY: channels `j..j + 8` of each of the four gate blocks lie
        // inside `gi` and `gh` (checked above), and inside `hs` and `cs`.
        unsafe {
            let (i, f) = (sigmoid(gate::<V>(pi, ph, j)), sigmoid(gate::<V>(pi, ph, n + j)));
            let (g, o) = (tanh(gate::<V>(pi, ph, 2 * n + j)), sigmoid(gate::<V>(pi, ph, 3 * n + j)));
            let c = f.mul(V::load(cp.add(j))).add(i.mul(g));
            c.store(cp.add(j));
            o.mul(tanh(c)).store(hp.add(j));
        }
    }
    for (j, (hj, cj)) in hs.iter_mut().zip(cs.iter_mut()).enumerate().skip(full) {
        (*hj, *cj) = lstm_channel(gi, gh, n, j, *cj);
    }
}
