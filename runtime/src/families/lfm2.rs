//! LFM2 (Liquid AI): a hybrid of gated short-convolution layers and
//! grouped-query attention layers, each followed by a SwiGLU MLP, in the
//! layout of `Lfm2ForCausalLM`.
//!
//! Convolution layer: `B, C, x = in_proj(h)`, `y = C ⊙ conv(B ⊙ x)` with a
//! causal depthwise convolution of width `d_conv` (no activation), then
//! `out_proj`. Attention layer: per-head RMSNorm of queries and keys,
//! rotary embedding, attention over the bounded KV cache of
//! [`crate::attention`] (full attention in the original model, so a
//! window shorter than the context is an approximation; measured in
//! BENCHMARKS.md). Pre-norm residual blocks, a final RMSNorm, tied head.
//!
//! State: the token position, then per layer the convolution window
//! (`(d_conv - 1) x d_model`) or the KV cache, all exact in every state
//! format (no part of it is coded to 8 or 4 bits). Prefill batches every
//! projection over the chunk, convolves the chunk in one kernel call and
//! splits the chunk's attention queries across workers
//! ([`attention::attend_chunk`]); results equal stepping bit for bit.

use crate::arch::HParam;
use crate::attention::{self, ChunkRows, KvCacheOptions, POSITION_WORDS};
use crate::error::ModelError;
use crate::family::{
    layer_major_family, scratch_rows, GateActivation, GatedMlp, MlpRows, ProductScratch, RmsHead, RunCtx,
};
use crate::file::EddyFile;
use crate::hybrid::{
    attention_shape, default_kv_options, hybrid_config, native_window, AttentionRows, AttentionWeights,
    HybridConfig, LayerKinds,
};
use crate::linear::Linear;
use crate::ops::{add_assign, rms_norm_rows};
use crate::schema::{
    dim, epsilon, flag, gated_mlp_specs, visit_head, TensorCursor, TensorKind, TensorSpec, MAX_DIM,
};
use crate::state_store::{StatePart, StateParts, StateStore};
use eddy_kernels::{ConvTokens, ConvWeights, TokenRows};

/// Hyper-parameters of an LFM2 model.
#[derive(Clone, Copy, Debug)]
pub struct Lfm2Config<'a> {
    /// Vocabulary size.
    pub vocab_size: u32,
    /// Model width.
    pub d_model: u32,
    /// Number of layers.
    pub n_layer: u32,
    /// MLP width.
    pub d_ffn: u32,
    /// Convolution width (`conv_L_cache`).
    pub d_conv: u32,
    /// Convolution layers carry biases.
    pub conv_bias: bool,
    /// RMSNorm epsilon.
    pub norm_eps: f32,
    /// LM head tied to the embedding.
    pub tied_embeddings: bool,
    /// Query heads of attention layers.
    pub n_heads: u32,
    /// Key/value heads of attention layers.
    pub n_kv_heads: u32,
    /// Values per attention head.
    pub head_dim: u32,
    /// Leading values of each head that get rotary embedding (`head_dim`
    /// unless the file says otherwise).
    pub rotary_dims: u32,
    /// Rotary base frequency.
    pub rope_theta: f32,
    /// One byte per layer: 1 for attention, 0 for convolution.
    pub layer_kinds: &'a [u8],
    /// How attention layers cache keys and values.
    pub kv: KvCacheOptions,
    /// LM-Infinite's distance limit of attention layers: relative
    /// distances beyond it are scored as if exactly it (`None`: off).
    pub kv_distance_limit: Option<u32>,
}

#[derive(Clone, Copy)]
struct Dims {
    dm: usize,
    qd: usize,
    kd: usize,
    ff: usize,
    v: usize,
    keep: usize,
    max_cols: usize,
}

