//! Group-quantized integer weights (W8, W4, W2) and int8 activations (A8):
//! the scalar reference for packing, unpacking and dot products.
//!
//! # Weight layout
//!
//! A `[rows, cols]` matrix is stored row after row; a row is `cols / group`
//! groups of `group` consecutive weights. One group is
//!
//! | bytes | content |
//! |---|---|
//! | 0..2 | `scale`, f16 little-endian |
//! | 2..4 | `min`, f16 little-endian |
//! | 4.. | `group * bits / 8` bytes of codes |
//!
//! and weight `i` of the group is `scale * code_i + min` with `code_i` in
//! `0 ..= 2^bits - 1`. Codes are packed little end first: W8 one per byte;
//! W4 two per byte, code `2k` in the low nibble of byte `k`; W2 four per
//! byte, code `4k + j` in bits `2j .. 2j + 2` of byte `k`.
//!
//! # Activations
//!
//! Activations are quantized symmetrically per group of the same size as
//! the weight group: `x ≈ s_g * q` with `q` in `-127 ..= 127` and
//! `s_g = max|x| / 127`.
//!
//! # Dot product
//!
//! For each group `g`: `acc_g = Σ code_i * q_i` (exact in i32) and
//! `sum_g = Σ q_i`; then, accumulated in f32 in group order,
//! `result += s_g * (scale_g * acc_g + min_g * sum_g)`.
//! SIMD kernels must reproduce `acc_g` bit-exactly.

use crate::format::{FormatError, TensorFormat, GROUP_HEADER_BYTES};
use half::f16;

/// A value cannot be quantized.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum QuantError {
    /// The input holds NaN or infinity at this index.
    NonFinite {
        /// Index of the first offending value.
        index: usize,
    },
    /// A scale or minimum exceeds the f16 range (|v| > 65504).
    OutOfRange {
        /// Index of the group.
        group: usize,
    },
    /// Buffer lengths do not match the format and the input.
    BadLength,
    /// The format cannot hold this shape.
    Format(FormatError),
    /// The format is not an integer format.
    NotInteger,
    /// A 2:4 keep mask does not keep exactly two of these four weights.
    NotTwoOfFour {
        /// Index of the block of four in the row.
        block: usize,
    },
}

impl core::fmt::Display for QuantError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            QuantError::NonFinite { index } => write!(f, "value {index} is NaN or infinite; cannot quantize"),
            QuantError::OutOfRange { group } => {
                write!(f, "group {group}: values exceed the f16 range of scales (|v| > 65504)")
            }
            QuantError::BadLength => write!(f, "buffer length does not match format and input"),
            QuantError::Format(e) => write!(f, "{e}"),
            QuantError::NotInteger => write!(f, "not an integer (W8/W4/W2) format"),
            QuantError::NotTwoOfFour { block } => {
                write!(f, "block {block} of four weights does not keep exactly two (2:4 sparsity)")
            }
        }
    }
}

fn int_params(format: TensorFormat) -> Result<(usize, u32, usize), QuantError> {
    match (format.group_size(), format.code_bits(), format.group_bytes()) {
        (Some(g), Some(b), Some(gb)) => Ok((g, b, gb)),
        _ => Err(QuantError::NotInteger),
    }
}

/// Read code `i` of a group's packed code bytes.
#[inline]
pub fn code_at(bits: u32, codes: &[u8], i: usize) -> u8 {
    match bits {
        8 => codes[i],
        4 => (codes[i / 2] >> ((i % 2) * 4)) & 0x0f,
        _ => (codes[i / 4] >> ((i % 4) * 2)) & 0x03,
    }
}

/// Write code `i` into a group's zeroed packed code bytes.
pub(crate) fn put_code(bits: u32, codes: &mut [u8], i: usize, c: u8) {
    match bits {
        8 => codes[i] = c,
        4 => codes[i / 2] |= c << ((i % 2) * 4),
        _ => codes[i / 4] |= c << ((i % 4) * 2),
    }
}

/// The f16 scale and minimum of a group, as f32.
#[inline]
pub fn group_header(group: &[u8]) -> (f32, f32) {
    let scale = f16::from_le_bytes([group[0], group[1]]).to_f32();
    let min = f16::from_le_bytes([group[2], group[3]]).to_f32();
    (scale, min)
}

