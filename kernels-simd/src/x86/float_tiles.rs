//! The AVX2 multi-token kernel for f32 weights (prefill, calibration),
//! bit-exact with [`super::matvec_f32`] per token.
//!
//! The matrix-vector kernel reads every weight once per token. Here a
//! tile of [`ROWS`] rows by [`TOKENS`] tokens keeps one eight-lane
//! accumulator per (row, token) in registers: each step loads eight
//! columns of the tile's rows and of its tokens once and does every
//! product between them, so a weight load serves [`TOKENS`] tokens and an
//! input load [`ROWS`] rows. Each accumulator sees exactly the
//! matrix-vector kernel's sequence of operations (lane `l` adds the
//! products of columns `l, l + 8, ...` in order, no FMA, the ragged tail
//! into the first lanes, then the reference's pairwise lane sum), so the
//! results are the same bits.

use super::avx2_available;
use super::float::FloatWeights;
use core::arch::x86_64::*;

/// Rows of a tile: with [`TOKENS`], `ROWS * TOKENS` accumulators plus the
/// `ROWS + TOKENS` loaded vectors fill the 16 AVX2 registers.
const ROWS: usize = 3;
/// Tokens of a tile.
const TOKENS: usize = 3;

/// See [`crate::MatmatF32`].
pub fn matmat_f32(matrix: &[f32], cols: usize, xs: &[f32], out: &mut [f32]) {
    let tokens = xs.len().checked_div(cols).unwrap_or(0);
    let rows = out.len().checked_div(tokens).unwrap_or(0);
    let fits = avx2_available()
        && cols > 0
        && rows > 0
        && matrix.len() >= rows * cols
        && xs.len() == tokens * cols
        && out.len() == tokens * rows;
    if !fits {
        crate::matvec_per_token(super::matvec_f32, matrix, cols, xs, out);
        return;
    }
    // SAFETY: AVX2 was detected; `matrix` holds `rows` rows of `cols`,
    // `xs` `tokens` rows of `cols` and `out` `tokens * rows` values.
    unsafe { tiles(matrix, cols, xs, tokens, rows, out) }
}

/// Every tile of the product; the tiles of [`ROWS`] rows are outermost,
/// so a tile's rows stay in cache while all the tokens pass.
#[target_feature(enable = "avx2,f16c")]
unsafe fn tiles<W: FloatWeights>(
    matrix: &[W],
    cols: usize,
    xs: &[f32],
    tokens: usize,
    rows: usize,
    out: &mut [f32],
) {
    let full = cols / 8 * 8;
    for r0 in (0..rows).step_by(ROWS) {
        let nr = ROWS.min(rows - r0);
        // Rows past the end repeat the last one; their sums are dropped.
        let w: [*const W; ROWS] = core::array::from_fn(|i| matrix.as_ptr().add((r0 + i.min(nr - 1)) * cols));
        for t0 in (0..tokens).step_by(TOKENS) {
            let nt = TOKENS.min(tokens - t0);
            let x: [*const f32; TOKENS] =
                core::array::from_fn(|j| xs.as_ptr().add((t0 + j.min(nt - 1)) * cols));
            let mut acc = [[_mm256_setzero_ps(); TOKENS]; ROWS];
            for c in (0..full).step_by(8) {
                let xv: [__m256; TOKENS] = core::array::from_fn(|j| _mm256_loadu_ps(x[j].add(c)));
                for (acc_row, &w_row) in acc.iter_mut().zip(&w) {
                    let wv = W::load8(w_row.add(c));
                    for (a, &xj) in acc_row.iter_mut().zip(&xv) {
                        *a = _mm256_add_ps(*a, _mm256_mul_ps(wv, xj));
                    }
                }
            }
            for (i, acc_row) in acc.iter().enumerate().take(nr) {
                for (j, a) in acc_row.iter().enumerate().take(nt) {
                    let mut lanes = [0f32; 8];
                    _mm256_storeu_ps(lanes.as_mut_ptr(), *a);
                    for (l, c) in (full..cols).enumerate() {
                        lanes[l] += (*w[i].add(c)).to_f32() * *x[j].add(c);
                    }
                    out[(t0 + j) * rows + r0 + i] = eddy_quant::reduce_lanes(lanes);
                }
            }
        }
    }
}
