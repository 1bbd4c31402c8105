//! LFM2 checkpoints (`Lfm2ForCausalLM`): convolution and attention layers
//! as `layer_types` (or `full_attn_idxs`) lists them, recorded in the
//! file's layer-kinds table.

use super::{
    eddy_name, get_bool, get_u32, positive, unsupported, Checkpoint, ConvertError, FamilyLayout, Plan,
};
use eddy::arch::{Architecture, HParam};
use eddy::hybrid::{DEFAULT_KV_FORMAT, DEFAULT_SINKS, DEFAULT_WINDOW};
use eddy::lfm2::{tensor_schema, Lfm2Config};
use eddy::schema::TensorSpec;
use eddy::{BlobKind, KvCacheOptions};
use serde_json::Value;

/// Layer kinds (1 = attention) from `layer_types` or `full_attn_idxs`.
fn layer_kinds(cfg: &Value, n_layer: u32) -> Result<Vec<u8>, ConvertError> {
    let bad = |key: &'static str, why: &'static str| ConvertError::ConfigValue {
        key,
        value: cfg.get(key).map(Value::to_string).unwrap_or_default(),
        why,
    };
    if let Some(types) = cfg.get("layer_types").and_then(Value::as_array) {
        if types.len() != n_layer as usize {
            return Err(bad("layer_types", "must list one type per layer"));
        }
        return types
            .iter()
            .map(|t| match t.as_str() {
                Some("conv") => Ok(0),
                Some("full_attention") => Ok(1),
                _ => Err(bad("layer_types", "entries must be \"conv\" or \"full_attention\"")),
            })
            .collect();
    }
    let mut kinds = vec![0u8; n_layer as usize];
    match cfg.get("full_attn_idxs").and_then(Value::as_array) {
        Some(idxs) => {
            for i in idxs {
                let i = i
                    .as_u64()
                    .filter(|&i| i < n_layer as u64)
                    .ok_or(bad("full_attn_idxs", "layer index out of range"))?;
                kinds[i as usize] = 1;
            }
        }
        None => kinds.fill(1),
    }
    Ok(kinds)
}

/// Rotary base: `rope_parameters.rope_theta` (default rotary only) or
/// the older top-level `rope_theta`.
fn rope_theta(cfg: &Value) -> Result<f32, ConvertError> {
    if let Some(p) = cfg.get("rope_parameters").filter(|p| !p.is_null()) {
        let kind = p.get("rope_type").and_then(Value::as_str).unwrap_or("default");
        if kind != "default" {
            return Err(ConvertError::ConfigValue {
                key: "rope_parameters",
                value: p.to_string(),
                why: "only the default rotary embedding is supported",
            });
        }
        if let Some(t) = p.get("rope_theta").and_then(Value::as_f64) {
            return Ok(t as f32);
        }
    }
    Ok(cfg.get("rope_theta").and_then(Value::as_f64).unwrap_or(1_000_000.0) as f32)
}

/// Read LFM2 hyper-parameters; the MLP width comes from the checkpoint
/// (`block_auto_adjust_ff_dim` rewrites `intermediate_size`).
pub(super) fn lfm2_config<'k>(
    cfg: &Value,
    ckpt: &Checkpoint,
    kinds: &'k [u8],
) -> Result<Lfm2Config<'k>, ConvertError> {
    let (archs, model_type) = super::arch_names(cfg);
    if !(archs.contains(&"Lfm2ForCausalLM") || (archs.is_empty() && model_type == "lfm2")) {
        return Err(unsupported(cfg));
    }
    let d_model = get_u32(cfg, "hidden_size")?;
    let n_heads = get_u32(cfg, "num_attention_heads")?;
    let n_kv_heads = cfg.get("num_key_value_heads").and_then(Value::as_u64).map_or(n_heads, |v| v as u32);
    let head_dim = cfg.get("head_dim").and_then(Value::as_u64).map_or(d_model / n_heads.max(1), |v| v as u32);
    if n_kv_heads == 0 || n_heads % n_kv_heads != 0 {
        return Err(ConvertError::ConfigValue {
            key: "num_key_value_heads",
            value: n_kv_heads.to_string(),
            why: "must divide num_attention_heads",
        });
    }
    let w1 = "model.layers.0.feed_forward.w1.weight";
    let d_ffn = match ckpt.shape(w1).as_deref() {
        Some([rows, _]) => *rows as u32,
        _ => {
            return Err(ConvertError::MissingTensor {
                hf_name: w1.into(),
                eddy_name: "layers.0.gate_proj.weight".into(),
            })
        }
    };
    let c = Lfm2Config {
        vocab_size: get_u32(cfg, "vocab_size")?,
        d_model,
        n_layer: kinds.len() as u32,
        d_ffn,
        d_conv: cfg.get("conv_L_cache").and_then(Value::as_u64).unwrap_or(3) as u32,
        conv_bias: get_bool(cfg, "conv_bias", false)?,
        norm_eps: cfg.get("norm_eps").and_then(Value::as_f64).unwrap_or(1e-5) as f32,
        tied_embeddings: get_bool(cfg, "tie_word_embeddings", true)? && get_bool(cfg, "tie_embedding", true)?,
        n_heads,
        n_kv_heads,
        head_dim,
        rotary_dims: head_dim,
        rope_theta: rope_theta(cfg)?,
        layer_kinds: kinds,
        kv: KvCacheOptions { format: DEFAULT_KV_FORMAT, sinks: DEFAULT_SINKS, window: DEFAULT_WINDOW },
    };
    positive(&[
        ("vocab_size", c.vocab_size),
        ("hidden_size", c.d_model),
        ("num_attention_heads", n_heads),
        ("head_dim", head_dim),
        ("conv_L_cache", c.d_conv),
        ("intermediate_size", c.d_ffn),
    ])?;
    Ok(c)
}

