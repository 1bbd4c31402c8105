//! RecurrentGemma checkpoints (`RecurrentGemmaForCausalLM`): the block
//! pattern (`block_types`, repeated) becomes the file's layer-kinds table;
//! `1 + w` norms are stored as plain weights, the RG-LRU gate blocks as
//! `[out, in]` rows, and `Λ` as `c = -8 softplus(Λ)`.

use super::common::{
    conv_or_plain_shape, dims, epsilon, float, hparams, kv_heads, one_plus, positive, require_activation,
    require_family, top_or_layer, u32_or,
};
use super::{get_bool, get_u32, Checkpoint, ConvertError, FamilyLayout, Plan};
use eddy::arch::Architecture;
use eddy::hybrid::DEFAULT_KV_FORMAT;
use eddy::recurrent_gemma::{tensor_schema, RecurrentGemmaConfig};
use eddy::schema::TensorSpec;
use eddy::{BlobKind, KvCacheOptions};
use serde_json::Value;

/// A rotary setting from `rope_parameters` or the top level.
fn rope_value(cfg: &Value, key: &str) -> Option<f64> {
    [cfg.get("rope_parameters"), Some(cfg)].into_iter().flatten().find_map(|c| c.get(key)?.as_f64())
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
    require_family(cfg, "RecurrentGemmaForCausalLM", "recurrent_gemma")?;
    let gelu = "gelu_pytorch_tanh";
    require_activation(cfg, "hidden_activation", gelu, &[gelu], "only gelu_pytorch_tanh is supported")?;
    let [vocab_size, d_model, n_heads, window] =
        dims(cfg, ["vocab_size", "hidden_size", "num_attention_heads", "attention_window_size"])?;
    let n_kv_heads = kv_heads(cfg, n_heads)?;
    let head_dim = d_model / n_heads;
    let rotary = (head_dim as f64 * rope_value(cfg, "partial_rotary_factor").unwrap_or(0.5)) as u32;
    let lru_width = u32_or(cfg, "lru_width", d_model);
    if lru_width % n_heads != 0 {
        return Err(ConvertError::ConfigValue {
            key: "lru_width",
            value: lru_width.to_string(),
            why: "must be a multiple of num_attention_heads (the RG-LRU gate blocks)",
        });
    }
    let d_conv = u32_or(cfg, "conv1d_width", 4);
    let d_ffn = get_u32(cfg, "intermediate_size")? / 2;
    positive(&[("conv1d_width", d_conv), ("intermediate_size", d_ffn)])?;
    Ok(RecurrentGemmaConfig {
        vocab_size,
        d_model,
        n_layer: kinds.len() as u32,
        lru_width,
        n_heads,
        n_kv_heads,
        head_dim,
        rotary_dims: rotary & !1,
        rope_theta: rope_value(cfg, "rope_theta").unwrap_or(10_000.0) as f32,
        attention_window: window,
        d_conv,
        d_ffn,
        attention_bias: get_bool(cfg, "attention_bias", false)?,
        norm_eps: epsilon(cfg, "rms_norm_eps", 1e-6)?,
        logit_soft_cap: match cfg.get("logits_soft_cap") {
            Some(Value::Null) => 0.0, // no cap
            _ => float(cfg, "logits_soft_cap", 0.0)? as f32,
        },
        tied_embeddings: get_bool(cfg, "tie_word_embeddings", true)?,
        layer_kinds: kinds,
        kv: KvCacheOptions { format: DEFAULT_KV_FORMAT, sinks: 0, window },
        kv_distance_limit: None,
    })
}

struct GriffinLayout {
    heads: usize,
}

impl FamilyLayout for GriffinLayout {
    fn hf_name(&self, spec: &TensorSpec) -> String {
        top_or_layer(spec, "model.embed_tokens.weight", "model.final_norm.weight", |layer, param| {
            let hf = match param {
                "temporal_norm.weight" => "temporal_pre_norm.weight".into(),
                "channel_norm.weight" => "channel_pre_norm.weight".into(),
                "conv.weight" => "temporal_block.conv_1d.weight".into(),
                "conv.bias" => "temporal_block.conv_1d.bias".into(),
                "input_gate.weight" => "temporal_block.rg_lru.input_gate_weight".into(),
                "input_gate.bias" => "temporal_block.rg_lru.input_gate_bias".into(),
                "a_gate.weight" => "temporal_block.rg_lru.recurrent_gate_weight".into(),
                "a_gate.bias" => "temporal_block.rg_lru.recurrent_gate_bias".into(),
                "log_a_coef" => "temporal_block.rg_lru.recurrent_param".into(),
                p if p.starts_with("gate_proj") || p.starts_with("up_proj") || p.starts_with("down_proj") => {
                    format!("mlp_block.{p}")
                }
                p => format!("temporal_block.{p}"),
            };
            format!("model.layers.{layer}.{hf}")
        })
    }

    fn hf_shape(&self, spec: &TensorSpec) -> Vec<usize> {
        let cols = spec.cols as usize;
        match spec.pattern {
            "layers.{i}.input_gate.weight" | "layers.{i}.a_gate.weight" => vec![self.heads, cols, cols],
            "layers.{i}.input_gate.bias" | "layers.{i}.a_gate.bias" => vec![self.heads, cols / self.heads],
            p => conv_or_plain_shape(spec, p == "layers.{i}.conv.weight"),
        }
    }

    fn transform(&self, spec: &TensorSpec, values: Vec<f32>) -> Vec<f32> {
        match spec.pattern {
            "layers.{i}.temporal_norm.weight" | "layers.{i}.channel_norm.weight" | "norm_f.weight" => {
                one_plus(values)
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
    let hparams = hparams! {
        VocabSize = c.vocab_size, DModel = c.d_model, NLayer = c.n_layer, DInner = c.lru_width,
        NHeads = c.n_heads, NKvHeads = c.n_kv_heads, HeadDim = c.head_dim, RotaryDims = c.rotary_dims,
        RopeTheta = c.rope_theta, AttentionWindow = c.attention_window, DConv = c.d_conv, DFfn = c.d_ffn,
        ProjBias = c.attention_bias, NormEps = c.norm_eps, LogitSoftCap = c.logit_soft_cap,
        TiedEmbeddings = c.tied_embeddings,
    };
    let shape = (c.n_layer, c.d_model, c.vocab_size);
    let layout = GriffinLayout { heads: c.n_heads as usize };
    Ok(Plan::new(Architecture::RecurrentGemma, hparams, |visit| tensor_schema(&c, visit), layout, shape)
        .with_blob(BlobKind::LayerKinds, kinds.clone()))
}