impl<'a> Lfm2Config<'a> {
    /// Read and check the hyper-parameters of a file (KV cache options
    /// at their defaults).
    pub fn from_file(file: &EddyFile<'a>) -> Result<Self, ModelError> {
        let n_layer = dim(file, HParam::NLayer, 4096)?;
        let head_dim = dim(file, HParam::HeadDim, 4096)?;
        let attention = attention_shape(file, 1.0 / libm::sqrtf(head_dim as f32))?;
        let kv = default_kv_options(native_window(file)?);
        let c = Lfm2Config {
            vocab_size: dim(file, HParam::VocabSize, MAX_DIM)?,
            d_model: dim(file, HParam::DModel, MAX_DIM)?,
            n_layer,
            d_ffn: dim(file, HParam::DFfn, MAX_DIM)?,
            d_conv: dim(file, HParam::DConv, 64)?,
            conv_bias: flag(file, HParam::ConvBias)?,
            norm_eps: epsilon(file, HParam::NormEps)?,
            tied_embeddings: flag(file, HParam::TiedEmbeddings)?,
            n_heads: attention.n_heads as u32,
            n_kv_heads: attention.n_kv_heads as u32,
            head_dim,
            rotary_dims: attention.rotary_dims as u32,
            rope_theta: attention.rope_theta,
            layer_kinds: LayerKinds::from_file(file, n_layer)?.as_bytes(),
            kv,
            kv_distance_limit: None,
        };
        c.cache()?;
        Ok(c)
    }

    fn dims(&self) -> Dims {
        let a = self.attention();
        let (dm, ff) = (self.d_model as usize, self.d_ffn as usize);
        let qd = a.n_heads * a.head_dim;
        Dims {
            dm,
            qd,
            kd: a.n_kv_heads * a.head_dim,
            ff,
            v: self.vocab_size as usize,
            keep: self.d_conv as usize - 1,
            max_cols: dm.max(qd).max(ff),
        }
    }

    /// f32 words of state: position, then every layer's.
    pub fn state_words(&self) -> Option<usize> {
        self.hybrid_state_words()
    }

    /// Scratch sizes for `n` tokens: residual, normed, projections (B/C/x
    /// or q/k/v), mixer output, block output, mlp gate, mlp up, attention
    /// scratch, logits rows, activations.
    fn sizes(&self, n: usize, logit_rows: usize) -> [Option<usize>; 10] {
        let d = self.dims();
        let rows = |w: usize| n.checked_mul(w);
        [
            rows(d.dm),
            rows(d.dm),
            rows((3 * d.dm).max(d.qd + 2 * d.kd)),
            rows(d.dm.max(d.qd)),
            rows(d.dm),
            rows(d.ff),
            rows(d.ff),
            self.cache().ok().map(|cache| attention::scratch_words(&self.attention(), &cache, n)),
            logit_rows.checked_mul(d.v),
            ProductScratch::words(d.max_cols, n),
        ]
    }
}

hybrid_config!(Lfm2Config<'_>, mixer_state_words = |c| c.dims().keep.checked_mul(c.dims().dm));

/// Visit the canonical tensor list of an LFM2 model in file order.
pub fn tensor_schema(c: &Lfm2Config<'_>, visit: &mut dyn FnMut(TensorSpec)) {
    use TensorKind::{Matrix, F32};
    let d = c.dims();
    let (v, dm, qd, kd, ff) = (d.v as u64, d.dm as u64, d.qd as u64, d.kd as u64, d.ff as u64);
    let hd = c.head_dim as u64;
    visit(TensorSpec::global("embed.weight", v, dm, Matrix));
    for i in 0..c.n_layer {
        let s = |pattern, rows, cols, kind| TensorSpec::layer(pattern, i, rows, cols, kind);
        visit(s("layers.{i}.operator_norm.weight", 1, dm, F32));
        if c.is_attention(i as usize) {
            for spec in [
                s("layers.{i}.q_proj.weight", qd, dm, Matrix),
                s("layers.{i}.k_proj.weight", kd, dm, Matrix),
                s("layers.{i}.v_proj.weight", kd, dm, Matrix),
                s("layers.{i}.q_norm.weight", 1, hd, F32),
                s("layers.{i}.k_norm.weight", 1, hd, F32),
                s("layers.{i}.o_proj.weight", dm, qd, Matrix),
            ] {
                visit(spec);
            }
        } else {
            visit(s("layers.{i}.in_proj.weight", 3 * dm, dm, Matrix));
            if c.conv_bias {
                visit(s("layers.{i}.in_proj.bias", 1, 3 * dm, F32));
            }
            visit(s("layers.{i}.conv.weight", dm, c.d_conv as u64, F32));
            if c.conv_bias {
                visit(s("layers.{i}.conv.bias", 1, dm, F32));
            }
            visit(s("layers.{i}.out_proj.weight", dm, dm, Matrix));
            if c.conv_bias {
                visit(s("layers.{i}.out_proj.bias", 1, dm, F32));
            }
        }
        for spec in gated_mlp_specs(i, "layers.{i}.ffn_norm.weight", dm, ff) {
            visit(spec);
        }
    }
    visit_head(visit, v, dm, c.tied_embeddings);
}

/// The mixer of one layer.
enum Mixer<'a> {
    Conv { in_proj: Linear<'a>, conv_w: &'a [f32], conv_b: Option<&'a [f32]>, out_proj: Linear<'a> },
    Attention(AttentionWeights<'a>),
}

struct LayerWeights<'a> {
    operator_norm: &'a [f32],
    mixer: Mixer<'a>,
    mlp: GatedMlp<'a>,
}

