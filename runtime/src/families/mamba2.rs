//! Mamba-2 (multi-head SSD, `Mamba2ForCausalLM`): per head a scalar decay
//! `A`, B/C shared by groups of heads, and a gated, group-wise RMSNorm
//! before the output projection.
//!
//! Per token and head `h` (group `g`), with `dt = softplus(dt_raw + dt_bias)`:
//! `S_h = exp(dt A_h) S_h + dt x_h B_gᵀ` (`S_h` is `head_dim x d_state`),
//! `y_h = S_h C_g + D_h x_h`. Prefill batches the projections of a chunk
//! (weights read once per chunk), runs the conv over the whole chunk in
//! channel blocks and, with an f32 state, the scan over the whole chunk in
//! blocks of heads, both split across the workers once per layer (see
//! [`crate::chunk`]). A step splits the scan's heads across the workers.

use crate::arch::HParam;
use crate::error::ModelError;
use crate::chunk::{by_channel_blocks, conv_silu_chunk, BLOCK_CHANNELS};
use crate::family::{layer_major_family, scratch_rows, Compute, ProductScratch, RmsHead, RunCtx};
use crate::file::EddyFile;
use crate::linear::Linear;
use crate::ops::{add_assign, gated_group_rms_norm_rows, rms_norm_rows};
use crate::schema::{dim, epsilon, flag, visit_head, TensorCursor, TensorKind, TensorSpec, MAX_DIM};
use crate::state_store::{LayerState, StatePart, StateParts, StateStore};
use eddy_kernels::{ConvWeights, HeadScanTokens, TokenRows};

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
    /// conv_out, y, out, logits rows, staging (chunks only), activations.
    fn sizes(&self, n: usize, logit_rows: usize) -> [Option<usize>; 9] {
        let d = self.dims();
        [
            n.checked_mul(d.dm),
            n.checked_mul(d.dm),
            n.checked_mul(d.proj),
            n.checked_mul(d.conv_dim),
            n.checked_mul(d.di),
            n.checked_mul(d.dm),
            logit_rows.checked_mul(d.v),
            if n > 1 { n.checked_mul(d.conv_dim) } else { Some(0) },
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
    /// Per-token vectors of a chunk, `n` rows each (1 for a step);
    /// `staging` holds the blocks of a chunk's conv and scan (see
    /// [`crate::chunk::by_channel_blocks`]).
    Rows { residual, normed, proj, conv_out, y, out, logits, staging }
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

    /// Words of the conv window at the start of a layer's state.
    fn conv_words(&self) -> usize {
        let d = self.config.dims();
        d.conv_dim * (d.dc - 1)
    }

    /// Run `tokens` through all layers, layer by layer (a step is a chunk
    /// of one): the projections batched, then [`mix`](Self::mix). Leaves
    /// the logits of the last `logit_rows` tokens.
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
            self.mix(&w, &mut layer, r, n, rc.cx);
            rc.project(&w.out_proj, &r.y[..n * d.di], &mut r.out[..m], n);
            add_assign(&mut r.residual[..m], &r.out[..m]);
        }
        if rc.logit_rows == 0 {
            return;
        }
        self.head().logits(&r.residual[..m], d.dm, r.normed, r.logits, rc);
    }

    /// Conv, scan and gated norm of `n` tokens, from their `proj` rows to
    /// `y`. The conv runs over the whole chunk (its window is stored
    /// exactly); the scan too when the state is f32, else token by token
    /// (each token's state is coded before the next reads it).
    fn mix(&self, w: &LayerWeights<'_>, layer: &mut LayerState<'_>, r: &mut Rows<'_>, n: usize, cx: Compute<'_>) {
        let d = self.config.dims();
        let proj = &r.proj[..n * d.proj];
        let (conv_out, y) = (&mut r.conv_out[..n * d.conv_dim], &mut r.y[..n * d.di]);
        let conv = ConvWeights { weight: w.conv_w, bias: w.conv_b, width: d.dc };
        let xbc = TokenRows { data: &proj[d.di..], stride: d.proj };
        let conv_words = self.conv_words();
        let conv_state = &mut layer.words()[..conv_words];
        if n == 1 {
            (cx.kernels.conv_silu)(&conv, conv_state, xbc.row(0, d.conv_dim), conv_out);
        } else {
            conv_silu_chunk(&conv, xbc, conv_state, r.staging, conv_out, cx);
        }
        let dt = TokenRows { data: &proj[d.di + d.conv_dim..], stride: d.proj };
        let heads_per_group = d.nh / self.config.n_groups as usize;
        let scan = HeadScanTokens {
            a: w.a,
            d: w.d,
            dt_bias: w.dt_bias,
            dt,
            x: TokenRows { data: conv_out, stride: d.conv_dim },
            b: TokenRows { data: &conv_out[d.di..], stride: d.conv_dim },
            c: TokenRows { data: &conv_out[d.di + d.bc..], stride: d.conv_dim },
            head_dim: d.hd,
            d_state: d.ds,
            heads_per_group,
            tokens: n,
        };
        if n > 1 && layer.codes_nothing() {
            scan_chunk_by_heads(&scan, &mut layer.words()[conv_words..], r.staging, y, cx);
        } else {
            for (t, yt) in y.chunks_exact_mut(d.di).enumerate() {
                scan_token_by_heads(&scan, t, &mut layer.words()[conv_words..], yt, cx);
                layer.end_token();
            }
        }
        let group = d.di / self.config.n_groups as usize;
        let eps = self.config.norm_eps;
        // Rows are independent: a few tokens per job when there are many.
        let rows_per_job = n.div_ceil(4 * cx.workers.count()).max(1);
        cx.workers.for_chunks(y, rows_per_job * d.di, &mut [], |i, ys, _| {
            let z = TokenRows { data: &proj[(i * rows_per_job * d.proj).min(proj.len())..], stride: d.proj };
            gated_group_rms_norm_rows(ys, z, w.gate_norm, group, eps);
        });
    }
}

