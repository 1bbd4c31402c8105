//! Quantized storage of recurrent state between steps: the scalar
//! reference for the 8-bit and 4-bit state codes.
//!
//! A state group is up to a few dozen consecutive f32 values (a piece of
//! one row of an SSM state or a head matrix). It is stored as one f32
//! `scale` and one signed code per value, symmetric around zero:
//!
//! - `scale = max|v| / Q` with `Q = 127` (8-bit) or `Q = 7` (4-bit);
//! - `code = round_half_away(v / scale)`, clamped to `-Q ..= Q`;
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

use crate::block::round_half_away;

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
pub fn requantize_state_group(bits: StateBits, values: &mut [f32], codes: &mut [u8]) -> f32 {
    let q = bits.max_code() as f32;
    let amax = values.iter().fold(0f32, |m, v| m.max(v.abs()));
    let scale = amax / q;
    let inv = if scale > 0.0 { 1.0 / scale } else { 0.0 };
    let code = |v: f32| round_half_away(v * inv).clamp(-q, q) as i8;
    match bits {
        StateBits::Eight => {
            for (v, c) in values.iter_mut().zip(codes.iter_mut()) {
                let k = code(*v);
                *c = k as u8;
                *v = k as f32 * scale;
            }
        }
        StateBits::Four => {
            for (pair, c) in values.chunks_mut(2).zip(codes.iter_mut()) {
                let mut byte = 0u8;
                for (half, v) in pair.iter_mut().enumerate() {
                    let k = code(*v);
                    byte |= ((k as u8) & 0x0f) << (4 * half);
                    *v = k as f32 * scale;
                }
                *c = byte;
            }
        }
    }
    scale
}

/// Decode a group written by [`requantize_state_group`] into `out` (its
/// length is the group's length; `codes` must hold that many codes).
pub fn dequantize_state_group(bits: StateBits, codes: &[u8], scale: f32, out: &mut [f32]) {
    match bits {
        StateBits::Eight => {
            for (o, &c) in out.iter_mut().zip(codes) {
                *o = (c as i8) as f32 * scale;
            }
        }
        StateBits::Four => {
            for (pair, &c) in out.chunks_mut(2).zip(codes) {
                for (half, o) in pair.iter_mut().enumerate() {
                    // Sign-extend the nibble: shift it to the top, then back.
                    let k = (((c >> (4 * half)) << 4) as i8) >> 4;
                    *o = k as f32 * scale;
                }
            }
        }
    }
}
