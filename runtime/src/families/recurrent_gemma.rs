//! RecurrentGemma / Griffin (De et al. 2024): residual blocks whose
//! temporal mixer is either an RG-LRU recurrent block or local
//! sliding-window attention, each followed by a GeGLU MLP, in the layout of
//! `RecurrentGemmaForCausalLM`.
//!
//! Recurrent block: `y = gelu(W_y h)`, `x = conv(W_x h)` (causal depthwise,
//! width `d_conv`, with bias), then the RG-LRU per channel:
//! `i = sigmoid(B_i x + b_i)`, `r = sigmoid(B_a x + b_a)` with
//! block-diagonal `B` (one block per head), `log a = c r` where the
//! converter stores `c = -8 softplus(Λ)`, and
//! `h ← a h + sqrt(1 - a²) (i ⊙ x)` (at position 0: `h = i ⊙ x`); output
//! `W_out (h ⊙ y)`. Attention block: grouped-query attention with rotary
//! embedding on the first `rotary_dims` values of each head, over the
//! model's own window (exact with the default cache options), biased
//! output projection. The embedding is scaled by `sqrt(d_model)` rounded
//! to bfloat16 (as the reference implementation does), RMSNorms use
//! `1 + w` (folded into the stored weights by the converter), and the
//! logits are soft-capped: `c tanh(logits / c)`.

use super::head_blocks::{run_heads, HeadRecurrence};
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
    dim, epsilon, flag, required, visit_head, TensorCursor, TensorKind, TensorSpec, MAX_DIM,
};
use crate::state_store::{LayerState, StatePart, StateParts, StateStore};
use eddy_kernels::{ConvTokens, ConvWeights, RgLruArgs, TokenRows};

/// Hyper-parameters of a RecurrentGemma model.
#[derive(Clone, Copy, Debug)]
pub struct RecurrentGemmaConfig<'a> {
    /// Vocabulary size.
    pub vocab_size: u32,
    /// Model width.
    pub d_model: u32,
    /// Number of residual blocks.
    pub n_layer: u32,
    /// Width of the RG-LRU (`lru_width`).
    pub lru_width: u32,
    /// Heads: attention query heads, and blocks of the RG-LRU gates.
    pub n_heads: u32,
    /// Key/value heads of attention blocks.
    pub n_kv_heads: u32,
    /// Values per attention head.
    pub head_dim: u32,
    /// Leading values of each head with rotary embedding.
    pub rotary_dims: u32,
    /// Rotary base frequency.
    pub rope_theta: f32,
    /// Tokens each attention block sees (its sliding window).
    pub attention_window: u32,
    /// Width of the recurrent block's convolution.
    pub d_conv: u32,
    /// MLP width (each of the gate and up branches).
    pub d_ffn: u32,
    /// Query/key/value projections carry biases.
    pub attention_bias: bool,
    /// RMSNorm epsilon.
    pub norm_eps: f32,
    /// Logit soft cap (0: none).
    pub logit_soft_cap: f32,
    /// LM head tied to the embedding.
    pub tied_embeddings: bool,
    /// One byte per layer: 1 for attention, 0 for the recurrent block.
    pub layer_kinds: &'a [u8],
    /// How attention blocks cache keys and values.
    pub kv: KvCacheOptions,
    /// LM-Infinite's distance limit of attention blocks: relative
    /// distances beyond it are scored as if exactly it (`None`: off).
    pub kv_distance_limit: Option<u32>,
}

#[derive(Clone, Copy)]
struct Dims {
    dm: usize,
    lru: usize,
    block: usize,
    qd: usize,
    kd: usize,
    ff: usize,
    v: usize,
    keep: usize,
    max_cols: usize,
}

