//! Attention cache formats (KV4, KV8, f16, f32): the scalar reference for
//! encoding one head vector of keys or values and for the two products
//! attention needs on the cache, `q · k` and `acc += p v`.
//!
//! # Row layout
//!
//! A row is one head vector of `head_dim` values, split into groups of
//! [`kv_group`]`(head_dim)` values (32, or the whole row when `head_dim` is
//! not a multiple of 32).
//!
//! | format | codes | per-group parameters | bits per value at 32 |
//! |---|---|---|---|
//! | `F32` | `head_dim` f32 LE | none | 32 |
//! | `F16` | `head_dim` f16 LE | none | 16 |
//! | `Q8` | `head_dim` i8, `v = scale * c` | f16 `scale` | 8.5 |
//! | `Q4` | `head_dim / 2` bytes, `v = scale * c + min`, `c` in 0..=15 | f16 `scale`, f16 `min` | 5 |
//!
//! Codes come first, then the parameters of every group in group order.
//! Q4 packs value `2k` in the low nibble of byte `k`. Q8 is symmetric
//! (keys and values are roughly centred); Q4 is asymmetric because with 16
//! levels the offset matters (measured in the KV tests of `eddy`).
//!
//! # Products
//!
//! `dot` keeps eight partial sums (lanes), like `eddy_quant::dot_f32`, in
//! an order that SIMD kernels reproduce exactly (so they are bit-exact):
//!
//! - `F32`/`F16`: `lanes[i % 8] += v_i * q_i` over the row in index order,
//!   exactly [`dot_f32`](crate::dot_f32) of the decoded row.
//! - `Q8`/`Q4`, per group in group order: `acc[j % 8] += c_j * q_j` (and,
//!   for Q4, `qsum[j % 8] += q_j`) over the group's offsets `j` in order,
//!   from zero; then `lanes[l] += scale * acc[l]` (Q8) or
//!   `lanes[l] += scale * acc[l] + min * qsum[l]` (Q4) for every lane.
//!
//! The result is the pairwise lane sum
//! `((l0 + l4) + (l2 + l6)) + ((l1 + l5) + (l3 + l7))`. Every operation is
//! a separate f32 multiply or add (no fused multiply-add).
//!
//! `axpy`: `acc_i += p * v_i` with `v_i` decoded as `value_at` does
//! (`scale * c` for Q8, `scale * c + min` for Q4): one element at a time,
//! so any kernel that keeps this expression per element is bit-exact.

use crate::block::round_half_away;
use crate::float::{reduce_lanes, F32_DOT_LANES};
use crate::QuantError;
use half::f16;

/// Storage format of the attention cache.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum KvFormat {
    /// f32: exact, the reference for golden tests.
    F32,
    /// f16: the usual full-precision cache of other runtimes.
    F16,
    /// 8-bit symmetric codes with an f16 scale per group.
    Q8,
    /// 4-bit codes with an f16 scale and minimum per group.
    Q4,
}

/// Values per scale group for a head of `head_dim` values.
pub const fn kv_group(head_dim: usize) -> usize {
    if head_dim % 32 == 0 {
        32
    } else {
        head_dim
    }
}

impl KvFormat {
    /// Every format, most precise first.
    pub const ALL: [KvFormat; 4] = [KvFormat::F32, KvFormat::F16, KvFormat::Q8, KvFormat::Q4];

    /// Short name (`f32`, `f16`, `q8`, `q4`) as the CLI spells it.
    pub const fn name(self) -> &'static str {
        match self {
            KvFormat::F32 => "f32",
            KvFormat::F16 => "f16",
            KvFormat::Q8 => "q8",
            KvFormat::Q4 => "q4",
        }
    }

    /// Parse a [`name`](Self::name) (also `kv4`, `kv8`, `4`, `8`, `16`, `32`).
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "f32" | "32" => Some(KvFormat::F32),
            "f16" | "16" => Some(KvFormat::F16),
            "q8" | "kv8" | "8" => Some(KvFormat::Q8),
            "q4" | "kv4" | "4" => Some(KvFormat::Q4),
            _ => None,
        }
    }

    /// Code stored in files and snapshots.
    pub const fn code(self) -> u32 {
        match self {
            KvFormat::F32 => 0,
            KvFormat::F16 => 1,
            KvFormat::Q8 => 2,
            KvFormat::Q4 => 3,
        }
    }

    /// Inverse of [`code`](Self::code).
    pub const fn from_code(code: u32) -> Option<Self> {
        match code {
            0 => Some(KvFormat::F32),
            1 => Some(KvFormat::F16),
            2 => Some(KvFormat::Q8),
            3 => Some(KvFormat::Q4),
            _ => None,
        }
    }

    /// True if this format can store rows of `head_dim` values (Q4 needs
    /// an even count; every format needs at least one value).
    pub const fn supports(self, head_dim: usize) -> bool {
        head_dim > 0 && !(matches!(self, KvFormat::Q4) && head_dim % 2 != 0)
    }

    /// Bytes of one row of `head_dim` values; `None` if unsupported or on
    /// overflow.
    pub fn row_bytes(self, head_dim: usize) -> Option<usize> {
        if !self.supports(head_dim) {
            return None;
        }
        let groups = head_dim / kv_group(head_dim);
        match self {
            KvFormat::F32 => head_dim.checked_mul(4),
            KvFormat::F16 => head_dim.checked_mul(2),
            KvFormat::Q8 => head_dim.checked_add(groups.checked_mul(2)?),
            KvFormat::Q4 => (head_dim / 2).checked_add(groups.checked_mul(4)?),
        }
    }

    /// Bytes of codes at the start of a row (the parameters follow).
    fn code_bytes(self, head_dim: usize) -> usize {
        match self {
            KvFormat::F32 => 4 * head_dim,
            KvFormat::F16 => 2 * head_dim,
            KvFormat::Q8 => head_dim,
            KvFormat::Q4 => head_dim / 2,
        }
    }
}

