//! `eddy quantize`: rewrite a model's matrices in the formats a recipe picks.

use crate::calibrate::{matrix_names, quantize_matrix, tensor_to_f32, ActivationStats, CalibrationOptions};
use crate::file_writer::{StreamError, StreamingFile};
use crate::recipe::Recipe;
use eddy::writer::TensorData;
use eddy::{BlobKind, Model, TensorFormat};
use std::io::{Cursor, Seek, Write};

/// Why quantization failed.
#[derive(Debug, thiserror::Error)]
pub enum QuantizeError {
    /// The source tensor is already quantized.
    #[error(
        "tensor `{0}` is already quantized; quantize from an f32 or f16 model (the output of `eddy convert`)"
    )]
    AlreadyQuantized(String),
    /// The format cannot hold this tensor's shape.
    #[error("tensor `{name}` ({rows}x{cols}) cannot be stored as {format}: {reason}; override it with --set '{name}=f16'")]
    Unfit {
        /// Tensor name.
        name: String,
        /// Rows.
        rows: u64,
        /// Columns.
        cols: u64,
        /// Format name.
        format: String,
        /// Why not.
        reason: String,
    },
    /// Writing the new file failed.
    #[error("{0}")]
    Write(#[from] eddy::writer::WriteError),
    /// Writing the new file failed.
    #[error("{0}")]
    Stream(#[from] StreamError),
}

/// What happened to one tensor.
#[derive(Clone, Debug)]
pub struct TensorReport {
    /// Canonical name.
    pub name: String,
    /// Format written.
    pub format: TensorFormat,
    /// Number of weights.
    pub params: u64,
    /// Bytes written.
    pub bytes: u64,
    /// Mean squared weight error (0 for float formats).
    pub mse: f64,
    /// Activation-weighted mean squared error.
    pub weighted_mse: f64,
    /// Mean squared output error per row on calibration inputs,
    /// `tr(ΔW H ΔWᵀ) / rows` (when Hessians were collected and the matrix
    /// is within [`OUTPUT_MSE_MAX_MACS`]).
    pub output_mse: Option<f64>,
}

/// The outcome of quantizing a model.
#[derive(Clone, Debug)]
pub struct QuantizeReport {
    /// Recipe name.
    pub recipe: String,
    /// Per-tensor results, in file order.
    pub tensors: Vec<TensorReport>,
    /// Calibration tokens used (0: none).
    pub calib_tokens: usize,
    /// Options used.
    pub clip_search: bool,
    /// Options used.
    pub activation_aware: bool,
    /// Options used.
    pub gptq: bool,
    /// Adjustments made to fit the recipe to the shapes (shown to the user).
    pub notes: Vec<String>,
}

impl QuantizeReport {
    /// Bits per weight over the given tensors (all when `filter` is None).
    pub fn bits_per_weight(&self, matrices_only: bool, matrix_names: &[String]) -> f64 {
        let (mut bits, mut n) = (0f64, 0f64);
        for t in &self.tensors {
            if matrices_only && !matrix_names.contains(&t.name) {
                continue;
            }
            bits += t.bytes as f64 * 8.0;
            n += t.params as f64;
        }
        bits / n.max(1.0)
    }

    /// The report as JSON (stored in the file as a blob).
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "recipe": self.recipe,
            "calib_tokens": self.calib_tokens,
            "clip_search": self.clip_search,
            "activation_aware": self.activation_aware,
            "gptq": self.gptq,
            "notes": self.notes,
            "tensors": self.tensors.iter().map(|t| serde_json::json!({
                "name": t.name, "format": t.format.name(), "params": t.params,
                "bytes": t.bytes, "mse": t.mse, "weighted_mse": t.weighted_mse, "output_mse": t.output_mse,
            })).collect::<Vec<_>>(),
        })
    }
}

/// Largest `rows x cols²` (multiply-adds) for which the report's output
/// error is computed: it is a serial f64 sum (kept in one order so reports
/// stay byte-identical), ~1 s at this size, and at real sizes (a 65536 x
/// 1024 embedding: 6.9e10) it took longer than the whole quantization.
pub const OUTPUT_MSE_MAX_MACS: u64 = 1 << 30;