impl<'a> RecurrentGemmaConfig<'a> {
    /// Read and check the hyper-parameters of a file (KV cache options at
    /// their defaults: the model's own window, exactly).
    pub fn from_file(file: &EddyFile<'a>) -> Result<Self, ModelError> {
        let n_layer = dim(file, HParam::NLayer, 4096)?;
        let attention = attention_shape(file, 1.0)?;
        let window = native_window(file)?.ok_or(ModelError::MissingHParam(HParam::AttentionWindow.name()))?;
        let cap_bits = required(file, HParam::LogitSoftCap)?;
        let logit_soft_cap = f32::from_bits(cap_bits);
        if !(logit_soft_cap.is_finite() && logit_soft_cap >= 0.0) {
            return Err(ModelError::BadHParam { name: HParam::LogitSoftCap.name(), value: cap_bits });
        }
        let c = RecurrentGemmaConfig {
            vocab_size: dim(file, HParam::VocabSize, MAX_DIM)?,
            d_model: dim(file, HParam::DModel, MAX_DIM)?,
            n_layer,
            lru_width: dim(file, HParam::DInner, MAX_DIM)?,
            n_heads: attention.n_heads as u32,
            n_kv_heads: attention.n_kv_heads as u32,
            head_dim: attention.head_dim as u32,
            rotary_dims: attention.rotary_dims as u32,
            rope_theta: attention.rope_theta,
            attention_window: window,
            d_conv: dim(file, HParam::DConv, 64)?,
            d_ffn: dim(file, HParam::DFfn, MAX_DIM)?,
            attention_bias: flag(file, HParam::ProjBias)?,
            norm_eps: epsilon(file, HParam::NormEps)?,
            logit_soft_cap,
            tied_embeddings: flag(file, HParam::TiedEmbeddings)?,
            layer_kinds: LayerKinds::from_file(file, n_layer)?.as_bytes(),
            kv: default_kv_options(Some(window)),
            kv_distance_limit: None,
        };
        if c.lru_width % c.n_heads != 0 {
            return Err(ModelError::BadHParam { name: HParam::DInner.name(), value: c.lru_width });
        }
        c.cache()?;
        Ok(c)
    }

    fn dims(&self) -> Dims {
        let (dm, lru, ff) = (self.d_model as usize, self.lru_width as usize, self.d_ffn as usize);
        let qd = (self.n_heads * self.head_dim) as usize;
        Dims {
            dm,
            lru,
            block: lru / self.n_heads as usize,
            qd,
            kd: (self.n_kv_heads * self.head_dim) as usize,
            ff,
            v: self.vocab_size as usize,
            keep: self.d_conv as usize - 1,
            max_cols: dm.max(lru).max(qd).max(ff),
        }
    }

    /// f32 words of state: position, then every layer's.
    pub fn state_words(&self) -> Option<usize> {
        self.hybrid_state_words()
    }

    /// Scratch sizes for `n` tokens: residual, normed, three projection
    /// rows (y/x/conv or q/k/v), input gate, recurrence gate, mixer output,
    /// block output, mlp gate (also the RG-LRU's blocked outputs), mlp up,
    /// attention scratch, logits rows, activations.
    fn sizes(&self, n: usize, logit_rows: usize) -> [Option<usize>; 14] {
        let d = self.dims();
        let rows = |w: usize| n.checked_mul(w);
        let wide = d.lru.max(d.qd);
        [
            rows(d.dm),
            rows(d.dm),
            rows(wide),
            rows(wide),
            rows(wide),
            rows(d.lru),
            rows(d.lru),
            rows(wide),
            rows(d.dm),
            rows(d.ff.max(d.lru)),
            rows(d.ff),
            self.cache().ok().map(|cache| attention::scratch_words(&self.attention(), &cache, n)),
            logit_rows.checked_mul(d.v),
            ProductScratch::words(d.max_cols, n),
        ]
    }
}

hybrid_config!(
    RecurrentGemmaConfig<'_>,
    mixer_state_words = |c| c.dims().keep.checked_add(1)?.checked_mul(c.dims().lru)
);

