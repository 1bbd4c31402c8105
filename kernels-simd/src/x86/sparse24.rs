//! 2:4 sparse integer weights × int8 activations on AVX2 (the layout and
//! reference: `eddy_quant::Sparse24`). Per unit of 32 columns (16 kept
//! weights, 4 bytes of positions): the kept columns' activations are
//! gathered with two `pshufb`s whose controls come from a 256-entry table
//! of position bytes, the 16 kept codes are unpacked to bytes in kept
//! order, and `pmaddubsw`/`pmaddwd` give the exact i32 sums of code ×
//! activation and of the gathered activations. The group's f32 step is
//! the reference's expression, so results are bit-exact.

use crate::{ActsI8, SparseMatrix};
use core::arch::x86_64::*;

/// For a position byte (blocks `2i`, `2i + 1`: low nibble, high nibble;
/// each nibble's low two bits the first kept position, high two the
/// second), the four byte indices of the kept activations within the
/// eight activations of those two blocks.
const GATHER: [u32; 256] = {
    let mut t = [0u32; 256];
    let mut m = 0;
    while m < 256 {
        let (lo, hi) = (m & 0xf, m >> 4);
        let idx = [lo & 3, lo >> 2, 4 + (hi & 3), 4 + (hi >> 2)];
        t[m] = u32::from_le_bytes([idx[0] as u8, idx[1] as u8, idx[2] as u8, idx[3] as u8]);
        m += 1;
    }
    t
};

/// See [`crate::MatvecSparse24I8`]. Shapes the unit loop does not cover
/// (groups not a multiple of 32, short buffers) go to the reference.
pub fn matvec_sparse24_i8(w: SparseMatrix<'_>, acts: &ActsI8<'_>, out: &mut [f32]) {
    let f = w.format;
    let (group, bits, group_bytes) = (f.group_size(), f.code_bits(), f.group_bytes());
    let groups = w.cols / group.max(1);
    let row_bytes = groups * group_bytes;
    let ok = group % 32 == 0
        && w.cols % group == 0
        && row_bytes > 0
        && acts.q.len() >= w.cols
        && acts.scales.len() >= groups
        && row_bytes.checked_mul(out.len()).is_some_and(|n| w.bytes.len() >= n);
    if !ok || !super::avx2_available() {
        // AVX2 sets require F16C too
        crate::scalar::matvec_sparse24_i8(w, acts, out);
        return;
    }
    let shape = (group, group_bytes, row_bytes);
    // SAFETY: AVX2 and F16C are available (checked above) and the shape
    // and buffer lengths were checked against each other.
    unsafe {
        match bits {
            8 => rows::<8>(w.bytes, shape, acts, out),
            4 => rows::<4>(w.bytes, shape, acts, out),
            _ => rows::<2>(w.bytes, shape, acts, out),
        }
    }
}

/// Every row of the product: four rows at a time (one per f32 lane, so
/// their group steps overlap), then the rest one by one. Each lane
/// computes the reference's `result += s * (scale * acc + min * sum)` in
/// group order, without FMA, so lanes and single rows are bit-exact.
///
/// # Safety
/// AVX2 and F16C must be available; `bytes` holds `out.len()` rows of
/// `row_bytes`, groups of `group` (a multiple of 32) weights in
/// `group_bytes`, and the activations a whole row's values and scales.
#[target_feature(enable = "avx2,f16c")]
unsafe fn rows<const BITS: usize>(
    bytes: &[u8],
    (group, group_bytes, row_bytes): (usize, usize, usize),
    acts: &ActsI8<'_>,
    out: &mut [f32],
) {
    let code_bytes = group / 2 * BITS / 8;
    let groups = row_bytes / group_bytes;
    let lanes = |src: *const u8, g: usize| {
        let codes = src.add(4);
        group_lanes::<BITS>(codes, codes.add(code_bytes), acts.q.as_ptr().add(g * group), group)
    };
    let header =
        |src: *const u8| ((src as *const u16).read_unaligned(), (src.add(2) as *const u16).read_unaligned());
    let done = out.len() / 4 * 4;
    let mut quads = out.chunks_exact_mut(4);
    for (i, o4) in quads.by_ref().enumerate() {
        let base = bytes.as_ptr().add(4 * i * row_bytes);
        let mut result = _mm_setzero_ps();
        for g in 0..groups {
            let src = |r: usize| base.add(r * row_bytes + g * group_bytes);
            let ((a0, s0), (a1, s1)) = (lanes(src(0), g), lanes(src(1), g));
            let ((a2, s2), (a3, s3)) = (lanes(src(2), g), lanes(src(3), g));
            let sum = _mm_hadd_epi32(_mm_hadd_epi32(s0, s1), _mm_hadd_epi32(s2, s3));
            let mut acc = _mm_hadd_epi32(_mm_hadd_epi32(a0, a1), _mm_hadd_epi32(a2, a3));
            if BITS == 8 {
                acc = _mm_add_epi32(acc, _mm_slli_epi32::<7>(sum));
            }
            let h = [header(src(0)), header(src(1)), header(src(2)), header(src(3))];
            let f16s = |k: fn(&(u16, u16)) -> u16| {
                _mm_cvtph_ps(_mm_setr_epi16(
                    k(&h[0]) as i16,
                    k(&h[1]) as i16,
                    k(&h[2]) as i16,
                    k(&h[3]) as i16,
                    0,
                    0,
                    0,
                    0,
                ))
            };
            let (scale, min) = (f16s(|p| p.0), f16s(|p| p.1));
            let step =
                _mm_add_ps(_mm_mul_ps(scale, _mm_cvtepi32_ps(acc)), _mm_mul_ps(min, _mm_cvtepi32_ps(sum)));
            result = _mm_add_ps(result, _mm_mul_ps(_mm_set1_ps(*acts.scales.get_unchecked(g)), step));
        }
        _mm_storeu_ps(o4.as_mut_ptr(), result);
    }
    for (r, o) in quads.into_remainder().iter_mut().enumerate() {
        let row = bytes.as_ptr().add((done + r) * row_bytes);
        let mut result = 0f32;
        for g in 0..groups {
            let src = row.add(g * group_bytes);
            let (scale, min) = eddy_quant::group_header(core::slice::from_raw_parts(src, 4));
            let (a, s) = lanes(src, g);
            let sum = total(s);
            let acc = if BITS == 8 { total(a) + 128 * sum } else { total(a) };
            result += *acts.scales.get_unchecked(g) * (scale * acc as f32 + min * sum as f32);
        }
        *o = result;
    }
}

