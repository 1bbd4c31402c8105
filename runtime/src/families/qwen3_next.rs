//! Qwen3-Next as released (`Qwen3NextForCausalLM`): Gated DeltaNet layers
//! mixed with gated full-attention layers, and mixture-of-experts MLPs
//! ([`crate::moe`]) mixed with dense ones, per the file's layer-kinds table
//! (per layer: bit 0 attention, bit 1 experts).
//!
//! Gated attention: `q_proj` gives per head the queries and an output gate
//! (the converter splits them into `q_proj` and `gate_proj`), queries and
//! keys get a per-head RMSNorm, then rotary embedding on their leading
//! `rotary_dims` values, attention over the bounded KV cache
//! ([`crate::attention`], full attention in the original, so a window
//! shorter than the context is an approximation), the output multiplied by
//! `sigmoid(gate)`, then `o_proj`.
//!
//! State: the token position, then per layer the Gated DeltaNet state or
//! the KV cache (exact in every state format, in its own cache format).

use super::{DeltaWeights, GatedDeltaNet, Rows};
use crate::arch::HParam;
use crate::attention::{self, AttentionShape, CacheLayout, ChunkRows, KvCacheOptions, POSITION_WORDS};
use crate::error::ModelError;
use crate::family::{MlpRows, RunCtx};
use crate::file::{BlobKind, EddyFile};
use crate::hybrid::{attention_hparams, cache_layout, default_kv_options, native_window};
use crate::linear::Linear;
use crate::moe::{MoeShape, MoeWeights};
use crate::ops::{add_assign, rms_norm_rows, sigmoid};
use crate::schema::{TensorCursor, TensorKind, TensorSpec};
use crate::state_store::{LayerState, StatePart, StateParts, StateStore};

/// Layer-kinds bit of a gated full-attention layer.
pub const KIND_ATTENTION: u8 = 1;
/// Layer-kinds bit of a layer whose MLP is a mixture of experts.
pub const KIND_EXPERTS: u8 = 2;

/// What Qwen3-Next adds to a Gated DeltaNet stack: the attention shape,
/// the experts and which layers have them.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Qwen3NextLayers<'a> {
    /// Query heads of attention layers.
    pub n_heads: u32,
    /// Key/value heads of attention layers.
    pub n_kv_heads: u32,
    /// Values per attention head.
    pub head_dim: u32,
    /// Leading values of each head with rotary embedding.
    pub rotary_dims: u32,
    /// Rotary base frequency.
    pub rope_theta: f32,
    /// The experts of the layers that have them.
    pub moe: Option<MoeShape>,
    /// Per layer [`KIND_ATTENTION`] and [`KIND_EXPERTS`] bits.
    pub layer_kinds: &'a [u8],
    /// How attention layers cache keys and values.
    pub kv: KvCacheOptions,
}

impl<'a> Qwen3NextLayers<'a> {
    /// The layers a file declares (`None` without a layer-kinds table:
    /// all Gated DeltaNet with dense MLPs).
    pub(crate) fn from_file(file: &EddyFile<'a>, n_layer: u32) -> Result<Option<Self>, ModelError> {
        let Some(kinds) = file.blob(BlobKind::LayerKinds) else {
            return Ok(None);
        };
        let moe = MoeShape::from_file(file)?;
        let bits = KIND_ATTENTION | KIND_EXPERTS;
        let bad = |&k: &u8| k & !bits != 0 || (k & KIND_EXPERTS != 0 && moe.is_none());
        if kinds.len() != n_layer as usize || kinds.iter().any(bad) {
            return Err(ModelError::BadLayerKinds);
        }
        let (n_heads, n_kv_heads, head_dim, rotary_dims, rope_theta) =
            attention_hparams(file, HParam::NAttnHeads)?;
        let layers = Qwen3NextLayers {
            n_heads,
            n_kv_heads,
            head_dim,
            rotary_dims,
            rope_theta,
            moe,
            layer_kinds: kinds,
            kv: default_kv_options(native_window(file)?),
        };
        layers.cache()?;
        Ok(Some(layers))
    }

    /// Whether layer `i` is an attention layer.
    pub fn is_attention(&self, i: usize) -> bool {
        self.layer_kinds.get(i).is_some_and(|k| k & KIND_ATTENTION != 0)
    }

    /// The experts of layer `i` (`None`: a dense MLP).
    pub fn moe_of(&self, i: usize) -> Option<MoeShape> {
        self.moe.filter(|_| self.layer_kinds.get(i).is_some_and(|k| k & KIND_EXPERTS != 0))
    }

