//! llama.cpp's architectures as eddy families: each GGUF architecture's
//! hyper-parameter keys become the `config.json` its family's converter
//! reads, and each eddy tensor is found under llama.cpp's tensor name.

use super::reader::{GgufHeader, MetaValue};
use crate::convert::common::split_layer;
use crate::convert::{eddy_name, ConvertError};
use eddy::schema::TensorSpec;
use serde_json::{json, Value};

/// One llama.cpp architecture eddy reads.
pub(super) struct GgufArch {
    /// `general.architecture` as llama.cpp writes it.
    pub name: &'static str,
    /// The equivalent `config.json`.
    pub config: fn(&Keys<'_>) -> Result<Value, ConvertError>,
    /// llama.cpp's name of an eddy tensor.
    pub tensor: fn(&TensorSpec) -> String,
    /// Checkpoint shapes the family's planner reads (Hugging Face names).
    pub declared: fn(&GgufHeader) -> Vec<Declared>,
}

/// A checkpoint tensor's name and shape, for a family's planner.
pub(super) type Declared = (String, Vec<usize>);

/// Every architecture read, in README order.
pub(super) const ARCHS: &[GgufArch] = &[
    GgufArch { name: "mamba", config: mamba1_config, tensor: mamba_tensor, declared: |_| vec![] },
    GgufArch { name: "mamba2", config: mamba2_config, tensor: mamba_tensor, declared: |_| vec![] },
    GgufArch { name: "lfm2", config: lfm2_config, tensor: lfm2_tensor, declared: lfm2_declared },
];

/// The names of [`ARCHS`], for messages.
pub(super) fn names() -> String {
    ARCHS.iter().map(|a| a.name).collect::<Vec<_>>().join(", ")
}

/// The header's keys under the architecture's prefix (`mamba.block_count`).
pub(super) struct Keys<'a> {
    /// The header.
    pub header: &'a GgufHeader,
    /// The architecture name, the prefix of its keys.
    pub arch: &'a str,
}

impl Keys<'_> {
    fn missing(&self, key: String, expected: &'static str) -> ConvertError {
        ConvertError::GgufKey { key, expected }
    }

    /// A required unsigned key `ARCH.suffix`.
    fn u32(&self, suffix: &str) -> Result<u32, ConvertError> {
        let key = format!("{}.{suffix}", self.arch);
        self.header
            .get(&key)
            .and_then(MetaValue::as_u64)
            .and_then(|v| u32::try_from(v).ok())
            .ok_or_else(|| self.missing(key, "an unsigned 32-bit integer"))
    }

    /// A required float key `ARCH.suffix`.
    fn float(&self, suffix: &str) -> Result<f64, ConvertError> {
        let key = format!("{}.{suffix}", self.arch);
        self.header.get(&key).and_then(MetaValue::as_f64).ok_or_else(|| self.missing(key, "a number"))
    }

    /// A token id key (absent: none, as `config.json` without it).
    fn token(&self, key: &str) -> Value {
        self.header.get(key).and_then(MetaValue::as_u64).map_or(Value::Null, |v| json!(v))
    }

    fn has(&self, tensor: &str) -> bool {
        self.header.tensor(tensor).is_some()
    }

    /// Whether any layer has the tensor `blk.N.suffix`.
    fn any_layer_has(&self, suffix: &str) -> bool {
        self.header.tensors.iter().any(|t| t.name.starts_with("blk.") && t.name.ends_with(suffix))
    }

    /// Rows of the token embedding: the vocabulary as stored (llama.cpp
    /// pads it to a multiple of 8 or 16 with unused tokens).
    fn vocab(&self) -> Result<u64, ConvertError> {
        let t = self.header.tensor("token_embd.weight").ok_or_else(|| ConvertError::MissingTensor {
            hf_name: "token_embd.weight".into(),
            eddy_name: "embed.weight".into(),
        })?;
        match t.dims[..] {
            [_, rows] => Ok(rows),
            _ => Err(ConvertError::ShapeMismatch {
                hf_name: t.name.clone(),
                expected: vec![0, 0],
                found: t.row_major_shape().iter().map(|&d| d as usize).collect(),
            }),
        }
    }

    /// `ARCH.block_count`, refused beyond one layer per tensor in the file
    /// (a lying count would otherwise plan billions of layers before the
    /// first missing tensor is noticed).
    fn layers(&self) -> Result<u32, ConvertError> {
        let n = self.u32("block_count")?;
        if n as usize > self.header.tensors.len() {
            let key = format!("{}.block_count", self.arch);
            return Err(self.missing(key, "a layer count the file has tensors for"));
        }
        Ok(n)
    }

    /// What both Mamba generations share, as `config.json` keys.
    fn mamba_common(&self, class: &str, model_type: &str) -> Result<Value, ConvertError> {
        Ok(json!({
            "architectures": [class],
            "model_type": model_type,
            "vocab_size": self.vocab()?,
            "hidden_size": self.u32("embedding_length")?,
            "num_hidden_layers": self.layers()?,
            "state_size": self.u32("ssm.state_size")?,
            "conv_kernel": self.u32("ssm.conv_kernel")?,
            "intermediate_size": self.u32("ssm.inner_size")?,
            "layer_norm_epsilon": self.float("attention.layer_norm_rms_epsilon")?,
            "hidden_act": "silu",
            // llama.cpp leaves out `output.weight` when it equals the embedding.
            "tie_word_embeddings": !self.has("output.weight"),
            "use_bias": self.has("blk.0.ssm_in.bias"),
            "use_conv_bias": self.has("blk.0.ssm_conv1d.bias"),
            "bos_token_id": self.token("tokenizer.ggml.bos_token_id"),
            "eos_token_id": self.token("tokenizer.ggml.eos_token_id"),
        }))
    }
}

