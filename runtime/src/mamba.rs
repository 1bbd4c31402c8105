//! Mamba-1 (selective state-space model), f32 reference path.
//!
//! Tensors are stored in the canonical order of [`tensor_schema`], so a
//! layer's weights are found by index arithmetic at run time: no allocation
//! and no string search per step. The loader checks every name and shape.

use crate::arch::HParam;
use crate::error::ModelError;
use crate::file::{EddyFile, TensorView};
use crate::linear::{ActScratch, BatchActScratch, Linear};
use crate::ops::{exp_fast, rms_norm, silu, softplus};
use crate::parallel::Workers;
use eddy_kernels::Kernels;
use eddy_quant::dot_f32;
use eddy_quant::TensorFormat;

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

/// Upper bound on any single dimension; keeps all size arithmetic far from
/// overflow and rejects absurd headers early.
const MAX_DIM: u32 = 1 << 24;

fn required(file: &EddyFile<'_>, key: HParam) -> Result<u32, ModelError> {
    file.hparam(key).ok_or(ModelError::MissingHParam(key.name()))
}

fn dim(file: &EddyFile<'_>, key: HParam, max: u32) -> Result<u32, ModelError> {
    let v = required(file, key)?;
    if v == 0 || v > max {
        return Err(ModelError::BadHParam { name: key.name(), value: v });
    }
    Ok(v)
}

fn flag(file: &EddyFile<'_>, key: HParam) -> Result<bool, ModelError> {
    match file.hparam(key).unwrap_or(0) {
        0 => Ok(false),
        1 => Ok(true),
        v => Err(ModelError::BadHParam { name: key.name(), value: v }),
    }
}

impl Mamba1Config {
    /// Read and check the hyper-parameters of a file.
    pub fn from_file(file: &EddyFile<'_>) -> Result<Self, ModelError> {
        let eps_bits = required(file, HParam::NormEps)?;
        let norm_eps = f32::from_bits(eps_bits);
        if !(norm_eps.is_finite() && norm_eps >= 0.0) {
            return Err(ModelError::BadHParam { name: HParam::NormEps.name(), value: eps_bits });
        }
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

    /// f32 words of recurrent state per layer: conv window + SSM state.
    fn layer_state_words(&self) -> usize {
        self.d_inner as usize * (self.d_conv as usize - 1 + self.d_state as usize)
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

    /// f32 words of scratch one step needs.
    pub fn scratch_words(&self) -> Option<usize> {
        let l = ScratchLayout::new(self);
        Some(l.total)
    }
}

/// A linear layer of Mamba-1, as seen by a calibration observer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum LinearSite {
    /// `layers.{i}.in_proj.weight`
    InProj,
    /// `layers.{i}.x_proj.weight`
    XProj,
    /// `layers.{i}.dt_proj.weight`
    DtProj,
    /// `layers.{i}.out_proj.weight`
    OutProj,
    /// `lm_head.weight`, or `embed.weight` when tied (layer 0).
    Head,
}

impl LinearSite {
    /// The canonical tensor name pattern of the site's weight.
    pub fn pattern(self, tied: bool) -> &'static str {
        match self {
            LinearSite::InProj => "layers.{i}.in_proj.weight",
            LinearSite::XProj => "layers.{i}.x_proj.weight",
            LinearSite::DtProj => "layers.{i}.dt_proj.weight",
            LinearSite::OutProj => "layers.{i}.out_proj.weight",
            LinearSite::Head if tied => "embed.weight",
            LinearSite::Head => "lm_head.weight",
        }
    }
}

/// Which storage a tensor in the schema may have.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TensorKind {
    /// A matrix used by a linear layer (any weight format).
    Matrix,
    /// A small parameter kept in f32 (norms, biases, conv, A, D).
    F32,
}

/// One entry of the canonical tensor list.
#[derive(Clone, Copy, Debug)]
pub struct TensorSpec {
    /// Canonical name; per-layer names contain `{i}`.
    pub pattern: &'static str,
    /// Layer index for per-layer tensors.
    pub layer: Option<u32>,
    /// Expected rows (1 for a vector).
    pub rows: u64,
    /// Expected columns.
    pub cols: u64,
    /// Allowed storage.
    pub kind: TensorKind,
}

const LAYER_SLOTS: usize = 12;