fn f16_at(bytes: &[u8], at: usize) -> f32 {
    f16::from_bits(u16::from_le_bytes([bytes[at], bytes[at + 1]])).to_f32()
}

fn put_f16(bytes: &mut [u8], at: usize, v: f32) -> f32 {
    let h = f16::from_f32(v);
    bytes[at..at + 2].copy_from_slice(&h.to_bits().to_le_bytes());
    h.to_f32()
}

/// Largest finite f16: scales and minimums saturate here instead of
/// becoming infinite.
const F16_MAX: f32 = 65504.0;

/// Encode `x` (one head vector) into `row` (exactly
/// [`KvFormat::row_bytes`] long). Non-finite values are stored as 0 so a
/// diverging model cannot poison the whole group; the caller sees them in
/// its own f32 activations.
pub fn encode_kv_row(format: KvFormat, x: &[f32], row: &mut [u8]) -> Result<(), QuantError> {
    if format.row_bytes(x.len()) != Some(row.len()) {
        return Err(QuantError::BadLength);
    }
    let finite = |v: f32| if v.is_finite() { v } else { 0.0 };
    let head_dim = x.len();
    let group = kv_group(head_dim);
    let (codes, params) = row.split_at_mut(format.code_bytes(head_dim));
    match format {
        KvFormat::F32 => {
            for (c, v) in codes.chunks_exact_mut(4).zip(x) {
                c.copy_from_slice(&v.to_le_bytes());
            }
        }
        KvFormat::F16 => {
            for (i, v) in x.iter().enumerate() {
                put_f16(codes, 2 * i, *v);
            }
        }
        KvFormat::Q8 => {
            for (g, xg) in x.chunks_exact(group).enumerate() {
                let amax = xg.iter().fold(0f32, |m, v| m.max(finite(*v).abs())).min(127.0 * F16_MAX);
                let scale = put_f16(params, 2 * g, amax / 127.0);
                let inv = if scale > 0.0 { 1.0 / scale } else { 0.0 };
                for (c, v) in codes[g * group..(g + 1) * group].iter_mut().zip(xg) {
                    *c = round_half_away(finite(*v) * inv).clamp(-127.0, 127.0) as i8 as u8;
                }
            }
        }
        KvFormat::Q4 => {
            for (g, xg) in x.chunks_exact(group).enumerate() {
                let lo = xg.iter().fold(f32::INFINITY, |m, v| m.min(finite(*v))).max(-F16_MAX);
                let hi = xg.iter().fold(f32::NEG_INFINITY, |m, v| m.max(finite(*v))).min(F16_MAX);
                let min = put_f16(params, 4 * g + 2, lo);
                let scale = put_f16(params, 4 * g, ((hi - min) / 15.0).min(F16_MAX));
                let inv = if scale > 0.0 { 1.0 / scale } else { 0.0 };
                let code = |v: f32| round_half_away((finite(v) - min) * inv).clamp(0.0, 15.0) as u8;
                let bytes = &mut codes[g * group / 2..(g + 1) * group / 2];
                for (b, pair) in bytes.iter_mut().zip(xg.chunks_exact(2)) {
                    *b = code(pair[0]) | (code(pair[1]) << 4);
                }
            }
        }
    }
    Ok(())
}

