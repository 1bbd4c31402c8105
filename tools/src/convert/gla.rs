//! GLA checkpoints in fla's `GLAForCausalLM` layout (`model.layers.{i}.attn.*`).
//! Only fla's default layer options are supported; others stop the
//! conversion naming the key.

use super::{eddy_name, get_bool, get_u32, positive, unsupported, ConvertError, FamilyLayout, Plan};
use eddy::arch::{Architecture, HParam};
use eddy::gla::{tensor_schema, GlaConfig};
use eddy::schema::TensorSpec;
use serde_json::Value;

fn float(cfg: &Value, key: &str, default: f64) -> f64 {
    cfg.get(key).and_then(Value::as_f64).unwrap_or(default)
}

/// Read GLA hyper-parameters from an fla `config.json`.
pub(super) fn gla_config(cfg: &Value) -> Result<GlaConfig, ConvertError> {
    let (archs, model_type) = super::arch_names(cfg);
    if !(archs.contains(&"GLAForCausalLM") || (archs.is_empty() && model_type == "gla")) {
        return Err(unsupported(cfg));
    }
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
    let act = cfg.get("hidden_act").and_then(Value::as_str).unwrap_or("swish");
    if act != "swish" && act != "silu" {
        return Err(ConvertError::ConfigValue {
            key: "hidden_act",
            value: act.into(),
            why: "only swish is supported",
        });
    }
    let d_model = get_u32(cfg, "hidden_size")?;
    let n_heads = get_u32(cfg, "num_heads")?;
    if cfg.get("num_kv_heads").and_then(Value::as_u64).is_some_and(|k| k != n_heads as u64) {
        return Err(reject("num_kv_heads", "grouped key/value heads are not supported"));
    }
    let key_dim = (d_model as f64 * float(cfg, "expand_k", 0.5)).round() as u32;
    let value_dim = (d_model as f64 * float(cfg, "expand_v", 1.0)).round() as u32;
    if n_heads == 0 || key_dim % n_heads != 0 || value_dim % n_heads != 0 {
        return Err(reject("num_heads", "must divide the key and value widths"));
    }
    let c = GlaConfig {
        vocab_size: get_u32(cfg, "vocab_size")?,
        d_model,
        n_layer: get_u32(cfg, "num_hidden_layers")?,
        n_heads,
        head_k_dim: key_dim / n_heads,
        head_v_dim: value_dim / n_heads,
        gate_rank: cfg.get("gate_low_rank_dim").and_then(Value::as_u64).unwrap_or(16) as u32,
        d_ffn: get_u32(cfg, "intermediate_size")?,
        gate_normalizer: float(cfg, "gate_logit_normalizer", 16.0) as f32,
        norm_eps: float(cfg, "norm_eps", 1e-6) as f32,
        tied_embeddings: get_bool(cfg, "tie_word_embeddings", false)?,
    };
    positive(&[
        ("vocab_size", c.vocab_size),
        ("num_hidden_layers", c.n_layer),
        ("expand_k", c.head_k_dim),
        ("expand_v", c.head_v_dim),
        ("gate_low_rank_dim", c.gate_rank),
        ("intermediate_size", c.d_ffn),
    ])?;
    Ok(c)
}

struct FlaLayout;

impl FamilyLayout for FlaLayout {
    fn hf_name(&self, spec: &TensorSpec) -> String {
        let eddy = eddy_name(spec);
        match spec.pattern {
            "embed.weight" => "model.embeddings.weight".into(),
            "norm_f.weight" => "model.norm.weight".into(),
            "lm_head.weight" => "lm_head.weight".into(),
            _ => {
                let rest = eddy.strip_prefix("layers.").unwrap_or(&eddy);
                let (layer, param) = rest.split_once('.').unwrap_or((rest, ""));
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
            }
        }
    }
}

pub(super) fn plan(cfg: &Value) -> Result<Plan, ConvertError> {
    let c = gla_config(cfg)?;
    let mut specs = Vec::new();
    tensor_schema(&c, &mut |s| specs.push(s));
    Ok(Plan {
        architecture: Architecture::Gla,
        hparams: vec![
            (HParam::VocabSize, c.vocab_size),
            (HParam::DModel, c.d_model),
            (HParam::NLayer, c.n_layer),
            (HParam::NHeads, c.n_heads),
            (HParam::DState, c.head_k_dim),
            (HParam::DInner, c.n_heads * c.head_v_dim),
            (HParam::LoraDecay, c.gate_rank),
            (HParam::DFfn, c.d_ffn),
            (HParam::GateNormalizer, c.gate_normalizer.to_bits()),
            (HParam::NormEps, c.norm_eps.to_bits()),
            (HParam::TiedEmbeddings, c.tied_embeddings as u32),
        ],
        specs,
        layout: Box::new(FlaLayout),
        shape: (c.n_layer, c.d_model, c.vocab_size),
        blobs: vec![],
    })
}
