//! Architectures and hyper-parameter keys recorded in the file header.

/// Model family of a `.eddy` file. The codes are part of the file format.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Architecture {
    /// Mamba-1 (selective state-space model), as `MambaForCausalLM`.
    Mamba1,
}

impl Architecture {
    /// Decode an architecture code; `None` if unknown to this version.
    pub fn from_code(code: u32) -> Option<Self> {
        match code {
            1 => Some(Architecture::Mamba1),
            _ => None,
        }
    }

    /// The file code of this architecture.
    pub fn code(self) -> u32 {
        match self {
            Architecture::Mamba1 => 1,
        }
    }

    /// Human-readable name.
    pub fn name(self) -> &'static str {
        match self {
            Architecture::Mamba1 => "mamba1",
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
}

impl HParam {
    /// All keys this version knows.
    pub const ALL: [HParam; 13] = [
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
        }
    }

    /// True if the value is an f32 stored as bits.
    pub fn is_float(self) -> bool {
        matches!(self, HParam::NormEps)
    }
}
