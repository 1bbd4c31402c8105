//! RWKV-7 "Goose": the generalized delta rule with vector-valued decay and
//! in-context learning rate, token shift, value residual from the first
//! layer, and a squared-ReLU channel mix. Written from the RWKV-7 paper and
//! its reference recurrence (BlinkDL's `RWKV_x070` RNN-mode code).
//!
//! Per token and head (head size `N`), with the state `S` (`N x N`, rows
//! indexed by value, columns by key):
//! `S ← S diag(w) + (S (-κ)) (κ ⊙ a)ᵀ + v kᵀ`, `o = S r`, where `κ` is the
//! L2-normalized `k ⊙ k_k`, `a = sigmoid(a0 + A2 A1 x_a)` the in-context
//! learning rate and `w = exp(-e^{-1/2} sigmoid(w0 + W2 tanh(W1 x_w)))`.
//! Then a per-head GroupNorm, the bonus `(Σ r ⊙ k ⊙ r_k) v`, the gate
//! `g = G2 sigmoid(G1 x_g)` and the output projection.
//!
//! Prefill batches every projection (and LoRA) over the chunk; with an f32
//! state the recurrence runs blocks of heads over the whole chunk on the
//! workers, with a coded state token by token.

use crate::arch::HParam;
use crate::error::ModelError;
use super::head_blocks::{run_heads, HeadRecurrence};
use super::step_products::{self, Product};
use crate::family::{layer_major_family, Carver, Compute, ProductScratch, RunCtx};
use crate::file::EddyFile;
use crate::linear::Linear;
use crate::ops::{add_assign, exp_fast, layer_norm, sigmoid, tanh};
use crate::schema::{dim, epsilon, flag, TensorCursor, TensorKind, TensorSpec, MAX_DIM};
use crate::state_store::{LayerState, StatePart, StateParts, StateStore};
use eddy_kernels::GeneralizedDeltaRuleArgs;

/// Hyper-parameters of an RWKV-7 model.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Rwkv7Config {
    /// Vocabulary size.
    pub vocab_size: u32,
    /// Model width `C`.
    pub d_model: u32,
    /// Number of blocks.
    pub n_layer: u32,
    /// Heads `H` (head size `C / H`).
    pub n_heads: u32,
    /// Channel-mix width.
    pub d_ffn: u32,
    /// LoRA ranks: decay, in-context learning rate, value residual, gate.
    pub lora: [u32; 4],
    /// LayerNorm epsilon.
    pub norm_eps: f32,
    /// Per-head GroupNorm epsilon.
    pub head_norm_eps: f32,
    /// LM head tied to the embedding.
    pub tied_embeddings: bool,
}

impl Rwkv7Config {
    /// Read and check the hyper-parameters of a file.
    pub fn from_file(file: &EddyFile<'_>) -> Result<Self, ModelError> {
        let c = Rwkv7Config {
            vocab_size: dim(file, HParam::VocabSize, MAX_DIM)?,
            d_model: dim(file, HParam::DModel, MAX_DIM)?,
            n_layer: dim(file, HParam::NLayer, 4096)?,
            n_heads: dim(file, HParam::NHeads, 4096)?,
            d_ffn: dim(file, HParam::DFfn, MAX_DIM)?,
            lora: [
                dim(file, HParam::LoraDecay, MAX_DIM)?,
                dim(file, HParam::LoraIclr, MAX_DIM)?,
                dim(file, HParam::LoraValue, MAX_DIM)?,
                dim(file, HParam::LoraGate, MAX_DIM)?,
            ],
            norm_eps: epsilon(file, HParam::NormEps)?,
            head_norm_eps: epsilon(file, HParam::HeadNormEps)?,
            tied_embeddings: flag(file, HParam::TiedEmbeddings)?,
        };
        if c.d_model % c.n_heads != 0 {
            return Err(ModelError::BadHParam { name: HParam::NHeads.name(), value: c.n_heads });
        }
        Ok(c)
    }

    fn head_size(&self) -> usize {
        (self.d_model / self.n_heads) as usize
    }

    fn max_cols(&self) -> usize {
        let lora = self.lora.iter().copied().max().unwrap_or(0) as usize;
        (self.d_model as usize).max(self.d_ffn as usize).max(lora)
    }

