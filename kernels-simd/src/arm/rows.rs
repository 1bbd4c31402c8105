//! The per-row driver shared by the Cortex-M sets (`dsp`, `helium`).

use crate::IntShape;
use eddy_quant::GROUP_HEADER_BYTES;

/// One token's integer product as the row drivers walk it: the rows of
/// `matrix` (as many as the output has), laid out as `shape` says, and the
/// token's activation codes (in the order the group dot product wants),
/// scales and code sums, one per group.
#[derive(Clone, Copy)]
pub(crate) struct RowsI8<'a> {
    /// The rows, `row_bytes` each.
    pub matrix: &'a [u8],
    /// Their geometry.
    pub shape: IntShape,
    /// Activation codes, `group` per group.
    pub acts: &'a [i8],
    /// Activation scales, one per group.
    pub x_scales: &'a [f32],
    /// Activation code sums, one per group.
    pub x_sums: &'a [i32],
}

/// The per-row driver shared by the Cortex-M sets: for each row, each
/// group's exact integer dot `dot(codes, acts)` (group·bits/8 code bytes,
/// `group` activations) and its f16 header widened by `f16_to_f32` (which
/// must give `half`'s exact value), combined in f32 exactly as
/// `eddy_quant::dot_row_i8` does, in the same order.
#[inline(always)]
pub(crate) fn rows_i8(
    p: RowsI8<'_>,
    out: &mut [f32],
    dot: impl Fn(&[u8], &[i8]) -> i32,
    f16_to_f32: impl Fn(u16) -> f32,
) {
    let RowsI8 { matrix, shape: IntShape { row_bytes, group_bytes, group, .. }, acts, x_scales, x_sums } = p;
    for (o, row) in out.iter_mut().zip(matrix.chunks_exact(row_bytes)) {
        let mut result = 0f32;
        for ((gbytes, a), (&s, &sum)) in
            row.chunks_exact(group_bytes).zip(acts.chunks_exact(group)).zip(x_scales.iter().zip(x_sums))
        {
            let acc = dot(&gbytes[GROUP_HEADER_BYTES..], a);
            let scale = f16_to_f32(u16::from_le_bytes([gbytes[0], gbytes[1]]));
            let min = f16_to_f32(u16::from_le_bytes([gbytes[2], gbytes[3]]));
            // Same expression and order as eddy_quant::dot_row_i8.
            result += s * (scale * acc as f32 + min * sum as f32);
        }
        *o = result;
    }
}

/// A group's f16 scale and minimum as f32.
#[inline(always)]
fn header(g: &[u8], f16_to_f32: impl Fn(u16) -> f32) -> (f32, f32) {
    (f16_to_f32(u16::from_le_bytes([g[0], g[1]])), f16_to_f32(u16::from_le_bytes([g[2], g[3]])))
}

/// Like [`rows_i8`], two rows at a time (activations unpacked once per
/// pair), the last odd row alone; per row the same operations in the
/// same order. `f16_to_f32` as for [`rows_i8`].
#[inline(always)]
pub(crate) fn row_pairs_i8(
    p: RowsI8<'_>,
    out: &mut [f32],
    dot1: impl Fn([&[u8]; 1], &[i8]) -> [i32; 1],
    dot2: impl Fn([&[u8]; 2], &[i8]) -> [i32; 2],
    f16_to_f32: impl Fn(u16) -> f32 + Copy,
) {
    let RowsI8 { matrix, shape: IntShape { row_bytes, group_bytes, group, .. }, acts, x_scales, x_sums } = p;
    let pairs = out.len() / 2;
    let (paired_out, last_out) = out.split_at_mut(2 * pairs);
    for (o, rows) in paired_out.chunks_exact_mut(2).zip(matrix.chunks_exact(2 * row_bytes)) {
        let (row0, row1) = rows.split_at(row_bytes);
        let (mut result0, mut result1) = (0f32, 0f32);
        for (((g0, g1), a), (&s, &sum)) in row0
            .chunks_exact(group_bytes)
            .zip(row1.chunks_exact(group_bytes))
            .zip(acts.chunks_exact(group))
            .zip(x_scales.iter().zip(x_sums))
        {
            let [acc0, acc1] = dot2([&g0[GROUP_HEADER_BYTES..], &g1[GROUP_HEADER_BYTES..]], a);
            let (scale0, min0) = header(g0, f16_to_f32);
            let (scale1, min1) = header(g1, f16_to_f32);
            // Same expression and order as eddy_quant::dot_row_i8, per row.
            result0 += s * (scale0 * acc0 as f32 + min0 * sum as f32);
            result1 += s * (scale1 * acc1 as f32 + min1 * sum as f32);
        }
        o[0] = result0;
        o[1] = result1;
    }
    let last_row = &matrix[2 * pairs * row_bytes..];
    rows_i8(RowsI8 { matrix: last_row, ..p }, last_out, |c, a| dot1([c], a)[0], f16_to_f32);
}
