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
use crate::family::{layer_major_family, scratch_rows, ProductScratch, RmsHead, RunCtx};
use crate::file::EddyFile;
use crate::linear::Linear;
use crate::ops::{add_assign, gated_group_rms_norm, rms_norm_rows};
use crate::schema::{dim, epsilon, flag, visit_head, TensorCursor, TensorKind, TensorSpec, MAX_DIM};
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
        [
            n.checked_mul(d.dm),
            n.checked_mul(d.dm),
            n.checked_mul(d.proj),
            n.checked_mul(d.conv_dim),
            n.checked_mul(d.di),
            n.checked_mul(d.dm),
            logit_rows.checked_mul(d.v),
            ProductScratch::words(d.max_cols, n),
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

scratch_rows! {
    /// Per-token vectors of a chunk, `n` rows each (1 for a step).
    Rows { residual, normed, proj, conv_out, y, out, logits }
}

impl<'a> Mamba2<'a> {
    /// Widest input of any matrix (activation scratch).
    fn max_cols(&self) -> usize {
        self.config.dims().max_cols
    }

    /// The conv window (exact), then the SSM state `S[channel][state]`.
    fn layer_parts(&self, _layer: usize) -> StateParts {
        let d = self.config.dims();
        StateParts::new([StatePart::Exact(self.conv_words()), StatePart::Coded { rows: d.di, cols: d.ds }])
    }

    fn per_layer(&self) -> u32 {
        8 + 2 * self.config.proj_bias as u32 + self.config.conv_bias as u32
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

    /// The final norm and the LM head (after the tensors of every layer).
    fn head(&self) -> RmsHead<'a> {
        let c = &self.config;
        RmsHead::at(&self.file, 1 + c.n_layer * self.per_layer(), c.norm_eps, c.tied_embeddings)
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

    /// Run `tokens` through all layers, layer by layer (a step is a chunk
    /// of one): the projections batched, conv and scan token by token.
    /// Leaves the logits of the last `logit_rows` tokens.
    fn run(&self, tokens: &[u32], state: &mut StateStore<'_>, r: &mut Rows<'_>, rc: &mut RunCtx<'_, '_, '_>) {
        let c = &self.config;
        let d = c.dims();
        let n = tokens.len();
        let m = n * d.dm;
        self.embed().rows_into(tokens, r.residual);
        let mut layers = state.layers();
        for i in 0..c.n_layer {
            let w = self.layer(i);
            let mut layer = layers.next(self.layer_parts(i as usize));
            rms_norm_rows(&r.residual[..m], w.norm, c.norm_eps, r.normed);
            rc.project(&w.in_proj, &r.normed[..m], &mut r.proj[..n * d.proj], n);
            let conv_out = &mut r.conv_out[..d.conv_dim];
            for (p, yt) in r.proj[..n * d.proj].chunks_exact(d.proj).zip(r.y.chunks_exact_mut(d.di)) {
                self.mix_token(rc.cx.kernels, &w, layer.words(), p, conv_out, yt);
                layer.end_token();
            }
            rc.project(&w.out_proj, &r.y[..n * d.di], &mut r.out[..m], n);
            add_assign(&mut r.residual[..m], &r.out[..m]);
        }
        if rc.logit_rows == 0 {
            return;
        }
        self.head().logits(&r.residual[..m], d.dm, r.normed, r.logits, rc);
    }
}

layer_major_family!(
    /// A loaded, validated Mamba-2 model.
    Mamba2,
    config = Mamba2Config,
    logits_slot = 6
);
