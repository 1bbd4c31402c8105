//! Random-weight models of any family's config, so anyone can benchmark
//! eddy without a checkpoint.
//!
//! A model is built through the converter's own plan for the config
//! (`convert::plan_config`: header, tensor list, layer-kinds blobs,
//! checkpoint layout and value transforms), then stored as `eddy
//! quantize` would store it with the chosen recipe (no calibration). It is
//! generated tensor by tensor, and large matrices row block by row block,
//! straight into the final file buffer: the f32 weights never exist at
//! full size, so the RAM needed is the quantized file plus one block.

use crate::calibrate::{quantize_matrix, CalibrationOptions};
use crate::convert::{plan_config, ConfigPlan, ConvertError, WeightDtype};
use crate::file_layout::{FileLayout, TensorEntry};
use crate::quantize::fit_group;
use crate::recipe::Recipe;
use eddy::file::AlignedBytes;
use eddy::mamba::Mamba1Config;
use eddy::schema::{TensorKind, TensorSpec};
use eddy::TensorFormat;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{json, Value};

/// Weights generated (and quantized) at once for a large matrix: 4 MiB of
/// f32, so memory does not grow with the model.
const BLOCK_VALUES: usize = 1 << 20;

/// How the matrices are stored.
#[derive(Clone, Debug)]
pub enum Storage {
    /// As `eddy convert --dtype` writes them.
    Converted(WeightDtype),
    /// As `eddy quantize --recipe` (without calibration) rewrites them.
    Recipe(Recipe),
}

