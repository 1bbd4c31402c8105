//! Gated outer-product state update with a per-key-channel decay (GLA).

/// One token of the gated outer-product update for `heads` heads, each a
/// state matrix of `key_dim` rows of `value_dim`.
#[derive(Clone, Copy, Debug)]
pub struct GatedOuterProductArgs<'x> {
    /// Queries, already scaled, `[heads, key_dim]`.
    pub q: &'x [f32],
    /// Keys, `[heads, key_dim]`.
    pub k: &'x [f32],
    /// Values, `[heads, value_dim]`.
    pub v: &'x [f32],
    /// Decay per key channel (`α`, in (0, 1]), `[heads, key_dim]`.
    pub decay: &'x [f32],
    /// Heads.
    pub heads: usize,
    /// Key (and query) width per head: rows of a state matrix.
    pub key_dim: usize,
    /// Value width per head: columns of a state matrix.
    pub value_dim: usize,
}

/// One token of the gated outer-product update and its read-out, per head:
/// `S ← diag(α) S + k vᵀ`, `o = Sᵀ q` (row `i` of `S` is decayed and
/// updated, then added to `o` with weight `q_i`, in row order). `state`
/// is `[heads, key_dim, value_dim]`, `out` is `[heads, value_dim]`
/// (overwritten). Used by GLA; with `α = 1` it is plain linear attention.
pub type GatedOuterProduct = fn(args: &GatedOuterProductArgs<'_>, state: &mut [f32], out: &mut [f32]);

/// The reference [`GatedOuterProduct`].
pub fn gated_outer_product(args: &GatedOuterProductArgs<'_>, state: &mut [f32], out: &mut [f32]) {
    let (kd, vd) = (args.key_dim, args.value_dim);
    if kd == 0 || vd == 0 {
        return;
    }
    let heads = state.chunks_exact_mut(kd * vd).zip(out.chunks_exact_mut(vd)).zip(args.v.chunks_exact(vd));
    for (h, ((s, o), vh)) in heads.enumerate().take(args.heads) {
        o.fill(0.0);
        for (i, row) in s.chunks_exact_mut(vd).enumerate() {
            let j = h * kd + i;
            let (Some(&alpha), Some(&kj), Some(&qj)) = (args.decay.get(j), args.k.get(j), args.q.get(j))
            else {
                return;
            };
            for ((sv, &vv), ov) in row.iter_mut().zip(vh).zip(o.iter_mut()) {
                *sv = alpha * *sv + kj * vv;
                *ov += *sv * qj;
            }
        }
    }
}