fn layer_specs(c: &Mamba1Config, i: u32) -> [Option<TensorSpec>; LAYER_SLOTS] {
    let (dm, di, ds, dc, dr) =
        (c.d_model as u64, c.d_inner as u64, c.d_state as u64, c.d_conv as u64, c.dt_rank as u64);
    let s = |pattern, rows, cols, kind| Some(TensorSpec { pattern, layer: Some(i), rows, cols, kind });
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
pub fn tensor_schema(c: &Mamba1Config, mut visit: impl FnMut(TensorSpec)) {
    use TensorKind::{Matrix, F32};
    let (v, dm) = (c.vocab_size as u64, c.d_model as u64);
    visit(TensorSpec { pattern: "embed.weight", layer: None, rows: v, cols: dm, kind: Matrix });
    for i in 0..c.n_layer {
        for spec in layer_specs(c, i).into_iter().flatten() {
            visit(spec);
        }
    }
    visit(TensorSpec { pattern: "norm_f.weight", layer: None, rows: 1, cols: dm, kind: F32 });
    if !c.tied_embeddings {
        visit(TensorSpec { pattern: "lm_head.weight", layer: None, rows: v, cols: dm, kind: Matrix });
    }
}

/// True if `name` is `pattern` with `{i}` replaced by `layer`.
pub fn name_matches(name: &str, pattern: &str, layer: Option<u32>) -> bool {
    match (layer, pattern.split_once("{i}")) {
        (Some(l), Some((head, tail))) => {
            let Some(rest) = name.strip_prefix(head) else {
                return false;
            };
            let digits = rest.bytes().take_while(|b| b.is_ascii_digit()).count();
            let (num, tail_found) = rest.split_at(digits);
            // Reject leading zeros so each layer has exactly one spelling.
            let canonical = num.len() == 1 || !num.starts_with('0');
            canonical && num.parse::<u32>() == Ok(l) && tail_found == tail
        }
        _ => name == pattern,
    }
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
        let (dm, di, ds, dr, v) = (
            c.d_model as usize,
            c.d_inner as usize,
            c.d_state as usize,
            c.dt_rank as usize,
            c.vocab_size as usize,
        );
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
        let (dm, di, ds, dr, v) = (
            c.d_model as usize,
            c.d_inner as usize,
            c.d_state as usize,
            c.dt_rank as usize,
            c.vocab_size as usize,
        );
        let rows = |width: usize| tokens.checked_mul(width);
        // The residual stream of every token occupies [0, tokens * d_model).
        let normed = rows(dm)?;
        let xz = normed.checked_add(rows(dm)?)?;
        let conv_out = xz.checked_add(rows(2 * di)?)?;
        let x_dbl = conv_out.checked_add(rows(di)?)?;
        let dt_in = x_dbl.checked_add(rows(dr + 2 * ds)?)?;
        let dt = dt_in.checked_add(rows(dr)?)?;
        let y = dt.checked_add(rows(di)?)?;
        let out = y.checked_add(rows(di)?)?;
        let logits = out.checked_add(rows(dm)?)?;
        let act = logits.checked_add(logit_rows.checked_mul(v)?)?;
        let max_cols = dm.max(di).max(dr);
        let total = act.checked_add(BatchActScratch::words(max_cols, tokens))?;
        Some(PrefillLayout { normed, xz, conv_out, x_dbl, dt_in, dt, y, out, logits, act, max_cols, total })
    }
}

/// A loaded, validated Mamba-1 model.
#[derive(Clone, Copy, Debug)]
pub struct Mamba1<'a> {
    /// Hyper-parameters.
    pub config: Mamba1Config,
    file: EddyFile<'a>,
    embed_weight: TensorView<'a>,
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

fn f32_data<'a>(t: Option<TensorView<'a>>) -> &'a [f32] {
    t.and_then(|t| t.as_f32()).unwrap_or(&[])
}

impl<'a> Mamba1<'a> {
    /// Offset of the logits in the scratch buffer, in f32 words.
    pub(crate) fn logits_offset_words(&self) -> usize {
        ScratchLayout::new(&self.config).logits
    }

