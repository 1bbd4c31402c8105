//! Qwen3-Next as released (`Qwen3NextForCausalLM` with `full_attention`
//! layers and sparse mixture-of-experts MLPs): the Gated DeltaNet family
//! with a layer-kinds table. The converter splits each attention layer's
//! `q_proj` (per head: queries, then the output gate) into `q_proj` and
//! `gate_proj`, stores the `1 + w` of every Qwen3-Next RMSNorm as a plain
//! weight, and stacks the experts of a layer into two matrices (per expert
//! gate rows then up rows; down rows) read from the per-expert tensors.

use super::common::{hparams, one_plus, plain_shape, top_or_layer};
use super::gated_deltanet::{layer_types, regroup_rows, Qwen3NextLayout};
use super::{get_bool, get_u32, ConvertError, FamilyLayout, Plan};
use eddy::arch::Architecture;
use eddy::gated_deltanet::qwen3_next::{KIND_ATTENTION, KIND_EXPERTS};
use eddy::gated_deltanet::{tensor_schema, GatedDeltaNetConfig, Qwen3NextLayers};
use eddy::hybrid::{DEFAULT_KV_FORMAT, DEFAULT_SINKS, DEFAULT_WINDOW};
use eddy::moe::MoeShape;
use eddy::schema::TensorSpec;
use eddy::{BlobKind, KvCacheOptions};
use serde_json::Value;

fn bad(key: &'static str, value: String, why: &'static str) -> ConvertError {
    ConvertError::ConfigValue { key, value, why }
}

/// Per layer: [`KIND_ATTENTION`] for `full_attention`, [`KIND_EXPERTS`]
/// when its MLP is sparse (as transformers decides: experts exist, the
/// layer is not in `mlp_only_layers` and `(i + 1) % decoder_sparse_step
/// == 0`).
fn layer_kinds(cfg: &Value, n_layer: u32, experts: u32) -> Result<Vec<u8>, ConvertError> {
    let types = layer_types(cfg);
    if types.len() != n_layer as usize {
        return Err(bad("layer_types", format!("{types:?}"), "must list one type per layer"));
    }
    let dense: Vec<u64> = cfg
        .get("mlp_only_layers")
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_u64).collect())
        .unwrap_or_default();
    let step = cfg.get("decoder_sparse_step").and_then(Value::as_u64).unwrap_or(1);
    if step == 0 {
        return Err(bad("decoder_sparse_step", "0".into(), "must be at least 1"));
    }
    types
        .iter()
        .enumerate()
        .map(|(i, t)| {
            let mixer = match *t {
                "linear_attention" => 0,
                "full_attention" => KIND_ATTENTION,
                _ => {
                    return Err(bad(
                        "layer_types",
                        format!("{t:?}"),
                        "entries must be \"linear_attention\" or \"full_attention\"",
                    ))
                }
            };
            let sparse = experts > 0 && !dense.contains(&(i as u64)) && (i as u64 + 1) % step == 0;
            Ok(mixer | if sparse { KIND_EXPERTS } else { 0 })
        })
        .collect()
}

/// The rotary dimensions and base of `rope_parameters` (default rotary
/// only; `partial_rotary_factor` of the head, 0.25 unless given).
fn rotary(cfg: &Value, head_dim: u32) -> Result<(u32, f32), ConvertError> {
    let p = cfg.get("rope_parameters").filter(|p| !p.is_null()).unwrap_or(cfg);
    let kind = p.get("rope_type").and_then(Value::as_str).unwrap_or("default");
    if kind != "default" {
        return Err(bad("rope_parameters", p.to_string(), "only the default rotary embedding is supported"));
    }
    let theta = p.get("rope_theta").or(cfg.get("rope_theta")).and_then(Value::as_f64).unwrap_or(10_000.0);
    let factor = p
        .get("partial_rotary_factor")
        .or(cfg.get("partial_rotary_factor"))
        .and_then(Value::as_f64)
        .unwrap_or(0.25);
    let exact = head_dim as f64 * factor;
    let dims = exact.round();
    if !((exact - dims).abs() < 1e-6 && dims >= 2.0 && dims <= head_dim as f64 && dims as u32 % 2 == 0) {
        return Err(bad(
            "partial_rotary_factor",
            factor.to_string(),
            "head_dim * partial_rotary_factor must be an even number of values within the head",
        ));
    }
    Ok((dims as u32, theta as f32))
}

