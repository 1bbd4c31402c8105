//! Gated DeltaNet (the linear-attention layers of Qwen3-Next): per value
//! head a matrix state `S` (`head_k_dim x head_v_dim`) updated by the gated
//! delta rule, then a gated RMSNorm; each layer is followed by a SwiGLU MLP.
//!
//! Per token and value head `h` (key head `h / (n_heads / n_groups)`):
//! `q, k` are L2-normalized (`q` also scaled by `1/sqrt(head_k_dim)`),
//! `β = sigmoid(b)`, `g = A softplus(a + dt_bias)` with `A = -exp(A_log)`;
//! `S ← e^g S`, `S ← S + k ((v - Sᵀk) β)ᵀ`, `o = Sᵀ q`.
//!
//! The converter reorders Qwen3-Next's per-key-head interleaved `qkvz` and
//! `ba` projection rows into contiguous `[q | k | v | z]` and `[b | a]`
//! blocks (a row permutation: exact), and stores the `1 + w` of Qwen3-Next's
//! RMSNorms as plain weights. Prefill batches every projection over the
//! chunk and runs the conv and the q/k norms for all its tokens; with an
//! f32 state the delta rule then runs blocks of heads over the whole chunk
//! on the workers, with a coded state token by token (no chunked WY form
//! yet).
//!
//! Qwen3-Next as released also has gated full-attention layers and
//! mixture-of-experts MLPs: a file with a layer-kinds table runs them
//! ([`qwen3_next`]); a file without one is all Gated DeltaNet with
//! dense MLPs, exactly as before.

use crate::arch::HParam;
use crate::error::ModelError;
use super::head_blocks::{run_heads, HeadRecurrence};
use crate::family::{layer_major_family, scratch_rows, Compute, ProductScratch, RmsHead, RunCtx};
use super::mixer_layers::{run_stack, swiglu_mlp, LayerFrame, StackAccess, StackDims, StackRows};
use crate::family::GatedMlp;
use crate::file::EddyFile;
use crate::linear::Linear;
use crate::ops::{exp_fast, gated_rms_norm_heads, sigmoid, softplus};
use crate::schema::{
    dim, epsilon, flag, gated_mlp_specs, visit_head, TensorCursor, TensorKind, TensorSpec, MAX_DIM,
};
use crate::state_store::{LayerState, StatePart, StateParts, StateStore};
#[path = "qwen3_next.rs"]
pub mod qwen3_next;
pub use qwen3_next::Qwen3NextLayers;
use eddy_kernels::DeltaRuleArgs;

/// Hyper-parameters of a Gated DeltaNet model.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct GatedDeltaNetConfig<'a> {
    /// Vocabulary size.
    pub vocab_size: u32,
    /// Model width.
    pub d_model: u32,
    /// Number of layers.
    pub n_layer: u32,
    /// Value heads (one state matrix each).
    pub n_v_heads: u32,
    /// Query/key heads, each shared by `n_v_heads / n_k_heads` value heads.
    pub n_k_heads: u32,
    /// Query/key head width.
    pub head_k_dim: u32,
    /// Value head width.
    pub head_v_dim: u32,
    /// Causal convolution width.
    pub d_conv: u32,
    /// MLP width.
    pub d_ffn: u32,
    /// RMSNorm epsilon.
    pub norm_eps: f32,
    /// LM head tied to the embedding.
    pub tied_embeddings: bool,
    /// Qwen3-Next's attention layers and mixture-of-experts MLPs (`None`:
    /// every layer Gated DeltaNet with a dense MLP).
    pub hybrid: Option<Qwen3NextLayers<'a>>,
}

#[derive(Clone, Copy)]
struct Dims {
    dm: usize,
    kd: usize,
    vd: usize,
    hk: usize,
    hv: usize,
    nv: usize,
    conv_dim: usize,
    /// Conv window kept per channel (`d_conv - 1`).
    keep: usize,
    ff: usize,
    v: usize,
    max_cols: usize,
}

