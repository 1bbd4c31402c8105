//! x86-64 kernels: AVX2 (+F16C for f16 weights and parameters, +FMA where
//! a fused multiply-add is provably exact, see [`kv`]).
//!
//! Integer path: codes are unpacked to bytes with one 64-bit variable shift
//! and a mask per 32 weights, multiplied with int8 activations by
//! `vpmaddubsw` (u8 × i8 → i16 pairs; W2/W4 products cannot saturate) or,
//! for W8 whose products can, by widening to i16 and `vpmaddwd`. Unpacking
//! leaves codes in a fixed permuted order, so the activations are permuted
//! the same way once per matrix-vector product.
//!
//! Attention over the KV cache (`kv_scores`, `kv_mix`): see [`kv`].

pub mod kv;

use crate::{ActsI8, IntShape, Kernels};
use core::arch::x86_64::*;
use eddy_quant::{group_header, TensorFormat, GROUP_HEADER_BYTES};

/// AVX2 kernels; only selected when the CPU has AVX2, FMA and F16C (every
/// AVX2 CPU from Intel Haswell and AMD Zen on has all three).
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
        std::is_x86_feature_detected!("avx2")
            && std::is_x86_feature_detected!("fma")
            && std::is_x86_feature_detected!("f16c")
    }
    #[cfg(not(feature = "std"))]
    {
        cfg!(all(target_feature = "avx2", target_feature = "fma", target_feature = "f16c"))
    }
}

/// Reorder int8 activations to match the byte order the W2/W4 unpacking
/// produces (per block of 32). W8 needs no reordering.
fn permute_activations(bits: u32, xq: &[i8], perm: &mut [i8]) {
    for (src, dst) in xq.chunks_exact(32).zip(perm.chunks_exact_mut(32)) {
        match bits {
            // Lane j*8 + k holds code 4k + j.
            2 => {
                for j in 0..4 {
                    for k in 0..8 {
                        dst[j * 8 + k] = src[4 * k + j];
                    }
                }
            }
            // Lane k holds code 2k, lane 16 + k code 2k + 1.
            4 => {
                for k in 0..16 {
                    dst[k] = src[2 * k];
                    dst[16 + k] = src[2 * k + 1];
                }
            }
            _ => dst.copy_from_slice(src),
        }
    }
}

/// See [`crate::MatvecI8`]. Falls back to the scalar reference on a CPU
/// without AVX2 or for shapes it does not cover.
pub fn matvec_i8(
    format: TensorFormat,
    matrix: &[u8],
    cols: usize,
    acts: &ActsI8<'_>,
    out: &mut [f32],
    perm: &mut [i8],
) {
    let (xq, x_scales, x_sums) = (acts.q, acts.scales, acts.sums);
    let shape = match IntShape::for_matvec(format, cols, out.len(), matrix, acts, perm.len()) {
        Some(shape) if avx2_available() => shape,
        _ => {
            eddy_quant::matvec_i8(format, matrix, cols, xq, x_scales, x_sums, out);
            return;
        }
    };
    let IntShape { bits, group, group_bytes, row_bytes, .. } = shape;
    permute_activations(bits, &xq[..cols], &mut perm[..cols]);
    let perm = &perm[..cols];
    // Eight rows at a time: one act load feeds eight rows, the eight group
    // sums reduce together, and the f32 group math runs with one row per
    // lane in the reference's order, so results stay bit-exact.
    let full = out.len() / 8 * 8;
    let (out8, out_tail) = out.split_at_mut(full);
    for (o, rows) in out8.chunks_exact_mut(8).zip(matrix.chunks_exact(8 * row_bytes)) {
        // SAFETY: AVX2 and F16C were detected above; `rows` holds 8 rows of
        // `row_bytes`, `perm` `cols` codes, scales/sums `groups` entries.
        unsafe { rows8_dot(&shape, rows, perm, x_scales, x_sums, o) };
    }
    for (o, row) in out_tail.iter_mut().zip(matrix[full * row_bytes..].chunks_exact(row_bytes)) {
        let mut result = 0f32;
        for (g, gbytes) in row.chunks_exact(group_bytes).enumerate() {
            let acts = &perm[g * group..(g + 1) * group];
            let codes = &gbytes[GROUP_HEADER_BYTES..];
            // SAFETY: AVX2 was detected above; `codes` holds group*bits/8
            // bytes and `acts` group bytes, which is what the kernels read.
            let acc = unsafe {
                match bits {
                    2 => group_dot_w2(codes, acts),
                    4 => group_dot_w4(codes, acts),
                    _ => group_dot_w8(codes, acts),
                }
            };
            let (scale, min) = group_header(gbytes);
            // Same expression and order as eddy_quant::dot_row_i8.
            result += x_scales[g] * (scale * acc as f32 + min * x_sums[g] as f32);
        }
        *o = result;
    }
}

