//! AVX2 (+F16C, FMA) attention over the KV cache: `kv_scores` (`q · k` for every
//! cached row) and `kv_mix` (`Σ_j w_j v_j`), bit-exact with the scalar
//! reference (`eddy_quant::kv_dot`, `eddy_quant::kv_axpy`).
//!
//! Rows are widened to f32 eight values ("a unit") at a time: F32 loaded,
//! F16 with `vcvtph2ps`, Q8 sign-extended, Q4 by broadcasting a unit's four
//! code bytes to every lane and shifting lane `l` right by `4 l`, which
//! leaves the codes in index order (no shuffles, and the query needs no
//! reordering). Lane `l` of a unit is value `8 u + l`: exactly the
//! reference's lane `j % 8`, so the products add up in the same order.
//!
//! Scores take four rows at a time (one query load feeds four rows, four
//! independent add chains) and end with the reference's pairwise lane sum
//! for all four rows in one transposing reduction. Q4's `Σ q` per group and
//! lane is computed once per call, not per row.
//!
//! Mix keeps up to 64 output values in registers and walks every row for
//! them (rows stay in cache between passes), computing each element as the
//! reference does: `acc + w * (scale * c + min)`, the inner Q4 part with
//! one FMA (exact here, see `mix_pass`).

use crate::kv_shape::{KvShape, LANES, MAX_GROUPS};
use crate::KvRows;
use core::arch::x86_64::*;
use eddy_quant::KvFormat;

/// The shape of `rows` if this CPU runs the AVX2 kernels and they cover it.
fn covered(rows: &KvRows<'_>, len: usize) -> Option<KvShape> {
    KvShape::of(rows, len).filter(|_| super::avx2_available())
}

/// See [`crate::KvScores`]; bit-exact with [`crate::scalar::kv_scores`].
pub fn kv_scores(rows: KvRows<'_>, q: &[f32], scores: &mut [f32]) {
    let Some(shape) = covered(&rows, q.len()) else {
        crate::scalar::kv_scores(rows, q, scores);
        return;
    };
    let n = rows.count.min(scores.len());
    let scores = &mut scores[..n];
    let qsum = if rows.format == KvFormat::Q4 { shape.query_sums(q) } else { [[0f32; LANES]; MAX_GROUPS] };
    let base = rows.bytes.as_ptr();
    // SAFETY: AVX2, FMA and F16C were detected (`covered`); KvRows::row_bytes
    // checked that rows 0..count, `stride` bytes apart, each hold a whole
    // row of `head_dim` values inside `bytes`, and n <= count; `q` holds
    // `head_dim` values.
    unsafe {
        match rows.format {
            KvFormat::F32 => scores_rows::<F32>(&shape, base, q, &qsum, scores),
            KvFormat::F16 => scores_rows::<F16>(&shape, base, q, &qsum, scores),
            KvFormat::Q8 => scores_rows::<Q8>(&shape, base, q, &qsum, scores),
            KvFormat::Q4 => scores_rows::<Q4>(&shape, base, q, &qsum, scores),
        }
    }
}

/// See [`crate::KvMix`]; bit-exact with [`crate::scalar::kv_mix`].
pub fn kv_mix(rows: KvRows<'_>, weights: &[f32], out: &mut [f32]) {
    let Some(shape) = covered(&rows, out.len()) else {
        crate::scalar::kv_mix(rows, weights, out);
        return;
    };
    let weights = &weights[..rows.count.min(weights.len())];
    let base = rows.bytes.as_ptr();
    // SAFETY: as in `kv_scores`, with `weights.len() <= count` rows and
    // `out` holding `head_dim` values.
    unsafe {
        match rows.format {
            KvFormat::F32 => mix_rows::<F32>(&shape, base, weights, out),
            KvFormat::F16 => mix_rows::<F16>(&shape, base, weights, out),
            KvFormat::Q8 => mix_rows::<Q8>(&shape, base, weights, out),
            KvFormat::Q4 => mix_rows::<Q4>(&shape, base, weights, out),
        }
    }
}

/// How the rows of one format are read.
trait Codes {
    /// f16 parameters per group after the codes: none (F32, F16), a scale
    /// (Q8), or a scale and a minimum (Q4).
    const PARAMS: usize;
    /// Values (F32, F16) or codes (Q8, Q4) `i..i + 8` of the row at `row`,
    /// as f32.
    ///
    /// # Safety
    /// AVX2 and F16C present; `row` points at a whole row with `i + 8 <=
    /// head_dim`.
    unsafe fn unit(row: *const u8, i: usize) -> __m256;
    /// Value (F32, F16) or code (Q8, Q4) `i` of the row at `row`.
    ///
    /// # Safety
    /// `row` points at a whole row with `i < head_dim`.
    unsafe fn one(row: *const u8, i: usize) -> f32;
}

