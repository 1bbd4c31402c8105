//! Calibration: quantize a model's matrices using statistics of real
//! activations.
//!
//! Two techniques, each switchable for the ablation table:
//! - **clip search**: per group, try shrinking the `[min, max]` range and keep
//!   the range with the smallest reconstruction error (plain min/max wastes
//!   codes on outliers);
//! - **activation-aware error**: weight each column's squared error by the
//!   mean square of the activations that multiply it on calibration text, so
//!   the search protects the weights that matter for the output.

use crate::convert::eddy_name;
use eddy::schema::TensorKind;
use eddy::{Model, Session, TensorFormat, TensorView};
use eddy_quant::QuantError;
use half::f16;
use std::collections::HashMap;

/// Statistics of the inputs of each linear layer on calibration text, by
/// the weight tensor's canonical name.
#[derive(Clone, Debug, Default)]
pub struct ActivationStats {
    /// Mean square of each input column.
    pub mean_sq: HashMap<String, Vec<f32>>,
    /// Mean of `x xᵀ` (row-major `cols x cols`), when requested (GPTQ).
    pub hessians: HashMap<String, Vec<f64>>,
}

impl ActivationStats {
    /// The statistics of `tokens` tokens from their sums: per layer, the
    /// column sums of `x²` and the upper triangles of `Σ x xᵀ` (made
    /// symmetric here), each divided by the token count.
    pub fn from_sums(
        sums: HashMap<String, Vec<f64>>,
        outer: HashMap<String, Vec<f64>>,
        tokens: usize,
    ) -> ActivationStats {
        let n = tokens.max(1) as f64;
        let mean_sq = sums
            .into_iter()
            .map(|(name, v)| (name, v.into_iter().map(|s| (s / n) as f32).collect()))
            .collect();
        let hessians = outer
            .into_iter()
            .map(|(name, mut h)| {
                let cols = (h.len() as f64).sqrt() as usize;
                for r in 0..cols {
                    for c in r..cols {
                        let v = h[r * cols + c] / n;
                        h[r * cols + c] = v;
                        h[c * cols + r] = v;
                    }
                }
                (name, h)
            })
            .collect();
        ActivationStats { mean_sq, hessians }
    }
}

/// Run the model over `tokens` and collect [`ActivationStats`];
/// `hessians` also accumulates `x xᵀ` for every layer (for GPTQ).
pub fn collect_activation_stats(
    model: &Model<'_>,
    tokens: &[u32],
    hessians: bool,
    progress: impl FnMut(usize),
) -> Result<ActivationStats, eddy::SessionError> {
    collect_activation_stats_for(model, tokens, None, &|_: &str| hessians, progress)
}

/// Tokens per batched prefill chunk of the calibration pass: larger than
/// generation's [`eddy::PREFILL_CHUNK`] so each worker's share of a chunk
/// reads every weight once for more tokens (the statistics do not depend
/// on it: every token's activations are the stepping path's).
pub const CALIB_CHUNK: usize = 256;

/// Run the model over `tokens` in batched prefill chunks and collect
/// [`ActivationStats`]: the mean squares of every linear layer's inputs, and
/// `E[x xᵀ]` only for the layers `wants_hessian` names (those GPTQ will
/// process: a `cols²` matrix each). With `context`, the tokens run as
/// separate sequences of that many tokens, the state reset before each
/// (as `llama-imatrix -c N` does: attention costs stay bounded, but the
/// statistics are not those of one long sequence); without it, as one
/// sequence. `progress` gets the tokens done.
///
/// Every statistic is summed token by token in f64, in token order, as a
/// token-by-token run would (products of two f32 are exact in f64), so the
/// figures are those of the stepping path bit for bit; the Hessian's rows
/// are split across threads.
pub fn collect_activation_stats_for(
    model: &Model<'_>,
    tokens: &[u32],
    context: Option<usize>,
    wants_hessian: &dyn Fn(&str) -> bool,
    progress: impl FnMut(usize),
) -> Result<ActivationStats, eddy::SessionError> {
    collect_activation_stats_paged(model, tokens, context, wants_hessian, &|_| {}, progress)
}

