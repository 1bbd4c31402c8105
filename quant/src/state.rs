//! Quantized storage of recurrent state between steps: the scalar
//! reference for the 8-bit and 4-bit state codes.
//!
//! A state group is up to a few dozen consecutive f32 values (a piece of
//! one row of an SSM state or a head matrix). It is stored as one f32
//! `scale` and one signed code per value, symmetric around zero:
//!
//! - `scale = max|v| / Q` with `Q = 127` (8-bit) or `Q = 7` (4-bit);
//! - `code` = `v * (1 / scale)` rounded to the nearest integer (ties to
//!   even), clamped to `-Q ..= Q`;
//! - the stored value is `code * scale`.
//!
//! The scale is a full f32 on purpose. Recurrent states decay by a factor
//! `a` just below 1 per token in their slow channels; with an f32 scale a
//! coded group decays by exactly that factor (`scale` scales, codes stay),
//! while a 16-bit scale rounds `a * scale` back to `scale` whenever `a` is
//! within its precision of 1, so the slowest channels stop decaying
//! (bfloat16 scales rounded up cost the trained Mamba-1 model +27% test
//! perplexity at 4 bits; BENCHMARKS.md, "State storage").
//!
//! Symmetric codes keep an exact zero (a fresh state is all zero bytes,
//! which decodes to `+0.0`) and need no offset. Codes are two's
//! complement: 8-bit one byte each; 4-bit two per byte, value `2k` in the
//! low nibble of byte `k`. A group of `len` values takes
//! [`StateBits::code_bytes`]`(len)` bytes.
//!
//! [`requantize_state_group`] codes a group and, in the same pass,
//! replaces each value by exactly what [`dequantize_state_group`] will
//! return for it, so a caller that keeps working on the values sees the
//! same numbers as one that decodes the stored codes later.

/// 1.5 * 2^23: adding it to a small float rounds it to an integer.
const ROUND_MAGIC: f32 = 12_582_912.0;
/// The bits of [`ROUND_MAGIC`]: subtracting them leaves the integer.
const ROUND_MAGIC_BITS: i32 = 0x4B40_0000;

/// Bits of one stored state value.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum StateBits {
    /// 8-bit codes, `-127 ..= 127`.
    Eight,
    /// 4-bit codes, `-7 ..= 7`.
    Four,
}

impl StateBits {
    /// Bits per code.
    pub fn bits(self) -> u32 {
        match self {
            StateBits::Eight => 8,
            StateBits::Four => 4,
        }
    }

    /// Largest code magnitude `Q`.
    pub fn max_code(self) -> i32 {
        match self {
            StateBits::Eight => 127,
            StateBits::Four => 7,
        }
    }

    /// Bytes of codes for a group of `len` values.
    pub fn code_bytes(self, len: usize) -> usize {
        match self {
            StateBits::Eight => len,
            StateBits::Four => len.div_ceil(2),
        }
    }
}

/// Code `values` as one group: write the codes to `codes` (at least
/// [`StateBits::code_bytes`]`(values.len())` bytes; extra bytes are left
/// alone), replace every value by its decoded value, and return the group
/// scale. NaN codes as 0; an infinite value makes the scale infinite (the
/// group then decodes to NaN, as poisoned as the f32 state would be).
/// Never panics on values; panics only if `codes` is too short.
#[inline]
pub fn requantize_state_group(bits: StateBits, values: &mut [f32], codes: &mut [u8]) -> f32 {
    let q = bits.max_code();
    let amax = values.iter().fold(0f32, |m, v| m.max(v.abs()));
    let scale = amax / q as f32;
    let inv = if scale > 0.0 { 1.0 / scale } else { 0.0 };
    let code = |v: f32| {
        let x = v * inv;
        // Adding 1.5 * 2^23 rounds |x| < 2^22 to the nearest integer (ties
        // to even) in the low mantissa bits, read back as an integer: no
        // float-to-int conversion, so the loop vectorizes (4x faster than
        // rounding and converting). |x| <= Q here except for NaN (-> 0).
        let k = ((x + ROUND_MAGIC).to_bits() as i32 - ROUND_MAGIC_BITS).clamp(-q, q);
        if x.is_nan() {
            0
        } else {
            k
        }
    };
    match bits {
        StateBits::Eight => {
            for (v, c) in values.iter_mut().zip(codes.iter_mut()) {
                let k = code(*v);
                *c = k as u8;
                *v = k as f32 * scale;
            }
        }
        StateBits::Four => {
            let mut pairs = values.chunks_exact_mut(2);
            let mut bytes = codes.iter_mut();
            for (pair, c) in (&mut pairs).zip(&mut bytes) {
                let (k0, k1) = (code(pair[0]), code(pair[1]));
                *c = ((k0 & 0x0f) | ((k1 & 0x0f) << 4)) as u8;
                pair[0] = k0 as f32 * scale;
                pair[1] = k1 as f32 * scale;
            }
            if let ([last], Some(c)) = (pairs.into_remainder(), bytes.next()) {
                let k = code(*last);
                *c = (k & 0x0f) as u8;
                *last = k as f32 * scale;
            }
        }
    }
    scale
}

/// Decode a group written by [`requantize_state_group`] into `out` (its
/// length is the group's length; `codes` must hold that many codes).
#[inline]
pub fn dequantize_state_group(bits: StateBits, codes: &[u8], scale: f32, out: &mut [f32]) {
    // Sign-extend a nibble: move it to the top of a byte, shift back.
    let low = |c: u8| ((c << 4) as i8 >> 4) as f32;
    let high = |c: u8| ((c as i8) >> 4) as f32;
    match bits {
        StateBits::Eight => {
            for (o, &c) in out.iter_mut().zip(codes) {
                *o = (c as i8) as f32 * scale;
            }
        }
        StateBits::Four => {
            let last_code = codes.get(out.len() / 2).copied();
            let mut pairs = out.chunks_exact_mut(2);
            for (pair, &c) in (&mut pairs).zip(codes) {
                pair[0] = low(c) * scale;
                pair[1] = high(c) * scale;
            }
            if let ([last], Some(c)) = (pairs.into_remainder(), last_code) {
                *last = low(c) * scale;
            }
        }
    }
}
