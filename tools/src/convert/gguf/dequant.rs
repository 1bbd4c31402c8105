//! ggml's tensor types and their dequantization to f32, written from the
//! block layouts ggml documents (`ggml-common.h`): plain floats, the
//! 32-weight blocks (Q4_0, Q4_1, Q5_0, Q5_1, Q8_0) and the 256-weight
//! K-quant super-blocks (Q2_K .. Q6_K). The arithmetic follows ggml's
//! reference order (`d * sub_scale` first, then `* q - min`) so results
//! are bit-identical to its scalar dequantization.

use half::{bf16, f16};

/// A ggml tensor type eddy can read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[allow(non_camel_case_types)]
pub enum GgmlType {
    /// IEEE binary32.
    F32,
    /// IEEE binary16.
    F16,
    /// bfloat16.
    BF16,
    /// 32 weights: f16 scale, 4-bit codes, value `d * (q - 8)`.
    Q4_0,
    /// 32 weights: f16 scale and minimum, 4-bit codes, value `d * q + m`.
    Q4_1,
    /// 32 weights: f16 scale, 5-bit codes, value `d * (q - 16)`.
    Q5_0,
    /// 32 weights: f16 scale and minimum, 5-bit codes, value `d * q + m`.
    Q5_1,
    /// 32 weights: f16 scale, signed 8-bit codes, value `d * q`.
    Q8_0,
    /// 256 weights: 16 sub-blocks of 16 with 4-bit scales and minimums, 2-bit codes.
    Q2_K,
    /// 256 weights: 16 sub-blocks of 16 with 6-bit scales, 3-bit codes.
    Q3_K,
    /// 256 weights: 8 sub-blocks of 32 with 6-bit scales and minimums, 4-bit codes.
    Q4_K,
    /// 256 weights: 8 sub-blocks of 32 with 6-bit scales and minimums, 5-bit codes.
    Q5_K,
    /// 256 weights: 16 sub-blocks of 16 with 8-bit scales, 6-bit codes.
    Q6_K,
}

/// Every type this module reads, for error messages.
pub const READABLE: &str = "F32, F16, BF16, Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q2_K, Q3_K, Q4_K, Q5_K, Q6_K";

impl GgmlType {
    /// The type of a ggml type code, if readable.
    pub fn from_code(code: u32) -> Option<Self> {
        use GgmlType::*;
        Some(match code {
            0 => F32,
            1 => F16,
            2 => Q4_0,
            3 => Q4_1,
            6 => Q5_0,
            7 => Q5_1,
            8 => Q8_0,
            10 => Q2_K,
            11 => Q3_K,
            12 => Q4_K,
            13 => Q5_K,
            14 => Q6_K,
            30 => BF16,
            _ => return None,
        })
    }

    /// ggml's name of the type.
    pub fn name(self) -> &'static str {
        use GgmlType::*;
        match self {
            F32 => "F32",
            F16 => "F16",
            BF16 => "BF16",
            Q4_0 => "Q4_0",
            Q4_1 => "Q4_1",
            Q5_0 => "Q5_0",
            Q5_1 => "Q5_1",
            Q8_0 => "Q8_0",
            Q2_K => "Q2_K",
            Q3_K => "Q3_K",
            Q4_K => "Q4_K",
            Q5_K => "Q5_K",
            Q6_K => "Q6_K",
        }
    }

    /// `(weights per block, bytes per block)`.
    pub fn block(self) -> (u64, u64) {
        use GgmlType::*;
        match self {
            F32 => (1, 4),
            F16 | BF16 => (1, 2),
            Q4_0 => (32, 18),
            Q4_1 => (32, 20),
            Q5_0 => (32, 22),
            Q5_1 => (32, 24),
            Q8_0 => (32, 34),
            Q2_K => (256, 84),
            Q3_K => (256, 110),
            Q4_K => (256, 144),
            Q5_K => (256, 176),
            Q6_K => (256, 210),
        }
    }

    /// Whether the type is a float type (no blocks).
    pub fn is_float(self) -> bool {
        matches!(self, GgmlType::F32 | GgmlType::F16 | GgmlType::BF16)
    }

    /// Bits per weight as stored.
    pub fn bits_per_weight(self) -> f64 {
        let (n, b) = self.block();
        (b * 8) as f64 / n as f64
    }

    /// Byte length of a tensor with rows of `row_len` weights and `numel`
    /// weights in all; rows must be whole blocks.
    pub fn byte_len(self, row_len: u64, numel: u64) -> Result<u64, String> {
        let (n, b) = self.block();
        if row_len % n != 0 {
            return Err(format!("rows of {row_len} weights are not whole {} blocks of {n}", self.name()));
        }
        (numel / n).checked_mul(b).ok_or_else(|| "size overflows".to_string())
    }
}

