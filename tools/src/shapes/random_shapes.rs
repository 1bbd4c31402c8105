//! The shapes `eddy bench --random-model` builds: each family's
//! `config.json` (and the checkpoint tensor shapes its converter reads),
//! from one constructor per family, and the public shapes made with them.

use super::mamba1_config;
use crate::convert::{plan_config, ConfigPlan, ConvertError};
use eddy::mamba::Mamba1Config;
use serde_json::{json, Value};

/// A model that exists only as a config: the `config.json` its family's
/// converter reads, plus the shapes of the checkpoint tensors the converter
/// inspects for dimensions the config does not state (LFM2's MLP width,
/// every RWKV-7 dimension).
#[derive(Clone, Debug)]
pub struct ShapeConfig {
    /// The Hugging Face (or, for GRU/LSTM, eddy's documented) `config.json`.
    pub config: Value,
    /// Checkpoint tensor shapes the converter reads.
    pub declared: Vec<(String, Vec<usize>)>,
}

impl ShapeConfig {
    fn plain(config: Value) -> Self {
        ShapeConfig { config, declared: Vec::new() }
    }

    /// The converter's plan for this config (what a converted checkpoint
    /// of this shape would be).
    pub fn plan(&self) -> Result<ConfigPlan, ConvertError> {
        plan_config(&self.config, &self.declared)
    }
}

/// A Mamba-1 `MambaForCausalLM` config (state 16, conv 4, expand 2,
/// `dt_rank` = width / 16, tied embeddings: every released size).
pub fn mamba1_shape(vocab: u32, d_model: u32, n_layer: u32) -> ShapeConfig {
    ShapeConfig::plain(crate::random::mamba1_hf_config(&Mamba1Config {
        vocab_size: vocab,
        ..mamba1_config(d_model, n_layer)
    }))
}

/// A `Mamba2ForCausalLM` config with mamba_ssm's Mamba-2 defaults: head
/// dimension 64, expand 2, one group, conv 4, tied embeddings.
pub fn mamba2_shape(vocab: u32, d_model: u32, n_layer: u32, d_state: u32) -> ShapeConfig {
    ShapeConfig::plain(json!({
        "architectures": ["Mamba2ForCausalLM"], "model_type": "mamba2",
        "vocab_size": vocab, "hidden_size": d_model, "num_hidden_layers": n_layer,
        "state_size": d_state, "conv_kernel": 4, "expand": 2, "num_heads": 2 * d_model / 64,
        "head_dim": 64, "n_groups": 1, "layer_norm_epsilon": 1e-5, "tie_word_embeddings": true,
        "use_bias": false, "use_conv_bias": true, "hidden_act": "silu",
    }))
}

/// An `Lfm2ForCausalLM` config: attention at the layers `attention` lists,
/// the others short convolutions of width 3; head dimension width / heads;
/// the MLP width `d_ffn` as the checkpoint's `w1` has it (after LFM2's
/// `block_auto_adjust_ff_dim`).
pub fn lfm2_shape(
    vocab: u32,
    d_model: u32,
    n_layer: u32,
    n_heads: u32,
    n_kv_heads: u32,
    d_ffn: usize,
    attention: &[u32],
) -> ShapeConfig {
    ShapeConfig {
        config: json!({
            "architectures": ["Lfm2ForCausalLM"], "model_type": "lfm2",
            "vocab_size": vocab, "hidden_size": d_model, "num_hidden_layers": n_layer,
            "num_attention_heads": n_heads, "num_key_value_heads": n_kv_heads, "conv_L_cache": 3,
            "norm_eps": 1e-5, "rope_theta": 1_000_000.0, "full_attn_idxs": attention,
            "tie_embedding": true, "conv_bias": false,
        }),
        declared: vec![("model.layers.0.feed_forward.w1.weight".into(), vec![d_ffn, d_model as usize])],
    }
}