fn expand(d_inner: u32, d_model: u32) -> u32 {
    d_inner.checked_div(d_model).unwrap_or(0)
}

fn mamba1_config(k: &Keys<'_>) -> Result<Value, ConvertError> {
    let mut cfg = k.mamba_common("MambaForCausalLM", "mamba")?;
    // llama.cpp's Mamba-1 has no B/C/dt norms; FalconMamba's would be
    // silently wrong, so it is refused.
    if let Some(true) = k.header.get("mamba.ssm.dt_b_c_rms").map(|v| v == &MetaValue::Bool(true)) {
        return Err(ConvertError::GgufKey {
            key: "mamba.ssm.dt_b_c_rms".into(),
            expected: "false (FalconMamba's B/C/dt norms are not supported)",
        });
    }
    cfg["time_step_rank"] = json!(k.u32("ssm.time_step_rank")?);
    cfg["expand"] = json!(expand(k.u32("ssm.inner_size")?, k.u32("embedding_length")?));
    Ok(cfg)
}

fn mamba2_config(k: &Keys<'_>) -> Result<Value, ConvertError> {
    let mut cfg = k.mamba_common("Mamba2ForCausalLM", "mamba2")?;
    let (d_inner, n_heads) = (k.u32("ssm.inner_size")?, k.u32("ssm.time_step_rank")?);
    cfg["num_heads"] = json!(n_heads);
    cfg["head_dim"] = json!(d_inner.checked_div(n_heads).unwrap_or(0));
    cfg["n_groups"] = json!(k.u32("ssm.group_count")?);
    cfg["expand"] = json!(expand(d_inner, k.u32("embedding_length")?));
    Ok(cfg)
}

/// llama.cpp's names of Mamba-1 and Mamba-2 tensors.
fn mamba_tensor(spec: &TensorSpec) -> String {
    let eddy = eddy_name(spec);
    match spec.pattern {
        "embed.weight" => return "token_embd.weight".into(),
        "norm_f.weight" => return "output_norm.weight".into(),
        "lm_head.weight" => return "output.weight".into(),
        _ => {}
    }
    let (layer, param) = split_layer(&eddy);
    let name = match param {
        "norm.weight" => "attn_norm.weight",
        "in_proj.weight" => "ssm_in.weight",
        "in_proj.bias" => "ssm_in.bias",
        "conv1d.weight" => "ssm_conv1d.weight",
        "conv1d.bias" => "ssm_conv1d.bias",
        "x_proj.weight" => "ssm_x.weight",
        "dt_proj.weight" => "ssm_dt.weight",
        "dt_proj.bias" | "dt_bias" => "ssm_dt.bias",
        "A" => "ssm_a",
        "D" => "ssm_d",
        "gate_norm.weight" => "ssm_norm.weight",
        "out_proj.weight" => "ssm_out.weight",
        "out_proj.bias" => "ssm_out.bias",
        other => other,
    };
    format!("blk.{layer}.{name}")
}

