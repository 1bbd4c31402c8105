//! RWKV-4 (`RwkvForCausalLM`): token-shift mixing, the WKV recurrence with
//! per-channel decay `w` and bonus `u`, and a squared-ReLU channel mix,
//! with LayerNorms.
//!
//! The WKV state per channel is `(num, den, max)`, the numerically stable
//! form of `a = Σ e^{k_i + (t-1-i) w} v_i`, `b = Σ e^{k_i + (t-1-i) w}`
//! scaled by `e^{-max}`. A zero state is equivalent to the reference's
//! `max = -1e38` start (the pair represents the same sums). Checkpoints
//! saved with `rescale_every` (transformers halves the residual every N
//! layers at inference) are run unscaled: the same model up to LayerNorm's
//! epsilon. Prefill batches every projection over the chunk; the WKV
//! recurrence runs blocks of channels over the whole chunk on the workers
//! (channels are independent), token by token within a block.

use core::ops::Range;
use crate::arch::HParam;
use crate::error::ModelError;
use super::step_products::{self, Product};
use crate::family::{layer_major_family, scratch_rows, Compute, ProductScratch, RunCtx};
use crate::file::EddyFile;
use crate::linear::Linear;
use crate::ops::{add_assign, layer_norm, sigmoid};
use crate::schema::{dim, epsilon, flag, TensorCursor, TensorKind, TensorSpec, MAX_DIM};
use crate::state_store::{StatePart, StateParts, StateStore};
use eddy_kernels::WkvArgs;

/// Hyper-parameters of an RWKV-4 model.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Rwkv4Config {
    /// Vocabulary size.
    pub vocab_size: u32,
    /// Model width (also the attention width).
    pub d_model: u32,
    /// Number of blocks.
    pub n_layer: u32,
    /// Channel-mix (feed-forward) width.
    pub d_ffn: u32,
    /// LayerNorm epsilon.
    pub norm_eps: f32,
    /// LM head tied to the embedding.
    pub tied_embeddings: bool,
}

impl Rwkv4Config {
    /// Read and check the hyper-parameters of a file.
    pub fn from_file(file: &EddyFile<'_>) -> Result<Self, ModelError> {
        Ok(Rwkv4Config {
            vocab_size: dim(file, HParam::VocabSize, MAX_DIM)?,
            d_model: dim(file, HParam::DModel, MAX_DIM)?,
            n_layer: dim(file, HParam::NLayer, 4096)?,
            d_ffn: dim(file, HParam::DInner, MAX_DIM)?,
            norm_eps: epsilon(file, HParam::NormEps)?,
            tied_embeddings: flag(file, HParam::TiedEmbeddings)?,
        })
    }

    /// f32 words of state: per layer the previous attention input, WKV
    /// `num`, `den`, `max`, and the previous channel-mix input.
    pub fn state_words(&self) -> Option<usize> {
        (5 * self.d_model as usize).checked_mul(self.n_layer as usize)
    }

    /// Scratch sizes for `n` tokens: residual, normed, mix k/v/r (3x),
    /// k, v, r, wkv, out, ffn key, logits rows, the step products'
    /// activations, activations.
    fn sizes(&self, n: usize, logit_rows: usize) -> [Option<usize>; 14] {
        let (dm, df) = (self.d_model as usize, self.d_ffn as usize);
        let act = ProductScratch::words(dm.max(df), n);
        let rows = |w: usize| n.checked_mul(w);
        [
            rows(dm),
            rows(dm),
            rows(dm),
            rows(dm),
            rows(dm),
            rows(dm),
            rows(dm),
            rows(dm),
            rows(dm),
            rows(dm),
            rows(df),
            logit_rows.checked_mul(self.vocab_size as usize),
            Some(step_products::scratch_words(dm.max(df))),
            act,
        ]
    }
}

