//! `Mamba2ForCausalLM` checkpoints.

use super::common::{dims, hparams, require_family};
use super::mamba1::{check_silu, mamba_config, MambaLayout};
use super::{get_u32, ConvertError, Plan};
use eddy::arch::Architecture;
use eddy::mamba2::{tensor_schema, Mamba2Config};
use serde_json::Value;

/// Read Mamba-2 hyper-parameters from a `config.json` value.
pub fn mamba2_config(cfg: &Value) -> Result<Mamba2Config, ConvertError> {
    require_family(cfg, "Mamba2ForCausalLM", "mamba2")?;
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
    let [n_heads, _, n_groups] = dims(cfg, ["num_heads", "head_dim", "n_groups"])?;
    if n_heads % n_groups != 0 {
        return Err(ConvertError::ConfigValue {
            key: "n_groups",
            value: n_groups.to_string(),
            why: "must divide num_heads",
        });
    }
    Ok(mamba_config!(cfg, Mamba2Config { d_inner, n_heads, n_groups }, tied_default = false))
}

pub(super) fn plan(cfg: &Value) -> Result<Plan, ConvertError> {
    let c = mamba2_config(cfg)?;
    let hparams = hparams! {
        VocabSize = c.vocab_size, DModel = c.d_model, NLayer = c.n_layer, DState = c.d_state,
        DConv = c.d_conv, DInner = c.d_inner, NHeads = c.n_heads, NGroups = c.n_groups,
        NormEps = c.norm_eps, TiedEmbeddings = c.tied_embeddings, ProjBias = c.proj_bias,
        ConvBias = c.conv_bias,
    };
    let shape = (c.n_layer, c.d_model, c.vocab_size);
    Ok(Plan::new(Architecture::Mamba2, hparams, |visit| tensor_schema(&c, visit), MambaLayout, shape))
}
