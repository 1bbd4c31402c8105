//! Mamba-2 (multi-head SSD, `Mamba2ForCausalLM`): per head a scalar decay
//! `A`, B/C shared by groups of heads, and a gated, group-wise RMSNorm
//! before the output projection.
//!
//! Per token and head `h` (group `g`), with `dt = softplus(dt_raw + dt_bias)`:
//! `S_h = exp(dt A_h) S_h + dt x_h B_gᵀ` (`S_h` is `head_dim x d_state`),
//! `y_h = S_h C_g + D_h x_h`. Prefill batches the projections of a chunk
//! (weights read once per chunk); the scan runs token by token.

use crate::arch::HParam;
use crate::error::ModelError;
use crate::family::{checked_total, observe_input, Carver, ChunkLogits, Compute, Family, Observer};
use crate::file::EddyFile;
use crate::linear::{ActScratch, BatchActScratch, Linear};
use crate::ops::{add_assign, gated_group_rms_norm, rms_norm};
use crate::schema::{
    check_schema, dim, epsilon, flag, visit_head, TensorCursor, TensorKind, TensorSpec, MAX_DIM,
};
use crate::state_store::{StatePart, StateParts, StateStore};
use eddy_kernels::{HeadScanArgs, Kernels};

/// Hyper-parameters of a Mamba-2 model.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Mamba2Config {
    /// Vocabulary size.
    pub vocab_size: u32,
    /// Model width.
    pub d_model: u32,
    /// Number of layers.
    pub n_layer: u32,
    /// SSM state size per head channel.
    pub d_state: u32,
    /// Causal convolution width.
    pub d_conv: u32,
    /// Inner width (`n_heads * head_dim`).
    pub d_inner: u32,
    /// Number of SSD heads.
    pub n_heads: u32,
    /// Number of B/C groups.
    pub n_groups: u32,
    /// RMSNorm epsilon (block norms and the gated norm).
    pub norm_eps: f32,
    /// LM head tied to the embedding.
    pub tied_embeddings: bool,
    /// in_proj/out_proj have biases.
    pub proj_bias: bool,
    /// conv1d has a bias.
    pub conv_bias: bool,
}

impl Mamba2Config {
    /// Read and check the hyper-parameters of a file.
    pub fn from_file(file: &EddyFile<'_>) -> Result<Self, ModelError> {
        let c = Mamba2Config {
            vocab_size: dim(file, HParam::VocabSize, MAX_DIM)?,
            d_model: dim(file, HParam::DModel, MAX_DIM)?,
            n_layer: dim(file, HParam::NLayer, 4096)?,
            d_state: dim(file, HParam::DState, 4096)?,
            d_conv: dim(file, HParam::DConv, 64)?,
            d_inner: dim(file, HParam::DInner, MAX_DIM)?,
            n_heads: dim(file, HParam::NHeads, MAX_DIM)?,
            n_groups: dim(file, HParam::NGroups, MAX_DIM)?,
            norm_eps: epsilon(file, HParam::NormEps)?,
            tied_embeddings: flag(file, HParam::TiedEmbeddings)?,
            proj_bias: flag(file, HParam::ProjBias)?,
            conv_bias: flag(file, HParam::ConvBias)?,
        };
        // Heads split d_inner evenly; groups split the heads and d_inner.
        if c.d_inner % c.n_heads != 0 {
            return Err(ModelError::BadHParam { name: HParam::NHeads.name(), value: c.n_heads });
        }
        if c.n_heads % c.n_groups != 0 || c.d_inner % c.n_groups != 0 {
            return Err(ModelError::BadHParam { name: HParam::NGroups.name(), value: c.n_groups });
        }
        Ok(c)
    }

    fn dims(&self) -> Dims {
        let di = self.d_inner as usize;
        let bc = self.n_groups as usize * self.d_state as usize;
        Dims {
            dm: self.d_model as usize,
            di,
            ds: self.d_state as usize,
            dc: self.d_conv as usize,
            nh: self.n_heads as usize,
            hd: di / self.n_heads as usize,
            bc,
            conv_dim: di + 2 * bc,
            proj: 2 * di + 2 * bc + self.n_heads as usize,
            v: self.vocab_size as usize,
            max_cols: (self.d_model as usize).max(di),
        }
    }

