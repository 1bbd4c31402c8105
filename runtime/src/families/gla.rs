//! Gated linear attention (GLA, Yang et al. 2024) in the layout of fla's
//! `GLAForCausalLM`: per head a matrix state `S` (`head_k_dim x
//! head_v_dim`) with a data-dependent per-key-channel decay, then a gated
//! RMSNorm; each layer is followed by a SwiGLU MLP.
//!
//! Per token and head: `α = exp(logsigmoid(G2 G1 x + b) / normalizer)`,
//! `S ← diag(α) S + k vᵀ`, `o = Sᵀ (q / sqrt(head_k_dim))`, then
//! `o = rmsnorm(o) ⊙ w ⊙ silu(g)` and the output projection. Supported:
//! fla's defaults (no short convolution, no feature map, output gate with
//! the fused swish norm, as many key/value heads as heads). Prefill batches
//! every projection over the chunk; with an f32 state the recurrence runs
//! blocks of heads over the whole chunk on the workers, with a coded state
//! token by token.

use crate::arch::HParam;
use crate::error::ModelError;
use super::head_blocks::{run_heads, HeadRecurrence};
use crate::family::{layer_major_family, scratch_rows, Compute, ProductScratch, RmsHead, RunCtx};
use super::step_products::{self, Product};
use super::mixer_layers::{run_stack, swiglu_mlp, LayerFrame, StackAccess, StackDims, StackRows};
use crate::family::GatedMlp;
use crate::file::EddyFile;
use crate::linear::Linear;
use crate::ops::{exp_fast, gated_rms_norm_heads, softplus};
use crate::schema::{
    dim, epsilon, flag, gated_mlp_specs, required, visit_head, TensorCursor, TensorKind, TensorSpec, MAX_DIM,
};
use crate::state_store::{LayerState, StatePart, StateParts, StateStore};
use eddy_kernels::GatedOuterProductArgs;

/// Hyper-parameters of a GLA model.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct GlaConfig {
    /// Vocabulary size.
    pub vocab_size: u32,
    /// Model width.
    pub d_model: u32,
    /// Number of layers.
    pub n_layer: u32,
    /// Heads (one state matrix each).
    pub n_heads: u32,
    /// Query/key head width.
    pub head_k_dim: u32,
    /// Value head width.
    pub head_v_dim: u32,
    /// Rank of the gate projection.
    pub gate_rank: u32,
    /// MLP width.
    pub d_ffn: u32,
    /// Divisor of the log-sigmoid gate.
    pub gate_normalizer: f32,
    /// RMSNorm epsilon.
    pub norm_eps: f32,
    /// LM head tied to the embedding.
    pub tied_embeddings: bool,
}

#[derive(Clone, Copy)]
struct Dims {
    dm: usize,
    kd: usize,
    vd: usize,
    hk: usize,
    hv: usize,
    nh: usize,
    rank: usize,
    ff: usize,
    v: usize,
    max_cols: usize,
}

impl GlaConfig {
    /// Read and check the hyper-parameters of a file.
    pub fn from_file(file: &EddyFile<'_>) -> Result<Self, ModelError> {
        let n_heads = dim(file, HParam::NHeads, 4096)?;
        let value_dim = dim(file, HParam::DInner, MAX_DIM)?;
        if value_dim % n_heads != 0 {
            return Err(ModelError::BadHParam { name: HParam::DInner.name(), value: value_dim });
        }
        let bits = required(file, HParam::GateNormalizer)?;
        let gate_normalizer = f32::from_bits(bits);
        if !(gate_normalizer.is_finite() && gate_normalizer > 0.0) {
            return Err(ModelError::BadHParam { name: HParam::GateNormalizer.name(), value: bits });
        }
        Ok(GlaConfig {
            vocab_size: dim(file, HParam::VocabSize, MAX_DIM)?,
            d_model: dim(file, HParam::DModel, MAX_DIM)?,
            n_layer: dim(file, HParam::NLayer, 4096)?,
            n_heads,
            head_k_dim: dim(file, HParam::DState, 4096)?,
            head_v_dim: value_dim / n_heads,
            gate_rank: dim(file, HParam::LoraDecay, MAX_DIM)?,
            d_ffn: dim(file, HParam::DFfn, MAX_DIM)?,
            gate_normalizer,
            norm_eps: epsilon(file, HParam::NormEps)?,
            tied_embeddings: flag(file, HParam::TiedEmbeddings)?,
        })
    }

    fn dims(&self) -> Dims {
        let (hk, hv, nh) = (self.head_k_dim as usize, self.head_v_dim as usize, self.n_heads as usize);
        let (dm, ff) = (self.d_model as usize, self.d_ffn as usize);
        Dims {
            dm,
            kd: nh * hk,
            vd: nh * hv,
            hk,
            hv,
            nh,
            rank: self.gate_rank as usize,
            ff,
            v: self.vocab_size as usize,
            max_cols: dm.max(nh * hv).max(ff).max(self.gate_rank as usize),
        }
    }

