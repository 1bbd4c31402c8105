//! Generalized delta-rule state update with a vector decay and a separate
//! removal key (RWKV-7).

/// One token of the generalized delta rule for `heads` heads, each a
/// `head_size x head_size` state matrix (rows indexed by value, columns by
/// key). Every input is `[heads, head_size]`.
#[derive(Clone, Copy, Debug)]
pub struct GeneralizedDeltaRuleArgs<'x> {
    /// Receptance: the read-out vector.
    pub r: &'x [f32],
    /// Decay per key channel, in (0, 1).
    pub w: &'x [f32],
    /// Key written with the values.
    pub k: &'x [f32],
    /// Values.
    pub v: &'x [f32],
    /// Removal key `κ` (normalized): what is read out of the state to be
    /// replaced.
    pub kappa: &'x [f32],
    /// Removal weights `κ ⊙ a` (`a` the in-context learning rate).
    pub kappa_a: &'x [f32],
    /// Heads.
    pub heads: usize,
    /// Values (and keys) per head.
    pub head_size: usize,
}

/// One token of the generalized delta rule and its read-out, per head and
/// state row `i`: `m = -(S_i · κ)`, then per column `j`
/// `S_ij ← S_ij w_j + m (κ a)_j + v_i k_j` and `o_i = S_i · r` (summed in
/// column order as the row is updated). `state` is `[heads, head_size,
/// head_size]`, `out` is `[heads, head_size]` (overwritten). Used by
/// RWKV-7; DeltaNet-like rules are its special cases.
pub type GeneralizedDeltaRule = fn(args: &GeneralizedDeltaRuleArgs<'_>, state: &mut [f32], out: &mut [f32]);

/// The reference [`GeneralizedDeltaRule`].
pub fn generalized_delta_rule(args: &GeneralizedDeltaRuleArgs<'_>, state: &mut [f32], out: &mut [f32]) {
    let n = args.head_size;
    if n == 0 {
        return;
    }
    for (h, (s, o)) in state.chunks_exact_mut(n * n).zip(out.chunks_exact_mut(n)).enumerate().take(args.heads)
    {
        let hs = h * n..(h + 1) * n;
        let (Some(r), Some(w), Some(k), Some(v), Some(kappa), Some(kappa_a)) = (
            args.r.get(hs.clone()),
            args.w.get(hs.clone()),
            args.k.get(hs.clone()),
            args.v.get(hs.clone()),
            args.kappa.get(hs.clone()),
            args.kappa_a.get(hs),
        ) else {
            return;
        };
        for ((row, oi), &vi) in s.chunks_exact_mut(n).zip(o.iter_mut()).zip(v) {
            // sa = S_i · (-κ), with the old state.
            let mut sa = 0.0f32;
            for (sv, &kj) in row.iter().zip(kappa) {
                sa -= sv * kj;
            }
            let mut acc = 0.0f32;
            for ((((sv, &wj), &kaj), &kj), &rj) in row.iter_mut().zip(w).zip(kappa_a).zip(k).zip(r) {
                *sv = *sv * wj + sa * kaj + vi * kj;
                acc += *sv * rj;
            }
            *oi = acc;
        }
    }
}