/// [`collect_activation_stats_for`] that also says, through `release(i)`,
/// when the weights of tensor `i` (in file order) will not be read again
/// soon: each layer's once a batched chunk has moved past it, every
/// tensor's after each chunk. A caller reading the model from a file map
/// drops those pages (see `MappedInput::release`), so the resident memory
/// is about one layer's weights instead of the whole model; the next chunk
/// reads them again from the page cache. The statistics are the same bits.
pub fn collect_activation_stats_paged(
    model: &Model<'_>,
    tokens: &[u32],
    context: Option<usize>,
    wants_hessian: &dyn Fn(&str) -> bool,
    release: &dyn Fn(usize),
    mut progress: impl FnMut(usize),
) -> Result<ActivationStats, eddy::SessionError> {
    let pages = LayerPages::new(model);
    let mut current_layer: Option<usize> = None;
    let cols: HashMap<String, usize> =
        model.file().tensors().map(|t| (t.name.to_string(), t.cols() as usize)).collect();
    let mut sums: HashMap<String, Vec<f64>> = HashMap::new();
    let mut outer: HashMap<String, Vec<f64>> = HashMap::new();
    let mut rows64: Vec<f64> = Vec::new();
    let mut observe = |name: &str, xs: &[f32]| {
        let n = cols.get(name).copied().filter(|&c| c > 0 && xs.len() % c == 0).unwrap_or(xs.len());
        if n == 0 {
            return;
        }
        // A batched chunk runs the layers in order, all its tokens at
        // once: a new layer means the previous one is done for this chunk.
        // Token by token (one row), the next token reads it again at once.
        let layer = layer_index(name);
        if xs.len() > n && layer != current_layer {
            pages.release_layer(current_layer, release);
        }
        current_layer = layer;
        let acc = sums.entry(name.to_string()).or_insert_with(|| vec![0.0; n]);
        for x in xs.chunks_exact(n) {
            for (a, v) in acc.iter_mut().zip(x) {
                *a += (*v as f64) * (*v as f64);
            }
        }
        if wants_hessian(name) {
            let h = outer.entry(name.to_string()).or_insert_with(|| vec![0.0; n * n]);
            rows64.clear();
            rows64.extend(xs.iter().map(|&v| v as f64));
            accumulate_outer(h, &rows64, n);
        }
    };
    let mut done = 0;
    for sequence in tokens.chunks(context.unwrap_or(tokens.len()).max(1)) {
        let mut session = Session::new_owned(model);
        session.prefill_observed(sequence, CALIB_CHUNK, &mut observe, |n| {
            pages.release_all(release);
            progress(done + n)
        })?;
        done += sequence.len();
    }
    Ok(ActivationStats::from_sums(sums, outer, tokens.len()))
}

/// The layer index of a tensor's canonical name (`layers.N.…`), `None`
/// for the embedding, head and final norm.
fn layer_index(name: &str) -> Option<usize> {
    name.strip_prefix("layers.")?.split('.').next()?.parse().ok()
}

/// Tensor indices (file order) by layer, for releasing a layer's pages.
struct LayerPages {
    by_layer: Vec<Vec<usize>>,
    tensors: usize,
}

impl LayerPages {
    fn new(model: &Model<'_>) -> Self {
        let mut by_layer: Vec<Vec<usize>> = Vec::new();
        let mut tensors = 0;
        for (i, t) in model.file().tensors().enumerate() {
            tensors = i + 1;
            if let Some(l) = layer_index(t.name) {
                if by_layer.len() <= l {
                    by_layer.resize(l + 1, Vec::new());
                }
                by_layer[l].push(i);
            }
        }
        LayerPages { by_layer, tensors }
    }

    fn release_layer(&self, layer: Option<usize>, release: &dyn Fn(usize)) {
        for &i in layer.and_then(|l| self.by_layer.get(l)).into_iter().flatten() {
            release(i);
        }
    }

    fn release_all(&self, release: &dyn Fn(usize)) {
        (0..self.tensors).for_each(release);
    }
}

