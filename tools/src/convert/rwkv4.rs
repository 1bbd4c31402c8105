//! `RwkvForCausalLM` (RWKV-4) checkpoints.

use super::common::{
    dims, epsilon, get_u32_or, hparams, neg_exp, plain_shape, positive, require_family, split_layer,
};
use super::{eddy_name, get_bool, ConvertError, FamilyLayout, Plan};
use eddy::arch::Architecture;
use eddy::rwkv4::{tensor_schema, Rwkv4Config};
use eddy::schema::TensorSpec;
use serde_json::Value;

/// Read RWKV-4 hyper-parameters from a `config.json` value.
pub fn rwkv4_config(cfg: &Value) -> Result<Rwkv4Config, ConvertError> {
    require_family(cfg, "RwkvForCausalLM", "rwkv")?;
    let [vocab_size, d_model, n_layer] = dims(cfg, ["vocab_size", "hidden_size", "num_hidden_layers"])?;
    let attention = get_u32_or(cfg, "attention_hidden_size", d_model)?;
    if attention != d_model {
        return Err(ConvertError::ConfigValue {
            key: "attention_hidden_size",
            value: attention.to_string(),
            why: "must equal hidden_size (as in every released RWKV-4)",
        });
    }
    let d_ffn = get_u32_or(cfg, "intermediate_size", d_model.saturating_mul(4))?;
    positive(&[("intermediate_size", d_ffn)])?;
    Ok(Rwkv4Config {
        vocab_size,
        d_model,
        n_layer,
        d_ffn,
        norm_eps: epsilon(cfg, "layer_norm_epsilon", 1e-5)?,
        tied_embeddings: get_bool(cfg, "tie_word_embeddings", false)?,
    })
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
                let (layer, param) = split_layer(&eddy);
                let param = param.replacen("att.", "attention.", 1).replacen("ffn.", "feed_forward.", 1);
                format!("rwkv.blocks.{layer}.{param}")
            }
        }
    }

    fn hf_shape(&self, spec: &TensorSpec) -> Vec<usize> {
        if spec.pattern.contains("time_mix") {
            vec![1, 1, spec.cols as usize]
        } else {
            plain_shape(spec)
        }
    }

    // eddy stores the decay as used: w = -exp(time_decay).
    fn transform(&self, spec: &TensorSpec, values: Vec<f32>) -> Vec<f32> {
        if spec.pattern.ends_with("time_decay") {
            neg_exp(values)
        } else {
            values
        }
    }
}

pub(super) fn plan(cfg: &Value) -> Result<Plan, ConvertError> {
    let c = rwkv4_config(cfg)?;
    let hparams = hparams! {
        VocabSize = c.vocab_size, DModel = c.d_model, NLayer = c.n_layer, DInner = c.d_ffn,
        NormEps = c.norm_eps, TiedEmbeddings = c.tied_embeddings,
    };
    let shape = (c.n_layer, c.d_model, c.vocab_size);
    Ok(Plan::new(Architecture::Rwkv4, hparams, |visit| tensor_schema(&c, visit), Rwkv4Layout, shape))
}