/// The mixture-of-experts shape of `cfg` (`None`: `num_experts` 0).
fn moe_shape(cfg: &Value) -> Result<Option<MoeShape>, ConvertError> {
    let experts = cfg.get("num_experts").and_then(Value::as_u64).unwrap_or(0) as u32;
    if experts == 0 {
        return Ok(None);
    }
    let top_k = get_u32(cfg, "num_experts_per_tok")?;
    if top_k == 0 || top_k > experts {
        return Err(bad("num_experts_per_tok", top_k.to_string(), "must be between 1 and num_experts"));
    }
    Ok(Some(MoeShape {
        experts,
        top_k,
        d_expert: get_u32(cfg, "moe_intermediate_size")?,
        d_shared: cfg.get("shared_expert_intermediate_size").and_then(Value::as_u64).unwrap_or(0) as u32,
        norm_top_k: get_bool(cfg, "norm_topk_prob", true)?,
    }))
}

/// The checkpoint layout of Qwen3-Next with attention layers and experts.
struct HybridLayout {
    delta: Qwen3NextLayout,
    /// Attention heads and head width.
    heads: (usize, usize),
    /// Routed experts.
    experts: usize,
}

impl FamilyLayout for HybridLayout {
    fn hf_name(&self, spec: &TensorSpec) -> String {
        top_or_layer(spec, "model.embed_tokens.weight", "model.norm.weight", |layer, param| {
            let prefix = format!("model.layers.{layer}");
            match param {
                "attn.gate_proj.weight" => format!("{prefix}.self_attn.q_proj.weight"),
                p if p.starts_with("attn.") => format!("{prefix}.self_attn.{}", &p[5..]),
                "moe.router.weight" => format!("{prefix}.mlp.gate.weight"),
                "moe.shared_expert_gate.weight" => format!("{prefix}.mlp.shared_expert_gate.weight"),
                p if p.starts_with("moe.shared_") => format!("{prefix}.mlp.shared_expert.{}", &p[11..]),
                // Stacked experts: the first part names them in messages.
                p if p.starts_with("moe.experts_") => self.hf_parts(spec).swap_remove(0),
                _ => self.delta.hf_name(spec),
            }
        })
    }

    fn hf_parts(&self, spec: &TensorSpec) -> Vec<String> {
        let layer = spec.layer.unwrap_or(0);
        let expert = |e: usize, p: &str| format!("model.layers.{layer}.mlp.experts.{e}.{p}.weight");
        match spec.pattern {
            "layers.{i}.moe.experts_gate_up.weight" => {
                (0..self.experts).flat_map(|e| [expert(e, "gate_proj"), expert(e, "up_proj")]).collect()
            }
            "layers.{i}.moe.experts_down.weight" => {
                (0..self.experts).map(|e| expert(e, "down_proj")).collect()
            }
            _ => vec![self.hf_name(spec)],
        }
    }

    fn hf_shape(&self, spec: &TensorSpec) -> Vec<usize> {
        let (rows, cols) = (spec.rows as usize, spec.cols as usize);
        match spec.pattern {
            "layers.{i}.attn.q_proj.weight" | "layers.{i}.attn.gate_proj.weight" => vec![2 * rows, cols],
            "layers.{i}.moe.experts_gate_up.weight" => vec![rows / (2 * self.experts.max(1)), cols],
            "layers.{i}.moe.experts_down.weight" => vec![rows / self.experts.max(1), cols],
            "layers.{i}.moe.shared_expert_gate.weight" => vec![1, cols],
            p if p.starts_with("layers.{i}.attn.") || p.starts_with("layers.{i}.moe.") => plain_shape(spec),
            _ => self.delta.hf_shape(spec),
        }
    }

    fn transform(&self, spec: &TensorSpec, values: Vec<f32>) -> Vec<f32> {
        let (n_heads, hd) = self.heads;
        let cols = spec.cols as usize;
        match spec.pattern {
            // Per head `[queries | gate]` rows: all queries, then all gates.
            "layers.{i}.attn.q_proj.weight" => {
                regroup_rows(&values, cols, n_heads, &[hd, hd])[..n_heads * hd * cols].to_vec()
            }
            "layers.{i}.attn.gate_proj.weight" => {
                regroup_rows(&values, cols, n_heads, &[hd, hd])[n_heads * hd * cols..].to_vec()
            }
            "layers.{i}.attn.q_norm.weight" | "layers.{i}.attn.k_norm.weight" => one_plus(values),
            p if p.starts_with("layers.{i}.attn.") || p.starts_with("layers.{i}.moe.") => values,
            _ => self.delta.transform(spec, values),
        }
    }
}