/// Add `x xᵀ` of each row `x` of `xs` (rows of `n`, in order) to the upper
/// triangle of the `n x n` row-major `h`: each element's sum runs over the
/// rows in order (the same sums as one row at a time); the rows of `h` are
/// split across threads, in pieces of about equal triangle area.
fn accumulate_outer(h: &mut [f64], xs: &[f64], n: usize) {
    let pieces = crate::par::threads().min(n / 64).max(1);
    // Row r holds n - r elements: cut where the remaining area is shared out.
    let total = (n * (n + 1) / 2) as f64;
    let mut bounds = vec![0usize];
    let (mut r, mut area) = (0usize, 0f64);
    for p in 1..pieces {
        while r < n && area < total * p as f64 / pieces as f64 {
            area += (n - r) as f64;
            r += 1;
        }
        bounds.push(r);
    }
    bounds.push(n);
    let result: Result<(), ()> = crate::par::try_for_row_ranges(h, n, &bounds, |first, piece| {
        for (i, h_row) in piece.chunks_exact_mut(n).enumerate() {
            let r = first + i;
            let h_row = &mut h_row[r..];
            for x in xs.chunks_exact(n) {
                let xr = x[r];
                for (hv, &xc) in h_row.iter_mut().zip(&x[r..]) {
                    *hv += xr * xc;
                }
            }
        }
        Ok(())
    });
    debug_assert!(result.is_ok());
}

/// The matrices that need a Hessian under `recipe` with GPTQ: those the
/// recipe stores in an integer format. GPTQ processes all but a tied
/// embedding (also looked up row by row), whose Hessian gives the output
/// error in the report.
pub fn hessian_matrices(model: &Model<'_>, recipe: &crate::recipe::Recipe) -> Vec<String> {
    matrix_names(model)
        .into_iter()
        .filter(|name| recipe.format_for(name).is_some_and(|f| f.code_bits().is_some()))
        .collect()
}

/// Which calibration techniques to use.
#[derive(Clone, Copy, Debug)]
pub struct CalibrationOptions {
    /// Search per-group clip ranges (else plain min/max).
    pub clip_search: bool,
    /// Weight errors by activation statistics (else uniform).
    pub activation_aware: bool,
    /// GPTQ error compensation (needs Hessians in the statistics).
    pub gptq: bool,
}

/// Shrink factors tried for each end of a group's range.
const CLIP_GRID: [f32; 8] = [1.0, 0.95, 0.9, 0.85, 0.8, 0.7, 0.6, 0.5];

/// Error statistics of one quantized tensor.
#[derive(Clone, Copy, Debug, Default)]
pub struct TensorError {
    /// Mean squared weight error, unweighted.
    pub mse: f64,
    /// Mean squared weight error weighted by activation mean squares (0 when
    /// there are no statistics).
    pub weighted_mse: f64,
}

/// Choose one group's clip range: plain min/max, or the candidate of
/// [`CLIP_GRID`] (each end shrunk by one factor, `lo` outer, `hi` inner)
/// with the smallest importance-weighted squared error; the first of equal
/// errors wins.
pub fn search_range(
    format: TensorFormat,
    w: &[f32],
    importance: &[f32],
    clip_search: bool,
) -> Result<(f32, f32), QuantError> {
    let lo = w.iter().copied().fold(f32::INFINITY, f32::min);
    let hi = w.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let mut range = (lo, hi);
    if !clip_search {
        return Ok(range);
    }
    let bits = format.code_bits().ok_or(QuantError::NotInteger)?;
    if let Some(index) = w.iter().position(|v| !v.is_finite()) {
        return Err(QuantError::NonFinite { index });
    }
    let levels = ((1u32 << bits) - 1) as f32;
    let mut best = f64::INFINITY;
    for a in CLIP_GRID {
        let errors = clip_errors(w, importance, lo * a, hi, levels)?;
        for (b, e) in CLIP_GRID.into_iter().zip(errors) {
            if e < best {
                best = e;
                range = (lo * a, hi * b);
            }
        }
    }
    Ok(range)
}

