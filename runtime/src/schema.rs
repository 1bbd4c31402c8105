//! The canonical tensor list of a model family and the checks every loader
//! shares: hyper-parameter reading, tensor names, shapes and formats.
//!
//! Each family stores its tensors in one canonical order, so a layer's
//! weights are found by index arithmetic at run time (no allocation, no
//! string search per step); the loader checks every name and shape once.

use crate::arch::HParam;
use crate::error::ModelError;
use crate::file::{EddyFile, TensorView};
use crate::linear::Linear;
use eddy_quant::TensorFormat;

/// Which storage a tensor in the schema may have.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TensorKind {
    /// A matrix used by a linear layer (any weight format).
    Matrix,
    /// A small parameter kept in f32 (norms, biases, conv, A, D).
    F32,
}

/// One entry of the canonical tensor list.
#[derive(Clone, Copy, Debug)]
pub struct TensorSpec {
    /// Canonical name; per-layer names contain `{i}`.
    pub pattern: &'static str,
    /// Layer index for per-layer tensors.
    pub layer: Option<u32>,
    /// Expected rows (1 for a vector).
    pub rows: u64,
    /// Expected columns.
    pub cols: u64,
    /// Allowed storage.
    pub kind: TensorKind,
}

impl TensorSpec {
    /// A per-layer tensor.
    pub const fn layer(pattern: &'static str, layer: u32, rows: u64, cols: u64, kind: TensorKind) -> Self {
        TensorSpec { pattern, layer: Some(layer), rows, cols, kind }
    }

    /// A tensor outside the layers (embedding, final norm, head).
    pub const fn global(pattern: &'static str, rows: u64, cols: u64, kind: TensorKind) -> Self {
        TensorSpec { pattern, layer: None, rows, cols, kind }
    }
}

/// The tensors of the gated MLP block of layer `i`: its RMSNorm (named by
/// `norm_pattern`), then the gate, up and down projections, `d_ffn` wide.
pub(crate) fn gated_mlp_specs(
    i: u32,
    norm_pattern: &'static str,
    d_model: u64,
    d_ffn: u64,
) -> [TensorSpec; 4] {
    use TensorKind::{Matrix, F32};
    [
        TensorSpec::layer(norm_pattern, i, 1, d_model, F32),
        TensorSpec::layer("layers.{i}.gate_proj.weight", i, d_ffn, d_model, Matrix),
        TensorSpec::layer("layers.{i}.up_proj.weight", i, d_ffn, d_model, Matrix),
        TensorSpec::layer("layers.{i}.down_proj.weight", i, d_model, d_ffn, Matrix),
    ]
}

/// Visit the tensors that end the stack: the final norm and, unless tied
/// to the embedding, the LM head.
pub(crate) fn visit_head(visit: &mut dyn FnMut(TensorSpec), vocab: u64, d_model: u64, tied: bool) {
    visit(TensorSpec::global("norm_f.weight", 1, d_model, TensorKind::F32));
    if !tied {
        visit(TensorSpec::global("lm_head.weight", vocab, d_model, TensorKind::Matrix));
    }
}

/// True if `name` is `pattern` with `{i}` replaced by `layer`.
pub fn name_matches(name: &str, pattern: &str, layer: Option<u32>) -> bool {
    match (layer, pattern.split_once("{i}")) {
        (Some(l), Some((head, tail))) => {
            let Some(rest) = name.strip_prefix(head) else {
                return false;
            };
            let digits = rest.bytes().take_while(|b| b.is_ascii_digit()).count();
            let (num, tail_found) = rest.split_at(digits);
            // Reject leading zeros so each layer has exactly one spelling.
            let canonical = num.len() == 1 || !num.starts_with('0');
            canonical && num.parse::<u32>() == Ok(l) && tail_found == tail
        }
        _ => name == pattern,
    }
}

/// Upper bound on any single dimension; keeps all size arithmetic far from
/// overflow and rejects absurd headers early.
pub(crate) const MAX_DIM: u32 = 1 << 24;

/// A hyper-parameter that must be present.
pub(crate) fn required(file: &EddyFile<'_>, key: HParam) -> Result<u32, ModelError> {
    file.hparam(key).ok_or(ModelError::MissingHParam(key.name()))
}

/// A dimension in `1..=max`.
pub(crate) fn dim(file: &EddyFile<'_>, key: HParam, max: u32) -> Result<u32, ModelError> {
    let v = required(file, key)?;
    if v == 0 || v > max {
        return Err(ModelError::BadHParam { name: key.name(), value: v });
    }
    Ok(v)
}

/// A 0/1 flag, absent meaning 0.
pub(crate) fn flag(file: &EddyFile<'_>, key: HParam) -> Result<bool, ModelError> {
    match file.hparam(key).unwrap_or(0) {
        0 => Ok(false),
        1 => Ok(true),
        v => Err(ModelError::BadHParam { name: key.name(), value: v }),
    }
}