/// Visit the canonical tensor list of a RecurrentGemma model in file order.
pub fn tensor_schema(c: &RecurrentGemmaConfig<'_>, visit: &mut dyn FnMut(TensorSpec)) {
    use TensorKind::{Matrix, F32};
    let d = c.dims();
    let (v, dm, lru, qd, kd, ff) =
        (d.v as u64, d.dm as u64, d.lru as u64, d.qd as u64, d.kd as u64, d.ff as u64);
    visit(TensorSpec::global("embed.weight", v, dm, Matrix));
    for i in 0..c.n_layer {
        let s = |pattern, rows, cols, kind| TensorSpec::layer(pattern, i, rows, cols, kind);
        visit(s("layers.{i}.temporal_norm.weight", 1, dm, F32));
        if c.is_attention(i as usize) {
            let b = c.attention_bias;
            for (spec, bias) in [
                (s("layers.{i}.q_proj.weight", qd, dm, Matrix), s("layers.{i}.q_proj.bias", 1, qd, F32)),
                (s("layers.{i}.k_proj.weight", kd, dm, Matrix), s("layers.{i}.k_proj.bias", 1, kd, F32)),
                (s("layers.{i}.v_proj.weight", kd, dm, Matrix), s("layers.{i}.v_proj.bias", 1, kd, F32)),
            ] {
                visit(spec);
                if b {
                    visit(bias);
                }
            }
            visit(s("layers.{i}.o_proj.weight", dm, qd, Matrix));
            visit(s("layers.{i}.o_proj.bias", 1, dm, F32));
        } else {
            let block = d.block as u64;
            for spec in [
                s("layers.{i}.linear_y.weight", lru, dm, Matrix),
                s("layers.{i}.linear_y.bias", 1, lru, F32),
                s("layers.{i}.linear_x.weight", lru, dm, Matrix),
                s("layers.{i}.linear_x.bias", 1, lru, F32),
                s("layers.{i}.conv.weight", lru, c.d_conv as u64, F32),
                s("layers.{i}.conv.bias", 1, lru, F32),
                s("layers.{i}.input_gate.weight", lru, block, F32),
                s("layers.{i}.input_gate.bias", 1, lru, F32),
                s("layers.{i}.a_gate.weight", lru, block, F32),
                s("layers.{i}.a_gate.bias", 1, lru, F32),
                s("layers.{i}.log_a_coef", 1, lru, F32),
                s("layers.{i}.linear_out.weight", dm, lru, Matrix),
                s("layers.{i}.linear_out.bias", 1, dm, F32),
            ] {
                visit(spec);
            }
        }
        for spec in [
            s("layers.{i}.channel_norm.weight", 1, dm, F32),
            s("layers.{i}.gate_proj.weight", ff, dm, Matrix),
            s("layers.{i}.gate_proj.bias", 1, ff, F32),
            s("layers.{i}.up_proj.weight", ff, dm, Matrix),
            s("layers.{i}.up_proj.bias", 1, ff, F32),
            s("layers.{i}.down_proj.weight", dm, ff, Matrix),
            s("layers.{i}.down_proj.bias", 1, dm, F32),
        ] {
            visit(spec);
        }
    }
    visit_head(visit, v, dm, c.tied_embeddings);
}

/// The RG-LRU recurrent block's weights.
struct RecurrentWeights<'a> {
    linear_y: Linear<'a>,
    linear_x: Linear<'a>,
    conv_w: &'a [f32],
    conv_b: &'a [f32],
    input_gate: &'a [f32],
    input_bias: &'a [f32],
    a_gate: &'a [f32],
    a_bias: &'a [f32],
    log_a_coef: &'a [f32],
    linear_out: Linear<'a>,
}

/// The temporal mixer of one block.
enum Mixer<'a> {
    Recurrent(RecurrentWeights<'a>),
    Attention(AttentionWeights<'a>),
}

struct LayerWeights<'a> {
    temporal_norm: &'a [f32],
    mixer: Mixer<'a>,
    mlp: GatedMlp<'a>,
}

scratch_rows! {
    /// Per-token vectors of a chunk, `n` rows each (1 for a step).
    Rows { x, normed, proj_a, proj_b, proj_c, gate_i, gate_a, mixed, out, mlp_gate, mlp_up, attention, logits }
}

/// Jobs per worker the gates of a chunk are split into (the work per
/// token is the same, so a few per worker balance them).
const GATE_JOBS_PER_WORKER: usize = 2;

/// Rows of [`block_diagonal`] summed side by side.
const SIDE_BY_SIDE_ROWS: usize = 8;

/// Channels of the RG-LRU a worker's block is a multiple of (a multiple of
/// every kernel set's vector width).
const RG_LRU_CHANNEL_BLOCK: usize = 16;

