//! What every family's converter shares: reading and checking `config.json`
//! keys, the usual checkpoint name and shape rules, and building the plan.

use super::{arch_names, eddy_name, get_u32, unsupported, ConvertError, FamilyLayout, Plan};
use eddy::arch::{Architecture, HParam};
use eddy::schema::TensorSpec;
use eddy::BlobKind;
use serde_json::Value;

/// Stop unless `config.json` names this family: `architectures` lists
/// `class`, or (without that list) `model_type` is `model_type`.
pub(super) fn require_family(cfg: &Value, class: &str, model_type: &str) -> Result<(), ConvertError> {
    let (archs, found) = arch_names(cfg);
    if archs.contains(&class) || (archs.is_empty() && found == model_type) {
        Ok(())
    } else {
        Err(unsupported(cfg))
    }
}

/// Stop unless the activation under `key` (absent: `default`) is one of
/// `allowed`.
pub(super) fn require_activation(
    cfg: &Value,
    key: &'static str,
    default: &str,
    allowed: &[&str],
    why: &'static str,
) -> Result<(), ConvertError> {
    let act = cfg.get(key).and_then(Value::as_str).unwrap_or(default);
    if allowed.contains(&act) {
        Ok(())
    } else {
        Err(ConvertError::ConfigValue { key, value: act.into(), why })
    }
}

