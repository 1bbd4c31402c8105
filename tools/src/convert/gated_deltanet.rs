//! Gated DeltaNet models in Qwen3-Next's layout (`Qwen3NextForCausalLM`
//! whose layers are all `linear_attention` with dense MLPs). Full-attention
//! layers and MoE MLPs (the hybrid Qwen3-Next) are not supported yet.

use super::{eddy_name, get_bool, get_u32, positive, unsupported, ConvertError, FamilyLayout, Plan};
use eddy::arch::{Architecture, HParam};
use eddy::gated_deltanet::{tensor_schema, GatedDeltaNetConfig};
use eddy::schema::TensorSpec;
use serde_json::Value;

/// Read Gated DeltaNet hyper-parameters from a Qwen3-Next `config.json`.
pub fn gated_deltanet_config(cfg: &Value) -> Result<GatedDeltaNetConfig, ConvertError> {
    let (archs, model_type) = super::arch_names(cfg);
    if !(archs.contains(&"Qwen3NextForCausalLM") || (archs.is_empty() && model_type == "qwen3_next")) {
        return Err(unsupported(cfg));
    }
    let n_layer = get_u32(cfg, "num_hidden_layers")?;
    let types: Vec<&str> = cfg
        .get("layer_types")
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    if types.len() != n_layer as usize || types.iter().any(|t| *t != "linear_attention") {
        return Err(ConvertError::ConfigValue {
            key: "layer_types",
            value: format!("{types:?}"),
            why: "only all-`linear_attention` (Gated DeltaNet) stacks are supported; \
                  full-attention layers are not implemented yet",
        });
    }
    let experts = cfg.get("num_experts").and_then(Value::as_u64).unwrap_or(0);
    let dense: Vec<u64> = cfg
        .get("mlp_only_layers")
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_u64).collect())
        .unwrap_or_default();
    if experts > 0 && (0..n_layer as u64).any(|l| !dense.contains(&l)) {
        return Err(ConvertError::ConfigValue {
            key: "num_experts",
            value: experts.to_string(),
            why: "mixture-of-experts MLPs are not supported; use num_experts 0 or list every layer in mlp_only_layers",
        });
    }
    let act = cfg.get("hidden_act").and_then(Value::as_str).unwrap_or("silu");
    if act != "silu" {
        return Err(ConvertError::ConfigValue {
            key: "hidden_act",
            value: act.into(),
            why: "only silu is supported",
        });
    }
    let c = GatedDeltaNetConfig {
        vocab_size: get_u32(cfg, "vocab_size")?,
        d_model: get_u32(cfg, "hidden_size")?,
        n_layer,
        n_v_heads: get_u32(cfg, "linear_num_value_heads")?,
        n_k_heads: get_u32(cfg, "linear_num_key_heads")?,
        head_k_dim: get_u32(cfg, "linear_key_head_dim")?,
        head_v_dim: get_u32(cfg, "linear_value_head_dim")?,
        d_conv: get_u32(cfg, "linear_conv_kernel_dim")?,
        d_ffn: get_u32(cfg, "intermediate_size")?,
        norm_eps: cfg.get("rms_norm_eps").and_then(Value::as_f64).unwrap_or(1e-6) as f32,
        tied_embeddings: get_bool(cfg, "tie_word_embeddings", false)?,
    };
    positive(&[
        ("vocab_size", c.vocab_size),
        ("hidden_size", c.d_model),
        ("num_hidden_layers", c.n_layer),
        ("linear_num_value_heads", c.n_v_heads),
        ("linear_num_key_heads", c.n_k_heads),
        ("linear_key_head_dim", c.head_k_dim),
        ("linear_value_head_dim", c.head_v_dim),
        ("linear_conv_kernel_dim", c.d_conv),
        ("intermediate_size", c.d_ffn),
    ])?;
    if c.n_v_heads % c.n_k_heads != 0 {
        return Err(ConvertError::ConfigValue {
            key: "linear_num_key_heads",
            value: c.n_k_heads.to_string(),
            why: "must divide linear_num_value_heads",
        });
    }
    Ok(c)
}

struct Qwen3NextLayout {
    config: GatedDeltaNetConfig,
}