/// Visit the canonical tensor list of an RWKV-4 model in file order.
pub fn tensor_schema(c: &Rwkv4Config, visit: &mut dyn FnMut(TensorSpec)) {
    use TensorKind::{Matrix, F32};
    let (v, dm, df) = (c.vocab_size as u64, c.d_model as u64, c.d_ffn as u64);
    visit(TensorSpec::global("embed.weight", v, dm, Matrix));
    visit(TensorSpec::global("pre_ln.weight", 1, dm, F32));
    visit(TensorSpec::global("pre_ln.bias", 1, dm, F32));
    for i in 0..c.n_layer {
        let s = |pattern, rows, cols, kind| TensorSpec::layer(pattern, i, rows, cols, kind);
        for spec in [
            s("layers.{i}.ln1.weight", 1, dm, F32),
            s("layers.{i}.ln1.bias", 1, dm, F32),
            s("layers.{i}.att.time_decay", 1, dm, F32),
            s("layers.{i}.att.time_first", 1, dm, F32),
            s("layers.{i}.att.time_mix_key", 1, dm, F32),
            s("layers.{i}.att.time_mix_value", 1, dm, F32),
            s("layers.{i}.att.time_mix_receptance", 1, dm, F32),
            s("layers.{i}.att.key.weight", dm, dm, Matrix),
            s("layers.{i}.att.value.weight", dm, dm, Matrix),
            s("layers.{i}.att.receptance.weight", dm, dm, Matrix),
            s("layers.{i}.att.output.weight", dm, dm, Matrix),
            s("layers.{i}.ln2.weight", 1, dm, F32),
            s("layers.{i}.ln2.bias", 1, dm, F32),
            s("layers.{i}.ffn.time_mix_key", 1, dm, F32),
            s("layers.{i}.ffn.time_mix_receptance", 1, dm, F32),
            s("layers.{i}.ffn.key.weight", df, dm, Matrix),
            s("layers.{i}.ffn.receptance.weight", dm, dm, Matrix),
            s("layers.{i}.ffn.value.weight", dm, df, Matrix),
        ] {
            visit(spec);
        }
    }
    visit(TensorSpec::global("ln_out.weight", 1, dm, F32));
    visit(TensorSpec::global("ln_out.bias", 1, dm, F32));
    if !c.tied_embeddings {
        visit(TensorSpec::global("head.weight", v, dm, Matrix));
    }
}

const PER_LAYER: u32 = 18;

struct LayerWeights<'a> {
    ln1: (&'a [f32], &'a [f32]),
    /// `-exp(time_decay)`, stored so by the converter.
    decay: &'a [f32],
    first: &'a [f32],
    mix_k: &'a [f32],
    mix_v: &'a [f32],
    mix_r: &'a [f32],
    key: Linear<'a>,
    value: Linear<'a>,
    receptance: Linear<'a>,
    output: Linear<'a>,
    ln2: (&'a [f32], &'a [f32]),
    ffn_mix_k: &'a [f32],
    ffn_mix_r: &'a [f32],
    ffn_key: Linear<'a>,
    ffn_receptance: Linear<'a>,
    ffn_value: Linear<'a>,
}

/// `out = x * mix + prev * (1 - mix)`, the token shift.
fn token_shift(x: &[f32], prev: &[f32], mix: &[f32], out: &mut [f32]) {
    for (((o, &a), &p), &m) in out.iter_mut().zip(x).zip(prev).zip(mix) {
        *o = a * m + p * (1.0 - m);
    }
}

/// RWKV-4's channel-mix activation, `relu(x)^2`.
fn relu_squared(v: f32) -> f32 {
    let relu = v.max(0.0);
    relu * relu
}

impl<'a> Rwkv4<'a> {
    /// Widest input of any matrix (activation scratch).
    fn max_cols(&self) -> usize {
        (self.config.d_model as usize).max(self.config.d_ffn as usize)
    }

    /// A layer's state: previous attention input, WKV `num`, `den`, `max`,
    /// previous channel-mix input, all exact in every format: there is no
    /// large matrix, and `max` is an exponent (a coding error in it scales
    /// `num`/`den` by e^error), while `den` near zero would turn a coding
    /// error into a division blow-up. (With no coded part, `run` needs no
    /// `end_token` calls.)
    fn layer_parts(&self, _layer: usize) -> StateParts {
        StateParts::new([StatePart::Exact(5 * self.config.d_model as usize)])
    }

    fn pre_ln(&self) -> (&'a [f32], &'a [f32]) {
        let mut t = TensorCursor::at(&self.file, 1);
        (t.f32(), t.f32())
    }