/// An RWKV-7 checkpoint in BlinkDL's layout (head size 64, untied head):
/// the converter infers every dimension from these tensor shapes. `lora`
/// is the decay, in-context learning rate, value and gate LoRA ranks.
pub fn rwkv7_shape(
    vocab: usize,
    d_model: usize,
    n_layer: usize,
    d_ffn: usize,
    lora: [usize; 4],
) -> ShapeConfig {
    let mut declared = vec![
        ("emb.weight".to_string(), vec![vocab, d_model]),
        ("head.weight".into(), vec![vocab, d_model]),
        ("blocks.0.att.r_k".into(), vec![d_model / 64, 64]),
        ("blocks.0.ffn.key.weight".into(), vec![d_ffn, d_model]),
        ("blocks.0.att.w1".into(), vec![d_model, lora[0]]),
        ("blocks.0.att.a1".into(), vec![d_model, lora[1]]),
        ("blocks.1.att.v1".into(), vec![d_model, lora[2]]),
        ("blocks.0.att.g1".into(), vec![d_model, lora[3]]),
    ];
    declared.extend((0..n_layer).map(|i| (format!("blocks.{i}.ln1.weight"), vec![d_model])));
    ShapeConfig { config: json!({ "model_type": "rwkv7" }), declared }
}

/// An `RwkvForCausalLM` (RWKV-4) config: MLP 4x the width, untied head.
pub fn rwkv4_shape(vocab: u32, d_model: u32, n_layer: u32) -> ShapeConfig {
    ShapeConfig::plain(json!({
        "architectures": ["RwkvForCausalLM"], "model_type": "rwkv",
        "vocab_size": vocab, "hidden_size": d_model, "num_hidden_layers": n_layer,
        "attention_hidden_size": d_model, "intermediate_size": 4 * d_model,
        "layer_norm_epsilon": 1e-5, "tie_word_embeddings": false,
    }))
}

/// A `GLAForCausalLM` config with fla's defaults: keys half the width,
/// values the full width, gate rank 16, no short conv, untied head.
pub fn gla_shape(vocab: u32, d_model: u32, n_layer: u32, n_heads: u32, d_ffn: u32) -> ShapeConfig {
    ShapeConfig::plain(json!({
        "architectures": ["GLAForCausalLM"], "model_type": "gla",
        "vocab_size": vocab, "hidden_size": d_model, "num_hidden_layers": n_layer, "num_heads": n_heads,
        "expand_k": 0.5, "expand_v": 1.0, "intermediate_size": d_ffn, "gate_low_rank_dim": 16,
        "gate_logit_normalizer": 16, "use_short_conv": false, "use_output_gate": true, "fuse_norm": true,
        "hidden_act": "swish", "norm_eps": 1e-6, "tie_word_embeddings": false,
    }))
}

/// Dimensions of a Gated DeltaNet (Qwen3-Next linear-attention) stack.
#[derive(Clone, Copy, Debug)]
pub struct DeltaNetDims {
    /// Vocabulary.
    pub vocab: u32,
    /// Model width.
    pub d_model: u32,
    /// Layers (all linear attention, dense MLPs).
    pub n_layer: u32,
    /// Key (and query) heads.
    pub n_k_heads: u32,
    /// Value heads (a multiple of the key heads).
    pub n_v_heads: u32,
    /// Key and value head dimension.
    pub head_dim: u32,
    /// MLP width.
    pub d_ffn: u32,
}

/// A `Qwen3NextForCausalLM` config whose every layer is linear attention
/// (Gated DeltaNet) with a dense MLP, conv 4, tied embeddings.
pub fn gated_deltanet_shape(d: DeltaNetDims) -> ShapeConfig {
    ShapeConfig::plain(json!({
        "architectures": ["Qwen3NextForCausalLM"], "model_type": "qwen3_next",
        "vocab_size": d.vocab, "hidden_size": d.d_model, "num_hidden_layers": d.n_layer,
        "layer_types": vec!["linear_attention"; d.n_layer as usize], "num_experts": 0,
        "linear_num_key_heads": d.n_k_heads, "linear_num_value_heads": d.n_v_heads,
        "linear_key_head_dim": d.head_dim, "linear_value_head_dim": d.head_dim,
        "linear_conv_kernel_dim": 4, "intermediate_size": d.d_ffn, "hidden_act": "silu",
        "rms_norm_eps": 1e-6, "tie_word_embeddings": true,
    }))
}

