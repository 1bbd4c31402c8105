//! What hybrid families (recurrent or convolution layers mixed with
//! attention layers) share: the per-layer kind table and the attention
//! hyper-parameters and cache options.

use crate::arch::HParam;
use crate::attention::{self, AttentionShape, CacheLayout, ChunkRows, KvCacheOptions, QkNorms};
use crate::error::ModelError;
use crate::family::RunCtx;
use crate::file::{BlobKind, EddyFile};
use crate::linear::Linear;
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

/// The attention hyper-parameters of a file, checked: query heads (read
/// from `heads_key`: families whose recurrent layers use `NHeads` store
/// them elsewhere), key/value heads, values per head, rotary values per
/// head, rotary base.
pub(crate) fn attention_hparams(
    file: &EddyFile<'_>,
    heads_key: HParam,
) -> Result<(u32, u32, u32, u32, f32), ModelError> {
    let n_heads = dim(file, heads_key, 4096)?;
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
    Ok((n_heads, n_kv_heads, head_dim, rotary_dims, rope_theta))
}

/// Read the attention shape hyper-parameters (`n_heads`, `n_kv_heads`,
/// `head_dim`, `rotary_dims`, `rope_theta`); scores are scaled by
/// `score_scale`.
pub(crate) fn attention_shape(file: &EddyFile<'_>, score_scale: f32) -> Result<AttentionShape, ModelError> {
    let (n_heads, n_kv_heads, head_dim, rotary_dims, rope_theta) = attention_hparams(file, HParam::NHeads)?;
    Ok(AttentionShape {
        n_heads: n_heads as usize,
        n_kv_heads: n_kv_heads as usize,
        head_dim: head_dim as usize,
        rotary_dims: rotary_dims as usize,
        rope_theta,
        score_scale,
    })
}

/// What the config of a hybrid says about its layers; the attention
/// shape, cache layout and state sizes follow from it.
pub(crate) trait HybridConfig {
    /// Query heads, key/value heads, values per head, leading values per
    /// head with rotary embedding, rotary base.
    fn attention_params(&self) -> (u32, u32, u32, u32, f32);

    /// How attention layers cache keys and values.
    fn kv_options(&self) -> KvCacheOptions;

    /// LM-Infinite's distance limit of attention layers (`None`: off).
    fn kv_distance_limit(&self) -> Option<u32>;

    /// One byte per layer: 1 for attention.
    fn layer_kinds(&self) -> &[u8];

    /// f32 words of the state of a layer that is not attention (`None` on
    /// overflow).
    fn mixer_state_words(&self) -> Option<usize>;

    /// Shape of every attention layer (scores scaled by `head_dim^-1/2`).
    fn attention(&self) -> AttentionShape {
        let (n_heads, n_kv_heads, head_dim, rotary_dims, rope_theta) = self.attention_params();
        AttentionShape {
            n_heads: n_heads as usize,
            n_kv_heads: n_kv_heads as usize,
            head_dim: head_dim as usize,
            rotary_dims: rotary_dims as usize,
            rope_theta,
            score_scale: 1.0 / libm::sqrtf(head_dim as f32),
        }
    }

    /// Cache layout of every attention layer (with its distance limit).
    fn cache(&self) -> Result<CacheLayout, ModelError> {
        let limit = self.kv_distance_limit();
        cache_layout(&self.attention(), self.kv_options())?
            .with_distance_limit(limit)
            .ok_or(ModelError::BadKvDistanceLimit { limit: limit.unwrap_or(0) })
    }

    /// Whether layer `i` is an attention layer.
    fn is_attention(&self, i: usize) -> bool {
        self.layer_kinds().get(i) == Some(&1)
    }

    /// f32 words of layer `i`'s state: its KV cache, or the other mixer's.
    fn layer_state_words(&self, i: usize) -> Option<usize> {
        if self.is_attention(i) {
            self.cache().ok()?.words()
        } else {
            self.mixer_state_words()
        }
    }