scratch_rows! {
    /// Per-token vectors of a chunk, `n` rows each (1 for a step).
    Rows { x, normed, proj, mixed, out, mlp_gate, mlp_up, attention, logits }
}

impl<'a> Lfm2<'a> {
    /// Widest input of any matrix (activation scratch).
    fn max_cols(&self) -> usize {
        self.config.dims().max_cols
    }

    /// Tensors of layer `i`.
    fn tensors_in_layer(&self, i: usize) -> u32 {
        if self.config.is_attention(i) {
            11
        } else {
            8 + 3 * self.config.conv_bias as u32
        }
    }

    /// State layer `layer`: the position words (0), then the convolution
    /// window or KV cache of model layer `layer - 1`, exact in every
    /// format: the window is small and read by the batched convolution,
    /// and the KV cache has its own format ([`KvCacheOptions`]), bytes
    /// inside f32 words that must not be recoded. (With no coded part,
    /// `run` needs no `end_token` calls.)
    fn layer_parts(&self, layer: usize) -> StateParts {
        match layer.checked_sub(1) {
            None => StateParts::new([StatePart::Exact(POSITION_WORDS)]),
            Some(i) => StateParts::new([StatePart::Exact(self.config.layer_state_words(i).unwrap_or(0))]),
        }
    }