/// Qwen3-Next-80B-A3B as released: 48 layers, (3 Gated DeltaNet + 1 gated
/// attention) x 12, every MLP a mixture of 512 experts (10 per token, one
/// shared expert).
pub fn qwen3_next_80b_a3b_shape() -> ShapeConfig {
    let layer_types: Vec<&str> =
        (0..48).map(|i| if i % 4 == 3 { "full_attention" } else { "linear_attention" }).collect();
    ShapeConfig::plain(json!({
        "architectures": ["Qwen3NextForCausalLM"], "model_type": "qwen3_next",
        "vocab_size": 151_936, "hidden_size": 2048, "num_hidden_layers": 48, "layer_types": layer_types,
        "linear_num_key_heads": 16, "linear_num_value_heads": 32,
        "linear_key_head_dim": 128, "linear_value_head_dim": 128, "linear_conv_kernel_dim": 4,
        "num_attention_heads": 16, "num_key_value_heads": 2, "head_dim": 256,
        "rope_parameters": {"rope_type": "default", "rope_theta": 10_000_000.0, "partial_rotary_factor": 0.25},
        "intermediate_size": 5120, "num_experts": 512, "num_experts_per_tok": 10,
        "moe_intermediate_size": 512, "shared_expert_intermediate_size": 512, "norm_topk_prob": true,
        "decoder_sparse_step": 1, "mlp_only_layers": [], "hidden_act": "silu",
        "rms_norm_eps": 1e-6, "tie_word_embeddings": false,
    }))
}

/// Dimensions of a RecurrentGemma (Griffin) model.
#[derive(Clone, Copy, Debug)]
pub struct GriffinDims {
    /// Vocabulary.
    pub vocab: u32,
    /// Model width.
    pub d_model: u32,
    /// Layers: (recurrent, recurrent, attention) repeated.
    pub n_layer: u32,
    /// Attention heads (head dimension = width / heads).
    pub n_heads: u32,
    /// Key/value heads.
    pub n_kv_heads: u32,
    /// `intermediate_size` as the config states it (twice the MLP width).
    pub intermediate_size: u32,
    /// Local attention window.
    pub window: u32,
}

/// A `RecurrentGemmaForCausalLM` config: RG-LRU as wide as the model,
/// conv 4, half-rotary attention, logit soft cap 30, tied embeddings.
pub fn recurrent_gemma_shape(d: GriffinDims) -> ShapeConfig {
    ShapeConfig::plain(json!({
        "architectures": ["RecurrentGemmaForCausalLM"], "model_type": "recurrent_gemma",
        "vocab_size": d.vocab, "hidden_size": d.d_model, "num_hidden_layers": d.n_layer,
        "num_attention_heads": d.n_heads, "num_key_value_heads": d.n_kv_heads, "lru_width": d.d_model,
        "attention_window_size": d.window, "conv1d_width": 4, "intermediate_size": d.intermediate_size,
        "logits_soft_cap": 30.0, "rms_norm_eps": 1e-6, "partial_rotary_factor": 0.5, "rope_theta": 10000.0,
        "block_types": ["recurrent", "recurrent", "attention"], "hidden_activation": "gelu_pytorch_tanh",
        "attention_bias": false, "tie_word_embeddings": true,
    }))
}

/// A GRU (`cell` "gru") or LSTM ("lstm") language model in eddy's documented
/// layout: embedding, `n_layer` stacked cells with biases, biased head.
pub fn rnn_shape(cell: &str, vocab: u32, embed: u32, hidden: u32, n_layer: u32) -> ShapeConfig {
    ShapeConfig::plain(json!({
        "model_type": cell, "vocab_size": vocab, "embedding_dim": embed, "hidden_size": hidden,
        "num_layers": n_layer, "bias": true, "head_bias": true,
    }))
}

/// A named public shape for `eddy bench --random-model`.
pub struct PublicShape {
    /// The name to pass.
    pub name: &'static str,
    /// Where the dimensions come from.
    pub source: &'static str,
    make: fn() -> ShapeConfig,
}

impl PublicShape {
    /// The shape's config.
    pub fn config(&self) -> ShapeConfig {
        (self.make)()
    }
}

/// LFM2-350M and LFM2-1.2B: `full_attn_idxs` of their configs.
const LFM2_ATTENTION: [u32; 6] = [2, 5, 8, 10, 12, 14];