/// Tokens one multi-token pass multiplies with each unpacked weight block.
const TOKEN_BATCH: usize = 4;

/// Bytes of weights in one cache block of the multi-token kernel.
const BLOCK_BYTES: usize = 32 * 1024;

/// See [`crate::MatmatI8`]. W2/W4 codes are unpacked once per eight rows
/// and group and multiplied with up to four tokens; each (row, token)
/// result is computed by exactly the operations of [`matvec_i8`].
pub fn matmat_i8(
    format: TensorFormat,
    matrix: &[u8],
    cols: usize,
    acts: &[ActsI8<'_>],
    out: &mut [f32],
    perm: &mut [i8],
) {
    let tokens = acts.len();
    if tokens == 0 {
        return;
    }
    let rows = out.len() / tokens;
    let shape = acts
        .iter()
        .map(|a| IntShape::for_matvec(format, cols, rows, matrix, a, perm.len() / tokens))
        .reduce(|a, b| if a == b { a } else { None })
        .flatten()
        .filter(|s| s.bits != 8 && avx2_available());
    let Some(shape) = shape else {
        // W8 has no unpacking to share: one matrix-vector product per token.
        for (a, o) in acts.iter().zip(out.chunks_exact_mut(rows.max(1))) {
            matvec_i8(format, matrix, cols, a, o, perm);
        }
        return;
    };
    let row_bytes = shape.row_bytes;
    for (a, p) in acts.iter().zip(perm.chunks_exact_mut(cols)) {
        permute_activations(shape.bits, &a.q[..cols], p);
    }
    let full = rows / 8 * 8;
    // Blocks of rows small enough to stay in L1/L2 while every token
    // passes over them: each weight is read from memory once per call.
    let block_rows = ((BLOCK_BYTES / row_bytes.max(1)) / 8 * 8).max(8);
    for block_start in (0..full).step_by(block_rows) {
        let block_end = (block_start + block_rows).min(full);
        for first in (0..tokens).step_by(TOKEN_BATCH) {
            let batch = TokenBatch { first, count: TOKEN_BATCH.min(tokens - first), cols, out_stride: rows };
            for row0 in (block_start..block_end).step_by(8) {
                let rows8 = &matrix[row0 * row_bytes..(row0 + 8) * row_bytes];
                // SAFETY: AVX2 and F16C were detected above; `rows8` holds 8
                // rows, `perm` `tokens * cols` permuted codes, every `acts`
                // entry `groups` scales and sums, `out` `tokens * rows` values.
                unsafe { rows8_dot_tokens(&shape, rows8, perm, acts, &batch, out, row0) };
            }
        }
    }
    // Up to seven leftover rows: the scalar reference, token by token.
    for (a, o) in acts.iter().zip(out.chunks_exact_mut(rows)) {
        eddy_quant::matvec_i8(
            format,
            &matrix[full * row_bytes..],
            cols,
            a.q,
            a.scales,
            a.sums,
            &mut o[full..],
        );
    }
}

/// Which tokens a multi-token pass covers, and the output layout.
struct TokenBatch {
    first: usize,
    count: usize,
    cols: usize,
    out_stride: usize,
}

/// Eight rows times up to [`TOKEN_BATCH`] tokens (W2/W4 only).
#[target_feature(enable = "avx2,f16c")]
unsafe fn rows8_dot_tokens(
    s: &IntShape,
    rows: &[u8],
    perm: &[i8],
    acts: &[ActsI8<'_>],
    batch: &TokenBatch,
    out: &mut [f32],
    row0: usize,
) {
    let ones = _mm256_set1_epi16(1);
    let blocks = s.group / 32;
    let code_bytes = if s.bits == 2 { 8 } else { 16 };
    let mut result = [_mm256_setzero_ps(); TOKEN_BATCH];
    for g in 0..s.groups {
        let mut lanes = [[_mm256_setzero_si256(); 8]; TOKEN_BATCH];
        let mut scales = [0u16; 8];
        let mut mins = [0u16; 8];
        for r in 0..8 {
            let start = r * s.row_bytes + g * s.group_bytes;
            let gbytes = &rows[start..start + s.group_bytes];
            scales[r] = u16::from_le_bytes([gbytes[0], gbytes[1]]);
            mins[r] = u16::from_le_bytes([gbytes[2], gbytes[3]]);
            let codes = &gbytes[GROUP_HEADER_BYTES..];
            // At most 8 blocks of 32 codes (groups of up to 256).
            let mut unpacked = [_mm256_setzero_si256(); 8];
            for (b, w) in unpacked.iter_mut().enumerate().take(blocks) {
                let c = &codes[b * code_bytes..(b + 1) * code_bytes];
                *w = if s.bits == 2 { unpack_w2(c) } else { unpack_w4(c) };
            }
            for (t, token_lanes) in lanes.iter_mut().enumerate().take(batch.count) {
                let base = (batch.first + t) * batch.cols + g * s.group;
                let mut acc16 = _mm256_setzero_si256();
                for (b, w) in unpacked.iter().enumerate().take(blocks) {
                    let a = &perm[base + b * 32..base + b * 32 + 32];
                    // SAFETY: `a` has exactly 32 bytes.
                    let x = _mm256_loadu_si256(a.as_ptr() as *const __m256i);
                    acc16 = _mm256_add_epi16(acc16, _mm256_maddubs_epi16(*w, x));
                }
                token_lanes[r] = _mm256_madd_epi16(acc16, ones);
            }
        }
        // SAFETY: each array holds 8 u16 = 16 bytes.
        let scale = _mm256_cvtph_ps(_mm_loadu_si128(scales.as_ptr() as *const __m128i));
        let min = _mm256_cvtph_ps(_mm_loadu_si128(mins.as_ptr() as *const __m128i));
        for (t, res) in result.iter_mut().enumerate().take(batch.count) {
            let a = &acts[batch.first + t];
            let acc = _mm256_cvtepi32_ps(hsum8_i32(&lanes[t]));
            let sum = _mm256_set1_ps(a.sums[g] as f32);
            // As in rows8_dot: result += s * (scale * acc + min * sum).
            let inner = _mm256_add_ps(_mm256_mul_ps(scale, acc), _mm256_mul_ps(min, sum));
            *res = _mm256_add_ps(*res, _mm256_mul_ps(_mm256_set1_ps(a.scales[g]), inner));
        }
    }
    for (t, res) in result.iter().enumerate().take(batch.count) {
        let at = (batch.first + t) * batch.out_stride + row0;
        let o = &mut out[at..at + 8];
        // SAFETY: `o` has exactly 8 floats.
        _mm256_storeu_ps(o.as_mut_ptr(), *res);
    }
}

/// Lane `r` of the result = Σ lanes of `v[r]` (eight horizontal sums at once).
#[inline]
#[target_feature(enable = "avx2")]
unsafe fn hsum8_i32(v: &[__m256i; 8]) -> __m256i {
    let a = _mm256_hadd_epi32(_mm256_hadd_epi32(v[0], v[1]), _mm256_hadd_epi32(v[2], v[3]));
    let b = _mm256_hadd_epi32(_mm256_hadd_epi32(v[4], v[5]), _mm256_hadd_epi32(v[6], v[7]));
    // a = [r0 r1 r2 r3 | r0 r1 r2 r3] partial halves, b likewise for r4..r7.
    _mm256_add_epi32(_mm256_permute2x128_si256(a, b, 0x20), _mm256_permute2x128_si256(a, b, 0x31))
}

/// Codes of 32 W2 weights (8 bytes) unpacked to bytes in the permuted order.
// Not `#[target_feature]`: a plain `inline(always)` function is inlined
// into its AVX2 callers, which LLVM refused to do for the annotated one.
#[inline(always)]
unsafe fn unpack_w2(c: &[u8]) -> __m256i {
    let v = u64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]);
    let shifted = _mm256_srlv_epi64(_mm256_set1_epi64x(v as i64), _mm256_setr_epi64x(0, 2, 4, 6));
    _mm256_and_si256(shifted, _mm256_set1_epi8(3))
}

