//! `Mamba2ForCausalLM` checkpoints.

use super::mamba1::{check_silu, MambaLayout};
use super::{get_bool, get_u32, positive, unsupported, ConvertError, Plan};
use eddy::arch::{Architecture, HParam};
use eddy::mamba2::{tensor_schema, Mamba2Config};
use serde_json::Value;

/// Read Mamba-2 hyper-parameters from a `config.json` value.
pub fn mamba2_config(cfg: &Value) -> Result<Mamba2Config, ConvertError> {
    let (archs, model_type) = super::arch_names(cfg);
    if !(archs.contains(&"Mamba2ForCausalLM") || (archs.is_empty() && model_type == "mamba2")) {
        return Err(unsupported(cfg));
    }
    check_silu(cfg)?;
    let d_model = get_u32(cfg, "hidden_size")?;
    let n_heads = get_u32(cfg, "num_heads")?;
    let head_dim = get_u32(cfg, "head_dim")?;
    let expand = get_u32(cfg, "expand")?;
    let d_inner = n_heads.checked_mul(head_dim).ok_or(ConvertError::ConfigValue {
        key: "num_heads",
        value: n_heads.to_string(),
        why: "num_heads * head_dim overflows",
    })?;
    if d_model.checked_mul(expand) != Some(d_inner) {
        return Err(ConvertError::ConfigValue {
            key: "expand",
            value: expand.to_string(),
            why: "hidden_size * expand must equal num_heads * head_dim",
        });
    }
    // eddy follows the step path of transformers, which does not clamp dt;
    // only the default (0, inf) limit is equivalent.
    if let Some(limit) = cfg.get("time_step_limit").and_then(Value::as_array) {
        let lo = limit.first().and_then(Value::as_f64).unwrap_or(0.0);
        let hi = limit.get(1).and_then(Value::as_f64);
        if lo != 0.0 || hi.is_some_and(f64::is_finite) {
            return Err(ConvertError::ConfigValue {
                key: "time_step_limit",
                value: format!("{limit:?}"),
                why: "only the default (0, inf) is supported",
            });
        }
    }
    let c = Mamba2Config {
        vocab_size: get_u32(cfg, "vocab_size")?,
        d_model,
        n_layer: get_u32(cfg, "num_hidden_layers")?,
        d_state: get_u32(cfg, "state_size")?,
        d_conv: get_u32(cfg, "conv_kernel")?,
        d_inner,
        n_heads,
        n_groups: get_u32(cfg, "n_groups")?,
        norm_eps: cfg.get("layer_norm_epsilon").and_then(Value::as_f64).unwrap_or(1e-5) as f32,
        tied_embeddings: get_bool(cfg, "tie_word_embeddings", false)?,
        proj_bias: get_bool(cfg, "use_bias", false)?,
        conv_bias: get_bool(cfg, "use_conv_bias", true)?,
    };
    positive(&[
        ("vocab_size", c.vocab_size),
        ("hidden_size", c.d_model),
        ("num_hidden_layers", c.n_layer),
        ("state_size", c.d_state),
        ("conv_kernel", c.d_conv),
        ("num_heads", c.n_heads),
        ("head_dim", head_dim),
        ("n_groups", c.n_groups),
    ])?;
    if c.n_heads % c.n_groups != 0 {
        return Err(ConvertError::ConfigValue {
            key: "n_groups",
            value: c.n_groups.to_string(),
            why: "must divide num_heads",
        });
    }
    Ok(c)
}

pub(super) fn plan(cfg: &Value) -> Result<Plan, ConvertError> {
    let c = mamba2_config(cfg)?;
    let mut specs = Vec::new();
    tensor_schema(&c, &mut |s| specs.push(s));
    Ok(Plan {
        architecture: Architecture::Mamba2,
        hparams: vec![
            (HParam::VocabSize, c.vocab_size),
            (HParam::DModel, c.d_model),
            (HParam::NLayer, c.n_layer),
            (HParam::DState, c.d_state),
            (HParam::DConv, c.d_conv),
            (HParam::DInner, c.d_inner),
            (HParam::NHeads, c.n_heads),
            (HParam::NGroups, c.n_groups),
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