    /// f32 words of state for the whole model.
    pub fn state_words(&self) -> Option<usize> {
        let c = self.d_model as usize;
        c.checked_mul(self.head_size())?.checked_add(2 * c)?.checked_mul(self.n_layer as usize)
    }

    /// Scratch sizes for `n` tokens: x, normed, 6 mixes, r, k, v, a, w,
    /// g, every LoRA's hidden rows, out, v_first,
    /// ffn, logits rows, the step products' activations, activations.
    fn sizes(&self, n: usize, logit_rows: usize) -> [Option<usize>; 21] {
        let c = self.d_model as usize;
        let rows = |w: usize| n.checked_mul(w);
        let loras = self.lora.iter().map(|&r| r as usize).sum::<usize>();
        [
            rows(c),
            rows(c),
            rows(c),
            rows(c),
            rows(c),
            rows(c),
            rows(c),
            rows(c),
            rows(c),
            rows(c),
            rows(c),
            rows(c),
            rows(c),
            rows(c),
            rows(loras),
            rows(c),
            rows(c),
            rows(self.d_ffn as usize),
            logit_rows.checked_mul(self.vocab_size as usize),
            Some(step_products::scratch_words(self.max_cols())),
            ProductScratch::words(self.max_cols(), n),
        ]
    }
}

/// Names of the per-layer tensors in file order; `v0..v2` only from layer 1.
fn layer_specs(c: &Rwkv7Config, i: u32, visit: &mut dyn FnMut(TensorSpec)) {
    use TensorKind::{Matrix, F32};
    let (dm, df) = (c.d_model as u64, c.d_ffn as u64);
    let [lw, la, lv, lg] = c.lora.map(u64::from);
    let s = |pattern, rows, cols, kind| TensorSpec::layer(pattern, i, rows, cols, kind);
    let vec = |pattern| s(pattern, 1, dm, F32);
    for spec in [
        vec("layers.{i}.ln1.weight"),
        vec("layers.{i}.ln1.bias"),
        vec("layers.{i}.att.x_r"),
        vec("layers.{i}.att.x_w"),
        vec("layers.{i}.att.x_k"),
        vec("layers.{i}.att.x_v"),
        vec("layers.{i}.att.x_a"),
        vec("layers.{i}.att.x_g"),
        vec("layers.{i}.att.w0"),
        s("layers.{i}.att.w1", lw, dm, Matrix),
        s("layers.{i}.att.w2", dm, lw, Matrix),
        vec("layers.{i}.att.a0"),
        s("layers.{i}.att.a1", la, dm, Matrix),
        s("layers.{i}.att.a2", dm, la, Matrix),
    ] {
        visit(spec);
    }
    if i > 0 {
        visit(vec("layers.{i}.att.v0"));
        visit(s("layers.{i}.att.v1", lv, dm, Matrix));
        visit(s("layers.{i}.att.v2", dm, lv, Matrix));
    }
    for spec in [
        s("layers.{i}.att.g1", lg, dm, Matrix),
        s("layers.{i}.att.g2", dm, lg, Matrix),
        vec("layers.{i}.att.k_k"),
        vec("layers.{i}.att.k_a"),
        vec("layers.{i}.att.r_k"),
        s("layers.{i}.att.receptance.weight", dm, dm, Matrix),
        s("layers.{i}.att.key.weight", dm, dm, Matrix),
        s("layers.{i}.att.value.weight", dm, dm, Matrix),
        s("layers.{i}.att.output.weight", dm, dm, Matrix),
        vec("layers.{i}.att.ln_x.weight"),
        vec("layers.{i}.att.ln_x.bias"),
        vec("layers.{i}.ln2.weight"),
        vec("layers.{i}.ln2.bias"),
        vec("layers.{i}.ffn.x_k"),
        s("layers.{i}.ffn.key.weight", df, dm, Matrix),
        s("layers.{i}.ffn.value.weight", dm, df, Matrix),
    ] {
        visit(spec);
    }
}

/// Tensors of layer 0 (layers after it have 3 more: the value residual).
const LAYER0_TENSORS: u32 = 30;