    /// Bind a parsed file: check hyper-parameters, then every tensor's name,
    /// shape and format against the canonical schema.
    pub fn load(file: EddyFile<'a>) -> Result<Self, ModelError> {
        let config = Mamba1Config::from_file(&file)?;
        config.state_words().ok_or(ModelError::SizeOverflow)?;
        let mut index = 0u32;
        let mut result = Ok(());
        tensor_schema(&config, |spec| {
            if result.is_err() {
                return;
            }
            result = check_tensor(&file, index, &spec);
            index += 1;
        });
        result?;
        if index != file.tensor_count() {
            // Extra tensors after the schema: name the first one.
            return Err(ModelError::UnexpectedTensor { index });
        }
        let per_layer = layer_specs(&config, 0).iter().flatten().count() as u32;
        let embed_weight =
            file.tensor_at(0).ok_or(ModelError::MissingTensor { name: "embed.weight", layer: None })?;
        Ok(Mamba1 { config, file, embed_weight, per_layer })
    }

    fn linear(&self, index: u32, bias_index: Option<u32>) -> Linear<'a> {
        let bias = bias_index.map(|b| f32_data(self.file.tensor_at(b)));
        // `load` checked that this index holds a matrix of the right shape;
        // the fallback only keeps this function total.
        let weight = self.file.tensor_at(index).unwrap_or(self.embed_weight);
        Linear { weight, bias }
    }

    fn embed(&self) -> Linear<'a> {
        Linear { weight: self.embed_weight, bias: None }
    }

    fn layer(&self, i: u32) -> LayerWeights<'a> {
        let c = &self.config;
        let mut idx = 1 + i * self.per_layer;
        let mut next = || {
            let v = idx;
            idx += 1;
            v
        };
        let norm = next();
        let in_w = next();
        let in_b = c.proj_bias.then(&mut next);
        let conv_w = next();
        let conv_b = c.conv_bias.then(&mut next);
        let x_w = next();
        let dt_w = next();
        let dt_b = next();
        let a = next();
        let d = next();
        let out_w = next();
        let out_b = c.proj_bias.then(&mut next);
        let f = &self.file;
        LayerWeights {
            norm: f32_data(f.tensor_at(norm)),
            in_proj: self.linear(in_w, in_b),
            conv_w: f32_data(f.tensor_at(conv_w)),
            conv_b: conv_b.map(|b| f32_data(f.tensor_at(b))),
            x_proj: self.linear(x_w, None),
            dt_proj: self.linear(dt_w, Some(dt_b)),
            a: f32_data(f.tensor_at(a)),
            d: f32_data(f.tensor_at(d)),
            out_proj: self.linear(out_w, out_b),
        }
    }

    fn head(&self) -> (&'a [f32], Linear<'a>) {
        let base = 1 + self.config.n_layer * self.per_layer;
        let norm_f = f32_data(self.file.tensor_at(base));
        let head = if self.config.tied_embeddings { self.embed() } else { self.linear(base + 1, None) };
        (norm_f, head)
    }

    /// f32 words of scratch [`prefill_chunk`](Self::prefill_chunk) needs
    /// for chunks of up to `tokens` tokens (`None` on overflow).
    pub fn prefill_scratch_words(&self, tokens: usize, all_logits: bool) -> Option<usize> {
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
    pub(crate) fn prefill_chunk<'s>(
        &self,
        tokens: &[u32],
        state: &mut [f32],
        scratch: &'s mut [f32],
        all_logits: bool,
        kernels: &Kernels,
        workers: Workers,
    ) -> &'s [f32] {
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
        let logit_rows = if all_logits { n } else { 1 };
        let Some(l) = PrefillLayout::new(c, n, logit_rows) else {
            return &[];
        };
        let (head, tail) = scratch.split_at_mut(l.logits);
        let (logits, act_words) = tail.split_at_mut(l.act - l.logits);
        let act = &mut BatchActScratch::from_words(act_words, l.max_cols, n);
        let (residual, rest) = head.split_at_mut(l.normed);
        let (normed, rest) = rest.split_at_mut(l.xz - l.normed);
        let (xz, rest) = rest.split_at_mut(l.conv_out - l.xz);
        let (conv_out, rest) = rest.split_at_mut(l.x_dbl - l.conv_out);
        let (x_dbl, rest) = rest.split_at_mut(l.dt_in - l.x_dbl);
        let (dt_in, rest) = rest.split_at_mut(l.dt - l.dt_in);
        let (dt, rest) = rest.split_at_mut(l.y - l.dt);
        let (y, out) = rest.split_at_mut(l.out - l.y);
        let logits = &mut logits[..logit_rows * v];

        for (&token, r) in tokens.iter().zip(residual.chunks_exact_mut(dm)) {
            self.embed().row(token as usize, r);
        }
        let xw = dr + 2 * ds;
        for (i, layer_state) in state.chunks_exact_mut(c.layer_state_words()).enumerate() {
            let w = self.layer(i as u32);
            let (conv_state, ssm_state) = layer_state.split_at_mut(di * (dc - 1));
            for (r, o) in residual.chunks_exact(dm).zip(normed.chunks_exact_mut(dm)) {
                rms_norm(r, w.norm, c.norm_eps, o);
            }
            w.in_proj.matmat(normed, xz, n, act, kernels, workers);
            for (x, u) in xz.chunks_exact(2 * di).zip(conv_out.chunks_exact_mut(di)) {
                conv_step(&w, conv_state, &x[..di], u, dc);
            }
            w.x_proj.matmat(conv_out, x_dbl, n, act, kernels, workers);
            for (xd, d) in x_dbl.chunks_exact(xw).zip(dt_in.chunks_exact_mut(dr)) {
                d.copy_from_slice(&xd[..dr]);
            }
            w.dt_proj.matmat(dt_in, dt, n, act, kernels, workers);
            for t in 0..n {
                let xd = &x_dbl[t * xw..(t + 1) * xw];
                let (b, cmat) = xd[dr..].split_at(ds);
                let z = &xz[t * 2 * di + di..(t + 1) * 2 * di];
                let u = &conv_out[t * di..(t + 1) * di];
                let dtt = &dt[t * di..(t + 1) * di];
                scan_step(&w, ssm_state, dtt, u, b, cmat, z, &mut y[t * di..(t + 1) * di], ds);
            }
            w.out_proj.matmat(y, out, n, act, kernels, workers);
            for (r, o) in residual.iter_mut().zip(out.iter()) {
                *r += o;
            }
        }
        let (norm_f, head) = self.head();
        let first = n - logit_rows;
        for (r, o) in residual.chunks_exact(dm).skip(first).zip(normed.chunks_exact_mut(dm)) {
            rms_norm(r, norm_f, c.norm_eps, o);
        }
        head.matmat(&normed[..logit_rows * dm], logits, logit_rows, act, kernels, workers);
        logits
    }

    /// Advance the state by one token; if `want_logits`, leave the logits in
    /// the returned slice of `scratch`. Buffers are sized by the config
    /// (checked by the session); `token < vocab_size` (checked by the session).
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn step<'s>(
        &self,
        token: u32,
        state: &mut [f32],
        scratch: &'s mut [f32],
        want_logits: bool,
        kernels: &Kernels,
        workers: Workers,
        observe: &mut impl FnMut(LinearSite, u32, &[f32]),
    ) -> &'s [f32] {
        let c = &self.config;
        let l = ScratchLayout::new(c);
        let (di, ds, dc, dr) =
            (c.d_inner as usize, c.d_state as usize, c.d_conv as usize, c.dt_rank as usize);
        let (head, tail) = scratch.split_at_mut(l.logits);
        let (logits, act_words) = tail.split_at_mut(l.act - l.logits);
        let act = &mut ActScratch::from_words(act_words, l.max_cols);
        let (residual, rest) = head.split_at_mut(l.normed);
        let (normed, rest) = rest.split_at_mut(l.xz - l.normed);
        let (xz, rest) = rest.split_at_mut(l.conv_out - l.xz);
        let (conv_out, rest) = rest.split_at_mut(l.x_dbl - l.conv_out);
        let (x_dbl, rest) = rest.split_at_mut(l.dt - l.x_dbl);
        let (dt, rest) = rest.split_at_mut(l.y - l.dt);
        let (y, out) = rest.split_at_mut(l.out - l.y);
        let logits = &mut logits[..c.vocab_size as usize];

        self.embed().row(token as usize, residual);
        for (i, layer_state) in state.chunks_exact_mut(c.layer_state_words()).enumerate() {
            let w = self.layer(i as u32);
            let (conv_state, ssm_state) = layer_state.split_at_mut(di * (dc - 1));
            rms_norm(residual, w.norm, c.norm_eps, normed);
            let layer = i as u32;
            observe(LinearSite::InProj, layer, normed);
            w.in_proj.matvec(normed, xz, act, kernels, workers);
            let (xs, z) = xz.split_at(di);
            conv_step(&w, conv_state, xs, conv_out, dc);
            observe(LinearSite::XProj, layer, conv_out);
            w.x_proj.matvec(conv_out, x_dbl, act, kernels, workers);
            let (dt_in, bc) = x_dbl.split_at(dr);
            let (b, cmat) = bc.split_at(ds);
            observe(LinearSite::DtProj, layer, dt_in);
            w.dt_proj.matvec(dt_in, dt, act, kernels, workers);
            scan_step(&w, ssm_state, dt, conv_out, b, cmat, z, y, ds);
            observe(LinearSite::OutProj, layer, y);
            w.out_proj.matvec(y, out, act, kernels, workers);
            for (r, o) in residual.iter_mut().zip(out.iter()) {
                *r += o;
            }
        }
        if want_logits {
            let (norm_f, head) = self.head();
            rms_norm(residual, norm_f, c.norm_eps, normed);
            observe(LinearSite::Head, 0, normed);
            head.matvec(normed, logits, act, kernels, workers);
        }
        logits
    }
}

