//! Mamba-1 (selective state-space model), f32 reference path.
//!
//! Tensors are stored in the canonical order of [`tensor_schema`], so a
//! layer's weights are found by index arithmetic at run time: no allocation
//! and no string search per step. The loader checks every name and shape.

use crate::arch::HParam;
use crate::error::ModelError;
use crate::family::{observe_input, split_at_starts, Chunk, Compute, Family, Observer};
use crate::file::EddyFile;
use crate::linear::{ActScratch, BatchActScratch, Linear};
use crate::ops::{add_assign, rms_norm};
use crate::schema::{
    check_schema, dim, epsilon, flag, visit_head, TensorCursor, TensorKind, TensorSpec, MAX_DIM,
};
use crate::state_store::{StatePart, StateParts, StateStore};
use crate::chunk::{by_channel_blocks, conv_silu_chunk, BLOCK_CHANNELS};
use eddy_kernels::{ConvWeights, ScanTokens, TokenRows};

/// Hyper-parameters of a Mamba-1 model.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Mamba1Config {
    /// Vocabulary size.
    pub vocab_size: u32,
    /// Model width.
    pub d_model: u32,
    /// Number of layers.
    pub n_layer: u32,
    /// SSM state size per channel.
    pub d_state: u32,
    /// Causal convolution width.
    pub d_conv: u32,
    /// Inner width.
    pub d_inner: u32,
    /// Time-step projection rank.
    pub dt_rank: u32,
    /// RMSNorm epsilon.
    pub norm_eps: f32,
    /// LM head tied to the embedding.
    pub tied_embeddings: bool,
    /// in_proj/out_proj have biases.
    pub proj_bias: bool,
    /// conv1d has a bias.
    pub conv_bias: bool,
}

impl Mamba1Config {
    /// Read and check the hyper-parameters of a file.
    pub fn from_file(file: &EddyFile<'_>) -> Result<Self, ModelError> {
        let norm_eps = epsilon(file, HParam::NormEps)?;
        Ok(Mamba1Config {
            vocab_size: dim(file, HParam::VocabSize, MAX_DIM)?,
            d_model: dim(file, HParam::DModel, MAX_DIM)?,
            n_layer: dim(file, HParam::NLayer, 4096)?,
            d_state: dim(file, HParam::DState, 4096)?,
            d_conv: dim(file, HParam::DConv, 64)?,
            d_inner: dim(file, HParam::DInner, MAX_DIM)?,
            dt_rank: dim(file, HParam::DtRank, MAX_DIM)?,
            norm_eps,
            tied_embeddings: flag(file, HParam::TiedEmbeddings)?,
            proj_bias: flag(file, HParam::ProjBias)?,
            conv_bias: flag(file, HParam::ConvBias)?,
        })
    }

    /// f32 words of state for the whole model. Checked throughout: with
    /// 32-bit `usize` the per-layer product alone can overflow, and this runs
    /// before the tensors are checked against the hyper-parameters.
    pub fn state_words(&self) -> Option<usize> {
        (self.d_conv as usize - 1)
            .checked_add(self.d_state as usize)?
            .checked_mul(self.d_inner as usize)?
            .checked_mul(self.n_layer as usize)
    }

    /// `(d_model, d_inner, d_state, dt_rank, vocab_size)`: the widths the
    /// scratch layouts of a step and a prefill are built from.
    fn layout_widths(&self) -> (usize, usize, usize, usize, usize) {
        let c = self;
        (c.d_model as usize, c.d_inner as usize, c.d_state as usize, c.dt_rank as usize, c.vocab_size as usize)
    }

    /// f32 words of scratch one step needs.
    pub fn scratch_words(&self) -> Option<usize> {
        let l = ScratchLayout::new(self);
        Some(l.total)
    }
}

const LAYER_SLOTS: usize = 12;