/// Visit the canonical tensor list of an RWKV-7 model in file order.
pub fn tensor_schema(c: &Rwkv7Config, visit: &mut dyn FnMut(TensorSpec)) {
    use TensorKind::{Matrix, F32};
    let (v, dm) = (c.vocab_size as u64, c.d_model as u64);
    visit(TensorSpec::global("embed.weight", v, dm, Matrix));
    visit(TensorSpec::global("ln0.weight", 1, dm, F32));
    visit(TensorSpec::global("ln0.bias", 1, dm, F32));
    for i in 0..c.n_layer {
        layer_specs(c, i, visit);
    }
    visit(TensorSpec::global("ln_out.weight", 1, dm, F32));
    visit(TensorSpec::global("ln_out.bias", 1, dm, F32));
    if !c.tied_embeddings {
        visit(TensorSpec::global("head.weight", v, dm, Matrix));
    }
}

struct Lora<'a> {
    down: Linear<'a>,
    up: Linear<'a>,
}

impl<'a> Lora<'a> {
    /// `y = up(act(down(x)))` with `hidden` for `down(x)`.
    fn product<'p>(
        &'p self,
        act: fn(f32) -> f32,
        x: &'p [f32],
        hidden: &'p mut [f32],
        y: &'p mut [f32],
    ) -> Product<'p, 'a> {
        Product { l: &self.down, x, y: hidden, then: Some((act, &self.up, y)) }
    }
}

struct LayerWeights<'a> {
    ln1: (&'a [f32], &'a [f32]),
    /// Token-shift mixes for r, w, k, v, a, g.
    mix: [&'a [f32]; 6],
    w0: &'a [f32],
    w_lora: Lora<'a>,
    a0: &'a [f32],
    a_lora: Lora<'a>,
    v_residual: Option<(&'a [f32], Lora<'a>)>,
    g_lora: Lora<'a>,
    k_k: &'a [f32],
    k_a: &'a [f32],
    r_k: &'a [f32],
    receptance: Linear<'a>,
    key: Linear<'a>,
    value: Linear<'a>,
    output: Linear<'a>,
    ln_x: (&'a [f32], &'a [f32]),
    ln2: (&'a [f32], &'a [f32]),
    ffn_mix: &'a [f32],
    ffn_key: Linear<'a>,
    ffn_value: Linear<'a>,
}

/// Per-token vectors of a chunk, `n` rows each (1 for a step).
struct Rows<'s> {
    x: &'s mut [f32],
    normed: &'s mut [f32],
    mix: [&'s mut [f32]; 6],
    r: &'s mut [f32],
    k: &'s mut [f32],
    v: &'s mut [f32],
    a: &'s mut [f32],
    w: &'s mut [f32],
    g: &'s mut [f32],
    hidden: &'s mut [f32],
    out: &'s mut [f32],
    v_first: &'s mut [f32],
    ffn: &'s mut [f32],
    logits: &'s mut [f32],
    /// Activation scratch of [`step_products::run_products`].
    products: &'s mut [f32],
}

impl<'s> Rows<'s> {
    /// Take every buffer from `carver`, sized by `sizes` in field order.
    fn carve(carver: &mut Carver<'s>, sizes: &[usize]) -> Self {
        let x = carver.take(sizes[0]);
        let normed = carver.take(sizes[1]);
        let mix = [
            carver.take(sizes[2]),
            carver.take(sizes[3]),
            carver.take(sizes[4]),
            carver.take(sizes[5]),
            carver.take(sizes[6]),
            carver.take(sizes[7]),
        ];
        Rows {
            x,
            normed,
            mix,
            r: carver.take(sizes[8]),
            k: carver.take(sizes[9]),
            v: carver.take(sizes[10]),
            a: carver.take(sizes[11]),
            w: carver.take(sizes[12]),
            g: carver.take(sizes[13]),
            hidden: carver.take(sizes[14]),
            out: carver.take(sizes[15]),
            v_first: carver.take(sizes[16]),
            ffn: carver.take(sizes[17]),
            logits: carver.take(sizes[18]),
            products: carver.take(sizes[19]),
        }
    }
}

impl<'a> Rwkv7<'a> {
    /// Widest input of any matrix (activation scratch).
    fn max_cols(&self) -> usize {
        self.config.max_cols()
    }

    /// A layer's state: the previous attention input (exact), the head
    /// matrices (row `i` of head `h` is value `i`, one column per key),
    /// the previous channel-mix input (exact).
    fn layer_parts(&self, _layer: usize) -> StateParts {
        let c = self.config.d_model as usize;
        let rows = StatePart::Coded { rows: c, cols: self.config.head_size() };
        StateParts::new([StatePart::Exact(c), rows, StatePart::Exact(c)])
    }

