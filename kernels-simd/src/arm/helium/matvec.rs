//! The Helium integer matrix-vector product: activations permuted once to
//! the unpacked lane order, rows through the shared Cortex-M row driver.

use super::float::f16_to_f32;
use super::group::{group_dot_w2, group_dot_w2_x2, group_dot_w4, group_dot_w8, group_dot_w8_x2};
use crate::arm::rows::{row_pairs_i8, rows_i8, RowsI8};
use crate::{ActsI8, IntShape, QuantMatrix};

/// Reorder one chunk of `n` activations for codes packed `p` per byte:
/// `dst[j·(n/p) + k] = src[p·k + j]`.
fn permute_chunk(p: usize, src: &[i8], dst: &mut [i8]) {
    let lanes = src.len() / p;
    for j in 0..p {
        for k in 0..lanes {
            dst[j * lanes + k] = src[p * k + j];
        }
    }
}

/// Reorder activations group by group to the lane order of the unpacked
/// codes: W4 in chunks of 32, W2 in chunks of 64 plus a 32 tail.
fn permute_activations(bits: u32, group: usize, xq: &[i8], perm: &mut [i8]) {
    let p = (8 / bits) as usize;
    let chunk = 16 * p;
    for (src, dst) in xq.chunks_exact(group).zip(perm.chunks_exact_mut(group)) {
        for (s, d) in src.chunks(chunk).zip(dst.chunks_mut(chunk)) {
            permute_chunk(p, s, d);
        }
    }
}

/// See [`crate::MatvecI8`]. Falls back to the scalar reference for shapes
/// it does not cover (groups not a multiple of 32, short buffers).
pub fn matvec_i8(w: QuantMatrix<'_>, acts: &ActsI8<'_>, out: &mut [f32], perm: &mut [i8]) {
    let Some(shape) = IntShape::for_matvec_or_reference(w, acts, out, perm.len()) else { return };
    let IntShape { bits, group, groups, row_bytes, .. } = shape;
    let (cols, xq) = (w.cols, acts.q);
    let (matrix, x_scales, x_sums) =
        (&w.bytes[..row_bytes * out.len()], &acts.scales[..groups], &acts.sums[..groups]);
    if bits == 8 || (bits == 2 && group % 64 == 0) {
        // Two rows per pass; W2 activations de-interleaved by the loads.
        let p = RowsI8 { matrix, shape, acts: &xq[..cols], x_scales, x_sums };
        row_pairs_i8(
            p,
            out,
            |[c0], acts| {
                // SAFETY: a code slice holds group·bits/8 bytes and `acts`
                // group bytes, group a multiple of 32 for W8 and of 64 for
                // W2 (checked above); the lone last row is read twice.
                let (c, a) = (c0.as_ptr(), acts.as_ptr());
                unsafe {
                    [if bits == 8 {
                        group_dot_w8_x2(c, c, a, group)
                    } else {
                        group_dot_w2_x2(c, c, a, group)
                    }[0]]
                }
            },
            |[c0, c1], acts| {
                // SAFETY: as above, for both rows.
                let (c0, c1, a) = (c0.as_ptr(), c1.as_ptr(), acts.as_ptr());
                unsafe {
                    if bits == 8 {
                        group_dot_w8_x2(c0, c1, a, group)
                    } else {
                        group_dot_w2_x2(c0, c1, a, group)
                    }
                }
            },
            f16_to_f32,
        );
        return;
    }
    let acts: &[i8] = if bits == 8 {
        &xq[..cols]
    } else {
        permute_activations(bits, group, &xq[..cols], &mut perm[..cols]);
        &perm[..cols]
    };
    let p = RowsI8 { matrix, shape, acts, x_scales, x_sums };
    macro_rules! run {
        ($dot:ident) => {
            rows_i8(
                p,
                out,
                |codes, acts| {
                    // SAFETY: `codes` holds group·bits/8 bytes and `acts`
                    // group bytes, group a multiple of 32 (checked above).
                    unsafe { $dot(codes.as_ptr(), acts.as_ptr(), group) }
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
