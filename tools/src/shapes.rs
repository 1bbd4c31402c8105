//! Hyper-parameters of public checkpoints. For `eddy memory --shape`: the
//! per-sequence state of a model you have not downloaded, computed by the
//! runtime's own family configurations (weights are not needed for it).
//! For `eddy bench --random-model`: [`PUBLIC_SHAPES`], each a `config.json`
//! the family's converter plans a file from. Values are the published
//! `config.json` settings of each model (each entry says which).

use eddy::gated_deltanet::{GatedDeltaNetConfig, Qwen3NextLayers};
use eddy::lfm2::Lfm2Config;
use eddy::mamba::Mamba1Config;
use eddy::mamba2::Mamba2Config;
use eddy::moe::MoeShape;
use eddy::recurrent_gemma::RecurrentGemmaConfig;
use eddy::{KvCacheOptions, KvFormat, STATE_HEADER_WORDS};

mod random_shapes;
pub use random_shapes::*;

/// Layer kinds of LFM2-350M and LFM2-1.2B: attention at 2, 5, 8, 10, 12, 14.
static LFM2_16_LAYERS: [u8; 16] = [0, 0, 1, 0, 0, 1, 0, 0, 1, 0, 1, 0, 1, 0, 1, 0];
/// Layer kinds of RecurrentGemma-2B: (recurrent, recurrent, attention) x 26.
static GRIFFIN_26_LAYERS: [u8; 26] =
    [0, 0, 1, 0, 0, 1, 0, 0, 1, 0, 0, 1, 0, 0, 1, 0, 0, 1, 0, 0, 1, 0, 0, 1, 0, 0];

/// Layer kinds of Qwen3-Next-80B-A3B: (Gated DeltaNet, Gated DeltaNet,
/// Gated DeltaNet, gated attention) x 12, every MLP a mixture of experts
/// (bit 1).
static QWEN3_NEXT_48_LAYERS: [u8; 48] = {
    let mut kinds = [2u8; 48];
    let mut i = 3;
    while i < 48 {
        kinds[i] = 3;
        i += 4;
    }
    kinds
};