/// The plan of a Qwen3-Next checkpoint with attention layers or experts,
/// on top of its Gated DeltaNet hyper-parameters `c`.
pub(super) fn plan(cfg: &Value, c: GatedDeltaNetConfig<'static>) -> Result<Plan, ConvertError> {
    if get_bool(cfg, "attention_bias", false)? {
        return Err(bad("attention_bias", "true".into(), "attention biases are not supported"));
    }
    let moe = moe_shape(cfg)?;
    let kinds = layer_kinds(cfg, c.n_layer, moe.map_or(0, |m| m.experts))?;
    let n_heads = get_u32(cfg, "num_attention_heads")?;
    let n_kv_heads = cfg.get("num_key_value_heads").and_then(Value::as_u64).unwrap_or(n_heads as u64) as u32;
    if n_heads == 0 || n_kv_heads == 0 || n_heads % n_kv_heads != 0 {
        return Err(bad("num_key_value_heads", n_kv_heads.to_string(), "must divide num_attention_heads"));
    }
    let head_dim = cfg.get("head_dim").and_then(Value::as_u64).map_or(c.d_model / n_heads, |h| h as u32);
    let (rotary_dims, rope_theta) = rotary(cfg, head_dim)?;
    let hybrid = Qwen3NextLayers {
        n_heads,
        n_kv_heads,
        head_dim,
        rotary_dims,
        rope_theta,
        moe,
        layer_kinds: &kinds,
        kv: KvCacheOptions { format: DEFAULT_KV_FORMAT, sinks: DEFAULT_SINKS, window: DEFAULT_WINDOW },
    };
    let mut hparams = hparams! {
        VocabSize = c.vocab_size, DModel = c.d_model, NLayer = c.n_layer, NHeads = c.n_v_heads,
        NGroups = c.n_k_heads, DState = c.head_k_dim, DInner = c.n_v_heads * c.head_v_dim, DConv = c.d_conv,
        DFfn = c.d_ffn, NormEps = c.norm_eps, TiedEmbeddings = c.tied_embeddings,
        NAttnHeads = n_heads, NKvHeads = n_kv_heads, HeadDim = head_dim, RotaryDims = rotary_dims,
        RopeTheta = rope_theta,
    };
    if let Some(m) = moe {
        hparams.extend(hparams! {
            NExperts = m.experts, ExpertsPerToken = m.top_k, DExpert = m.d_expert, DSharedExpert = m.d_shared,
            NormTopK = m.norm_top_k,
        });
    }
    let shape = (c.n_layer, c.d_model, c.vocab_size);
    let layout = HybridLayout {
        delta: Qwen3NextLayout::of(&c),
        heads: (n_heads as usize, head_dim as usize),
        experts: moe.map_or(0, |m| m.experts as usize),
    };
    let full = GatedDeltaNetConfig { hybrid: Some(hybrid), ..c };
    Ok(Plan::new(Architecture::GatedDeltaNet, hparams, |visit| tensor_schema(&full, visit), layout, shape)
        .with_blob(BlobKind::LayerKinds, kinds.clone()))
}

#[cfg(test)]
mod tests {
    use super::{layer_kinds, rotary};
    use serde_json::json;

    #[test]
    fn layer_kinds_follow_transformers_sparse_rule() {
        let cfg = json!({
            "layer_types": ["linear_attention", "full_attention", "linear_attention", "full_attention"],
            "mlp_only_layers": [2], "decoder_sparse_step": 1,
        });
        assert_eq!(layer_kinds(&cfg, 4, 8).unwrap(), [2, 3, 0, 3]);
        // No experts: dense everywhere; every second layer sparse with step 2.
        assert_eq!(layer_kinds(&cfg, 4, 0).unwrap(), [0, 1, 0, 1]);
        let step2 = json!({"layer_types": cfg["layer_types"], "decoder_sparse_step": 2});
        assert_eq!(layer_kinds(&step2, 4, 8).unwrap(), [0, 3, 0, 3]);
        let e = layer_kinds(&json!({"layer_types": ["linear_attention", "mamba"]}), 2, 0).unwrap_err();
        assert!(e.to_string().contains("full_attention"), "{e}");
        let e = layer_kinds(&cfg, 3, 0).unwrap_err();
        assert!(e.to_string().contains("one type per layer"), "{e}");
    }

    #[test]
    fn partial_rotary_is_a_share_of_the_head() {
        let cfg = json!({"rope_parameters": {"rope_type": "default", "rope_theta": 1e7, "partial_rotary_factor": 0.25}});
        assert_eq!(rotary(&cfg, 256).unwrap(), (64, 1e7));
        for factor in [0.1, 0.3, 1.5] {
            // 1.6, 4.8 and 24 values of a 16-value head: refused.
            let bad = json!({"rope_parameters": {"partial_rotary_factor": factor}});
            assert!(rotary(&bad, 16).is_err(), "{factor}");
        }
        let half = json!({"rope_parameters": {"partial_rotary_factor": 0.5}});
        assert_eq!(rotary(&half, 16).unwrap(), (8, 10_000.0));
        let scaled = json!({"rope_parameters": {"rope_type": "yarn", "rope_theta": 1e7}});
        assert!(rotary(&scaled, 256).is_err());
    }
}