    /// Whether any layer is an attention layer.
    pub(crate) fn has_attention(&self) -> bool {
        (0..self.layer_kinds.len()).any(|i| self.is_attention(i))
    }

    /// Shape of every attention layer (scores scaled by `head_dim^-1/2`).
    pub(crate) fn attention(&self) -> AttentionShape {
        AttentionShape {
            n_heads: self.n_heads as usize,
            n_kv_heads: self.n_kv_heads as usize,
            head_dim: self.head_dim as usize,
            rotary_dims: self.rotary_dims as usize,
            rope_theta: self.rope_theta,
            score_scale: 1.0 / libm::sqrtf(self.head_dim as f32),
        }
    }

    /// Cache layout of every attention layer.
    pub(crate) fn cache(&self) -> Result<CacheLayout, ModelError> {
        cache_layout(&self.attention(), self.kv)
    }

    /// f32 words of state: the position, then per layer the KV cache or
    /// `delta` words of Gated DeltaNet state.
    pub(crate) fn state_words(&self, delta: usize) -> Option<usize> {
        let cache = self.cache().ok()?.words()?;
        (0..self.layer_kinds.len()).try_fold(POSITION_WORDS, |acc, i| {
            acc.checked_add(if self.is_attention(i) { cache } else { delta })
        })
    }

    /// Widest input of an attention or expert matrix.
    pub(crate) fn max_cols(&self) -> usize {
        let qd = (self.n_heads * self.head_dim) as usize;
        let experts = self.moe.map_or(0, |m| (m.d_expert as usize).max(m.d_shared as usize));
        qd.max(experts)
    }

    /// Scratch sizes for `n` tokens: queries, output gates, keys, values,
    /// attention output, attention scratch, mixture-of-experts rows.
    pub(crate) fn sizes(&self, n: usize, d_model: usize) -> [Option<usize>; 7] {
        let a = self.attention();
        let (qd, kd) = (a.n_heads * a.head_dim, a.n_kv_heads * a.head_dim);
        let rows = |w: usize| n.checked_mul(w);
        let scratch = self.cache().ok().map(|cache| attention::scratch_words(&a, &cache, n));
        let moe = self.moe.map_or(Some(0), |m| m.scratch_words(n, d_model));
        [rows(qd), rows(qd), rows(kd), rows(kd), rows(qd), scratch, moe]
    }

    /// Visit the tensors of attention layer `i` after its input norm.
    pub(crate) fn visit_attention_specs(&self, i: u32, d_model: u64, visit: &mut dyn FnMut(TensorSpec)) {
        use TensorKind::{Matrix, F32};
        let a = self.attention();
        let (qd, kd, hd) = ((a.n_heads * a.head_dim) as u64, (a.n_kv_heads * a.head_dim) as u64, a.head_dim as u64);
        let s = |pattern, rows, cols, kind| TensorSpec::layer(pattern, i, rows, cols, kind);
        for spec in [
            s("layers.{i}.attn.q_proj.weight", qd, d_model, Matrix),
            s("layers.{i}.attn.gate_proj.weight", qd, d_model, Matrix),
            s("layers.{i}.attn.k_proj.weight", kd, d_model, Matrix),
            s("layers.{i}.attn.v_proj.weight", kd, d_model, Matrix),
            s("layers.{i}.attn.q_norm.weight", 1, hd, F32),
            s("layers.{i}.attn.k_norm.weight", 1, hd, F32),
            s("layers.{i}.attn.o_proj.weight", d_model, qd, Matrix),
        ] {
            visit(spec);
        }
    }
}

/// The weights of a gated attention layer.
struct GatedAttention<'a> {
    q: Linear<'a>,
    gate: Linear<'a>,
    k: Linear<'a>,
    v: Linear<'a>,
    q_norm: &'a [f32],
    k_norm: &'a [f32],
    o: Linear<'a>,
}

impl<'a> GatedAttention<'a> {
    fn at(t: &mut TensorCursor<'_, 'a>) -> Self {
        let (q, gate, k, v) = (t.linear(false), t.linear(false), t.linear(false), t.linear(false));
        let (q_norm, k_norm) = (t.f32(), t.f32());
        GatedAttention { q, gate, k, v, q_norm, k_norm, o: t.linear(false) }
    }
}

