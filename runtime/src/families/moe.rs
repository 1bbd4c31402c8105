//! A sparse mixture-of-experts MLP, the building block families with
//! experts share: a router picks the top-k of `experts` SwiGLU experts per
//! token, and an optional shared expert (scaled by a sigmoid gate) runs for
//! every token.
//!
//! Per token `x` (the normed residual): router logits `l = R x` (f32, the
//! router stays f32 in every weight format so quantizing the experts never
//! changes which ones run), probabilities `p = softmax(l)`, the `top_k`
//! largest (ties to the lower index), renormalized to sum to 1 when the
//! model says so; the output is `Σ p_e E_e(x) + sigmoid(g·x) S(x)` with
//! `E_e(x) = down_e(silu(gate_e x) ⊙ up_e x)`.
//!
//! The experts of a layer are two stacked matrices: `gate_up` (per expert
//! `d_expert` gate rows then `d_expert` up rows) and `down` (per expert
//! `d_model` rows). A token reads only the rows of its chosen experts; a
//! prefill chunk gathers the tokens of each expert and multiplies them in
//! one batched product (bit-identical to one product per token), adding the
//! experts of every token in ascending expert order either way.

use crate::arch::HParam;
use crate::error::ModelError;
use crate::family::RunCtx;
use crate::file::EddyFile;
use crate::linear::Linear;
use crate::ops::sigmoid;
use crate::schema::{dim, flag, TensorCursor, TensorKind, TensorSpec, MAX_DIM};

/// The geometry of a mixture-of-experts MLP.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MoeShape {
    /// Routed experts.
    pub experts: u32,
    /// Experts each token runs.
    pub top_k: u32,
    /// Hidden width of a routed expert.
    pub d_expert: u32,
    /// Hidden width of the shared expert (0: none).
    pub d_shared: u32,
    /// The chosen probabilities are renormalized to sum to 1.
    pub norm_top_k: bool,
}

impl MoeShape {
    /// The shape a file declares (`None`: no experts).
    pub(crate) fn from_file(file: &EddyFile<'_>) -> Result<Option<Self>, ModelError> {
        if file.hparam(HParam::NExperts).unwrap_or(0) == 0 {
            return Ok(None);
        }
        let experts = dim(file, HParam::NExperts, 4096)?;
        let top_k = dim(file, HParam::ExpertsPerToken, 4096)?;
        if top_k > experts {
            return Err(ModelError::BadHParam { name: HParam::ExpertsPerToken.name(), value: top_k });
        }
        let d_shared = file.hparam(HParam::DSharedExpert).unwrap_or(0);
        if d_shared > MAX_DIM {
            return Err(ModelError::BadHParam { name: HParam::DSharedExpert.name(), value: d_shared });
        }
        Ok(Some(MoeShape {
            experts,
            top_k,
            d_expert: dim(file, HParam::DExpert, MAX_DIM)?,
            d_shared,
            norm_top_k: flag(file, HParam::NormTopK)?,
        }))
    }

    /// Widest hidden layer (routed or shared).
    fn hidden(&self) -> usize {
        (self.d_expert as usize).max(self.d_shared as usize)
    }

    /// Visit the block's tensors of layer `i` in file order: router,
    /// stacked expert matrices, then the shared expert and its gate.
    pub(crate) fn visit_specs(&self, i: u32, d_model: u64, visit: &mut dyn FnMut(TensorSpec)) {
        use TensorKind::{Matrix, F32};
        let (e, fe, fs) = (self.experts as u64, self.d_expert as u64, self.d_shared as u64);
        let s = |pattern, rows, cols, kind| TensorSpec::layer(pattern, i, rows, cols, kind);
        visit(s("layers.{i}.moe.router.weight", e, d_model, F32));
        visit(s("layers.{i}.moe.experts_gate_up.weight", e * 2 * fe, d_model, Matrix));
        visit(s("layers.{i}.moe.experts_down.weight", e * d_model, fe, Matrix));
        if fs > 0 {
            visit(s("layers.{i}.moe.shared_gate_proj.weight", fs, d_model, Matrix));
            visit(s("layers.{i}.moe.shared_up_proj.weight", fs, d_model, Matrix));
            visit(s("layers.{i}.moe.shared_down_proj.weight", d_model, fs, Matrix));
            visit(s("layers.{i}.moe.shared_expert_gate.weight", 1, d_model, F32));
        }
    }

    /// Scratch words of the block's rows for `n` tokens (see
    /// [`MoeRows`]), `None` on overflow.
    pub(crate) fn scratch_words(&self, n: usize, d_model: usize) -> Option<usize> {
        let (e, k, h) = (self.experts as usize, self.top_k as usize, self.hidden());
        let per_token = e
            .checked_add(k.checked_mul(2)?)?
            .checked_add(2)?
            .checked_add(d_model.checked_mul(3)?)?
            .checked_add(h.checked_mul(3)?)?;
        n.checked_mul(per_token)
    }
}