fn layer_specs(c: &Mamba1Config, i: u32) -> [Option<TensorSpec>; LAYER_SLOTS] {
    let (dm, di, ds, dc, dr) =
        (c.d_model as u64, c.d_inner as u64, c.d_state as u64, c.d_conv as u64, c.dt_rank as u64);
    let s = |pattern, rows, cols, kind| Some(TensorSpec::layer(pattern, i, rows, cols, kind));
    use TensorKind::{Matrix, F32};
    [
        s("layers.{i}.norm.weight", 1, dm, F32),
        s("layers.{i}.in_proj.weight", 2 * di, dm, Matrix),
        if c.proj_bias { s("layers.{i}.in_proj.bias", 1, 2 * di, F32) } else { None },
        s("layers.{i}.conv1d.weight", di, dc, F32),
        if c.conv_bias { s("layers.{i}.conv1d.bias", 1, di, F32) } else { None },
        s("layers.{i}.x_proj.weight", dr + 2 * ds, di, Matrix),
        s("layers.{i}.dt_proj.weight", di, dr, Matrix),
        s("layers.{i}.dt_proj.bias", 1, di, F32),
        s("layers.{i}.A", di, ds, F32),
        s("layers.{i}.D", 1, di, F32),
        s("layers.{i}.out_proj.weight", dm, di, Matrix),
        if c.proj_bias { s("layers.{i}.out_proj.bias", 1, dm, F32) } else { None },
    ]
}

/// Visit the canonical tensor list of a Mamba-1 model in file order.
pub fn tensor_schema(c: &Mamba1Config, visit: &mut dyn FnMut(TensorSpec)) {
    use TensorKind::Matrix;
    let (v, dm) = (c.vocab_size as u64, c.d_model as u64);
    visit(TensorSpec::global("embed.weight", v, dm, Matrix));
    for i in 0..c.n_layer {
        for spec in layer_specs(c, i).into_iter().flatten() {
            visit(spec);
        }
    }
    visit_head(visit, v, dm, c.tied_embeddings);
}

/// Offsets of the per-step scratch vectors, in f32 words.
struct ScratchLayout {
    normed: usize,
    xz: usize,
    conv_out: usize,
    x_dbl: usize,
    dt: usize,
    y: usize,
    out: usize,
    logits: usize,
    act: usize,
    max_cols: usize,
    total: usize,
}

impl ScratchLayout {
    fn new(c: &Mamba1Config) -> Self {
        let (dm, di, ds, dr, v) = c.layout_widths();
        // The residual stream occupies words [0, d_model).
        let normed = dm;
        let xz = normed + dm;
        let conv_out = xz + 2 * di;
        let x_dbl = conv_out + di;
        let dt = x_dbl + dr + 2 * ds;
        let y = dt + di;
        let out = y + di;
        let logits = out + dm;
        let act = logits + v;
        let max_cols = dm.max(di).max(dr);
        let total = act + ActScratch::words(max_cols);
        ScratchLayout { act, max_cols, normed, xz, conv_out, x_dbl, dt, y, out, logits, total }
    }
}

/// Offsets of the batched-prefill scratch for a chunk of `tokens` tokens,
/// in f32 words: the step vectors, one row per token.
struct PrefillLayout {
    normed: usize,
    xz: usize,
    conv_out: usize,
    x_dbl: usize,
    dt_in: usize,
    dt: usize,
    y: usize,
    y_blocked: usize,
    out: usize,
    logits: usize,
    act: usize,
    max_cols: usize,
    total: usize,
}

impl PrefillLayout {
    /// `logit_rows` is 1 (last token only) or `tokens`. Checked: `None` on
    /// overflow.
    fn new(c: &Mamba1Config, tokens: usize, logit_rows: usize) -> Option<Self> {
        let (dm, di, ds, dr, v) = c.layout_widths();
        let rows = |width: usize| tokens.checked_mul(width);
        // The residual stream of every token occupies [0, tokens * d_model).
        let normed = rows(dm)?;
        let xz = normed.checked_add(rows(dm)?)?;
        let conv_out = xz.checked_add(rows(2 * di)?)?;
        let x_dbl = conv_out.checked_add(rows(di)?)?;
        let dt_in = x_dbl.checked_add(rows(dr + 2 * ds)?)?;
        let dt = dt_in.checked_add(rows(dr)?)?;
        let y = dt.checked_add(rows(di)?)?;
        let y_blocked = y.checked_add(rows(di)?)?;
        let out = y_blocked.checked_add(rows(di)?)?;
        let logits = out.checked_add(rows(dm)?)?;
        let act = logits.checked_add(logit_rows.checked_mul(v)?)?;
        let max_cols = dm.max(di).max(dr);
        let total = act.checked_add(BatchActScratch::words(max_cols, tokens))?;
        Some(PrefillLayout {
            normed,
            xz,
            conv_out,
            x_dbl,
            dt_in,
            dt,
            y,
            y_blocked,
            out,
            logits,
            act,
            max_cols,
            total,
        })
    }
}