/// LFM2: `ARCH.attention.head_count_kv` lists each layer's K/V heads, 0
/// for a convolution layer, which gives `layer_types`.
fn lfm2_config(k: &Keys<'_>) -> Result<Value, ConvertError> {
    let n_layer = k.layers()?;
    let kv_key = format!("{}.attention.head_count_kv", k.arch);
    let per_layer: Vec<u64> = match k.header.get(&kv_key) {
        Some(MetaValue::Array(a)) => a.iter().filter_map(MetaValue::as_u64).collect(),
        Some(v) => v.as_u64().map(|n| vec![n; n_layer as usize]).unwrap_or_default(),
        None => vec![],
    };
    if per_layer.len() != n_layer as usize {
        return Err(ConvertError::GgufKey { key: kv_key, expected: "one K/V head count per layer" });
    }
    let types: Vec<&str> =
        per_layer.iter().map(|&n| if n == 0 { "conv" } else { "full_attention" }).collect();
    let n_kv = per_layer.iter().copied().find(|&n| n > 0).unwrap_or(1);
    let n_heads = k.u32("attention.head_count")?;
    let mut cfg = json!({
        "architectures": ["Lfm2ForCausalLM"],
        "model_type": "lfm2",
        "vocab_size": k.vocab()?,
        "hidden_size": k.u32("embedding_length")?,
        "num_hidden_layers": n_layer,
        "num_attention_heads": n_heads,
        "num_key_value_heads": n_kv,
        "layer_types": types,
        "conv_L_cache": k.u32("shortconv.l_cache")?,
        "norm_eps": k.float("attention.layer_norm_rms_epsilon")?,
        "rope_theta": k.float("rope.freq_base")?,
        "conv_bias": k.any_layer_has(".shortconv.conv.bias"),
        "tie_word_embeddings": !k.has("output.weight"),
        "bos_token_id": k.token("tokenizer.ggml.bos_token_id"),
        "eos_token_id": k.token("tokenizer.ggml.eos_token_id"),
    });
    if let Some(head_dim) =
        k.header.get(&format!("{}.attention.key_length", k.arch)).and_then(MetaValue::as_u64)
    {
        cfg["head_dim"] = json!(head_dim);
    }
    Ok(cfg)
}

/// LFM2's MLP width, which its planner reads from the first gate matrix.
fn lfm2_declared(h: &GgufHeader) -> Vec<Declared> {
    let shape = h.tensor("blk.0.ffn_gate.weight").map(|t| t.row_major_shape());
    let shape = shape.map(|s| s.iter().map(|&d| d as usize).collect()).unwrap_or_default();
    vec![("model.layers.0.feed_forward.w1.weight".into(), shape)]
}

/// llama.cpp's names of LFM2 tensors.
fn lfm2_tensor(spec: &TensorSpec) -> String {
    let eddy = eddy_name(spec);
    match spec.pattern {
        "embed.weight" => return "token_embd.weight".into(),
        "norm_f.weight" => return "token_embd_norm.weight".into(),
        "lm_head.weight" => return "output.weight".into(),
        _ => {}
    }
    let (layer, param) = split_layer(&eddy);
    let name = match param {
        "operator_norm.weight" => "attn_norm.weight",
        "q_proj.weight" => "attn_q.weight",
        "k_proj.weight" => "attn_k.weight",
        "v_proj.weight" => "attn_v.weight",
        "o_proj.weight" => "attn_output.weight",
        "q_norm.weight" => "attn_q_norm.weight",
        "k_norm.weight" => "attn_k_norm.weight",
        "in_proj.weight" => "shortconv.in_proj.weight",
        "in_proj.bias" => "shortconv.in_proj.bias",
        "conv.weight" => "shortconv.conv.weight",
        "conv.bias" => "shortconv.conv.bias",
        "out_proj.weight" => "shortconv.out_proj.weight",
        "out_proj.bias" => "shortconv.out_proj.bias",
        "gate_proj.weight" => "ffn_gate.weight",
        "up_proj.weight" => "ffn_up.weight",
        "down_proj.weight" => "ffn_down.weight",
        other => other,
    };
    format!("blk.{layer}.{name}")
}