impl<'a> GatedDeltaNet<'a> {
    /// State layer `layer`: the position (0), then model layer
    /// `layer - 1`'s KV cache (exact) or Gated DeltaNet state.
    pub(super) fn hybrid_layer_parts(&self, h: &Qwen3NextLayers<'_>, layer: usize) -> StateParts {
        match layer.checked_sub(1) {
            None => StateParts::new([StatePart::Exact(POSITION_WORDS)]),
            Some(i) if h.is_attention(i) => {
                let words = h.cache().ok().and_then(|c| c.words()).unwrap_or(0);
                StateParts::new([StatePart::Exact(words)])
            }
            Some(_) => self.delta_parts(),
        }
    }

    /// Gated attention of the chunk's `n` normed rows into `r.out`.
    #[allow(clippy::too_many_arguments)] // the layer, its cache and the chunk's buffers
    fn gated_attention(
        &self,
        h: &Qwen3NextLayers<'_>,
        w: &GatedAttention<'_>,
        layer: &mut LayerState<'_>,
        pos: u64,
        n: usize,
        r: &mut Rows<'_>,
        rc: &mut RunCtx<'_, '_, '_>,
    ) {
        let Ok(layout) = h.cache() else { return };
        let shape = h.attention();
        let (qd, kd) = (shape.n_heads * shape.head_dim, shape.n_kv_heads * shape.head_dim);
        let dm = self.config.d_model as usize;
        let ys = [&mut r.q[..n * qd], &mut r.q_gate[..n * qd], &mut r.k[..n * kd], &mut r.v[..n * kd]];
        rc.project_fused([&w.q, &w.gate, &w.k, &w.v], &r.normed[..n * dm], ys, n);
        let mut rows = ChunkRows { q: r.q, k: r.k, v: r.v, out: r.attended };
        let norms = Some((w.q_norm, w.k_norm, self.config.norm_eps));
        let cache = bytemuck::cast_slice_mut::<f32, u8>(layer.words());
        attention::attend_chunk(&shape, &layout, cache, pos, n, &mut rows, norms, r.attention, rc.cx);
        for (o, g) in r.attended[..n * qd].iter_mut().zip(&r.q_gate[..n * qd]) {
            *o *= sigmoid(*g);
        }
        rc.project(&w.o, &r.attended[..n * qd], &mut r.out[..n * dm], n);
    }

    /// Run `tokens` through all layers of a Qwen3-Next stack, layer by
    /// layer (a step is a chunk of one). Leaves the logits of the last
    /// `logit_rows` tokens.
    pub(super) fn run_hybrid(
        &self,
        h: &Qwen3NextLayers<'_>,
        tokens: &[u32],
        state: &mut StateStore<'_>,
        r: &mut Rows<'_>,
        rc: &mut RunCtx<'_, '_, '_>,
    ) {
        let c = &self.config;
        let (dm, vd, eps) = (c.d_model as usize, (c.n_v_heads * c.head_v_dim) as usize, c.norm_eps);
        let n = tokens.len();
        let m = n * dm;
        let mut layers = state.layers();
        let position = layers.take_exact(POSITION_WORDS);
        let pos = attention::load_position(position);
        self.embed().rows_into(tokens, r.x);
        let mut t = TensorCursor::at(&self.file, 1);
        for i in 0..c.n_layer as usize {
            let norm = t.f32();
            let mut layer = layers.next(self.hybrid_layer_parts(h, i + 1));
            rms_norm_rows(&r.x[..m], norm, eps, r.normed);
            if h.is_attention(i) {
                let w = GatedAttention::at(&mut t);
                self.gated_attention(h, &w, &mut layer, pos, n, r, rc);
            } else {
                let w = DeltaWeights::at(&mut t);
                self.mix(&w, &mut layer, r, n, rc);
                rc.project(&w.out_proj, &r.core[..n * vd], &mut r.out[..m], n);
            }
            add_assign(&mut r.x[..m], &r.out[..m]);
            match h.moe_of(i) {
                Some(shape) => {
                    let mlp_norm = t.f32();
                    let moe = MoeWeights::at(&shape, &mut t);
                    rms_norm_rows(&r.x[..m], mlp_norm, eps, r.normed);
                    moe.add_to(&shape, &r.normed[..m], r.x, n, r.moe, rc);
                }
                None => {
                    let mlp = super::swiglu_mlp(&mut t);
                    let rows = MlpRows { x: r.x, normed: r.normed, gate: r.gate, up: r.up, out: r.out };
                    mlp.add_to(rows, n, eps, rc);
                }
            }
        }
        attention::store_position(position, pos.wrapping_add(n as u64));
        if rc.logit_rows == 0 {
            return;
        }
        let head = crate::family::RmsHead::at(&self.file, t.next_index(), eps, c.tied_embeddings);
        head.logits(&r.x[..m], dm, r.normed, r.logits, rc);
    }
}
