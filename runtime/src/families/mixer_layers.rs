//! The layer stack GLA and Gated DeltaNet share: per layer an RMSNorm, the
//! family's token mixer (projections of the normed rows, recurrence and
//! per-head gated norm into `core` rows), the output projection added to
//! the residual stream and a SwiGLU MLP; then the final norm and LM head.

use crate::family::{GateActivation, GatedMlp, MlpRows, RmsHead, RunCtx};
use crate::linear::Linear;
use crate::ops::{add_assign, rms_norm_rows};
use crate::schema::TensorCursor;
use crate::state_store::{LayerState, StateParts, StateStore};

/// The rows of a chunk the stack itself uses (each family's scratch holds
/// more for its mixer).
pub(crate) struct StackRows<'r> {
    /// The residual stream, `n * d_model`.
    pub x: &'r mut [f32],
    /// Normed rows, `n * d_model`.
    pub normed: &'r mut [f32],
    /// The mixer's output, `n * value_dim`.
    pub core: &'r mut [f32],
    /// Projection outputs, `n * d_model`.
    pub out: &'r mut [f32],
    /// MLP gate rows, `n * d_ffn`.
    pub mlp_gate: &'r mut [f32],
    /// MLP up rows, `n * d_ffn`.
    pub mlp_up: &'r mut [f32],
    /// Logits rows.
    pub logits: &'r mut [f32],
}

/// What the stack needs of one layer's weights.
pub(crate) struct LayerFrame<'w, 'a> {
    /// RMSNorm weight before the mixer.
    pub norm: &'w [f32],
    /// Output projection of the mixer.
    pub out_proj: &'w Linear<'a>,
    /// The MLP after it.
    pub mlp: &'w GatedMlp<'a>,
}

/// How [`run_stack`] reaches into a family's rows `R` and layer weights
/// `W`.
pub(crate) struct StackAccess<'a, R, W> {
    /// The rows the stack uses.
    pub rows: fn(&mut R) -> StackRows<'_>,
    /// What the stack needs of a layer's weights.
    pub frame: for<'w> fn(&'w W) -> LayerFrame<'w, 'a>,
}

/// The geometry of a stack.
#[derive(Clone, Copy)]
pub(crate) struct StackDims {
    /// Layers.
    pub n_layer: u32,
    /// Model width.
    pub d_model: usize,
    /// Width of the mixer's output.
    pub value_dim: usize,
    /// RMSNorm epsilon.
    pub eps: f32,
}

/// Run `tokens` through every layer, layer by layer (a step is a chunk
/// of one), leaving the logits of the last `rc.logit_rows` tokens: layer
/// `i` has the weights and state parts `layer(i)`, and `mix(w, state,
/// rows, n, rc)` runs its mixer over the chunk's `n` normed rows into the
/// `core` rows.
#[allow(clippy::too_many_arguments)] // the model's parts and a chunk's buffers
pub(crate) fn run_stack<'a, R, W>(
    d: StackDims,
    (embed, head): (Linear<'_>, RmsHead<'_>),
    access: StackAccess<'a, R, W>,
    layer: impl Fn(u32) -> (W, StateParts),
    mut mix: impl FnMut(&W, &mut LayerState<'_>, &mut R, usize, &mut RunCtx<'_, '_, '_>),
    tokens: &[u32],
    state: &mut StateStore<'_>,
    (r, rc): (&mut R, &mut RunCtx<'_, '_, '_>),
) {
    let rows = access.rows;
    let n = tokens.len();
    let m = n * d.d_model;
    embed.rows_into(tokens, rows(r).x);
    let mut layers = state.layers();
    for i in 0..d.n_layer {
        let (w, parts) = layer(i);
        let mut layer = layers.next(parts);
        let frame = (access.frame)(&w);
        {
            let s = rows(r);
            rms_norm_rows(&s.x[..m], frame.norm, d.eps, s.normed);
        }
        mix(&w, &mut layer, r, n, rc);
        let s = rows(r);
        rc.project(frame.out_proj, &s.core[..n * d.value_dim], &mut s.out[..m], n);
        add_assign(&mut s.x[..m], &s.out[..m]);
        let mlp_rows = MlpRows { x: s.x, normed: s.normed, gate: s.mlp_gate, up: s.mlp_up, out: s.out };
        frame.mlp.add_to(mlp_rows, n, d.eps, rc);
    }
    if rc.logit_rows == 0 {
        return;
    }
    let s = rows(r);
    head.logits(&s.x[..m], d.d_model, s.normed, s.logits, rc);
}

/// A SwiGLU MLP (norm, gate, up, down) at the cursor.
pub(crate) fn swiglu_mlp<'a>(t: &mut TensorCursor<'_, 'a>) -> GatedMlp<'a> {
    GatedMlp {
        norm: t.f32(),
        gate: t.linear(false),
        up: t.linear(false),
        down: t.linear(false),
        act: GateActivation::Silu,
    }
}