/// A loaded, validated Mamba-1 model.
#[derive(Clone, Copy, Debug)]
pub struct Mamba1<'a> {
    /// Hyper-parameters.
    pub config: Mamba1Config,
    file: EddyFile<'a>,
    per_layer: u32,
}

struct LayerWeights<'a> {
    norm: &'a [f32],
    in_proj: Linear<'a>,
    conv_w: &'a [f32],
    conv_b: Option<&'a [f32]>,
    x_proj: Linear<'a>,
    dt_proj: Linear<'a>,
    a: &'a [f32],
    d: &'a [f32],
    out_proj: Linear<'a>,
}

impl<'a> Mamba1<'a> {
    /// Bind a parsed file: check hyper-parameters, then every tensor's name,
    /// shape and format against the canonical schema.
    pub fn load(file: EddyFile<'a>) -> Result<Self, ModelError> {
        let model = Self::load_header(file)?;
        check_schema(&file, |visit| tensor_schema(&model.config, visit))?;
        Ok(model)
    }

    /// Bind a file's hyper-parameters only, its tensors unchecked: for
    /// sizes ([`crate::ModelSizes`]), never to run.
    pub(crate) fn load_header(file: EddyFile<'a>) -> Result<Self, ModelError> {
        let config = Mamba1Config::from_file(&file)?;
        config.state_words().ok_or(ModelError::SizeOverflow)?;
        let per_layer = layer_specs(&config, 0).iter().flatten().count() as u32;
        Ok(Mamba1 { config, file, per_layer })
    }

