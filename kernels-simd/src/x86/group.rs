//! How each integer weight format's codes are unpacked to bytes and
//! multiplied with int8 activations by the AVX2 kernels ([`super::matvec`]):
//! one [`Codes`] type per format and group size, so the per-group loops
//! are fully unrolled and every vector stays in a register.

use core::arch::x86_64::*;

/// Most 32-code blocks in a group (groups of up to 256 weights).
pub(super) const MAX_BLOCKS: usize = 8;

/// One format's codes of one group, unpacked: up to [`MAX_BLOCKS`] vectors
/// of 32 bytes, vector `b` lined up with permuted activations `32 b..32 b +
/// 32` of the group.
pub(super) type Unpacked = [__m256i; MAX_BLOCKS];

/// How the codes of one format and group size are unpacked and multiplied.
pub(super) trait Codes {
    /// Weights per group.
    const GROUP: usize;
    /// What [`Codes::dot`] lacks of Σ code·act, per unit of the group's
    /// activation sum (W8 multiplies `code - 128`).
    const SUM_BIAS: i32;
    /// 32-code blocks per group.
    const BLOCKS: usize = Self::GROUP / 32;
    /// How many `vpmaddubsw` results of unpacked codes times activations
    /// may add up in i16 lanes before they must widen: a W2 pair sum is at
    /// most 2·3·127 = 762 (32 of them: 24384), a W4 one 2·15·127 = 3810
    /// (8: 30480), both below 32767; a W8 one (|w| times act·sign(w)) up
    /// to 32512, so every one widens (the default).
    const I16_SUMS: usize = 1;

    /// Unpack one group's codes (`GROUP * BITS / 8` bytes at `codes`).
    unsafe fn unpack(codes: *const u8) -> Unpacked;

    /// Σ w·act over one group as eight i32 lanes; `acts` points at the
    /// group's `GROUP` permuted activations.
    unsafe fn dot(w: &Unpacked, acts: *const i8) -> __m256i;

    /// [`Codes::dot`] of [`Codes::unpack`]: the same lanes, where a format
    /// may compute them from the packed codes with fewer instructions.
    #[inline(always)]
    unsafe fn dot_packed(codes: *const u8, acts: *const i8) -> __m256i {
        // SAFETY (caller): as for `unpack` and `dot`.
        Self::dot(&Self::unpack(codes), acts)
    }
}

/// W2 codes; groups of a multiple of 128 unpack 128 codes per 32-byte
/// load, other multiples of 64 64 codes per 16-byte load.
pub(super) struct W2<const G: usize>;
/// W4 codes, 32 per 16-byte load.
pub(super) struct W4<const G: usize>;
/// W8 codes, stored `c - 128` as i8 so `vpmaddubsw` multiplies |w| by
/// act·sign(w) without saturating.
pub(super) struct W8<const G: usize>;

/// Σ over the group's blocks of `vpmaddubsw(w_b, act_b)`, accumulated in
/// i16: a W2/W4 pair sum is at most 2·15·127 = 3810 and a group has at
/// most 8 blocks, so 30480 < 32767 cannot overflow.
#[inline(always)]
unsafe fn dot_small_codes(w: &Unpacked, acts: *const i8, blocks: usize) -> __m256i {
    let mut acc16 = _mm256_setzero_si256();
    for (b, wb) in w.iter().enumerate().take(blocks) {
        // SAFETY (caller): `acts` holds the group's `32 * blocks` bytes.
        let x = _mm256_loadu_si256(acts.add(32 * b) as *const __m256i);
        acc16 = _mm256_add_epi16(acc16, _mm256_maddubs_epi16(*wb, x));
    }
    _mm256_madd_epi16(acc16, _mm256_set1_epi16(1))
}

impl<const G: usize> Codes for W2<G> {
    const GROUP: usize = G;
    const SUM_BIAS: i32 = 0;
    const I16_SUMS: usize = 32;