    /// f32 words of state: conv window and SSM state of every layer.
    pub fn state_words(&self) -> Option<usize> {
        let d = self.dims();
        let conv = d.conv_dim.checked_mul(d.dc - 1)?;
        conv.checked_add(d.di.checked_mul(d.ds)?)?.checked_mul(self.n_layer as usize)
    }

    /// Scratch sizes for `n` tokens (1 for a step): residual, normed, proj,
    /// conv_out, y, out, logits rows, activations.
    fn sizes(&self, n: usize, logit_rows: usize) -> [Option<usize>; 8] {
        let d = self.dims();
        let act = if n == 1 {
            Some(ActScratch::words(d.max_cols))
        } else {
            n.checked_mul(d.max_cols * 2).map(|_| BatchActScratch::words(d.max_cols, n))
        };
        [
            n.checked_mul(d.dm),
            n.checked_mul(d.dm),
            n.checked_mul(d.proj),
            n.checked_mul(d.conv_dim),
            n.checked_mul(d.di),
            n.checked_mul(d.dm),
            logit_rows.checked_mul(d.v),
            act,
        ]
    }
}

/// Derived widths.
#[derive(Clone, Copy)]
struct Dims {
    dm: usize,
    di: usize,
    ds: usize,
    dc: usize,
    nh: usize,
    hd: usize,
    /// `n_groups * d_state`: width of B (and of C).
    bc: usize,
    conv_dim: usize,
    proj: usize,
    v: usize,
    max_cols: usize,
}

/// Visit the canonical tensor list of a Mamba-2 model in file order.
pub fn tensor_schema(c: &Mamba2Config, visit: &mut dyn FnMut(TensorSpec)) {
    use TensorKind::{Matrix, F32};
    let d = c.dims();
    let (v, dm, di, nh) = (d.v as u64, d.dm as u64, d.di as u64, d.nh as u64);
    visit(TensorSpec::global("embed.weight", v, dm, Matrix));
    for i in 0..c.n_layer {
        let s = |pattern, rows, cols, kind| TensorSpec::layer(pattern, i, rows, cols, kind);
        visit(s("layers.{i}.norm.weight", 1, dm, F32));
        visit(s("layers.{i}.in_proj.weight", d.proj as u64, dm, Matrix));
        if c.proj_bias {
            visit(s("layers.{i}.in_proj.bias", 1, d.proj as u64, F32));
        }
        visit(s("layers.{i}.conv1d.weight", d.conv_dim as u64, d.dc as u64, F32));
        if c.conv_bias {
            visit(s("layers.{i}.conv1d.bias", 1, d.conv_dim as u64, F32));
        }
        visit(s("layers.{i}.dt_bias", 1, nh, F32));
        visit(s("layers.{i}.A", 1, nh, F32));
        visit(s("layers.{i}.D", 1, nh, F32));
        visit(s("layers.{i}.gate_norm.weight", 1, di, F32));
        visit(s("layers.{i}.out_proj.weight", dm, di, Matrix));
        if c.proj_bias {
            visit(s("layers.{i}.out_proj.bias", 1, dm, F32));
        }
    }
    visit_head(visit, v, dm, c.tied_embeddings);
}

/// A loaded, validated Mamba-2 model.
#[derive(Clone, Copy, Debug)]
pub struct Mamba2<'a> {
    /// Hyper-parameters.
    pub config: Mamba2Config,
    file: EddyFile<'a>,
}

struct LayerWeights<'a> {
    norm: &'a [f32],
    in_proj: Linear<'a>,
    conv_w: &'a [f32],
    conv_b: Option<&'a [f32]>,
    dt_bias: &'a [f32],
    a: &'a [f32],
    d: &'a [f32],
    gate_norm: &'a [f32],
    out_proj: Linear<'a>,
}

impl<'a> Mamba2<'a> {
    /// Bind a parsed file: check hyper-parameters and every tensor.
    pub fn load(file: EddyFile<'a>) -> Result<Self, ModelError> {
        let config = Mamba2Config::from_file(&file)?;
        config.state_words().ok_or(ModelError::SizeOverflow)?;
        checked_total(&config.sizes(1, 1)).ok_or(ModelError::SizeOverflow)?;
        check_schema(&file, |visit| tensor_schema(&config, visit))?;
        Ok(Mamba2 { config, file })
    }

