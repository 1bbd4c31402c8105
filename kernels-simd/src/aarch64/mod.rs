//! aarch64 kernels: plain NEON (`neon`, every aarch64 CPU with Advanced
//! SIMD) and NEON with the Armv8.2 dot-product instruction (`neon-sdot`,
//! `sdot` via `asm!` because `vdotq_s32` is unstable; only selected when
//! the CPU has `dotprod`).
//!
//! Integer path: codes are unpacked to 16-lane i8 vectors with shifts and
//! masks (W2: 64 codes from one 16-byte load when the group is a multiple
//! of 64, else 32 from 8 bytes; W4: 32 from 16 bytes) or re-biased to i8
//! (W8, `w = c - 128`, corrected with `128 Σx` per group). Unpacking
//! leaves W2/W4 codes in a fixed permuted order, so the activations are
//! permuted the same way once per matrix-vector product (`ld4`/`ld2`).
//! Rows go in blocks of four: each unit of activations is loaded once and
//! multiplied with the same unit of the four rows. `neon` multiplies with
//! `smull`/`smlal` into i16 and widens into i32 with `sadalp`; `neon-sdot`
//! accumulates four products per i32 lane with `sdot`. Both give the
//! reference's exact i32 group sums, and the f32 group math runs with one
//! row per lane in the reference's order (no FMA), so results are
//! bit-exact. Group headers of the four rows are loaded as four u32 and
//! split into scales and mins with `xtn`/`shrn`, widened with `fcvtl`.
//! The f32/f16 matrix-vector products use the reference's 8-lane order
//! (two 4-lane accumulators), f16 widened with `fcvtl`. Attention over
//! the KV cache (`kv_scores`, `kv_mix`, both sets): see [`kv`]. The f32
//! work of the recurrent layers and activation quantization
//! ([`NEON_VECTOR`], both sets): see `scan` and `acts`.

mod acts;
mod float;
pub mod float_tokens;
mod group;
pub mod kv;
mod matmat;
mod matmat_neon;
mod scan;
mod token_lanes;

pub(crate) use token_lanes::scratch_len as token_lanes_scratch_len;

pub use float::{matvec_f16, matvec_f32};

use crate::{ActsI8, IntShape, Kernels, VectorKernels};
use core::arch::aarch64::*;
use eddy_quant::TensorFormat;

/// Plain NEON kernels (every aarch64 CPU this module compiles for).
pub static NEON: Kernels = Kernels {
    name: "neon",
    matvec_i8: matvec_i8_neon,
    matmat_i8: Some(matmat_neon::matmat_i8_neon),
    matmat_f16: Some(float_tokens::matmat_f16),
    matvec_f32,
    matvec_f16,
    kv_scores: kv::kv_scores,
    kv_mix: kv::kv_mix,
};

/// NEON + `sdot` kernels; only selected when the CPU has `dotprod`.
pub static NEON_SDOT: Kernels = Kernels {
    name: "neon-sdot",
    matvec_i8: matvec_i8_sdot,
    matmat_i8: Some(matmat_i8_sdot),
    matmat_f16: Some(float_tokens::matmat_f16),
    matvec_f32,
    matvec_f16,
    kv_scores: kv::kv_scores,
    kv_mix: kv::kv_mix,
};

/// The vector kernels of both NEON sets (they need no `dotprod`).
pub static NEON_VECTOR: VectorKernels = VectorKernels {
    name: "neon",
    quantize_acts: acts::quantize_activations_i8,
    conv_silu: scan::conv_silu,
    conv_silu_tokens: scan::conv_silu_tokens,
    selective_scan: scan::selective_scan,
    selective_scan_tokens: scan::selective_scan_tokens,
};

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