/// Rows of `values` (`cols` wide) grouped per key head as blocks of the
/// given widths, regrouped so that each block kind is contiguous over all
/// heads (`[q_0 k_0 v_0 z_0 q_1 ...]` becomes `[q_0 q_1 .. k_0 k_1 ..]`).
fn regroup_rows(values: &[f32], cols: usize, heads: usize, widths: &[usize]) -> Vec<f32> {
    let per_head: usize = widths.iter().sum();
    let mut out = Vec::with_capacity(values.len());
    for (block, &width) in widths.iter().enumerate() {
        let offset: usize = widths[..block].iter().sum();
        for h in 0..heads {
            let first = h * per_head + offset;
            out.extend_from_slice(&values[first * cols..(first + width) * cols]);
        }
    }
    out
}

impl FamilyLayout for Qwen3NextLayout {
    fn hf_name(&self, spec: &TensorSpec) -> String {
        let eddy = eddy_name(spec);
        match spec.pattern {
            "embed.weight" => "model.embed_tokens.weight".into(),
            "norm_f.weight" => "model.norm.weight".into(),
            "lm_head.weight" => "lm_head.weight".into(),
            _ => {
                let rest = eddy.strip_prefix("layers.").unwrap_or(&eddy);
                let (layer, param) = rest.split_once('.').unwrap_or((rest, ""));
                let hf = match param {
                    "norm.weight" => "input_layernorm.weight".to_string(),
                    "mlp_norm.weight" => "post_attention_layernorm.weight".to_string(),
                    "A" => "linear_attn.A_log".to_string(),
                    "gate_norm.weight" => "linear_attn.norm.weight".to_string(),
                    p if p.ends_with("_proj.weight") && !p.starts_with("in_") && !p.starts_with("out_") => {
                        format!("mlp.{p}")
                    }
                    p => format!("linear_attn.{p}"),
                };
                format!("model.layers.{layer}.{hf}")
            }
        }
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

    fn transform(&self, spec: &TensorSpec, values: Vec<f32>) -> Vec<f32> {
        let c = &self.config;
        let (nk, hk, hv) = (c.n_k_heads as usize, c.head_k_dim as usize, c.head_v_dim as usize);
        let r = (c.n_v_heads / c.n_k_heads) as usize;
        let cols = spec.cols as usize;
        match spec.pattern {
            // Qwen3-Next's RMSNorm scales by (1 + w): store the product's factor.
            "layers.{i}.norm.weight" | "layers.{i}.mlp_norm.weight" | "norm_f.weight" => {
                values.iter().map(|w| 1.0 + w).collect()
            }
            "layers.{i}.A" => values.iter().map(|v| -v.exp()).collect(),
            "layers.{i}.in_proj_qkvz.weight" => regroup_rows(&values, cols, nk, &[hk, hk, r * hv, r * hv]),
            "layers.{i}.in_proj_ba.weight" => regroup_rows(&values, cols, nk, &[r, r]),
            _ => values,
        }
    }
}

pub(super) fn plan(cfg: &Value) -> Result<Plan, ConvertError> {
    let c = gated_deltanet_config(cfg)?;
    let mut specs = Vec::new();
    tensor_schema(&c, &mut |s| specs.push(s));
    Ok(Plan {
        architecture: Architecture::GatedDeltaNet,
        hparams: vec![
            (HParam::VocabSize, c.vocab_size),
            (HParam::DModel, c.d_model),
            (HParam::NLayer, c.n_layer),
            (HParam::NHeads, c.n_v_heads),
            (HParam::NGroups, c.n_k_heads),
            (HParam::DState, c.head_k_dim),
            (HParam::DInner, c.n_v_heads * c.head_v_dim),
            (HParam::DConv, c.d_conv),
            (HParam::DFfn, c.d_ffn),
            (HParam::NormEps, c.norm_eps.to_bits()),
            (HParam::TiedEmbeddings, c.tied_embeddings as u32),
        ],
        specs,
        layout: Box::new(Qwen3NextLayout { config: c }),
        shape: (c.n_layer, c.d_model, c.vocab_size),
        blobs: vec![],
    })
}