/// The four i32 lanes of `v` added (exact).
#[inline(always)]
unsafe fn total(v: __m128i) -> i32 {
    let v = _mm_add_epi32(v, _mm_shuffle_epi32::<0b01_00_11_10>(v));
    _mm_cvtsi128_si32(_mm_add_epi32(v, _mm_shuffle_epi32::<0b10_11_00_01>(v)))
}

/// `Σ code_k · x[p_k]` (for W8 of `code_k - 128`: add `128 Σ` after the
/// lanes are added) and `Σ x[p_k]` over one group, as four i32 lanes each
/// whose totals are exact (|Σ| <= 256 · 255 · 127).
///
/// # Safety
/// AVX2 must be available (the caller is an AVX2 function); `codes` holds
/// the group's kept codes, `meta` `group / 8` position bytes, `xq` `group`
/// activations, and `group` is a multiple of 32.
#[inline(always)]
unsafe fn group_lanes<const BITS: usize>(
    codes: *const u8,
    meta: *const u8,
    xq: *const i8,
    group: usize,
) -> (__m128i, __m128i) {
    let (mut acc, mut sum) = (_mm_setzero_si128(), _mm_setzero_si128());
    let ones8 = _mm_set1_epi8(1);
    let ones16 = _mm_set1_epi16(1);
    for u in 0..group / 32 {
        let x = xq.add(32 * u);
        let m = meta.add(4 * u);
        let gathered = _mm_unpacklo_epi64(gather16(x, m), gather16(x.add(16), m.add(2)));
        sum = _mm_add_epi32(sum, _mm_madd_epi16(_mm_maddubs_epi16(ones8, gathered), ones16));
        let products = match BITS {
            8 => {
                // Codes as c - 128 (i8): |w| × x·sign(w) cannot saturate
                // (pairs <= 2·128·127); the 128 Σx is added back by the caller.
                let c = _mm_loadu_si128(codes.add(16 * u) as *const __m128i);
                let w = _mm_xor_si128(c, _mm_set1_epi8(-128));
                _mm_maddubs_epi16(_mm_abs_epi8(w), _mm_sign_epi8(gathered, w))
            }
            4 => _mm_maddubs_epi16(unpack_w4(codes.add(8 * u)), gathered),
            _ => _mm_maddubs_epi16(unpack_w2(codes.add(4 * u)), gathered),
        };
        acc = _mm_add_epi32(acc, _mm_madd_epi16(products, ones16));
    }
    (acc, sum)
}

/// The 8 kept activations of 16 (4 blocks), in kept order, in the low 8
/// bytes (the high 8 are zero).
///
/// # Safety
/// `x` has 16 readable bytes and `m` 2.
#[inline(always)]
unsafe fn gather16(x: *const i8, m: *const u8) -> __m128i {
    let lo = GATHER[*m as usize] as i64;
    let hi = (GATHER[*m.add(1) as usize] + 0x0808_0808) as i64;
    // Control bytes 8..16 are 0x80: those output bytes are zero.
    let control = _mm_set_epi64x(-0x7f7f_7f7f_7f7f_7f80, lo | (hi << 32));
    _mm_shuffle_epi8(_mm_loadu_si128(x as *const __m128i), control)
}

/// 16 W4 codes (8 bytes, code `2k` in the low nibble of byte `k`) as bytes
/// in order.
///
/// # Safety
/// `codes` has 8 readable bytes.
#[inline(always)]
unsafe fn unpack_w4(codes: *const u8) -> __m128i {
    let c = _mm_loadl_epi64(codes as *const __m128i);
    let mask = _mm_set1_epi8(0x0f);
    _mm_unpacklo_epi8(_mm_and_si128(c, mask), _mm_and_si128(_mm_srli_epi16::<4>(c), mask))
}

/// 16 W2 codes (4 bytes, code `4j + k` in bits `2k` of byte `j`) as bytes
/// in order.
///
/// # Safety
/// `codes` has 4 readable bytes.
#[inline(always)]
unsafe fn unpack_w2(codes: *const u8) -> __m128i {
    let c = _mm_cvtsi32_si128((codes as *const i32).read_unaligned());
    let mask = _mm_set1_epi8(3);
    let part = |v: __m128i| _mm_and_si128(v, mask);
    let (k0, k1) = (part(c), part(_mm_srli_epi16::<2>(c)));
    let (k2, k3) = (part(_mm_srli_epi16::<4>(c)), part(_mm_srli_epi16::<6>(c)));
    // [k0_j, k1_j] pairs and [k2_j, k3_j] pairs, then the pairs of pairs.
    _mm_unpacklo_epi16(_mm_unpacklo_epi8(k0, k1), _mm_unpacklo_epi8(k2, k3))
}