fn check_finite(x: &[f32]) -> Result<(), QuantError> {
    match x.iter().position(|v| !v.is_finite()) {
        Some(index) => Err(QuantError::NonFinite { index }),
        None => Ok(()),
    }
}

/// Quantize one row with one `(lo, hi)` clip range per group; weights
/// outside a range are clamped to it. `out` must be exactly the row's bytes.
pub fn quantize_row_with_ranges(
    format: TensorFormat,
    weights: &[f32],
    ranges: &[(f32, f32)],
    out: &mut [u8],
) -> Result<(), QuantError> {
    let (group, bits, group_bytes) = int_params(format)?;
    let expected = format.byte_len(1, weights.len() as u64).map_err(QuantError::Format)?;
    if expected as usize != out.len() || ranges.len() * group != weights.len() {
        return Err(QuantError::BadLength);
    }
    check_finite(weights)?;
    let levels = ((1u32 << bits) - 1) as f32;
    for (g, ((w, dst), &(lo, hi))) in
        weights.chunks_exact(group).zip(out.chunks_exact_mut(group_bytes)).zip(ranges).enumerate()
    {
        let (lo, hi) = if lo <= hi { (lo, hi) } else { (hi, lo) };
        if !(lo.is_finite() && hi.is_finite()) {
            return Err(QuantError::NonFinite { index: g * group });
        }
        let scale = f16::from_f32((hi - lo) / levels);
        let min = f16::from_f32(lo);
        if scale.is_infinite() || min.is_infinite() {
            return Err(QuantError::OutOfRange { group: g });
        }
        dst[0..2].copy_from_slice(&scale.to_le_bytes());
        dst[2..4].copy_from_slice(&min.to_le_bytes());
        let codes = &mut dst[GROUP_HEADER_BYTES..];
        codes.fill(0);
        // Codes are chosen against the rounded f16 header, which is what
        // the dequantizer will use.
        let (s, m) = (scale.to_f32(), min.to_f32());
        for (i, &v) in w.iter().enumerate() {
            let c = if s > 0.0 { round_half_away((v - m) / s).clamp(0.0, levels) } else { 0.0 };
            put_code(bits, codes, i, c as u8);
        }
    }
    Ok(())
}

/// Quantize one row with plain per-group min/max ranges.
pub fn quantize_row(format: TensorFormat, weights: &[f32], out: &mut [u8]) -> Result<(), QuantError> {
    let (group, _, _) = int_params(format)?;
    check_finite(weights)?;
    if weights.len() % group != 0 {
        return Err(QuantError::Format(FormatError::RaggedGroup {
            cols: weights.len() as u64,
            group: group as u32,
        }));
    }
    let mut ranges = [(0f32, 0f32); 64];
    // Rows are processed in batches of up to 64 groups (no allocation).
    let per_batch = ranges.len() * group;
    let group_bytes = format.group_bytes().unwrap_or(0);
    for (wb, ob) in weights.chunks(per_batch).zip(out.chunks_mut(ranges.len() * group_bytes)) {
        let n = wb.len() / group;
        for (r, w) in ranges.iter_mut().zip(wb.chunks_exact(group)) {
            let lo = w.iter().copied().fold(f32::INFINITY, f32::min);
            let hi = w.iter().copied().fold(f32::NEG_INFINITY, f32::max);
            *r = (lo, hi);
        }
        quantize_row_with_ranges(format, wb, &ranges[..n], ob)?;
    }
    Ok(())
}

/// Dequantize one row (`bytes` of whole groups) into `out`.
pub fn dequantize_row(format: TensorFormat, bytes: &[u8], out: &mut [f32]) {
    let Ok((group, bits, group_bytes)) = int_params(format) else { return };
    for (src, dst) in bytes.chunks_exact(group_bytes).zip(out.chunks_mut(group)) {
        let (scale, min) = group_header(src);
        let codes = &src[GROUP_HEADER_BYTES..];
        for (i, o) in dst.iter_mut().enumerate() {
            *o = scale * code_at(bits, codes, i) as f32 + min;
        }
    }
}

