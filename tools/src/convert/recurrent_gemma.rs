//! RecurrentGemma checkpoints (`RecurrentGemmaForCausalLM`): the block
//! pattern (`block_types`, repeated) becomes the file's layer-kinds table;
//! `1 + w` norms are stored as plain weights, the RG-LRU gate blocks as
//! `[out, in]` rows, and `Λ` as `c = -8 softplus(Λ)`.

use super::{
    eddy_name, get_bool, get_u32, positive, unsupported, Checkpoint, ConvertError, FamilyLayout, Plan,
};
use eddy::arch::{Architecture, HParam};
use eddy::hybrid::DEFAULT_KV_FORMAT;
use eddy::recurrent_gemma::{tensor_schema, RecurrentGemmaConfig};
use eddy::schema::TensorSpec;
use eddy::{BlobKind, KvCacheOptions};
use serde_json::Value;

fn float(cfg: &Value, key: &str) -> Option<f64> {
    cfg.get(key).and_then(Value::as_f64)
}

/// A rotary setting from `rope_parameters` or the top level.
fn rope_value(cfg: &Value, key: &str) -> Option<f64> {
    cfg.get("rope_parameters").and_then(|p| float(p, key)).or_else(|| float(cfg, key))
}

/// Layer kinds (1 = attention) from `block_types`, repeated to the depth.
fn layer_kinds(cfg: &Value, n_layer: u32) -> Result<Vec<u8>, ConvertError> {
    let bad = |why| ConvertError::ConfigValue {
        key: "block_types",
        value: cfg.get("block_types").map(Value::to_string).unwrap_or_default(),
        why,
    };
    let pattern: Vec<u8> = match cfg.get("block_types").and_then(Value::as_array) {
        None => vec![0, 0, 1],
        Some(types) => types
            .iter()
            .map(|t| match t.as_str() {
                Some("recurrent") => Ok(0),
                Some("attention") => Ok(1),
                _ => Err(bad("entries must be \"recurrent\" or \"attention\"")),
            })
            .collect::<Result<_, _>>()?,
    };
    if pattern.is_empty() {
        return Err(bad("must list at least one block type"));
    }
    Ok((0..n_layer as usize).map(|i| pattern[i % pattern.len()]).collect())
}

/// Read RecurrentGemma hyper-parameters from `config.json`.
pub(super) fn recurrent_gemma_config<'k>(
    cfg: &Value,
    kinds: &'k [u8],
) -> Result<RecurrentGemmaConfig<'k>, ConvertError> {
    let (archs, model_type) = super::arch_names(cfg);
    if !(archs.contains(&"RecurrentGemmaForCausalLM")
        || (archs.is_empty() && model_type == "recurrent_gemma"))
    {
        return Err(unsupported(cfg));
    }
    let act = cfg.get("hidden_activation").and_then(Value::as_str).unwrap_or("gelu_pytorch_tanh");
    if act != "gelu_pytorch_tanh" {
        return Err(ConvertError::ConfigValue {
            key: "hidden_activation",
            value: act.into(),
            why: "only gelu_pytorch_tanh is supported",
        });
    }
    let d_model = get_u32(cfg, "hidden_size")?;
    let n_heads = get_u32(cfg, "num_attention_heads")?;
    let n_kv_heads = cfg.get("num_key_value_heads").and_then(Value::as_u64).map_or(n_heads, |v| v as u32);
    let head_dim = d_model / n_heads.max(1);
    let rotary = (head_dim as f64 * rope_value(cfg, "partial_rotary_factor").unwrap_or(0.5)) as u32;
    if n_kv_heads == 0 || n_heads % n_kv_heads != 0 {
        return Err(ConvertError::ConfigValue {
            key: "num_key_value_heads",
            value: n_kv_heads.to_string(),
            why: "must divide num_attention_heads",
        });
    }
    let lru_width = cfg.get("lru_width").and_then(Value::as_u64).map_or(d_model, |v| v as u32);
    if lru_width % n_heads.max(1) != 0 {
        return Err(ConvertError::ConfigValue {
            key: "lru_width",
            value: lru_width.to_string(),
            why: "must be a multiple of num_attention_heads (the RG-LRU gate blocks)",
        });
    }
    let window = get_u32(cfg, "attention_window_size")?;
    let c = RecurrentGemmaConfig {
        vocab_size: get_u32(cfg, "vocab_size")?,
        d_model,
        n_layer: kinds.len() as u32,
        lru_width,
        n_heads,
        n_kv_heads,
        head_dim,
        rotary_dims: rotary & !1,
        rope_theta: rope_value(cfg, "rope_theta").unwrap_or(10_000.0) as f32,
        attention_window: window,
        d_conv: cfg.get("conv1d_width").and_then(Value::as_u64).unwrap_or(4) as u32,
        d_ffn: get_u32(cfg, "intermediate_size")? / 2,
        attention_bias: get_bool(cfg, "attention_bias", false)?,
        norm_eps: float(cfg, "rms_norm_eps").unwrap_or(1e-6) as f32,
        logit_soft_cap: float(cfg, "logits_soft_cap").unwrap_or(0.0) as f32,
        tied_embeddings: get_bool(cfg, "tie_word_embeddings", true)?,
        layer_kinds: kinds,
        kv: KvCacheOptions { format: DEFAULT_KV_FORMAT, sinks: 0, window },
    };
    positive(&[
        ("vocab_size", c.vocab_size),
        ("hidden_size", d_model),
        ("num_attention_heads", n_heads),
        ("attention_window_size", window),
        ("conv1d_width", c.d_conv),
        ("intermediate_size", c.d_ffn),
    ])?;
    Ok(c)
}

