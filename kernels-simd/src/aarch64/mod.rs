//! aarch64 kernels: plain NEON (`neon`, every aarch64 CPU with Advanced
//! SIMD) and NEON with the Armv8.2 dot-product instruction (`neon-sdot`,
//! `sdot` via `asm!` because `vdotq_s32` is unstable; only selected when
//! the CPU has `dotprod`).
//!
//! Integer path: each block of 32 codes is unpacked into two 16-byte
//! vectors with shifts and masks (W2/W4) or re-biased to i8 (W8,
//! `w = c - 128`, corrected with `128 Σx` per group). Unpacking leaves
//! W2/W4 codes in a fixed permuted order, so the activations are permuted
//! the same way once per matrix-vector product (one `ld4`/`ld2` per 32).
//! `neon` multiplies with `smull`/`smlal` into i16 and accumulates pairs
//! into i32 with `sadalp`; `neon-sdot` accumulates four products per i32
//! lane with `sdot`. Both give the reference's exact i32 group sums; four
//! rows share each activation load, and the f32 group math runs with one
//! row per lane in the reference's order (no FMA), so results are
//! bit-exact. The f32/f16 matrix-vector products use the reference's
//! 8-lane order (two 4-lane accumulators), f16 widened with `fcvtl`.

mod float;
mod group;

pub use float::{matvec_f16, matvec_f32};

use crate::{ActsI8, IntShape, Kernels};
use core::arch::aarch64::*;
use eddy_quant::{group_header, TensorFormat, GROUP_HEADER_BYTES};

/// Plain NEON kernels (every aarch64 CPU this module compiles for).
pub static NEON: Kernels =
    Kernels { name: "neon", matvec_i8: matvec_i8_neon, matmat_i8: None, matvec_f32, matvec_f16 };

/// NEON + `sdot` kernels; only selected when the CPU has `dotprod`.
pub static NEON_SDOT: Kernels =
    Kernels { name: "neon-sdot", matvec_i8: matvec_i8_sdot, matmat_i8: None, matvec_f32, matvec_f16 };

/// True if this CPU has the dot-product instructions (`sdot`) that the
/// `neon-sdot` set needs: detected at run time with `std`, from
/// `target_feature` (e.g. `-C target-cpu=cortex-a76`) without it.
pub fn dotprod_available() -> bool {
    #[cfg(feature = "std")]
    {
        std::arch::is_aarch64_feature_detected!("dotprod")
    }
    #[cfg(not(feature = "std"))]
    {
        cfg!(target_feature = "dotprod")
    }
}

/// [`crate::MatvecI8`] with plain NEON multiplies. Falls back to the scalar
/// reference for shapes it does not cover (group not a multiple of 32,
/// `cols` not a multiple of the group, short buffers, float formats).
pub fn matvec_i8_neon(
    format: TensorFormat,
    matrix: &[u8],
    cols: usize,
    acts: &ActsI8<'_>,
    out: &mut [f32],
    perm: &mut [i8],
) {
    matvec_i8(false, format, matrix, cols, acts, out, perm);
}

/// [`crate::MatvecI8`] with `sdot`. Runs the plain NEON path on a CPU
/// without `dotprod` and the scalar reference for shapes not covered.
///
/// Like the AVX2 kernels, W8 relies on the contract of [`ActsI8`]: `sums`
/// holds each group's activation code sum.
pub fn matvec_i8_sdot(
    format: TensorFormat,
    matrix: &[u8],
    cols: usize,
    acts: &ActsI8<'_>,
    out: &mut [f32],
    perm: &mut [i8],
) {
    matvec_i8(dotprod_available(), format, matrix, cols, acts, out, perm);
}