impl<'a> GatedDeltaNetConfig<'a> {
    /// Read and check the hyper-parameters of a file.
    pub fn from_file(file: &EddyFile<'a>) -> Result<Self, ModelError> {
        let n_v_heads = dim(file, HParam::NHeads, 4096)?;
        let n_k_heads = dim(file, HParam::NGroups, 4096)?;
        let value_dim = dim(file, HParam::DInner, MAX_DIM)?;
        if n_v_heads % n_k_heads != 0 {
            return Err(ModelError::BadHParam { name: HParam::NGroups.name(), value: n_k_heads });
        }
        if value_dim % n_v_heads != 0 {
            return Err(ModelError::BadHParam { name: HParam::DInner.name(), value: value_dim });
        }
        let n_layer = dim(file, HParam::NLayer, 4096)?;
        Ok(GatedDeltaNetConfig {
            vocab_size: dim(file, HParam::VocabSize, MAX_DIM)?,
            d_model: dim(file, HParam::DModel, MAX_DIM)?,
            n_layer,
            n_v_heads,
            n_k_heads,
            head_k_dim: dim(file, HParam::DState, 4096)?,
            head_v_dim: value_dim / n_v_heads,
            d_conv: dim(file, HParam::DConv, 64)?,
            d_ffn: dim(file, HParam::DFfn, MAX_DIM)?,
            norm_eps: epsilon(file, HParam::NormEps)?,
            tied_embeddings: flag(file, HParam::TiedEmbeddings)?,
            hybrid: Qwen3NextLayers::from_file(file, n_layer)?,
        })
    }

    fn dims(&self) -> Dims {
        let (hk, hv) = (self.head_k_dim as usize, self.head_v_dim as usize);
        let kd = self.n_k_heads as usize * hk;
        let vd = self.n_v_heads as usize * hv;
        let (dm, ff) = (self.d_model as usize, self.d_ffn as usize);
        Dims {
            dm,
            kd,
            vd,
            hk,
            hv,
            nv: self.n_v_heads as usize,
            conv_dim: 2 * kd + vd,
            keep: self.d_conv as usize - 1,
            ff,
            v: self.vocab_size as usize,
            max_cols: dm.max(vd).max(ff).max(self.hybrid.map_or(0, |h| h.max_cols())),
        }
    }

    /// f32 words of one Gated DeltaNet layer's state: conv window and
    /// delta-rule matrices.
    fn delta_state_words(&self) -> Option<usize> {
        let d = self.dims();
        let conv = d.conv_dim.checked_mul(d.keep)?;
        let mats = d.nv.checked_mul(d.hk)?.checked_mul(d.hv)?;
        conv.checked_add(mats)
    }

    /// f32 words of state: per layer the conv window and delta-rule
    /// matrices (or, in Qwen3-Next, after the position, the KV cache of
    /// an attention layer).
    pub fn state_words(&self) -> Option<usize> {
        let delta = self.delta_state_words()?;
        match &self.hybrid {
            None => delta.checked_mul(self.n_layer as usize),
            Some(h) => h.state_words(delta),
        }
    }

    /// State layers: one per layer, after the position in Qwen3-Next.
    fn state_layers(&self) -> usize {
        self.n_layer as usize + usize::from(self.hybrid.is_some())
    }

    /// KV cache options of the attention layers (`None`: none).
    fn kv_cache(&self) -> Option<crate::attention::KvCacheOptions> {
        self.hybrid.filter(|h| h.has_attention()).map(|h| h.kv)
    }

    /// The same config with other KV cache options (checked).
    fn with_kv_cache(&self, kv: crate::attention::KvCacheOptions) -> Result<Self, ModelError> {
        let mut c = *self;
        if let Some(h) = &mut c.hybrid {
            h.kv = kv;
            h.cache()?;
        }
        Ok(c)
    }