/// The weights of one mixture-of-experts block.
pub(crate) struct MoeWeights<'a> {
    router: &'a [f32],
    gate_up: Linear<'a>,
    down: Linear<'a>,
    shared: Option<SharedExpert<'a>>,
}

struct SharedExpert<'a> {
    gate: Linear<'a>,
    up: Linear<'a>,
    down: Linear<'a>,
    weight: &'a [f32],
}

impl<'a> MoeWeights<'a> {
    /// The block at the cursor (the tensors of [`MoeShape::visit_specs`]).
    pub(crate) fn at(shape: &MoeShape, t: &mut TensorCursor<'_, 'a>) -> Self {
        let (router, gate_up, down) = (t.f32(), t.linear(false), t.linear(false));
        let shared = (shape.d_shared > 0).then(|| SharedExpert {
            gate: t.linear(false),
            up: t.linear(false),
            down: t.linear(false),
            weight: t.f32(),
        });
        MoeWeights { router, gate_up, down, shared }
    }
}

/// Row buffers the block works in, carved from one slice of
/// [`MoeShape::scratch_words`] words.
struct MoeRows<'r> {
    logits: &'r mut [f32],
    picks: &'r mut [f32],
    routed: &'r mut [f32],
    gathered: &'r mut [f32],
    hidden: &'r mut [f32],
    act: &'r mut [f32],
    out: &'r mut [f32],
    acc: &'r mut [f32],
}

impl<'r> MoeRows<'r> {
    fn carve(s: &MoeShape, n: usize, dm: usize, words: &'r mut [f32]) -> Self {
        let (e, k, h) = (s.experts as usize, s.top_k as usize, s.hidden());
        let (logits, rest) = words.split_at_mut(n * e);
        let (picks, rest) = rest.split_at_mut(n * 2 * k);
        let (routed, rest) = rest.split_at_mut(n * 2);
        let (gathered, rest) = rest.split_at_mut(n * dm);
        let (hidden, rest) = rest.split_at_mut(n * 2 * h);
        let (act, rest) = rest.split_at_mut(n * h);
        let (out, rest) = rest.split_at_mut(n * dm);
        MoeRows { logits, picks, routed, gathered, hidden, act, out, acc: &mut rest[..n * dm] }
    }
}

fn dot(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).fold(0.0, |s, (x, y)| s + x * y)
}

/// Choose the `picks.len() / 2` experts of the largest `logits` (ties to
/// the lower index): `picks` gets `[expert, weight]` pairs in descending
/// logit order, weights the softmax probabilities (renormalized when
/// `norm`). Expert indices are below 4096, exact in f32.
fn route(logits: &[f32], picks: &mut [f32], norm: bool) {
    let max = logits.iter().fold(f32::NEG_INFINITY, |m, &l| m.max(l));
    let total: f32 = logits.iter().map(|&l| libm::expf(l - max)).sum();
    let mut chosen = 0.0f32;
    for j in 0..picks.len() / 2 {
        let (done, rest) = picks.split_at_mut(2 * j);
        let taken = |e: usize| done.chunks_exact(2).any(|p| p[0] as usize == e);
        let mut best: Option<usize> = None;
        for (e, &l) in logits.iter().enumerate() {
            if !taken(e) && best.is_none_or(|b| l > logits[b]) {
                best = Some(e);
            }
        }
        let e = best.unwrap_or(0);
        let p = libm::expf(logits[e] - max) / total;
        chosen += p;
        rest[0] = e as f32;
        rest[1] = p;
    }
    if norm && chosen > 0.0 {
        for pick in picks.chunks_exact_mut(2) {
            pick[1] /= chosen;
        }
    }
}