/// The importance-weighted squared errors of quantizing `w` with the ranges
/// `(lo, hi * f)` for each `f` of [`CLIP_GRID`], all in one pass over `w`.
/// Each candidate's arithmetic and summation order are exactly those of
/// `quantize_row_with_ranges` then `dequantize_row` then a sequential f64
/// sum (what the search did before, a candidate at a time), so the same
/// range is chosen; the candidates sit in lanes, so the pass vectorizes.
fn clip_errors(
    w: &[f32],
    importance: &[f32],
    lo: f32,
    hi: f32,
    levels: f32,
) -> Result<[f64; CLIP_GRID.len()], QuantError> {
    let (mut scale, mut min, mut divisor, mut live) =
        ([0f32; N_CLIP], [0f32; N_CLIP], [1f32; N_CLIP], [0f32; N_CLIP]);
    for (k, f) in CLIP_GRID.into_iter().enumerate() {
        let (l, h) = (lo, hi * f);
        let (l, h) = if l <= h { (l, h) } else { (h, l) };
        if !(l.is_finite() && h.is_finite()) {
            return Err(QuantError::NonFinite { index: 0 });
        }
        let (s, m) = (f16::from_f32((h - l) / levels), f16::from_f32(l));
        if s.is_infinite() || m.is_infinite() {
            return Err(QuantError::OutOfRange { group: 0 });
        }
        (scale[k], min[k]) = (s.to_f32(), m.to_f32());
        // A zero scale codes everything as 0: any divisor, code times 0.
        if scale[k] > 0.0 {
            (divisor[k], live[k]) = (scale[k], 1.0);
        }
    }
    let lanes = ClipLanes { scale, min, divisor, live, levels };
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") {
        // SAFETY: the CPU has AVX2 (checked just above).
        return Ok(unsafe { clip_errors_avx2(&lanes, w, importance) });
    }
    Ok(clip_errors_lanes(&lanes, w, importance))
}

/// Candidates of [`CLIP_GRID`] scored together.
const N_CLIP: usize = CLIP_GRID.len();

/// Per-candidate constants of [`clip_errors`].
struct ClipLanes {
    scale: [f32; N_CLIP],
    min: [f32; N_CLIP],
    /// The scale, or 1 where it is 0.
    divisor: [f32; N_CLIP],
    /// 1 where the scale is positive, else 0 (the code is then 0).
    live: [f32; N_CLIP],
    levels: f32,
}

/// [`clip_errors_lanes`] compiled for AVX2 (the same IEEE operations, no
/// FMA: Rust never contracts, so the results are the same bits).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn clip_errors_avx2(lanes: &ClipLanes, w: &[f32], importance: &[f32]) -> [f64; N_CLIP] {
    clip_errors_lanes(lanes, w, importance)
}

/// The candidates' error sums: branch-free per lane so the lane loops
/// vectorize; per value the operations of the quantizer and dequantizer.
#[inline(always)]
fn clip_errors_lanes(lanes: &ClipLanes, w: &[f32], importance: &[f32]) -> [f64; N_CLIP] {
    let mut acc = [0f64; N_CLIP];
    for (&v, &i) in w.iter().zip(importance) {
        let mut y = [0f32; N_CLIP];
        for (k, yk) in y.iter_mut().enumerate() {
            // The quantizer rounds half away from zero, then clamps to
            // [0, levels]; clamping first gives the same code (up to the
            // sign of a zero code, which changes no error) and leaves a
            // non-negative value, rounded here branch-free: truncate, then
            // add one if the (exact) fraction is at least a half.
            let x = ((v - lanes.min[k]) / lanes.divisor[k]).max(0.0).min(lanes.levels);
            let t = (x as i32) as f32;
            let c = t + if x - t >= 0.5 { 1.0 } else { 0.0 };
            *yk = lanes.scale[k] * (c * lanes.live[k]) + lanes.min[k];
        }
        let i = i as f64;
        for (a, yk) in acc.iter_mut().zip(y) {
            let d = (v - yk) as f64;
            *a += i * (d * d);
        }
    }
    acc
}