    fn layer_start(&self, i: u32) -> u32 {
        3 + i * LAYER0_TENSORS + 3 * i.saturating_sub(1)
    }

    fn layer(&self, i: u32) -> LayerWeights<'a> {
        let mut t = TensorCursor::at(&self.file, self.layer_start(i));
        let ln1 = (t.f32(), t.f32());
        let mix = [t.f32(), t.f32(), t.f32(), t.f32(), t.f32(), t.f32()];
        let w0 = t.f32();
        let w_lora = Lora { down: t.linear(false), up: t.linear(false) };
        let a0 = t.f32();
        let a_lora = Lora { down: t.linear(false), up: t.linear(false) };
        let v_residual = (i > 0).then(|| (t.f32(), Lora { down: t.linear(false), up: t.linear(false) }));
        LayerWeights {
            ln1,
            mix,
            w0,
            w_lora,
            a0,
            a_lora,
            v_residual,
            g_lora: Lora { down: t.linear(false), up: t.linear(false) },
            k_k: t.f32(),
            k_a: t.f32(),
            r_k: t.f32(),
            receptance: t.linear(false),
            key: t.linear(false),
            value: t.linear(false),
            output: t.linear(false),
            ln_x: (t.f32(), t.f32()),
            ln2: (t.f32(), t.f32()),
            ffn_mix: t.f32(),
            ffn_key: t.linear(false),
            ffn_value: t.linear(false),
        }
    }

    fn head(&self) -> ((&'a [f32], &'a [f32]), Linear<'a>) {
        let mut t = TensorCursor::at(&self.file, self.layer_start(self.config.n_layer));
        let ln_out = (t.f32(), t.f32());
        let head = if self.config.tied_embeddings { self.embed() } else { t.linear(false) };
        (ln_out, head)
    }
}

/// `out = x + (prev - x) * mix`, RWKV-7's token shift.
fn token_shift(x: &[f32], prev: &[f32], mix: &[f32], out: &mut [f32]) {
    for (((o, &a), &p), &m) in out.iter_mut().zip(x).zip(prev).zip(mix) {
        *o = a + (p - a) * m;
    }
}

impl<'a> Rwkv7<'a> {
    /// The projections of the token-shifted rows: receptance, key, value
    /// and the LoRAs of the decay (into `w`), in-context learning rate
    /// (`a`), gate (`g`) and value residual (`out`, from layer 1), all
    /// independent: one hand-off to the workers for a step.
    fn projections(&self, w: &LayerWeights<'_>, r: &mut Rows<'_>, n: usize, rc: &mut RunCtx<'_, '_, '_>) {
        let m = n * self.config.d_model as usize;
        let [mr, mw, mk, mv, ma, mg] = &r.mix;
        let [rw, ra, rv, rg] = self.config.lora.map(|rank| n * rank as usize);
        let (hw, rest) = r.hidden.split_at_mut(rw);
        let (ha, rest) = rest.split_at_mut(ra);
        let (hg, rest) = rest.split_at_mut(rg);
        let products = [
            Product { l: &w.receptance, x: &mr[..m], y: &mut r.r[..m], then: None },
            Product { l: &w.key, x: &mk[..m], y: &mut r.k[..m], then: None },
            Product { l: &w.value, x: &mv[..m], y: &mut r.v[..m], then: None },
            w.w_lora.product(tanh, &mw[..m], hw, &mut r.w[..m]),
            w.a_lora.product(|v| v, &ma[..m], ha, &mut r.a[..m]),
            w.g_lora.product(sigmoid, &mg[..m], hg, &mut r.g[..m]),
        ];
        let scratch = (&mut *r.products, self.max_cols());
        match &w.v_residual {
            None => step_products::run_products(products, n, scratch, rc),
            Some((_, l)) => {
                let [p0, p1, p2, p3, p4, p5] = products;
                let v_res = l.product(|v| v, &mv[..m], &mut rest[..rv], &mut r.out[..m]);
                step_products::run_products([p0, p1, p2, p3, p4, p5, v_res], n, scratch, rc);
            }
        }
    }