    fn embed(&self) -> Linear<'a> {
        TensorCursor::at(&self.file, 0).linear(false)
    }

    fn layer(&self, i: u32) -> LayerWeights<'a> {
        let c = &self.config;
        let mut t = TensorCursor::at(&self.file, 1 + i * self.per_layer);
        LayerWeights {
            norm: t.f32(),
            in_proj: t.linear(c.proj_bias),
            conv_w: t.f32(),
            conv_b: t.f32_if(c.conv_bias),
            x_proj: t.linear(false),
            dt_proj: t.linear(true),
            a: t.f32(),
            d: t.f32(),
            out_proj: t.linear(c.proj_bias),
        }
    }

    fn head(&self) -> (&'a [f32], Linear<'a>) {
        let mut t = TensorCursor::at(&self.file, 1 + self.config.n_layer * self.per_layer);
        let norm_f = t.f32();
        let head = if self.config.tied_embeddings { self.embed() } else { t.linear(false) };
        (norm_f, head)
    }

    /// The batched prefill of a chunk (see `prefill_chunk`), handing every
    /// product's inputs to `observe` when there is one.
    fn run_chunk<'s>(
        &self,
        chunk: Chunk<'_, '_, 's>,
        cx: Compute<'_>,
        observe: &mut Option<Observer<'_>>,
    ) -> &'s [f32] {
        let Chunk { tokens, state, scratch, logits: wanted } = chunk;
        let Compute { kernels, workers } = cx;
        let c = &self.config;
        let n = tokens.len();
        let (dm, di, ds, dc, dr, v) = (
            c.d_model as usize,
            c.d_inner as usize,
            c.d_state as usize,
            c.d_conv as usize,
            c.dt_rank as usize,
            c.vocab_size as usize,
        );
        let logit_rows = wanted.rows(n);
        let Some(l) = PrefillLayout::new(c, n, wanted.layout_rows(n)) else {
            return &[];
        };
        let starts = [0, l.normed, l.xz, l.conv_out, l.x_dbl, l.dt_in, l.dt, l.y, l.y_blocked, l.out, l.logits, l.act];
        let [residual, normed, xz, conv_out, x_dbl, dt_in, dt, y, y_blocked, out, logits, act_words] =
            split_at_starts(scratch, starts);
        let act = &mut BatchActScratch::from_words(act_words, l.max_cols, n);
        let logits = &mut logits[..logit_rows * v];

        for (&token, r) in tokens.iter().zip(residual.chunks_exact_mut(dm)) {
            self.embed().row(token as usize, r);
        }
        let xw = dr + 2 * ds;
        let conv_words = di * (dc - 1);
        let mut layers = state.layers();
        for i in 0..c.n_layer {
            let w = self.layer(i);
            let mut layer = layers.next(self.state_parts(i as usize));
            for (r, o) in residual.chunks_exact(dm).zip(normed.chunks_exact_mut(dm)) {
                rms_norm(r, w.norm, c.norm_eps, o);
            }
            observe_input(observe, &w.in_proj, normed);
            w.in_proj.matmat(normed, xz, n, act, kernels, workers);
            let conv_state = &mut layer.words()[..conv_words];
            let conv = ConvWeights { weight: w.conv_w, bias: w.conv_b, width: dc };
            let xs = TokenRows { data: xz, stride: 2 * di };
            conv_silu_chunk(&conv, xs, conv_state, y_blocked, conv_out, cx);
            observe_input(observe, &w.x_proj, conv_out);
            w.x_proj.matmat(conv_out, x_dbl, n, act, kernels, workers);
            for (xd, d) in x_dbl.chunks_exact(xw).zip(dt_in.chunks_exact_mut(dr)) {
                d.copy_from_slice(&xd[..dr]);
            }
            observe_input(observe, &w.dt_proj, dt_in);
            w.dt_proj.matmat(dt_in, dt, n, act, kernels, workers);
            if layer.codes_nothing() && workers.offload().is_none() {
                // f32 state, CPU scan: channel blocks over all the tokens.
                let chunk = ChunkScan { dt, u: conv_out, xz, x_dbl, dt_rank: dr, d_state: ds };
                scan_chunk_by_blocks(&w, &chunk, &mut layer.words()[conv_words..], y_blocked, y, cx);
            } else {
                for t in 0..n {
                    let xd = &x_dbl[t * xw..(t + 1) * xw];
                    let (b, cmat) = xd[dr..].split_at(ds);
                    let z = &xz[t * 2 * di + di..(t + 1) * 2 * di];
                    let u = &conv_out[t * di..(t + 1) * di];
                    let dtt = &dt[t * di..(t + 1) * di];
                    let ssm_state = &mut layer.words()[conv_words..];
                    scan_step(&w, ssm_state, dtt, u, b, cmat, z, &mut y[t * di..(t + 1) * di], ds, cx);
                    layer.end_token();
                }
            }
            observe_input(observe, &w.out_proj, y);
            w.out_proj.matmat(y, out, n, act, kernels, workers);
            add_assign(residual, out);
        }
        let (norm_f, head) = self.head();
        let first = n - logit_rows;
        for (r, o) in residual.chunks_exact(dm).skip(first).zip(normed.chunks_exact_mut(dm)) {
            rms_norm(r, norm_f, c.norm_eps, o);
        }
        if let Some(o) = observe {
            // Calibration wants the head's inputs, not the logits.
            o(head.weight.name, &normed[..logit_rows * dm]);
            return &[];
        }
        head.matmat(&normed[..logit_rows * dm], logits, logit_rows, act, kernels, workers);
        logits
    }
}