/// A finite, non-negative f32 (a norm epsilon).
pub(crate) fn epsilon(file: &EddyFile<'_>, key: HParam) -> Result<f32, ModelError> {
    let bits = required(file, key)?;
    let v = f32::from_bits(bits);
    if !(v.is_finite() && v >= 0.0) {
        return Err(ModelError::BadHParam { name: key.name(), value: bits });
    }
    Ok(v)
}

/// Check every tensor of `file` against the schema `visit_schema` yields,
/// in order, and that nothing follows it.
pub(crate) fn check_schema(
    file: &EddyFile<'_>,
    visit_schema: impl FnOnce(&mut dyn FnMut(TensorSpec)),
) -> Result<(), ModelError> {
    let mut index = 0u32;
    let mut result = Ok(());
    visit_schema(&mut |spec| {
        if result.is_err() {
            return;
        }
        result = check_tensor(file, index, &spec);
        index += 1;
    });
    result?;
    if index != file.tensor_count() {
        // Extra tensors after the schema: name the first one.
        return Err(ModelError::UnexpectedTensor { index });
    }
    Ok(())
}

fn check_tensor(file: &EddyFile<'_>, index: u32, spec: &TensorSpec) -> Result<(), ModelError> {
    let missing = ModelError::MissingTensor { name: spec.pattern, layer: spec.layer };
    let t = file.tensor_at(index).ok_or(missing)?;
    if !name_matches(t.name, spec.pattern, spec.layer) {
        // Distinguish "absent" from "present but out of canonical order".
        let present = file.tensors().any(|o| name_matches(o.name, spec.pattern, spec.layer));
        return Err(if present {
            ModelError::OutOfOrder { name: spec.pattern, layer: spec.layer, index }
        } else {
            missing
        });
    }
    let found = (t.rows(), t.cols());
    if found != (spec.rows, spec.cols) {
        return Err(ModelError::ShapeMismatch {
            name: spec.pattern,
            layer: spec.layer,
            expected: (spec.rows, spec.cols),
            found,
        });
    }
    let ok = match spec.kind {
        TensorKind::F32 => t.format == TensorFormat::F32,
        // Every storage format works for a matrix; the file reader already
        // checked that its group size divides the columns.
        TensorKind::Matrix => true,
    };
    if !ok {
        return Err(ModelError::UnsupportedFormat {
            name: spec.pattern,
            layer: spec.layer,
            format: t.format.name(),
        });
    }
    Ok(())
}

/// Reads tensors of a checked file in schema order: each call takes the
/// next index. The fallbacks only keep the functions total; `check_schema`
/// already guaranteed every index, shape and format.
pub(crate) struct TensorCursor<'f, 'a> {
    file: &'f EddyFile<'a>,
    next: u32,
}

impl<'f, 'a> TensorCursor<'f, 'a> {
    /// Start at tensor `index`.
    pub(crate) fn at(file: &'f EddyFile<'a>, index: u32) -> Self {
        TensorCursor { file, next: index }
    }

    /// The index the next read takes.
    pub(crate) fn next_index(&self) -> u32 {
        self.next
    }

    fn take(&mut self) -> Option<TensorView<'a>> {
        let t = self.file.tensor_at(self.next);
        self.next += 1;
        t
    }

    /// The next tensor as f32 values.
    pub(crate) fn f32(&mut self) -> &'a [f32] {
        self.take().and_then(|t| t.as_f32()).unwrap_or(&[])
    }

    /// The next tensor as f32 values if `present`, else nothing consumed.
    pub(crate) fn f32_if(&mut self, present: bool) -> Option<&'a [f32]> {
        present.then(|| self.f32())
    }

    /// The next tensor as a matrix, followed by its bias if `bias`.
    pub(crate) fn linear(&mut self, bias: bool) -> Linear<'a> {
        let weight = self.take().unwrap_or_else(|| self.file.tensor_at(0).unwrap_or(TensorView::EMPTY));
        Linear { weight, bias: self.f32_if(bias) }
    }
}

#[cfg(test)]
mod tests {
    use super::name_matches;

    #[test]
    fn layer_names_match_exactly() {
        let p = "layers.{i}.in_proj.weight";
        assert!(name_matches("layers.3.in_proj.weight", p, Some(3)));
        assert!(name_matches("layers.0.in_proj.weight", p, Some(0)));
        assert!(!name_matches("layers.03.in_proj.weight", p, Some(3)));
        assert!(!name_matches("layers.13.in_proj.weight", p, Some(3)));
        assert!(!name_matches("layers.3.in_proj.bias", p, Some(3)));
        assert!(name_matches("embed.weight", "embed.weight", None));
    }
}