struct F32;
struct F16;
struct Q8;
struct Q4;

impl Codes for F32 {
    const PARAMS: usize = 0;
    #[inline(always)]
    unsafe fn unit(row: *const u8, i: usize) -> __m256 {
        _mm256_loadu_ps(row.add(4 * i) as *const f32)
    }
    #[inline(always)]
    unsafe fn one(row: *const u8, i: usize) -> f32 {
        f32::from_le_bytes((row.add(4 * i) as *const [u8; 4]).read())
    }
}

impl Codes for F16 {
    const PARAMS: usize = 0;
    #[inline(always)]
    unsafe fn unit(row: *const u8, i: usize) -> __m256 {
        _mm256_cvtph_ps(_mm_loadu_si128(row.add(2 * i) as *const __m128i))
    }
    #[inline(always)]
    unsafe fn one(row: *const u8, i: usize) -> f32 {
        half::f16::from_le_bytes((row.add(2 * i) as *const [u8; 2]).read()).to_f32()
    }
}

impl Codes for Q8 {
    const PARAMS: usize = 1;
    #[inline(always)]
    unsafe fn unit(row: *const u8, i: usize) -> __m256 {
        _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_loadl_epi64(row.add(i) as *const __m128i)))
    }
    #[inline(always)]
    unsafe fn one(row: *const u8, i: usize) -> f32 {
        (*row.add(i) as i8) as f32
    }
}

impl Codes for Q4 {
    const PARAMS: usize = 2;
    #[inline(always)]
    unsafe fn unit(row: *const u8, i: usize) -> __m256 {
        // Value 2k is the low nibble of byte k: lane l = bits 4l..4l+4 of
        // the four little-endian bytes.
        let bytes = (row.add(i / 2) as *const u32).read_unaligned();
        let shifted = _mm256_srlv_epi32(
            _mm256_set1_epi32(bytes as i32),
            _mm256_setr_epi32(0, 4, 8, 12, 16, 20, 24, 28),
        );
        _mm256_cvtepi32_ps(_mm256_and_si256(shifted, _mm256_set1_epi32(0x0f)))
    }
    #[inline(always)]
    unsafe fn one(row: *const u8, i: usize) -> f32 {
        ((*row.add(i / 2) >> (4 * (i % 2))) & 0x0f) as f32
    }
}

/// Scale and minimum (0 for Q8) of group `g`, broadcast to every lane.
///
/// # Safety
/// F16C present; `params` points at the row's group parameters and `g` is
/// one of its groups.
#[inline(always)]
unsafe fn group_params<C: Codes>(params: *const u8, g: usize) -> (__m256, __m256) {
    let bits = if C::PARAMS == 2 {
        (params.add(4 * g) as *const u32).read_unaligned()
    } else {
        (params.add(2 * g) as *const u16).read_unaligned() as u32
    };
    let v = _mm_cvtph_ps(_mm_cvtsi32_si128(bits as i32));
    (_mm256_broadcastss_ps(v), _mm256_broadcastss_ps(_mm_movehdup_ps(v)))
}

/// The same parameters as scalars, as the reference decodes them.
///
/// # Safety
/// As [`group_params`] (without F16C).
#[inline(always)]
unsafe fn group_params_scalar<C: Codes>(params: *const u8, g: usize) -> (f32, f32) {
    let f16_at = |at: usize| half::f16::from_le_bytes((params.add(at) as *const [u8; 2]).read()).to_f32();
    match C::PARAMS {
        2 => (f16_at(4 * g), f16_at(4 * g + 2)),
        1 => (f16_at(2 * g), 0.0),
        _ => (1.0, 0.0),
    }
}

