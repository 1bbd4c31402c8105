//! The scalar kernels: thin wrappers over `eddy-quant`'s references.

use crate::{ActsI8, KvRows, QuantMatrix, SparseMatrix};
use eddy_quant::{dot_f16_f32, dot_f32, kv_axpy, kv_dot};

/// See [`crate::MatvecI8`].
pub fn matvec_i8(w: QuantMatrix<'_>, acts: &ActsI8<'_>, out: &mut [f32], _perm: &mut [i8]) {
    eddy_quant::matvec_i8(w.format, w.bytes, w.cols, acts.q, acts.scales, acts.sums, out);
}

/// See [`crate::MatvecSparse24I8`].
pub fn matvec_sparse24_i8(w: SparseMatrix<'_>, acts: &ActsI8<'_>, out: &mut [f32]) {
    w.format.matvec_i8(w.bytes, w.cols, acts.q, acts.scales, out);
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

/// See [`crate::KvScores`].
pub fn kv_scores(rows: KvRows<'_>, q: &[f32], scores: &mut [f32]) {
    let Some(row_bytes) = rows.row_bytes() else { return };
    for (j, s) in scores.iter_mut().take(rows.count).enumerate() {
        *s = kv_dot(rows.format, rows.row(j, row_bytes), q);
    }
}

/// See [`crate::KvMix`].
pub fn kv_mix(rows: KvRows<'_>, weights: &[f32], out: &mut [f32]) {
    out.fill(0.0);
    let Some(row_bytes) = rows.row_bytes() else { return };
    for (j, &w) in weights.iter().take(rows.count).enumerate() {
        kv_axpy(rows.format, rows.row(j, row_bytes), w, out);
    }
}
