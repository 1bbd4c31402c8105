//! Convert a Hugging Face checkpoint directory into a `.eddy` file.
//!
//! Reads `config.json`, the `*.safetensors` weights (single file or sharded
//! with `model.safetensors.index.json`; f32, f16 or bf16) and
//! `tokenizer.json` (and the chat template of `tokenizer_config.json`),
//! maps tensor names to eddy's canonical schema and checks every shape
//! before anything is written. A file that starts with GGUF's magic is read
//! as llama.cpp's format instead ([`gguf`]).

use crate::chat_template::{ChatTemplate, StoredChatTemplate};
use crate::file_writer::{StreamError, StreamingFile, TempOutput};
use eddy::arch::{Architecture, HParam};
use eddy::schema::{TensorKind, TensorSpec};
use eddy::BlobKind;
use eddy::TensorFormat;
use serde_json::Value;
use std::collections::BTreeSet;
use std::io::{Cursor, Seek, Write};
use std::path::{Path, PathBuf};

mod checkpoint;
mod common;
mod gated_deltanet;
pub mod gguf;
mod gla;
mod lfm2;
mod mamba1;
mod mamba2;
mod planned;
mod qwen3_next;
mod recurrent_gemma;
mod rnn;
mod rwkv4;
mod rwkv7;

use checkpoint::Checkpoint;
pub use gated_deltanet::gated_deltanet_config;
pub use mamba1::{hf_name, mamba1_config, mamba1_hparams};
pub use mamba2::mamba2_config;
pub use planned::{plan_config, ConfigPlan};
pub use rnn::rnn_config;
pub use rwkv4::rwkv4_config;

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
    /// The output could not be written.
    #[error("cannot write {path}: {source}")]
    WriteIo {
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
    #[error(
        "unsupported architecture {found:?} in config.json; supported (see README): {}",
        supported_architectures()
    )]
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
    /// No `config.json`, and the tensors do not say the family either.
    #[error("cannot read {path}: no such file, and the checkpoint's tensors are not a GRU, LSTM or RWKV-7 one whose shapes say everything")]
    NoConfig {
        /// The missing config path.
        path: PathBuf,
    },
    /// `tokenizer.json` is not a tokenizer.
    #[error("{path}: not a usable tokenizer: {message}")]
    Tokenizer {
        /// The path.
        path: PathBuf,
        /// What the tokenizer library said.
        message: String,
    },
    /// A tensor is not finite after its conversion (e.g. `-exp` of a
    /// huge `A_log`).
    #[error("tensor `{hf_name}` (eddy `{eddy_name}`) has NaN or infinite values after conversion (its values are out of range)")]
    NonFiniteConverted {
        /// Hugging Face name.
        hf_name: String,
        /// eddy canonical name.
        eddy_name: String,
    },
    /// The checkpoint holds tensors of layers the config does not have.
    #[error("config.json: `{key}` = {value}, but the checkpoint has tensor `{tensor}` of layer {layer}; fix the config or the checkpoint")]
    ExtraLayer {
        /// The layer-count key.
        key: &'static str,
        /// Its value.
        value: u32,
        /// A tensor of a layer beyond it.
        tensor: String,
        /// That layer.
        layer: u32,
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
    /// The output could not be written.
    #[error("{0}")]
    Stream(#[from] StreamError),
    /// A GGUF file's header is malformed.
    #[error("{path}: {error}")]
    Gguf {
        /// The path.
        path: PathBuf,
        /// What the reader found.
        error: gguf::reader::GgufError,
    },
    /// The input is a file but not a GGUF file.
    #[error(
        "{0} is a file but not a GGUF file (it does not start with `GGUF`); pass a Hugging Face checkpoint \
         directory or a .gguf file"
    )]
    NotGguf(PathBuf),
    /// A GGUF metadata key is missing or has the wrong type.
    #[error("GGUF metadata key `{key}` is missing or not {expected}")]
    GgufKey {
        /// The key.
        key: String,
        /// What was expected.
        expected: &'static str,
    },
    /// The GGUF file's architecture is not one eddy reads.
    #[error("unsupported GGUF architecture {found:?} (`general.architecture`); supported: {supported}")]
    GgufArchitecture {
        /// What the file says.
        found: String,
        /// The architectures eddy reads.
        supported: String,
    },
    /// A GGUF tensor's type cannot be read.
    #[error(
        "GGUF tensor `{name}` has ggml type {code}, which eddy cannot read; readable: {}",
        gguf::dequant::READABLE
    )]
    GgufTensorType {
        /// The tensor.
        name: String,
        /// Its ggml type code.
        code: u32,
    },
    /// A GGUF tensor's values cannot be stored.
    #[error("GGUF tensor `{name}`: {why}")]
    GgufTensor {
        /// The tensor.
        name: String,
        /// Why not.
        why: String,
    },
    /// `tokenizer_config.json` or the chat template in it is unusable.
    #[error("{0}")]
    ChatTemplate(#[from] crate::chat_template::ChatTemplateError),
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> ConvertError + '_ {
    move |source| ConvertError::Io { path: path.to_path_buf(), source }
}

