//! Architectures and hyper-parameter keys recorded in the file header.

/// Model family of a `.eddy` file. The codes are part of the file format.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Architecture {
    /// Mamba-1 (selective state-space model), as `MambaForCausalLM`.
    Mamba1,
    /// Mamba-2 (multi-head SSD), as `Mamba2ForCausalLM`.
    Mamba2,
    /// Stacked GRU layers (PyTorch `nn.GRU`) between embedding and head.
    Gru,
    /// Stacked LSTM layers (PyTorch `nn.LSTM`) between embedding and head.
    Lstm,
    /// RWKV-4, as `RwkvForCausalLM`.
    Rwkv4,
    /// Gated DeltaNet layers with SwiGLU MLPs, as the linear-attention
    /// layers of `Qwen3NextForCausalLM`.
    GatedDeltaNet,
    /// RWKV-7 "Goose" (generalized delta rule), BlinkDL's checkpoint layout.
    Rwkv7,
    /// Gated linear attention (GLA) with SwiGLU MLPs, in fla's
    /// `GLAForCausalLM` layout.
    Gla,
    /// LFM2 hybrid: gated short-convolution layers and grouped-query
    /// attention layers, each followed by a SwiGLU MLP, as `Lfm2ForCausalLM`.
    Lfm2,
    /// RecurrentGemma / Griffin hybrid: RG-LRU recurrent blocks and local
    /// sliding-window attention, as `RecurrentGemmaForCausalLM`.
    RecurrentGemma,
}

impl Architecture {
    /// Decode an architecture code; `None` if unknown to this version.
    pub fn from_code(code: u32) -> Option<Self> {
        match code {
            1 => Some(Architecture::Mamba1),
            2 => Some(Architecture::Mamba2),
            3 => Some(Architecture::Gru),
            4 => Some(Architecture::Lstm),
            5 => Some(Architecture::Rwkv4),
            6 => Some(Architecture::GatedDeltaNet),
            7 => Some(Architecture::Rwkv7),
            8 => Some(Architecture::Gla),
            9 => Some(Architecture::Lfm2),
            10 => Some(Architecture::RecurrentGemma),
            _ => None,
        }
    }

    /// The file code of this architecture.
    pub fn code(self) -> u32 {
        match self {
            Architecture::Mamba1 => 1,
            Architecture::Mamba2 => 2,
            Architecture::Gru => 3,
            Architecture::Lstm => 4,
            Architecture::Rwkv4 => 5,
            Architecture::GatedDeltaNet => 6,
            Architecture::Rwkv7 => 7,
            Architecture::Gla => 8,
            Architecture::Lfm2 => 9,
            Architecture::RecurrentGemma => 10,
        }
    }

    /// Human-readable name.
    pub fn name(self) -> &'static str {
        match self {
            Architecture::Mamba1 => "mamba1",
            Architecture::Mamba2 => "mamba2",
            Architecture::Gru => "gru",
            Architecture::Lstm => "lstm",
            Architecture::Rwkv4 => "rwkv4",
            Architecture::GatedDeltaNet => "gated-deltanet",
            Architecture::Rwkv7 => "rwkv7",
            Architecture::Gla => "gla",
            Architecture::Lfm2 => "lfm2",
            Architecture::RecurrentGemma => "recurrent-gemma",
        }
    }
}

/// Hyper-parameter keys. Each is stored as a `(key, u32 value)` pair;
/// float values are stored as their IEEE-754 bits. The codes are part of
/// the file format.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HParam {
    /// Vocabulary size (rows of the embedding).
    VocabSize,
    /// Model width.
    DModel,
    /// Number of layers.
    NLayer,
    /// Recurrent state size per channel (Mamba `d_state`).
    DState,
    /// Depthwise causal convolution width.
    DConv,
    /// Inner width (`expand * d_model` for Mamba).
    DInner,
    /// Rank of the time-step projection.
    DtRank,
    /// RMSNorm epsilon (f32 bits).
    NormEps,
    /// 1 if the LM head shares the embedding matrix.
    TiedEmbeddings,
    /// 1 if in_proj/out_proj carry a bias.
    ProjBias,
    /// 1 if conv1d carries a bias.
    ConvBias,
    /// Token id that begins a sequence, if any (u32::MAX: none).
    BosToken,
    /// Token id that ends a sequence, if any (u32::MAX: none).
    EosToken,
    /// Width of the first layer's input (RNN embedding width).
    InputDim,
    /// 1 if the LM head carries a bias.
    HeadBias,
    /// Number of heads (Mamba-2 SSD heads).
    NHeads,
    /// Number of B/C groups (Mamba-2) or key heads (Gated DeltaNet), each
    /// shared by `n_heads / n_groups` heads.
    NGroups,
    /// Feed-forward (MLP) width.
    DFfn,
    /// RWKV-7 decay LoRA rank.
    LoraDecay,
    /// RWKV-7 in-context learning rate (`a`) LoRA rank.
    LoraIclr,
    /// RWKV-7 value-residual LoRA rank.
    LoraValue,
    /// RWKV-7 output gate LoRA rank.
    LoraGate,
    /// Epsilon of the per-head GroupNorm (f32 bits).
    HeadNormEps,
    /// GLA: the log-sigmoid gate is divided by this (f32 bits).
    GateNormalizer,
    /// Key/value heads of attention layers (grouped-query attention).
    NKvHeads,
    /// Values per attention head.
    HeadDim,
    /// Rotary embedding base frequency (f32 bits).
    RopeTheta,
    /// Leading values of each attention head that get rotary embedding.
    RotaryDims,
    /// Tokens a local-attention layer sees (0: full attention).
    AttentionWindow,
    /// Final logits soft cap `c * tanh(x / c)` (f32 bits; 0: none).
    LogitSoftCap,
}

