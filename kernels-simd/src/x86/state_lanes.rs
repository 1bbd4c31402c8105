//! AVX2's eight-lane f32 vector for the linear-attention state updates
//! (`crate::linear_attention_pass`): the attention kernels' vector
//! (`crate::kv_pass::KvLanes`, in `kv.rs`) with a subtraction and a
//! transpose, and for WKV an exp, a division, a negation and a max.

use super::scan::exp8_each;
use crate::linear_attention_pass::{StateLanes, LANES};
use crate::wkv_pass::WkvLanes;
use core::arch::x86_64::*;

impl StateLanes for __m256 {
    #[inline(always)]
    unsafe fn sub(self, b: Self) -> Self {
        // SAFETY: AVX is present.
        unsafe { _mm256_sub_ps(self, b) }
    }
    #[inline(always)]
    unsafe fn transpose(rows: &mut [Self; LANES]) {
        // SAFETY: AVX is present; register shuffles only.
        unsafe {
            let r = *rows;
            // Pairs of rows interleaved, then quads, then the 128-bit halves.
            let t = [
                _mm256_unpacklo_ps(r[0], r[1]),
                _mm256_unpackhi_ps(r[0], r[1]),
                _mm256_unpacklo_ps(r[2], r[3]),
                _mm256_unpackhi_ps(r[2], r[3]),
                _mm256_unpacklo_ps(r[4], r[5]),
                _mm256_unpackhi_ps(r[4], r[5]),
                _mm256_unpacklo_ps(r[6], r[7]),
                _mm256_unpackhi_ps(r[6], r[7]),
            ];
            let u = [
                _mm256_shuffle_ps::<0x44>(t[0], t[2]),
                _mm256_shuffle_ps::<0xEE>(t[0], t[2]),
                _mm256_shuffle_ps::<0x44>(t[1], t[3]),
                _mm256_shuffle_ps::<0xEE>(t[1], t[3]),
                _mm256_shuffle_ps::<0x44>(t[4], t[6]),
                _mm256_shuffle_ps::<0xEE>(t[4], t[6]),
                _mm256_shuffle_ps::<0x44>(t[5], t[7]),
                _mm256_shuffle_ps::<0xEE>(t[5], t[7]),
            ];
            for c in 0..4 {
                rows[c] = _mm256_permute2f128_ps::<0x20>(u[c], u[c + 4]);
                rows[c + 4] = _mm256_permute2f128_ps::<0x31>(u[c], u[c + 4]);
            }
        }
    }
}

impl WkvLanes for __m256 {
    #[inline(always)]
    unsafe fn exp(self) -> Self {
        // SAFETY: AVX2 is present, as the trait's callers guarantee.
        unsafe { exp8_each([self])[0] }
    }
    #[inline(always)]
    unsafe fn div(self, b: Self) -> Self {
        // SAFETY: AVX is present.
        unsafe { _mm256_div_ps(self, b) }
    }
    #[inline(always)]
    unsafe fn neg(self) -> Self {
        // SAFETY: AVX is present.
        unsafe { _mm256_xor_ps(self, _mm256_set1_ps(-0.0)) }
    }
    #[inline(always)]
    unsafe fn max_num(self, b: Self) -> Self {
        // As `f32::max` compiles on x86-64: `b > self ? b : self`, and `b`
        // where `self` is NaN.
        // SAFETY: AVX is present.
        unsafe {
            let larger = _mm256_max_ps(b, self);
            _mm256_blendv_ps(larger, b, _mm256_cmp_ps::<_CMP_UNORD_Q>(self, self))
        }
    }
}