/// Every shape `eddy bench --random-model` knows. Numbers are the public
/// `config.json` values of each checkpoint (or, where marked, eddy's own
/// choice); `source` says which and what was not re-checked.
pub static PUBLIC_SHAPES: &[PublicShape] = &[
    PublicShape {
        name: "mamba-130m",
        source: "state-spaces/mamba-130m-hf config.json: 768 wide, 24 layers, vocab 50277 padded to 50280 \
                 (checked against a copy of the config values)",
        make: || mamba1_shape(50280, 768, 24),
    },
    PublicShape {
        name: "mamba-370m",
        source: "state-spaces/mamba-370m-hf config.json: 1024 wide, 48 layers (checked against a copy)",
        make: || mamba1_shape(50280, 1024, 48),
    },
    PublicShape {
        name: "mamba-790m",
        source: "state-spaces/mamba-790m-hf config.json: 1536 wide, 48 layers (checked against a copy)",
        make: || mamba1_shape(50280, 1536, 48),
    },
    PublicShape {
        name: "mamba-1.4b",
        source: "state-spaces/mamba-1.4b-hf config.json: 2048 wide, 48 layers (checked against a copy)",
        make: || mamba1_shape(50280, 2048, 48),
    },
    PublicShape {
        name: "mamba-2.8b",
        source: "state-spaces/mamba-2.8b-hf config.json: 2560 wide, 64 layers (checked against a copy)",
        make: || mamba1_shape(50280, 2560, 64),
    },
    PublicShape {
        name: "mamba2-130m",
        source: "state-spaces/mamba2-130m config.json (d_model 768, n_layer 24, vocab 50277 padded to a \
                 multiple of 16 = 50288) with mamba_ssm's Mamba-2 defaults (d_state 128, headdim 64); \
                 not re-checked against the config here",
        make: || mamba2_shape(50288, 768, 24, 128),
    },
    PublicShape {
        name: "mamba2-780m",
        source: "state-spaces/mamba2-780m config.json (d_model 1536, n_layer 48, vocab 50288 padded), \
                 mamba_ssm's Mamba-2 defaults; not re-checked here",
        make: || mamba2_shape(50288, 1536, 48, 128),
    },
    PublicShape {
        name: "mamba2-2.7b",
        source: "state-spaces/mamba2-2.7b config.json (d_model 2560, n_layer 64, vocab 50288 padded), \
                 mamba_ssm's Mamba-2 defaults; not re-checked here",
        make: || mamba2_shape(50288, 2560, 64, 128),
    },
    PublicShape {
        name: "lfm2-350m",
        source: "LiquidAI/LFM2-350M config.json: 1024 wide, 16 layers, 16 heads (8 KV), vocab 65536; MLP \
                 4608 = block_ff_dim 6656 after block_auto_adjust_ff_dim (2/3, multiple of 256); checked \
                 against copies of the config",
        make: || lfm2_shape(65536, 1024, 16, 16, 8, 4608, &LFM2_ATTENTION),
    },
    PublicShape {
        name: "lfm2-1.2b",
        source: "LiquidAI/LFM2-1.2B config.json: 2048 wide, 16 layers, 32 heads (8 KV), vocab 65536; MLP \
                 8192 = block_ff_dim 12288 after block_auto_adjust_ff_dim; not re-checked here",
        make: || lfm2_shape(65536, 2048, 16, 32, 8, 8192, &LFM2_ATTENTION),
    },
    PublicShape {
        name: "rwkv7-0.1b",
        source: "BlinkDL RWKV-x070-World-0.1B (fla-hub/rwkv7-0.1B-world): 768 wide, 12 layers, head 64, \
                 MLP 3072, vocab 65536, LoRA ranks decay 64 / a 64 / v 32 / gate 128 (ranks checked against \
                 third-party configs of the 0.1B)",
        make: || rwkv7_shape(65536, 768, 12, 3072, [64, 64, 32, 128]),
    },
    PublicShape {
        name: "rwkv7-0.4b",
        source: "BlinkDL RWKV-x070-World-0.4B (fla-hub/rwkv7-0.4B-world): 1024 wide, 24 layers, head 64, \
                 MLP 4096, vocab 65536, LoRA ranks 64 / 64 / 32 / 128 (ranks from a third-party \
                 training config of the 0.4B, not re-checked against the weights)",
        make: || rwkv7_shape(65536, 1024, 24, 4096, [64, 64, 32, 128]),
    },
    PublicShape {
        name: "rwkv4-169m",
        source: "RWKV/rwkv-4-169m-pile config.json: 768 wide, 12 layers, vocab 50277, MLP 3072 \
                 (not re-checked here)",
        make: || rwkv4_shape(50277, 768, 12),
    },
    PublicShape {
        name: "gla-340m",
        source:
            "fla-hub/gla-340M-15B config.json: 1024 wide, 24 layers, 4 heads, expand_k 0.5, vocab 32000; \
                 MLP 2816 = fla's hidden_ratio 4 x 2/3 rounded up to 256 (the config leaves \
                 intermediate_size null; not re-checked against the weights)",
        make: || gla_shape(32000, 1024, 24, 4, 2816),
    },
    PublicShape {
        name: "gated-deltanet-0.4b",
        source: "eddy's shape: Qwen3-Next-80B-A3B's linear-attention layer (key/value heads 1:2, head dim \
                 128, conv 4, vocab 151936, MLP 2.5x width) at half its width: 1024 wide, 8 key and 16 \
                 value heads, MLP 2560, 16 layers, all linear, dense MLPs, tied embeddings",
        make: || {
            gated_deltanet_shape(DeltaNetDims {
                vocab: 151_936,
                d_model: 1024,
                n_layer: 16,
                n_k_heads: 8,
                n_v_heads: 16,
                head_dim: 128,
                d_ffn: 2560,
            })
        },
    },
    PublicShape {
        name: "qwen3-next-80b-a3b",
        source: "Qwen/Qwen3-Next-80B-A3B config.json values as recalled (not re-checked against the file): \
                 2048 wide, 48 layers (3 Gated DeltaNet + 1 gated attention) x 12, 512 experts of 512, 10 \
                 per token, shared expert 512, vocab 151936",
        make: qwen3_next_80b_a3b_shape,
    },
    PublicShape {
        name: "recurrentgemma-2b",
        source: "google/recurrentgemma-2b config.json: 2560 wide, 26 layers, 10 heads (1 KV), window 2048, \
                 intermediate_size 15360, vocab 256000 (not re-checked here)",
        make: || {
            recurrent_gemma_shape(GriffinDims {
                vocab: 256_000,
                d_model: 2560,
                n_layer: 26,
                n_heads: 10,
                n_kv_heads: 1,
                intermediate_size: 15360,
                window: 2048,
            })
        },
    },
    PublicShape {
        name: "gru-50m",
        source: "eddy's shape (no public checkpoint): vocab 10000 (Penn Treebank's word vocabulary), \
                 embedding and hidden 1024, 5 GRU layers",
        make: || rnn_shape("gru", 10000, 1024, 1024, 5),
    },
    PublicShape {
        name: "lstm-50m",
        source: "eddy's shape (no public checkpoint): vocab 10000 (Penn Treebank's word vocabulary), \
                 embedding and hidden 1024, 4 LSTM layers",
        make: || rnn_shape("lstm", 10000, 1024, 1024, 4),
    },
];