/// `acc[r]` lane `j % 8` += value `start + j` of row `r` times `q[start +
/// j]`, for `j` in `0..len` in order (the reference's inner loop).
///
/// # Safety
/// AVX2 and F16C present; every `rows[r]` points at a whole row and `q` at
/// `head_dim` values, with `start + len <= head_dim`.
#[inline(always)]
unsafe fn accumulate<C: Codes, const R: usize>(
    rows: &[*const u8; R],
    q: *const f32,
    start: usize,
    len: usize,
    acc: &mut [__m256; R],
) {
    let units = len / 8;
    for u in 0..units {
        let i = start + 8 * u;
        let qv = _mm256_loadu_ps(q.add(i));
        for r in 0..R {
            acc[r] = _mm256_add_ps(acc[r], _mm256_mul_ps(C::unit(rows[r], i), qv));
        }
    }
    if len % 8 != 0 {
        // Ragged tail (head_dim not a multiple of 8): lanes 0.. in order.
        for r in 0..R {
            let mut lanes = [0f32; 8];
            _mm256_storeu_ps(lanes.as_mut_ptr(), acc[r]);
            for j in units * 8..len {
                lanes[j - units * 8] += C::one(rows[r], start + j) * *q.add(start + j);
            }
            acc[r] = _mm256_loadu_ps(lanes.as_ptr());
        }
    }
}

/// The reference's eight lanes of `R` rows' dot products with `q`.
///
/// # Safety
/// As [`accumulate`]; `qsum` holds the Q4 query sums of every group.
#[inline(always)]
unsafe fn row_lanes<C: Codes, const R: usize>(
    l: &KvShape,
    rows: &[*const u8; R],
    q: *const f32,
    qsum: &[[f32; LANES]; MAX_GROUPS],
) -> [__m256; R] {
    let mut lanes = [_mm256_setzero_ps(); R];
    if C::PARAMS == 0 {
        accumulate::<C, R>(rows, q, 0, l.head_dim, &mut lanes);
        return lanes;
    }
    for (g, qs) in qsum.iter().enumerate().take(l.groups) {
        let mut acc = [_mm256_setzero_ps(); R];
        accumulate::<C, R>(rows, q, g * l.group, l.group, &mut acc);
        let qs = _mm256_loadu_ps(qs.as_ptr());
        for r in 0..R {
            let (scale, min) = group_params::<C>(rows[r].add(l.code_bytes), g);
            let scaled = _mm256_mul_ps(scale, acc[r]);
            let term = if C::PARAMS == 2 { _mm256_add_ps(scaled, _mm256_mul_ps(min, qs)) } else { scaled };
            lanes[r] = _mm256_add_ps(lanes[r], term);
        }
    }
    lanes
}

/// `((a0 + a4) + (a2 + a6)) + ((a1 + a5) + (a3 + a7))` of one row.
#[inline(always)]
unsafe fn reduce1(a: __m256) -> f32 {
    let s = _mm_add_ps(_mm256_castps256_ps128(a), _mm256_extractf128_ps(a, 1));
    let t = _mm_add_ps(s, _mm_movehl_ps(s, s));
    _mm_cvtss_f32(_mm_add_ss(t, _mm_movehdup_ps(t)))
}

/// [`reduce1`] of four rows at once, as `[r0, r1, r2, r3]`.
#[inline(always)]
unsafe fn reduce4(a: &[__m256; 4]) -> __m128 {
    // s_k = a_k + a_{k+4}: [s(r0) | s(r1)] and [s(r2) | s(r3)].
    let s01 =
        _mm256_add_ps(_mm256_permute2f128_ps(a[0], a[1], 0x20), _mm256_permute2f128_ps(a[0], a[1], 0x31));
    let s23 =
        _mm256_add_ps(_mm256_permute2f128_ps(a[2], a[3], 0x20), _mm256_permute2f128_ps(a[2], a[3], 0x31));
    // t = s0 + s2, s1 + s3: [t0 t1 (r0), t0 t1 (r2) | t0 t1 (r1), t0 t1 (r3)].
    let t =
        _mm256_add_ps(_mm256_shuffle_ps(s01, s23, 0b01_00_01_00), _mm256_shuffle_ps(s01, s23, 0b11_10_11_10));
    // t0 + t1: [r0 r2 r0 r2 | r1 r3 r1 r3].
    let r = _mm256_add_ps(_mm256_shuffle_ps(t, t, 0b10_00_10_00), _mm256_shuffle_ps(t, t, 0b11_01_11_01));
    _mm_unpacklo_ps(_mm256_castps256_ps128(r), _mm256_extractf128_ps(r, 1))
}

