//! RWKV-7 checkpoints in BlinkDL's layout (`emb.weight`, `blocks.{i}.att.*`,
//! LoRA factors stored `[in, out]`), as safetensors. The released `.pth`
//! files convert with `safetensors.torch.save_file(torch.load(path), out)`.
//! Every dimension is inferred from the tensor shapes; an optional
//! `config.json` with `"model_type": "rwkv7"` may set `layer_norm_epsilon`
//! and `head_norm_epsilon` (defaults 1e-5 and 64e-5, BlinkDL's values).

use super::common::{hparams, plain_shape};
use super::{eddy_name, Checkpoint, ConvertError, FamilyLayout, Plan};
use eddy::arch::Architecture;
use eddy::rwkv7::{tensor_schema, Rwkv7Config};
use eddy::schema::TensorSpec;
use serde_json::{json, Value};

/// A config for an RWKV-7 checkpoint (no `config.json` needed).
pub(super) fn infer_config(ckpt: &Checkpoint) -> Result<Option<Value>, ConvertError> {
    let Some(r_k) = ckpt.shape("blocks.0.att.r_k") else {
        return Ok(None);
    };
    let need = |name: &str| {
        ckpt.shape(name)
            .ok_or_else(|| ConvertError::MissingTensor { hf_name: name.into(), eddy_name: name.into() })
    };
    let emb = need("emb.weight")?;
    let dim = |shape: &[usize], i: usize| shape.get(i).copied().unwrap_or(0);
    let layers = (0..).take_while(|i| ckpt.shape(&format!("blocks.{i}.ln1.weight")).is_some()).count();
    let lora_v = if layers > 1 { dim(&need("blocks.1.att.v1")?, 1) } else { 1 };
    Ok(Some(json!({
        "model_type": "rwkv7",
        "vocab_size": dim(&emb, 0),
        "hidden_size": dim(&emb, 1),
        "num_hidden_layers": layers,
        "num_heads": dim(&r_k, 0),
        "intermediate_size": dim(&need("blocks.0.ffn.key.weight")?, 0),
        "lora": [dim(&need("blocks.0.att.w1")?, 1), dim(&need("blocks.0.att.a1")?, 1), lora_v,
                 dim(&need("blocks.0.att.g1")?, 1)],
        "tie_word_embeddings": ckpt.shape("head.weight").is_none(),
    })))
}

/// Read RWKV-7 hyper-parameters (from [`infer_config`], possibly
/// overridden by a `config.json`).
pub(super) fn rwkv7_config(cfg: &Value, ckpt: &Checkpoint) -> Result<Rwkv7Config, ConvertError> {
    let inferred = infer_config(ckpt)?.ok_or(ConvertError::MissingTensor {
        hf_name: "blocks.0.att.r_k".into(),
        eddy_name: "layers.0.att.r_k (an RWKV-7 checkpoint in BlinkDL's layout)".into(),
    })?;
    let num = |key: &'static str| -> Result<u32, ConvertError> {
        let v = inferred[key].as_u64().and_then(|v| u32::try_from(v).ok()).unwrap_or(0);
        if v == 0 {
            return Err(ConvertError::ConfigValue {
                key,
                value: "0".into(),
                why: "inferred from the shapes; must be positive",
            });
        }
        Ok(v)
    };
    let lora: Vec<u32> = inferred["lora"]
        .as_array()
        .map(|a| a.iter().map(|v| v.as_u64().unwrap_or(0) as u32).collect())
        .unwrap_or_default();
    let lora: [u32; 4] = lora.try_into().unwrap_or([0; 4]);
    if lora.contains(&0) {
        return Err(ConvertError::ConfigValue {
            key: "lora",
            value: format!("{lora:?}"),
            why: "LoRA ranks must be positive",
        });
    }
    let c = Rwkv7Config {
        vocab_size: num("vocab_size")?,
        d_model: num("hidden_size")?,
        n_layer: num("num_hidden_layers")?,
        n_heads: num("num_heads")?,
        d_ffn: num("intermediate_size")?,
        lora,
        norm_eps: super::common::epsilon(cfg, "layer_norm_epsilon", 1e-5)?,
        head_norm_eps: super::common::epsilon(cfg, "head_norm_epsilon", 64e-5)?,
        tied_embeddings: inferred["tie_word_embeddings"].as_bool().unwrap_or(false),
    };
    if c.d_model % c.n_heads != 0 {
        return Err(ConvertError::ConfigValue {
            key: "num_heads",
            value: c.n_heads.to_string(),
            why: "the width must be a multiple of the head count (r_k is [heads, head_size])",
        });
    }
    Ok(c)
}

struct BlinkLayout {
    config: Rwkv7Config,
}

/// LoRA factors eddy stores transposed (`[out, in]`, like every matrix).
fn is_lora(pattern: &str) -> bool {
    ["w1", "w2", "a1", "a2", "v1", "v2", "g1", "g2"].iter().any(|s| pattern.ends_with(&format!("att.{s}")))
}

impl FamilyLayout for BlinkLayout {
    fn hf_name(&self, spec: &TensorSpec) -> String {
        let eddy = eddy_name(spec);
        match spec.pattern {
            "embed.weight" => "emb.weight".into(),
            "ln0.weight" | "ln0.bias" => format!("blocks.0.{eddy}"),
            _ => match eddy.strip_prefix("layers.") {
                Some(rest) => format!("blocks.{rest}"),
                None => eddy,
            },
        }
    }

    fn hf_shape(&self, spec: &TensorSpec) -> Vec<usize> {
        let (rows, cols) = (spec.rows as usize, spec.cols as usize);
        let vector_3d = ["x_r", "x_w", "x_k", "x_v", "x_a", "x_g", "w0", "a0", "v0", "k_k", "k_a"];
        if vector_3d.iter().any(|s| spec.pattern.ends_with(&format!(".{s}"))) {
            vec![1, 1, cols]
        } else if spec.pattern.ends_with("att.r_k") {
            let h = self.config.n_heads as usize;
            vec![h, cols / h]
        } else if is_lora(spec.pattern) {
            vec![cols, rows]
        } else {
            plain_shape(spec)
        }
    }

    fn transform(&self, spec: &TensorSpec, values: Vec<f32>) -> Vec<f32> {
        if !is_lora(spec.pattern) {
            return values;
        }
        let (rows, cols) = (spec.rows as usize, spec.cols as usize);
        // File [cols, rows] -> eddy [rows, cols].
        let mut out = vec![0.0; values.len()];
        for r in 0..rows {
            for c in 0..cols {
                out[r * cols + c] = values[c * rows + r];
            }
        }
        out
    }
}

pub(super) fn plan(cfg: &Value, ckpt: &Checkpoint) -> Result<Plan, ConvertError> {
    let c = rwkv7_config(cfg, ckpt)?;
    let hparams = hparams! {
        VocabSize = c.vocab_size, DModel = c.d_model, NLayer = c.n_layer, NHeads = c.n_heads, DFfn = c.d_ffn,
        LoraDecay = c.lora[0], LoraIclr = c.lora[1], LoraValue = c.lora[2], LoraGate = c.lora[3],
        NormEps = c.norm_eps, HeadNormEps = c.head_norm_eps, TiedEmbeddings = c.tied_embeddings,
    };
    let shape = (c.n_layer, c.d_model, c.vocab_size);
    let layout = BlinkLayout { config: c };
    Ok(Plan::new(Architecture::Rwkv7, hparams, |visit| tensor_schema(&c, visit), layout, shape))
}
