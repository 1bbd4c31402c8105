//! x86-64 kernels: AVX2 (+F16C for f16 weights).
//!
//! Integer weights × int8 activations: see [`int`]. Attention over the KV
//! cache (`kv_scores`, `kv_mix`): see [`kv`]. The f32 work of the recurrent
//! layers (selective scan): see [`scan`].

pub mod int;
pub mod kv;
pub mod scan;

pub use int::{matmat_i8, matvec_i8};

use crate::Kernels;
use core::arch::x86_64::*;

/// AVX2 kernels; only selected when the CPU has AVX2 and F16C.
pub static AVX2: Kernels = Kernels {
    name: "avx2",
    matvec_i8,
    matmat_i8: Some(matmat_i8),
    matvec_f32,
    matvec_f16,
    kv_scores: kv::kv_scores,
    kv_mix: kv::kv_mix,
};

/// True if this CPU runs the AVX2 kernels.
pub fn avx2_available() -> bool {
    #[cfg(feature = "std")]
    {
        std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("f16c")
    }
    #[cfg(not(feature = "std"))]
    {
        cfg!(all(target_feature = "avx2", target_feature = "f16c"))
    }
}

/// The reference's lane reduction (see `eddy_quant::dot_f32`).
fn reduce_lanes(a: [f32; 8]) -> f32 {
    ((a[0] + a[4]) + (a[2] + a[6])) + ((a[1] + a[5]) + (a[3] + a[7]))
}

/// See [`crate::MatvecF32`]; bit-exact with the reference (no FMA).
pub fn matvec_f32(matrix: &[f32], cols: usize, x: &[f32], out: &mut [f32]) {
    if !avx2_available() || x.len() < cols {
        crate::scalar::matvec_f32(matrix, cols, x, out);
        return;
    }
    for (o, row) in out.iter_mut().zip(matrix.chunks_exact(cols.max(1))) {
        // SAFETY: AVX2 detected; row and x have at least `cols` values.
        *o = unsafe { dot_f32_avx2(row, x) };
    }
}

#[target_feature(enable = "avx2")]
unsafe fn dot_f32_avx2(row: &[f32], x: &[f32]) -> f32 {
    let mut acc = _mm256_setzero_ps();
    let (cw, cx) = (row.chunks_exact(8), x.chunks_exact(8));
    let (rw, rx) = (cw.remainder(), cx.remainder());
    for (w, v) in cw.zip(cx) {
        // SAFETY: both chunks hold exactly 8 floats.
        let p = _mm256_mul_ps(_mm256_loadu_ps(w.as_ptr()), _mm256_loadu_ps(v.as_ptr()));
        acc = _mm256_add_ps(acc, p);
    }
    let mut lanes = [0f32; 8];
    // SAFETY: `lanes` holds 8 floats.
    _mm256_storeu_ps(lanes.as_mut_ptr(), acc);
    for (l, (w, v)) in rw.iter().zip(rx).enumerate() {
        lanes[l] += w * v;
    }
    reduce_lanes(lanes)
}

/// See [`crate::MatvecF16`]; f16 widens exactly, so bit-exact too.
pub fn matvec_f16(matrix: &[u16], cols: usize, x: &[f32], out: &mut [f32]) {
    if !avx2_available() || x.len() < cols {
        crate::scalar::matvec_f16(matrix, cols, x, out);
        return;
    }
    for (o, row) in out.iter_mut().zip(matrix.chunks_exact(cols.max(1))) {
        // SAFETY: AVX2 and F16C detected; row and x have `cols` values.
        *o = unsafe { dot_f16_avx2(row, x) };
    }
}

#[target_feature(enable = "avx2,f16c")]
unsafe fn dot_f16_avx2(row: &[u16], x: &[f32]) -> f32 {
    let mut acc = _mm256_setzero_ps();
    let (cw, cx) = (row.chunks_exact(8), x.chunks_exact(8));
    let (rw, rx) = (cw.remainder(), cx.remainder());
    for (w, v) in cw.zip(cx) {
        // SAFETY: 8 u16 (16 bytes) and 8 f32 per chunk.
        let wf = _mm256_cvtph_ps(_mm_loadu_si128(w.as_ptr() as *const __m128i));
        acc = _mm256_add_ps(acc, _mm256_mul_ps(wf, _mm256_loadu_ps(v.as_ptr())));
    }
    let mut lanes = [0f32; 8];
    // SAFETY: `lanes` holds 8 floats.
    _mm256_storeu_ps(lanes.as_mut_ptr(), acc);
    for (l, (w, v)) in rw.iter().zip(rx).enumerate() {
        lanes[l] += half::f16::from_bits(*w).to_f32() * v;
    }
    reduce_lanes(lanes)
}