    /// f32 words of state: the head matrices of every layer.
    pub fn state_words(&self) -> Option<usize> {
        let d = self.dims();
        d.nh.checked_mul(d.hk)?.checked_mul(d.hv)?.checked_mul(self.n_layer as usize)
    }

    /// Scratch sizes for `n` tokens: residual, normed, q, k, v, g, gate
    /// hidden, gate, core, out, mlp gate, mlp up, logits rows, the heads'
    /// staged outputs, activations.
    fn sizes(&self, n: usize, logit_rows: usize) -> [Option<usize>; 16] {
        let d = self.dims();
        let rows = |w: usize| n.checked_mul(w);
        [
            rows(d.dm),
            rows(d.dm),
            rows(d.kd),
            rows(d.kd),
            rows(d.vd),
            rows(d.vd),
            rows(d.rank),
            rows(d.kd),
            rows(d.vd),
            rows(d.dm),
            rows(d.ff),
            rows(d.ff),
            logit_rows.checked_mul(d.v),
            rows(d.vd),
            Some(step_products::scratch_words(d.max_cols)),
            ProductScratch::words(d.max_cols, n),
        ]
    }
}

/// Visit the canonical tensor list of a GLA model in file order.
pub fn tensor_schema(c: &GlaConfig, visit: &mut dyn FnMut(TensorSpec)) {
    use TensorKind::{Matrix, F32};
    let d = c.dims();
    let (v, dm, kd, vd) = (d.v as u64, d.dm as u64, d.kd as u64, d.vd as u64);
    visit(TensorSpec::global("embed.weight", v, dm, Matrix));
    for i in 0..c.n_layer {
        let s = |pattern, rows, cols, kind| TensorSpec::layer(pattern, i, rows, cols, kind);
        for spec in [
            s("layers.{i}.attn_norm.weight", 1, dm, F32),
            s("layers.{i}.q_proj.weight", kd, dm, Matrix),
            s("layers.{i}.k_proj.weight", kd, dm, Matrix),
            s("layers.{i}.v_proj.weight", vd, dm, Matrix),
            s("layers.{i}.g_proj.weight", vd, dm, Matrix),
            s("layers.{i}.gk_down.weight", d.rank as u64, dm, Matrix),
            s("layers.{i}.gk_up.weight", kd, d.rank as u64, Matrix),
            s("layers.{i}.gk_up.bias", 1, kd, F32),
            s("layers.{i}.g_norm.weight", 1, d.hv as u64, F32),
            s("layers.{i}.o_proj.weight", dm, vd, Matrix),
        ]
        .into_iter()
        .chain(gated_mlp_specs(i, "layers.{i}.mlp_norm.weight", dm, d.ff as u64))
        {
            visit(spec);
        }
    }
    visit_head(visit, v, dm, c.tied_embeddings);
}

const PER_LAYER: u32 = 14;

/// The gate LoRA has no activation between its matrices.
fn identity(v: f32) -> f32 {
    v
}

struct LayerWeights<'a> {
    attn_norm: &'a [f32],
    q: Linear<'a>,
    k: Linear<'a>,
    v: Linear<'a>,
    g: Linear<'a>,
    gk_down: Linear<'a>,
    gk_up: Linear<'a>,
    g_norm: &'a [f32],
    o: Linear<'a>,
    mlp: GatedMlp<'a>,
}

scratch_rows! {
    /// Per-token vectors of a chunk, `n` rows each (1 for a step).
    Rows { x, normed, q, k, v, g, hidden, gk, core, out, mlp_gate, mlp_up, logits, blocked, products }
}

impl<'a> Gla<'a> {
    /// Widest input of any matrix (activation scratch).
    fn max_cols(&self) -> usize {
        self.config.dims().max_cols
    }

    /// A layer's state: the head matrices, `head_k_dim` rows of
    /// `head_v_dim` values per head.
    fn layer_parts(&self, _layer: usize) -> StateParts {
        let d = self.config.dims();
        StateParts::new([StatePart::Coded { rows: d.nh * d.hk, cols: d.hv }])
    }