/// Codes of 32 W4 weights (16 bytes) unpacked to bytes in the permuted order.
// Not `#[target_feature]`: a plain `inline(always)` function is inlined
// into its AVX2 callers, which LLVM refused to do for the annotated one.
#[inline(always)]
unsafe fn unpack_w4(c: &[u8]) -> __m256i {
    // SAFETY (caller): `c` has at least 16 bytes.
    let both = _mm256_broadcastsi128_si256(_mm_loadu_si128(c.as_ptr() as *const __m128i));
    _mm256_and_si256(_mm256_srlv_epi64(both, _mm256_setr_epi64x(0, 0, 4, 4)), _mm256_set1_epi8(0x0f))
}

/// Σ code·act of one group of one row as eight i32 lanes. W2/W4 products
/// accumulate in i16 first: a pair sum is at most 2·15·127 = 3810 and a
/// group has at most 8 blocks of 32, so 30480 < 32767 cannot overflow.
#[inline]
#[target_feature(enable = "avx2")]
unsafe fn group_lanes(bits: u32, codes: &[u8], acts: &[i8], x_sum: i32) -> __m256i {
    match bits {
        2 | 4 => {
            let code_bytes = if bits == 2 { 8 } else { 16 };
            let mut acc16 = _mm256_setzero_si256();
            for (c, a) in codes.chunks_exact(code_bytes).zip(acts.chunks_exact(32)) {
                let w = if bits == 2 { unpack_w2(c) } else { unpack_w4(c) };
                // SAFETY: `a` has exactly 32 bytes.
                let x = _mm256_loadu_si256(a.as_ptr() as *const __m256i);
                acc16 = _mm256_add_epi16(acc16, _mm256_maddubs_epi16(w, x));
            }
            _mm256_madd_epi16(acc16, _mm256_set1_epi16(1))
        }
        _ => {
            // u8 codes times i8 activations would saturate vpmaddubsw, so
            // shift codes to i8 (w = c - 128) and use |w| · (x·sign(w)):
            // |w| <= 128 and |x| <= 127 keep pair sums <= 32512. Then
            // Σ c·x = Σ w·x + 128 Σ x, with Σ x the group's code sum.
            let bias = _mm256_set1_epi8(-128);
            let mut acc = _mm256_setzero_si256();
            for (c, a) in codes.chunks_exact(32).zip(acts.chunks_exact(32)) {
                // SAFETY: both chunks have exactly 32 bytes.
                let w = _mm256_xor_si256(_mm256_loadu_si256(c.as_ptr() as *const __m256i), bias);
                let x = _mm256_loadu_si256(a.as_ptr() as *const __m256i);
                let prod = _mm256_maddubs_epi16(_mm256_abs_epi8(w), _mm256_sign_epi8(x, w));
                acc = _mm256_add_epi32(acc, _mm256_madd_epi16(prod, _mm256_set1_epi16(1)));
            }
            _mm256_add_epi32(acc, _mm256_setr_epi32(128 * x_sum, 0, 0, 0, 0, 0, 0, 0))
        }
    }
}

