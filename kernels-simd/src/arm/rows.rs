//! The integer matrix-vector driver shared by the Cortex-M sets (`dsp`,
//! `helium`): the shape check, the activation reordering and the per-row
//! loop are the same for both; only each group's exact integer dot product
//! and the f16 header conversion differ.

use crate::{ActsI8, IntShape};
use eddy_quant::{TensorFormat, GROUP_HEADER_BYTES};

/// One matrix-vector product as the row loops walk it: the matrix cut to
/// the output's rows, the (reordered) activation codes and their
/// per-group scales and sums.
#[derive(Clone, Copy)]
pub(crate) struct IntRows<'a> {
    /// Bits per code (2, 4 or 8).
    pub bits: u32,
    /// Weights per group.
    pub group: usize,
    matrix: &'a [u8],
    row_bytes: usize,
    group_bytes: usize,
    acts: &'a [i8],
    x_scales: &'a [f32],
    x_sums: &'a [i32],
}

impl<'a> IntRows<'a> {
    /// The rows of a product the Cortex-M kernels cover, with the
    /// activations reordered into `perm` when `permute` says it did so
    /// (it gets the shape, the codes and `perm`, both `cols` long, and
    /// returns false to keep the codes as they are). `None` after running
    /// the scalar reference, for shapes not covered (groups not a multiple
    /// of 32, short buffers).
    #[inline(always)]
    pub(crate) fn prepare(
        (format, matrix, cols): (TensorFormat, &'a [u8], usize),
        acts: &ActsI8<'a>,
        out: &mut [f32],
        perm: &'a mut [i8],
        permute: impl FnOnce(&IntShape, &[i8], &mut [i8]) -> bool,
    ) -> Option<Self> {
        let (xq, x_scales, x_sums) = (acts.q, acts.scales, acts.sums);
        let Some(shape) = IntShape::for_matvec(format, cols, out.len(), matrix, acts, perm.len()) else {
            eddy_quant::matvec_i8(format, matrix, cols, xq, x_scales, x_sums, out);
            return None;
        };
        let perm = &mut perm[..cols];
        let acts: &[i8] = if permute(&shape, &xq[..cols], perm) { perm } else { &xq[..cols] };
        let IntShape { bits, group, groups, group_bytes, row_bytes } = shape;
        Some(IntRows {
            bits,
            group,
            matrix: &matrix[..row_bytes * out.len()],
            row_bytes,
            group_bytes,
            acts,
            x_scales: &x_scales[..groups],
            x_sums: &x_sums[..groups],
        })
    }

    /// Row by row: each group's exact integer dot `dot(codes, acts)`
    /// (group·bits/8 code bytes, `group` activations) and its f16 header
    /// widened by `f16_to_f32` (which must give `half`'s exact value),
    /// combined in f32 exactly as `eddy_quant::dot_row_i8` does, in the
    /// same order.
    #[inline(always)]
    pub(crate) fn rows(
        &self,
        out: &mut [f32],
        dot: impl Fn(&[u8], &[i8]) -> i32,
        f16_to_f32: impl Fn(u16) -> f32,
    ) {
        for (o, row) in out.iter_mut().zip(self.matrix.chunks_exact(self.row_bytes)) {
            let mut result = 0f32;
            for ((gbytes, a), (&s, &sum)) in row
                .chunks_exact(self.group_bytes)
                .zip(self.acts.chunks_exact(self.group))
                .zip(self.x_scales.iter().zip(self.x_sums))
            {
                let acc = dot(&gbytes[GROUP_HEADER_BYTES..], a);
                let (scale, min) = header(gbytes, &f16_to_f32);
                // Same expression and order as eddy_quant::dot_row_i8.
                result += s * (scale * acc as f32 + min * sum as f32);
            }
            *o = result;
        }
    }

    /// Like [`rows`](Self::rows), two rows at a time (activations unpacked
    /// once per pair), the last odd row alone; per row the same operations
    /// in the same order.
    #[inline(always)]
    pub(crate) fn row_pairs(
        &self,
        out: &mut [f32],
        dot1: impl Fn([&[u8]; 1], &[i8]) -> [i32; 1],
        dot2: impl Fn([&[u8]; 2], &[i8]) -> [i32; 2],
        f16_to_f32: impl Fn(u16) -> f32 + Copy,
    ) {
        let row_bytes = self.row_bytes;
        let pairs = out.len() / 2;
        let (paired_out, last_out) = out.split_at_mut(2 * pairs);
        for (o, rows) in paired_out.chunks_exact_mut(2).zip(self.matrix.chunks_exact(2 * row_bytes)) {
            let (row0, row1) = rows.split_at(row_bytes);
            let (mut result0, mut result1) = (0f32, 0f32);
            for (((g0, g1), a), (&s, &sum)) in row0
                .chunks_exact(self.group_bytes)
                .zip(row1.chunks_exact(self.group_bytes))
                .zip(self.acts.chunks_exact(self.group))
                .zip(self.x_scales.iter().zip(self.x_sums))
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
        let last = IntRows { matrix: &self.matrix[2 * pairs * row_bytes..], ..*self };
        last.rows(last_out, |c, a| dot1([c], a)[0], f16_to_f32);
    }
}

/// A group's f16 scale and minimum as f32.
#[inline(always)]
fn header(g: &[u8], f16_to_f32: impl Fn(u16) -> f32) -> (f32, f32) {
    (f16_to_f32(u16::from_le_bytes([g[0], g[1]])), f16_to_f32(u16::from_le_bytes([g[2], g[3]])))
}
