//! f32 and f16 matrix-vector products in the reference's 8-lane order
//! (eight rows per pass, no FMA), bit-exact with the scalar kernels.

use super::{avx2_available, reduce_lanes8};
use core::arch::x86_64::*;

/// How [`matvec_float`] (and the multi-token kernels) load eight weights
/// as f32.
pub(super) trait FloatWeights: Copy {
    /// Eight weights at `p`, widened to f32 (exactly).
    unsafe fn load8(p: *const Self) -> __m256;
    /// One weight as f32.
    fn to_f32(self) -> f32;
}

impl FloatWeights for f32 {
    #[inline(always)]
    unsafe fn load8(p: *const f32) -> __m256 {
        // SAFETY (caller): 8 floats readable at `p`.
        _mm256_loadu_ps(p)
    }
    fn to_f32(self) -> f32 {
        self
    }
}

impl FloatWeights for u16 {
    #[inline(always)]
    unsafe fn load8(p: *const u16) -> __m256 {
        // SAFETY (caller): 8 u16 readable at `p`; F16C enabled by the caller.
        _mm256_cvtph_ps(_mm_loadu_si128(p as *const __m128i))
    }
    fn to_f32(self) -> f32 {
        half::f16::from_bits(self).to_f32()
    }
}

/// `out[r] = Σ_c w[r][c] x[c]` exactly as the reference dot product: lane
/// `l` sums columns `l, l + 8, ...` (and lane `l` of the ragged tail), no
/// FMA, then the pairwise lane sum. Eight rows at a time share each load
/// of `x` and reduce together.
#[target_feature(enable = "avx2,f16c")]
unsafe fn matvec_float<W: FloatWeights>(matrix: &[W], cols: usize, x: &[f32], out: &mut [f32]) {
    let full = cols / 8 * 8;
    let rows = out.len().min(matrix.len() / cols.max(1));
    let (w, xp) = (matrix.as_ptr(), x.as_ptr());
    let mut r0 = 0;
    while r0 < rows {
        let n = (rows - r0).min(8);
        // Rows past the end repeat the last one; their sums are dropped.
        let row = |i: usize| w.add((r0 + i.min(n - 1)) * cols);
        let mut acc = [_mm256_setzero_ps(); 8];
        for c in (0..full).step_by(8) {
            let xv = _mm256_loadu_ps(xp.add(c));
            for (i, a) in acc.iter_mut().enumerate() {
                *a = _mm256_add_ps(*a, _mm256_mul_ps(W::load8(row(i).add(c)), xv));
            }
        }
        if full < cols {
            for (i, a) in acc.iter_mut().enumerate() {
                let mut lanes = [0f32; 8];
                _mm256_storeu_ps(lanes.as_mut_ptr(), *a);
                for (l, c) in (full..cols).enumerate() {
                    lanes[l] += (*row(i).add(c)).to_f32() * x[c];
                }
                *a = _mm256_loadu_ps(lanes.as_ptr());
            }
        }
        let sums = reduce_lanes8(&acc);
        if n == 8 {
            _mm256_storeu_ps(out[r0..r0 + 8].as_mut_ptr(), sums);
        } else {
            let mut lanes = [0f32; 8];
            _mm256_storeu_ps(lanes.as_mut_ptr(), sums);
            out[r0..r0 + n].copy_from_slice(&lanes[..n]);
        }
        r0 += 8;
    }
}

/// See [`crate::MatvecF32`]; bit-exact with the reference (no FMA).
pub fn matvec_f32(matrix: &[f32], cols: usize, x: &[f32], out: &mut [f32]) {
    if !avx2_available() || x.len() < cols || cols == 0 {
        crate::scalar::matvec_f32(matrix, cols, x, out);
        return;
    }
    // SAFETY: AVX2 and F16C detected; every row read lies in `matrix`
    // (rows <= matrix.len() / cols) and `x` has at least `cols` values.
    unsafe { matvec_float(matrix, cols, x, out) }
}

/// See [`crate::MatvecF16`]; f16 widens exactly, so bit-exact too.
pub fn matvec_f16(matrix: &[u16], cols: usize, x: &[f32], out: &mut [f32]) {
    if !avx2_available() || x.len() < cols || cols == 0 {
        crate::scalar::matvec_f16(matrix, cols, x, out);
        return;
    }
    // SAFETY: as in `matvec_f32`.
    unsafe { matvec_float(matrix, cols, x, out) }
}