/// `out[h*b + j] = bias + Σ_i x[h*b + i] w[h*b + j][i]`: a block-diagonal
/// product with one `b x b` block per head (rows are outputs). Each row's
/// sum runs from its bias in order of `i`; eight rows of a head go side by
/// side, so eight independent sums hide each add's latency (one row at a
/// time was one long dependent chain: half of a RecurrentGemma prefill).
fn block_diagonal(w: &[f32], bias: &[f32], x: &[f32], out: &mut [f32], block: usize) {
    let rows = out.len().min(w.len() / block.max(1));
    let mut r = 0;
    while r < rows {
        let head = r / block;
        let xs = &x[head * block..(head + 1) * block];
        let count = SIDE_BY_SIDE_ROWS.min((head + 1) * block - r).min(rows - r);
        if count == SIDE_BY_SIDE_ROWS {
            let ws: [&[f32]; SIDE_BY_SIDE_ROWS] =
                core::array::from_fn(|l| &w[(r + l) * block..(r + l + 1) * block]);
            let mut acc = [0f32; SIDE_BY_SIDE_ROWS];
            acc.copy_from_slice(&bias[r..r + SIDE_BY_SIDE_ROWS]);
            for (i, &xv) in xs.iter().enumerate() {
                for (a, wl) in acc.iter_mut().zip(&ws) {
                    *a += wl[i] * xv;
                }
            }
            out[r..r + SIDE_BY_SIDE_ROWS].copy_from_slice(&acc);
        } else {
            for (rr, o) in out.iter_mut().enumerate().skip(r).take(count) {
                let mut acc = bias[rr];
                for (a, b) in w[rr * block..(rr + 1) * block].iter().zip(xs) {
                    acc += a * b;
                }
                *o = acc;
            }
        }
        r += count;
    }
}

/// `sqrt(d_model)` rounded to bfloat16 (nearest, ties to even), the
/// embedding scale of the reference implementation.
fn embed_scale(d_model: u32) -> f32 {
    let bits = libm::sqrtf(d_model as f32).to_bits();
    let round = 0x7fff + ((bits >> 16) & 1);
    f32::from_bits((bits + round) & 0xffff_0000)
}

impl<'a> RecurrentGemma<'a> {
    /// Widest input of any matrix (activation scratch).
    fn max_cols(&self) -> usize {
        self.config.dims().max_cols
    }

    /// Tensors of layer `i`.
    fn tensors_in_layer(&self, i: usize) -> u32 {
        let mixer = if self.config.is_attention(i) { 5 + 3 * self.config.attention_bias as u32 } else { 13 };
        1 + mixer + 7
    }

    /// State layer `layer`: the position words (0), then for model layer
    /// `layer - 1` its convolution window (exact: small, and read by the
    /// batched convolution) and RG-LRU state `h` (coded in Q8/Q4), or its
    /// KV cache (exact: it has its own format, [`KvCacheOptions`], bytes
    /// inside f32 words that must not be recoded).
    fn layer_parts(&self, layer: usize) -> StateParts {
        let c = &self.config;
        match layer.checked_sub(1) {
            None => StateParts::new([StatePart::Exact(POSITION_WORDS)]),
            Some(i) if c.is_attention(i) => {
                StateParts::new([StatePart::Exact(c.layer_state_words(i).unwrap_or(0))])
            }
            Some(_) => {
                let d = c.dims();
                StateParts::new([StatePart::Exact(d.keep * d.lru), StatePart::Coded { rows: 1, cols: d.lru }])
            }
        }
    }

