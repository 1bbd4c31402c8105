//! NEON attention over the KV cache: `kv_scores` (`q · k` for every cached
//! row) and `kv_mix` (`Σ_j w_j v_j`), bit-exact with the scalar reference
//! (`eddy_quant::kv_dot`, `eddy_quant::kv_axpy`). Plain Armv8 NEON, so the
//! `neon` and `neon-sdot` sets share these kernels.
//!
//! The reference's eight lanes are two 4-lane vectors. Rows are widened to
//! f32 eight values at a time ("a unit"): F32 loaded as bytes (rows may sit
//! at any address), F16 with `fcvtl`/`fcvtl2`, Q8 sign-extended twice, Q4
//! by duplicating a unit's four code bytes to every lane and shifting lane
//! `l` right by `4 l` (`ushl` by a negative count), which leaves the codes
//! in index order. Scores take four rows at a time (one query load feeds
//! four rows); Q4's `Σ q` per group and lane is computed once per call.
//! Mix keeps up to 64 output values in registers and walks every row for
//! them, computing each element as the reference does.

use super::{f16x4_to_f32, f16x8_high_to_f32};
use crate::kv_shape::{KvShape, LANES, MAX_GROUPS};
use crate::KvRows;
use core::arch::aarch64::*;
use eddy_quant::KvFormat;

/// Eight f32 lanes: lanes 0..4 and 4..8.
type Lanes = (float32x4_t, float32x4_t);

/// See [`crate::KvScores`]; bit-exact with [`crate::scalar::kv_scores`].
pub fn kv_scores(rows: KvRows<'_>, q: &[f32], scores: &mut [f32]) {
    let Some(shape) = KvShape::of(&rows, q.len()) else {
        crate::scalar::kv_scores(rows, q, scores);
        return;
    };
    let n = rows.count.min(scores.len());
    let qsum = if rows.format == KvFormat::Q4 { shape.query_sums(q) } else { [[0f32; LANES]; MAX_GROUPS] };
    let base = rows.bytes.as_ptr();
    // SAFETY: NEON is present (this module compiles only with it);
    // KvRows::row_bytes (in KvShape::of) checked that rows 0..count,
    // `stride` bytes apart, each hold a whole row of `head_dim` values
    // inside `bytes`, and n <= count; `q` holds `head_dim` values.
    // SAFETY: values i..i + 8 (or i) lie inside the row (see above).
    unsafe {
        match rows.format {
            KvFormat::F32 => scores_rows::<F32>(&shape, base, q, &qsum, &mut scores[..n]),
            KvFormat::F16 => scores_rows::<F16>(&shape, base, q, &qsum, &mut scores[..n]),
            KvFormat::Q8 => scores_rows::<Q8>(&shape, base, q, &qsum, &mut scores[..n]),
            KvFormat::Q4 => scores_rows::<Q4>(&shape, base, q, &qsum, &mut scores[..n]),
        }
    }
}