/// A named public model shape.
#[derive(Clone, Copy, Debug)]
pub enum NamedShape {
    /// A Mamba-1 checkpoint.
    Mamba1(Mamba1Config),
    /// A Mamba-2 checkpoint.
    Mamba2(Mamba2Config),
    /// An LFM2 checkpoint.
    Lfm2(Lfm2Config<'static>),
    /// A RecurrentGemma checkpoint.
    RecurrentGemma(RecurrentGemmaConfig<'static>),
    /// A Qwen3-Next checkpoint (the Gated DeltaNet family).
    Qwen3Next(GatedDeltaNetConfig<'static>),
}

/// Names [`named`] knows.
pub const SHAPE_NAMES: &[&str] = &[
    "mamba-130m",
    "mamba-2.8b",
    "mamba2-2.7b",
    "lfm2-350m",
    "lfm2-1.2b",
    "recurrentgemma-2b",
    "qwen3-next-80b-a3b",
];

fn mamba1(d_model: u32, n_layer: u32) -> NamedShape {
    NamedShape::Mamba1(mamba1_config(d_model, n_layer))
}

/// A public Mamba-1 checkpoint's configuration: width and depth vary, the
/// rest is what every released size shares.
pub fn mamba1_config(d_model: u32, n_layer: u32) -> Mamba1Config {
    Mamba1Config {
        vocab_size: 50280,
        d_model,
        n_layer,
        d_state: 16,
        d_conv: 4,
        d_inner: 2 * d_model,
        dt_rank: d_model.div_ceil(16),
        norm_eps: 1e-5,
        tied_embeddings: true,
        proj_bias: false,
        conv_bias: true,
    }
}

fn lfm2(d_model: u32, n_heads: u32, d_ffn: u32) -> NamedShape {
    NamedShape::Lfm2(Lfm2Config {
        vocab_size: 65536,
        d_model,
        n_layer: 16,
        d_ffn,
        d_conv: 3,
        conv_bias: false,
        norm_eps: 1e-5,
        tied_embeddings: true,
        n_heads,
        n_kv_heads: 8,
        head_dim: 64,
        rotary_dims: 64,
        rope_theta: 1_000_000.0,
        layer_kinds: &LFM2_16_LAYERS,
        kv: KvCacheOptions { format: KvFormat::Q4, sinks: 4, window: 4092 },
    })
}

/// The shape called `name`, if known.
pub fn named(name: &str) -> Option<NamedShape> {
    Some(match name {
        "mamba-130m" => mamba1(768, 24),
        "mamba-2.8b" => mamba1(2560, 64),
        "mamba2-2.7b" => NamedShape::Mamba2(Mamba2Config {
            vocab_size: 50288,
            d_model: 2560,
            n_layer: 64,
            d_state: 128,
            d_conv: 4,
            d_inner: 5120,
            n_heads: 80,
            n_groups: 1,
            norm_eps: 1e-5,
            tied_embeddings: true,
            proj_bias: false,
            conv_bias: true,
        }),
        "lfm2-350m" => lfm2(1024, 16, 4608),
        "lfm2-1.2b" => lfm2(2048, 32, 8192),
        "recurrentgemma-2b" => NamedShape::RecurrentGemma(RecurrentGemmaConfig {
            vocab_size: 256_000,
            d_model: 2560,
            n_layer: 26,
            lru_width: 2560,
            n_heads: 10,
            n_kv_heads: 1,
            head_dim: 256,
            rotary_dims: 128,
            rope_theta: 10_000.0,
            attention_window: 2048,
            d_conv: 4,
            d_ffn: 7680,
            attention_bias: false,
            norm_eps: 1e-6,
            logit_soft_cap: 30.0,
            tied_embeddings: true,
            layer_kinds: &GRIFFIN_26_LAYERS,
            kv: KvCacheOptions { format: KvFormat::Q4, sinks: 0, window: 2048 },
        }),
        // Qwen/Qwen3-Next-80B-A3B-Instruct's config.json.
        "qwen3-next-80b-a3b" => NamedShape::Qwen3Next(GatedDeltaNetConfig {
            vocab_size: 151_936,
            d_model: 2048,
            n_layer: 48,
            n_v_heads: 32,
            n_k_heads: 16,
            head_k_dim: 128,
            head_v_dim: 128,
            d_conv: 4,
            d_ffn: 5120,
            norm_eps: 1e-6,
            tied_embeddings: false,
            hybrid: Some(Qwen3NextLayers {
                n_heads: 16,
                n_kv_heads: 2,
                head_dim: 256,
                rotary_dims: 64,
                rope_theta: 10_000_000.0,
                moe: Some(MoeShape {
                    experts: 512,
                    top_k: 10,
                    d_expert: 512,
                    d_shared: 512,
                    norm_top_k: true,
                }),
                layer_kinds: &QWEN3_NEXT_48_LAYERS,
                kv: KvCacheOptions { format: KvFormat::Q4, sinks: 4, window: 4092 },
            }),
        }),
        _ => return None,
    })
}

impl NamedShape {
    /// Family name as `eddy inspect` prints it.
    pub fn architecture(&self) -> &'static str {
        match self {
            NamedShape::Mamba1(_) => "mamba1",
            NamedShape::Mamba2(_) => "mamba2",
            NamedShape::Lfm2(_) => "lfm2",
            NamedShape::RecurrentGemma(_) => "recurrent-gemma",
            NamedShape::Qwen3Next(_) => "gated-deltanet",
        }
    }

    /// The default KV cache options, if the model has attention layers.
    pub fn kv_cache(&self) -> Option<KvCacheOptions> {
        match self {
            NamedShape::Lfm2(c) => Some(c.kv),
            NamedShape::RecurrentGemma(c) => Some(c.kv),
            NamedShape::Qwen3Next(c) => c.hybrid.map(|h| h.kv),
            _ => None,
        }
    }

    /// Session state bytes (as `Model::state_bytes` reports them) with the
    /// attention layers caching as `kv` says.
    pub fn state_bytes(&self, kv: Option<KvCacheOptions>) -> Option<usize> {
        let words = match (*self, kv) {
            (NamedShape::Mamba1(c), _) => c.state_words(),
            (NamedShape::Mamba2(c), _) => c.state_words(),
            (NamedShape::Lfm2(c), kv) => Lfm2Config { kv: kv.unwrap_or(c.kv), ..c }.state_words(),
            (NamedShape::RecurrentGemma(c), kv) => {
                RecurrentGemmaConfig { kv: kv.unwrap_or(c.kv), ..c }.state_words()
            }
            (NamedShape::Qwen3Next(c), kv) => {
                let hybrid = c.hybrid.map(|h| Qwen3NextLayers { kv: kv.unwrap_or(h.kv), ..h });
                GatedDeltaNetConfig { hybrid, ..c }.state_words()
            }
        }?;
        words.checked_add(STATE_HEADER_WORDS)?.checked_mul(4)
    }
}