fn write_err(path: &Path) -> impl FnOnce(std::io::Error) -> ConvertError + '_ {
    move |source| ConvertError::WriteIo { path: path.to_path_buf(), source }
}

/// What `convert` produced, for the caller to report.
#[derive(Debug)]
pub struct Converted {
    /// The serialized `.eddy` file.
    pub bytes: Vec<u8>,
    /// The model family.
    pub architecture: Architecture,
    /// Layers, model width and vocabulary size, for the summary line.
    pub shape: (u32, u32, u32),
    /// Whether a tokenizer was embedded.
    pub has_tokenizer: bool,
    /// Checkpoint tensors that were not used (e.g. a tied `lm_head`).
    pub ignored: Vec<String>,
}

/// What a conversion streamed to a file, for the caller to report.
#[derive(Debug)]
pub struct ConvertSummary {
    /// The model family.
    pub architecture: Architecture,
    /// Layers, model width and vocabulary size, for the summary line.
    pub shape: (u32, u32, u32),
    /// Whether a tokenizer was embedded.
    pub has_tokenizer: bool,
    /// Checkpoint tensors that were not used (e.g. a tied `lm_head`).
    pub ignored: Vec<String>,
    /// Length of the written file.
    pub len: u64,
    /// What was done per tensor and anything else worth saying (GGUF input).
    pub notes: Vec<String>,
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

/// `architectures` and `model_type` of a config, for family detection.
fn arch_names(cfg: &Value) -> (Vec<&str>, &str) {
    let archs = cfg
        .get("architectures")
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    (archs, cfg.get("model_type").and_then(Value::as_str).unwrap_or(""))
}

fn unsupported(cfg: &Value) -> ConvertError {
    let (archs, model_type) = arch_names(cfg);
    let found = if archs.is_empty() { model_type.to_string() } else { archs.join(",") };
    ConvertError::UnsupportedArchitecture { found }
}

/// What `convert` recognizes, for the error message: each architecture's
/// Hugging Face classes and `model_type`.
fn supported_architectures() -> String {
    let one = |a: &Architecture| match a.hf_classes() {
        [] => format!("eddy's {} layout (model_type {:?})", a.name(), a.hf_model_type()),
        classes => format!("{} (model_type {:?})", classes.join("/"), a.hf_model_type()),
    };
    Architecture::ALL.iter().map(one).collect::<Vec<_>>().join(", ")
}

/// How one family's checkpoint maps onto its eddy schema.
trait FamilyLayout {
    /// The checkpoint name of a canonical tensor.
    fn hf_name(&self, spec: &TensorSpec) -> String;

    /// The checkpoint tensors a canonical tensor is stacked from, rows
    /// after rows (e.g. a layer's experts); each has [`hf_shape`](Self::hf_shape).
    fn hf_parts(&self, spec: &TensorSpec) -> Vec<String> {
        vec![self.hf_name(spec)]
    }

    /// The shape the checkpoint stores a canonical tensor with.
    fn hf_shape(&self, spec: &TensorSpec) -> Vec<usize> {
        common::plain_shape(spec)
    }