struct GriffinLayout {
    heads: usize,
}

impl GriffinLayout {
    /// `(layer, parameter)` of a per-layer eddy name.
    fn split(spec: &TensorSpec) -> (String, String) {
        let eddy = eddy_name(spec);
        let rest = eddy.strip_prefix("layers.").unwrap_or(&eddy);
        let (layer, param) = rest.split_once('.').unwrap_or((rest, ""));
        (layer.to_string(), param.to_string())
    }
}

impl FamilyLayout for GriffinLayout {
    fn hf_name(&self, spec: &TensorSpec) -> String {
        match spec.pattern {
            "embed.weight" => "model.embed_tokens.weight".into(),
            "norm_f.weight" => "model.final_norm.weight".into(),
            "lm_head.weight" => "lm_head.weight".into(),
            _ => {
                let (layer, param) = Self::split(spec);
                let hf = match param.as_str() {
                    "temporal_norm.weight" => "temporal_pre_norm.weight".into(),
                    "channel_norm.weight" => "channel_pre_norm.weight".into(),
                    "conv.weight" => "temporal_block.conv_1d.weight".into(),
                    "conv.bias" => "temporal_block.conv_1d.bias".into(),
                    "input_gate.weight" => "temporal_block.rg_lru.input_gate_weight".into(),
                    "input_gate.bias" => "temporal_block.rg_lru.input_gate_bias".into(),
                    "a_gate.weight" => "temporal_block.rg_lru.recurrent_gate_weight".into(),
                    "a_gate.bias" => "temporal_block.rg_lru.recurrent_gate_bias".into(),
                    "log_a_coef" => "temporal_block.rg_lru.recurrent_param".into(),
                    p if p.starts_with("gate_proj")
                        || p.starts_with("up_proj")
                        || p.starts_with("down_proj") =>
                    {
                        format!("mlp_block.{p}")
                    }
                    p => format!("temporal_block.{p}"),
                };
                format!("model.layers.{layer}.{hf}")
            }
        }
    }

    fn hf_shape(&self, spec: &TensorSpec) -> Vec<usize> {
        let (rows, cols) = (spec.rows as usize, spec.cols as usize);
        match spec.pattern {
            "layers.{i}.conv.weight" => vec![rows, 1, cols],
            "layers.{i}.input_gate.weight" | "layers.{i}.a_gate.weight" => vec![self.heads, cols, cols],
            "layers.{i}.input_gate.bias" | "layers.{i}.a_gate.bias" => vec![self.heads, cols / self.heads],
            _ if rows == 1 => vec![cols],
            _ => vec![rows, cols],
        }
    }

    fn transform(&self, spec: &TensorSpec, values: Vec<f32>) -> Vec<f32> {
        match spec.pattern {
            "layers.{i}.temporal_norm.weight" | "layers.{i}.channel_norm.weight" | "norm_f.weight" => {
                values.into_iter().map(|w| 1.0 + w).collect()
            }
            // log a = -8 r softplus(Λ): store the per-channel coefficient.
            "layers.{i}.log_a_coef" => values
                .into_iter()
                .map(|p| {
                    let softplus = if p > 20.0 { p as f64 } else { (p as f64).exp().ln_1p() };
                    (-8.0 * softplus) as f32
                })
                .collect(),
            // Checkpoint blocks are [head][in][out]; eddy rows are outputs.
            "layers.{i}.input_gate.weight" | "layers.{i}.a_gate.weight" => {
                let b = spec.cols as usize;
                let mut out = vec![0.0; values.len()];
                for h in 0..self.heads {
                    for i in 0..b {
                        for o in 0..b {
                            out[h * b * b + o * b + i] = values[h * b * b + i * b + o];
                        }
                    }
                }
                out
            }
            _ => values,
        }
    }
}

pub(super) fn plan(cfg: &Value, _ckpt: &Checkpoint) -> Result<Plan, ConvertError> {
    let kinds = layer_kinds(cfg, get_u32(cfg, "num_hidden_layers")?)?;
    let c = recurrent_gemma_config(cfg, &kinds)?;
    let mut specs = Vec::new();
    tensor_schema(&c, &mut |s| specs.push(s));
    let hparams = vec![
        (HParam::VocabSize, c.vocab_size),
        (HParam::DModel, c.d_model),
        (HParam::NLayer, c.n_layer),
        (HParam::DInner, c.lru_width),
        (HParam::NHeads, c.n_heads),
        (HParam::NKvHeads, c.n_kv_heads),
        (HParam::HeadDim, c.head_dim),
        (HParam::RotaryDims, c.rotary_dims),
        (HParam::RopeTheta, c.rope_theta.to_bits()),
        (HParam::AttentionWindow, c.attention_window),
        (HParam::DConv, c.d_conv),
        (HParam::DFfn, c.d_ffn),
        (HParam::ProjBias, c.attention_bias as u32),
        (HParam::NormEps, c.norm_eps.to_bits()),
        (HParam::LogitSoftCap, c.logit_soft_cap.to_bits()),
        (HParam::TiedEmbeddings, c.tied_embeddings as u32),
    ];
    Ok(Plan {
        architecture: Architecture::RecurrentGemma,
        hparams,
        specs,
        layout: Box::new(GriffinLayout { heads: c.n_heads as usize }),
        shape: (c.n_layer, c.d_model, c.vocab_size),
        blobs: vec![(BlobKind::LayerKinds, kinds.clone())],
    })
}
