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
//! The loops are the shared ones of [`crate::kv_pass`].

use super::{f16x4_to_f32, f16x8_high_to_f32};
use crate::kv_pass::{self, KvCodes, KvIsa, KvLanes, KvShape, Query};
use crate::KvRows;
use core::arch::aarch64::*;
use eddy_quant::KvFormat;

/// See [`crate::KvScores`]; bit-exact with [`crate::scalar::kv_scores`].
pub fn kv_scores(rows: KvRows<'_>, q: &[f32], scores: &mut [f32]) {
    kv_pass::kv_scores::<Neon>(rows, q, scores)
}

/// See [`crate::KvMix`]; bit-exact with [`crate::scalar::kv_mix`].
pub fn kv_mix(rows: KvRows<'_>, weights: &[f32], out: &mut [f32]) {
    kv_pass::kv_mix::<Neon>(rows, weights, out)
}

/// The NEON attention kernels (every CPU this module compiles for).
struct Neon;

impl KvIsa for Neon {
    fn available() -> bool {
        true
    }
    unsafe fn scores_rows<C: KvCodes>(s: &KvShape, query: &Query<'_>, scores: &mut [f32]) {
        // SAFETY: NEON is present (this module compiles only with it); the
        // rest is the caller's contract.
        unsafe { kv_pass::scores_rows::<Lanes, C>(s, query, scores) }
    }
    unsafe fn mix_rows<C: KvCodes>(s: &KvShape, weights: &[f32], out: &mut [f32]) {
        // SAFETY: as in `scores_rows`.
        unsafe { kv_pass::mix_rows::<Lanes, C>(s, weights, out) }
    }
}

/// The reference's eight lanes: lanes 0..4 and 4..8.
#[derive(Clone, Copy)]
pub(super) struct Lanes(pub(super) float32x4_t, pub(super) float32x4_t);

// NEON is present (this module compiles only with it); loads read what the
// callers' contract says lies inside a row or slice (byte loads and
// `read_unaligned` need no alignment); the rest is register arithmetic.
impl KvLanes for Lanes {
    #[inline(always)]
    unsafe fn zero() -> Self {
        // SAFETY: register-only.
        unsafe { Lanes(vdupq_n_f32(0.0), vdupq_n_f32(0.0)) }
    }
    #[inline(always)]
    unsafe fn splat(x: f32) -> Self {
        // SAFETY: register-only.
        let v = unsafe { vdupq_n_f32(x) };
        Lanes(v, v)
    }
    #[inline(always)]
    unsafe fn load(p: *const f32) -> Self {
        // SAFETY: eight floats at `p` (caller).
        unsafe { Lanes(vld1q_f32(p), vld1q_f32(p.add(4))) }
    }
    #[inline(always)]
    unsafe fn store(self, p: *mut f32) {
        // SAFETY: room for eight floats at `p` (caller).
        unsafe {
            vst1q_f32(p, self.0);
            vst1q_f32(p.add(4), self.1);
        }
    }
    #[inline(always)]
    unsafe fn add(self, b: Self) -> Self {
        // SAFETY: register-only.
        unsafe { Lanes(vaddq_f32(self.0, b.0), vaddq_f32(self.1, b.1)) }
    }
    #[inline(always)]
    unsafe fn mul(self, b: Self) -> Self {
        // SAFETY: register-only.
        unsafe { Lanes(vmulq_f32(self.0, b.0), vmulq_f32(self.1, b.1)) }
    }
    #[inline(always)]
    unsafe fn scale_add(scale: Self, x: Self, min: Self) -> Self {
        // Separate multiply and add, as the reference.
        // SAFETY: register-only.
        unsafe { scale.mul(x).add(min) }
    }
    #[inline(always)]
    unsafe fn unit<C: KvCodes>(row: *const u8, i: usize) -> Self {
        // SAFETY: values i..i + 8 lie inside the row (caller).
        unsafe {
            match C::FORMAT {
                KvFormat::F32 => {
                    let p = row.add(4 * i);
                    Lanes(vreinterpretq_f32_u8(vld1q_u8(p)), vreinterpretq_f32_u8(vld1q_u8(p.add(16))))
                }
                KvFormat::F16 => {
                    let bits = vreinterpretq_u16_u8(vld1q_u8(row.add(2 * i)));
                    Lanes(f16x4_to_f32(vget_low_u16(bits)), f16x8_high_to_f32(bits))
                }
                KvFormat::Q8 => {
                    let w = vmovl_s8(vreinterpret_s8_u8(vld1_u8(row.add(i))));
                    Lanes(vcvtq_f32_s32(vmovl_s16(vget_low_s16(w))), vcvtq_f32_s32(vmovl_high_s16(w)))
                }
                KvFormat::Q4 => {
                    // Value 2k is the low nibble of byte k: lane l = bits
                    // 4l..4l+4 of the four little-endian bytes.
                    let bytes = vdupq_n_u32((row.add(i / 2) as *const u32).read_unaligned());
                    let (shift_lo, shift_hi) = ([0i32, -4, -8, -12], [-16i32, -20, -24, -28]);
                    let mask = vdupq_n_u32(0x0f);
                    let lo = vandq_u32(vshlq_u32(bytes, vld1q_s32(shift_lo.as_ptr())), mask);
                    let hi = vandq_u32(vshlq_u32(bytes, vld1q_s32(shift_hi.as_ptr())), mask);
                    Lanes(vcvtq_f32_u32(lo), vcvtq_f32_u32(hi))
                }
            }
        }
    }
    #[inline(always)]
    unsafe fn group_params<C: KvCodes>(params: *const u8, g: usize) -> (Self, Self) {
        // SAFETY: reads group `g`'s 4 (Q4) or 2 (Q8) parameter bytes.
        unsafe {
            let bits = if C::PARAMS == 2 {
                (params.add(4 * g) as *const u32).read_unaligned()
            } else {
                (params.add(2 * g) as *const u16).read_unaligned() as u32
            };
            let v = f16x4_to_f32(vcreate_u16(bits as u64));
            let (scale, min) = (vdupq_laneq_f32::<0>(v), vdupq_laneq_f32::<1>(v));
            (Lanes(scale, scale), Lanes(min, min))
        }
    }
    #[inline(always)]
    unsafe fn reduce(self) -> f32 {
        // SAFETY: register-only.
        unsafe {
            let s = vaddq_f32(self.0, self.1);
            vpadds_f32(vadd_f32(vget_low_f32(s), vget_high_f32(s)))
        }
    }
}