    /// f32 words of state: the position, then every layer's.
    fn hybrid_state_words(&self) -> Option<usize> {
        (0..self.layer_kinds().len())
            .try_fold(attention::POSITION_WORDS, |acc, i| acc.checked_add(self.layer_state_words(i)?))
    }
}

/// Implements [`HybridConfig`] for a config type with the fields
/// `n_heads`, `n_kv_heads`, `head_dim`, `rotary_dims`, `rope_theta`, `kv`,
/// `kv_distance_limit` and `layer_kinds`; `$words` gives the state words of a layer that is
/// not attention, with `$c` bound to the config.
macro_rules! hybrid_config {
    ($ty:ty, mixer_state_words = |$c:ident| $words:expr) => {
        impl $crate::families::hybrid::HybridConfig for $ty {
            fn attention_params(&self) -> (u32, u32, u32, u32, f32) {
                (self.n_heads, self.n_kv_heads, self.head_dim, self.rotary_dims, self.rope_theta)
            }

            fn kv_options(&self) -> $crate::attention::KvCacheOptions {
                self.kv
            }

            fn kv_distance_limit(&self) -> Option<u32> {
                self.kv_distance_limit
            }

            fn layer_kinds(&self) -> &[u8] {
                self.layer_kinds
            }

            fn mixer_state_words(&self) -> Option<usize> {
                let $c = self;
                $words
            }
        }
    };
}
pub(crate) use hybrid_config;

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

/// The weights of one attention layer: projections, optional per-head
/// RMSNorms of queries and keys (applied before rotary embedding).
pub(crate) struct AttentionWeights<'a> {
    /// Query projection.
    pub q: Linear<'a>,
    /// Key projection.
    pub k: Linear<'a>,
    /// Value projection.
    pub v: Linear<'a>,
    /// Output projection.
    pub o: Linear<'a>,
    /// Per-head query and key RMSNorm weights, and their epsilon.
    pub qk_norms: QkNorms<'a>,
}

/// Row buffers an attention layer works in, each at least `n` rows.
pub(crate) struct AttentionRows<'r> {
    /// Normed input, `n * d_model`.
    pub normed: &'r [f32],
    /// Queries, keys, values and attention output.
    pub qkv: ChunkRows<'r>,
    /// Output projection, `n * d_model`.
    pub out: &'r mut [f32],
    /// [`attention::scratch_words`] words.
    pub scratch: &'r mut [f32],
}

impl AttentionWeights<'_> {
    /// The layer for `n` tokens at positions `pos..pos + n`: projections
    /// batched over the chunk, attention over the layer's cache (its state)
    /// with the chunk's queries split across workers
    /// ([`attention::attend_chunk`]), output projection batched.
    #[allow(clippy::too_many_arguments)] // shape, cache, rows and the compute context
    pub(crate) fn apply(
        &self,
        shape: &AttentionShape,
        layout: &CacheLayout,
        layer_state: &mut [f32],
        pos: u64,
        n: usize,
        r: AttentionRows<'_>,
        rc: &mut RunCtx<'_, '_, '_>,
    ) {
        let hd = shape.head_dim;
        let (qd, kd) = (shape.n_heads * hd, shape.n_kv_heads * hd);
        let mut qkv = r.qkv;
        let ys = [&mut qkv.q[..n * qd], &mut qkv.k[..n * kd], &mut qkv.v[..n * kd]];
        rc.project_fused([&self.q, &self.k, &self.v], r.normed, ys, n);
        let cache = bytemuck::cast_slice_mut::<f32, u8>(layer_state);
        attention::attend_chunk(shape, layout, cache, pos, n, &mut qkv, self.qk_norms, r.scratch, rc.cx);
        rc.project(&self.o, &qkv.out[..n * qd], &mut r.out[..n * self.o.rows()], n);
    }
}
