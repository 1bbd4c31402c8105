//! The AVX2 multi-token kernel for f16 weights (prefill; Mamba's
//! `dt_proj`), bit-exact with [`super::matvec_f16`] per token.
//!
//! The matrix-vector kernel converts every weight from f16 once per token
//! and ends every block of rows in a horizontal sum. Here each block of
//! eight rows is converted once per call and stored transposed (column `c`
//! of the eight rows as one vector), so a token's eight-row dot products
//! are `vector(column) * broadcast(x[c])` added into the reference's eight
//! lane accumulators, one row per lane, and the reference's pairwise lane
//! sum becomes seven vertical additions.

use super::avx2_available;
use crate::F16Batch;
use core::arch::x86_64::*;

/// Rows per block (one per f32 lane).
const ROWS: usize = 8;

/// Bytes of scratch [`matmat_f16`] needs for rows of `cols` weights.
pub const fn scratch_len(cols: usize) -> usize {
    // One block transposed as f32, and room to align it.
    ROWS * cols * 4 + 31
}

/// See [`crate::MatmatF16`].
pub fn matmat_f16(matrix: &[u16], cols: usize, xs: &[f32], out: &mut [f32], scratch: &mut [i8]) {
    let call = (matrix, cols, xs, &mut *out, &*scratch);
    let needed = scratch_len(cols);
    let Some(batch) = crate::f16_batch_or_per_token(avx2_available(), needed, super::matvec_f16, call) else {
        return;
    };
    let offset = scratch.as_ptr().align_offset(32).min(31);
    // SAFETY: AVX2 and F16C were detected; `matrix` holds `rows` rows,
    // `xs` `tokens` inputs and `out` `tokens * rows` values; the aligned
    // scratch holds `ROWS * cols` f32.
    unsafe { blocks(&batch, out, scratch.as_mut_ptr().add(offset) as *mut f32) }
}

#[target_feature(enable = "avx2,f16c")]
unsafe fn blocks(batch: &F16Batch<'_>, out: &mut [f32], wt: *mut f32) {
    let F16Batch { matrix, cols, xs, tokens, rows } = *batch;
    let full = cols / 8 * 8;
    for r0 in (0..rows).step_by(ROWS) {
        let n = ROWS.min(rows - r0);
        // Rows past the end repeat the last one; their results are dropped.
        let row = |i: usize| matrix.as_ptr().add((r0 + i.min(n - 1)) * cols);
        transpose_block(row, cols, wt);
        for t in 0..tokens {
            let x = xs.as_ptr().add(t * cols);
            let mut acc = [_mm256_setzero_ps(); 8];
            for k in (0..full).step_by(8) {
                for (l, a) in acc.iter_mut().enumerate() {
                    let w = _mm256_load_ps(wt.add((k + l) * ROWS));
                    *a = _mm256_add_ps(*a, _mm256_mul_ps(w, _mm256_set1_ps(*x.add(k + l))));
                }
            }
            for (l, a) in acc.iter_mut().enumerate().take(cols - full) {
                let w = _mm256_load_ps(wt.add((full + l) * ROWS));
                *a = _mm256_add_ps(*a, _mm256_mul_ps(w, _mm256_set1_ps(*x.add(full + l))));
            }
            // The reference's ((l0 + l4) + (l2 + l6)) + ((l1 + l5) + (l3 + l7)).
            let even = _mm256_add_ps(_mm256_add_ps(acc[0], acc[4]), _mm256_add_ps(acc[2], acc[6]));
            let odd = _mm256_add_ps(_mm256_add_ps(acc[1], acc[5]), _mm256_add_ps(acc[3], acc[7]));
            let sums = _mm256_add_ps(even, odd);
            let o = &mut out[t * rows + r0..t * rows + r0 + n];
            if n == ROWS {
                _mm256_storeu_ps(o.as_mut_ptr(), sums);
            } else {
                let mut lanes = [0f32; ROWS];
                _mm256_storeu_ps(lanes.as_mut_ptr(), sums);
                o.copy_from_slice(&lanes[..n]);
            }
        }
    }
}

/// `wt[c * 8 + i]` = row `i`'s weight `c` as f32, for the eight rows
/// `row(0..8)` (eight columns at a time through an 8x8 transpose).
#[inline(always)]
unsafe fn transpose_block(row: impl Fn(usize) -> *const u16, cols: usize, wt: *mut f32) {
    let full = cols / 8 * 8;
    for c in (0..full).step_by(8) {
        let mut v = [_mm256_setzero_ps(); ROWS];
        for (i, vi) in v.iter_mut().enumerate() {
            *vi = _mm256_cvtph_ps(_mm_loadu_si128(row(i).add(c) as *const __m128i));
        }
        let t = transpose8(v);
        for (j, tj) in t.iter().enumerate() {
            _mm256_store_ps(wt.add((c + j) * ROWS), *tj);
        }
    }
    for c in full..cols {
        for i in 0..ROWS {
            *wt.add(c * ROWS + i) = half::f16::from_bits(*row(i).add(c)).to_f32();
        }
    }
}

/// Transpose of an 8x8 block of f32 (`v[i]` lane `j` -> result `[j]` lane `i`).
#[inline(always)]
unsafe fn transpose8(v: [__m256; 8]) -> [__m256; 8] {
    let t0 = _mm256_unpacklo_ps(v[0], v[1]);
    let t1 = _mm256_unpackhi_ps(v[0], v[1]);
    let t2 = _mm256_unpacklo_ps(v[2], v[3]);
    let t3 = _mm256_unpackhi_ps(v[2], v[3]);
    let t4 = _mm256_unpacklo_ps(v[4], v[5]);
    let t5 = _mm256_unpackhi_ps(v[4], v[5]);
    let t6 = _mm256_unpacklo_ps(v[6], v[7]);
    let t7 = _mm256_unpackhi_ps(v[6], v[7]);
    let s0 = _mm256_shuffle_ps::<0x44>(t0, t2);
    let s1 = _mm256_shuffle_ps::<0xEE>(t0, t2);
    let s2 = _mm256_shuffle_ps::<0x44>(t1, t3);
    let s3 = _mm256_shuffle_ps::<0xEE>(t1, t3);
    let s4 = _mm256_shuffle_ps::<0x44>(t4, t6);
    let s5 = _mm256_shuffle_ps::<0xEE>(t4, t6);
    let s6 = _mm256_shuffle_ps::<0x44>(t5, t7);
    let s7 = _mm256_shuffle_ps::<0xEE>(t5, t7);
    [
        _mm256_permute2f128_ps::<0x20>(s0, s4),
        _mm256_permute2f128_ps::<0x20>(s1, s5),
        _mm256_permute2f128_ps::<0x20>(s2, s6),
        _mm256_permute2f128_ps::<0x20>(s3, s7),
        _mm256_permute2f128_ps::<0x31>(s0, s4),
        _mm256_permute2f128_ps::<0x31>(s1, s5),
        _mm256_permute2f128_ps::<0x31>(s2, s6),
        _mm256_permute2f128_ps::<0x31>(s3, s7),
    ]
}
