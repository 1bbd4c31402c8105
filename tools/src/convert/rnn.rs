//! GRU/LSTM language models in eddy's documented layout: a PyTorch module
//! with `embed = nn.Embedding(vocab, E)`, `rnn = nn.GRU(E, H, L)` (or
//! `nn.LSTM`) and `head = nn.Linear(H, vocab)`, saved as safetensors, with
//! a `config.json` like
//! `{"model_type": "gru", "vocab_size": V, "embedding_dim": E,
//!   "hidden_size": H, "num_layers": L, "bias": true, "head_bias": true}`.
//! Without `config.json`, every value is inferred from the tensor shapes;
//! the recurrent tensors may also be bare (`weight_ih_l0`, as in the
//! `state_dict` of a plain `nn.GRU`).

use super::common::{dims, hparams};
use super::{get_bool, Checkpoint, ConvertError, FamilyLayout, Plan};
use eddy::arch::Architecture;
use eddy::rnn::{tensor_schema, Cell, RnnConfig};
use eddy::schema::TensorSpec;
use serde_json::{json, Value};

/// The prefix of the recurrent tensors in this checkpoint (`rnn.` or none).
fn rnn_prefix(ckpt: &Checkpoint) -> Option<&'static str> {
    ["rnn.", ""].into_iter().find(|p| ckpt.shape(&format!("{p}weight_ih_l0")).is_some())
}

/// A config for a checkpoint without `config.json`, if it holds a GRU/LSTM.
pub(super) fn infer_config(ckpt: &Checkpoint) -> Result<Option<Value>, ConvertError> {
    let Some(prefix) = rnn_prefix(ckpt) else {
        return Ok(None);
    };
    let shape = |name: &str| ckpt.shape(&format!("{prefix}{name}"));
    let (Some(ih), Some(hh)) = (shape("weight_ih_l0"), shape("weight_hh_l0")) else {
        return Ok(None);
    };
    let bad = |why| ConvertError::ConfigValue { key: "weight_hh_l0", value: format!("{hh:?}"), why };
    let (rows, hidden) = match hh[..] {
        [r, h] if h > 0 => (r, h),
        _ => return Err(bad("expected a [gates * hidden, hidden] matrix")),
    };
    let model_type = match rows / hidden {
        3 if rows % hidden == 0 => "gru",
        4 if rows % hidden == 0 => "lstm",
        _ => return Err(bad("rows are neither 3 (GRU) nor 4 (LSTM) times the hidden size")),
    };
    let layers = (0..).take_while(|l| shape(&format!("weight_ih_l{l}")).is_some()).count();
    let embed = ckpt.shape("embed.weight").ok_or(ConvertError::MissingTensor {
        hf_name: "embed.weight".into(),
        eddy_name: "embed.weight (a bare nn.GRU/nn.LSTM state dict needs an embedding and a head)".into(),
    })?;
    Ok(Some(json!({
        "model_type": model_type,
        "vocab_size": embed.first().copied().unwrap_or(0),
        "embedding_dim": ih.get(1).copied().unwrap_or(0),
        "hidden_size": hidden,
        "num_layers": layers,
        "bias": shape("bias_ih_l0").is_some(),
        "head_bias": ckpt.shape("head.bias").is_some(),
    })))
}

/// Read GRU/LSTM hyper-parameters from eddy's `config.json` schema.
pub fn rnn_config(cfg: &Value) -> Result<RnnConfig, ConvertError> {
    let cell = match cfg.get("model_type").and_then(Value::as_str) {
        Some("gru") => Cell::Gru,
        Some("lstm") => Cell::Lstm,
        _ => return Err(super::unsupported(cfg)),
    };
    for (key, why) in [
        ("bidirectional", "bidirectional layers are not causal; only unidirectional models run step by step"),
        ("proj_size", "LSTM projections (proj_size > 0) are not supported"),
    ] {
        let set =
            cfg.get(key).is_some_and(|v| v.as_bool() == Some(true) || v.as_u64().is_some_and(|n| n > 0));
        if set {
            return Err(ConvertError::ConfigValue { key, value: cfg[key].to_string(), why });
        }
    }
    let [vocab_size, input_dim, hidden, n_layer] =
        dims(cfg, ["vocab_size", "embedding_dim", "hidden_size", "num_layers"])?;
    Ok(RnnConfig {
        cell,
        vocab_size,
        input_dim,
        hidden,
        n_layer,
        layer_bias: get_bool(cfg, "bias", true)?,
        head_bias: get_bool(cfg, "head_bias", true)?,
    })
}

struct RnnLayout {
    prefix: &'static str,
}

impl FamilyLayout for RnnLayout {
    fn hf_name(&self, spec: &TensorSpec) -> String {
        match (spec.layer, spec.pattern.rsplit('.').next()) {
            (Some(l), Some(param)) => format!("{}{param}_l{l}", self.prefix),
            _ => spec.pattern.to_string(),
        }
    }
}

pub(super) fn plan(cfg: &Value, ckpt: &Checkpoint) -> Result<Plan, ConvertError> {
    let c = rnn_config(cfg)?;
    for name in ["weight_hr_l0", "rnn.weight_hr_l0"] {
        if ckpt.shape(name).is_some() {
            return Err(ConvertError::ConfigValue {
                key: "proj_size",
                value: name.into(),
                why: "LSTM projections (proj_size > 0) are not supported",
            });
        }
    }
    let architecture = match c.cell {
        Cell::Gru => Architecture::Gru,
        Cell::Lstm => Architecture::Lstm,
    };
    let hparams = hparams! {
        VocabSize = c.vocab_size, InputDim = c.input_dim, DModel = c.hidden, NLayer = c.n_layer,
        ProjBias = c.layer_bias, HeadBias = c.head_bias,
    };
    let layout = RnnLayout { prefix: rnn_prefix(ckpt).unwrap_or("rnn.") };
    let shape = (c.n_layer, c.hidden, c.vocab_size);
    Ok(Plan::new(architecture, hparams, |visit| tensor_schema(&c, visit), layout, shape))
}
