//! The NEON multi-token kernel for f16 weights (prefill; Mamba's
//! `dt_proj`), bit-exact with [`super::matvec_f16`] per token.
//!
//! As on x86 (`x86::float_tokens`): each block of four rows is widened
//! once per call and stored transposed (column `c` of the four rows as one
//! vector), so a token's four dot products are `vector(column) *
//! broadcast(x[c])` added into the reference's eight lane accumulators,
//! one row per lane, and the reference's pairwise lane sum becomes seven
//! vertical additions (the matrix-vector kernel widens every weight per
//! token and reduces every row on its own).

use super::f16x4_to_f32;
use crate::F16Batch;
use core::arch::aarch64::*;

/// Rows per block (one per f32 lane).
const ROWS: usize = 4;

/// Bytes of scratch [`matmat_f16`] needs for rows of `cols` weights.
pub const fn scratch_len(cols: usize) -> usize {
    // One block transposed as f32, and room to align it.
    ROWS * cols * 4 + 15
}

/// See [`crate::MatmatF16`].
pub fn matmat_f16(matrix: &[u16], cols: usize, xs: &[f32], out: &mut [f32], scratch: &mut [i8]) {
    let call = (matrix, cols, xs, &mut *out, &*scratch);
    let Some(batch) = crate::f16_batch_or_per_token(true, scratch_len(cols), super::matvec_f16, call) else {
        return;
    };
    let offset = scratch.as_ptr().align_offset(16).min(15);
    // SAFETY: NEON is present (this module compiles only with it);
    // `matrix` holds `rows` rows, `xs` `tokens` inputs and `out` `tokens *
    // rows` values; the aligned scratch holds `ROWS * cols` f32.
    unsafe { blocks(&batch, out, scratch.as_mut_ptr().add(offset) as *mut f32) }
}

/// # Safety
/// As the checks in [`matmat_f16`]; `wt` holds `ROWS * cols` f32.
unsafe fn blocks(batch: &F16Batch<'_>, out: &mut [f32], wt: *mut f32) {
    let F16Batch { matrix, cols, xs, tokens, rows } = *batch;
    let full = cols / 8 * 8;
    for r0 in (0..rows).step_by(ROWS) {
        let n = ROWS.min(rows - r0);
        // Rows past the end repeat the last one; their results are dropped.
        let row = |i: usize| matrix.as_ptr().wrapping_add((r0 + i.min(n - 1)) * cols);
        // SAFETY: every access stays inside the checked buffers (rows
        // `r0..r0 + n`, `cols` columns, token `t < tokens`).
        unsafe {
            transpose_block(row, cols, wt);
            for t in 0..tokens {
                let x = xs.as_ptr().add(t * cols);
                let mut acc = [vdupq_n_f32(0.0); 8];
                for k in (0..full).step_by(8) {
                    for (l, a) in acc.iter_mut().enumerate() {
                        let w = vld1q_f32(wt.add((k + l) * ROWS));
                        *a = vaddq_f32(*a, vmulq_f32(w, vdupq_n_f32(*x.add(k + l))));
                    }
                }
                for (l, a) in acc.iter_mut().enumerate().take(cols - full) {
                    let w = vld1q_f32(wt.add((full + l) * ROWS));
                    *a = vaddq_f32(*a, vmulq_f32(w, vdupq_n_f32(*x.add(full + l))));
                }
                // The reference's ((l0 + l4) + (l2 + l6)) + ((l1 + l5) + (l3 + l7)).
                let even = vaddq_f32(vaddq_f32(acc[0], acc[4]), vaddq_f32(acc[2], acc[6]));
                let odd = vaddq_f32(vaddq_f32(acc[1], acc[5]), vaddq_f32(acc[3], acc[7]));
                let mut lanes = [0f32; ROWS];
                vst1q_f32(lanes.as_mut_ptr(), vaddq_f32(even, odd));
                out[t * rows + r0..t * rows + r0 + n].copy_from_slice(&lanes[..n]);
            }
        }
    }
}

/// `wt[c * 4 + i]` = row `i`'s weight `c` as f32, for the four rows
/// `row(0..4)` (four columns at a time through a 4x4 transpose).
///
/// # Safety
/// NEON must be present; each `row(i)` points at `cols` readable f16;
/// `wt` holds `4 * cols` f32.
#[inline(always)]
unsafe fn transpose_block(row: impl Fn(usize) -> *const u16, cols: usize, wt: *mut f32) {
    let full = cols / 4 * 4;
    // SAFETY: reads stay inside the rows' `cols` values, writes inside
    // `wt` (caller).
    unsafe {
        for c in (0..full).step_by(4) {
            let v: [float32x4_t; ROWS] = [
                f16x4_to_f32(vld1_u16(row(0).add(c))),
                f16x4_to_f32(vld1_u16(row(1).add(c))),
                f16x4_to_f32(vld1_u16(row(2).add(c))),
                f16x4_to_f32(vld1_u16(row(3).add(c))),
            ];
            // 4x4 transpose: pairs of rows interleaved, then 64-bit halves.
            let (a, b) = (vzip1q_f32(v[0], v[1]), vzip2q_f32(v[0], v[1]));
            let (c2, d) = (vzip1q_f32(v[2], v[3]), vzip2q_f32(v[2], v[3]));
            let col = |p: float32x4_t, q: float32x4_t, high: bool| {
                let (p, q) = (vreinterpretq_f64_f32(p), vreinterpretq_f64_f32(q));
                vreinterpretq_f32_f64(if high { vzip2q_f64(p, q) } else { vzip1q_f64(p, q) })
            };
            vst1q_f32(wt.add(c * ROWS), col(a, c2, false));
            vst1q_f32(wt.add((c + 1) * ROWS), col(a, c2, true));
            vst1q_f32(wt.add((c + 2) * ROWS), col(b, d, false));
            vst1q_f32(wt.add((c + 3) * ROWS), col(b, d, true));
        }
        for c in full..cols {
            for i in 0..ROWS {
                *wt.add(c * ROWS + i) = half::f16::from_bits(*row(i).add(c)).to_f32();
            }
        }
    }
}