/// Round to nearest, ties away from zero: the same result as C's
/// `roundf` for every input, in branch-free arithmetic the compiler can
/// vectorize (`libm::roundf` is a call per value, which dominated
/// activation quantization).
#[inline]
pub fn round_half_away(x: f32) -> f32 {
    // Truncation toward zero; exact for |x| < 2^23, where x - t is exact too.
    let t = (x as i32) as f32;
    let frac = x - t;
    let up = if frac >= 0.5 { 1.0 } else { 0.0 };
    let down = if frac <= -0.5 { 1.0 } else { 0.0 };
    // Larger magnitudes are already integers; NaN stays NaN.
    if x.abs() < 8_388_608.0 {
        // Keep the sign of zero results (-0.3 rounds to -0.0, as roundf).
        f32::from_bits((t + up - down).to_bits() | (x.to_bits() & 0x8000_0000))
    } else {
        x
    }
}

/// Quantize activations to int8 per group of `group` values (the last group
/// may be shorter). Writes codes, per-group scales and per-group code sums.
pub fn quantize_activations_i8(
    x: &[f32],
    group: usize,
    out_q: &mut [i8],
    out_scales: &mut [f32],
    out_sums: &mut [i32],
) -> Result<(), QuantError> {
    let groups = x.len().div_ceil(group.max(1));
    if group == 0 || out_q.len() < x.len() || out_scales.len() < groups || out_sums.len() < groups {
        return Err(QuantError::BadLength);
    }
    check_finite(x)?;
    for (((xg, qg), s), sum) in
        x.chunks(group).zip(out_q.chunks_mut(group)).zip(out_scales.iter_mut()).zip(out_sums.iter_mut())
    {
        let amax = xg.iter().fold(0f32, |m, v| m.max(v.abs()));
        let scale = amax / 127.0;
        let inv = if scale > 0.0 { 1.0 / scale } else { 0.0 };
        let mut acc = 0i32;
        for (q, &v) in qg.iter_mut().zip(xg) {
            *q = round_half_away(v * inv).clamp(-127.0, 127.0) as i8;
            acc += *q as i32;
        }
        *s = scale;
        *sum = acc;
    }
    Ok(())
}

/// Exact integer dot product of one group's codes with int8 activations.
#[inline]
pub fn group_dot_i32(bits: u32, codes: &[u8], xq: &[i8]) -> i32 {
    let mut acc = 0i32;
    match bits {
        8 => {
            for (&c, &q) in codes.iter().zip(xq) {
                acc += c as i32 * q as i32;
            }
        }
        4 => {
            for (&c, q) in codes.iter().zip(xq.chunks_exact(2)) {
                acc += (c & 0x0f) as i32 * q[0] as i32 + (c >> 4) as i32 * q[1] as i32;
            }
        }
        _ => {
            for (&c, q) in codes.iter().zip(xq.chunks_exact(4)) {
                acc += (c & 3) as i32 * q[0] as i32
                    + ((c >> 2) & 3) as i32 * q[1] as i32
                    + ((c >> 4) & 3) as i32 * q[2] as i32
                    + (c >> 6) as i32 * q[3] as i32;
            }
        }
    }
    acc
}

/// Reference dot product of one quantized row with int8 activations that
/// were quantized with the same group size (see the module docs).
pub fn dot_row_i8(format: TensorFormat, row: &[u8], xq: &[i8], x_scales: &[f32], x_sums: &[i32]) -> f32 {
    let Ok((group, bits, group_bytes)) = int_params(format) else { return 0.0 };
    let mut result = 0f32;
    for (((g, xg), &s), &sum) in row.chunks_exact(group_bytes).zip(xq.chunks(group)).zip(x_scales).zip(x_sums)
    {
        let (scale, min) = group_header(g);
        let acc = group_dot_i32(bits, &g[GROUP_HEADER_BYTES..], xg);
        result += s * (scale * acc as f32 + min * sum as f32);
    }
    result
}

/// Reference matrix-vector product: `out[r] = dot_row_i8(row r)`.
pub fn matvec_i8(
    format: TensorFormat,
    matrix: &[u8],
    cols: usize,
    xq: &[i8],
    x_scales: &[f32],
    x_sums: &[i32],
    out: &mut [f32],
) {
    let Ok(row_bytes) = format.byte_len(1, cols as u64) else { return };
    let row_bytes = row_bytes as usize;
    if row_bytes == 0 {
        return;
    }
    for (o, row) in out.iter_mut().zip(matrix.chunks_exact(row_bytes)) {
        *o = dot_row_i8(format, row, xq, x_scales, x_sums);
    }
}