fn f16_at(b: &[u8], i: usize) -> f32 {
    f16::from_le_bytes([b[i], b[i + 1]]).to_f32()
}

/// Dequantize `bytes` (whole blocks of `ty`) to f32, appended to `out`.
/// Trailing bytes short of a block are ignored; the reader checked the
/// length against the shape.
pub fn dequantize(ty: GgmlType, bytes: &[u8], out: &mut Vec<f32>) {
    let (n, b) = ty.block();
    out.reserve(bytes.len() / b as usize * n as usize);
    match ty {
        GgmlType::F32 => {
            return out.extend(bytes.chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])))
        }
        GgmlType::F16 => return out.extend(bytes.chunks_exact(2).map(|c| f16_at(c, 0))),
        GgmlType::BF16 => {
            return out.extend(bytes.chunks_exact(2).map(|c| bf16::from_le_bytes([c[0], c[1]]).to_f32()))
        }
        _ => {}
    }
    let mut y = [0f32; 256];
    for block in bytes.chunks_exact(b as usize) {
        let y = &mut y[..n as usize];
        match ty {
            // Floats returned above.
            GgmlType::F32 | GgmlType::F16 | GgmlType::BF16 => {}
            GgmlType::Q4_0 => q4_0(block, y),
            GgmlType::Q4_1 => q4_1(block, y),
            GgmlType::Q5_0 => q5(block, y, false),
            GgmlType::Q5_1 => q5(block, y, true),
            GgmlType::Q8_0 => q8_0(block, y),
            GgmlType::Q2_K => q2_k(block, y),
            GgmlType::Q3_K => q3_k(block, y),
            GgmlType::Q4_K => q4_k(block, y),
            GgmlType::Q5_K => q5_k(block, y),
            GgmlType::Q6_K => q6_k(block, y),
        }
        out.extend_from_slice(y);
    }
}

// 32-weight blocks: weight j of the first half is in the low nibble of
// byte j, weight j + 16 in its high nibble.

fn q4_0(b: &[u8], y: &mut [f32]) {
    let d = f16_at(b, 0);
    for (j, &q) in b[2..18].iter().enumerate() {
        y[j] = ((q & 0x0f) as i32 - 8) as f32 * d;
        y[j + 16] = ((q >> 4) as i32 - 8) as f32 * d;
    }
}

fn q4_1(b: &[u8], y: &mut [f32]) {
    let (d, m) = (f16_at(b, 0), f16_at(b, 2));
    for (j, &q) in b[4..20].iter().enumerate() {
        y[j] = (q & 0x0f) as f32 * d + m;
        y[j + 16] = (q >> 4) as f32 * d + m;
    }
}

/// Q5_0 (`with_min` false: codes centred on 16) and Q5_1 (a minimum).
fn q5(b: &[u8], y: &mut [f32], with_min: bool) {
    let d = f16_at(b, 0);
    let (m, at) = if with_min { (f16_at(b, 2), 4) } else { (0.0, 2) };
    let qh = u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]]);
    for (j, &q) in b[at + 4..at + 20].iter().enumerate() {
        let h0 = (((qh >> j) << 4) & 0x10) as u8;
        let h1 = ((qh >> (j + 12)) & 0x10) as u8;
        let (c0, c1) = ((q & 0x0f) | h0, (q >> 4) | h1);
        if with_min {
            y[j] = c0 as f32 * d + m;
            y[j + 16] = c1 as f32 * d + m;
        } else {
            y[j] = (c0 as i32 - 16) as f32 * d;
            y[j + 16] = (c1 as i32 - 16) as f32 * d;
        }
    }
}

fn q8_0(b: &[u8], y: &mut [f32]) {
    let d = f16_at(b, 0);
    for (j, &q) in b[2..34].iter().enumerate() {
        y[j] = q as i8 as f32 * d;
    }
}

fn q2_k(b: &[u8], y: &mut [f32]) {
    let (scales, qs) = (&b[0..16], &b[16..80]);
    let (d, dmin) = (f16_at(b, 80), f16_at(b, 82));
    let mut is = 0;
    for (half, q) in qs.chunks_exact(32).enumerate() {
        for shift in 0..4 {
            for part in 0..2 {
                let sc = scales[is];
                is += 1;
                let (dl, ml) = (d * (sc & 0x0f) as f32, dmin * (sc >> 4) as f32);
                let at = half * 128 + shift * 32 + part * 16;
                for l in 0..16 {
                    y[at + l] = dl * ((q[part * 16 + l] >> (2 * shift)) & 3) as f32 - ml;
                }
            }
        }
    }
}