/// `tr(ΔW H ΔWᵀ) / rows` for the quantized `data` of f32 `weights`.
pub(crate) fn output_mse(
    format: TensorFormat,
    rows: usize,
    cols: usize,
    weights: &[f32],
    data: &[u8],
    h: &[f64],
) -> f64 {
    let row_bytes = data.len() / rows.max(1);
    let mut deq = vec![0f32; cols];
    let mut delta = vec![0f64; cols];
    let mut total = 0f64;
    for r in 0..rows {
        eddy_quant::dequantize_row(format, &data[r * row_bytes..(r + 1) * row_bytes], &mut deq);
        for c in 0..cols {
            delta[c] = (weights[r * cols + c] - deq[c]) as f64;
        }
        for a in 0..cols {
            let hd: f64 = h[a * cols..(a + 1) * cols].iter().zip(&delta).map(|(x, y)| x * y).sum();
            total += delta[a] * hd;
        }
    }
    total / rows.max(1) as f64
}

/// If `cols` is not a multiple of the format's group size, use the largest
/// smaller group size that divides it; if none does, keep the tensor f16.
pub(crate) fn fit_group(
    format: TensorFormat,
    cols: u64,
    name: &str,
    notes: &mut Vec<String>,
) -> TensorFormat {
    let Some(group) = format.group_size() else { return format };
    if cols % group as u64 == 0 {
        return format;
    }
    let smaller = eddy_quant::GROUP_SIZES
        .iter()
        .rev()
        .filter(|&&g| (g as usize) < group && cols % g as u64 == 0)
        .find_map(|&g| TensorFormat::from_code(format.code(), g).ok());
    let chosen = smaller.unwrap_or(TensorFormat::F16);
    notes.push(format!(
        "{name}: {cols} columns do not divide into groups of {group}; stored as {} instead of {}",
        chosen.name(),
        format.name()
    ));
    chosen
}

/// Quantize `model` by `recipe` into memory ([`quantize_model_into`]
/// streams to a file instead).
pub fn quantize_model(
    model: &Model<'_>,
    recipe: &Recipe,
    stats: Option<&ActivationStats>,
    calib_tokens: usize,
    opts: CalibrationOptions,
    progress: impl FnMut(usize, usize),
) -> Result<(Vec<u8>, QuantizeReport), QuantizeError> {
    let out = Cursor::new(Vec::new());
    let (out, report) = quantize_model_into(model, recipe, stats, calib_tokens, opts, progress, |_| {}, out)?;
    Ok((out.into_inner(), report))
}