    /// Values as eddy stores them (e.g. `A = -exp(A_log)`).
    fn transform(&self, _spec: &TensorSpec, values: Vec<f32>) -> Vec<f32> {
        values
    }
}

/// Everything a family's converter decides from `config.json` (and, for
/// RNNs, the tensor shapes): header, schema and name mapping.
struct Plan {
    architecture: Architecture,
    hparams: Vec<(HParam, u32)>,
    specs: Vec<TensorSpec>,
    layout: Box<dyn FamilyLayout>,
    shape: (u32, u32, u32),
    /// Extra blobs (e.g. a hybrid's layer-kinds table).
    blobs: Vec<(BlobKind, Vec<u8>)>,
}

/// The family's plan for `cfg` (the architecture it names), with the
/// token ids every file records appended to the header.
fn plan_for(cfg: &Value, ckpt: &Checkpoint) -> Result<Plan, ConvertError> {
    let (archs, model_type) = arch_names(cfg);
    let arch = Architecture::from_hf_config(&archs, model_type).ok_or_else(|| unsupported(cfg))?;
    // One converter per family; the registry in runtime/src/families/mod.rs
    // says which config.json is which architecture.
    let mut plan = match arch {
        Architecture::Mamba1 => mamba1::plan(cfg)?,
        Architecture::Mamba2 => mamba2::plan(cfg)?,
        Architecture::Gru | Architecture::Lstm => rnn::plan(cfg, ckpt)?,
        Architecture::Rwkv4 => rwkv4::plan(cfg)?,
        Architecture::GatedDeltaNet => gated_deltanet::plan(cfg)?,
        Architecture::Rwkv7 => rwkv7::plan(cfg, ckpt)?,
        Architecture::Gla => gla::plan(cfg)?,
        Architecture::Lfm2 => lfm2::plan(cfg, ckpt)?,
        Architecture::RecurrentGemma => recurrent_gemma::plan(cfg, ckpt)?,
    };
    plan.hparams.push((HParam::BosToken, token_id(cfg, "bos_token_id")));
    plan.hparams.push((HParam::EosToken, token_id(cfg, "eos_token_id")));
    Ok(plan)
}

/// Read `config.json` (or infer it from the tensors) and open the weights.
fn open_dir(dir: &Path) -> Result<(Value, Checkpoint), ConvertError> {
    let cfg_path = dir.join("config.json");
    match crate::validate::read_regular(&cfg_path) {
        Ok(text) => Ok((
            serde_json::from_slice(&text)
                .map_err(|source| ConvertError::Json { path: cfg_path.clone(), source })?,
            Checkpoint::open(dir)?,
        )),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            // Without config.json only a bare GRU/LSTM state dict or an
            // RWKV-7 checkpoint converts: their shapes say everything.
            // Without weights either, the missing config is the news.
            let ckpt = match Checkpoint::open(dir) {
                Err(ConvertError::NoWeights(_)) | Err(ConvertError::Io { .. }) => {
                    return Err(io_err(&cfg_path)(e))
                }
                other => other?,
            };
            match rnn::infer_config(&ckpt)?.or(rwkv7::infer_config(&ckpt)?) {
                Some(cfg) => Ok((cfg, ckpt)),
                // BlinkDL-layout names without the tensor that marks RWKV-7.
                None if ckpt.names().iter().any(|n| n.starts_with("blocks.")) => {
                    Err(ConvertError::MissingTensor {
                        hf_name: "blocks.0.att.r_k".into(),
                        eddy_name: "layers.0.att.r_k (an RWKV-7 checkpoint in BlinkDL's layout)".into(),
                    })
                }
                None => Err(ConvertError::NoConfig { path: cfg_path }),
            }
        }
        Err(e) => Err(io_err(&cfg_path)(e)),
    }
}

/// Convert the checkpoint in `dir` into memory (small models and tests;
/// [`convert_to_file`] streams instead).
pub fn convert_dir(dir: &Path, dtype: WeightDtype) -> Result<Converted, ConvertError> {
    let (out, s) = convert_into(dir, dtype, Cursor::new(Vec::new()))?;
    let (architecture, shape, has_tokenizer, ignored) = (s.architecture, s.shape, s.has_tokenizer, s.ignored);
    Ok(Converted { bytes: out.into_inner(), architecture, shape, has_tokenizer, ignored })
}