/// The sixteen signed 6-bit scales of a Q3_K block, unpacked from 12 bytes.
fn q3_k_scales(s: &[u8]) -> [i8; 16] {
    let mut out = [0i8; 16];
    for (j, o) in out.iter_mut().enumerate() {
        let low = if j < 8 { s[j] & 0x0f } else { s[j - 8] >> 4 };
        let high = (s[8 + j % 4] >> (2 * (j / 4))) & 3;
        *o = ((low | (high << 4)) as i32 - 32) as i8;
    }
    out
}

fn q3_k(b: &[u8], y: &mut [f32]) {
    let (hmask, qs) = (&b[0..32], &b[32..96]);
    let scales = q3_k_scales(&b[96..108]);
    let d = f16_at(b, 108);
    let mut is = 0;
    let mut m = 1u8;
    for (half, q) in qs.chunks_exact(32).enumerate() {
        for shift in 0..4 {
            for part in 0..2 {
                let dl = d * scales[is] as f32;
                is += 1;
                let at = half * 128 + shift * 32 + part * 16;
                for l in 0..16 {
                    let i = part * 16 + l;
                    let low = ((q[i] >> (2 * shift)) & 3) as i32;
                    let high = if hmask[i] & m != 0 { 0 } else { 4 };
                    y[at + l] = dl * (low - high) as f32;
                }
            }
            m <<= 1;
        }
    }
}

/// Scale and minimum `j` (0..8) of a Q4_K/Q5_K block's 12 packed bytes.
fn scale_min_k4(j: usize, q: &[u8]) -> (u8, u8) {
    if j < 4 {
        (q[j] & 63, q[j + 4] & 63)
    } else {
        ((q[j + 4] & 0x0f) | ((q[j - 4] >> 6) << 4), (q[j + 4] >> 4) | ((q[j] >> 6) << 4))
    }
}

fn q4_k(b: &[u8], y: &mut [f32]) {
    let (d, dmin) = (f16_at(b, 0), f16_at(b, 2));
    let (scales, qs) = (&b[4..16], &b[16..144]);
    for (k, q) in qs.chunks_exact(32).enumerate() {
        let (sc1, m1) = scale_min_k4(2 * k, scales);
        let (sc2, m2) = scale_min_k4(2 * k + 1, scales);
        let (d1, min1, d2, min2) = (d * sc1 as f32, dmin * m1 as f32, d * sc2 as f32, dmin * m2 as f32);
        for l in 0..32 {
            y[64 * k + l] = d1 * (q[l] & 0x0f) as f32 - min1;
            y[64 * k + 32 + l] = d2 * (q[l] >> 4) as f32 - min2;
        }
    }
}

fn q5_k(b: &[u8], y: &mut [f32]) {
    let (d, dmin) = (f16_at(b, 0), f16_at(b, 2));
    let (scales, qh, qs) = (&b[4..16], &b[16..48], &b[48..176]);
    for (k, ql) in qs.chunks_exact(32).enumerate() {
        let (sc1, m1) = scale_min_k4(2 * k, scales);
        let (sc2, m2) = scale_min_k4(2 * k + 1, scales);
        let (d1, min1, d2, min2) = (d * sc1 as f32, dmin * m1 as f32, d * sc2 as f32, dmin * m2 as f32);
        let (u1, u2) = (1u8 << (2 * k), 2u8 << (2 * k));
        for l in 0..32 {
            let h1 = if qh[l] & u1 != 0 { 16 } else { 0 };
            let h2 = if qh[l] & u2 != 0 { 16 } else { 0 };
            y[64 * k + l] = d1 * ((ql[l] & 0x0f) + h1) as f32 - min1;
            y[64 * k + 32 + l] = d2 * ((ql[l] >> 4) + h2) as f32 - min2;
        }
    }
}

fn q6_k(b: &[u8], y: &mut [f32]) {
    let (ql, qh, sc) = (&b[0..128], &b[128..192], &b[192..208]);
    let d = f16_at(b, 208);
    for half in 0..2 {
        let (ql, qh, sc) = (&ql[64 * half..], &qh[32 * half..], &sc[8 * half..]);
        let y = &mut y[128 * half..];
        for l in 0..32 {
            let is = l / 16;
            let q1 = ((ql[l] & 0x0f) | ((qh[l] & 3) << 4)) as i32 - 32;
            let q2 = ((ql[l + 32] & 0x0f) | (((qh[l] >> 2) & 3) << 4)) as i32 - 32;
            let q3 = ((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) as i32 - 32;
            let q4 = ((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) as i32 - 32;
            y[l] = d * sc[is] as i8 as f32 * q1 as f32;
            y[l + 32] = d * sc[is + 2] as i8 as f32 * q2 as f32;
            y[l + 64] = d * sc[is + 4] as i8 as f32 * q3 as f32;
            y[l + 96] = d * sc[is + 6] as i8 as f32 * q4 as f32;
        }
    }
}