/// One token of the causal depthwise conv (window oldest first), then SiLU;
/// shifts `xs` into the window.
fn conv_step(w: &LayerWeights<'_>, conv_state: &mut [f32], xs: &[f32], conv_out: &mut [f32], dc: usize) {
    for (ch, out) in conv_out.iter_mut().enumerate() {
        let win = &mut conv_state[ch * (dc - 1)..(ch + 1) * (dc - 1)];
        let kw = &w.conv_w[ch * dc..(ch + 1) * dc];
        let mut acc = 0.0f32;
        for k in 0..dc - 1 {
            acc += kw[k] * win[k];
        }
        acc += kw[dc - 1] * xs[ch];
        if let Some(b) = w.conv_b {
            acc += b[ch];
        }
        *out = silu(acc);
        if dc > 1 {
            win.copy_within(1.., 0);
            win[dc - 2] = xs[ch];
        }
    }
}

/// One token of the selective scan: `h = exp(A dt) h + dt B u`,
/// `y = (C h + D u) * silu(z)` per channel.
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
) {
    for (ch, yc) in y.iter_mut().enumerate() {
        let delta = softplus(dt[ch]);
        let u = u[ch];
        let h = &mut ssm_state[ch * ds..(ch + 1) * ds];
        let a = &w.a[ch * ds..(ch + 1) * ds];
        // Independent per state element: vectorizes with `exp_fast`.
        for ((hs, &av), &bv) in h.iter_mut().zip(a).zip(b) {
            *hs = exp_fast(av * delta) * *hs + delta * bv * u;
        }
        *yc = (dot_f32(h, cmat) + u * w.d[ch]) * silu(z[ch]);
    }
}

