//! Gated delta-rule state update with a scalar decay per head (Gated
//! DeltaNet).

/// One token of the gated delta rule for `heads` value heads, each a state
/// matrix of `key_dim` rows of `value_dim`; `heads_per_key` value heads
/// share one query/key head.
#[derive(Clone, Copy, Debug)]
pub struct DeltaRuleArgs<'x> {
    /// Queries (normalized and scaled), `[key_heads, key_dim]`.
    pub q: &'x [f32],
    /// Keys (normalized), `[key_heads, key_dim]`.
    pub k: &'x [f32],
    /// Values, `[heads, value_dim]`.
    pub v: &'x [f32],
    /// Writing strength `β` per value head, `[heads]`.
    pub beta: &'x [f32],
    /// Decay `e^g` per value head, `[heads]`.
    pub decay: &'x [f32],
    /// Value heads.
    pub heads: usize,
    /// Value heads per query/key head.
    pub heads_per_key: usize,
    /// Key width per head: rows of a state matrix.
    pub key_dim: usize,
    /// Value width per head: columns of a state matrix.
    pub value_dim: usize,
}

/// One token of the gated delta rule and its read-out, per value head:
/// `S ← decay S`, `u = (v - Sᵀk) β`, `S ← S + k uᵀ`, `o = Sᵀ q`. `state` is
/// `[heads, key_dim, value_dim]`, `out` is `[heads, value_dim]`
/// (overwritten). Used by Gated DeltaNet (Qwen3-Next's linear attention);
/// with `decay = 1` it is DeltaNet's rule.
pub type DeltaRule = fn(args: &DeltaRuleArgs<'_>, state: &mut [f32], out: &mut [f32]);

/// The reference [`DeltaRule`].
pub fn delta_rule(args: &DeltaRuleArgs<'_>, state: &mut [f32], out: &mut [f32]) {
    let (kd, vd) = (args.key_dim, args.value_dim);
    if kd == 0 || vd == 0 {
        return;
    }
    let heads = state.chunks_exact_mut(kd * vd).zip(out.chunks_exact_mut(vd)).zip(args.v.chunks_exact(vd));
    for (h, ((s, o), vh)) in heads.enumerate().take(args.heads) {
        let kh = h / args.heads_per_key.max(1);
        let (Some(qh), Some(khv), Some(&beta), Some(&decay)) = (
            args.q.get(kh * kd..(kh + 1) * kd),
            args.k.get(kh * kd..(kh + 1) * kd),
            args.beta.get(h),
            args.decay.get(h),
        ) else {
            return;
        };
        // o temporarily holds Sᵀk (the memory read at k), after decay.
        o.fill(0.0);
        for (row, &ki) in s.chunks_exact_mut(vd).zip(khv) {
            for (sv, ov) in row.iter_mut().zip(o.iter_mut()) {
                *sv *= decay;
                *ov += *sv * ki;
            }
        }
        for (ov, &vv) in o.iter_mut().zip(vh) {
            *ov = (vv - *ov) * beta;
        }
        // Rank-1 update with u = o, then read out at q into o.
        for (row, &ki) in s.chunks_exact_mut(vd).zip(khv) {
            for (sv, dv) in row.iter_mut().zip(o.iter()) {
                *sv += ki * dv;
            }
        }
        o.fill(0.0);
        for (row, &qi) in s.chunks_exact(vd).zip(qh) {
            for (ov, sv) in o.iter_mut().zip(row) {
                *ov += sv * qi;
            }
        }
    }
}