/// Required unsigned values, each of which must be positive; errors name
/// the first key that is missing or zero.
pub(super) fn dims<const N: usize>(cfg: &Value, keys: [&'static str; N]) -> Result<[u32; N], ConvertError> {
    let mut out = [0; N];
    for (slot, key) in out.iter_mut().zip(keys) {
        *slot = get_u32(cfg, key)?;
    }
    positive(&keys.into_iter().zip(out).collect::<Vec<_>>())?;
    Ok(out)
}

/// Reject zero dimensions, naming the config key.
pub(super) fn positive(dims: &[(&'static str, u32)]) -> Result<(), ConvertError> {
    for &(key, v) in dims {
        if v == 0 {
            return Err(ConvertError::ConfigValue { key, value: "0".into(), why: "must be positive" });
        }
    }
    Ok(())
}

/// `u32` config value that may be absent or `null` (then `default`); any
/// other non-integer is an error.
pub(super) fn get_u32_or(cfg: &Value, key: &'static str, default: u32) -> Result<u32, ConvertError> {
    match cfg.get(key) {
        None | Some(Value::Null) => Ok(default),
        Some(_) => get_u32(cfg, key),
    }
}

/// An optional unsigned value read leniently as the reference loaders do:
/// anything that is not an unsigned integer counts as absent (`default`).
pub(super) fn u32_or(cfg: &Value, key: &str, default: u32) -> u32 {
    cfg.get(key).and_then(Value::as_u64).map_or(default, |v| v as u32)
}

/// A float config value, `default` when absent; anything but a finite
/// number (a string, `null`) is an error rather than a silent default.
pub(super) fn float(cfg: &Value, key: &'static str, default: f64) -> Result<f64, ConvertError> {
    match cfg.get(key) {
        None => Ok(default),
        Some(v) => v.as_f64().filter(|x| x.is_finite()).ok_or(ConvertError::ConfigValue {
            key,
            value: v.to_string(),
            why: "must be a finite number",
        }),
    }
}

/// A norm epsilon ([`float`]), which must also be positive.
pub(super) fn epsilon(cfg: &Value, key: &'static str, default: f64) -> Result<f32, ConvertError> {
    let eps = float(cfg, key, default)?;
    if eps > 0.0 && (eps as f32) > 0.0 {
        Ok(eps as f32)
    } else {
        Err(ConvertError::ConfigValue { key, value: eps.to_string(), why: "a norm epsilon must be positive" })
    }
}

/// `num_key_value_heads` (default: `n_heads`), which must divide `n_heads`.
pub(super) fn kv_heads(cfg: &Value, n_heads: u32) -> Result<u32, ConvertError> {
    let n_kv_heads = u32_or(cfg, "num_key_value_heads", n_heads);
    if n_kv_heads == 0 || n_heads % n_kv_heads != 0 {
        return Err(ConvertError::ConfigValue {
            key: "num_key_value_heads",
            value: n_kv_heads.to_string(),
            why: "must divide num_attention_heads",
        });
    }
    Ok(n_kv_heads)
}

/// `(layer, parameter)` of a per-layer eddy name:
/// `layers.3.in_proj.weight` gives `("3", "in_proj.weight")`.
pub(super) fn split_layer(eddy: &str) -> (&str, &str) {
    let rest = eddy.strip_prefix("layers.").unwrap_or(eddy);
    rest.split_once('.').unwrap_or((rest, ""))
}

/// The checkpoint name in the usual layout: the embedding and final norm
/// under their own names, `lm_head.weight` as is, and every per-layer
/// tensor named by `layer(layer index, eddy parameter name)`.
pub(super) fn top_or_layer(
    spec: &TensorSpec,
    embed: &str,
    norm_f: &str,
    layer: impl FnOnce(&str, &str) -> String,
) -> String {
    match spec.pattern {
        "embed.weight" => embed.into(),
        "norm_f.weight" => norm_f.into(),
        "lm_head.weight" => "lm_head.weight".into(),
        _ => {
            let eddy = eddy_name(spec);
            let (index, param) = split_layer(&eddy);
            layer(index, param)
        }
    }
}

/// The shape of a canonical tensor as stored: vectors 1-D, matrices 2-D.
pub(super) fn plain_shape(spec: &TensorSpec) -> Vec<usize> {
    if spec.rows == 1 {
        vec![spec.cols as usize]
    } else {
        vec![spec.rows as usize, spec.cols as usize]
    }
}

/// [`plain_shape`], except an `nn.Conv1d` weight (`is_conv`), which is
/// stored `[channels, 1, width]`.
pub(super) fn conv_or_plain_shape(spec: &TensorSpec, is_conv: bool) -> Vec<usize> {
    if is_conv {
        vec![spec.rows as usize, 1, spec.cols as usize]
    } else {
        plain_shape(spec)
    }
}

/// `-exp(v)` of every value: the decay or `A` as eddy uses it, computed
/// once at conversion (in f32, as the reference implementations do).
pub(super) fn neg_exp(values: Vec<f32>) -> Vec<f32> {
    values.iter().map(|v| -v.exp()).collect()
}

/// `1 + w` of every weight: norms that scale by `1 + w` stored as plain
/// weights.
pub(super) fn one_plus(values: Vec<f32>) -> Vec<f32> {
    values.iter().map(|w| 1.0 + w).collect()
}

/// A value as a header word: `u32` as is, `f32` as its bits, `bool` as 0/1.
pub(super) trait HeaderWord {
    /// The 32-bit header word.
    fn word(self) -> u32;
}

impl HeaderWord for u32 {
    fn word(self) -> u32 {
        self
    }
}

impl HeaderWord for f32 {
    fn word(self) -> u32 {
        self.to_bits()
    }
}

impl HeaderWord for bool {
    fn word(self) -> u32 {
        self as u32
    }
}

/// A family's header hyper-parameters in file order, one `Name = value`
/// per `HParam`: `hparams! { VocabSize = c.vocab_size, NormEps = c.norm_eps }`.
/// Written with braces so each family's list stays a compact description.
macro_rules! hparams {
    ($($key:ident = $value:expr),* $(,)?) => {
        vec![$((eddy::arch::HParam::$key, $crate::convert::common::HeaderWord::word($value))),*]
    };
}
pub(super) use hparams;

impl Plan {
    /// A plan with the header `hparams`, the tensors `schema` visits, the
    /// checkpoint `layout` and `(layers, width, vocabulary)` for the
    /// summary line.
    pub(super) fn new(
        architecture: Architecture,
        hparams: Vec<(HParam, u32)>,
        schema: impl FnOnce(&mut dyn FnMut(TensorSpec)),
        layout: impl FamilyLayout + 'static,
        shape: (u32, u32, u32),
    ) -> Self {
        let mut specs = Vec::new();
        schema(&mut |s| specs.push(s));
        Plan { architecture, hparams, specs, layout: Box::new(layout), shape, blobs: vec![] }
    }

    /// The plan with an extra blob (e.g. a hybrid's layer-kinds table).
    pub(super) fn with_blob(mut self, kind: BlobKind, bytes: Vec<u8>) -> Self {
        self.blobs.push((kind, bytes));
        self
    }
}
