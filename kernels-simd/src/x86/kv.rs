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
//! one FMA (exact here, see `scale_add`). The loops are the shared ones of
//! `kv_pass.rs`.

use crate::kv_pass::{self, KvCodes, KvIsa, KvLanes, KvShape, Query};
use crate::KvRows;
use core::arch::x86_64::*;
use eddy_quant::KvFormat;

/// See [`crate::KvScores`]; bit-exact with [`crate::scalar::kv_scores`].
pub fn kv_scores(rows: KvRows<'_>, q: &[f32], scores: &mut [f32]) {
    kv_pass::kv_scores::<Avx2>(rows, q, scores)
}

/// See [`crate::KvMix`]; bit-exact with [`crate::scalar::kv_mix`].
pub fn kv_mix(rows: KvRows<'_>, weights: &[f32], out: &mut [f32]) {
    kv_pass::kv_mix::<Avx2>(rows, weights, out)
}

/// The AVX2 attention kernels (AVX2, FMA and F16C).
struct Avx2;

impl KvIsa for Avx2 {
    fn available() -> bool {
        super::avx2_available()
    }
    unsafe fn scores_rows<C: KvCodes>(s: &KvShape, query: &Query<'_>, scores: &mut [f32]) {
        scores_rows::<C>(s, query, scores)
    }
    unsafe fn mix_rows<C: KvCodes>(s: &KvShape, weights: &[f32], out: &mut [f32]) {
        mix_rows::<C>(s, weights, out)
    }
}

/// [`kv_pass::scores_rows`] compiled with AVX2 and F16C.
#[target_feature(enable = "avx2,f16c")]
unsafe fn scores_rows<C: KvCodes>(s: &KvShape, query: &Query<'_>, scores: &mut [f32]) {
    kv_pass::scores_rows::<__m256, C>(s, query, scores)
}

/// [`kv_pass::mix_rows`] compiled with AVX2, FMA and F16C.
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn mix_rows<C: KvCodes>(s: &KvShape, weights: &[f32], out: &mut [f32]) {
    kv_pass::mix_rows::<__m256, C>(s, weights, out)
}

// Loads read what the callers' contract says lies inside a row or slice;
// the rest is register arithmetic.
impl KvLanes for __m256 {
    #[inline(always)]
    unsafe fn zero() -> Self {
        _mm256_setzero_ps()
    }
    #[inline(always)]
    unsafe fn splat(x: f32) -> Self {
        _mm256_set1_ps(x)
    }
    #[inline(always)]
    unsafe fn load(p: *const f32) -> Self {
        _mm256_loadu_ps(p)
    }
    #[inline(always)]
    unsafe fn store(self, p: *mut f32) {
        _mm256_storeu_ps(p, self)
    }
    #[inline(always)]
    unsafe fn add(self, b: Self) -> Self {
        _mm256_add_ps(self, b)
    }
    #[inline(always)]
    unsafe fn mul(self, b: Self) -> Self {
        _mm256_mul_ps(self, b)
    }
    #[inline(always)]
    unsafe fn scale_add(scale: Self, x: Self, min: Self) -> Self {
        // `scale * c + min` fused, yet equal to the reference's separate
        // multiply and add: the product of an f16 scale (11 significant
        // bits, at least 2^-24 in magnitude) and a code 0..=15 (4 bits) is
        // exact in f32, so only the add rounds, once, either way.
        _mm256_fmadd_ps(scale, x, min)
    }
    #[inline(always)]
    unsafe fn unit<C: KvCodes>(row: *const u8, i: usize) -> Self {
        match C::FORMAT {
            KvFormat::F32 => _mm256_loadu_ps(row.add(4 * i) as *const f32),
            KvFormat::F16 => _mm256_cvtph_ps(_mm_loadu_si128(row.add(2 * i) as *const __m128i)),
            KvFormat::Q8 => {
                _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_loadl_epi64(row.add(i) as *const __m128i)))
            }
            KvFormat::Q4 => {
                // Value 2k is the low nibble of byte k: lane l = bits
                // 4l..4l+4 of the four little-endian bytes.
                let bytes = (row.add(i / 2) as *const u32).read_unaligned();
                let shifted = _mm256_srlv_epi32(
                    _mm256_set1_epi32(bytes as i32),
                    _mm256_setr_epi32(0, 4, 8, 12, 16, 20, 24, 28),
                );
                _mm256_cvtepi32_ps(_mm256_and_si256(shifted, _mm256_set1_epi32(0x0f)))
            }
        }
    }
    #[inline(always)]
    unsafe fn group_params<C: KvCodes>(params: *const u8, g: usize) -> (Self, Self) {
        let bits = if C::PARAMS == 2 {
            (params.add(4 * g) as *const u32).read_unaligned()
        } else {
            (params.add(2 * g) as *const u16).read_unaligned() as u32
        };
        let v = _mm_cvtph_ps(_mm_cvtsi32_si128(bits as i32));
        (_mm256_broadcastss_ps(v), _mm256_broadcastss_ps(_mm_movehdup_ps(v)))
    }
    #[inline(always)]
    unsafe fn reduce(self) -> f32 {
        reduce1(self)
    }
    #[inline(always)]
    unsafe fn reduce4(a: &[Self; 4], out: *mut f32) {
        _mm_storeu_ps(out, reduce4(a))
    }
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