    /// Weights of layer `i`, whose first tensor is at `index`.
    fn layer(&self, i: usize, index: u32) -> LayerWeights<'a> {
        let mut t = TensorCursor::at(&self.file, index);
        let operator_norm = t.f32();
        let mixer = if self.config.is_attention(i) {
            let (q, k, v) = (t.linear(false), t.linear(false), t.linear(false));
            let (q_norm, k_norm) = (t.f32(), t.f32());
            let qk_norms = Some((q_norm, k_norm, self.config.norm_eps));
            Mixer::Attention(AttentionWeights { q, k, v, o: t.linear(false), qk_norms })
        } else {
            let bias = self.config.conv_bias;
            Mixer::Conv {
                in_proj: t.linear(bias),
                conv_w: t.f32(),
                conv_b: t.f32_if(bias),
                out_proj: t.linear(bias),
            }
        };
        let mlp = GatedMlp {
            norm: t.f32(),
            gate: t.linear(false),
            up: t.linear(false),
            down: t.linear(false),
            act: GateActivation::Silu,
        };
        LayerWeights { operator_norm, mixer, mlp }
    }

    /// The final norm and the LM head (after the tensors of every layer).
    fn head(&self, index: u32) -> RmsHead<'a> {
        RmsHead::at(&self.file, index, self.config.norm_eps, self.config.tied_embeddings)
    }

    /// The mixer of one layer for the `n` rows of `r.normed`, output in
    /// `r.out`.
    fn mix(
        &self,
        mixer: &Mixer<'_>,
        layer_state: &mut [f32],
        pos: u64,
        n: usize,
        r: &mut Rows<'_>,
        rc: &mut RunCtx<'_, '_, '_>,
    ) {
        let c = &self.config;
        let d = c.dims();
        let normed = &r.normed[..n * d.dm];
        match mixer {
            Mixer::Conv { in_proj, conv_w, conv_b, out_proj } => {
                rc.project(in_proj, normed, &mut r.proj[..n * 3 * d.dm], n);
                for bcx in r.proj.chunks_exact_mut(3 * d.dm).take(n) {
                    let (b, rest) = bcx.split_at_mut(d.dm);
                    for (bv, xv) in b.iter_mut().zip(&rest[d.dm..]) {
                        *bv *= xv;
                    }
                }
                // One call over the chunk (`B ⊙ x` read in place inside each
                // token's `in_proj` row): exactly one `causal_conv` per token.
                let conv = ConvWeights { weight: conv_w, bias: *conv_b, width: c.d_conv as usize };
                let xs = TokenRows { data: &r.proj[..n * 3 * d.dm], stride: 3 * d.dm };
                let args = ConvTokens { conv, xs, channels: d.dm, tokens: n };
                (rc.cx.kernels.causal_conv_tokens)(&args, layer_state, &mut r.mixed[..n * d.dm]);
                for (bcx, y) in r.proj.chunks_exact(3 * d.dm).zip(r.mixed.chunks_exact_mut(d.dm)).take(n) {
                    for (yv, cv) in y.iter_mut().zip(&bcx[d.dm..2 * d.dm]) {
                        *yv *= cv;
                    }
                }
                rc.project(out_proj, &r.mixed[..n * d.dm], &mut r.out[..n * d.dm], n);
            }
            Mixer::Attention(weights) => {
                let Ok(layout) = c.cache() else { return };
                let (q, rest) = r.proj[..n * (d.qd + 2 * d.kd)].split_at_mut(n * d.qd);
                let (k, v) = rest.split_at_mut(n * d.kd);
                let rows =
                    AttentionRows { normed, qkv: ChunkRows { q, k, v, out: r.mixed }, out: r.out, scratch: r.attention };
                weights.apply(&c.attention(), &layout, layer_state, pos, n, rows, rc);
            }
        }
    }

    /// Run `tokens` through all layers, layer by layer (a step is a chunk
    /// of one). Leaves the logits of the last `logit_rows` tokens.
    fn run(&self, tokens: &[u32], state: &mut StateStore<'_>, r: &mut Rows<'_>, rc: &mut RunCtx<'_, '_, '_>) {
        let c = &self.config;
        let d = c.dims();
        let n = tokens.len();
        let m = n * d.dm;
        let mut layers = state.layers();
        let position = layers.take_exact(POSITION_WORDS);
        let pos = attention::load_position(position);
        self.embed().rows_into(tokens, r.x);
        let mut index = 1u32;
        for i in 0..c.n_layer as usize {
            let w = self.layer(i, index);
            index += self.tensors_in_layer(i);
            let mut layer = layers.next(self.layer_parts(i + 1));
            rms_norm_rows(&r.x[..m], w.operator_norm, c.norm_eps, r.normed);
            self.mix(&w.mixer, layer.words(), pos, n, r, rc);
            add_assign(&mut r.x[..m], &r.out[..m]);
            let mlp_rows = MlpRows { x: r.x, normed: r.normed, gate: r.mlp_gate, up: r.mlp_up, out: r.out };
            w.mlp.add_to(mlp_rows, n, c.norm_eps, rc);
        }
        attention::store_position(position, pos.wrapping_add(n as u64));
        if rc.logit_rows == 0 {
            return;
        }
        self.head(index).logits(&r.x[..m], d.dm, r.normed, r.logits, rc);
    }
}

layer_major_family!(
    /// A loaded, validated LFM2 model.
    Lfm2,
    config = Lfm2Config<'a>,
    logits_slot = 8,
    hybrid
);