/// Scores of rows `0..scores.len()`: four at a time, then one at a time.
///
/// # Safety
/// AVX2 and F16C present; rows `0..scores.len()` at `base + j * stride`
/// are whole rows; `q` has `head_dim` values.
#[target_feature(enable = "avx2,f16c")]
unsafe fn scores_rows<C: Codes>(
    l: &KvShape,
    base: *const u8,
    q: &[f32],
    qsum: &[[f32; LANES]; MAX_GROUPS],
    scores: &mut [f32],
) {
    let q = q.as_ptr();
    let mut blocks = scores.chunks_exact_mut(4);
    let mut j = 0;
    for out in &mut blocks {
        let rows = [0, 1, 2, 3].map(|r| base.add((j + r) * l.stride));
        let lanes = row_lanes::<C, 4>(l, &rows, q, qsum);
        // `out` holds exactly 4 floats.
        _mm_storeu_ps(out.as_mut_ptr(), reduce4(&lanes));
        j += 4;
    }
    for out in blocks.into_remainder() {
        let lanes = row_lanes::<C, 1>(l, &[base.add(j * l.stride)], q, qsum);
        *out = reduce1(lanes[0]);
        j += 1;
    }
}

/// `out = Σ_j weights[j] row_j`: passes of 8, 4, 2 and 1 units of output
/// in registers, then the ragged tail column by column.
///
/// # Safety
/// AVX2, FMA and F16C present; rows `0..weights.len()` at `base + j * stride`
/// are whole rows; `out` has `head_dim` values.
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn mix_rows<C: Codes>(l: &KvShape, base: *const u8, weights: &[f32], out: &mut [f32]) {
    let units = l.head_dim / 8;
    let mut u0 = 0;
    while units - u0 >= 8 {
        mix_pass::<C, 8>(l, base, weights, out, u0);
        u0 += 8;
    }
    for width in [4, 2, 1] {
        if units - u0 >= width {
            match width {
                4 => mix_pass::<C, 4>(l, base, weights, out, u0),
                2 => mix_pass::<C, 2>(l, base, weights, out, u0),
                _ => mix_pass::<C, 1>(l, base, weights, out, u0),
            }
            u0 += width;
        }
    }
    for (i, o) in out.iter_mut().enumerate().skip(units * 8) {
        let g = i / l.group;
        let mut acc = 0f32;
        for (j, &w) in weights.iter().enumerate() {
            let row = base.add(j * l.stride);
            let (scale, min) = group_params_scalar::<C>(row.add(l.code_bytes), g);
            let c = C::one(row, i);
            let v = match C::PARAMS {
                0 => c,
                1 => scale * c,
                _ => scale * c + min,
            };
            acc += w * v;
        }
        *o = acc;
    }
}

/// Output values `8 u0 .. 8 (u0 + U)` over every row. With groups of 32,
/// passes start at a multiple of 32 values (units come in fours and passes
/// of 8 go first), so units `0..4` use one group and `4..8` the next;
/// otherwise the row is a single group.
///
/// # Safety
/// As [`mix_rows`], with `u0 + U <= head_dim / 8`.
#[inline(always)]
unsafe fn mix_pass<C: Codes, const U: usize>(
    l: &KvShape,
    base: *const u8,
    weights: &[f32],
    out: &mut [f32],
    u0: usize,
) {
    let c0 = 8 * u0;
    let (g0, two_groups) = if l.group == 32 { (c0 / 32, U > 4) } else { (0, false) };
    debug_assert!(l.group != 32 || c0 % 32 == 0);
    let mut acc = [_mm256_setzero_ps(); U];
    for (j, &w) in weights.iter().enumerate() {
        let row = base.add(j * l.stride);
        let p = _mm256_set1_ps(w);
        let zero = _mm256_setzero_ps();
        let ((s0, m0), (s1, m1)) = match C::PARAMS {
            0 => ((zero, zero), (zero, zero)),
            _ => {
                let first = group_params::<C>(row.add(l.code_bytes), g0);
                (first, if two_groups { group_params::<C>(row.add(l.code_bytes), g0 + 1) } else { first })
            }
        };
        for (u, a) in acc.iter_mut().enumerate() {
            let x = C::unit(row, c0 + 8 * u);
            let (scale, min) = if u < 4 { (s0, m0) } else { (s1, m1) };
            let v = match C::PARAMS {
                0 => x,
                1 => _mm256_mul_ps(scale, x),
                // `scale * c + min` fused, yet equal to the reference's
                // separate multiply and add: the product of an f16 scale
                // (11 significant bits, at least 2^-24 in magnitude) and a
                // code 0..=15 (4 bits) is exact in f32, so only the add
                // rounds, once, either way.
                _ => _mm256_fmadd_ps(scale, x, min),
            };
            *a = _mm256_add_ps(*a, _mm256_mul_ps(p, v));
        }
    }
    for (u, a) in acc.iter().enumerate() {
        // `out` has head_dim >= 8 (u0 + U) values.
        _mm256_storeu_ps(out.as_mut_ptr().add(c0 + 8 * u), *a);
    }
}