/// Quantize a `[rows, cols]` f32 matrix to `format`, rows split across
/// threads.
pub fn quantize_matrix(
    format: TensorFormat,
    rows: usize,
    cols: usize,
    weights: &[f32],
    importance: Option<&[f32]>,
    opts: CalibrationOptions,
) -> Result<(Vec<u8>, TensorError), QuantError> {
    let row_bytes = format.byte_len(1, cols as u64).map_err(QuantError::Format)? as usize;
    let group = format.group_size().unwrap_or(cols).max(1);
    if weights.len() != rows * cols {
        return Err(QuantError::BadLength);
    }
    let imp: Vec<f32> = match (importance, opts.activation_aware) {
        (Some(i), true) if i.len() == cols => i.iter().map(|v| v.max(1e-12)).collect(),
        _ => vec![1.0; cols],
    };
    let mut out = vec![0u8; row_bytes * rows];
    crate::par::try_for_rows(&mut out, row_bytes, 16, |first, piece| {
        let mut ranges = vec![(0f32, 0f32); cols / group];
        for (i, dst) in piece.chunks_exact_mut(row_bytes.max(1)).enumerate() {
            let row = &weights[(first + i) * cols..(first + i + 1) * cols];
            for (g, range) in ranges.iter_mut().enumerate() {
                let w = &row[g * group..(g + 1) * group];
                let ig = &imp[g * group..(g + 1) * group];
                *range = search_range(format, w, ig, opts.clip_search)?;
            }
            eddy_quant::quantize_row_with_ranges(format, row, &ranges, dst)?;
        }
        Ok(())
    })?;
    let err = tensor_error(format, cols, weights, &out, importance.unwrap_or(&imp));
    Ok((out, err))
}

/// The [`TensorError`] of `data`, the quantized `weights` (rows of `cols`),
/// with each column's squared error weighted by `importance`. One
/// sequential sum over every weight, in order, so the figures do not depend
/// on how the quantization was split.
pub(crate) fn tensor_error(
    format: TensorFormat,
    cols: usize,
    weights: &[f32],
    data: &[u8],
    importance: &[f32],
) -> TensorError {
    let rows = weights.len() / cols.max(1);
    let row_bytes = data.len() / rows.max(1);
    let mut deq = vec![0f32; cols];
    let mut err = TensorError::default();
    for (row, bytes) in weights.chunks_exact(cols.max(1)).zip(data.chunks_exact(row_bytes.max(1))) {
        eddy_quant::dequantize_row(format, bytes, &mut deq);
        for ((x, y), i) in row.iter().zip(&deq).zip(importance) {
            let d2 = ((x - y) as f64).powi(2);
            err.mse += d2;
            err.weighted_mse += (*i as f64) * d2;
        }
    }
    let n = (rows * cols).max(1) as f64;
    err.mse /= n;
    err.weighted_mse /= n;
    err
}

/// Decode a float tensor to f32 values.
pub fn tensor_to_f32(t: &TensorView<'_>) -> Option<Vec<f32>> {
    match t.format {
        TensorFormat::F32 => t.as_f32().map(<[f32]>::to_vec),
        TensorFormat::F16 => t.as_f16_bits().map(|b| {
            let mut v = vec![0f32; b.len()];
            eddy_quant::f16_to_f32_slice(b, &mut v);
            v
        }),
        _ => None,
    }
}

/// Canonical names of the tensors a recipe may quantize (matrices).
pub fn matrix_names(model: &Model<'_>) -> Vec<String> {
    let mut names = Vec::new();
    model.visit_schema(|s| {
        if s.kind == TensorKind::Matrix {
            names.push(eddy_name(&s));
        }
    });
    names
}

/// Effective bits per weight of a model, including group scales.
#[derive(Clone, Copy, Debug)]
pub struct BitsSummary {
    /// Over every tensor.
    pub all: f64,
    /// Over all matrices (embedding and head included).
    pub matrices: f64,
    /// Over the per-layer linear layers only (in/x/dt/out projections).
    pub layer_linears: f64,
}