/// [`crate::MatmatI8`] with `sdot`: each unpacked weight unit is
/// multiplied with four tokens (see `matmat`); bit-exact per token. On a
/// CPU without `dotprod`, one plain-NEON matrix-vector product per token.
pub fn matmat_i8_sdot(
    format: TensorFormat,
    matrix: &[u8],
    cols: usize,
    acts: &[ActsI8<'_>],
    out: &mut [f32],
    perm: &mut [i8],
) {
    matmat::matmat_i8(format, matrix, cols, acts, out, perm);
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
    let kind = group::Kind::of(&shape);
    // SAFETY: NEON is present (this module compiles only with it); both
    // slices have exactly `cols` bytes, a multiple of the group.
    unsafe { permute_activations(kind, &xq[..cols], &mut perm[..cols]) };
    let permuted = ActsI8 { q: &perm[..cols], scales: x_scales, sums: x_sums };
    rows_permuted(dot, kind, &shape, matrix, &permuted, out);
}

/// `out.len()` rows of `matrix` (from its first byte) times activations
/// whose codes `acts.q` are already permuted for `kind`: blocks of four
/// rows, then single rows. Rows `matrix` does not hold stay unwritten
/// (callers checked the length with [`IntShape::for_matvec`]).
fn rows_permuted(
    dot: bool,
    kind: group::Kind,
    shape: &IntShape,
    matrix: &[u8],
    acts: &ActsI8<'_>,
    out: &mut [f32],
) {
    let groups = shape.groups;
    let (perm, x_scales, x_sums) =
        (&acts.q[..groups * shape.group], &acts.scales[..groups], &acts.sums[..groups]);
    let row_bytes = shape.row_bytes;
    let full = out.len() / 4 * 4;
    let (out4, out_tail) = out.split_at_mut(full);
    let blocks4 = out4.chunks_exact_mut(4).zip(matrix.chunks_exact(4 * row_bytes));
    let tail = out_tail.chunks_exact_mut(1).zip(matrix[full * row_bytes..].chunks_exact(row_bytes));
    // SAFETY (all calls): each `rows` slice holds the 4 (or 1) rows the
    // kernel reads, `perm` `groups * group` codes, scales/sums `groups`
    // entries, `o` 4 (or 1) floats; IntShape::for_matvec checked that the
    // group is a multiple of 32 (`Kind` picks 64-code units only for
    // multiples of 64); `sdot` runs only when the CPU has `dotprod` (the
    // callers pass `dotprod_available()` as `dot`).
    if dot {
        for (o, rows) in blocks4 {
            unsafe { group::rows_sdot::<4>(kind, shape, rows.as_ptr(), perm, x_scales, x_sums, o) };
        }
        for (o, row) in tail {
            unsafe { group::rows_sdot::<1>(kind, shape, row.as_ptr(), perm, x_scales, x_sums, o) };
        }
    } else {
        for (o, rows) in blocks4 {
            unsafe { group::rows_mull::<4>(kind, shape, rows.as_ptr(), perm, x_scales, x_sums, o) };
        }
        for (o, row) in tail {
            unsafe { group::rows_mull::<1>(kind, shape, row.as_ptr(), perm, x_scales, x_sums, o) };
        }
    }
}

/// Reorder int8 activations to match the order `group::unpack` leaves the
/// codes in: W2 in units of 64 (vector `j` lane `k` = code `4k + j`, one
/// `ld4` of 16-byte vectors) or of 32 (lane `8j + k` = code `4k + j`, one
/// `ld4` of 8-byte vectors); W4 per 32 (lane `k` = code `2k`, lane `16 + k`
/// = code `2k + 1`, one `ld2`). W8 is copied unchanged.
///
/// # Safety
/// NEON must be present; `xq` and `perm` have the same length, a multiple
/// of 64 for [`group::Kind::W2Wide`] and of 32 otherwise.
unsafe fn permute_activations(kind: group::Kind, xq: &[i8], perm: &mut [i8]) {
    use group::Kind;
    let unit = if matches!(kind, Kind::W2Wide) { 64 } else { 32 };
    for (src, dst) in xq.chunks_exact(unit).zip(perm.chunks_exact_mut(unit)) {
        let (s, d) = (src.as_ptr(), dst.as_mut_ptr());
        // SAFETY: `src` and `dst` hold `unit` bytes: each arm reads and
        // writes exactly that many.
        unsafe {
            match kind {
                Kind::W2Wide => {
                    let v = vld4q_s8(s);
                    vst1q_s8(d, v.0);
                    vst1q_s8(d.add(16), v.1);
                    vst1q_s8(d.add(32), v.2);
                    vst1q_s8(d.add(48), v.3);
                }
                Kind::W2 => {
                    let v = vld4_s8(s);
                    vst1_s8(d, v.0);
                    vst1_s8(d.add(8), v.1);
                    vst1_s8(d.add(16), v.2);
                    vst1_s8(d.add(24), v.3);
                }
                Kind::W4 => {
                    let v = vld2q_s8(s);
                    vst1q_s8(d, v.0);
                    vst1q_s8(d.add(16), v.1);
                }
                Kind::W8 => dst.copy_from_slice(src),
            }
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
