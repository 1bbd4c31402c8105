//! LFM2 checkpoints (`Lfm2ForCausalLM`): convolution and attention layers
//! as `layer_types` (or `full_attn_idxs`) lists them, recorded in the
//! file's layer-kinds table.

use super::common::{
    conv_or_plain_shape, dims, epsilon, hparams, kv_heads, positive, require_family, top_or_layer, u32_or,
};
use super::{get_bool, get_u32, Checkpoint, ConvertError, FamilyLayout, Plan};
use eddy::arch::Architecture;
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
    require_family(cfg, "Lfm2ForCausalLM", "lfm2")?;
    let [vocab_size, d_model, n_heads] = dims(cfg, ["vocab_size", "hidden_size", "num_attention_heads"])?;
    let n_kv_heads = kv_heads(cfg, n_heads)?;
    let head_dim = u32_or(cfg, "head_dim", d_model / n_heads);
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
    let d_conv = u32_or(cfg, "conv_L_cache", 3);
    positive(&[("head_dim", head_dim), ("conv_L_cache", d_conv), ("intermediate_size", d_ffn)])?;
    Ok(Lfm2Config {
        vocab_size,
        d_model,
        n_layer: kinds.len() as u32,
        d_ffn,
        d_conv,
        conv_bias: get_bool(cfg, "conv_bias", false)?,
        norm_eps: epsilon(cfg, "norm_eps", 1e-5)?,
        tied_embeddings: get_bool(cfg, "tie_word_embeddings", true)? && get_bool(cfg, "tie_embedding", true)?,
        n_heads,
        n_kv_heads,
        head_dim,
        rotary_dims: head_dim,
        rope_theta: rope_theta(cfg)?,
        layer_kinds: kinds,
        kv: KvCacheOptions { format: DEFAULT_KV_FORMAT, sinks: DEFAULT_SINKS, window: DEFAULT_WINDOW },
        kv_distance_limit: None,
    })
}

struct Lfm2Layout;

impl FamilyLayout for Lfm2Layout {
    fn hf_name(&self, spec: &TensorSpec) -> String {
        top_or_layer(spec, "model.embed_tokens.weight", "model.embedding_norm.weight", |layer, param| {
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
        })
    }

    fn hf_shape(&self, spec: &TensorSpec) -> Vec<usize> {
        // nn.Conv1d weight: [channels, 1, width].
        conv_or_plain_shape(spec, spec.pattern == "layers.{i}.conv.weight")
    }
}

pub(super) fn plan(cfg: &Value, ckpt: &Checkpoint) -> Result<Plan, ConvertError> {
    let kinds = layer_kinds(cfg, get_u32(cfg, "num_hidden_layers")?)?;
    let c = lfm2_config(cfg, ckpt, &kinds)?;
    let hparams = hparams! {
        VocabSize = c.vocab_size, DModel = c.d_model, NLayer = c.n_layer, DFfn = c.d_ffn, DConv = c.d_conv,
        ConvBias = c.conv_bias, NHeads = c.n_heads, NKvHeads = c.n_kv_heads, HeadDim = c.head_dim,
        RopeTheta = c.rope_theta, NormEps = c.norm_eps, TiedEmbeddings = c.tied_embeddings,
    };
    let shape = (c.n_layer, c.d_model, c.vocab_size);
    Ok(Plan::new(Architecture::Lfm2, hparams, |visit| tensor_schema(&c, visit), Lfm2Layout, shape)
        .with_blob(BlobKind::LayerKinds, kinds.clone()))
}