impl HParam {
    /// All keys this version knows.
    pub const ALL: [HParam; 30] = [
        HParam::VocabSize,
        HParam::DModel,
        HParam::NLayer,
        HParam::DState,
        HParam::DConv,
        HParam::DInner,
        HParam::DtRank,
        HParam::NormEps,
        HParam::TiedEmbeddings,
        HParam::ProjBias,
        HParam::ConvBias,
        HParam::BosToken,
        HParam::EosToken,
        HParam::InputDim,
        HParam::HeadBias,
        HParam::NHeads,
        HParam::NGroups,
        HParam::DFfn,
        HParam::LoraDecay,
        HParam::LoraIclr,
        HParam::LoraValue,
        HParam::LoraGate,
        HParam::HeadNormEps,
        HParam::GateNormalizer,
        HParam::NKvHeads,
        HParam::HeadDim,
        HParam::RopeTheta,
        HParam::RotaryDims,
        HParam::AttentionWindow,
        HParam::LogitSoftCap,
    ];

    /// File code of the key.
    pub fn code(self) -> u32 {
        match self {
            HParam::VocabSize => 1,
            HParam::DModel => 2,
            HParam::NLayer => 3,
            HParam::DState => 4,
            HParam::DConv => 5,
            HParam::DInner => 6,
            HParam::DtRank => 7,
            HParam::NormEps => 8,
            HParam::TiedEmbeddings => 9,
            HParam::ProjBias => 10,
            HParam::ConvBias => 11,
            HParam::BosToken => 12,
            HParam::EosToken => 13,
            HParam::InputDim => 14,
            HParam::HeadBias => 15,
            HParam::NHeads => 16,
            HParam::NGroups => 17,
            HParam::DFfn => 18,
            HParam::LoraDecay => 19,
            HParam::LoraIclr => 20,
            HParam::LoraValue => 21,
            HParam::LoraGate => 22,
            HParam::HeadNormEps => 23,
            HParam::GateNormalizer => 24,
            HParam::NKvHeads => 25,
            HParam::HeadDim => 26,
            HParam::RopeTheta => 27,
            HParam::RotaryDims => 28,
            HParam::AttentionWindow => 29,
            HParam::LogitSoftCap => 30,
        }
    }

    /// Decode a key code; `None` for keys unknown to this version (they are
    /// kept in the file and ignored).
    pub fn from_code(code: u32) -> Option<Self> {
        HParam::ALL.iter().copied().find(|k| k.code() == code)
    }

    /// Name as printed by `eddy inspect`.
    pub fn name(self) -> &'static str {
        match self {
            HParam::VocabSize => "vocab_size",
            HParam::DModel => "d_model",
            HParam::NLayer => "n_layer",
            HParam::DState => "d_state",
            HParam::DConv => "d_conv",
            HParam::DInner => "d_inner",
            HParam::DtRank => "dt_rank",
            HParam::NormEps => "norm_eps",
            HParam::TiedEmbeddings => "tied_embeddings",
            HParam::ProjBias => "proj_bias",
            HParam::ConvBias => "conv_bias",
            HParam::BosToken => "bos_token",
            HParam::EosToken => "eos_token",
            HParam::InputDim => "input_dim",
            HParam::HeadBias => "head_bias",
            HParam::NHeads => "n_heads",
            HParam::NGroups => "n_groups",
            HParam::DFfn => "d_ffn",
            HParam::LoraDecay => "lora_decay",
            HParam::LoraIclr => "lora_iclr",
            HParam::LoraValue => "lora_value",
            HParam::LoraGate => "lora_gate",
            HParam::HeadNormEps => "head_norm_eps",
            HParam::GateNormalizer => "gate_normalizer",
            HParam::NKvHeads => "n_kv_heads",
            HParam::HeadDim => "head_dim",
            HParam::RopeTheta => "rope_theta",
            HParam::RotaryDims => "rotary_dims",
            HParam::AttentionWindow => "attention_window",
            HParam::LogitSoftCap => "logit_soft_cap",
        }
    }

    /// True if the value is an f32 stored as bits.
    pub fn is_float(self) -> bool {
        matches!(
            self,
            HParam::NormEps
                | HParam::HeadNormEps
                | HParam::GateNormalizer
                | HParam::RopeTheta
                | HParam::LogitSoftCap
        )
    }
}