/// The public shape called `name`.
pub fn public_shape(name: &str) -> Option<&'static PublicShape> {
    PUBLIC_SHAPES.iter().find(|s| s.name == name)
}

/// One line per public shape: name, family and parameter count (from the
/// converter's plan, so it is what the built file holds).
pub fn public_shape_table() -> String {
    let mut out = String::new();
    for s in PUBLIC_SHAPES {
        let line = match s.config().plan() {
            Ok(p) => format!(
                "  {:<20} {:<16} {:>8.1} M params\n",
                s.name,
                p.architecture().name(),
                p.parameters() as f64 / 1e6
            ),
            Err(e) => format!("  {:<20} (config rejected: {e})\n", s.name),
        };
        out.push_str(&line);
    }
    out
}

/// One small shape per family (a few hundred thousand weights), built by
/// the same constructors as the public shapes: for tests.
pub fn small_shapes() -> Vec<(&'static str, ShapeConfig)> {
    let deltanet = DeltaNetDims {
        vocab: 300,
        d_model: 64,
        n_layer: 2,
        n_k_heads: 2,
        n_v_heads: 4,
        head_dim: 32,
        d_ffn: 128,
    };
    let griffin = GriffinDims {
        vocab: 300,
        d_model: 64,
        n_layer: 3,
        n_heads: 2,
        n_kv_heads: 1,
        intermediate_size: 256,
        window: 16,
    };
    vec![
        ("mamba1", mamba1_shape(300, 64, 2)),
        ("mamba2", mamba2_shape(300, 64, 2, 16)),
        ("lfm2", lfm2_shape(300, 128, 3, 2, 1, 256, &[1])),
        ("rwkv7", rwkv7_shape(300, 128, 2, 256, [32, 32, 32, 32])),
        ("rwkv4", rwkv4_shape(300, 64, 2)),
        ("gla", gla_shape(300, 64, 2, 2, 128)),
        ("gated-deltanet", gated_deltanet_shape(deltanet)),
        ("recurrent-gemma", recurrent_gemma_shape(griffin)),
        ("gru", rnn_shape("gru", 300, 64, 64, 2)),
        ("lstm", rnn_shape("lstm", 300, 64, 64, 2)),
    ]
}