    fn layer(&self, i: u32) -> LayerWeights<'a> {
        let mut t = TensorCursor::at(&self.file, 3 + i * PER_LAYER);
        LayerWeights {
            ln1: (t.f32(), t.f32()),
            decay: t.f32(),
            first: t.f32(),
            mix_k: t.f32(),
            mix_v: t.f32(),
            mix_r: t.f32(),
            key: t.linear(false),
            value: t.linear(false),
            receptance: t.linear(false),
            output: t.linear(false),
            ln2: (t.f32(), t.f32()),
            ffn_mix_k: t.f32(),
            ffn_mix_r: t.f32(),
            ffn_key: t.linear(false),
            ffn_receptance: t.linear(false),
            ffn_value: t.linear(false),
        }
    }

    fn head(&self) -> ((&'a [f32], &'a [f32]), Linear<'a>) {
        let mut t = TensorCursor::at(&self.file, 3 + self.config.n_layer * PER_LAYER);
        let ln_out = (t.f32(), t.f32());
        let head = if self.config.tied_embeddings { self.embed() } else { t.linear(false) };
        (ln_out, head)
    }
}

scratch_rows! {
    /// Per-token vectors of a chunk, `n` rows each (1 for a step).
    Rows { x, normed, mix_k, mix_v, mix_r, k, v, r, wkv, out, ffn, logits, products }
}

/// LayerNorm each `last.len()`-wide row of `x` into `normed`, then call
/// `shift(span, row, prev)` for each token's normed row with the one before
/// it (`last`, the previous chunk's final row, for the first); `last` keeps
/// the final row for the next chunk.
fn norm_and_shift(
    x: &[f32],
    (ln_w, ln_b): (&[f32], &[f32]),
    eps: f32,
    normed: &mut [f32],
    last: &mut [f32],
    mut shift: impl FnMut(Range<usize>, &[f32], &[f32]),
) {
    let dm = last.len();
    for (xt, a) in x.chunks_exact(dm).zip(normed.chunks_exact_mut(dm)) {
        layer_norm(xt, ln_w, ln_b, eps, a);
    }
    let n = normed.len() / dm;
    for t in 0..n {
        let a = &normed[t * dm..(t + 1) * dm];
        let prev = if t == 0 { &*last } else { &normed[(t - 1) * dm..t * dm] };
        shift(t * dm..(t + 1) * dm, a, prev);
    }
    last.copy_from_slice(&normed[(n - 1) * dm..n * dm]);
}

/// A chunk's WKV inputs, `[tokens, d_model]` rows, and the layer's
/// per-channel bonus and decay.
struct WkvTokens<'x> {
    k: &'x [f32],
    v: &'x [f32],
    r: &'x [f32],
    first: &'x [f32],
    decay: &'x [f32],
}

impl WkvTokens<'_> {
    /// Channels `c0..c0 + width` of every token through the kernel set's
    /// WKV: `state` is their `(num, den, max)` rows (`3 * width`), `out`
    /// `[tokens, width]`.
    fn run(&self, (c0, width): (usize, usize), state: &mut [f32], out: &mut [f32], cx: Compute<'_>) {
        let dm = self.first.len();
        for (t, o) in out.chunks_exact_mut(width.max(1)).enumerate() {
            let s = t * dm + c0..t * dm + c0 + width;
            let args = WkvArgs {
                k: &self.k[s.clone()],
                v: &self.v[s.clone()],
                r: &self.r[s],
                first: &self.first[c0..c0 + width],
                decay: &self.decay[c0..c0 + width],
            };
            (cx.kernels.wkv)(&args, state, o);
        }
    }
}