impl MoeWeights<'_> {
    /// Add the block's output for the `n` rows of `normed` (the normed
    /// residual, `n * d_model`) to the residual rows `x`; `scratch` holds
    /// [`MoeShape::scratch_words`] words for `n` tokens.
    #[allow(clippy::too_many_arguments)] // the block, its rows and the compute context
    pub(crate) fn add_to(
        &self,
        s: &MoeShape,
        normed: &[f32],
        x: &mut [f32],
        n: usize,
        scratch: &mut [f32],
        rc: &mut RunCtx<'_, '_, '_>,
    ) {
        let dm = self.gate_up.cols();
        let (e_count, k, fe) = (s.experts as usize, s.top_k as usize, s.d_expert as usize);
        let r = MoeRows::carve(s, n, dm, scratch);
        let normed = &normed[..n * dm];
        for ((xs, logits), picks) in normed
            .chunks_exact(dm)
            .zip(r.logits.chunks_exact_mut(e_count))
            .zip(r.picks.chunks_exact_mut(2 * k))
        {
            for (l, w) in logits.iter_mut().zip(self.router.chunks_exact(dm)) {
                *l = dot(w, xs);
            }
            route(logits, picks, s.norm_top_k);
        }
        r.acc.fill(0.0);
        let silu_mul = rc.cx.kernels.silu_mul;
        for e in 0..e_count {
            // The tokens routed to expert `e`, in order, with their weights
            // (token indices below `n`, exact in f32).
            let mut m = 0;
            for (t, picks) in r.picks.chunks_exact(2 * k).enumerate() {
                if let Some(p) = picks.chunks_exact(2).find(|p| p[0] as usize == e) {
                    r.gathered[m * dm..(m + 1) * dm].copy_from_slice(&normed[t * dm..(t + 1) * dm]);
                    r.routed[2 * m] = t as f32;
                    r.routed[2 * m + 1] = p[1];
                    m += 1;
                }
            }
            if m == 0 {
                continue;
            }
            let (Some(gate_up), Some(down)) =
                (self.gate_up.row_block(e * 2 * fe, 2 * fe), self.down.row_block(e * dm, dm))
            else {
                continue;
            };
            rc.project(&gate_up, &r.gathered[..m * dm], &mut r.hidden[..m * 2 * fe], m);
            for (h, a) in r.hidden.chunks_exact_mut(2 * fe).zip(r.act.chunks_exact_mut(fe)).take(m) {
                let (g, u) = h.split_at_mut(fe);
                silu_mul(g, u);
                a.copy_from_slice(g);
            }
            rc.project(&down, &r.act[..m * fe], &mut r.out[..m * dm], m);
            for (j, y) in r.out.chunks_exact(dm).take(m).enumerate() {
                let (t, w) = (r.routed[2 * j] as usize, r.routed[2 * j + 1]);
                for (a, v) in r.acc[t * dm..(t + 1) * dm].iter_mut().zip(y) {
                    *a += w * v;
                }
            }
        }
        if let Some(sh) = &self.shared {
            let fs = sh.gate.rows();
            let (gate, up) = r.hidden[..n * 2 * fs].split_at_mut(n * fs);
            rc.project(&sh.gate, normed, gate, n);
            rc.project(&sh.up, normed, up, n);
            silu_mul(gate, up);
            rc.project(&sh.down, gate, &mut r.out[..n * dm], n);
            for ((a, y), xs) in
                r.acc.chunks_exact_mut(dm).zip(r.out.chunks_exact(dm)).zip(normed.chunks_exact(dm))
            {
                let g = sigmoid(dot(sh.weight, xs));
                for (av, v) in a.iter_mut().zip(y) {
                    *av += g * v;
                }
            }
        }
        crate::ops::add_assign(&mut x[..n * dm], &r.acc[..n * dm]);
    }
}

/// Parameters and weight bytes of a file (`total`) and those one token
/// reads (`active`): a stacked expert matrix counts `top_k / experts` of
/// itself as active, every other tensor all of itself.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ActiveWeights {
    /// Parameters in the file.
    pub total_params: u64,
    /// Parameters a token reads.
    pub active_params: u64,
    /// Weight bytes in the file.
    pub total_bytes: u64,
    /// Weight bytes a token reads.
    pub active_bytes: u64,
}

/// [`ActiveWeights`] of `file` (all active without experts).
pub fn active_weights(file: &EddyFile<'_>) -> ActiveWeights {
    let experts = file.hparam(HParam::NExperts).unwrap_or(0) as u64;
    let top_k = file.hparam(HParam::ExpertsPerToken).unwrap_or(0) as u64;
    let mut w = ActiveWeights { total_params: 0, active_params: 0, total_bytes: 0, active_bytes: 0 };
    for t in file.tensors() {
        let (params, bytes) = (t.numel(), t.data.len() as u64);
        w.total_params += params;
        w.total_bytes += bytes;
        // Whole experts: each holds `1 / experts` of the stacked rows.
        let share =
            |v: u64| if experts > 0 && t.name.contains(".moe.experts_") { v / experts * top_k } else { v };
        w.active_params += share(params);
        w.active_bytes += share(bytes);
    }
    w
}

#[cfg(test)]
mod tests {
    use super::route;

    #[test]
    fn route_takes_the_top_k_with_ties_to_the_lower_index() {
        let logits = [0.5, 2.0, -1.0, 2.0, 1.0];
        let mut picks = [0.0; 6];
        route(&logits, &mut picks, false);
        assert_eq!([picks[0], picks[2], picks[4]], [1.0, 3.0, 4.0]);
        let total: f32 = logits.iter().map(|&l| libm::expf(l - 2.0)).sum();
        assert_eq!(picks[1], 1.0 / total);
        assert_eq!(picks[1], picks[3]);
        assert!(picks[5] < picks[1]);
        route(&logits, &mut picks, true);
        let sum = picks[1] + picks[3] + picks[5];
        assert!((sum - 1.0).abs() < 1e-6, "{sum}");
        assert_eq!([picks[0], picks[2], picks[4]], [1.0, 3.0, 4.0]);
    }
}