    fn layer(&self, i: u32) -> LayerWeights<'a> {
        let mut t = TensorCursor::at(&self.file, 1 + i * PER_LAYER);
        LayerWeights {
            attn_norm: t.f32(),
            q: t.linear(false),
            k: t.linear(false),
            v: t.linear(false),
            g: t.linear(false),
            gk_down: t.linear(false),
            gk_up: t.linear(true),
            g_norm: t.f32(),
            o: t.linear(false),
            mlp: swiglu_mlp(&mut t),
        }
    }

    /// The recurrence and gated norm of the chunk's `n` tokens for every
    /// head (the `q` and `gk` rows are turned into the scaled queries and
    /// the decays in place), into the `core` rows.
    fn recur(&self, w: &LayerWeights<'_>, layer: &mut LayerState<'_>, r: &mut Rows<'_>, n: usize, cx: Compute<'_>) {
        let d = self.config.dims();
        let scale = 1.0 / libm::sqrtf(d.hk as f32);
        for qv in r.q[..n * d.kd].iter_mut() {
            *qv *= scale;
        }
        // α = exp(logsigmoid(gk) / normalizer), logsigmoid(x) = -softplus(-x).
        for gv in r.gk[..n * d.kd].iter_mut() {
            *gv = exp_fast(-softplus(-*gv) / self.config.gate_normalizer);
        }
        let shape =
            HeadRecurrence { heads: d.nh, group: 1, state_words: d.hk * d.hv, out_width: d.hv, tokens: n };
        let (q, k, v, decay) = (&*r.q, &*r.k, &*r.v, &*r.gk);
        let update = cx.kernels.gated_outer_product;
        let words = layer.words().len();
        run_heads(cx, layer, 0..words, shape, (&mut r.core[..n * d.vd], r.blocked), |t, b, state, out| {
            let keys = b.span(t, d.kd, d.hk);
            let args = GatedOuterProductArgs {
                q: &q[keys.clone()],
                k: &k[keys.clone()],
                v: &v[b.span(t, d.vd, d.hv)],
                decay: &decay[keys],
                heads: b.count,
                key_dim: d.hk,
                value_dim: d.hv,
            };
            update(&args, state, out);
        });
        gated_rms_norm_heads(&mut r.core[..n * d.vd], &r.g[..n * d.vd], w.g_norm, self.config.norm_eps);
    }

    /// Projections, recurrence and gated norm of layer `w` over the
    /// chunk's `n` normed rows, into the `core` rows.
    fn mix(&self, w: &LayerWeights<'_>, layer: &mut LayerState<'_>, r: &mut Rows<'_>, n: usize, rc: &mut RunCtx<'_, '_, '_>) {
        let d = self.config.dims();
        let x = &r.normed[..n * d.dm];
        let (kd, vd) = (n * d.kd, n * d.vd);
        // Independent products of the same rows: one hand-off for a step.
        let gk_up = Some((identity as fn(f32) -> f32, &w.gk_up, &mut r.gk[..kd]));
        let products = [
            Product { l: &w.q, x, y: &mut r.q[..kd], then: None },
            Product { l: &w.k, x, y: &mut r.k[..kd], then: None },
            Product { l: &w.v, x, y: &mut r.v[..vd], then: None },
            Product { l: &w.g, x, y: &mut r.g[..vd], then: None },
            Product { l: &w.gk_down, x, y: &mut r.hidden[..n * d.rank], then: gk_up },
        ];
        step_products::run_products(products, n, (&mut *r.products, d.max_cols), rc);
        self.recur(w, layer, r, n, rc.cx);
    }

    /// Run `tokens` through all layers (see [`run_stack`]). Leaves the
    /// logits of the last `logit_rows` tokens.
    fn run(&self, tokens: &[u32], state: &mut StateStore<'_>, r: &mut Rows<'_>, rc: &mut RunCtx<'_, '_, '_>) {
        let c = &self.config;
        let d = c.dims();
        let dims = StackDims { n_layer: c.n_layer, d_model: d.dm, value_dim: d.vd, eps: c.norm_eps };
        let head = RmsHead::at(&self.file, 1 + c.n_layer * PER_LAYER, c.norm_eps, c.tied_embeddings);
        let access = StackAccess {
            rows: |r: &mut Rows<'_>| {
                let Rows { x, normed, core, out, mlp_gate, mlp_up, logits, .. } = r;
                StackRows { x, normed, core, out, mlp_gate, mlp_up, logits }
            },
            frame: |w: &LayerWeights<'a>| LayerFrame { norm: w.attn_norm, out_proj: &w.o, mlp: &w.mlp },
        };
        let layer = |i: u32| (self.layer(i), self.layer_parts(i as usize));
        let mix = |w: &LayerWeights<'a>, l: &mut LayerState<'_>, r: &mut Rows<'_>, n, rc: &mut RunCtx<'_, '_, '_>| {
            self.mix(w, l, r, n, rc)
        };
        run_stack(dims, (self.embed(), head), access, layer, mix, tokens, state, (r, rc));
    }
}

layer_major_family!(
    /// A loaded, validated GLA model.
    Gla,
    config = GlaConfig,
    logits_slot = 12
);