    /// Scratch sizes for `n` tokens: residual, normed, qkvz, ba, conv out,
    /// core, out, gate, up, logits rows, the heads' staged outputs, then
    /// Qwen3-Next's (queries, output gates, keys, values, attention
    /// output, attention scratch, mixture-of-experts rows), activations.
    fn sizes(&self, n: usize, logit_rows: usize) -> [Option<usize>; 19] {
        let d = self.dims();
        let rows = |w: usize| n.checked_mul(w);
        let own = [
            rows(d.dm),
            rows(d.dm),
            rows(2 * d.kd + 2 * d.vd),
            rows(2 * d.nv),
            rows(d.conv_dim),
            rows(d.vd),
            rows(d.dm),
            rows(d.ff),
            rows(d.ff),
            logit_rows.checked_mul(d.v),
            rows(d.vd),
        ];
        let hybrid = match &self.hybrid {
            Some(h) => h.sizes(n, d.dm),
            None => [Some(0); 7],
        };
        let [a, b, c, e, f, g, h] = hybrid;
        let [s0, s1, s2, s3, s4, s5, s6, s7, s8, s9, s10] = own;
        [s0, s1, s2, s3, s4, s5, s6, s7, s8, s9, s10, a, b, c, e, f, g, h, ProductScratch::words(d.max_cols, n)]
    }
}

/// Visit the canonical tensor list of a Gated DeltaNet model in file order.
pub fn tensor_schema(c: &GatedDeltaNetConfig<'_>, visit: &mut dyn FnMut(TensorSpec)) {
    use TensorKind::{Matrix, F32};
    let d = c.dims();
    let (v, dm, nv) = (d.v as u64, d.dm as u64, d.nv as u64);
    visit(TensorSpec::global("embed.weight", v, dm, Matrix));
    for i in 0..c.n_layer {
        let s = |pattern, rows, cols, kind| TensorSpec::layer(pattern, i, rows, cols, kind);
        visit(s("layers.{i}.norm.weight", 1, dm, F32));
        match &c.hybrid {
            Some(h) if h.is_attention(i as usize) => h.visit_attention_specs(i, dm, visit),
            _ => {
                for spec in [
                    s("layers.{i}.in_proj_qkvz.weight", (2 * d.kd + 2 * d.vd) as u64, dm, Matrix),
                    s("layers.{i}.in_proj_ba.weight", 2 * nv, dm, Matrix),
                    s("layers.{i}.conv1d.weight", d.conv_dim as u64, c.d_conv as u64, F32),
                    s("layers.{i}.dt_bias", 1, nv, F32),
                    s("layers.{i}.A", 1, nv, F32),
                    s("layers.{i}.gate_norm.weight", 1, d.hv as u64, F32),
                    s("layers.{i}.out_proj.weight", dm, d.vd as u64, Matrix),
                ] {
                    visit(spec);
                }
            }
        }
        match c.hybrid.and_then(|h| h.moe_of(i as usize)) {
            Some(moe) => {
                visit(s("layers.{i}.mlp_norm.weight", 1, dm, F32));
                moe.visit_specs(i, dm, visit);
            }
            None => {
                for spec in gated_mlp_specs(i, "layers.{i}.mlp_norm.weight", dm, d.ff as u64) {
                    visit(spec);
                }
            }
        }
    }
    visit_head(visit, v, dm, c.tied_embeddings);
}

const PER_LAYER: u32 = 12;

/// The weights of one Gated DeltaNet mixer.
struct DeltaWeights<'a> {
    qkvz: Linear<'a>,
    ba: Linear<'a>,
    conv_w: &'a [f32],
    dt_bias: &'a [f32],
    a: &'a [f32],
    gate_norm: &'a [f32],
    /// Output projection.
    out_proj: Linear<'a>,
}

impl<'a> DeltaWeights<'a> {
    /// The mixer at the cursor.
    fn at(t: &mut TensorCursor<'_, 'a>) -> Self {
        DeltaWeights {
            qkvz: t.linear(false),
            ba: t.linear(false),
            conv_w: t.f32(),
            dt_bias: t.f32(),
            a: t.f32(),
            gate_norm: t.f32(),
            out_proj: t.linear(false),
        }
    }
}