    #[inline(always)]
    unsafe fn unpack(codes: *const u8) -> Unpacked {
        let mut w = [_mm256_setzero_si256(); MAX_BLOCKS];
        let mask = _mm256_set1_epi8(3);
        if G % 128 == 0 {
            // Byte j of a 128-code unit holds codes 4j..4j + 4 (code 4j + k
            // in bits 2k): block 4u + k is byte j's bits 2k, 2k + 1, i.e.
            // lane j holds code 4j + k. (16-bit shifts: the mask drops the
            // bits shifted in from the neighbouring byte.)
            for u in 0..G / 128 {
                // SAFETY (caller): the group's `G / 4` code bytes are readable.
                let c = _mm256_loadu_si256(codes.add(32 * u) as *const __m256i);
                w[4 * u] = _mm256_and_si256(c, mask);
                w[4 * u + 1] = _mm256_and_si256(_mm256_srli_epi16::<2>(c), mask);
                w[4 * u + 2] = _mm256_and_si256(_mm256_srli_epi16::<4>(c), mask);
                w[4 * u + 3] = _mm256_and_si256(_mm256_srli_epi16::<6>(c), mask);
            }
        } else if G % 64 == 0 {
            // 16 bytes in both halves; halves shifted by (0, 2) and (4, 6):
            // lane i of block 2u is code 4i (i < 16) or 4(i-16)+1, of block
            // 2u+1 code 4i+2 or 4(i-16)+3, within the 64-code unit u.
            let (lo, hi) = (_mm256_setr_epi64x(0, 0, 2, 2), _mm256_setr_epi64x(4, 4, 6, 6));
            for u in 0..G / 64 {
                // SAFETY (caller): the group's `G / 4` code bytes are readable.
                let c = _mm256_broadcastsi128_si256(_mm_loadu_si128(codes.add(16 * u) as *const __m128i));
                w[2 * u] = _mm256_and_si256(_mm256_srlv_epi64(c, lo), mask);
                w[2 * u + 1] = _mm256_and_si256(_mm256_srlv_epi64(c, hi), mask);
            }
        } else {
            // 8 bytes in every 64-bit lane, lane k shifted by 2k: byte
            // 8k + j holds code 4j + k.
            let shifts = _mm256_setr_epi64x(0, 2, 4, 6);
            for (b, wb) in w.iter_mut().enumerate().take(G / 32) {
                // SAFETY (caller): as above.
                let v = (codes.add(8 * b) as *const i64).read_unaligned();
                *wb = _mm256_and_si256(_mm256_srlv_epi64(_mm256_set1_epi64x(v), shifts), mask);
            }
        }
        w
    }

    #[inline(always)]
    unsafe fn dot(w: &Unpacked, acts: *const i8) -> __m256i {
        dot_small_codes(w, acts, Self::BLOCKS)
    }