    /// The delta rule for every head over the chunk's `n` tokens, then
    /// GroupNorm, bonus and gate: `out = (norm(S r) + bonus) * g` per
    /// token, into the `out` rows. The first three mix rows (free while
    /// the recurrence runs) hold the tokens' removal keys, removal weights
    /// and written keys, the fourth stages the heads' outputs.
    fn time_mix(&self, w: &LayerWeights<'_>, layer: &mut LayerState<'_>, r: &mut Rows<'_>, n: usize, cx: Compute<'_>) {
        let c = self.config.d_model as usize;
        let hn = self.config.head_size();
        let heads = self.config.n_heads as usize;
        let [kappa, kappa_a, key, staged, ..] = &mut r.mix;
        for t in 0..n {
            let span = t * c..(t + 1) * c;
            let (kt, at) = (&r.k[span.clone()], &r.a[span.clone()]);
            let (kappa, kappa_a, key) = (&mut kappa[span.clone()], &mut kappa_a[span.clone()], &mut key[span]);
            for h in 0..heads {
                let hs = h * hn..(h + 1) * hn;
                // κ = normalized k ⊙ k_k of this head (F.normalize, eps 1e-12).
                let norm = {
                    let ss: f32 = hs.clone().map(|j| (kt[j] * w.k_k[j]) * (kt[j] * w.k_k[j])).sum();
                    libm::sqrtf(ss).max(1e-12)
                };
                for j in hs {
                    kappa[j] = kt[j] * w.k_k[j] / norm;
                    kappa_a[j] = kappa[j] * at[j];
                    key[j] = kt[j] * (1.0 + (at[j] - 1.0) * w.k_a[j]);
                }
            }
        }
        let shape = HeadRecurrence { heads, group: 1, state_words: hn * hn, out_width: hn, tokens: n };
        let (rr, ww, vv, kappa, kappa_a, key) = (&*r.r, &*r.w, &*r.v, &*kappa, &*kappa_a, &*key);
        let rule = cx.kernels.generalized_delta_rule;
        let span = c..c + c * hn;
        run_heads(cx, layer, span, shape, (&mut r.out[..n * c], staged), |t, b, state, out| {
            let s = b.span(t, c, hn);
            let args = GeneralizedDeltaRuleArgs {
                r: &rr[s.clone()],
                w: &ww[s.clone()],
                k: &key[s.clone()],
                v: &vv[s.clone()],
                kappa: &kappa[s.clone()],
                kappa_a: &kappa_a[s],
                heads: b.count,
                head_size: hn,
            };
            rule(&args, state, out);
        });
        for t in 0..n {
            let span = t * c..(t + 1) * c;
            let (rt, vt, gt, key) = (&rr[span.clone()], &vv[span.clone()], &r.g[span.clone()], &key[span.clone()]);
            let out = &mut r.out[span];
            for h in 0..heads {
                let hs = h * hn..(h + 1) * hn;
                let o = &mut out[hs.clone()];
                // GroupNorm over the head, then the bonus (Σ r ⊙ k ⊙ r_k) v.
                let mean = o.iter().sum::<f32>() / hn as f32;
                let var = o.iter().map(|x| (x - mean) * (x - mean)).sum::<f32>() / hn as f32;
                let inv = 1.0 / libm::sqrtf(var + self.config.head_norm_eps);
                let bonus: f32 = hs.clone().map(|j| rt[j] * key[j] * w.r_k[j]).sum();
                for (ii, ov) in o.iter_mut().enumerate() {
                    let j = h * hn + ii;
                    let normed = (*ov - mean) * inv * w.ln_x.0[j] + w.ln_x.1[j];
                    *ov = (normed + bonus * vt[j]) * gt[j];
                }
            }
        }
    }

