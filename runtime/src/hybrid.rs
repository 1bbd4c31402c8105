//! What hybrid families (recurrent or convolution layers mixed with
//! attention layers) share: the per-layer kind table and the attention
//! hyper-parameters and cache options.

use crate::arch::HParam;
use crate::attention::{AttentionShape, CacheLayout, KvCacheOptions};
use crate::error::ModelError;
use crate::file::{BlobKind, EddyFile};
use crate::schema::{dim, required, MAX_DIM};
use eddy_quant::KvFormat;

/// Cache format when the user does not choose one.
pub const DEFAULT_KV_FORMAT: KvFormat = KvFormat::Q4;

/// Attention sinks kept for full-attention layers by default.
pub const DEFAULT_SINKS: u32 = 4;

/// Recent tokens kept for full-attention layers by default (with the
/// sinks, 4096 cached tokens).
pub const DEFAULT_WINDOW: u32 = 4092;

/// Which layers of a hybrid are attention layers (from the file's
/// [`BlobKind::LayerKinds`] table).
#[derive(Clone, Copy, Debug)]
pub(crate) struct LayerKinds<'a> {
    kinds: &'a [u8],
}

impl<'a> LayerKinds<'a> {
    /// The table of `file`, checked to list `n_layer` kinds of 0 or 1.
    pub(crate) fn from_file(file: &EddyFile<'a>, n_layer: u32) -> Result<Self, ModelError> {
        let kinds = file.blob(BlobKind::LayerKinds).ok_or(ModelError::BadLayerKinds)?;
        if kinds.len() != n_layer as usize || kinds.iter().any(|&k| k > 1) {
            return Err(ModelError::BadLayerKinds);
        }
        Ok(LayerKinds { kinds })
    }

    /// The table: one byte per layer, 1 for attention.
    pub(crate) fn as_bytes(&self) -> &'a [u8] {
        self.kinds
    }
}

/// Read the attention shape hyper-parameters (`n_heads`, `n_kv_heads`,
/// `head_dim`, `rotary_dims`, `rope_theta`); scores are scaled by
/// `score_scale`.
pub(crate) fn attention_shape(file: &EddyFile<'_>, score_scale: f32) -> Result<AttentionShape, ModelError> {
    let n_heads = dim(file, HParam::NHeads, 4096)?;
    let n_kv_heads = dim(file, HParam::NKvHeads, 4096)?;
    if n_heads % n_kv_heads != 0 {
        return Err(ModelError::BadHParam { name: HParam::NKvHeads.name(), value: n_kv_heads });
    }
    let head_dim = dim(file, HParam::HeadDim, 4096)?;
    let rotary_dims = file.hparam(HParam::RotaryDims).unwrap_or(head_dim);
    if rotary_dims % 2 != 0 || rotary_dims > head_dim {
        return Err(ModelError::BadHParam { name: HParam::RotaryDims.name(), value: rotary_dims });
    }
    let theta_bits = required(file, HParam::RopeTheta)?;
    let rope_theta = f32::from_bits(theta_bits);
    if !(rope_theta.is_finite() && rope_theta > 1.0) {
        return Err(ModelError::BadHParam { name: HParam::RopeTheta.name(), value: theta_bits });
    }
    Ok(AttentionShape {
        n_heads: n_heads as usize,
        n_kv_heads: n_kv_heads as usize,
        head_dim: head_dim as usize,
        rotary_dims: rotary_dims as usize,
        rope_theta,
        score_scale,
    })
}

/// The model's own attention window (`None`: full attention).
pub(crate) fn native_window(file: &EddyFile<'_>) -> Result<Option<u32>, ModelError> {
    match file.hparam(HParam::AttentionWindow).unwrap_or(0) {
        0 => Ok(None),
        w if w <= MAX_DIM => Ok(Some(w)),
        w => Err(ModelError::BadHParam { name: HParam::AttentionWindow.name(), value: w }),
    }
}

/// Cache options when the user does not choose: the model's own sliding
/// window exactly, or for full attention [`DEFAULT_SINKS`] +
/// [`DEFAULT_WINDOW`]; [`DEFAULT_KV_FORMAT`].
pub(crate) fn default_kv_options(native: Option<u32>) -> KvCacheOptions {
    match native {
        Some(window) => KvCacheOptions { format: DEFAULT_KV_FORMAT, sinks: 0, window },
        None => KvCacheOptions { format: DEFAULT_KV_FORMAT, sinks: DEFAULT_SINKS, window: DEFAULT_WINDOW },
    }
}

/// The cache layout for `shape` under `options`, or the error naming why
/// the options do not fit.
pub(crate) fn cache_layout(
    shape: &AttentionShape,
    options: KvCacheOptions,
) -> Result<CacheLayout, ModelError> {
    CacheLayout::new(shape, options).ok_or(ModelError::BadKvCache {
        format: options.format.name(),
        head_dim: shape.head_dim as u32,
        sinks: options.sinks,
        window: options.window,
    })
}