impl<'a> Family<'a> for Mamba1<'a> {
    fn vocab_size(&self) -> usize {
        self.config.vocab_size as usize
    }

    fn state_layers(&self) -> usize {
        self.config.n_layer as usize
    }

    /// The conv window (exact), then the SSM state `h[channel][state]`.
    fn state_parts(&self, _layer: usize) -> StateParts {
        let (di, dc) = (self.config.d_inner as usize, self.config.d_conv as usize);
        StateParts::new([
            StatePart::Exact(di * (dc - 1)),
            StatePart::Coded { rows: di, cols: self.config.d_state as usize },
        ])
    }

    fn scratch_words(&self) -> Option<usize> {
        self.config.scratch_words()
    }

    fn logits_offset_words(&self) -> usize {
        ScratchLayout::new(&self.config).logits
    }

    fn visit_schema(&self, visit: &mut dyn FnMut(TensorSpec)) {
        tensor_schema(&self.config, visit)
    }

    /// Every layer's scan: `d_inner` channels of `d_state` values.
    fn offload_scan_shape(&self) -> Option<crate::offload::ScanShape> {
        Some(crate::offload::ScanShape {
            channels: self.config.d_inner as usize,
            d_state: self.config.d_state as usize,
        })
    }

    /// f32 words of scratch [`prefill_chunk`](Self::prefill_chunk) needs
    /// for chunks of up to `tokens` tokens (`None` on overflow).
    fn prefill_scratch_words(&self, tokens: usize, all_logits: bool) -> Option<usize> {
        let logit_rows = if all_logits { tokens } else { 1 };
        PrefillLayout::new(&self.config, tokens, logit_rows).map(|l| l.total)
    }

    /// Advance the state by `tokens.len()` tokens at once: every linear
    /// layer multiplies all the chunk's tokens while its weights are in
    /// cache (see [`Linear::matmat`]); conv and scan run token by token.
    /// Returns the logits of every token (`all_logits`) or of the last one,
    /// row-major. Bit-identical to calling `step` per token. Buffers sized
    /// by `prefill_scratch_words` (checked by the session); tokens checked
    /// by the session.
    fn prefill_chunk<'s>(&self, chunk: Chunk<'_, '_, 's>, cx: Compute<'_>) -> &'s [f32] {
        self.run_chunk(chunk, cx, &mut None)
    }

    /// [`prefill_chunk`](Self::prefill_chunk) observing every product's
    /// inputs (the head's of every token, its logits not computed).
    #[cfg(feature = "alloc")]
    fn prefill_chunk_observed<'s>(
        &self,
        chunk: Chunk<'_, '_, 's>,
        cx: Compute<'_>,
        observe: Observer<'_>,
    ) -> &'s [f32] {
        self.run_chunk(chunk, cx, &mut Some(observe))
    }

    /// Advance the state by one token; if `want_logits`, leave the logits in
    /// the returned slice of `scratch`. Buffers are sized by the config
    /// (checked by the session); `token < vocab_size` (checked by the session).
    fn step<'s>(
        &self,
        token: u32,
        state: &mut StateStore<'_>,
        scratch: &'s mut [f32],
        want_logits: bool,
        cx: Compute<'_>,
        mut observe: Option<Observer<'_>>,
    ) -> &'s [f32] {
        let Compute { kernels, workers } = cx;
        let conv_silu = kernels.conv_silu;
        let c = &self.config;
        let l = ScratchLayout::new(c);
        let (di, ds, dc, dr) =
            (c.d_inner as usize, c.d_state as usize, c.d_conv as usize, c.dt_rank as usize);
        let starts = [0, l.normed, l.xz, l.conv_out, l.x_dbl, l.dt, l.y, l.out, l.logits, l.act];
        let [residual, normed, xz, conv_out, x_dbl, dt, y, out, logits, act_words] =
            split_at_starts(scratch, starts);
        let act = &mut ActScratch::from_words(act_words, l.max_cols);
        let logits = &mut logits[..c.vocab_size as usize];

        self.embed().row(token as usize, residual);
        let mut layers = state.layers();
        for i in 0..c.n_layer {
            let w = self.layer(i);
            let mut layer = layers.next(self.state_parts(i as usize));
            let (conv_state, ssm_state) = layer.words().split_at_mut(di * (dc - 1));
            rms_norm(residual, w.norm, c.norm_eps, normed);
            observe_input(&mut observe, &w.in_proj, normed);
            w.in_proj.matvec(normed, xz, act, kernels, workers);
            let (xs, z) = xz.split_at(di);
            conv_silu(&eddy_kernels::ConvWeights { weight: w.conv_w, bias: w.conv_b, width: dc }, conv_state, xs, conv_out);
            observe_input(&mut observe, &w.x_proj, conv_out);
            w.x_proj.matvec(conv_out, x_dbl, act, kernels, workers);
            let (dt_in, bc) = x_dbl.split_at(dr);
            let (b, cmat) = bc.split_at(ds);
            observe_input(&mut observe, &w.dt_proj, dt_in);
            w.dt_proj.matvec(dt_in, dt, act, kernels, workers);
            scan_step(&w, ssm_state, dt, conv_out, b, cmat, z, y, ds, cx);
            layer.end_token();
            observe_input(&mut observe, &w.out_proj, y);
            w.out_proj.matvec(y, out, act, kernels, workers);
            add_assign(residual, out);
        }
        if want_logits {
            let (norm_f, head) = self.head();
            rms_norm(residual, norm_f, c.norm_eps, normed);
            observe_input(&mut observe, &head, normed);
            head.matvec(normed, logits, act, kernels, workers);
        }
        logits
    }
}

