//! NEON integer matrix-vector products (`neon` and `neon-sdot`):
//! activations permuted once, rows in blocks of four (see [`super::group`]).

use super::dotprod_available;
use super::group;
use crate::{ActsI8, IntShape, QuantMatrix};
use core::arch::aarch64::*;

/// [`crate::MatvecI8`] with plain NEON multiplies. Falls back to the scalar
/// reference for shapes it does not cover (group not a multiple of 32,
/// `cols` not a multiple of the group, short buffers, float formats).
pub fn matvec_i8_neon(w: QuantMatrix<'_>, acts: &ActsI8<'_>, out: &mut [f32], perm: &mut [i8]) {
    matvec_i8(false, w, acts, out, perm);
}

/// [`crate::MatvecI8`] with `sdot`. Runs the plain NEON path on a CPU
/// without `dotprod` and the scalar reference for shapes not covered.
///
/// Like the AVX2 kernels, W8 relies on the contract of [`ActsI8`]: `sums`
/// holds each group's activation code sum.
pub fn matvec_i8_sdot(w: QuantMatrix<'_>, acts: &ActsI8<'_>, out: &mut [f32], perm: &mut [i8]) {
    matvec_i8(dotprod_available(), w, acts, out, perm);
}

/// Both sets' [`crate::MatvecI8`]: the `sdot` kernels if `dot`, else
/// plain NEON.
pub(super) fn matvec_i8(dot: bool, w: QuantMatrix<'_>, acts: &ActsI8<'_>, out: &mut [f32], perm: &mut [i8]) {
    let Some(shape) = IntShape::for_matvec_or_reference(w, acts, out, perm.len()) else { return };
    let (matrix, cols, xq, x_scales, x_sums) = (w.bytes, w.cols, acts.q, acts.scales, acts.sums);
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
pub(super) fn rows_permuted(
    dot: bool,
    kind: group::Kind,
    shape: &IntShape,
    matrix: &[u8],
    acts: &ActsI8<'_>,
    out: &mut [f32],
) {
    let groups = shape.groups;
    let acts = ActsI8 {
        q: &acts.q[..groups * shape.group],
        scales: &acts.scales[..groups],
        sums: &acts.sums[..groups],
    };
    // SAFETY: `acts` holds `groups * group` codes and `groups` scales and
    // sums; `matrix` every row `out` asks for (callers checked its length
    // with IntShape::for_matvec, which also checked that the group is a
    // multiple of 32; `Kind` picks 64-code units only for multiples of 64);
    // `sdot` runs only when the CPU has `dotprod` (the callers pass
    // `dotprod_available()` as `dot`).
    unsafe {
        if dot {
            group::rows_sdot(kind, shape, matrix, &acts, out);
        } else {
            group::rows_mull(kind, shape, matrix, &acts, out);
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
pub(super) unsafe fn permute_activations(kind: group::Kind, xq: &[i8], perm: &mut [i8]) {
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
                    for (i, part) in [v.0, v.1, v.2, v.3].into_iter().enumerate() {
                        vst1q_s8(d.add(16 * i), part);
                    }
                }
                Kind::W2 => {
                    let v = vld4_s8(s);
                    for (i, part) in [v.0, v.1, v.2, v.3].into_iter().enumerate() {
                        vst1_s8(d.add(8 * i), part);
                    }
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
