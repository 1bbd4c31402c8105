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

/// Run the model over `tokens` and collect [`ActivationStats`];
/// `hessians` also accumulates `x xᵀ` per layer (for GPTQ).
pub fn collect_activation_stats(
    model: &Model<'_>,
    tokens: &[u32],
    hessians: bool,
    mut progress: impl FnMut(usize),
) -> Result<ActivationStats, eddy::SessionError> {
    let mut sums: HashMap<String, Vec<f64>> = HashMap::new();
    let mut outer: HashMap<String, Vec<f64>> = HashMap::new();
    let mut session = Session::new_owned(model);
    for (i, &t) in tokens.iter().enumerate() {
        session.step_observed(t, &mut |name, x| {
            if !sums.contains_key(name) {
                sums.insert(name.to_string(), vec![0.0; x.len()]);
            }
            let Some(acc) = sums.get_mut(name) else { return };
            for (a, v) in acc.iter_mut().zip(x) {
                *a += (*v as f64) * (*v as f64);
            }
            if hessians {
                let n = x.len();
                if !outer.contains_key(name) {
                    outer.insert(name.to_string(), vec![0.0; n * n]);
                }
                let Some(h) = outer.get_mut(name) else { return };
                // Upper triangle only; mirrored below.
                for (r, &xr) in x.iter().enumerate() {
                    let xr = xr as f64;
                    for (hv, &xc) in h[r * n + r..(r + 1) * n].iter_mut().zip(&x[r..]) {
                        *hv += xr * xc as f64;
                    }
                }
            }
        })?;
        if i % 64 == 63 {
            progress(i + 1);
        }
    }
    let n = tokens.len().max(1) as f64;
    let mean_sq =
        sums.into_iter().map(|(name, v)| (name, v.into_iter().map(|s| (s / n) as f32).collect())).collect();
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
    Ok(ActivationStats { mean_sq, hessians })
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
/// [`CLIP_GRID`] with the smallest importance-weighted squared error.
pub fn search_range(
    format: TensorFormat,
    w: &[f32],
    importance: &[f32],
    clip_search: bool,
    trial_bytes: &mut [u8],
    trial_deq: &mut [f32],
) -> Result<(f32, f32), eddy_quant::QuantError> {
    let lo = w.iter().copied().fold(f32::INFINITY, f32::min);
    let hi = w.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let mut range = (lo, hi);
    if !clip_search {
        return Ok(range);
    }
    let mut best = f64::INFINITY;
    for a in CLIP_GRID {
        for b in CLIP_GRID {
            let cand = (lo * a, hi * b);
            eddy_quant::quantize_row_with_ranges(format, w, &[cand], trial_bytes)?;
            eddy_quant::dequantize_row(format, trial_bytes, trial_deq);
            let e: f64 = w
                .iter()
                .zip(trial_deq.iter())
                .zip(importance)
                .map(|((x, y), i)| (*i as f64) * ((x - y) as f64).powi(2))
                .sum();
            if e < best {
                best = e;
                range = cand;
            }
        }
    }
    Ok(range)
}

/// Quantize a `[rows, cols]` f32 matrix to `format`.
pub fn quantize_matrix(
    format: TensorFormat,
    rows: usize,
    cols: usize,
    weights: &[f32],
    importance: Option<&[f32]>,
    opts: CalibrationOptions,
) -> Result<(Vec<u8>, TensorError), eddy_quant::QuantError> {
    let row_bytes = format.byte_len(1, cols as u64).map_err(eddy_quant::QuantError::Format)? as usize;
    let group = format.group_size().unwrap_or(cols);
    let imp: Vec<f32> = match (importance, opts.activation_aware) {
        (Some(i), true) if i.len() == cols => i.iter().map(|v| v.max(1e-12)).collect(),
        _ => vec![1.0; cols],
    };
    let mut out = vec![0u8; row_bytes * rows];
    let mut deq = vec![0f32; cols];
    let mut ranges = vec![(0f32, 0f32); cols / group];
    let mut trial_bytes = vec![0u8; format.byte_len(1, group as u64).unwrap_or(0) as usize];
    let mut trial_deq = vec![0f32; group];
    let mut err = TensorError::default();
    for (r, row) in weights.chunks_exact(cols).enumerate() {
        for (g, range) in ranges.iter_mut().enumerate() {
            let w = &row[g * group..(g + 1) * group];
            let ig = &imp[g * group..(g + 1) * group];
            *range = search_range(format, w, ig, opts.clip_search, &mut trial_bytes, &mut trial_deq)?;
        }
        let dst = &mut out[r * row_bytes..(r + 1) * row_bytes];
        eddy_quant::quantize_row_with_ranges(format, row, &ranges, dst)?;
        eddy_quant::dequantize_row(format, dst, &mut deq);
        for ((x, y), i) in row.iter().zip(&deq).zip(importance.unwrap_or(&imp)) {
            let d2 = ((x - y) as f64).powi(2);
            err.mse += d2;
            err.weighted_mse += (*i as f64) * d2;
        }
    }
    let n = (rows * cols).max(1) as f64;
    err.mse /= n;
    err.weighted_mse /= n;
    Ok((out, err))
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