/// The WKV of a chunk into `out` (`[tokens, d_model]`), `state` the
/// layer's `(num, den, max)` rows. With several workers and at least
/// three tokens, blocks of channels run every token on the workers: the
/// state is regrouped block by block into `scratch.0` (each block's
/// `num, den, max` rows together, as the kernel takes them), the blocks'
/// outputs staged in `scratch.1`, both put back after. A channel's
/// arithmetic does not depend on its block (the kernel's lanes are
/// independent), so results are the same for any thread count.
fn wkv_chunk(x: &WkvTokens<'_>, state: &mut [f32], (grouped, staging): (&mut [f32], &mut [f32]), out: &mut [f32], cx: Compute<'_>) {
    let dm = x.first.len();
    let tokens = out.len() / dm.max(1);
    let workers = cx.workers.count();
    if workers == 1 || grouped.len() < 3 * dm || staging.len() < out.len() || dm == 0 {
        return x.run((0, dm), state, out, cx);
    }
    // Whole vectors of eight channels per block.
    let block = dm.div_ceil(workers).div_ceil(8) * 8;
    let regroup = |grouped: &mut [f32], state: &mut [f32], back: bool| {
        for (b, g) in grouped[..3 * dm].chunks_mut(3 * block).enumerate() {
            let (c0, wb) = (b * block, g.len() / 3);
            for (part, gp) in g.chunks_exact_mut(wb).enumerate() {
                let sp = &mut state[part * dm + c0..part * dm + c0 + wb];
                if back {
                    sp.copy_from_slice(gp);
                } else {
                    gp.copy_from_slice(sp);
                }
            }
        }
    };
    regroup(grouped, state, false);
    let staging = &mut staging[..out.len()];
    cx.workers.for_chunk_pairs(staging, tokens * block, &mut grouped[..3 * dm], 3 * block, |i, o, s| {
        x.run((i * block, s.len() / 3), s, o, cx);
    });
    regroup(grouped, state, true);
    crate::chunk::unblock_channels(staging, out, tokens, block);
}

impl<'a> Rwkv4<'a> {
    /// Run `tokens` through all blocks, layer by layer (a step is a chunk
    /// of one). Leaves the logits of the last `logit_rows` tokens.
    fn run(
        &self,
        tokens: &[u32],
        state: &mut StateStore<'_>,
        rows: &mut Rows<'_>,
        rc: &mut RunCtx<'_, '_, '_>,
    ) {
        let logit_rows = rc.logit_rows;
        let c = &self.config;
        let (dm, df, n) = (c.d_model as usize, c.d_ffn as usize, tokens.len());
        let eps = c.norm_eps;
        let (pre_w, pre_b) = self.pre_ln();
        for (&t, x) in tokens.iter().zip(rows.x.chunks_exact_mut(dm)) {
            self.embed().row(t as usize, &mut rows.normed[..dm]);
            layer_norm(&rows.normed[..dm], pre_w, pre_b, eps, x);
        }
        let x = &mut rows.x[..n * dm];
        let mut layers = state.layers();
        for i in 0..c.n_layer {
            let w = self.layer(i);
            let mut layer = layers.next(self.layer_parts(i as usize));
            let (att_prev, rest) = layer.words().split_at_mut(dm);
            let (wkv_state, ffn_prev) = rest.split_at_mut(3 * dm);
            // Time mix: token shift against the previous token's normed input.
            norm_and_shift(x, w.ln1, eps, &mut rows.normed[..n * dm], att_prev, |span, a, prev| {
                token_shift(a, prev, w.mix_k, &mut rows.mix_k[span.clone()]);
                token_shift(a, prev, w.mix_v, &mut rows.mix_v[span.clone()]);
                token_shift(a, prev, w.mix_r, &mut rows.mix_r[span]);
            });
            let m = n * dm;
            let scratch = (&mut *rows.products, self.max_cols());
            let products = [
                Product { l: &w.key, x: &rows.mix_k[..m], y: &mut rows.k[..m], then: None },
                Product { l: &w.value, x: &rows.mix_v[..m], y: &mut rows.v[..m], then: None },
                Product { l: &w.receptance, x: &rows.mix_r[..m], y: &mut rows.r[..m], then: None },
            ];
            step_products::run_products(products, n, scratch, rc);
            // `normed` and `out` are free until the output projection.
            let inputs = WkvTokens { k: &rows.k[..m], v: &rows.v[..m], r: &rows.r[..m], first: w.first, decay: w.decay };
            let scratch = (&mut rows.normed[..m], &mut rows.out[..m]);
            wkv_chunk(&inputs, wkv_state, scratch, &mut rows.wkv[..m], rc.cx);
            rc.project(&w.output, &rows.wkv[..m], &mut rows.out[..m], n);
            add_assign(x, &rows.out[..m]);

            // Channel mix.
            norm_and_shift(x, w.ln2, eps, &mut rows.normed[..n * dm], ffn_prev, |span, f, prev| {
                token_shift(f, prev, w.ffn_mix_k, &mut rows.mix_k[span.clone()]);
                token_shift(f, prev, w.ffn_mix_r, &mut rows.mix_r[span]);
            });
            // The key, squared ReLU and value chain beside the receptance.
            let scratch = (&mut *rows.products, self.max_cols());
            let value = Some((relu_squared as fn(f32) -> f32, &w.ffn_value, &mut rows.out[..m]));
            let products = [
                Product { l: &w.ffn_key, x: &rows.mix_k[..m], y: &mut rows.ffn[..n * df], then: value },
                Product { l: &w.ffn_receptance, x: &rows.mix_r[..m], y: &mut rows.r[..m], then: None },
            ];
            step_products::run_products(products, n, scratch, rc);
            for ((xv, o), r) in x.iter_mut().zip(&rows.out[..m]).zip(&rows.r[..m]) {
                *xv += sigmoid(*r) * o;
            }
        }
        if logit_rows == 0 {
            return;
        }
        let ((ln_w, ln_b), head) = self.head();
        let first = n - logit_rows;
        for (xt, o) in x.chunks_exact(dm).skip(first).zip(rows.normed.chunks_exact_mut(dm)) {
            layer_norm(xt, ln_w, ln_b, eps, o);
        }
        let logits = &mut rows.logits[..logit_rows * c.vocab_size as usize];
        rc.project_head(&head, &rows.normed[..logit_rows * dm], logits, logit_rows);
    }
}

