//! The scalar kernels: thin wrappers over `eddy-quant`'s references.

use crate::ActsI8;
use eddy_quant::{dot_f16_f32, dot_f32, TensorFormat};

/// See [`crate::MatvecI8`].
pub fn matvec_i8(
    format: TensorFormat,
    matrix: &[u8],
    cols: usize,
    acts: &ActsI8<'_>,
    out: &mut [f32],
    _perm: &mut [i8],
) {
    eddy_quant::matvec_i8(format, matrix, cols, acts.q, acts.scales, acts.sums, out);
}

/// See [`crate::MatvecF32`].
pub fn matvec_f32(matrix: &[f32], cols: usize, x: &[f32], out: &mut [f32]) {
    for (o, row) in out.iter_mut().zip(matrix.chunks_exact(cols.max(1))) {
        *o = dot_f32(row, x);
    }
}

/// See [`crate::MatvecF16`].
pub fn matvec_f16(matrix: &[u16], cols: usize, x: &[f32], out: &mut [f32]) {
    for (o, row) in out.iter_mut().zip(matrix.chunks_exact(cols.max(1))) {
        *o = dot_f16_f32(row, x);
    }
}
