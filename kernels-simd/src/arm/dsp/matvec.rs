//! The DSP integer matrix-vector product: activations reordered once,
//! rows two at a time through the shared Cortex-M row driver.

use super::f16_to_f32;
use super::group::{group_dot_w2, group_dot_w4, group_dot_w8};
use crate::arm::rows::{row_pairs_i8, RowsI8};
use crate::{ActsI8, IntShape, QuantMatrix};

/// Reorder activations so that, for a code word of `n = 32 / bits` codes,
/// activation word `m` holds `[a(2m), a(2m+1), a(2m+n/2), a(2m+n/2+1)]`:
/// `SXTB16` then yields exactly the pairs the code masks produce.
fn permute_activations(bits: u32, xq: &[i8], perm: &mut [i8]) {
    let n = (32 / bits) as usize;
    let half = n / 2;
    for (src, dst) in xq.chunks_exact(n).zip(perm.chunks_exact_mut(n)) {
        for (m, d) in dst.chunks_exact_mut(4).enumerate() {
            d[0] = src[2 * m];
            d[1] = src[2 * m + 1];
            d[2] = src[2 * m + half];
            d[3] = src[2 * m + half + 1];
        }
    }
}

/// See [`crate::MatvecI8`]. Falls back to the scalar reference for shapes
/// it does not cover (groups not a multiple of 32, short buffers).
pub fn matvec_i8(w: QuantMatrix<'_>, acts: &ActsI8<'_>, out: &mut [f32], perm: &mut [i8]) {
    let Some(shape) = IntShape::for_matvec_or_reference(w, acts, out, perm.len()) else { return };
    let IntShape { bits, group, groups, row_bytes, .. } = shape;
    let (matrix, cols, xq, x_scales, x_sums) = (w.bytes, w.cols, acts.q, acts.scales, acts.sums);
    let acts: &[i8] = if bits == 8 {
        &xq[..cols]
    } else {
        permute_activations(bits, &xq[..cols], &mut perm[..cols]);
        &perm[..cols]
    };
    let (matrix, x_scales, x_sums) =
        (&matrix[..row_bytes * out.len()], &x_scales[..groups], &x_sums[..groups]);
    let p = RowsI8 { matrix, shape, acts, x_scales, x_sums };
    macro_rules! run {
        ($dot:ident) => {
            row_pairs_i8(
                p,
                out,
                |[c0], acts| {
                    // SAFETY: a code slice holds group·bits/8 bytes and
                    // `acts` group bytes, group a multiple of 32 (checked
                    // above).
                    unsafe { $dot([c0.as_ptr()], acts.as_ptr() as *const u8, group) }
                },
                |[c0, c1], acts| {
                    // SAFETY: as above, for both rows.
                    unsafe { $dot([c0.as_ptr(), c1.as_ptr()], acts.as_ptr() as *const u8, group) }
                },
                f16_to_f32,
            )
        };
    }
    match bits {
        2 => run!(group_dot_w2),
        4 => run!(group_dot_w4),
        _ => run!(group_dot_w8),
    }
}
