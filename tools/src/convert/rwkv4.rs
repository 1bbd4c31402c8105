//! `RwkvForCausalLM` (RWKV-4) checkpoints.

use super::{eddy_name, get_bool, get_u32, positive, unsupported, ConvertError, FamilyLayout, Plan};
use eddy::arch::{Architecture, HParam};
use eddy::rwkv4::{tensor_schema, Rwkv4Config};
use eddy::schema::TensorSpec;
use serde_json::Value;

/// `u32` config value that may be `null` (then `default`).
fn get_u32_or(cfg: &Value, key: &'static str, default: u32) -> Result<u32, ConvertError> {
    match cfg.get(key) {
        None | Some(Value::Null) => Ok(default),
        Some(_) => get_u32(cfg, key),
    }
}

/// Read RWKV-4 hyper-parameters from a `config.json` value.
pub fn rwkv4_config(cfg: &Value) -> Result<Rwkv4Config, ConvertError> {
    let (archs, model_type) = super::arch_names(cfg);
    if !(archs.contains(&"RwkvForCausalLM") || (archs.is_empty() && model_type == "rwkv")) {
        return Err(unsupported(cfg));
    }
    let d_model = get_u32(cfg, "hidden_size")?;
    let attention = get_u32_or(cfg, "attention_hidden_size", d_model)?;
    if attention != d_model {
        return Err(ConvertError::ConfigValue {
            key: "attention_hidden_size",
            value: attention.to_string(),
            why: "must equal hidden_size (as in every released RWKV-4)",
        });
    }
    let c = Rwkv4Config {
        vocab_size: get_u32(cfg, "vocab_size")?,
        d_model,
        n_layer: get_u32(cfg, "num_hidden_layers")?,
        d_ffn: get_u32_or(cfg, "intermediate_size", d_model.saturating_mul(4))?,
        norm_eps: cfg.get("layer_norm_epsilon").and_then(Value::as_f64).unwrap_or(1e-5) as f32,
        tied_embeddings: get_bool(cfg, "tie_word_embeddings", false)?,
    };
    positive(&[
        ("vocab_size", c.vocab_size),
        ("hidden_size", c.d_model),
        ("num_hidden_layers", c.n_layer),
        ("intermediate_size", c.d_ffn),
    ])?;
    Ok(c)
}

struct Rwkv4Layout;

impl FamilyLayout for Rwkv4Layout {
    fn hf_name(&self, spec: &TensorSpec) -> String {
        let eddy = eddy_name(spec);
        match spec.pattern {
            "embed.weight" => "rwkv.embeddings.weight".into(),
            "pre_ln.weight" | "pre_ln.bias" => format!("rwkv.blocks.0.{eddy}"),
            "ln_out.weight" | "ln_out.bias" => format!("rwkv.{eddy}"),
            "head.weight" => "head.weight".into(),
            _ => {
                let rest = eddy.strip_prefix("layers.").unwrap_or(&eddy);
                let (layer, param) = rest.split_once('.').unwrap_or((rest, ""));
                let param = param.replacen("att.", "attention.", 1).replacen("ffn.", "feed_forward.", 1);
                format!("rwkv.blocks.{layer}.{param}")
            }
        }
    }

    fn hf_shape(&self, spec: &TensorSpec) -> Vec<usize> {
        if spec.pattern.contains("time_mix") {
            vec![1, 1, spec.cols as usize]
        } else if spec.rows == 1 {
            vec![spec.cols as usize]
        } else {
            vec![spec.rows as usize, spec.cols as usize]
        }
    }

    // eddy stores the decay as used: w = -exp(time_decay).
    fn transform(&self, spec: &TensorSpec, values: Vec<f32>) -> Vec<f32> {
        if spec.pattern.ends_with("time_decay") {
            values.iter().map(|v| -v.exp()).collect()
        } else {
            values
        }
    }
}

pub(super) fn plan(cfg: &Value) -> Result<Plan, ConvertError> {
    let c = rwkv4_config(cfg)?;
    let mut specs = Vec::new();
    tensor_schema(&c, &mut |s| specs.push(s));
    Ok(Plan {
        architecture: Architecture::Rwkv4,
        hparams: vec![
            (HParam::VocabSize, c.vocab_size),
            (HParam::DModel, c.d_model),
            (HParam::NLayer, c.n_layer),
            (HParam::DInner, c.d_ffn),
            (HParam::NormEps, c.norm_eps.to_bits()),
            (HParam::TiedEmbeddings, c.tied_embeddings as u32),
        ],
        specs,
        layout: Box::new(Rwkv4Layout),
        shape: (c.n_layer, c.d_model, c.vocab_size),
        blobs: vec![],
    })
}