/// Value `i` of a row, decoded (the reference every product is defined by).
#[inline]
fn value_at(format: KvFormat, row: &[u8], head_dim: usize, i: usize) -> f32 {
    let params = &row[format.code_bytes(head_dim)..];
    let g = i / kv_group(head_dim);
    match format {
        KvFormat::F32 => f32::from_le_bytes([row[4 * i], row[4 * i + 1], row[4 * i + 2], row[4 * i + 3]]),
        KvFormat::F16 => f16_at(row, 2 * i),
        KvFormat::Q8 => f16_at(params, 2 * g) * (row[i] as i8) as f32,
        KvFormat::Q4 => {
            let c = (row[i / 2] >> (4 * (i % 2))) & 0x0f;
            f16_at(params, 4 * g) * c as f32 + f16_at(params, 4 * g + 2)
        }
    }
}

/// Decode a row of `out.len()` values.
pub fn decode_kv_row(format: KvFormat, row: &[u8], out: &mut [f32]) {
    let head_dim = out.len();
    if format.row_bytes(head_dim) != Some(row.len()) {
        out.fill(0.0);
        return;
    }
    for (i, o) in out.iter_mut().enumerate() {
        *o = value_at(format, row, head_dim, i);
    }
}

/// `q · row` for a row of `q.len()` values (0 if the lengths disagree),
/// summed in the lane order documented at the top of this module.
pub fn kv_dot(format: KvFormat, row: &[u8], q: &[f32]) -> f32 {
    const LANES: usize = F32_DOT_LANES;
    let head_dim = q.len();
    if format.row_bytes(head_dim) != Some(row.len()) {
        return 0.0;
    }
    let mut lanes = [0f32; LANES];
    match format {
        KvFormat::F32 | KvFormat::F16 => {
            for (i, qi) in q.iter().enumerate() {
                lanes[i % LANES] += value_at(format, row, head_dim, i) * qi;
            }
        }
        KvFormat::Q8 => {
            let group = kv_group(head_dim);
            let params = &row[format.code_bytes(head_dim)..];
            for (g, qg) in q.chunks_exact(group).enumerate() {
                let mut acc = [0f32; LANES];
                for (j, qi) in qg.iter().enumerate() {
                    acc[j % LANES] += (row[g * group + j] as i8) as f32 * qi;
                }
                let scale = f16_at(params, 2 * g);
                for (l, a) in lanes.iter_mut().zip(acc) {
                    *l += scale * a;
                }
            }
        }
        KvFormat::Q4 => {
            let group = kv_group(head_dim);
            let params = &row[format.code_bytes(head_dim)..];
            for (g, qg) in q.chunks_exact(group).enumerate() {
                let (mut acc, mut qsum) = ([0f32; LANES], [0f32; LANES]);
                for (j, qi) in qg.iter().enumerate() {
                    let i = g * group + j;
                    let c = (row[i / 2] >> (4 * (i % 2))) & 0x0f;
                    acc[j % LANES] += c as f32 * qi;
                    qsum[j % LANES] += qi;
                }
                let (scale, min) = (f16_at(params, 4 * g), f16_at(params, 4 * g + 2));
                for ((l, a), s) in lanes.iter_mut().zip(acc).zip(qsum) {
                    *l += scale * a + min * s;
                }
            }
        }
    }
    reduce_lanes(lanes)
}