/// Eight rows of a quantized matrix times permuted int8 activations.
#[target_feature(enable = "avx2,f16c")]
unsafe fn rows8_dot(
    s: &IntShape,
    rows: &[u8],
    acts: &[i8],
    x_scales: &[f32],
    x_sums: &[i32],
    out: &mut [f32],
) {
    let mut result = _mm256_setzero_ps();
    for g in 0..s.groups {
        let group_acts = &acts[g * s.group..(g + 1) * s.group];
        let mut lanes = [_mm256_setzero_si256(); 8];
        let mut scales = [0u16; 8];
        let mut mins = [0u16; 8];
        for r in 0..8 {
            let start = r * s.row_bytes + g * s.group_bytes;
            let gbytes = &rows[start..start + s.group_bytes];
            scales[r] = u16::from_le_bytes([gbytes[0], gbytes[1]]);
            mins[r] = u16::from_le_bytes([gbytes[2], gbytes[3]]);
            lanes[r] = group_lanes(s.bits, &gbytes[GROUP_HEADER_BYTES..], group_acts, x_sums[g]);
        }
        let acc = _mm256_cvtepi32_ps(hsum8_i32(&lanes));
        // SAFETY: each array holds 8 u16 = 16 bytes.
        let scale = _mm256_cvtph_ps(_mm_loadu_si128(scales.as_ptr() as *const __m128i));
        let min = _mm256_cvtph_ps(_mm_loadu_si128(mins.as_ptr() as *const __m128i));
        let sum = _mm256_set1_ps(x_sums[g] as f32);
        // result += s * (scale * acc + min * sum), no FMA: as the reference.
        let inner = _mm256_add_ps(_mm256_mul_ps(scale, acc), _mm256_mul_ps(min, sum));
        result = _mm256_add_ps(result, _mm256_mul_ps(_mm256_set1_ps(x_scales[g]), inner));
    }
    // SAFETY: `out` has exactly 8 floats.
    _mm256_storeu_ps(out.as_mut_ptr(), result);
}

