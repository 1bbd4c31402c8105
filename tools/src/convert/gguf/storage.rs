//! How each GGUF tensor is stored in the `.eddy` file: quantized types
//! that map onto an eddy format exactly are repacked without
//! re-quantizing (Q8_0 onto W8 and Q4_0/Q4_1 onto W4, groups of 32 with
//! an f16 scale and minimum); the other quantized types are dequantized
//! and re-quantized to the eddy format closest to their bits per weight;
//! float tensors stay float.

use super::dequant::{dequantize, GgmlType};
use eddy::schema::{TensorKind, TensorSpec};
use eddy::TensorFormat;
use half::f16;

/// Weights per ggml block of the 32-weight types, and eddy's group.
const GROUP: usize = 32;

/// What happened to one tensor, for the convert report.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Treatment {
    /// Repacked into an eddy format with the same values (no re-quantizing).
    Kept(TensorFormat),
    /// Dequantized and re-quantized to an eddy format (plain min/max groups).
    Requantized(TensorFormat),
    /// Stored as floats (dequantized if the source was quantized).
    Float(TensorFormat),
}

/// The eddy format a quantized matrix keeps without re-quantizing, if any.
pub fn exact_format(ty: GgmlType) -> Option<TensorFormat> {
    match ty {
        GgmlType::Q8_0 => Some(TensorFormat::W8 { group: GROUP as u32 }),
        GgmlType::Q4_0 | GgmlType::Q4_1 => Some(TensorFormat::W4 { group: GROUP as u32 }),
        _ => None,
    }
}

/// The eddy format a quantized matrix of a type without an exact match is
/// re-quantized to: W8 for five bits or more, W4 below (W2's one range per
/// 32 weights loses more than K-quants' 16-weight sub-blocks keep).
pub fn nearest_format(ty: GgmlType) -> TensorFormat {
    match ty.bits_per_weight() {
        b if b >= 5.0 => TensorFormat::W8 { group: GROUP as u32 },
        _ => TensorFormat::W4 { group: GROUP as u32 },
    }
}

/// Repack whole Q8_0/Q4_0/Q4_1 blocks into eddy W8/W4 groups: Q8_0's
/// `d * q` is `d * (q + 128) - 128 d`, Q4_0's `d * (q - 8)` is
/// `d * q - 8 d`; both minimums are exact in f16 (a power-of-two multiple)
/// unless they overflow, and then `None` is returned.
pub fn repack(ty: GgmlType, bytes: &[u8]) -> Option<Vec<u8>> {
    let (_, block) = ty.block();
    let mut out = Vec::with_capacity(bytes.len() / block as usize * 36);
    for b in bytes.chunks_exact(block as usize) {
        let d = f16::from_le_bytes([b[0], b[1]]);
        let (min, codes) = match ty {
            GgmlType::Q8_0 => (f16::from_f32(-128.0 * d.to_f32()), &b[2..34]),
            GgmlType::Q4_0 => (f16::from_f32(-8.0 * d.to_f32()), &b[2..18]),
            GgmlType::Q4_1 => (f16::from_le_bytes([b[2], b[3]]), &b[4..20]),
            _ => return None,
        };
        if !min.is_finite() || !d.is_finite() {
            return None;
        }
        out.extend_from_slice(&d.to_le_bytes());
        out.extend_from_slice(&min.to_le_bytes());
        match ty {
            GgmlType::Q8_0 => out.extend(codes.iter().map(|&q| (q as i8 as i16 + 128) as u8)),
            // ggml: weight j low nibble of byte j, weight j + 16 its high
            // nibble; eddy: weight 2k low nibble of byte k, 2k + 1 high.
            _ => out.extend((0..16).map(|k| {
                let nib = |i: usize| if i < 16 { codes[i] & 0x0f } else { codes[i - 16] >> 4 };
                nib(2 * k) | (nib(2 * k + 1) << 4)
            })),
        }
    }
    Some(out)
}

/// One tensor as it goes into the `.eddy` file.
pub enum Stored {
    /// Encoded bytes in an integer format.
    Bytes(TensorFormat, Vec<u8>),
    /// Values to store as floats in this format.
    Values(TensorFormat, Vec<f32>),
}

/// The storage of the eddy tensor `spec` from GGUF data `bytes` of type
/// `ty`: integer bytes, or f32 values to store as floats (`float`, F32 or
/// F16, for matrices; other tensors stay F32). `keep` allows integer
/// formats at all (off when a recipe re-quantizes the model afterwards).
pub fn store(
    spec: &TensorSpec,
    ty: GgmlType,
    bytes: &[u8],
    keep: bool,
    float: TensorFormat,
) -> Result<(Stored, Treatment), eddy_quant::QuantError> {
    let matrix = spec.kind == TensorKind::Matrix;
    if keep && matrix && !ty.is_float() {
        if let Some(format) = exact_format(ty) {
            if let Some(data) = repack(ty, bytes) {
                return Ok((Stored::Bytes(format, data), Treatment::Kept(format)));
            }
        }
    }
    let mut values = Vec::new();
    dequantize(ty, bytes, &mut values);
    if keep && matrix && !ty.is_float() {
        let format = nearest_format(ty);
        let row_bytes = format.byte_len(1, spec.cols).map_err(eddy_quant::QuantError::Format)? as usize;
        let mut data = vec![0u8; row_bytes * spec.rows as usize];
        for (row, out) in values.chunks_exact(spec.cols as usize).zip(data.chunks_exact_mut(row_bytes)) {
            eddy_quant::quantize_row(format, row, out)?;
        }
        return Ok((Stored::Bytes(format, data), Treatment::Requantized(format)));
    }
    let format = if matrix { float } else { TensorFormat::F32 };
    Ok((Stored::Values(format, values), Treatment::Float(format)))
}