/// Compute [`BitsSummary`] from the tensors' stored sizes.
pub fn bits_summary(model: &Model<'_>) -> BitsSummary {
    let matrices = matrix_names(model);
    let (mut a, mut m, mut l) = ([0f64; 2], [0f64; 2], [0f64; 2]);
    for t in model.file().tensors() {
        let (bits, n) = (t.data.len() as f64 * 8.0, t.numel() as f64);
        a[0] += bits;
        a[1] += n;
        if matrices.iter().any(|x| x == t.name) {
            m[0] += bits;
            m[1] += n;
            if t.name.starts_with("layers.") {
                l[0] += bits;
                l[1] += n;
            }
        }
    }
    let ratio = |x: [f64; 2]| x[0] / x[1].max(1.0);
    BitsSummary { all: ratio(a), matrices: ratio(m), layer_linears: ratio(l) }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The search as it was: each candidate quantized, dequantized and
    /// scored on its own.
    fn search_one_at_a_time(format: TensorFormat, w: &[f32], importance: &[f32]) -> (f32, f32) {
        let lo = w.iter().copied().fold(f32::INFINITY, f32::min);
        let hi = w.iter().copied().fold(f32::NEG_INFINITY, f32::max);
        let mut bytes = vec![0u8; format.byte_len(1, w.len() as u64).unwrap() as usize];
        let mut deq = vec![0f32; w.len()];
        let (mut range, mut best) = ((lo, hi), f64::INFINITY);
        for a in CLIP_GRID {
            for b in CLIP_GRID {
                let cand = (lo * a, hi * b);
                eddy_quant::quantize_row_with_ranges(format, w, &[cand], &mut bytes).unwrap();
                eddy_quant::dequantize_row(format, &bytes, &mut deq);
                let e: f64 = w
                    .iter()
                    .zip(&deq)
                    .zip(importance)
                    .map(|((x, y), i)| (*i as f64) * ((x - y) as f64).powi(2))
                    .sum();
                if e < best {
                    best = e;
                    range = cand;
                }
            }
        }
        range
    }

    #[test]
    fn one_pass_clip_search_picks_the_same_range() {
        let mut seed = 7u64;
        let mut rand = || {
            seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            ((seed >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
        };
        for format in
            [TensorFormat::W2 { group: 32 }, TensorFormat::W4 { group: 64 }, TensorFormat::W8 { group: 32 }]
        {
            let group = format.group_size().unwrap();
            for case in 0..300 {
                let scale = [1.0, 1e-3, 40.0][case % 3];
                let mut w: Vec<f32> = (0..group).map(|_| rand() * scale).collect();
                match case % 5 {
                    // One-signed groups, an outlier, a constant group.
                    1 => w.iter_mut().for_each(|v| *v = v.abs()),
                    2 => w.iter_mut().for_each(|v| *v = -v.abs()),
                    3 => w[case % group] *= 20.0,
                    4 if case % 2 == 0 => w.iter_mut().for_each(|v| *v = 0.25),
                    _ => {}
                }
                let imp: Vec<f32> = (0..group).map(|_| rand().abs() + 1e-12).collect();
                let want = search_one_at_a_time(format, &w, &imp);
                let got = search_range(format, &w, &imp, true).unwrap();
                assert_eq!(
                    (got.0.to_bits(), got.1.to_bits()),
                    (want.0.to_bits(), want.1.to_bits()),
                    "{format:?} case {case}"
                );
            }
        }
    }

    #[test]
    fn matrix_quantization_does_not_depend_on_the_thread_count() {
        let (rows, cols) = (75, 128);
        let w: Vec<f32> =
            (0..rows * cols).map(|i| ((i * 7919 % 1000) as f32 / 500.0 - 1.0).powi(3)).collect();
        let imp: Vec<f32> = (0..cols).map(|i| 0.1 + (i % 13) as f32).collect();
        let opts = CalibrationOptions { clip_search: true, activation_aware: true, gptq: false };
        let f = TensorFormat::W2 { group: 64 };
        let mut results = Vec::new();
        for threads in [1, 3] {
            crate::par::set_threads(threads);
            let (bytes, err) = quantize_matrix(f, rows, cols, &w, Some(&imp), opts).unwrap();
            results.push((bytes, err.mse.to_bits(), err.weighted_mse.to_bits()));
        }
        crate::par::set_threads(0);
        assert!(results[0] == results[1]);
    }
}
