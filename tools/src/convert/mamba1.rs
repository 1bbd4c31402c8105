//! `MambaForCausalLM` checkpoints.

use super::common::{
    conv_or_plain_shape, hparams, neg_exp, positive, require_activation, require_family, top_or_layer,
};
use super::{get_u32, ConvertError, FamilyLayout, Plan};
use eddy::arch::{Architecture, HParam};
use eddy::mamba::{tensor_schema, Mamba1Config};
use eddy::schema::TensorSpec;
use serde_json::Value;

/// `$ty { .. }` with the given fields (variables of the caller) and the
/// dimensions and flags both Mamba generations read alike from
/// `config.json` (`tie_word_embeddings` defaulting to `$tied`); returns
/// early with the first [`ConvertError`].
macro_rules! mamba_config {
    ($cfg:expr, $ty:ident { $($field:ident),* }, tied_default = $tied:expr) => {{
        let keys = ["vocab_size", "hidden_size", "num_hidden_layers", "state_size", "conv_kernel"];
        let [vocab_size, d_model, n_layer, d_state, d_conv] = super::common::dims($cfg, keys)?;
        $ty {
            vocab_size,
            d_model,
            n_layer,
            d_state,
            d_conv,
            $($field,)*
            norm_eps: super::common::epsilon($cfg, "layer_norm_epsilon", 1e-5)?,
            tied_embeddings: super::get_bool($cfg, "tie_word_embeddings", $tied)?,
            proj_bias: super::get_bool($cfg, "use_bias", false)?,
            conv_bias: super::get_bool($cfg, "use_conv_bias", true)?,
        }
    }};
}
pub(super) use mamba_config;

/// Read Mamba-1 hyper-parameters from a `config.json` value.
pub fn mamba1_config(cfg: &Value) -> Result<Mamba1Config, ConvertError> {
    require_family(cfg, "MambaForCausalLM", "mamba")?;
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
    check_silu(cfg)?;
    let c = mamba_config!(cfg, Mamba1Config { d_inner, dt_rank }, tied_default = true);
    positive(&[("intermediate_size", d_inner), ("time_step_rank", dt_rank)])?;
    Ok(c)
}

/// Mamba mixers only support SiLU.
pub(super) fn check_silu(cfg: &Value) -> Result<(), ConvertError> {
    require_activation(cfg, "hidden_act", "silu", &["silu"], "only silu is supported")
}

/// The Hugging Face name of a canonical Mamba-1 (or Mamba-2) tensor.
pub fn hf_name(spec: &TensorSpec) -> String {
    top_or_layer(spec, "backbone.embeddings.weight", "backbone.norm_f.weight", |layer, param| match param {
        "norm.weight" => format!("backbone.layers.{layer}.norm.weight"),
        "A" => format!("backbone.layers.{layer}.mixer.A_log"),
        "gate_norm.weight" => format!("backbone.layers.{layer}.mixer.norm.weight"),
        _ => format!("backbone.layers.{layer}.mixer.{param}"),
    })
}

/// Layout shared by both Mamba generations: `backbone.` names, conv1d as
/// `[channels, 1, width]`, `A` stored from `A_log`.
pub(super) struct MambaLayout;

impl FamilyLayout for MambaLayout {
    fn hf_name(&self, spec: &TensorSpec) -> String {
        hf_name(spec)
    }

    fn hf_shape(&self, spec: &TensorSpec) -> Vec<usize> {
        conv_or_plain_shape(spec, spec.pattern.ends_with("conv1d.weight"))
    }

    // eddy stores A = -exp(A_log), computed once here as transformers does
    // in f32, instead of exponentials per step.
    fn transform(&self, spec: &TensorSpec, values: Vec<f32>) -> Vec<f32> {
        if spec.pattern.ends_with(".A") {
            neg_exp(values)
        } else {
            values
        }
    }
}

/// The header hyper-parameters of a Mamba-1 model, in file order.
pub fn mamba1_hparams(c: &Mamba1Config) -> Vec<(HParam, u32)> {
    hparams! {
        VocabSize = c.vocab_size, DModel = c.d_model, NLayer = c.n_layer, DState = c.d_state,
        DConv = c.d_conv, DInner = c.d_inner, DtRank = c.dt_rank, NormEps = c.norm_eps,
        TiedEmbeddings = c.tied_embeddings, ProjBias = c.proj_bias, ConvBias = c.conv_bias,
    }
}

pub(super) fn plan(cfg: &Value) -> Result<Plan, ConvertError> {
    let c = mamba1_config(cfg)?;
    let shape = (c.n_layer, c.d_model, c.vocab_size);
    Ok(Plan::new(
        Architecture::Mamba1,
        mamba1_hparams(&c),
        |visit| tensor_schema(&c, visit),
        MambaLayout,
        shape,
    ))
}