struct LayerWeights<'a> {
    norm: &'a [f32],
    delta: DeltaWeights<'a>,
    mlp: GatedMlp<'a>,
}

/// Scale `x` to unit L2 norm as Qwen3-Next does (`x * rsqrt(Σx² + 1e-6)`).
fn l2_normalize(x: &mut [f32], scale: f32) {
    let ss: f32 = x.iter().map(|v| v * v).sum();
    let inv = scale / libm::sqrtf(ss + 1e-6);
    for v in x {
        *v *= inv;
    }
}

scratch_rows! {
    /// Per-token vectors of a chunk, `n` rows each (1 for a step); the
    /// rows after `blocked` are Qwen3-Next's (empty otherwise).
    Rows { x, normed, qkvz, ba, conv, core, out, gate, up, logits, blocked, q, q_gate, k, v, attended, attention, moe }
}

impl<'a> GatedDeltaNet<'a> {
    /// Widest input of any matrix (activation scratch).
    fn max_cols(&self) -> usize {
        self.config.dims().max_cols
    }

    /// A layer's state: the conv window (exact), then the delta-rule
    /// matrices, `head_k_dim` rows of `head_v_dim` values per value head.
    fn layer_parts(&self, layer: usize) -> StateParts {
        if let Some(h) = &self.config.hybrid {
            return self.hybrid_layer_parts(h, layer);
        }
        self.delta_parts()
    }

    /// The state parts of a Gated DeltaNet layer.
    fn delta_parts(&self) -> StateParts {
        let d = self.config.dims();
        StateParts::new([
            StatePart::Exact(d.conv_dim * d.keep),
            StatePart::Coded { rows: d.nv * d.hk, cols: d.hv },
        ])
    }