    #[inline(always)]
    unsafe fn dot_packed(codes: *const u8, acts: *const i8) -> __m256i {
        if G % 128 != 0 {
            // SAFETY (caller): as for `unpack` and `dot`.
            return Self::dot(&Self::unpack(codes), acts);
        }
        // Codes 4j and 4j + 2 (bits 0-1 of byte j and of byte j >> 4)
        // multiply as they are; codes 4j + 1 and 4j + 3 (bits 2-3) as
        // four times themselves, which saves two shifts per unit. A
        // pair sum is at most 2·3·127 = 762, four times that 3048; two
        // of each (1524, 6096) and then the group's units (G <= 256:
        // 2 · (1524 + 1524) = 6096) stay in i16, and the `4 c` sums are
        // exact multiples of 4, so `>> 2` is exact.
        let (low2, high2) = (_mm256_set1_epi8(0x03), _mm256_set1_epi8(0x0c));
        let mut acc16 = _mm256_setzero_si256();
        for u in 0..G / 128 {
            // SAFETY (caller): the group's `G / 4` code bytes and `G`
            // activations are readable.
            let c = _mm256_loadu_si256(codes.add(32 * u) as *const __m256i);
            let h = _mm256_srli_epi16::<4>(c);
            let x = |k: usize| _mm256_loadu_si256(acts.add(128 * u + 32 * k) as *const __m256i);
            let ones = _mm256_add_epi16(
                _mm256_maddubs_epi16(_mm256_and_si256(c, low2), x(0)),
                _mm256_maddubs_epi16(_mm256_and_si256(h, low2), x(2)),
            );
            let fours = _mm256_add_epi16(
                _mm256_maddubs_epi16(_mm256_and_si256(c, high2), x(1)),
                _mm256_maddubs_epi16(_mm256_and_si256(h, high2), x(3)),
            );
            acc16 = _mm256_add_epi16(acc16, _mm256_add_epi16(ones, _mm256_srai_epi16::<2>(fours)));
        }
        _mm256_madd_epi16(acc16, _mm256_set1_epi16(1))
    }
}

impl<const G: usize> Codes for W4<G> {
    const GROUP: usize = G;
    const SUM_BIAS: i32 = 0;
    const I16_SUMS: usize = 8;

    #[inline(always)]
    unsafe fn unpack(codes: *const u8) -> Unpacked {
        let mut w = [_mm256_setzero_si256(); MAX_BLOCKS];
        // Low nibbles of the 16 bytes in lanes 0..16 (codes 2k), high
        // nibbles in lanes 16..32 (codes 2k + 1).
        let (shifts, mask) = (_mm256_setr_epi64x(0, 0, 4, 4), _mm256_set1_epi8(0x0f));
        for (b, wb) in w.iter_mut().enumerate().take(G / 32) {
            // SAFETY (caller): the group's `G / 2` code bytes are readable.
            let c = _mm256_broadcastsi128_si256(_mm_loadu_si128(codes.add(16 * b) as *const __m128i));
            *wb = _mm256_and_si256(_mm256_srlv_epi64(c, shifts), mask);
        }
        w
    }

    #[inline(always)]
    unsafe fn dot(w: &Unpacked, acts: *const i8) -> __m256i {
        dot_small_codes(w, acts, Self::BLOCKS)
    }
}

impl<const G: usize> Codes for W8<G> {
    const GROUP: usize = G;
    // Σ c·x = Σ (c - 128)·x + 128 Σ x.
    const SUM_BIAS: i32 = 128;

    #[inline(always)]
    unsafe fn unpack(codes: *const u8) -> Unpacked {
        let mut w = [_mm256_setzero_si256(); MAX_BLOCKS];
        let bias = _mm256_set1_epi8(-128);
        for (b, wb) in w.iter_mut().enumerate().take(G / 32) {
            // SAFETY (caller): the group's `G` code bytes are readable.
            *wb = _mm256_xor_si256(_mm256_loadu_si256(codes.add(32 * b) as *const __m256i), bias);
        }
        w
    }

    #[inline(always)]
    unsafe fn dot(w: &Unpacked, acts: *const i8) -> __m256i {
        // |w| <= 128 and |x| <= 127 keep pair sums <= 32512: no saturation;
        // each block's pairs widen to i32 before the next is added.
        let ones = _mm256_set1_epi16(1);
        let mut acc = _mm256_setzero_si256();
        for (b, wb) in w.iter().enumerate().take(Self::BLOCKS) {
            // SAFETY (caller): `acts` holds the group's `G` bytes.
            let x = _mm256_loadu_si256(acts.add(32 * b) as *const __m256i);
            let prod = _mm256_maddubs_epi16(_mm256_abs_epi8(*wb), _mm256_sign_epi8(x, *wb));
            acc = _mm256_add_epi32(acc, _mm256_madd_epi16(prod, ones));
        }
        acc
    }
}