fn check_tensor(file: &EddyFile<'_>, index: u32, spec: &TensorSpec) -> Result<(), ModelError> {
    let missing = ModelError::MissingTensor { name: spec.pattern, layer: spec.layer };
    let t = file.tensor_at(index).ok_or(missing)?;
    if !name_matches(t.name, spec.pattern, spec.layer) {
        // Distinguish "absent" from "present but out of canonical order".
        let present = file.tensors().any(|o| name_matches(o.name, spec.pattern, spec.layer));
        return Err(if present {
            ModelError::OutOfOrder { name: spec.pattern, layer: spec.layer, index }
        } else {
            missing
        });
    }
    let found = (t.rows(), t.cols());
    if found != (spec.rows, spec.cols) {
        return Err(ModelError::ShapeMismatch {
            name: spec.pattern,
            layer: spec.layer,
            expected: (spec.rows, spec.cols),
            found,
        });
    }
    let ok = match spec.kind {
        TensorKind::F32 => t.format == TensorFormat::F32,
        // Every storage format works for a matrix; the file reader already
        // checked that its group size divides the columns.
        TensorKind::Matrix => true,
    };
    if !ok {
        return Err(ModelError::UnsupportedFormat {
            name: spec.pattern,
            layer: spec.layer,
            format: t.format.name(),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::name_matches;

    #[test]
    fn layer_names_match_exactly() {
        let p = "layers.{i}.in_proj.weight";
        assert!(name_matches("layers.3.in_proj.weight", p, Some(3)));
        assert!(name_matches("layers.0.in_proj.weight", p, Some(0)));
        assert!(!name_matches("layers.03.in_proj.weight", p, Some(3)));
        assert!(!name_matches("layers.13.in_proj.weight", p, Some(3)));
        assert!(!name_matches("layers.3.in_proj.bias", p, Some(3)));
        assert!(name_matches("embed.weight", "embed.weight", None));
    }
}