/// See [`crate::KvMix`]; bit-exact with [`crate::scalar::kv_mix`].
pub fn kv_mix(rows: KvRows<'_>, weights: &[f32], out: &mut [f32]) {
    let Some(shape) = KvShape::of(&rows, out.len()) else {
        crate::scalar::kv_mix(rows, weights, out);
        return;
    };
    let weights = &weights[..rows.count.min(weights.len())];
    let base = rows.bytes.as_ptr();
    // SAFETY: as in `kv_scores`, with `weights.len() <= count` rows and
    // `out` holding `head_dim` values.
    // SAFETY: values i..i + 8 (or i) lie inside the row (see above).
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
    /// NEON present; `row` points at a whole row with `i + 8 <= head_dim`.
    unsafe fn unit(row: *const u8, i: usize) -> Lanes;
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

// The `unit` and `one` reads below cover values `i..i + 8` (or `i`) of the
// row, inside it by the callers' contract; byte loads and `read_unaligned`
// need no alignment; the rest is register arithmetic.
impl Codes for F32 {
    const PARAMS: usize = 0;
    #[inline(always)]
    unsafe fn unit(row: *const u8, i: usize) -> Lanes {
        // SAFETY: values i..i + 8 (or i) lie inside the row (see above).
        unsafe {
            let p = row.add(4 * i);
            (vreinterpretq_f32_u8(vld1q_u8(p)), vreinterpretq_f32_u8(vld1q_u8(p.add(16))))
        }
    }
    #[inline(always)]
    unsafe fn one(row: *const u8, i: usize) -> f32 {
        // SAFETY: value i lies inside the row.
        unsafe { f32::from_le_bytes((row.add(4 * i) as *const [u8; 4]).read()) }
    }
}

impl Codes for F16 {
    const PARAMS: usize = 0;
    #[inline(always)]
    unsafe fn unit(row: *const u8, i: usize) -> Lanes {
        // SAFETY: values i..i + 8 (or i) lie inside the row (see above).
        unsafe {
            let bits = vreinterpretq_u16_u8(vld1q_u8(row.add(2 * i)));
            (f16x4_to_f32(vget_low_u16(bits)), f16x8_high_to_f32(bits))
        }
    }
    #[inline(always)]
    unsafe fn one(row: *const u8, i: usize) -> f32 {
        // SAFETY: value i lies inside the row.
        unsafe { half::f16::from_le_bytes((row.add(2 * i) as *const [u8; 2]).read()).to_f32() }
    }
}

impl Codes for Q8 {
    const PARAMS: usize = 1;
    #[inline(always)]
    unsafe fn unit(row: *const u8, i: usize) -> Lanes {
        // SAFETY: values i..i + 8 (or i) lie inside the row (see above).
        unsafe {
            let w = vmovl_s8(vreinterpret_s8_u8(vld1_u8(row.add(i))));
            (vcvtq_f32_s32(vmovl_s16(vget_low_s16(w))), vcvtq_f32_s32(vmovl_high_s16(w)))
        }
    }
    #[inline(always)]
    unsafe fn one(row: *const u8, i: usize) -> f32 {
        // SAFETY: value i lies inside the row.
        unsafe { (*row.add(i) as i8) as f32 }
    }
}

impl Codes for Q4 {
    const PARAMS: usize = 2;
    #[inline(always)]
    unsafe fn unit(row: *const u8, i: usize) -> Lanes {
        // SAFETY: values i..i + 8 (or i) lie inside the row (see above).
        unsafe {
            // Value 2k is the low nibble of byte k: lane l = bits 4l..4l+4
            // of the four little-endian bytes.
            let bytes = vdupq_n_u32((row.add(i / 2) as *const u32).read_unaligned());
            let (shift_lo, shift_hi) = ([0i32, -4, -8, -12], [-16i32, -20, -24, -28]);
            let mask = vdupq_n_u32(0x0f);
            let lo = vandq_u32(vshlq_u32(bytes, vld1q_s32(shift_lo.as_ptr())), mask);
            let hi = vandq_u32(vshlq_u32(bytes, vld1q_s32(shift_hi.as_ptr())), mask);
            (vcvtq_f32_u32(lo), vcvtq_f32_u32(hi))
        }
    }
    #[inline(always)]
    unsafe fn one(row: *const u8, i: usize) -> f32 {
        // SAFETY: value i lies inside the row.
        unsafe { ((*row.add(i / 2) >> (4 * (i % 2))) & 0x0f) as f32 }
    }
}

/// Scale and minimum (0 for Q8) of group `g`, in every lane.
///
/// # Safety
/// NEON present; `params` points at the row's group parameters and `g` is
/// one of its groups.
#[inline(always)]
unsafe fn group_params<C: Codes>(params: *const u8, g: usize) -> (float32x4_t, float32x4_t) {
    // SAFETY: reads group `g`'s 4 (Q4) or 2 (Q8) parameter bytes.
    unsafe {
        let bits = if C::PARAMS == 2 {
            (params.add(4 * g) as *const u32).read_unaligned()
        } else {
            (params.add(2 * g) as *const u16).read_unaligned() as u32
        };
        let v = f16x4_to_f32(vcreate_u16(bits as u64));
        (vdupq_laneq_f32::<0>(v), vdupq_laneq_f32::<1>(v))
    }
}

/// The same parameters as scalars, as the reference decodes them.
///
/// # Safety
/// As [`group_params`].
#[inline(always)]
unsafe fn group_params_scalar<C: Codes>(params: *const u8, g: usize) -> (f32, f32) {
    // SAFETY: reads group `g`'s parameter bytes.
    let f16_at = |at: usize| unsafe { half::f16::from_le_bytes((params.add(at) as *const [u8; 2]).read()) };
    match C::PARAMS {
        2 => (f16_at(4 * g).to_f32(), f16_at(4 * g + 2).to_f32()),
        1 => (f16_at(2 * g).to_f32(), 0.0),
        _ => (1.0, 0.0),
    }
}

#[inline(always)]
unsafe fn zero() -> Lanes {
    // SAFETY: register-only.
    unsafe { (vdupq_n_f32(0.0), vdupq_n_f32(0.0)) }
}

/// `a + x * y` lane by lane (separate multiply and add, as the reference).
#[inline(always)]
unsafe fn add_mul(a: Lanes, x: Lanes, y: Lanes) -> Lanes {
    // SAFETY: register-only.
    unsafe { (vaddq_f32(a.0, vmulq_f32(x.0, y.0)), vaddq_f32(a.1, vmulq_f32(x.1, y.1))) }
}

/// `acc[r]` lane `j % 8` += value `start + j` of row `r` times `q[start +
/// j]`, for `j` in `0..len` in order (the reference's inner loop).
///
/// # Safety
/// NEON present; every `rows[r]` points at a whole row and `q` at
/// `head_dim` values, with `start + len <= head_dim`.
#[inline(always)]
unsafe fn accumulate<C: Codes, const R: usize>(
    rows: &[*const u8; R],
    q: *const f32,
    start: usize,
    len: usize,
    acc: &mut [Lanes; R],
) {
    let units = len / 8;
    // SAFETY: every read is inside a row or `q` per the contract.
    unsafe {
        for u in 0..units {
            let i = start + 8 * u;
            let qv = (vld1q_f32(q.add(i)), vld1q_f32(q.add(i + 4)));
            for r in 0..R {
                acc[r] = add_mul(acc[r], C::unit(rows[r], i), qv);
            }
        }
        if len % 8 != 0 {
            // Ragged tail (head_dim not a multiple of 8): lanes 0.. in order.
            for (a, &row) in acc.iter_mut().zip(rows) {
                let mut lanes = [0f32; LANES];
                vst1q_f32(lanes.as_mut_ptr(), a.0);
                vst1q_f32(lanes.as_mut_ptr().add(4), a.1);
                for j in units * 8..len {
                    lanes[j - units * 8] += C::one(row, start + j) * *q.add(start + j);
                }
                *a = (vld1q_f32(lanes.as_ptr()), vld1q_f32(lanes.as_ptr().add(4)));
            }
        }
    }
}

/// The reference's eight lanes of `R` rows' dot products with `q`.
///
/// # Safety
/// As [`accumulate`]; `qsum` holds the Q4 query sums of every group.
#[inline(always)]
unsafe fn row_lanes<C: Codes, const R: usize>(
    s: &KvShape,
    rows: &[*const u8; R],
    q: *const f32,
    qsum: &[[f32; LANES]; MAX_GROUPS],
) -> [Lanes; R] {
    // SAFETY: reads inside the rows (group parameters of groups < s.groups)
    // and `qsum`; `accumulate` per its contract.
    // SAFETY: values i..i + 8 (or i) lie inside the row (see above).
    unsafe {
        let mut lanes = [zero(); R];
        if C::PARAMS == 0 {
            accumulate::<C, R>(rows, q, 0, s.head_dim, &mut lanes);
            return lanes;
        }
        for (g, qs) in qsum.iter().enumerate().take(s.groups) {
            let mut acc = [zero(); R];
            accumulate::<C, R>(rows, q, g * s.group, s.group, &mut acc);
            let qs = (vld1q_f32(qs.as_ptr()), vld1q_f32(qs.as_ptr().add(4)));
            for ((l, a), &row) in lanes.iter_mut().zip(&acc).zip(rows) {
                let (scale, min) = group_params::<C>(row.add(s.code_bytes), g);
                let mut term = (vmulq_f32(scale, a.0), vmulq_f32(scale, a.1));
                if C::PARAMS == 2 {
                    term = (vaddq_f32(term.0, vmulq_f32(min, qs.0)), vaddq_f32(term.1, vmulq_f32(min, qs.1)));
                }
                *l = (vaddq_f32(l.0, term.0), vaddq_f32(l.1, term.1));
            }
        }
        lanes
    }
}

/// `((a0 + a4) + (a2 + a6)) + ((a1 + a5) + (a3 + a7))`.
#[inline(always)]
unsafe fn reduce(a: Lanes) -> f32 {
    // SAFETY: register-only.
    unsafe {
        let s = vaddq_f32(a.0, a.1);
        vpadds_f32(vadd_f32(vget_low_f32(s), vget_high_f32(s)))
    }
}

/// Scores of rows `0..scores.len()`: four at a time, then one at a time.
///
/// # Safety
/// NEON present; rows `0..scores.len()` at `base + j * stride` are whole
/// rows; `q` has `head_dim` values.
unsafe fn scores_rows<C: Codes>(
    s: &KvShape,
    base: *const u8,
    q: &[f32],
    qsum: &[[f32; LANES]; MAX_GROUPS],
    scores: &mut [f32],
) {
    let q = q.as_ptr();
    let mut blocks = scores.chunks_exact_mut(4);
    let mut j = 0;
    // SAFETY: rows j..j + 4 (or j) are below scores.len(); `row_lanes`
    // per its contract.
    // SAFETY: values i..i + 8 (or i) lie inside the row (see above).
    unsafe {
        for out in &mut blocks {
            let rows = [0, 1, 2, 3].map(|r| base.add((j + r) * s.stride));
            let lanes = row_lanes::<C, 4>(s, &rows, q, qsum);
            for (o, l) in out.iter_mut().zip(lanes) {
                *o = reduce(l);
            }
            j += 4;
        }
        for out in blocks.into_remainder() {
            let lanes = row_lanes::<C, 1>(s, &[base.add(j * s.stride)], q, qsum);
            *out = reduce(lanes[0]);
            j += 1;
        }
    }
}

/// `out = Σ_j weights[j] row_j`: passes of 8, 4, 2 and 1 units of output
/// in registers, then the ragged tail column by column.
///
/// # Safety
/// NEON present; rows `0..weights.len()` at `base + j * stride` are whole
/// rows; `out` has `head_dim` values.
unsafe fn mix_rows<C: Codes>(s: &KvShape, base: *const u8, weights: &[f32], out: &mut [f32]) {
    let units = s.head_dim / 8;
    let mut u0 = 0;
    // SAFETY: every pass covers units below head_dim / 8; the tail reads
    // value `i < head_dim` and its group's parameters of rows < weights.len().
    // SAFETY: values i..i + 8 (or i) lie inside the row (see above).
    unsafe {
        while units - u0 >= 8 {
            mix_pass::<C, 8>(s, base, weights, out, u0);
            u0 += 8;
        }
        for width in [4, 2, 1] {
            if units - u0 >= width {
                match width {
                    4 => mix_pass::<C, 4>(s, base, weights, out, u0),
                    2 => mix_pass::<C, 2>(s, base, weights, out, u0),
                    _ => mix_pass::<C, 1>(s, base, weights, out, u0),
                }
                u0 += width;
            }
        }
        for (i, o) in out.iter_mut().enumerate().skip(units * 8) {
            let g = i / s.group;
            let mut acc = 0f32;
            for (j, &w) in weights.iter().enumerate() {
                let row = base.add(j * s.stride);
                let (scale, min) = group_params_scalar::<C>(row.add(s.code_bytes), g);
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
    s: &KvShape,
    base: *const u8,
    weights: &[f32],
    out: &mut [f32],
    u0: usize,
) {
    let c0 = 8 * u0;
    let (g0, two_groups) = if s.group == 32 { (c0 / 32, U > 4) } else { (0, false) };
    debug_assert!(s.group != 32 || c0 % 32 == 0);
    // SAFETY: reads units u0..u0 + U and the parameters of groups g0 (and
    // g0 + 1 with two groups) of rows < weights.len(); writes values
    // c0..c0 + 8 U <= head_dim of `out`.
    // SAFETY: values i..i + 8 (or i) lie inside the row (see above).
    unsafe {
        let mut acc = [zero(); U];
        for (j, &w) in weights.iter().enumerate() {
            let row = base.add(j * s.stride);
            let p = vdupq_n_f32(w);
            let z = vdupq_n_f32(0.0);
            let ((s0, m0), (s1, m1)) = match C::PARAMS {
                0 => ((z, z), (z, z)),
                _ => {
                    let first = group_params::<C>(row.add(s.code_bytes), g0);
                    (first, if two_groups { group_params::<C>(row.add(s.code_bytes), g0 + 1) } else { first })
                }
            };
            for (u, a) in acc.iter_mut().enumerate() {
                let x = C::unit(row, c0 + 8 * u);
                let (scale, min) = if u < 4 { (s0, m0) } else { (s1, m1) };
                let v = match C::PARAMS {
                    0 => x,
                    1 => (vmulq_f32(scale, x.0), vmulq_f32(scale, x.1)),
                    _ => (vaddq_f32(vmulq_f32(scale, x.0), min), vaddq_f32(vmulq_f32(scale, x.1), min)),
                };
                *a = add_mul(*a, (p, p), v);
            }
        }
        for (u, a) in acc.iter().enumerate() {
            let o = out.as_mut_ptr().add(c0 + 8 * u);
            vst1q_f32(o, a.0);
            vst1q_f32(o.add(4), a.1);
        }
    }
}