#[inline]
#[target_feature(enable = "avx2")]
unsafe fn hsum_i32(v: __m256i) -> i32 {
    let s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
    let s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0b01_00_11_10));
    let s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0b10_11_00_01));
    _mm_cvtsi128_si32(s)
}

/// Σ code·act over one W2 group (32·n codes in 8·n bytes).
#[target_feature(enable = "avx2")]
unsafe fn group_dot_w2(codes: &[u8], acts: &[i8]) -> i32 {
    let shifts = _mm256_setr_epi64x(0, 2, 4, 6);
    let mask = _mm256_set1_epi8(3);
    let ones = _mm256_set1_epi16(1);
    let mut acc = _mm256_setzero_si256();
    for (c, a) in codes.chunks_exact(8).zip(acts.chunks_exact(32)) {
        let v = u64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]);
        let unpacked = _mm256_and_si256(_mm256_srlv_epi64(_mm256_set1_epi64x(v as i64), shifts), mask);
        // SAFETY: `a` has exactly 32 bytes.
        let x = _mm256_loadu_si256(a.as_ptr() as *const __m256i);
        acc = _mm256_add_epi32(acc, _mm256_madd_epi16(_mm256_maddubs_epi16(unpacked, x), ones));
    }
    hsum_i32(acc)
}

/// Σ code·act over one W4 group (32·n codes in 16·n bytes).
#[target_feature(enable = "avx2")]
unsafe fn group_dot_w4(codes: &[u8], acts: &[i8]) -> i32 {
    let shifts = _mm256_setr_epi64x(0, 0, 4, 4);
    let mask = _mm256_set1_epi8(0x0f);
    let ones = _mm256_set1_epi16(1);
    let mut acc = _mm256_setzero_si256();
    for (c, a) in codes.chunks_exact(16).zip(acts.chunks_exact(32)) {
        // SAFETY: `c` has exactly 16 bytes, `a` 32.
        let half = _mm_loadu_si128(c.as_ptr() as *const __m128i);
        let both = _mm256_broadcastsi128_si256(half);
        let unpacked = _mm256_and_si256(_mm256_srlv_epi64(both, shifts), mask);
        let x = _mm256_loadu_si256(a.as_ptr() as *const __m256i);
        acc = _mm256_add_epi32(acc, _mm256_madd_epi16(_mm256_maddubs_epi16(unpacked, x), ones));
    }
    hsum_i32(acc)
}

/// Σ code·act over one W8 group: widened to i16 because u8×i8 pair sums
/// can exceed i16.
#[target_feature(enable = "avx2")]
unsafe fn group_dot_w8(codes: &[u8], acts: &[i8]) -> i32 {
    let mut acc = _mm256_setzero_si256();
    for (c, a) in codes.chunks_exact(16).zip(acts.chunks_exact(16)) {
        // SAFETY: both chunks have exactly 16 bytes.
        let cw = _mm256_cvtepu8_epi16(_mm_loadu_si128(c.as_ptr() as *const __m128i));
        let xw = _mm256_cvtepi8_epi16(_mm_loadu_si128(a.as_ptr() as *const __m128i));
        acc = _mm256_add_epi32(acc, _mm256_madd_epi16(cw, xw));
    }
    hsum_i32(acc)
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
