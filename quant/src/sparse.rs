//! 2:4 structured sparsity over the integer formats (W8, W4, W2): in every
//! four consecutive weights of a row exactly two are kept and two are
//! zero. Only the kept weights are stored, plus 2 bits per kept weight
//! saying where in its block of four it sits: the scalar reference for
//! packing, unpacking and the dot product with int8 activations.
//!
//! # Group layout
//!
//! A row is `cols / group` groups of `group` weights (as the dense format
//! it is built on), `group / 4` blocks of four. One group is
//!
//! | bytes | content |
//! |---|---|
//! | 0..4 | `scale`, `min`: f16 little-endian, as the dense format |
//! | 4.. | `group / 2` kept codes, packed as the dense format packs codes |
//! | then | `group / 8` bytes of positions |
//!
//! Kept weight `k` (block `k / 2`, first or second of its block) is
//! `scale * code_k + min`; a pruned weight is exactly 0. Positions: block
//! `b` has the nibble `b % 2` of byte `b / 2` (low nibble first); its low
//! two bits are the position (0..=3) of the block's first kept weight, its
//! high two bits that of the second, first < second.
//!
//! So 2:4 W4 with groups of 64 costs `(4 + 16 + 8) * 8 / 64 = 3.5` bits per
//! weight against 4.5 dense.
//!
//! # Dot product
//!
//! For each group `g`: `acc_g = Σ code_k * q[p_k]` and `sum_g = Σ q[p_k]`
//! over the kept weights (both exact in i32; `p_k` the kept weight's
//! column), then in f32 in group order `result += s_g * (scale_g * acc_g +
//! min_g * sum_g)`. Unlike the dense product, `sum_g` runs over the kept
//! columns only (pruned weights are 0, not `min`). SIMD kernels must
//! reproduce `acc_g` and `sum_g` bit-exactly.

use crate::block::{code_at, group_header, put_code, QuantError};
use crate::format::{FormatError, TensorFormat, GROUP_HEADER_BYTES};
use half::f16;

/// A 2:4 sparse format built on a dense integer format (its group size and
/// code width).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Sparse24 {
    dense: TensorFormat,
    group: usize,
    bits: u32,
}

impl Sparse24 {
    /// The 2:4 format over `dense` (W8, W4 or W2 with any group size);
    /// `NotInteger` for float formats.
    pub fn new(dense: TensorFormat) -> Result<Self, QuantError> {
        match (dense.group_size(), dense.code_bits()) {
            (Some(group), Some(bits)) if group % 8 == 0 => Ok(Sparse24 { dense, group, bits }),
            _ => Err(QuantError::NotInteger),
        }
    }

    /// The dense format this one keeps half the codes of.
    pub fn dense(self) -> TensorFormat {
        self.dense
    }

    /// Weights per group.
    pub fn group_size(self) -> usize {
        self.group
    }

    /// Bits per code.
    pub fn code_bits(self) -> u32 {
        self.bits
    }

    /// Bytes of packed kept codes in one group.
    fn code_bytes(self) -> usize {
        self.group / 2 * self.bits as usize / 8
    }

    /// Bytes of one group: header, kept codes, positions.
    pub fn group_bytes(self) -> usize {
        GROUP_HEADER_BYTES + self.code_bytes() + self.group / 8
    }

    /// Bits of storage per weight, scales and positions included.
    pub fn bits_per_weight(self) -> f64 {
        self.group_bytes() as f64 * 8.0 / self.group as f64
    }

    /// Bytes of a `[rows, cols]` tensor; overflow and ragged groups are
    /// errors.
    pub fn byte_len(self, rows: u64, cols: u64) -> Result<u64, FormatError> {
        if cols % self.group as u64 != 0 {
            return Err(FormatError::RaggedGroup { cols, group: self.group as u32 });
        }
        let groups = rows.checked_mul(cols / self.group as u64).ok_or(FormatError::SizeOverflow)?;
        groups.checked_mul(self.group_bytes() as u64).ok_or(FormatError::SizeOverflow)
    }

    /// Pack one row: `weights` with `keep` saying which two of every four
    /// are kept, each group's kept weights clamped to its `(lo, hi)` range
    /// and coded against the rounded f16 header (as the dense format).
    /// `out` is exactly the row's bytes.
    pub fn quantize_row_with_ranges(
        self,
        weights: &[f32],
        keep: &[bool],
        ranges: &[(f32, f32)],
        out: &mut [u8],
    ) -> Result<(), QuantError> {
        let expected = self.byte_len(1, weights.len() as u64).map_err(QuantError::Format)?;
        if expected as usize != out.len()
            || keep.len() != weights.len()
            || ranges.len() * self.group != weights.len()
        {
            return Err(QuantError::BadLength);
        }
        if let Some(index) = weights.iter().position(|v| !v.is_finite()) {
            return Err(QuantError::NonFinite { index });
        }
        if let Some(block) = keep.chunks_exact(4).position(|b| b.iter().filter(|&&k| k).count() != 2) {
            return Err(QuantError::NotTwoOfFour { block });
        }
        let levels = ((1u32 << self.bits) - 1) as f32;
        let (group, code_bytes) = (self.group, self.code_bytes());
        for (g, (((w, kg), &(lo, hi)), dst)) in weights
            .chunks_exact(group)
            .zip(keep.chunks_exact(group))
            .zip(ranges)
            .zip(out.chunks_exact_mut(self.group_bytes()))
            .enumerate()
        {
            let (lo, hi) = if lo <= hi { (lo, hi) } else { (hi, lo) };
            if !(lo.is_finite() && hi.is_finite()) {
                return Err(QuantError::NonFinite { index: g * group });
            }
            let (scale, min) = (f16::from_f32((hi - lo) / levels), f16::from_f32(lo));
            if scale.is_infinite() || min.is_infinite() {
                return Err(QuantError::OutOfRange { group: g });
            }
            dst[0..2].copy_from_slice(&scale.to_le_bytes());
            dst[2..4].copy_from_slice(&min.to_le_bytes());
            let (codes, meta) = dst[GROUP_HEADER_BYTES..].split_at_mut(code_bytes);
            codes.fill(0);
            meta.fill(0);
            let (s, m) = (scale.to_f32(), min.to_f32());
            let mut k = 0;
            for (b, (wb, kb)) in w.chunks_exact(4).zip(kg.chunks_exact(4)).enumerate() {
                let mut nibble = 0u8;
                for (slot, p) in (0..4).filter(|&p| kb[p]).enumerate() {
                    let c = if s > 0.0 {
                        crate::round_half_away((wb[p] - m) / s).clamp(0.0, levels)
                    } else {
                        0.0
                    };
                    put_code(self.bits, codes, k, c as u8);
                    nibble |= (p as u8) << (2 * slot);
                    k += 1;
                }
                meta[b / 2] |= nibble << ((b % 2) * 4);
            }
        }
        Ok(())
    }

