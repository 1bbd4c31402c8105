//! GLA checkpoints in fla's `GLAForCausalLM` layout (`model.layers.{i}.attn.*`).
//! Only fla's default layer options are supported; others stop the
//! conversion naming the key.

use super::common::{
    dims, epsilon, float, hparams, positive, require_activation, require_family, top_or_layer, u32_or,
};
use super::{get_bool, get_u32, ConvertError, FamilyLayout, Plan};
use eddy::arch::Architecture;
use eddy::gla::{tensor_schema, GlaConfig};
use eddy::schema::TensorSpec;
use serde_json::Value;

/// Read GLA hyper-parameters from an fla `config.json`.
pub(super) fn gla_config(cfg: &Value) -> Result<GlaConfig, ConvertError> {
    require_family(cfg, "GLAForCausalLM", "gla")?;
    let reject = |key: &'static str, why: &'static str| ConvertError::ConfigValue {
        key,
        value: cfg.get(key).map(Value::to_string).unwrap_or_default(),
        why,
    };
    let truthy = |key: &str| cfg.get(key).is_some_and(|v| !(v.is_null() || v == &Value::Bool(false)));
    if truthy("use_short_conv") {
        return Err(reject("use_short_conv", "short convolutions in GLA layers are not supported"));
    }
    if truthy("feature_map") {
        return Err(reject("feature_map", "query/key feature maps are not supported"));
    }
    if truthy("clamp_min") {
        return Err(reject("clamp_min", "gate clamping is not supported"));
    }
    if !get_bool(cfg, "use_output_gate", true)? || !get_bool(cfg, "fuse_norm", true)? {
        return Err(reject("use_output_gate", "only the output gate with the fused swish norm is supported"));
    }
    if truthy("attnres_block_size") || truthy("attn") {
        return Err(reject("attn", "hybrid attention layers are not supported yet"));
    }
    require_activation(cfg, "hidden_act", "swish", &["swish", "silu"], "only swish is supported")?;
    let d_model = get_u32(cfg, "hidden_size")?;
    let n_heads = get_u32(cfg, "num_heads")?;
    if cfg.get("num_kv_heads").and_then(Value::as_u64).is_some_and(|k| k != n_heads as u64) {
        return Err(reject("num_kv_heads", "grouped key/value heads are not supported"));
    }
    let key_dim = (d_model as f64 * float(cfg, "expand_k", 0.5)?).round() as u32;
    let value_dim = (d_model as f64 * float(cfg, "expand_v", 1.0)?).round() as u32;
    if n_heads == 0 || key_dim % n_heads != 0 || value_dim % n_heads != 0 {
        return Err(reject("num_heads", "must divide the key and value widths"));
    }
    let [vocab_size, n_layer, d_ffn] = dims(cfg, ["vocab_size", "num_hidden_layers", "intermediate_size"])?;
    let (head_k_dim, head_v_dim) = (key_dim / n_heads, value_dim / n_heads);
    let gate_rank = u32_or(cfg, "gate_low_rank_dim", 16);
    positive(&[("expand_k", head_k_dim), ("expand_v", head_v_dim), ("gate_low_rank_dim", gate_rank)])?;
    Ok(GlaConfig {
        vocab_size,
        d_model,
        n_layer,
        n_heads,
        head_k_dim,
        head_v_dim,
        gate_rank,
        d_ffn,
        gate_normalizer: float(cfg, "gate_logit_normalizer", 16.0)? as f32,
        norm_eps: epsilon(cfg, "norm_eps", 1e-6)?,
        tied_embeddings: get_bool(cfg, "tie_word_embeddings", false)?,
    })
}

struct FlaLayout;

impl FamilyLayout for FlaLayout {
    fn hf_name(&self, spec: &TensorSpec) -> String {
        top_or_layer(spec, "model.embeddings.weight", "model.norm.weight", |layer, param| {
            let hf = match param {
                "attn_norm.weight" | "mlp_norm.weight" => param.to_string(),
                "gk_down.weight" => "attn.gk_proj.0.weight".into(),
                "gk_up.weight" => "attn.gk_proj.1.weight".into(),
                "gk_up.bias" => "attn.gk_proj.1.bias".into(),
                "g_norm.weight" => "attn.g_norm_swish_gate.weight".into(),
                "gate_proj.weight" | "up_proj.weight" | "down_proj.weight" => format!("mlp.{param}"),
                _ => format!("attn.{param}"),
            };
            format!("model.layers.{layer}.{hf}")
        })
    }
}

pub(super) fn plan(cfg: &Value) -> Result<Plan, ConvertError> {
    let c = gla_config(cfg)?;
    let hparams = hparams! {
        VocabSize = c.vocab_size, DModel = c.d_model, NLayer = c.n_layer, NHeads = c.n_heads,
        DState = c.head_k_dim, DInner = c.n_heads * c.head_v_dim, LoraDecay = c.gate_rank, DFfn = c.d_ffn,
        GateNormalizer = c.gate_normalizer, NormEps = c.norm_eps, TiedEmbeddings = c.tied_embeddings,
    };
    let shape = (c.n_layer, c.d_model, c.vocab_size);
    Ok(Plan::new(Architecture::Gla, hparams, |visit| tensor_schema(&c, visit), FlaLayout, shape))
}
