//! f32 and f16 matrix-vector products in the reference's 8-lane order
//! (`eddy_quant::dot_f32`): lanes 0..4 and 4..8 in two NEON accumulators,
//! separate multiply and add (no FMA), the same ragged tail and final
//! reduction, so results are bit-exact.

use super::{f16x4_to_f32, f16x8_high_to_f32};
use core::arch::aarch64::*;

/// The reference's lane reduction (see `eddy_quant::dot_f32`).
fn reduce_lanes(a: [f32; 8]) -> f32 {
    ((a[0] + a[4]) + (a[2] + a[6])) + ((a[1] + a[5]) + (a[3] + a[7]))
}

/// The two accumulators as the reference's eight lanes.
///
/// # Safety
/// NEON must be present.
#[inline(always)]
unsafe fn lanes(lo: float32x4_t, hi: float32x4_t) -> [f32; 8] {
    let mut lanes = [0f32; 8];
    // SAFETY: `lanes` holds 8 floats: two 4-float stores.
    unsafe {
        vst1q_f32(lanes.as_mut_ptr(), lo);
        vst1q_f32(lanes.as_mut_ptr().add(4), hi);
    }
    lanes
}

/// See [`crate::MatvecF32`]; bit-exact with the reference.
pub fn matvec_f32(matrix: &[f32], cols: usize, x: &[f32], out: &mut [f32]) {
    for (o, row) in out.iter_mut().zip(matrix.chunks_exact(cols.max(1))) {
        // SAFETY: NEON is present (this module compiles only with it).
        *o = unsafe { dot_f32(row, x) };
    }
}

/// `eddy_quant::dot_f32` with NEON, including its pairing of `row` and
/// `x` (chunks of 8 of each, then the remainders).
///
/// # Safety
/// NEON must be present.
unsafe fn dot_f32(row: &[f32], x: &[f32]) -> f32 {
    let (cw, cx) = (row.chunks_exact(8), x.chunks_exact(8));
    let (rw, rx) = (cw.remainder(), cx.remainder());
    // SAFETY: every chunk holds exactly 8 floats: two 4-float loads each.
    let mut lanes = unsafe {
        let (mut lo, mut hi) = (vdupq_n_f32(0.0), vdupq_n_f32(0.0));
        for (w, v) in cw.zip(cx) {
            let (w, v) = (w.as_ptr(), v.as_ptr());
            lo = vaddq_f32(lo, vmulq_f32(vld1q_f32(w), vld1q_f32(v)));
            hi = vaddq_f32(hi, vmulq_f32(vld1q_f32(w.add(4)), vld1q_f32(v.add(4))));
        }
        lanes(lo, hi)
    };
    for (l, (w, v)) in rw.iter().zip(rx).enumerate() {
        lanes[l] += w * v;
    }
    reduce_lanes(lanes)
}

/// See [`crate::MatvecF16`]; f16 widens exactly, so bit-exact too.
pub fn matvec_f16(matrix: &[u16], cols: usize, x: &[f32], out: &mut [f32]) {
    for (o, row) in out.iter_mut().zip(matrix.chunks_exact(cols.max(1))) {
        // SAFETY: NEON is present (this module compiles only with it).
        *o = unsafe { dot_f16(row, x) };
    }
}

/// `eddy_quant::dot_f16_f32` with NEON: eight f16 per load, widened with
/// `fcvtl`/`fcvtl2`.
///
/// # Safety
/// NEON must be present.
unsafe fn dot_f16(row: &[u16], x: &[f32]) -> f32 {
    let (cw, cx) = (row.chunks_exact(8), x.chunks_exact(8));
    let (rw, rx) = (cw.remainder(), cx.remainder());
    // SAFETY: every chunk holds exactly 8 u16 (16 bytes) or 8 f32.
    let mut lanes = unsafe {
        let (mut lo, mut hi) = (vdupq_n_f32(0.0), vdupq_n_f32(0.0));
        for (w, v) in cw.zip(cx) {
            let bits = vld1q_u16(w.as_ptr());
            let v = v.as_ptr();
            let (w_lo, w_hi) = (f16x4_to_f32(vget_low_u16(bits)), f16x8_high_to_f32(bits));
            lo = vaddq_f32(lo, vmulq_f32(w_lo, vld1q_f32(v)));
            hi = vaddq_f32(hi, vmulq_f32(w_hi, vld1q_f32(v.add(4))));
        }
        lanes(lo, hi)
    };
    for (l, (w, v)) in rw.iter().zip(rx).enumerate() {
        lanes[l] += half::f16::from_bits(*w).to_f32() * v;
    }
    reduce_lanes(lanes)
}