    /// Pack one row with plain min/max ranges of each group's kept weights.
    pub fn quantize_row(self, weights: &[f32], keep: &[bool], out: &mut [u8]) -> Result<(), QuantError> {
        if keep.len() != weights.len() || weights.len() % self.group != 0 {
            return Err(QuantError::BadLength);
        }
        let mut ranges = [(0f32, 0f32); 64];
        let per_batch = ranges.len() * self.group;
        for ((w, kb), o) in
            weights.chunks(per_batch).zip(keep.chunks(per_batch)).zip(out.chunks_mut(64 * self.group_bytes()))
        {
            let n = w.len() / self.group;
            for (r, (wg, kg)) in
                ranges.iter_mut().zip(w.chunks_exact(self.group).zip(kb.chunks_exact(self.group)))
            {
                let kept = wg.iter().zip(kg).filter(|(_, &k)| k).map(|(&v, _)| v);
                *r = kept.fold((f32::INFINITY, f32::NEG_INFINITY), |(lo, hi), v| (lo.min(v), hi.max(v)));
            }
            self.quantize_row_with_ranges(w, kb, &ranges[..n], o)?;
        }
        Ok(())
    }

    /// Unpack one row (`bytes` of whole groups) into `out`, pruned weights
    /// as 0.
    pub fn dequantize_row(self, bytes: &[u8], out: &mut [f32]) {
        for (src, dst) in bytes.chunks_exact(self.group_bytes()).zip(out.chunks_mut(self.group)) {
            let (scale, min) = group_header(src);
            let (codes, meta) = src[GROUP_HEADER_BYTES..].split_at(self.code_bytes());
            dst.fill(0.0);
            for (b, block) in dst.chunks_exact_mut(4).enumerate() {
                let (first, second) = positions(meta, b);
                block[first] = scale * code_at(self.bits, codes, 2 * b) as f32 + min;
                block[second] = scale * code_at(self.bits, codes, 2 * b + 1) as f32 + min;
            }
        }
    }

    /// Reference dot product of one packed row with int8 activations
    /// quantized with the same group size (scales per group), as the
    /// module docs say.
    pub fn dot_row_i8(self, row: &[u8], xq: &[i8], x_scales: &[f32]) -> f32 {
        let mut result = 0f32;
        for ((g, xg), &s) in row.chunks_exact(self.group_bytes()).zip(xq.chunks(self.group)).zip(x_scales) {
            let (scale, min) = group_header(g);
            let (codes, meta) = g[GROUP_HEADER_BYTES..].split_at(self.code_bytes());
            let (acc, sum) = sparse_group_dot_i32(self.bits, codes, meta, xg);
            result += s * (scale * acc as f32 + min * sum as f32);
        }
        result
    }

    /// Reference matrix-vector product: `out[r] = dot_row_i8(row r)`.
    pub fn matvec_i8(self, matrix: &[u8], cols: usize, xq: &[i8], x_scales: &[f32], out: &mut [f32]) {
        let Ok(row_bytes) = self.byte_len(1, cols as u64) else { return };
        if row_bytes == 0 {
            return;
        }
        for (o, row) in out.iter_mut().zip(matrix.chunks_exact(row_bytes as usize)) {
            *o = self.dot_row_i8(row, xq, x_scales);
        }
    }
}

/// The two kept positions (0..=3) of block `b` of a group's positions.
#[inline]
pub fn positions(meta: &[u8], b: usize) -> (usize, usize) {
    let nibble = meta[b / 2] >> ((b % 2) * 4);
    ((nibble & 3) as usize, ((nibble >> 2) & 3) as usize)
}

/// Exact `(Σ code_k * q[p_k], Σ q[p_k])` over one group's kept weights:
/// `codes` its packed kept codes, `meta` its positions, `xq` the group's
/// int8 activations (all `group` of them).
#[inline]
pub fn sparse_group_dot_i32(bits: u32, codes: &[u8], meta: &[u8], xq: &[i8]) -> (i32, i32) {
    let (mut acc, mut sum) = (0i32, 0i32);
    for (b, block) in xq.chunks_exact(4).enumerate() {
        let (first, second) = positions(meta, b);
        let (a, c) = (block[first] as i32, block[second] as i32);
        acc += code_at(bits, codes, 2 * b) as i32 * a + code_at(bits, codes, 2 * b + 1) as i32 * c;
        sum += a + c;
    }
    (acc, sum)
}