    /// Weights of layer `i`, whose first tensor is at `index`.
    fn layer(&self, i: usize, index: u32) -> LayerWeights<'a> {
        let mut t = TensorCursor::at(&self.file, index);
        let temporal_norm = t.f32();
        let mixer = if self.config.is_attention(i) {
            let b = self.config.attention_bias;
            let (q, k, v) = (t.linear(b), t.linear(b), t.linear(b));
            Mixer::Attention(AttentionWeights { q, k, v, o: t.linear(true), qk_norms: None })
        } else {
            Mixer::Recurrent(RecurrentWeights {
                linear_y: t.linear(true),
                linear_x: t.linear(true),
                conv_w: t.f32(),
                conv_b: t.f32(),
                input_gate: t.f32(),
                input_bias: t.f32(),
                a_gate: t.f32(),
                a_bias: t.f32(),
                log_a_coef: t.f32(),
                linear_out: t.linear(true),
            })
        };
        let mlp = GatedMlp {
            norm: t.f32(),
            gate: t.linear(true),
            up: t.linear(true),
            down: t.linear(true),
            act: GateActivation::GeluTanh,
        };
        LayerWeights { temporal_norm, mixer, mlp }
    }

    /// The final norm and the LM head (after the tensors of every layer).
    fn head(&self, index: u32) -> RmsHead<'a> {
        RmsHead::at(&self.file, index, self.config.norm_eps, self.config.tied_embeddings)
    }

    /// The recurrent block for the `n` rows of `r.normed`, output in
    /// `r.out`; the layer's state is coded back after every token.
    fn recurrent(
        &self,
        w: &RecurrentWeights<'_>,
        layer: &mut LayerState<'_>,
        pos: u64,
        n: usize,
        r: &mut Rows<'_>,
        rc: &mut RunCtx<'_, '_, '_>,
    ) {
        let d = self.config.dims();
        let (lru, normed) = (d.lru, &r.normed[..n * d.dm]);
        rc.project_fused([&w.linear_y, &w.linear_x], normed, [&mut r.proj_a[..n * lru], &mut r.proj_b[..n * lru]], n);
        // The convolution over the chunk (its window is exact state, apart
        // from the coded `h`), then both gates of every token split across
        // workers by tokens: the same operations per token as stepping.
        let rows = n * lru;
        let (window, _) = layer.words().split_at_mut(d.keep * lru);
        let conv = ConvWeights { weight: w.conv_w, bias: Some(w.conv_b), width: d.keep + 1 };
        let xs = TokenRows { data: &r.proj_b[..rows], stride: lru };
        let args = ConvTokens { conv, xs, channels: lru, tokens: n };
        (rc.cx.kernels.causal_conv_tokens)(&args, window, &mut r.proj_c[..rows]);
        let x = &r.proj_c[..rows];
        let per_job = n.div_ceil(GATE_JOBS_PER_WORKER * rc.cx.workers.count()).max(1) * lru;
        rc.cx.workers.for_chunk_pairs(&mut r.gate_i[..rows], per_job, &mut r.gate_a[..rows], per_job, |j, gi, ga| {
            for ((x, gi), ga) in x[j * per_job..].chunks_exact(lru).zip(gi.chunks_exact_mut(lru)).zip(ga.chunks_exact_mut(lru)) {
                block_diagonal(w.input_gate, w.input_bias, x, gi, d.block);
                block_diagonal(w.a_gate, w.a_bias, x, ga, d.block);
            }
        });
        // The RG-LRU is elementwise per channel: with an f32 state, blocks
        // of channels run every token of the chunk on the workers (each
        // channel computed by the same code in any block: identical for
        // any thread count); a coded state steps token by token.
        let shape = HeadRecurrence { heads: lru, group: RG_LRU_CHANNEL_BLOCK, state_words: 1, out_width: 1, tokens: n };
        let (x, gate_i, gate_a, y) = (&r.proj_c[..rows], &r.gate_i[..rows], &r.gate_a[..rows], &r.proj_a[..rows]);
        let span = d.keep * lru..(d.keep + 1) * lru;
        let rg_lru = rc.cx.kernels.rg_lru;
        run_heads(rc.cx, layer, span, shape, (&mut r.mixed[..rows], &mut r.mlp_gate[..rows]), |t, b, h, out| {
            let channels = b.span(t, lru, 1);
            let lru_args = RgLruArgs {
                x: &x[channels.clone()],
                input_gate: &gate_i[channels.clone()],
                a_gate: &gate_a[channels.clone()],
                log_a_coef: &w.log_a_coef[b.first..b.first + b.count],
                y: &y[channels],
                first: pos + t as u64 == 0,
            };
            rg_lru(&lru_args, h, out);
        });
        rc.project(&w.linear_out, &r.mixed[..n * lru], &mut r.out[..n * d.dm], n);
    }

    /// Run `tokens` through all layers, layer by layer (a step is a chunk
    /// of one). Leaves the logits of the last `logit_rows` tokens.
    fn run(&self, tokens: &[u32], state: &mut StateStore<'_>, r: &mut Rows<'_>, rc: &mut RunCtx<'_, '_, '_>) {
        let logit_rows = rc.logit_rows;
        let c = &self.config;
        let d = c.dims();
        let n = tokens.len();
        let m = n * d.dm;
        let mut layers = state.layers();
        let position = layers.take_exact(POSITION_WORDS);
        let pos = attention::load_position(position);
        let scale = embed_scale(c.d_model);
        self.embed().rows_into(tokens, r.x);
        for v in r.x[..m].iter_mut() {
            *v *= scale;
        }
        let mut index = 1u32;
        for i in 0..c.n_layer as usize {
            let w = self.layer(i, index);
            index += self.tensors_in_layer(i);
            let mut layer = layers.next(self.layer_parts(i + 1));
            rms_norm_rows(&r.x[..m], w.temporal_norm, c.norm_eps, r.normed);
            match &w.mixer {
                Mixer::Recurrent(rw) => self.recurrent(rw, &mut layer, pos, n, r, rc),
                Mixer::Attention(weights) => {
                    let Ok(layout) = c.cache() else { return };
                    let rows = AttentionRows {
                        normed: &r.normed[..m],
                        qkv: ChunkRows { q: r.proj_a, k: r.proj_b, v: r.proj_c, out: r.mixed },
                        out: r.out,
                        scratch: r.attention,
                    };
                    let cache = layer.words();
                    weights.apply(&c.attention(), &layout, cache, pos, n, rows, rc);
                }
            }
            add_assign(&mut r.x[..m], &r.out[..m]);
            let mlp_rows = MlpRows { x: r.x, normed: r.normed, gate: r.mlp_gate, up: r.mlp_up, out: r.out };
            w.mlp.add_to(mlp_rows, n, c.norm_eps, rc);
        }
        attention::store_position(position, pos.wrapping_add(n as u64));
        if logit_rows == 0 {
            return;
        }
        self.head(index).logits(&r.x[..m], d.dm, r.normed, r.logits, rc);
        let logits = &mut r.logits[..logit_rows * d.v];
        if c.logit_soft_cap > 0.0 {
            let cap = c.logit_soft_cap;
            for l in logits.iter_mut() {
                *l = cap * libm::tanhf(*l / cap);
            }
        }
    }
}