struct Lfm2Layout;

impl FamilyLayout for Lfm2Layout {
    fn hf_name(&self, spec: &TensorSpec) -> String {
        let eddy = eddy_name(spec);
        match spec.pattern {
            "embed.weight" => "model.embed_tokens.weight".into(),
            "norm_f.weight" => "model.embedding_norm.weight".into(),
            "lm_head.weight" => "lm_head.weight".into(),
            _ => {
                let rest = eddy.strip_prefix("layers.").unwrap_or(&eddy);
                let (layer, param) = rest.split_once('.').unwrap_or((rest, ""));
                let hf = match param {
                    "q_proj.weight" | "k_proj.weight" | "v_proj.weight" => format!("self_attn.{param}"),
                    "o_proj.weight" => "self_attn.out_proj.weight".into(),
                    "q_norm.weight" => "self_attn.q_layernorm.weight".into(),
                    "k_norm.weight" => "self_attn.k_layernorm.weight".into(),
                    "in_proj.weight" | "in_proj.bias" | "out_proj.weight" | "out_proj.bias" => {
                        format!("conv.{param}")
                    }
                    "conv.weight" | "conv.bias" => format!("conv.{param}"),
                    "gate_proj.weight" => "feed_forward.w1.weight".into(),
                    "up_proj.weight" => "feed_forward.w3.weight".into(),
                    "down_proj.weight" => "feed_forward.w2.weight".into(),
                    other => other.to_string(),
                };
                format!("model.layers.{layer}.{hf}")
            }
        }
    }

    fn hf_shape(&self, spec: &TensorSpec) -> Vec<usize> {
        match spec.pattern {
            // nn.Conv1d weight: [channels, 1, width].
            "layers.{i}.conv.weight" => vec![spec.rows as usize, 1, spec.cols as usize],
            _ if spec.rows == 1 => vec![spec.cols as usize],
            _ => vec![spec.rows as usize, spec.cols as usize],
        }
    }
}

pub(super) fn plan(cfg: &Value, ckpt: &Checkpoint) -> Result<Plan, ConvertError> {
    let kinds = layer_kinds(cfg, get_u32(cfg, "num_hidden_layers")?)?;
    let c = lfm2_config(cfg, ckpt, &kinds)?;
    let mut specs = Vec::new();
    tensor_schema(&c, &mut |s| specs.push(s));
    let hparams = vec![
        (HParam::VocabSize, c.vocab_size),
        (HParam::DModel, c.d_model),
        (HParam::NLayer, c.n_layer),
        (HParam::DFfn, c.d_ffn),
        (HParam::DConv, c.d_conv),
        (HParam::ConvBias, c.conv_bias as u32),
        (HParam::NHeads, c.n_heads),
        (HParam::NKvHeads, c.n_kv_heads),
        (HParam::HeadDim, c.head_dim),
        (HParam::RopeTheta, c.rope_theta.to_bits()),
        (HParam::NormEps, c.norm_eps.to_bits()),
        (HParam::TiedEmbeddings, c.tied_embeddings as u32),
    ];
    Ok(Plan {
        architecture: Architecture::Lfm2,
        hparams,
        specs,
        layout: Box::new(Lfm2Layout),
        shape: (c.n_layer, c.d_model, c.vocab_size),
        blobs: vec![(BlobKind::LayerKinds, kinds.clone())],
    })
}
