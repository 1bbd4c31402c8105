//! Convert a Hugging Face checkpoint directory into a `.eddy` file.
//!
//! Reads `config.json`, the `*.safetensors` weights (single file or sharded
//! with `model.safetensors.index.json`; f32, f16 or bf16) and
//! `tokenizer.json`, maps tensor names to eddy's canonical schema and checks
//! every shape before anything is written.

use eddy::arch::{Architecture, HParam};
use eddy::mamba::{tensor_schema, Mamba1Config};
use eddy::schema::{TensorKind, TensorSpec};
use eddy::writer::{FileBuilder, TensorData};
use eddy::BlobKind;
use safetensors::{Dtype, SafeTensors};
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Storage chosen for the large matrices (small parameters stay f32).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WeightDtype {
    /// Keep f32.
    F32,
    /// Round to f16.
    F16,
}

/// Why a conversion failed. Every message names the file, key or tensor.
#[derive(Debug, thiserror::Error)]
pub enum ConvertError {
    /// A file could not be read.
    #[error("cannot read {path}: {source}")]
    Io {
        /// The path.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// `config.json` is not valid JSON.
    #[error("{path}: invalid JSON: {source}")]
    Json {
        /// The path.
        path: PathBuf,
        /// The cause.
        source: serde_json::Error,
    },
    /// A safetensors file is malformed.
    #[error("{path}: invalid safetensors file: {message}")]
    SafeTensors {
        /// The path.
        path: PathBuf,
        /// What the safetensors reader said.
        message: String,
    },
    /// The architecture is not supported.
    #[error("unsupported architecture {found:?} in config.json; supported: MambaForCausalLM (model_type \"mamba\")")]
    UnsupportedArchitecture {
        /// What config.json says.
        found: String,
    },
    /// A config key is missing or has the wrong type.
    #[error("config.json: key `{key}` is missing or not {expected}")]
    ConfigKey {
        /// The key.
        key: &'static str,
        /// What was expected.
        expected: &'static str,
    },
    /// A config value is out of range.
    #[error("config.json: `{key}` = {value} is not usable: {why}")]
    ConfigValue {
        /// The key.
        key: &'static str,
        /// The value.
        value: String,
        /// Why not.
        why: &'static str,
    },
    /// No weights were found.
    #[error("no *.safetensors files in {0}")]
    NoWeights(PathBuf),
    /// A required tensor is missing.
    #[error("tensor `{hf_name}` (eddy `{eddy_name}`) is missing from the checkpoint")]
    MissingTensor {
        /// Hugging Face name.
        hf_name: String,
        /// eddy canonical name.
        eddy_name: String,
    },
    /// A tensor has the wrong shape.
    #[error("tensor `{hf_name}` has shape {found:?}, expected {expected:?}")]
    ShapeMismatch {
        /// Hugging Face name.
        hf_name: String,
        /// Expected shape.
        expected: Vec<usize>,
        /// Found shape.
        found: Vec<usize>,
    },
    /// A tensor's dtype is not supported.
    #[error("tensor `{hf_name}` has dtype {dtype}; supported: F32, F16, BF16")]
    UnsupportedDtype {
        /// Hugging Face name.
        hf_name: String,
        /// Its dtype.
        dtype: String,
    },
    /// A tensor contains NaN or infinity.
    #[error("tensor `{hf_name}` contains NaN or infinite values")]
    NonFinite {
        /// Hugging Face name.
        hf_name: String,
    },
    /// The tensor table could not be built.
    #[error("{0}")]
    Write(#[from] eddy::writer::WriteError),
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> ConvertError + '_ {
    move |source| ConvertError::Io { path: path.to_path_buf(), source }
}

/// What `convert` produced, for the caller to report.
#[derive(Debug)]
pub struct Converted {
    /// The serialized `.eddy` file.
    pub bytes: Vec<u8>,
    /// The model's hyper-parameters.
    pub config: Mamba1Config,
    /// Whether a tokenizer was embedded.
    pub has_tokenizer: bool,
    /// Checkpoint tensors that were not used (e.g. a tied `lm_head`).
    pub ignored: Vec<String>,
}

fn get_u32(cfg: &Value, key: &'static str) -> Result<u32, ConvertError> {
    cfg.get(key)
        .and_then(Value::as_u64)
        .and_then(|v| u32::try_from(v).ok())
        .ok_or(ConvertError::ConfigKey { key, expected: "an unsigned integer" })
}

fn get_bool(cfg: &Value, key: &'static str, default: bool) -> Result<bool, ConvertError> {
    match cfg.get(key) {
        None | Some(Value::Null) => Ok(default),
        Some(v) => v.as_bool().ok_or(ConvertError::ConfigKey { key, expected: "a boolean" }),
    }
}

fn token_id(cfg: &Value, key: &str) -> u32 {
    cfg.get(key).and_then(Value::as_u64).and_then(|v| u32::try_from(v).ok()).unwrap_or(u32::MAX)
}

/// Read Mamba-1 hyper-parameters from a `config.json` value.
pub fn mamba1_config(cfg: &Value) -> Result<Mamba1Config, ConvertError> {
    let archs: Vec<&str> = cfg
        .get("architectures")
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let model_type = cfg.get("model_type").and_then(Value::as_str).unwrap_or("");
    if !(archs.contains(&"MambaForCausalLM") || (archs.is_empty() && model_type == "mamba")) {
        let found = if archs.is_empty() { model_type.to_string() } else { archs.join(",") };
        return Err(ConvertError::UnsupportedArchitecture { found });
    }
    let d_model = get_u32(cfg, "hidden_size")?;
    let expand = get_u32(cfg, "expand")?;
    let d_inner = match cfg.get("intermediate_size") {
        Some(_) => get_u32(cfg, "intermediate_size")?,
        None => d_model.checked_mul(expand).ok_or(ConvertError::ConfigValue {
            key: "expand",
            value: expand.to_string(),
            why: "expand * hidden_size overflows",
        })?,
    };
    let dt_rank = match cfg.get("time_step_rank") {
        Some(Value::String(s)) if s == "auto" => d_model.div_ceil(16),
        Some(_) => get_u32(cfg, "time_step_rank")?,
        None => d_model.div_ceil(16),
    };
    let act = cfg.get("hidden_act").and_then(Value::as_str).unwrap_or("silu");
    if act != "silu" {
        return Err(ConvertError::ConfigValue {
            key: "hidden_act",
            value: act.to_string(),
            why: "only silu is supported",
        });
    }
    let norm_eps = cfg.get("layer_norm_epsilon").and_then(Value::as_f64).unwrap_or(1e-5) as f32;
    let c = Mamba1Config {
        vocab_size: get_u32(cfg, "vocab_size")?,
        d_model,
        n_layer: get_u32(cfg, "num_hidden_layers")?,
        d_state: get_u32(cfg, "state_size")?,
        d_conv: get_u32(cfg, "conv_kernel")?,
        d_inner,
        dt_rank,
        norm_eps,
        tied_embeddings: get_bool(cfg, "tie_word_embeddings", true)?,
        proj_bias: get_bool(cfg, "use_bias", false)?,
        conv_bias: get_bool(cfg, "use_conv_bias", true)?,
    };
    for (key, v) in [
        ("vocab_size", c.vocab_size),
        ("hidden_size", c.d_model),
        ("num_hidden_layers", c.n_layer),
        ("state_size", c.d_state),
        ("conv_kernel", c.d_conv),
        ("intermediate_size", c.d_inner),
        ("time_step_rank", c.dt_rank),
    ] {
        if v == 0 {
            return Err(ConvertError::ConfigValue { key, value: "0".into(), why: "must be positive" });
        }
    }
    Ok(c)
}

/// The Hugging Face name of a canonical eddy tensor.
pub fn hf_name(spec: &TensorSpec) -> String {
    let eddy = eddy_name(spec);
    match spec.pattern {
        "embed.weight" => "backbone.embeddings.weight".into(),
        "norm_f.weight" => "backbone.norm_f.weight".into(),
        "lm_head.weight" => "lm_head.weight".into(),
        _ => {
            let rest = eddy.strip_prefix("layers.").unwrap_or(&eddy);
            let (layer, param) = rest.split_once('.').unwrap_or((rest, ""));
            if param == "norm.weight" {
                format!("backbone.layers.{layer}.norm.weight")
            } else if param == "A" {
                format!("backbone.layers.{layer}.mixer.A_log")
            } else {
                format!("backbone.layers.{layer}.mixer.{param}")
            }
        }
    }
}

/// The canonical eddy name of a schema entry.
pub fn eddy_name(spec: &TensorSpec) -> String {
    match spec.layer {
        Some(i) => spec.pattern.replace("{i}", &i.to_string()),
        None => spec.pattern.to_string(),
    }
}

/// A tensor's shape and values, upcast to f32.
type ShapedF32 = (Vec<usize>, Vec<f32>);

/// All tensors of a checkpoint directory, memory-mapped.
struct Checkpoint {
    files: Vec<(PathBuf, memmap2::Mmap)>,
}

impl Checkpoint {
    fn open(dir: &Path) -> Result<Self, ConvertError> {
        let index = dir.join("model.safetensors.index.json");
        let mut paths: Vec<PathBuf> = if index.exists() {
            let text = std::fs::read_to_string(&index).map_err(io_err(&index))?;
            let v: Value = serde_json::from_str(&text)
                .map_err(|source| ConvertError::Json { path: index.clone(), source })?;
            let map = v.get("weight_map").and_then(Value::as_object).ok_or(ConvertError::ConfigKey {
                key: "weight_map",
                expected: "an object (in model.safetensors.index.json)",
            })?;
            let mut shards: Vec<PathBuf> =
                map.values().filter_map(Value::as_str).map(|s| dir.join(s)).collect();
            shards.sort();
            shards.dedup();
            shards
        } else {
            let mut v = Vec::new();
            for entry in std::fs::read_dir(dir).map_err(io_err(dir))? {
                let p = entry.map_err(io_err(dir))?.path();
                if p.extension().is_some_and(|e| e == "safetensors") {
                    v.push(p);
                }
            }
            v
        };
        paths.sort();
        if paths.is_empty() {
            return Err(ConvertError::NoWeights(dir.to_path_buf()));
        }
        let mut files = Vec::new();
        for p in paths {
            let f = std::fs::File::open(&p).map_err(io_err(&p))?;
            // SAFETY: read-only map of an input file we do not modify.
            let map = unsafe { memmap2::Mmap::map(&f) }.map_err(io_err(&p))?;
            SafeTensors::deserialize(&map)
                .map_err(|e| ConvertError::SafeTensors { path: p.clone(), message: e.to_string() })?;
            files.push((p, map));
        }
        Ok(Checkpoint { files })
    }

    fn names(&self) -> Vec<String> {
        let mut out = Vec::new();
        for (_, map) in &self.files {
            if let Ok(st) = SafeTensors::deserialize(map) {
                out.extend(st.names().into_iter().map(|n| n.to_string()));
            }
        }
        out
    }

    /// Read a tensor as f32 values with its shape, if present.
    fn read_f32(&self, name: &str) -> Result<Option<ShapedF32>, ConvertError> {
        for (path, map) in &self.files {
            let st = SafeTensors::deserialize(map)
                .map_err(|e| ConvertError::SafeTensors { path: path.clone(), message: e.to_string() })?;
            let Ok(t) = st.tensor(name) else { continue };
            let data = t.data();
            let values: Vec<f32> = match t.dtype() {
                Dtype::F32 => {
                    data.chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect()
                }
                Dtype::F16 => {
                    data.chunks_exact(2).map(|b| half::f16::from_le_bytes([b[0], b[1]]).to_f32()).collect()
                }
                Dtype::BF16 => {
                    data.chunks_exact(2).map(|b| half::bf16::from_le_bytes([b[0], b[1]]).to_f32()).collect()
                }
                other => {
                    return Err(ConvertError::UnsupportedDtype {
                        hf_name: name.to_string(),
                        dtype: format!("{other:?}"),
                    })
                }
            };
            return Ok(Some((t.shape().to_vec(), values)));
        }
        Ok(None)
    }
}

/// Convert the checkpoint in `dir`. Nothing is written to disk here; the
/// caller writes `Converted::bytes`.
pub fn convert_dir(dir: &Path, dtype: WeightDtype) -> Result<Converted, ConvertError> {
    let cfg_path = dir.join("config.json");
    let text = std::fs::read_to_string(&cfg_path).map_err(io_err(&cfg_path))?;
    let cfg: Value = serde_json::from_str(&text)
        .map_err(|source| ConvertError::Json { path: cfg_path.clone(), source })?;
    let config = mamba1_config(&cfg)?;
    let ckpt = Checkpoint::open(dir)?;

    let mut builder = FileBuilder::new(Architecture::Mamba1);
    builder
        .hparam(HParam::VocabSize, config.vocab_size)
        .hparam(HParam::DModel, config.d_model)
        .hparam(HParam::NLayer, config.n_layer)
        .hparam(HParam::DState, config.d_state)
        .hparam(HParam::DConv, config.d_conv)
        .hparam(HParam::DInner, config.d_inner)
        .hparam(HParam::DtRank, config.dt_rank)
        .hparam_f32(HParam::NormEps, config.norm_eps)
        .hparam(HParam::TiedEmbeddings, config.tied_embeddings as u32)
        .hparam(HParam::ProjBias, config.proj_bias as u32)
        .hparam(HParam::ConvBias, config.conv_bias as u32)
        .hparam(HParam::BosToken, token_id(&cfg, "bos_token_id"))
        .hparam(HParam::EosToken, token_id(&cfg, "eos_token_id"));

    let mut specs = Vec::new();
    tensor_schema(&config, &mut |s| specs.push(s));
    let mut used = BTreeMap::new();
    for spec in &specs {
        let hf = hf_name(spec);
        let eddy = eddy_name(spec);
        let (shape, values) = ckpt
            .read_f32(&hf)?
            .ok_or_else(|| ConvertError::MissingTensor { hf_name: hf.clone(), eddy_name: eddy.clone() })?;
        // HF stores conv1d as [d_inner, 1, d_conv] and vectors as [n].
        let expected: Vec<usize> = if spec.pattern.ends_with("conv1d.weight") {
            vec![spec.rows as usize, 1, spec.cols as usize]
        } else if spec.rows == 1 {
            vec![spec.cols as usize]
        } else {
            vec![spec.rows as usize, spec.cols as usize]
        };
        if shape != expected {
            return Err(ConvertError::ShapeMismatch { hf_name: hf, expected, found: shape });
        }
        if values.iter().any(|v| !v.is_finite()) {
            return Err(ConvertError::NonFinite { hf_name: hf });
        }
        // eddy stores A = -exp(A_log), computed once here as transformers
        // does in f32, instead of two exponentials per state element per step.
        let values: Vec<f32> =
            if spec.pattern.ends_with(".A") { values.iter().map(|v| -v.exp()).collect() } else { values };
        let eddy_shape: Vec<u32> =
            if spec.rows == 1 { vec![spec.cols as u32] } else { vec![spec.rows as u32, spec.cols as u32] };
        let t = match (spec.kind, dtype) {
            (TensorKind::Matrix, WeightDtype::F16) => TensorData::f16(eddy, &eddy_shape, &values),
            _ => TensorData::f32(eddy, &eddy_shape, &values),
        };
        builder.tensor(t)?;
        used.insert(hf, ());
    }
    let ignored: Vec<String> = ckpt.names().into_iter().filter(|n| !used.contains_key(n)).collect();
    let tok_path = dir.join("tokenizer.json");
    let has_tokenizer = tok_path.exists();
    if has_tokenizer {
        let tok = std::fs::read(&tok_path).map_err(io_err(&tok_path))?;
        builder.blob(BlobKind::TokenizerJson, tok);
    }
    Ok(Converted { bytes: builder.to_bytes(), config, has_tokenizer, ignored })
}

/// Write `bytes` to `path` atomically (temporary file, then rename), so a
/// failed write never leaves a half-written model behind.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), ConvertError> {
    let tmp = path.with_extension("eddy.tmp");
    std::fs::write(&tmp, bytes).map_err(io_err(&tmp))?;
    std::fs::rename(&tmp, path).map_err(io_err(path))
}