    /// Run `tokens` through all blocks, layer by layer (a step is a chunk
    /// of one). Leaves the logits of the last `logit_rows` tokens.
    fn run(&self, tokens: &[u32], state: &mut StateStore<'_>, r: &mut Rows<'_>, rc: &mut RunCtx<'_, '_, '_>) {
        let logit_rows = rc.logit_rows;
        let cfg = &self.config;
        let (c, f, n) = (cfg.d_model as usize, cfg.d_ffn as usize, tokens.len());
        let m = n * c;
        let eps = cfg.norm_eps;
        let (ln0w, ln0b) = {
            let mut t = TensorCursor::at(&self.file, 1);
            (t.f32(), t.f32())
        };
        for (&t, x) in tokens.iter().zip(r.x.chunks_exact_mut(c)) {
            self.embed().row(t as usize, &mut r.normed[..c]);
            layer_norm(&r.normed[..c], ln0w, ln0b, eps, x);
        }
        let mats_words = c * cfg.head_size();
        let mut layers = state.layers();
        for i in 0..cfg.n_layer {
            let w = self.layer(i);
            let mut layer = layers.next(self.layer_parts(i as usize));
            for (x, o) in r.x[..m].chunks_exact(c).zip(r.normed.chunks_exact_mut(c)) {
                layer_norm(x, w.ln1.0, w.ln1.1, eps, o);
            }
            let att_prev = &mut layer.words()[..c];
            for t in 0..n {
                let prev = if t == 0 { &*att_prev } else { &r.normed[(t - 1) * c..t * c] };
                let xt = &r.normed[t * c..(t + 1) * c];
                for (mix, dst) in w.mix.iter().zip(r.mix.iter_mut()) {
                    token_shift(xt, prev, mix, &mut dst[t * c..(t + 1) * c]);
                }
            }
            att_prev.copy_from_slice(&r.normed[(n - 1) * c..n * c]);
            self.projections(&w, r, n, rc);
            for t in 0..n {
                let s = t * c..(t + 1) * c;
                for j in 0..c {
                    let (a, wv) = (&mut r.a[s.start + j], &mut r.w[s.start + j]);
                    *a = sigmoid(w.a0[j] + *a);
                    *wv = exp_fast(-0.606_530_66 * sigmoid(w.w0[j] + *wv));
                }
            }
            match &w.v_residual {
                None => r.v_first[..m].copy_from_slice(&r.v[..m]),
                Some((v0, _)) => {
                    // `out` holds the residual gate's pre-activation.
                    for t in 0..n {
                        for j in 0..c {
                            let idx = t * c + j;
                            let gate = sigmoid(v0[j] + r.out[idx]);
                            r.v[idx] += (r.v_first[idx] - r.v[idx]) * gate;
                        }
                    }
                }
            }
            self.time_mix(&w, &mut layer, r, n, rc.cx);
            // out now holds (norm + bonus) * g per token; project it.
            let (out, mix0) = (&r.out[..m], &mut r.mix[0][..m]);
            rc.project(&w.output, out, mix0, n);
            add_assign(&mut r.x[..m], &r.mix[0][..m]);

            // Channel mix.
            for (x, o) in r.x[..m].chunks_exact(c).zip(r.normed.chunks_exact_mut(c)) {
                layer_norm(x, w.ln2.0, w.ln2.1, eps, o);
            }
            let ffn_prev = &mut layer.words()[c + mats_words..];
            for t in 0..n {
                let prev = if t == 0 { &*ffn_prev } else { &r.normed[(t - 1) * c..t * c] };
                token_shift(
                    &r.normed[t * c..(t + 1) * c],
                    prev,
                    w.ffn_mix,
                    &mut r.mix[2][t * c..(t + 1) * c],
                );
            }
            ffn_prev.copy_from_slice(&r.normed[(n - 1) * c..n * c]);
            rc.project(&w.ffn_key, &r.mix[2][..m], &mut r.ffn[..n * f], n);
            for v in r.ffn[..n * f].iter_mut() {
                let relu = v.max(0.0);
                *v = relu * relu;
            }
            rc.project(&w.ffn_value, &r.ffn[..n * f], &mut r.out[..m], n);
            add_assign(&mut r.x[..m], &r.out[..m]);
        }
        if logit_rows == 0 {
            return;
        }
        let ((lw, lb), head) = self.head();
        let first = n - logit_rows;
        for (x, o) in r.x[..m].chunks_exact(c).skip(first).zip(r.normed.chunks_exact_mut(c)) {
            layer_norm(x, lw, lb, eps, o);
        }
        let v = cfg.vocab_size as usize;
        rc.project_head(&head, &r.normed[..logit_rows * c], &mut r.logits[..logit_rows * v], logit_rows);
    }
}

layer_major_family!(
    /// A loaded, validated RWKV-7 model.
    Rwkv7,
    config = Rwkv7Config,
    logits_slot = 18
);