/// Why a random model could not be built.
#[derive(Debug, thiserror::Error)]
pub enum RandomError {
    /// The converter rejected the config.
    #[error(transparent)]
    Convert(#[from] ConvertError),
    /// The file could not be laid out.
    #[error("{0}")]
    Write(#[from] eddy::writer::WriteError),
    /// A format cannot hold a tensor.
    #[error("tensor `{name}` cannot be stored as {format}: {reason}")]
    Unfit {
        /// Canonical name.
        name: String,
        /// Format name.
        format: String,
        /// Why not.
        reason: String,
    },
}

/// A built random model.
pub struct RandomModel {
    /// The `.eddy` file, 64-byte aligned for `Model::from_bytes`.
    pub bytes: AlignedBytes,
    /// Adjustments made to fit the recipe (as `eddy quantize` reports them).
    pub notes: Vec<String>,
}

/// Storage format of one tensor: the converter's, replaced for matrices by
/// the recipe's rule (fitted to the column count) as `eddy quantize` does.
fn tensor_format(spec: &TensorSpec, name: &str, storage: &Storage, notes: &mut Vec<String>) -> TensorFormat {
    let converted = |dtype| match (spec.kind, dtype) {
        (TensorKind::Matrix, WeightDtype::F16) => TensorFormat::F16,
        _ => TensorFormat::F32,
    };
    match storage {
        Storage::Converted(dtype) => converted(*dtype),
        Storage::Recipe(recipe) => match spec.kind {
            TensorKind::Matrix => match recipe.format_for(name) {
                Some(f) => fit_group(f, spec.cols, name, notes),
                None => converted(WeightDtype::F32),
            },
            TensorKind::F32 => converted(WeightDtype::F32),
        },
    }
}

/// Checkpoint values of a small parameter, scaled like a trained model's so
/// activations stay in a realistic range: Mamba's S4D-real `A_log`
/// (`A = -(1..=n)`), norms at one (biases zero), the rest uniform in
/// `±1/sqrt(last dimension)`.
fn parameter_values(hf_name: &str, hf_shape: &[usize], rng: &mut StdRng) -> Vec<f32> {
    let n: usize = hf_shape.iter().product();
    let last = hf_shape.last().copied().unwrap_or(1).max(1);
    let leaf = hf_name.rsplit('.').nth(1).unwrap_or("");
    let is_norm = leaf.contains("norm") || leaf.starts_with("ln");
    if hf_name.ends_with("A_log") {
        (0..n).map(|i| ((1 + i % last) as f32).ln()).collect()
    } else if is_norm && hf_name.ends_with("weight") {
        vec![1.0; n]
    } else if is_norm && hf_name.ends_with("bias") {
        vec![0.0; n]
    } else {
        let scale = 1.0 / (last as f32).sqrt();
        (0..n).map(|_| rng.gen_range(-scale..scale)).collect()
    }
}

/// Encode `rows x cols` f32 `values` as `format` into `out`.
fn encode(
    format: TensorFormat,
    rows: usize,
    cols: usize,
    values: &[f32],
    out: &mut [u8],
    name: &str,
) -> Result<(), RandomError> {
    match format {
        TensorFormat::F32 => {
            out.iter_mut().zip(values.iter().flat_map(|v| v.to_le_bytes())).for_each(|(o, b)| *o = b)
        }
        TensorFormat::F16 => out
            .iter_mut()
            .zip(values.iter().flat_map(|&v| eddy_quant::f32_to_f16_bits(v).to_le_bytes()))
            .for_each(|(o, b)| *o = b),
        _ => {
            let plain = CalibrationOptions { clip_search: false, activation_aware: false, gptq: false };
            let (bytes, _) =
                quantize_matrix(format, rows, cols, values, None, plain).map_err(|e| RandomError::Unfit {
                    name: name.to_string(),
                    format: format.name().to_string(),
                    reason: e.to_string(),
                })?;
            out.copy_from_slice(&bytes);
        }
    }
    Ok(())
}

/// The file header (hyper-parameters and blobs, no tensors) `eddy convert`
/// would write for `plan`: enough for [`eddy::ModelSizes`], which sizes a
/// model's state without its weights.
pub fn header_only(plan: &ConfigPlan) -> Result<AlignedBytes, RandomError> {
    let hparams: Vec<(u32, u32)> = plan.hparams().iter().map(|&(k, v)| (k.code(), v)).collect();
    let layout = FileLayout::new(plan.architecture(), &hparams, Vec::new(), plan.blobs().to_vec())?;
    let mut bytes = AlignedBytes::copy_from(&vec![0u8; layout.len()]);
    layout.write_tables(bytes.as_mut_slice());
    FileLayout::seal(bytes.as_mut_slice());
    Ok(bytes)
}

/// Build a random model of the converter's `plan`, stored as `storage`
/// says, from `seed`.
pub fn build(plan: &ConfigPlan, storage: &Storage, seed: u64) -> Result<RandomModel, RandomError> {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut notes = Vec::new();
    let entries: Vec<TensorEntry> = plan
        .specs()
        .iter()
        .map(|spec| {
            let name = plan.eddy_name(spec);
            let format = tensor_format(spec, &name, storage, &mut notes);
            let shape = if spec.rows == 1 {
                vec![spec.cols as u32]
            } else {
                vec![spec.rows as u32, spec.cols as u32]
            };
            TensorEntry { name, format, shape }
        })
        .collect();
    let hparams: Vec<(u32, u32)> = plan.hparams().iter().map(|&(k, v)| (k.code(), v)).collect();
    let layout = FileLayout::new(plan.architecture(), &hparams, entries, plan.blobs().to_vec())?;
    // The zeroed source is never written, so its pages are not resident.
    let mut bytes = AlignedBytes::copy_from(&vec![0u8; layout.len()]);
    let out = bytes.as_mut_slice();
    layout.write_tables(out);
    for (i, (spec, entry)) in plan.specs().iter().zip(layout.tensors()).enumerate() {
        let (rows, cols) = (spec.rows as usize, spec.cols as usize);
        let dst = &mut out[layout.tensor_range(i)];
        let row_bytes = dst.len() / rows.max(1);
        if spec.kind == TensorKind::Matrix {
            // Every family's matrix transform only permutes checkpoint
            // values, so i.i.d. values are drawn in eddy's layout directly,
            // a block of rows at a time.
            let scale = 1.0 / (cols as f32).sqrt();
            let block_rows = (BLOCK_VALUES / cols.max(1)).max(1);
            let mut values = vec![0f32; block_rows.min(rows) * cols];
            for r0 in (0..rows).step_by(block_rows) {
                let n = block_rows.min(rows - r0);
                let block = &mut values[..n * cols];
                block.iter_mut().for_each(|v| *v = rng.gen_range(-scale..scale));
                let dst_rows = &mut dst[r0 * row_bytes..(r0 + n) * row_bytes];
                encode(entry.format, n, cols, block, dst_rows, &entry.name)?;
            }
        } else {
            let hf = plan.hf_name(spec);
            let values = plan.transform(spec, parameter_values(&hf, &plan.hf_shape(spec), &mut rng));
            encode(entry.format, rows, cols, &values, dst, &entry.name)?;
        }
    }
    FileLayout::seal(out);
    Ok(RandomModel { bytes, notes })
}

/// The Hugging Face `config.json` of a Mamba-1 model of shape `c`.
pub fn mamba1_hf_config(c: &Mamba1Config) -> Value {
    json!({
        "architectures": ["MambaForCausalLM"], "model_type": "mamba",
        "vocab_size": c.vocab_size, "hidden_size": c.d_model, "num_hidden_layers": c.n_layer,
        "state_size": c.d_state, "conv_kernel": c.d_conv, "expand": c.d_inner.div_ceil(c.d_model),
        "intermediate_size": c.d_inner, "time_step_rank": c.dt_rank, "layer_norm_epsilon": c.norm_eps,
        "tie_word_embeddings": c.tied_embeddings, "use_bias": c.proj_bias, "use_conv_bias": c.conv_bias,
    })
}

/// Serialize a Mamba-1 model of shape `c` with random weights (stored as
/// `eddy convert --dtype` would), through [`build`].
pub fn random_mamba1(c: &Mamba1Config, dtype: WeightDtype, seed: u64) -> Result<Vec<u8>, RandomError> {
    let plan = plan_config(&mamba1_hf_config(c), &[])?;
    Ok(build(&plan, &Storage::Converted(dtype), seed)?.bytes.as_slice().to_vec())
}