/// A prefill chunk's scan inputs, token-major (`[tokens, width]`).
struct ChunkScan<'x> {
    /// Time steps before softplus, `[tokens, d_inner]`.
    dt: &'x [f32],
    /// Conv outputs, `[tokens, d_inner]`.
    u: &'x [f32],
    /// `in_proj` outputs, `[tokens, 2 d_inner]` (`z` is the second half).
    xz: &'x [f32],
    /// `x_proj` outputs, `[tokens, dt_rank + 2 d_state]` (`B`, `C` after dt).
    x_dbl: &'x [f32],
    /// Low-rank dt width.
    dt_rank: usize,
    /// State size per channel.
    d_state: usize,
}

/// The selective scan of a whole prefill chunk (f32 state, CPU): one
/// `selective_scan_tokens` call per block of [`BLOCK_CHANNELS`] channels
/// over every token, the blocks split across the workers once per layer
/// (not once per token; see [`by_channel_blocks`]); one worker scans every
/// channel in one call. That kernel equals one `selective_scan` call per
/// token and channels are independent, so results are bit-identical to
/// [`scan_step`]. `y_blocked` (`[tokens, d_inner]` words) stages the
/// blocks' outputs before they are copied to `y` (`[tokens, d_inner]`).
fn scan_chunk_by_blocks(
    w: &LayerWeights<'_>,
    chunk: &ChunkScan<'_>,
    ssm_state: &mut [f32],
    y_blocked: &mut [f32],
    y: &mut [f32],
    cx: Compute<'_>,
) {
    let ds = chunk.d_state;
    let di = w.d.len();
    let tokens = y.len() / di.max(1);
    let scan_tokens = cx.kernels.selective_scan_tokens;
    let xw = chunk.dt_rank + 2 * ds;
    // Channels `c0..c0 + wb` over every token, into `y_out` (`[tokens, wb]`).
    let scan_block = |c0: usize, wb: usize, state: &mut [f32], y_out: &mut [f32]| {
        let args = ScanTokens {
            a: &w.a[c0 * ds..(c0 + wb) * ds],
            d: &w.d[c0..c0 + wb],
            dt: TokenRows { data: &chunk.dt[c0..], stride: di },
            u: TokenRows { data: &chunk.u[c0..], stride: di },
            z: TokenRows { data: &chunk.xz[di + c0..], stride: 2 * di },
            b: TokenRows { data: &chunk.x_dbl[chunk.dt_rank..], stride: xw },
            c: TokenRows { data: &chunk.x_dbl[chunk.dt_rank + ds..], stride: xw },
            d_state: ds,
            tokens,
        };
        scan_tokens(&args, state, y_out);
    };
    by_channel_blocks(cx, (di, BLOCK_CHANNELS, ds), ssm_state, y_blocked, y, scan_block);
}

/// One token of the selective scan: `h = exp(A dt) h + dt B u`,
/// `y = (C h + D u) * silu(z)` per channel (on the offload device if it
/// has a scan unit, else with the kernel set's scan).
#[allow(clippy::too_many_arguments)]
fn scan_step(
    w: &LayerWeights<'_>,
    ssm_state: &mut [f32],
    dt: &[f32],
    u: &[f32],
    b: &[f32],
    cmat: &[f32],
    z: &[f32],
    y: &mut [f32],
    ds: usize,
    cx: Compute<'_>,
) {
    let args = crate::offload::ScanArgs { a: w.a, d: w.d, dt, u, b, c: cmat, z, d_state: ds };
    if crate::offload::try_scan(cx.workers, &args, ssm_state, y) {
        return;
    }
    let scan = cx.kernels.selective_scan;
    // Channels are independent, so splitting them across the workers
    // computes every one exactly as on one thread; whole blocks of eight
    // (the SIMD scans' width) avoid scalar tails in the middle.
    let per_worker = y.len().div_ceil(cx.workers.count()).div_ceil(8) * 8;
    cx.workers.for_chunk_pairs(y, per_worker, ssm_state, per_worker * ds, |i, y, state| {
        let (at, end) = (i * per_worker, i * per_worker + y.len());
        // Clamped like the reference, which stops at the shortest input.
        fn part(v: &[f32], lo: usize, hi: usize) -> &[f32] {
            &v[lo.min(v.len())..hi.min(v.len())]
        }
        let chunk = crate::offload::ScanArgs {
            a: part(args.a, at * ds, end * ds),
            d: part(args.d, at, end),
            dt: part(args.dt, at, end),
            u: part(args.u, at, end),
            z: part(args.z, at, end),
            ..args
        };
        scan(&chunk, state, y);
    });
}
