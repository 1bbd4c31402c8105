//! `MambaForCausalLM` checkpoints.

use super::{eddy_name, get_bool, get_u32, positive, unsupported, ConvertError, FamilyLayout, Plan};
use eddy::arch::{Architecture, HParam};
use eddy::mamba::{tensor_schema, Mamba1Config};
use eddy::schema::TensorSpec;
use serde_json::Value;

/// Read Mamba-1 hyper-parameters from a `config.json` value.
pub fn mamba1_config(cfg: &Value) -> Result<Mamba1Config, ConvertError> {
    let (archs, model_type) = super::arch_names(cfg);
    if !(archs.contains(&"MambaForCausalLM") || (archs.is_empty() && model_type == "mamba")) {
        return Err(unsupported(cfg));
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
    check_silu(cfg)?;
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
    positive(&[
        ("vocab_size", c.vocab_size),
        ("hidden_size", c.d_model),
        ("num_hidden_layers", c.n_layer),
        ("state_size", c.d_state),
        ("conv_kernel", c.d_conv),
        ("intermediate_size", c.d_inner),
        ("time_step_rank", c.dt_rank),
    ])?;
    Ok(c)
}

/// Mamba mixers only support SiLU.
pub(super) fn check_silu(cfg: &Value) -> Result<(), ConvertError> {
    let act = cfg.get("hidden_act").and_then(Value::as_str).unwrap_or("silu");
    if act != "silu" {
        return Err(ConvertError::ConfigValue {
            key: "hidden_act",
            value: act.to_string(),
            why: "only silu is supported",
        });
    }
    Ok(())
}

/// The Hugging Face name of a canonical Mamba-1 (or Mamba-2) tensor.
pub fn hf_name(spec: &TensorSpec) -> String {
    let eddy = eddy_name(spec);
    match spec.pattern {
        "embed.weight" => "backbone.embeddings.weight".into(),
        "norm_f.weight" => "backbone.norm_f.weight".into(),
        "lm_head.weight" => "lm_head.weight".into(),
        _ => {
            let rest = eddy.strip_prefix("layers.").unwrap_or(&eddy);
            let (layer, param) = rest.split_once('.').unwrap_or((rest, ""));
            match param {
                "norm.weight" => format!("backbone.layers.{layer}.norm.weight"),
                "A" => format!("backbone.layers.{layer}.mixer.A_log"),
                "gate_norm.weight" => format!("backbone.layers.{layer}.mixer.norm.weight"),
                _ => format!("backbone.layers.{layer}.mixer.{param}"),
            }
        }
    }
}

/// Layout shared by both Mamba generations: `backbone.` names, conv1d as
/// `[channels, 1, width]`, `A` stored from `A_log`.
pub(super) struct MambaLayout;

impl FamilyLayout for MambaLayout {
    fn hf_name(&self, spec: &TensorSpec) -> String {
        hf_name(spec)
    }

    fn hf_shape(&self, spec: &TensorSpec) -> Vec<usize> {
        if spec.pattern.ends_with("conv1d.weight") {
            vec![spec.rows as usize, 1, spec.cols as usize]
        } else if spec.rows == 1 {
            vec![spec.cols as usize]
        } else {
            vec![spec.rows as usize, spec.cols as usize]
        }
    }

    // eddy stores A = -exp(A_log), computed once here as transformers does
    // in f32, instead of exponentials per step.
    fn transform(&self, spec: &TensorSpec, values: Vec<f32>) -> Vec<f32> {
        if spec.pattern.ends_with(".A") {
            values.iter().map(|v| -v.exp()).collect()
        } else {
            values
        }
    }
}

pub(super) fn plan(cfg: &Value) -> Result<Plan, ConvertError> {
    let c = mamba1_config(cfg)?;
    let mut specs = Vec::new();
    tensor_schema(&c, &mut |s| specs.push(s));
    Ok(Plan {
        architecture: Architecture::Mamba1,
        hparams: vec![
            (HParam::VocabSize, c.vocab_size),
            (HParam::DModel, c.d_model),
            (HParam::NLayer, c.n_layer),
            (HParam::DState, c.d_state),
            (HParam::DConv, c.d_conv),
            (HParam::DInner, c.d_inner),
            (HParam::DtRank, c.dt_rank),
            (HParam::NormEps, c.norm_eps.to_bits()),
            (HParam::TiedEmbeddings, c.tied_embeddings as u32),
            (HParam::ProjBias, c.proj_bias as u32),
            (HParam::ConvBias, c.conv_bias as u32),
        ],
        specs,
        layout: Box::new(MambaLayout),
        shape: (c.n_layer, c.d_model, c.vocab_size),
        blobs: vec![],
    })
}