/// Convert the checkpoint in `dir` into the file `output`, one tensor at a
/// time: memory stays about the largest tensor whatever the model's size.
/// The file appears only when complete (an existing one is replaced then);
/// a failed run leaves nothing behind.
pub fn convert_to_file(
    dir: &Path,
    dtype: WeightDtype,
    output: &Path,
) -> Result<ConvertSummary, ConvertError> {
    let (tmp, file) = TempOutput::create(output).map_err(write_err(output))?;
    let (file, summary) = convert_into(dir, dtype, file)?;
    tmp.persist(file).map_err(write_err(output))?;
    Ok(summary)
}

/// Convert the checkpoint directory or GGUF file `path`, writing the
/// `.eddy` file to `out` as each tensor is read (a GGUF's Q8_0/Q4_0/Q4_1
/// matrices are kept as they are: [`gguf::GgufWeights::Keep`]).
pub fn convert_into<W: Write + Seek>(
    path: &Path,
    dtype: WeightDtype,
    out: W,
) -> Result<(W, ConvertSummary), ConvertError> {
    convert_into_with(path, dtype, gguf::GgufWeights::Keep, out)
}

/// [`convert_into`], saying what becomes of a GGUF file's quantized
/// tensors (a Hugging Face checkpoint has none).
pub fn convert_into_with<W: Write + Seek>(
    path: &Path,
    dtype: WeightDtype,
    weights: gguf::GgufWeights,
    out: W,
) -> Result<(W, ConvertSummary), ConvertError> {
    convert_into_with_progress(path, dtype, weights, out, |_, _| {})
}

/// [`convert_into_with`], calling `progress(done, total)` in weights after
/// each tensor of a Hugging Face checkpoint is written.
pub fn convert_into_with_progress<W: Write + Seek>(
    path: &Path,
    dtype: WeightDtype,
    weights: gguf::GgufWeights,
    out: W,
    progress: impl FnMut(u64, u64),
) -> Result<(W, ConvertSummary), ConvertError> {
    if gguf::is_gguf(path) {
        gguf::convert_into(path, dtype, weights, out)
    } else if path.is_file() {
        Err(ConvertError::NotGguf(path.to_path_buf()))
    } else {
        convert_dir_into(path, dtype, out, progress)
    }
}