/// Heads one job of [`scan_chunk_by_heads`] covers (about
/// [`BLOCK_CHANNELS`] channels), or one job of [`scan_token_by_heads`]
/// (`target` heads): a divisor of `heads_per_group` or a multiple of it,
/// so no block straddles a group boundary without starting at one (the
/// block's B and C are then one slice, its heads' groups counted from it).
fn head_block(heads_per_group: usize, target: usize) -> usize {
    let (hpg, target) = (heads_per_group.max(1), target.max(1));
    if target >= hpg {
        target / hpg * hpg
    } else {
        (1..=target).rev().find(|b| hpg % b == 0).unwrap_or(1)
    }
}

/// `args` for heads `h0..h0 + heads` (`h0` at a block boundary of
/// [`head_block`]): their parameters, rows and B/C groups.
fn head_range<'x>(args: &HeadScanTokens<'x>, h0: usize, heads: usize) -> HeadScanTokens<'x> {
    let (hd, ds, hpg) = (args.head_dim, args.d_state, args.heads_per_group.max(1));
    let g0 = h0 / hpg;
    let from = |rows: TokenRows<'x>, at: usize| TokenRows { data: &rows.data[at.min(rows.data.len())..], ..rows };
    let part = |v: &'x [f32]| &v[h0.min(v.len())..(h0 + heads).min(v.len())];
    HeadScanTokens {
        a: part(args.a),
        d: part(args.d),
        dt_bias: part(args.dt_bias),
        dt: from(args.dt, h0),
        x: from(args.x, h0 * hd),
        b: from(args.b, g0 * ds),
        c: from(args.c, g0 * ds),
        ..*args
    }
}

/// The scan of a whole prefill chunk (f32 state): one
/// `diagonal_scan_heads_tokens` call per block of heads over every token,
/// the blocks split across the workers once per layer (see
/// [`by_channel_blocks`]); one worker scans every head in one call. That
/// kernel equals one `diagonal_scan_heads` call per token and heads are
/// independent, so results are bit-identical to stepping.
fn scan_chunk_by_heads(
    scan: &HeadScanTokens<'_>,
    ssm: &mut [f32],
    staging: &mut [f32],
    y: &mut [f32],
    cx: Compute<'_>,
) {
    let (hd, ds) = (scan.head_dim, scan.d_state);
    let block = head_block(scan.heads_per_group, BLOCK_CHANNELS / hd.max(1)) * hd;
    let channels = scan.heads() * hd;
    // Channels `c0..c0 + wb` (whole heads) over every token.
    let scan_block = |c0: usize, wb: usize, state: &mut [f32], y_out: &mut [f32]| {
        let args = head_range(scan, c0 / hd.max(1), wb / hd.max(1));
        (cx.kernels.diagonal_scan_heads_tokens)(&args, state, y_out);
    };
    by_channel_blocks(cx, (channels, block, ds), ssm, staging, y, scan_block);
}

/// Token `t` of the scan, its heads split evenly across the workers (in
/// whole blocks of [`head_block`]); heads are independent, so results are
/// identical for any thread count.
fn scan_token_by_heads(scan: &HeadScanTokens<'_>, t: usize, ssm: &mut [f32], y: &mut [f32], cx: Compute<'_>) {
    let (hd, ds) = (scan.head_dim, scan.d_state);
    let per_worker = head_block(scan.heads_per_group, scan.heads().div_ceil(cx.workers.count()));
    cx.workers.for_chunk_pairs(y, per_worker * hd, ssm, per_worker * hd * ds, |i, y, state| {
        let block = head_range(scan, i * per_worker, per_worker).token(t);
        (cx.kernels.diagonal_scan_heads)(&block, state, y);
    });
}

layer_major_family!(
    /// A loaded, validated Mamba-2 model.
    Mamba2,
    config = Mamba2Config,
    logits_slot = 6
);