layer_major_family!(
    /// A loaded, validated RecurrentGemma model.
    RecurrentGemma,
    config = RecurrentGemmaConfig<'a>,
    logits_slot = 12,
    hybrid
);

#[cfg(test)]
mod tests {
    use super::{block_diagonal, embed_scale};
    extern crate std;
    use std::vec::Vec;

    /// Rows side by side give each row's one-at-a-time sum bit for bit,
    /// for blocks that are, are not, or are less than a multiple of the
    /// rows taken together.
    #[test]
    fn block_diagonal_rows_side_by_side_equal_one_row_sums() {
        let mut rng = eddy_testkit::Lcg(5);
        for (heads, block) in [(4, 16), (3, 5), (2, 19), (1, 8), (5, 1), (2, 256)] {
            let n = heads * block;
            let mut vec = |len: usize, scale: f32| (0..len).map(|_| rng.f() * scale).collect::<Vec<f32>>();
            let (w, bias, x) = (vec(n * block, 1.0), vec(n, 1.0), vec(n, 3.0));
            let want: Vec<u32> = (0..n)
                .map(|r| {
                    let xs = &x[(r / block) * block..(r / block + 1) * block];
                    let row = &w[r * block..(r + 1) * block];
                    row.iter().zip(xs).fold(bias[r], |acc, (a, b)| acc + a * b).to_bits()
                })
                .collect();
            let mut out = std::vec![0f32; n];
            block_diagonal(&w, &bias, &x, &mut out, block);
            let got: Vec<u32> = out.iter().map(|v| v.to_bits()).collect();
            assert_eq!(got, want, "{heads} heads of {block}");
        }
    }

    #[test]
    fn embedding_scale_is_rounded_to_bfloat16() {
        assert_eq!(embed_scale(64), 8.0);
        // sqrt(2560) = 50.596...; bfloat16 keeps 8 significant bits: 50.5.
        assert_eq!(embed_scale(2560), 50.5);
        assert_eq!(embed_scale(4096), 64.0);
    }
}