/// `acc += p * row` for a row of `acc.len()` values (nothing if the
/// lengths disagree).
pub fn kv_axpy(format: KvFormat, row: &[u8], p: f32, acc: &mut [f32]) {
    let head_dim = acc.len();
    if format.row_bytes(head_dim) != Some(row.len()) {
        return;
    }
    for (i, a) in acc.iter_mut().enumerate() {
        *a += p * value_at(format, row, head_dim, i);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(n: usize, seed: u32) -> [f32; 128] {
        let mut s = seed.wrapping_mul(2_654_435_761).wrapping_add(1);
        core::array::from_fn(|i| {
            s ^= s << 13;
            s ^= s >> 17;
            s ^= s << 5;
            if i < n {
                (s % 20_001) as f32 / 10_000.0 - 1.0 + if i % 7 == 0 { 2.5 } else { 0.0 }
            } else {
                0.0
            }
        })
    }

    #[test]
    fn row_bytes_match_the_documented_layout() {
        assert_eq!(KvFormat::F32.row_bytes(64), Some(256));
        assert_eq!(KvFormat::F16.row_bytes(64), Some(128));
        assert_eq!(KvFormat::Q8.row_bytes(64), Some(64 + 4));
        assert_eq!(KvFormat::Q4.row_bytes(64), Some(32 + 8));
        assert_eq!(KvFormat::Q4.row_bytes(16), Some(8 + 4));
        assert_eq!(KvFormat::Q4.row_bytes(15), None);
        assert_eq!(KvFormat::Q8.row_bytes(0), None);
        for f in KvFormat::ALL {
            assert_eq!(KvFormat::from_code(f.code()), Some(f));
            assert_eq!(KvFormat::parse(f.name()), Some(f));
        }
    }

    #[test]
    fn round_trip_error_is_within_half_a_step() {
        for (head_dim, seed) in [(64usize, 1u32), (16, 2), (96, 3), (128, 4), (6, 5)] {
            let x = sample(head_dim, seed);
            let x = &x[..head_dim];
            for f in KvFormat::ALL {
                let mut row = [0u8; 1024];
                let row = &mut row[..f.row_bytes(head_dim).unwrap()];
                encode_kv_row(f, x, row).unwrap();
                let mut back = [0f32; 128];
                decode_kv_row(f, row, &mut back[..head_dim]);
                let group = kv_group(head_dim);
                for (g, (xg, bg)) in x.chunks(group).zip(back.chunks(group)).enumerate() {
                    let lo = xg.iter().fold(f32::INFINITY, |m, v| m.min(*v));
                    let hi = xg.iter().fold(f32::NEG_INFINITY, |m, v| m.max(*v));
                    let amax = lo.abs().max(hi.abs());
                    let step = match f {
                        KvFormat::F32 => 0.0,
                        KvFormat::F16 => amax / 1024.0,
                        KvFormat::Q8 => amax / 127.0,
                        KvFormat::Q4 => (hi - lo) / 15.0,
                    };
                    // Half a step, plus f16 rounding of the scale and minimum.
                    let bound = 0.5 * step * 1.01 + amax * 1e-3 * (f != KvFormat::F32) as u8 as f32;
                    for (a, b) in xg.iter().zip(bg) {
                        assert!(
                            (a - b).abs() <= bound,
                            "{f:?} d{head_dim} group {g}: {a} vs {b} (bound {bound})"
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn dot_and_axpy_agree_with_the_decoded_row() {
        let head_dim = 64;
        let x = sample(head_dim, 9);
        let q = sample(head_dim, 10);
        for f in KvFormat::ALL {
            let mut row = [0u8; 512];
            let row = &mut row[..f.row_bytes(head_dim).unwrap()];
            encode_kv_row(f, &x[..head_dim], row).unwrap();
            let mut v = [0f32; 64];
            decode_kv_row(f, row, &mut v);
            let want: f32 = v.iter().zip(&q).map(|(a, b)| a * b).sum();
            let got = kv_dot(f, row, &q[..head_dim]);
            assert!((want - got).abs() <= 1e-4 * want.abs().max(1.0), "{f:?}: {want} vs {got}");
            let mut acc = [1f32; 64];
            kv_axpy(f, row, 0.5, &mut acc);
            for (a, v) in acc.iter().zip(&v) {
                assert_eq!(*a, 1.0 + 0.5 * v);
            }
        }
    }

    #[test]
    fn float_dots_are_dot_f32_of_the_decoded_row() {
        // The documented lane order for F32/F16 is exactly dot_f32's, so
        // the SIMD float dot products and these agree bit for bit.
        for head_dim in [1usize, 7, 8, 13, 64, 100] {
            let x = sample(head_dim, 21);
            let q = sample(head_dim, 22);
            let (x, q) = (&x[..head_dim], &q[..head_dim]);
            for f in [KvFormat::F32, KvFormat::F16] {
                let mut row = [0u8; 512];
                let row = &mut row[..f.row_bytes(head_dim).unwrap()];
                encode_kv_row(f, x, row).unwrap();
                let mut v = [0f32; 128];
                decode_kv_row(f, row, &mut v[..head_dim]);
                let want = crate::dot_f32(&v[..head_dim], q);
                assert_eq!(kv_dot(f, row, q).to_bits(), want.to_bits(), "{f:?} d{head_dim}");
            }
        }
    }

    #[test]
    fn non_finite_values_and_bad_lengths_never_panic() {
        let mut x = [1.0f32; 32];
        x[3] = f32::NAN;
        x[4] = f32::INFINITY;
        x[5] = -1e30;
        for f in KvFormat::ALL {
            let mut row = [0u8; 256];
            let n = f.row_bytes(32).unwrap();
            assert_eq!(encode_kv_row(f, &x, &mut row[..n + 1]), Err(QuantError::BadLength));
            encode_kv_row(f, &x, &mut row[..n]).unwrap();
            let mut back = [0f32; 32];
            decode_kv_row(f, &row[..n], &mut back);
            if f != KvFormat::F32 && f != KvFormat::F16 {
                assert!(back.iter().all(|v| v.is_finite()), "{f:?}: {back:?}");
            }
            assert_eq!(kv_dot(f, &row[..n - 1], &back), 0.0);
        }
    }
}
