//! The DSP integer matrix-vector product: activations reordered once,
//! rows two at a time through the shared Cortex-M row driver.

use super::f16_to_f32;
use super::group::{group_dot_w2, group_dot_w4, group_dot_w8};
use crate::arm::rows::IntRows;
use crate::{ActsI8, IntShape};
use eddy_quant::TensorFormat;

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
pub fn matvec_i8(
    format: TensorFormat,
    matrix: &[u8],
    cols: usize,
    acts: &ActsI8<'_>,
    out: &mut [f32],
    perm: &mut [i8],
) {
    // W8 needs no reordering.
    let reorder = |s: &IntShape, xq: &[i8], perm: &mut [i8]| {
        s.bits != 8 && {
            permute_activations(s.bits, xq, perm);
            true
        }
    };
    let Some(rows) = IntRows::prepare((format, matrix, cols), acts, out, perm, reorder) else {
        return;
    };
    let group = rows.group;
    macro_rules! run {
        ($dot:ident) => {
            rows.row_pairs(
                out,
                |[c0], acts| {
                    // SAFETY: a code slice holds group·bits/8 bytes and
                    // `acts` group bytes, group a multiple of 32 (checked
                    // by `prepare`).
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
    match rows.bits {
        2 => run!(group_dot_w2),
        4 => run!(group_dot_w4),
        _ => run!(group_dot_w8),
    }
}