    fn layer(&self, i: u32) -> LayerWeights<'a> {
        let mut t = TensorCursor::at(&self.file, 1 + i * PER_LAYER);
        LayerWeights { norm: t.f32(), delta: DeltaWeights::at(&mut t), mlp: swiglu_mlp(&mut t) }
    }

    /// Conv, delta rule and gated norm of the chunk's `n` tokens: `qkvz`
    /// and `ba` rows in (`ba` is turned into `β` and the decay in place),
    /// `core` rows out. The layer state is the conv window, then the
    /// matrices.
    fn recur(&self, w: &DeltaWeights<'_>, layer: &mut LayerState<'_>, r: &mut Rows<'_>, n: usize, cx: Compute<'_>) {
        let d = self.config.dims();
        let (qw, window) = (2 * d.kd + 2 * d.vd, d.conv_dim * d.keep);
        let conv_w = eddy_kernels::ConvWeights { weight: w.conv_w, bias: None, width: d.keep + 1 };
        let q_scale = 1.0 / libm::sqrtf(d.hk as f32);
        let rows = r.qkvz.chunks_exact(qw).zip(r.conv.chunks_exact_mut(d.conv_dim));
        for ((qkvz, conv), ba) in rows.zip(r.ba.chunks_exact_mut(2 * d.nv)).take(n) {
            (cx.kernels.conv_silu)(&conv_w, &mut layer.words()[..window], &qkvz[..d.conv_dim], conv);
            let (qk, _) = conv.split_at_mut(2 * d.kd);
            let (q, k) = qk.split_at_mut(d.kd);
            for (qh, kh) in q.chunks_exact_mut(d.hk).zip(k.chunks_exact_mut(d.hk)) {
                l2_normalize(qh, q_scale);
                l2_normalize(kh, 1.0);
            }
            // b becomes β = sigmoid(b), a the decay e^g, g = A softplus(a + dt_bias).
            let (beta, decay) = ba.split_at_mut(d.nv);
            for h in 0..d.nv {
                beta[h] = sigmoid(beta[h]);
                decay[h] = exp_fast(w.a[h] * softplus(decay[h] + w.dt_bias[h]));
            }
        }
        let per_key = d.nv / self.config.n_k_heads as usize;
        let shape =
            HeadRecurrence { heads: d.nv, group: per_key, state_words: d.hk * d.hv, out_width: d.hv, tokens: n };
        let (conv, ba) = (&*r.conv, &*r.ba);
        let rule = cx.kernels.delta_rule;
        let span = window..layer.words().len();
        run_heads(cx, layer, span, shape, (&mut r.core[..n * d.vd], r.blocked), |t, b, state, out| {
            let row = &conv[t * d.conv_dim..(t + 1) * d.conv_dim];
            let (q, k) = (&row[..d.kd], &row[d.kd..2 * d.kd]);
            let keys = b.grouped(per_key).span(0, 0, d.hk);
            let (beta, decay) = ba[t * 2 * d.nv..(t + 1) * 2 * d.nv].split_at(d.nv);
            let heads = b.span(0, 0, 1);
            let args = DeltaRuleArgs {
                q: &q[keys.clone()],
                k: &k[keys],
                v: &row[2 * d.kd..][b.span(0, 0, d.hv)],
                beta: &beta[heads.clone()],
                decay: &decay[heads],
                heads: b.count,
                heads_per_key: per_key,
                key_dim: d.hk,
                value_dim: d.hv,
            };
            rule(&args, state, out);
        });
        // Gated RMSNorm per head: norm, weight, then silu(z).
        let core = r.core.chunks_exact_mut(d.vd).zip(r.qkvz.chunks_exact(qw)).take(n);
        for (o, qkvz) in core {
            gated_rms_norm_heads(o, &qkvz[d.conv_dim..], w.gate_norm, self.config.norm_eps);
        }
    }

    /// Projections, conv, delta rule and gated norm of layer `w` over the
    /// chunk's `n` normed rows, into the `core` rows.
    fn mix(&self, w: &DeltaWeights<'_>, layer: &mut LayerState<'_>, r: &mut Rows<'_>, n: usize, rc: &mut RunCtx<'_, '_, '_>) {
        let d = self.config.dims();
        let m = n * d.dm;
        let ys = [&mut r.qkvz[..n * (2 * d.kd + 2 * d.vd)], &mut r.ba[..n * 2 * d.nv]];
        rc.project_fused([&w.qkvz, &w.ba], &r.normed[..m], ys, n);
        self.recur(w, layer, r, n, rc.cx);
    }

    /// Run `tokens` through all layers (see [`run_stack`]). Leaves the
    /// logits of the last `logit_rows` tokens.
    fn run(&self, tokens: &[u32], state: &mut StateStore<'_>, r: &mut Rows<'_>, rc: &mut RunCtx<'_, '_, '_>) {
        let c = &self.config;
        if let Some(h) = &c.hybrid {
            return self.run_hybrid(h, tokens, state, r, rc);
        }
        let d = c.dims();
        let dims = StackDims { n_layer: c.n_layer, d_model: d.dm, value_dim: d.vd, eps: c.norm_eps };
        let head = RmsHead::at(&self.file, 1 + c.n_layer * PER_LAYER, c.norm_eps, c.tied_embeddings);
        let access = StackAccess {
            rows: |r: &mut Rows<'_>| {
                let Rows { x, normed, core, out, gate, up, logits, .. } = r;
                StackRows { x, normed, core, out, mlp_gate: gate, mlp_up: up, logits }
            },
            frame: |w: &LayerWeights<'a>| LayerFrame { norm: w.norm, out_proj: &w.delta.out_proj, mlp: &w.mlp },
        };
        let layer = |i: u32| (self.layer(i), self.layer_parts(i as usize));
        let mix = |w: &LayerWeights<'a>, l: &mut LayerState<'_>, r: &mut Rows<'_>, n, rc: &mut RunCtx<'_, '_, '_>| {
            self.mix(&w.delta, l, r, n, rc)
        };
        run_stack(dims, (self.embed(), head), access, layer, mix, tokens, state, (r, rc));
    }
}

layer_major_family!(
    /// A loaded, validated Gated DeltaNet model.
    GatedDeltaNet,
    config = GatedDeltaNetConfig<'a>,
    logits_slot = 9,
    optional_attention
);