/// Quantize `model` by `recipe`, writing the new file to `out` tensor by
/// tensor (only the tensor at hand is held in memory). `stats` come from
/// [`crate::calibrate::collect_activation_stats`]; `progress` gets
/// `(tensors done, total)` after each tensor is written; `input_read(i)`
/// is called once for each tensor `i`, as soon as its input has been
/// copied and is not read again (the caller may release its pages; a
/// float tensor's go before it is quantized, so a mapped input and its f32
/// copy are never resident together).
// The two callbacks are separate hooks of the stream (progress after a
// write, release after a read); bundling them would only rename them.
#[allow(clippy::too_many_arguments)]
pub fn quantize_model_into<W: Write + Seek>(
    model: &Model<'_>,
    recipe: &Recipe,
    stats: Option<&ActivationStats>,
    calib_tokens: usize,
    opts: CalibrationOptions,
    mut progress: impl FnMut(usize, usize),
    mut input_read: impl FnMut(usize),
    out: W,
) -> Result<(W, QuantizeReport), QuantizeError> {
    let file = model.file();
    let matrices = matrix_names(model);
    let tied = model.file().hparam(eddy::HParam::TiedEmbeddings) == Some(1);
    // Every blob of the input but an old report is kept, and the new
    // report goes last: the writer needs their number up front.
    let kept_blobs: Vec<u32> = (0..file.blob_count())
        .filter(|&i| file.blob_at(i).is_some_and(|(kind, _)| kind != BlobKind::QuantReport))
        .collect();
    let names = file.tensors().map(|t| t.name.to_string()).collect();
    let hparams: Vec<(u32, u32)> = file.hparams().collect();
    let mut b = StreamingFile::new(out, model.architecture(), &hparams, names, kept_blobs.len() + 1)?;
    let mut report = QuantizeReport {
        recipe: recipe.name.clone(),
        tensors: Vec::new(),
        calib_tokens,
        clip_search: opts.clip_search,
        activation_aware: opts.activation_aware,
        gptq: opts.gptq,
        notes: Vec::new(),
    };
    let total = file.tensor_count() as usize;
    // The last GPTQ Hessian and its factor (`None`: not positive definite).
    let mut shared_factor: Option<(&[f64], Option<Vec<f64>>)> = None;
    for (i, t) in file.tensors().enumerate() {
        let shape: Vec<u32> = t.shape().to_vec();
        let (rows, cols) = (t.rows(), t.cols());
        let target = if matrices.iter().any(|m| m == t.name) { recipe.format_for(t.name) } else { None };
        let target = target.map(|f| fit_group(f, cols, t.name, &mut report.notes));
        let values = tensor_to_f32(&t);
        if values.is_some() {
            input_read(i);
        }
        let hessian = stats.and_then(|s| s.hessians.get(t.name));
        let (data, format, mse, wmse) = match (target, values.as_ref()) {
            (None, _) => (t.data.to_vec(), t.format, 0.0, 0.0),
            (Some(_), None) => return Err(QuantizeError::AlreadyQuantized(t.name.to_string())),
            (Some(TensorFormat::F32), Some(v)) => {
                (TensorData::f32("", &shape, v).data, TensorFormat::F32, 0.0, 0.0)
            }
            (Some(TensorFormat::F16), Some(v)) => {
                (TensorData::f16("", &shape, v).data, TensorFormat::F16, 0.0, 0.0)
            }
            (Some(fmt), Some(v)) => {
                let unfit = |reason: String| QuantizeError::Unfit {
                    name: t.name.to_string(),
                    rows,
                    cols,
                    format: fmt.name().to_string(),
                    reason,
                };
                fmt.byte_len(rows, cols).map_err(|e| unfit(e.to_string()))?;
                let imp = stats.and_then(|s| s.mean_sq.get(t.name)).map(Vec::as_slice);
                let (r, c) = (rows as usize, cols as usize);
                // A tied embedding is also looked up row by row; GPTQ would
                // trade lookup accuracy for head accuracy, so it is skipped.
                let gptq_hessian = hessian.filter(|_| opts.gptq && !(tied && t.name == "embed.weight"));
                let gptq = match gptq_hessian {
                    Some(h) => {
                        // Matrices with the same input (gate and up; q, k
                        // and v) follow each other with equal Hessians: the
                        // O(cols³) factor is computed once for them.
                        let reuse = shared_factor.as_ref().is_some_and(|(prev, _)| *prev == h.as_slice());
                        if !reuse {
                            drop(shared_factor.take()); // freed before the next one is built
                            shared_factor = Some((h.as_slice(), crate::gptq::inverse_hessian_factor(h, c)));
                        }
                        let factor = shared_factor.as_ref().and_then(|(_, u)| u.as_deref());
                        crate::gptq::gptq_quantize_factored(fmt, r, c, v, h, factor, opts.clip_search)
                            .map_err(|e| unfit(e.to_string()))?
                    }
                    None => None,
                };
                let (bytes, err) = match gptq {
                    Some(done) => done,
                    None => quantize_matrix(fmt, r, c, v, imp, opts).map_err(|e| unfit(e.to_string()))?,
                };
                (bytes, fmt, err.mse, err.weighted_mse)
            }
        };
        if values.is_none() {
            // Copied as they were (`data`): their input is no longer read either.
            input_read(i);
        }
        let output_mse_macs = rows.saturating_mul(cols).saturating_mul(cols);
        let output_mse = match (values.as_ref(), hessian, format.group_size()) {
            (Some(_), Some(_), Some(_)) if output_mse_macs > OUTPUT_MSE_MAX_MACS => {
                report.notes.push(format!(
                    "{}: output error not computed ({rows}x{cols}: {:.1e} multiply-adds)",
                    t.name, output_mse_macs as f64
                ));
                None
            }
            (Some(v), Some(h), Some(_)) => {
                Some(output_mse(format, rows as usize, cols as usize, v, &data, h))
            }
            _ => None,
        };
        report.tensors.push(TensorReport {
            name: t.name.to_string(),
            format,
            params: t.numel(),
            bytes: data.len() as u64,
            mse,
            weighted_mse: wmse,
            output_mse,
        });
        b.tensor(&TensorData { name: t.name.to_string(), format, shape, data })?;
        progress(i + 1, total);
    }
    for i in kept_blobs {
        if let Some((kind, bytes)) = file.blob_at(i) {
            b.blob(kind, bytes.to_vec())?;
        }
    }
    b.blob(BlobKind::QuantReport, report.to_json().to_string().into_bytes())?;
    let (out, _) = b.finish()?;
    Ok((out, report))
}
