//! Gated DeltaNet models in Qwen3-Next's layout (`Qwen3NextForCausalLM`
//! whose layers are all `linear_attention` with dense MLPs); Qwen3-Next
//! with full-attention layers or experts goes on in [`super::qwen3_next`].

use super::common::{
    conv_or_plain_shape, dims, epsilon, hparams, neg_exp, one_plus, require_activation, require_family,
    top_or_layer,
};
use super::{get_bool, get_u32, ConvertError, FamilyLayout, Plan};
use eddy::arch::Architecture;
use eddy::gated_deltanet::{tensor_schema, GatedDeltaNetConfig};
use eddy::schema::TensorSpec;
use serde_json::Value;

/// Whether `cfg` is all `linear_attention` layers with dense MLPs.
pub(super) fn is_pure_delta(cfg: &Value) -> Result<bool, ConvertError> {
    let n_layer = get_u32(cfg, "num_hidden_layers")?;
    let types = layer_types(cfg);
    let experts = cfg.get("num_experts").and_then(Value::as_u64).unwrap_or(0);
    let dense: Vec<u64> = cfg
        .get("mlp_only_layers")
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_u64).collect())
        .unwrap_or_default();
    let linear = types.len() == n_layer as usize && types.iter().all(|t| *t == "linear_attention");
    Ok(linear && (experts == 0 || (0..n_layer as u64).all(|l| dense.contains(&l))))
}

/// The `layer_types` list of a Qwen3-Next config.
pub(super) fn layer_types(cfg: &Value) -> Vec<&str> {
    cfg.get("layer_types")
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default()
}

/// Read Gated DeltaNet hyper-parameters from a Qwen3-Next `config.json`
/// (the linear-attention layers and dense MLPs; no attention layers or
/// experts: `hybrid` is `None`).
pub fn gated_deltanet_config(cfg: &Value) -> Result<GatedDeltaNetConfig<'static>, ConvertError> {
    require_family(cfg, "Qwen3NextForCausalLM", "qwen3_next")?;
    let n_layer = get_u32(cfg, "num_hidden_layers")?;
    require_activation(cfg, "hidden_act", "silu", &["silu"], "only silu is supported")?;
    let [vocab_size, d_model, _, n_v_heads, n_k_heads, head_k_dim, head_v_dim, d_conv, d_ffn] = dims(
        cfg,
        [
            "vocab_size",
            "hidden_size",
            "num_hidden_layers",
            "linear_num_value_heads",
            "linear_num_key_heads",
            "linear_key_head_dim",
            "linear_value_head_dim",
            "linear_conv_kernel_dim",
            "intermediate_size",
        ],
    )?;
    let c = GatedDeltaNetConfig {
        vocab_size,
        d_model,
        n_layer,
        n_v_heads,
        n_k_heads,
        head_k_dim,
        head_v_dim,
        d_conv,
        d_ffn,
        norm_eps: epsilon(cfg, "rms_norm_eps", 1e-6)?,
        tied_embeddings: get_bool(cfg, "tie_word_embeddings", false)?,
        hybrid: None,
    };
    if c.n_v_heads % c.n_k_heads != 0 {
        return Err(ConvertError::ConfigValue {
            key: "linear_num_key_heads",
            value: c.n_k_heads.to_string(),
            why: "must divide linear_num_value_heads",
        });
    }
    Ok(c)
}

/// The checkpoint layout of the Gated DeltaNet layers and dense MLPs.
pub(super) struct Qwen3NextLayout {
    /// Key heads, key and value head widths, value heads per key head.
    pub(super) heads: (usize, usize, usize, usize),
}

/// Rows of `values` (`cols` wide) grouped per key head as blocks of the
/// given widths, regrouped so that each block kind is contiguous over all
/// heads (`[q_0 k_0 v_0 z_0 q_1 ...]` becomes `[q_0 q_1 .. k_0 k_1 ..]`).
pub(super) fn regroup_rows(values: &[f32], cols: usize, heads: usize, widths: &[usize]) -> Vec<f32> {
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
        top_or_layer(spec, "model.embed_tokens.weight", "model.norm.weight", |layer, param| {
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
        })
    }

    fn hf_shape(&self, spec: &TensorSpec) -> Vec<usize> {
        conv_or_plain_shape(spec, spec.pattern.ends_with("conv1d.weight"))
    }

    fn transform(&self, spec: &TensorSpec, values: Vec<f32>) -> Vec<f32> {
        let (nk, hk, hv, r) = self.heads;
        let cols = spec.cols as usize;
        match spec.pattern {
            // Qwen3-Next's RMSNorm scales by (1 + w): store the product's factor.
            "layers.{i}.norm.weight" | "layers.{i}.mlp_norm.weight" | "norm_f.weight" => one_plus(values),
            "layers.{i}.A" => neg_exp(values),
            "layers.{i}.in_proj_qkvz.weight" => regroup_rows(&values, cols, nk, &[hk, hk, r * hv, r * hv]),
            "layers.{i}.in_proj_ba.weight" => regroup_rows(&values, cols, nk, &[r, r]),
            _ => values,
        }
    }
}

impl Qwen3NextLayout {
    /// The layout of the heads of `c`.
    pub(super) fn of(c: &GatedDeltaNetConfig<'_>) -> Self {
        let heads = (c.n_k_heads as usize, c.head_k_dim as usize, c.head_v_dim as usize);
        Qwen3NextLayout { heads: (heads.0, heads.1, heads.2, (c.n_v_heads / c.n_k_heads) as usize) }
    }
}

pub(super) fn plan(cfg: &Value) -> Result<Plan, ConvertError> {
    let c = gated_deltanet_config(cfg)?;
    if !is_pure_delta(cfg)? {
        return super::qwen3_next::plan(cfg, c);
    }
    let hparams = hparams! {
        VocabSize = c.vocab_size, DModel = c.d_model, NLayer = c.n_layer, NHeads = c.n_v_heads,
        NGroups = c.n_k_heads, DState = c.head_k_dim, DInner = c.n_v_heads * c.head_v_dim, DConv = c.d_conv,
        DFfn = c.d_ffn, NormEps = c.norm_eps, TiedEmbeddings = c.tied_embeddings,
    };
    let shape = (c.n_layer, c.d_model, c.vocab_size);
    let layout = Qwen3NextLayout::of(&c);
    Ok(Plan::new(Architecture::GatedDeltaNet, hparams, |visit| tensor_schema(&c, visit), layout, shape))
}