fn matvec_i8(
    dot: bool,
    format: TensorFormat,
    matrix: &[u8],
    cols: usize,
    acts: &ActsI8<'_>,
    out: &mut [f32],
    perm: &mut [i8],
) {
    let (xq, x_scales, x_sums) = (acts.q, acts.scales, acts.sums);
    let Some(shape) = IntShape::for_matvec(format, cols, out.len(), matrix, acts, perm.len()) else {
        eddy_quant::matvec_i8(format, matrix, cols, xq, x_scales, x_sums, out);
        return;
    };
    let bits = shape.bits;
    // SAFETY: NEON is present (this module compiles only with it); both
    // slices have exactly `cols` bytes, a multiple of 32.
    unsafe { permute_activations(bits, &xq[..cols], &mut perm[..cols]) };
    let perm = &perm[..cols];
    let (x_scales, x_sums) = (&x_scales[..shape.groups], &x_sums[..shape.groups]);
    let full = out.len() / 4 * 4;
    let (out4, out_tail) = out.split_at_mut(full);
    for (o, rows) in out4.chunks_exact_mut(4).zip(matrix.chunks_exact(4 * shape.row_bytes)) {
        // SAFETY: `rows` holds 4 rows of `row_bytes`, `perm` `cols` codes,
        // scales/sums `groups` entries, `o` 4 floats; `sdot` only runs when
        // the CPU has `dotprod` (`dot` is `dotprod_available()`).
        unsafe {
            match (dot, bits) {
                (true, 2) => group::rows4_sdot::<2>(&shape, rows, perm, x_scales, x_sums, o),
                (true, 4) => group::rows4_sdot::<4>(&shape, rows, perm, x_scales, x_sums, o),
                (true, _) => group::rows4_sdot::<8>(&shape, rows, perm, x_scales, x_sums, o),
                (false, 2) => group::rows4_mull::<2>(&shape, rows, perm, x_scales, x_sums, o),
                (false, 4) => group::rows4_mull::<4>(&shape, rows, perm, x_scales, x_sums, o),
                (false, _) => group::rows4_mull::<8>(&shape, rows, perm, x_scales, x_sums, o),
            }
        }
    }
    for (o, row) in out_tail.iter_mut().zip(matrix[full * shape.row_bytes..].chunks_exact(shape.row_bytes)) {
        let mut result = 0f32;
        for (g, gbytes) in row.chunks_exact(shape.group_bytes).enumerate() {
            let codes = &gbytes[GROUP_HEADER_BYTES..];
            let acts = &perm[g * shape.group..(g + 1) * shape.group];
            // SAFETY: `codes` holds group*bits/8 bytes and `acts` group
            // bytes (a multiple of 32), which is what the kernels read;
            // `sdot` only runs when the CPU has `dotprod`.
            let acc = unsafe {
                match (dot, bits) {
                    (true, 2) => group::group_dot_sdot::<2>(codes, acts, x_sums[g]),
                    (true, 4) => group::group_dot_sdot::<4>(codes, acts, x_sums[g]),
                    (true, _) => group::group_dot_sdot::<8>(codes, acts, x_sums[g]),
                    (false, 2) => group::group_dot_mull::<2>(codes, acts, x_sums[g]),
                    (false, 4) => group::group_dot_mull::<4>(codes, acts, x_sums[g]),
                    (false, _) => group::group_dot_mull::<8>(codes, acts, x_sums[g]),
                }
            };
            let (scale, min) = group_header(gbytes);
            // Same expression and order as eddy_quant::dot_row_i8.
            result += x_scales[g] * (scale * acc as f32 + min * x_sums[g] as f32);
        }
        *o = result;
    }
}

/// Reorder int8 activations to match the byte order the W2/W4 unpacking
/// produces, per block of 32: W2 lane `8j + k` holds code `4k + j`, W4
/// lane `k` code `2k` and lane `16 + k` code `2k + 1`. W8 is unchanged.
///
/// # Safety
/// NEON must be present; `xq` and `perm` have the same length, a multiple
/// of 32.
unsafe fn permute_activations(bits: u32, xq: &[i8], perm: &mut [i8]) {
    for (src, dst) in xq.chunks_exact(32).zip(perm.chunks_exact_mut(32)) {
        let (s, d) = (src.as_ptr(), dst.as_mut_ptr());
        match bits {
            2 => {
                // SAFETY: `src` and `dst` have 32 bytes: `ld4` reads all 32
                // (lane k of vector j = byte 4k + j), four 8-byte stores.
                unsafe {
                    let v = vld4_s8(s);
                    vst1_s8(d, v.0);
                    vst1_s8(d.add(8), v.1);
                    vst1_s8(d.add(16), v.2);
                    vst1_s8(d.add(24), v.3);
                }
            }
            4 => {
                // SAFETY: as above; `ld2` reads 32 bytes into even/odd.
                unsafe {
                    let v = vld2q_s8(s);
                    vst1q_s8(d, v.0);
                    vst1q_s8(d.add(16), v.1);
                }
            }
            _ => dst.copy_from_slice(src),
        }
    }
}

/// Four f16 values (raw bits) widened to f32 with `fcvtl` (exact).
///
/// # Safety
/// NEON must be present (f16 conversion is part of base Armv8 Advanced SIMD).
#[inline(always)]
unsafe fn f16x4_to_f32(bits: uint16x4_t) -> float32x4_t {
    let out: float32x4_t;
    // SAFETY: a register-only conversion instruction of base Armv8 NEON;
    // no memory, stack or flags touched.
    unsafe {
        core::arch::asm!(
            "fcvtl {out:v}.4s, {inp:v}.4h",
            out = out(vreg) out,
            inp = in(vreg) bits,
            options(pure, nomem, nostack, preserves_flags)
        );
    }
    out
}

/// The upper four f16 values of `bits` widened to f32 with `fcvtl2`.
///
/// # Safety
/// NEON must be present.
#[inline(always)]
unsafe fn f16x8_high_to_f32(bits: uint16x8_t) -> float32x4_t {
    let out: float32x4_t;
    // SAFETY: as in `f16x4_to_f32`.
    unsafe {
        core::arch::asm!(
            "fcvtl2 {out:v}.4s, {inp:v}.8h",
            out = out(vreg) out,
            inp = in(vreg) bits,
            options(pure, nomem, nostack, preserves_flags)
        );
    }
    out
}

/// `(scale, min)` of four groups' f16 headers as f32 lanes.
///
/// # Safety
/// NEON must be present.
#[inline(always)]
unsafe fn headers_to_f32(scales: &[u16; 4], mins: &[u16; 4]) -> (float32x4_t, float32x4_t) {
    // SAFETY: each array holds 4 u16 = 8 bytes, what `ld1` reads.
    unsafe { (f16x4_to_f32(vld1_u16(scales.as_ptr())), f16x4_to_f32(vld1_u16(mins.as_ptr()))) }
}