    fn per_layer(&self) -> u32 {
        8 + 2 * self.config.proj_bias as u32 + self.config.conv_bias as u32
    }

    fn embed(&self) -> Linear<'a> {
        TensorCursor::at(&self.file, 0).linear(false)
    }

    fn layer(&self, i: u32) -> LayerWeights<'a> {
        let c = &self.config;
        let mut t = TensorCursor::at(&self.file, 1 + i * self.per_layer());
        LayerWeights {
            norm: t.f32(),
            in_proj: t.linear(c.proj_bias),
            conv_w: t.f32(),
            conv_b: t.f32_if(c.conv_bias),
            dt_bias: t.f32(),
            a: t.f32(),
            d: t.f32(),
            gate_norm: t.f32(),
            out_proj: t.linear(c.proj_bias),
        }
    }

    fn head(&self) -> (&'a [f32], Linear<'a>) {
        let mut t = TensorCursor::at(&self.file, 1 + self.config.n_layer * self.per_layer());
        let norm_f = t.f32();
        let head = if self.config.tied_embeddings { self.embed() } else { t.linear(false) };
        (norm_f, head)
    }

    /// Conv, scan and gated norm of one token, from its `proj` row to `y`.
    fn mix_token(
        &self,
        kernels: &Kernels,
        w: &LayerWeights<'_>,
        layer_state: &mut [f32],
        proj: &[f32],
        conv_out: &mut [f32],
        y: &mut [f32],
    ) {
        let d = self.config.dims();
        let (conv_state, ssm) = layer_state.split_at_mut(self.conv_words());
        let (z, rest) = proj.split_at(d.di);
        let (xbc, dt_raw) = rest.split_at(d.conv_dim);
        let conv = eddy_kernels::ConvWeights { weight: w.conv_w, bias: w.conv_b, width: d.dc };
        (kernels.conv_silu)(&conv, conv_state, xbc, conv_out);
        let (x, bc) = conv_out.split_at(d.di);
        let (b, c) = bc.split_at(d.bc);
        let scan = HeadScanArgs {
            a: w.a,
            d: w.d,
            dt: dt_raw,
            dt_bias: w.dt_bias,
            x,
            b,
            c,
            head_dim: d.hd,
            d_state: d.ds,
            heads_per_group: d.nh / self.config.n_groups as usize,
        };
        (kernels.diagonal_scan_heads)(&scan, ssm, y);
        let group = d.di / self.config.n_groups as usize;
        gated_group_rms_norm(y, z, w.gate_norm, group, self.config.norm_eps);
    }

    /// Words of the conv window at the start of a layer's state.
    fn conv_words(&self) -> usize {
        let d = self.config.dims();
        d.conv_dim * (d.dc - 1)
    }
}