/// Convert the checkpoint in `dir`, writing the `.eddy` file to `out` as
/// each tensor is read. Every tensor's presence, shape and dtype is checked
/// before any data is written.
fn convert_dir_into<W: Write + Seek>(
    dir: &Path,
    dtype: WeightDtype,
    out: W,
    mut progress: impl FnMut(u64, u64),
) -> Result<(W, ConvertSummary), ConvertError> {
    let (cfg, ckpt) = open_dir(dir)?;
    let plan = plan_for(&cfg, &ckpt)?;
    let mut hf_names = Vec::with_capacity(plan.specs.len());
    for spec in &plan.specs {
        let parts = plan.layout.hf_parts(spec);
        for hf in &parts {
            let shape = ckpt.check_readable(hf)?.ok_or_else(|| ConvertError::MissingTensor {
                hf_name: hf.clone(),
                eddy_name: eddy_name(spec),
            })?;
            let expected = plan.layout.hf_shape(spec);
            if shape != expected {
                return Err(ConvertError::ShapeMismatch { hf_name: hf.clone(), expected, found: shape });
            }
        }
        hf_names.push(parts);
    }
    refuse_extra_layers(&cfg, plan.shape.0, &ckpt, &hf_names.concat())?;
    let tok_path = dir.join("tokenizer.json");
    let tokenizer = match tok_path.exists() {
        true => Some(crate::validate::read_regular(&tok_path).map_err(io_err(&tok_path))?),
        false => None,
    };
    // Parsed now, so a broken tokenizer fails here and not at `run`.
    if let Some(bytes) = &tokenizer {
        crate::text::TextCodec::from_json(bytes)
            .map_err(|e| ConvertError::Tokenizer { path: tok_path.clone(), message: format!("{e:#}") })?;
    }
    let chat = StoredChatTemplate::from_checkpoint(dir, &cfg)?;
    if let Some(source) = chat.as_ref().and_then(StoredChatTemplate::template_source) {
        // A template that does not parse is refused now, not at chat time.
        ChatTemplate::new(StoredChatTemplate { chat_template: source.into(), ..Default::default() })?;
    }
    let hparams: Vec<(u32, u32)> = plan.hparams.iter().map(|&(k, v)| (k.code(), v)).collect();
    let names = plan.specs.iter().map(eddy_name).collect();
    let blob_count = plan.blobs.len() + usize::from(tokenizer.is_some()) + usize::from(chat.is_some());
    let mut w = StreamingFile::new(out, plan.architecture, &hparams, names, blob_count)?;
    let total: u64 = plan.specs.iter().map(|s| s.rows * s.cols).sum();
    let mut done = 0u64;
    for (spec, parts) in plan.specs.iter().zip(&hf_names) {
        let mut values = Vec::new();
        for hf in parts {
            let missing = || ConvertError::MissingTensor { hf_name: hf.clone(), eddy_name: eddy_name(spec) };
            let (_, part) = ckpt.read_f32(hf)?.ok_or_else(missing)?;
            if part.iter().any(|v| !v.is_finite()) {
                return Err(ConvertError::NonFinite { hf_name: hf.clone() });
            }
            values.extend(part);
        }
        let hf = parts.first().cloned().unwrap_or_default();
        let values = plan.layout.transform(spec, values);
        if values.iter().any(|v| !v.is_finite()) {
            return Err(ConvertError::NonFiniteConverted { hf_name: hf.clone(), eddy_name: eddy_name(spec) });
        }
        let eddy_shape: Vec<u32> =
            if spec.rows == 1 { vec![spec.cols as u32] } else { vec![spec.rows as u32, spec.cols as u32] };
        let format = match (spec.kind, dtype) {
            (TensorKind::Matrix, WeightDtype::F16) => TensorFormat::F16,
            _ => TensorFormat::F32,
        };
        w.tensor_f32(eddy_name(spec), &eddy_shape, format, &values)?;
        done += spec.rows * spec.cols;
        progress(done, total);
    }
    for (kind, bytes) in plan.blobs {
        w.blob(kind, bytes)?;
    }
    let has_tokenizer = tokenizer.is_some();
    if let Some(tok) = tokenizer {
        w.blob(BlobKind::TokenizerJson, tok)?;
    }
    if let Some(chat) = chat {
        w.blob(BlobKind::ChatTemplate, chat.to_bytes())?;
    }
    let (out, len) = w.finish()?;
    let used: BTreeSet<&String> = hf_names.iter().flatten().collect();
    let ignored: Vec<String> = ckpt.names().into_iter().filter(|n| !used.contains(n)).collect();
    Ok((
        out,
        ConvertSummary {
            architecture: plan.architecture,
            shape: plan.shape,
            has_tokenizer,
            ignored,
            len,
            notes: vec![],
        },
    ))
}

/// Refuse a checkpoint with tensors of layers at or beyond `layers` (a
/// config that says fewer layers than the weights have would silently
/// drop the rest). `used` are the names the plan reads.
fn refuse_extra_layers(
    cfg: &Value,
    layers: u32,
    ckpt: &Checkpoint,
    used: &[String],
) -> Result<(), ConvertError> {
    const CONTAINERS: [&str; 4] = ["layers", "blocks", "h", "layer"];
    for name in ckpt.names() {
        if used.contains(&name) {
            continue;
        }
        let parts: Vec<&str> = name.split('.').collect();
        let layer =
            parts.windows(2).find(|w| CONTAINERS.contains(&w[0])).and_then(|w| w[1].parse::<u32>().ok());
        if let Some(layer) = layer.filter(|&l| l >= layers) {
            let key = ["num_hidden_layers", "n_layer", "num_layers", "n_layers"]
                .into_iter()
                .find(|k| cfg.get(k).is_some())
                .unwrap_or("num_hidden_layers");
            return Err(ConvertError::ExtraLayer { key, value: layers, tensor: name, layer });
        }
    }
    Ok(())
}

/// The canonical eddy name of a schema entry.
pub fn eddy_name(spec: &TensorSpec) -> String {
    match spec.layer {
        Some(i) => spec.pattern.replace("{i}", &i.to_string()),
        None => spec.pattern.to_string(),
    }
}

/// Write `bytes` to `path` atomically (temporary file, then rename), so a
/// failed write never leaves a half-written model behind.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), ConvertError> {
    let (tmp, mut file) = TempOutput::create(path).map_err(write_err(path))?;
    file.write_all(bytes).map_err(write_err(tmp.path()))?;
    tmp.persist(file).map_err(write_err(path))
}