layer_major_family!(
    /// A loaded, validated RWKV-4 model.
    Rwkv4,
    config = Rwkv4Config,
    logits_slot = 11
);

#[cfg(all(test, feature = "threads"))]
mod tests {
    use super::*;
    use crate::parallel::Workers;
    use std::vec::Vec;

    /// State and outputs of a chunk's WKV on `threads` threads.
    fn run(dm: usize, tokens: usize, threads: usize, kernels: &'static eddy_kernels::Kernels) -> Vec<u32> {
        let mut rng = eddy_testkit::Lcg(dm as u64 * 31 + tokens as u64);
        let mut vec = |n: usize, scale: f32| (0..n).map(|_| rng.f() * scale).collect::<Vec<_>>();
        let (k, v, r) = (vec(tokens * dm, 4.0), vec(tokens * dm, 2.0), vec(tokens * dm, 3.0));
        let (first, decay) = (vec(dm, 1.0), vec(dm, 2.0).iter().map(|d| -d.abs()).collect::<Vec<_>>());
        let mut state = vec(dm, 1.0);
        state.extend(vec(dm, 1.0).iter().map(|d| 0.5 + d.abs()));
        state.extend(vec(dm, 5.0));
        let (mut grouped, mut staging, mut out) =
            (std::vec![0f32; tokens * dm], std::vec![0f32; tokens * dm], std::vec![0f32; tokens * dm]);
        let x = WkvTokens { k: &k, v: &v, r: &r, first: &first, decay: &decay };
        let cx = Compute { kernels, workers: Workers::threads(threads).unwrap() };
        wkv_chunk(&x, &mut state, (&mut grouped, &mut staging), &mut out, cx);
        state.iter().chain(&out).map(|f| f.to_bits()).collect()
    }

    #[test]
    fn the_chunk_wkv_is_the_same_for_any_thread_count_and_kernel_set() {
        let best = eddy_kernels::best();
        for (dm, tokens) in [(37, 5), (64, 3), (768, 9), (8, 4), (13, 1)] {
            let one = run(dm, tokens, 1, &eddy_kernels::SCALAR);
            for threads in [2, 3] {
                assert!(run(dm, tokens, threads, &eddy_kernels::SCALAR) == one, "dm {dm} threads {threads}");
                assert!(run(dm, tokens, threads, best) == one, "dm {dm} threads {threads} {}", best.name);
            }
        }
    }
}