impl<'a> Family<'a> for Mamba2<'a> {
    fn vocab_size(&self) -> usize {
        self.config.vocab_size as usize
    }

    fn state_layers(&self) -> usize {
        self.config.n_layer as usize
    }

    /// The conv window (exact), then the SSM state `S[channel][state]`.
    fn state_parts(&self, _layer: usize) -> StateParts {
        let d = self.config.dims();
        StateParts::new([StatePart::Exact(self.conv_words()), StatePart::Coded { rows: d.di, cols: d.ds }])
    }

    fn scratch_words(&self) -> Option<usize> {
        checked_total(&self.config.sizes(1, 1))
    }

    fn logits_offset_words(&self) -> usize {
        self.config.sizes(1, 1)[..6].iter().map(|s| s.unwrap_or(0)).sum()
    }

    fn visit_schema(&self, visit: &mut dyn FnMut(TensorSpec)) {
        tensor_schema(&self.config, visit)
    }

    fn step<'s>(
        &self,
        token: u32,
        state: &mut StateStore<'_>,
        scratch: &'s mut [f32],
        want_logits: bool,
        cx: Compute<'_>,
        mut observe: Option<Observer<'_>>,
    ) -> &'s [f32] {
        let c = &self.config;
        let d = c.dims();
        let sizes = c.sizes(1, 1).map(|s| s.unwrap_or(0));
        let mut carve = Carver::new(scratch);
        let residual = carve.take(sizes[0]);
        let normed = carve.take(sizes[1]);
        let proj = carve.take(sizes[2]);
        let conv_out = carve.take(sizes[3]);
        let y = carve.take(sizes[4]);
        let out = carve.take(sizes[5]);
        let logits = carve.take(sizes[6]);
        let act = &mut ActScratch::from_words(carve.take(sizes[7]), d.max_cols);

        self.embed().row(token as usize, residual);
        let mut layers = state.layers();
        for i in 0..c.n_layer {
            let w = self.layer(i);
            let mut layer = layers.next(self.state_parts(i as usize));
            rms_norm(residual, w.norm, c.norm_eps, normed);
            observe_input(&mut observe, &w.in_proj, normed);
            w.in_proj.matvec(normed, proj, act, cx.kernels, cx.workers);
            self.mix_token(cx.kernels, &w, layer.words(), proj, conv_out, y);
            layer.end_token();
            observe_input(&mut observe, &w.out_proj, y);
            w.out_proj.matvec(y, out, act, cx.kernels, cx.workers);
            add_assign(residual, out);
        }
        if want_logits {
            let (norm_f, head) = self.head();
            rms_norm(residual, norm_f, c.norm_eps, normed);
            observe_input(&mut observe, &head, normed);
            head.matvec(normed, logits, act, cx.kernels, cx.workers);
        }
        logits
    }

    fn prefill_scratch_words(&self, tokens: usize, all_logits: bool) -> Option<usize> {
        let rows = if all_logits { tokens } else { 1 };
        checked_total(&self.config.sizes(tokens.max(2), rows))
    }

    fn prefill_chunk<'s>(
        &self,
        tokens: &[u32],
        state: &mut StateStore<'_>,
        scratch: &'s mut [f32],
        wanted: ChunkLogits,
        cx: Compute<'_>,
    ) -> &'s [f32] {
        let c = &self.config;
        let d = c.dims();
        // Sized for at least 2 tokens so the batch activation layout is used.
        let n = tokens.len();
        let cap = n.max(2);
        let logit_rows = wanted.rows(n);
        let sizes = c.sizes(cap, wanted.layout_rows(n)).map(|s| s.unwrap_or(0));
        let mut carve = Carver::new(scratch);
        let residual = &mut carve.take(sizes[0])[..n * d.dm];
        let normed = &mut carve.take(sizes[1])[..n * d.dm];
        let proj = &mut carve.take(sizes[2])[..n * d.proj];
        let conv_out = carve.take(sizes[3]);
        let y = &mut carve.take(sizes[4])[..n * d.di];
        let out = &mut carve.take(sizes[5])[..n * d.dm];
        let logits = carve.take(sizes[6]);
        let act = &mut BatchActScratch::from_words(carve.take(sizes[7]), d.max_cols, cap);

        for (&token, r) in tokens.iter().zip(residual.chunks_exact_mut(d.dm)) {
            self.embed().row(token as usize, r);
        }
        let mut layers = state.layers();
        for i in 0..c.n_layer {
            let w = self.layer(i);
            let mut layer = layers.next(self.state_parts(i as usize));
            for (r, o) in residual.chunks_exact(d.dm).zip(normed.chunks_exact_mut(d.dm)) {
                rms_norm(r, w.norm, c.norm_eps, o);
            }
            w.in_proj.matmat(normed, proj, n, act, cx.kernels, cx.workers);
            for (p, yt) in proj.chunks_exact(d.proj).zip(y.chunks_exact_mut(d.di)) {
                self.mix_token(cx.kernels, &w, layer.words(), p, &mut conv_out[..d.conv_dim], yt);
                layer.end_token();
            }
            w.out_proj.matmat(y, out, n, act, cx.kernels, cx.workers);
            add_assign(residual, out);
        }
        let (norm_f, head) = self.head();
        let first = n - logit_rows;
        for (r, o) in residual.chunks_exact(d.dm).skip(first).zip(normed.chunks_exact_mut(d.dm)) {
            rms_norm(r, norm_f, c.norm_eps, o);
        }
        let logits = &mut logits[..logit_rows * d.v];
        head.matmat(&normed[..logit_rows * d.dm], logits, logit_rows, act, cx.kernels, cx.workers);
        logits
    }
}
