//! Armv7E-M kernels (Cortex-M4/M7, and any core with the DSP extension):
//! the dual 16-bit multiply-accumulate `SMLAD`.
//!
//! One 32-bit word of packed codes is split into halfword pairs with a
//! mask (`(w >> s) & 0x000m000m` puts one code in each halfword), and four
//! int8 activations are sign-extended into two halfword pairs with
//! `SXTB16` (bytes 0 and 2) and `SXTB16 ..., ROR #8` (bytes 1 and 3).
//! `SMLAD` then adds both products to an i32 accumulator. Codes are at most
//! 255 and activations at most 127 in magnitude, so every product and every
//! group sum is exact, as in the reference.
//!
//! The pairs a word yields are codes `(i, i + n/2)` for a word of `n`
//! codes, so the activations are reordered once per matrix-vector product
//! (into the caller's `perm` scratch) so that each activation word lines up
//! with two such pairs. W8 needs no reordering.
//!
//! Rows are processed two at a time so that each activation word is
//! loaded and sign-extended once for both (W2's pair step is one block of
//! assembly: as separate instructions the compiler spilled the
//! sign-extended pairs). Group headers are widened from f16 with a short
//! exact integer path for normal numbers.
//!
//! Only the integer kernel is specialised: f32/f16 matrix-vector products
//! use the scalar kernels (they are bit-exact by definition).

use crate::{ActsI8, IntShape, Kernels};
use core::arch::asm;
use eddy_quant::{TensorFormat, GROUP_HEADER_BYTES};

/// The DSP-extension kernel set (compiled when the target has `dsp`).
pub static DSP: Kernels = Kernels {
    name: "dsp",
    matvec_i8,
    matmat_i8: None,
    matmat_f16: None,
    matvec_f32: crate::scalar::matvec_f32,
    matvec_f16: crate::scalar::matvec_f16,
    kv_scores: crate::scalar::kv_scores,
    kv_mix: crate::scalar::kv_mix,
};

/// `acc + lo(a)·lo(b) + hi(a)·hi(b)` on signed halfwords.
#[inline(always)]
fn smlad(a: u32, b: u32, acc: i32) -> i32 {
    let r: i32;
    // SAFETY: SMLAD reads and writes registers only; the DSP extension is
    // present (this module is compiled only with `eddy_dsp`). It may set
    // the sticky Q flag, so flags are not declared preserved.
    unsafe {
        asm!("smlad {r}, {a}, {b}, {acc}", r = lateout(reg) r, a = in(reg) a, b = in(reg) b,
             acc = in(reg) acc, options(pure, nomem, nostack));
    }
    r
}

/// Bytes 0 and 2 of `x`, sign-extended to halfwords.
#[inline(always)]
fn sxtb16(x: u32) -> u32 {
    let r: u32;
    // SAFETY: register-only DSP instruction, no flags touched.
    unsafe {
        asm!("sxtb16 {r}, {x}", r = lateout(reg) r, x = in(reg) x,
             options(pure, nomem, nostack, preserves_flags));
    }
    r
}

/// Bytes 1 and 3 of `x`, sign-extended to halfwords.
#[inline(always)]
fn sxtb16_ror8(x: u32) -> u32 {
    let r: u32;
    // SAFETY: register-only DSP instruction, no flags touched.
    unsafe {
        asm!("sxtb16 {r}, {x}, ror #8", r = lateout(reg) r, x = in(reg) x,
             options(pure, nomem, nostack, preserves_flags));
    }
    r
}

/// Bytes 0 and 2 of `x`, zero-extended to halfwords.
#[inline(always)]
fn uxtb16(x: u32) -> u32 {
    let r: u32;
    // SAFETY: register-only DSP instruction, no flags touched.
    unsafe {
        asm!("uxtb16 {r}, {x}", r = lateout(reg) r, x = in(reg) x,
             options(pure, nomem, nostack, preserves_flags));
    }
    r
}

/// Bytes 1 and 3 of `x`, zero-extended to halfwords.
#[inline(always)]
fn uxtb16_ror8(x: u32) -> u32 {
    let r: u32;
    // SAFETY: register-only DSP instruction, no flags touched.
    unsafe {
        asm!("uxtb16 {r}, {x}, ror #8", r = lateout(reg) r, x = in(reg) x,
             options(pure, nomem, nostack, preserves_flags));
    }
    r
}

/// Little-endian word at `p`, any alignment (Armv7-M `LDR` allows
/// unaligned addresses on normal memory).
///
/// # Safety
/// `p .. p + 4` must be readable.
/// f16 bits to f32, the same value `half` (and so the reference) gives:
/// normal numbers by rebiasing the exponent (a few integer instructions,
/// exact), zeros, subnormals, infinities and NaNs through `half`.
#[inline(always)]
pub fn f16_to_f32(h: u16) -> f32 {
    let h32 = h as u32;
    let exp = h32 & 0x7c00;
    if exp != 0 && exp != 0x7c00 {
        f32::from_bits(((h32 & 0x8000) << 16) | (((h32 & 0x7fff) << 13) + ((127 - 15) << 23)))
    } else {
        half::f16::from_bits(h).to_f32()
    }
}

/// The per-row driver shared by the Cortex-M sets: for each row, each
/// group's exact integer dot `dot(codes, acts)` (group·bits/8 code bytes,
/// `group` activations) and its f16 header widened by `f16_to_f32` (which
/// must give `half`'s exact value), combined in f32 exactly as
/// `eddy_quant::dot_row_i8` does, in the same order.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
pub(crate) fn rows_i8(
    matrix: &[u8],
    row_bytes: usize,
    group_bytes: usize,
    acts: &[i8],
    group: usize,
    x_scales: &[f32],
    x_sums: &[i32],
    out: &mut [f32],
    dot: impl Fn(&[u8], &[i8]) -> i32,
    f16_to_f32: impl Fn(u16) -> f32,
) {
    for (o, row) in out.iter_mut().zip(matrix.chunks_exact(row_bytes)) {
        let mut result = 0f32;
        for ((gbytes, a), (&s, &sum)) in
            row.chunks_exact(group_bytes).zip(acts.chunks_exact(group)).zip(x_scales.iter().zip(x_sums))
        {
            let acc = dot(&gbytes[GROUP_HEADER_BYTES..], a);
            let scale = f16_to_f32(u16::from_le_bytes([gbytes[0], gbytes[1]]));
            let min = f16_to_f32(u16::from_le_bytes([gbytes[2], gbytes[3]]));
            // Same expression and order as eddy_quant::dot_row_i8.
            result += s * (scale * acc as f32 + min * sum as f32);
        }
        *o = result;
    }
}

#[inline(always)]
unsafe fn word(p: *const u8) -> u32 {
    // SAFETY: the caller guarantees 4 readable bytes.
    u32::from_le(unsafe { core::ptr::read_unaligned(p as *const u32) })
}

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

/// Σ code·act over one W8 group of `n` codes for `R` rows at once
/// (activations in order, sign-extended once for all rows).
///
/// # Safety
/// Each `c[r]` and `a` must point to `n` readable bytes, `n` a multiple
/// of 8.
#[inline(always)]
unsafe fn group_dot_w8<const R: usize>(mut c: [*const u8; R], mut a: *const u8, n: usize) -> [i32; R] {
    let mut acc = [0i32; R];
    for _ in 0..n / 8 {
        // SAFETY: each of the n / 8 iterations reads 8 bytes at a and at
        // every c[r], then advances them by 8.
        let (a0, a1) = unsafe { (word(a), word(a.add(4))) };
        let (x0, x1, x2, x3) = (sxtb16(a0), sxtb16_ror8(a0), sxtb16(a1), sxtb16_ror8(a1));
        for (acc, c) in acc.iter_mut().zip(c.iter_mut()) {
            // SAFETY: as above.
            let (c0, c1) = unsafe { (word(*c), word(c.add(4))) };
            *acc = smlad(uxtb16(c0), x0, *acc);
            *acc = smlad(uxtb16_ror8(c0), x1, *acc);
            *acc = smlad(uxtb16(c1), x2, *acc);
            *acc = smlad(uxtb16_ror8(c1), x3, *acc);
            // SAFETY: stays within (or one past) the row's group.
            *c = unsafe { c.add(8) };
        }
        // SAFETY: stays within (or one past) the activations.
        a = unsafe { a.add(8) };
    }
    acc
}

/// Σ code·act over one W4 group of `n` codes (8 codes per word) for `R`
/// rows at once, activations permuted.
///
/// # Safety
/// Each `c[r]` must point to `n / 2` readable bytes and `a` to `n`, `n` a
/// multiple of 8.
#[inline(always)]
unsafe fn group_dot_w4<const R: usize>(mut c: [*const u8; R], mut a: *const u8, n: usize) -> [i32; R] {
    const M: u32 = 0x000f_000f;
    let mut acc = [0i32; R];
    for _ in 0..n / 8 {
        // SAFETY: each of the n / 8 iterations reads 8 activation bytes
        // and 4 code bytes per row, then advances past them.
        let (a0, a1) = unsafe { (word(a), word(a.add(4))) };
        let (x0, x1, x2, x3) = (sxtb16(a0), sxtb16_ror8(a0), sxtb16(a1), sxtb16_ror8(a1));
        for (acc, c) in acc.iter_mut().zip(c.iter_mut()) {
            // SAFETY: as above.
            let w = unsafe { word(*c) };
            *acc = smlad(w & M, x0, *acc);
            *acc = smlad((w >> 4) & M, x1, *acc);
            *acc = smlad((w >> 8) & M, x2, *acc);
            *acc = smlad((w >> 12) & M, x3, *acc);
            // SAFETY: stays within (or one past) the row's group.
            *c = unsafe { c.add(4) };
        }
        // SAFETY: stays within (or one past) the activations.
        a = unsafe { a.add(8) };
    }
    acc
}

/// Σ code·act over one W2 group of `n` codes (16 codes per word) for `R`
/// rows at once, activations permuted.
///
/// # Safety
/// Each `c[r]` must point to `n / 4` readable bytes and `a` to `n`, `n` a
/// multiple of 16.
#[inline(always)]
unsafe fn group_dot_w2<const R: usize>(mut c: [*const u8; R], mut a: *const u8, n: usize) -> [i32; R] {
    if R == 2 {
        // SAFETY: the caller's contract, for two rows.
        let [acc0, acc1] = unsafe { group_dot_w2_pair(c[0], c[1], a, n) };
        let mut acc = [0i32; R];
        (acc[0], acc[1]) = (acc0, acc1);
        return acc;
    }
    const M: u32 = 0x0003_0003;
    let mut acc = [0i32; R];
    for _ in 0..n / 16 {
        let mut w = [0u32; R];
        for (w, c) in w.iter_mut().zip(c.iter_mut()) {
            // SAFETY: each of the n / 16 iterations reads 4 code bytes per
            // row and advances past them.
            *w = unsafe { word(*c) };
            // SAFETY: stays within (or one past) the row's group.
            *c = unsafe { c.add(4) };
        }
        for k in 0..4 {
            // SAFETY: 16 activation bytes per iteration (k < 4 words).
            let ak = unsafe { word(a.add(4 * k)) };
            let (x0, x1) = (sxtb16(ak), sxtb16_ror8(ak));
            for (acc, w) in acc.iter_mut().zip(w) {
                *acc = smlad((w >> (4 * k)) & M, x0, *acc);
                *acc = smlad((w >> (4 * k + 2)) & M, x1, *acc);
            }
        }
        // SAFETY: stays within (or one past) the activations.
        a = unsafe { a.add(16) };
    }
    acc
}

/// Two W2 rows against the same 16 permuted activations per step, in one
/// block of assembly so that each sign-extended activation pair is used
/// for both rows straight from a register (the compiler, given the same
/// steps as separate instructions, spilled them to the stack).
///
/// # Safety
/// `c0` and `c1` must point to `n / 4` readable bytes and `a` to `n`, `n`
/// a multiple of 16.
#[inline(always)]
unsafe fn group_dot_w2_pair(mut c0: *const u8, mut c1: *const u8, mut a: *const u8, n: usize) -> [i32; 2] {
    let (mut acc0, mut acc1) = (0i32, 0i32);
    for _ in 0..n / 16 {
        // SAFETY: each of the n / 16 iterations reads 4 code bytes per row
        // and 16 activation bytes.
        let (w0, w1) = unsafe { (word(c0), word(c1)) };
        // SAFETY: reads the 16 bytes at `a` (LDR allows any alignment on
        // Armv7-M normal memory), writes registers only; DSP instructions
        // are present (module compiled with `eddy_dsp`). SMLAD may set the
        // sticky Q flag, so flags are not declared preserved.
        unsafe {
            asm!(
                "ldr {ak}, [{a}]",
                "sxtb16 {x0}, {ak}",
                "sxtb16 {x1}, {ak}, ror #8",
                "and {t}, {m}, {w0}",
                "smlad {acc0}, {t}, {x0}, {acc0}",
                "and {t}, {m}, {w0}, lsr #2",
                "smlad {acc0}, {t}, {x1}, {acc0}",
                "and {t}, {m}, {w1}",
                "smlad {acc1}, {t}, {x0}, {acc1}",
                "and {t}, {m}, {w1}, lsr #2",
                "smlad {acc1}, {t}, {x1}, {acc1}",
                "ldr {ak}, [{a}, #4]",
                "sxtb16 {x0}, {ak}",
                "sxtb16 {x1}, {ak}, ror #8",
                "and {t}, {m}, {w0}, lsr #4",
                "smlad {acc0}, {t}, {x0}, {acc0}",
                "and {t}, {m}, {w0}, lsr #6",
                "smlad {acc0}, {t}, {x1}, {acc0}",
                "and {t}, {m}, {w1}, lsr #4",
                "smlad {acc1}, {t}, {x0}, {acc1}",
                "and {t}, {m}, {w1}, lsr #6",
                "smlad {acc1}, {t}, {x1}, {acc1}",
                "ldr {ak}, [{a}, #8]",
                "sxtb16 {x0}, {ak}",
                "sxtb16 {x1}, {ak}, ror #8",
                "and {t}, {m}, {w0}, lsr #8",
                "smlad {acc0}, {t}, {x0}, {acc0}",
                "and {t}, {m}, {w0}, lsr #10",
                "smlad {acc0}, {t}, {x1}, {acc0}",
                "and {t}, {m}, {w1}, lsr #8",
                "smlad {acc1}, {t}, {x0}, {acc1}",
                "and {t}, {m}, {w1}, lsr #10",
                "smlad {acc1}, {t}, {x1}, {acc1}",
                "ldr {ak}, [{a}, #12]",
                "sxtb16 {x0}, {ak}",
                "sxtb16 {x1}, {ak}, ror #8",
                "and {t}, {m}, {w0}, lsr #12",
                "smlad {acc0}, {t}, {x0}, {acc0}",
                "and {t}, {m}, {w0}, lsr #14",
                "smlad {acc0}, {t}, {x1}, {acc0}",
                "and {t}, {m}, {w1}, lsr #12",
                "smlad {acc1}, {t}, {x0}, {acc1}",
                "and {t}, {m}, {w1}, lsr #14",
                "smlad {acc1}, {t}, {x1}, {acc1}",
                a = in(reg) a,
                w0 = in(reg) w0,
                w1 = in(reg) w1,
                m = in(reg) 0x0003_0003u32,
                acc0 = inout(reg) acc0,
                acc1 = inout(reg) acc1,
                ak = out(reg) _,
                x0 = out(reg) _,
                x1 = out(reg) _,
                t = out(reg) _,
                options(pure, readonly, nostack),
            );
        }
        // SAFETY: stays within (or one past) the buffers.
        unsafe { (c0, c1, a) = (c0.add(4), c1.add(4), a.add(16)) };
    }
    [acc0, acc1]
}

/// A group's f16 scale and minimum as f32.
#[inline(always)]
fn header(g: &[u8], f16_to_f32: impl Fn(u16) -> f32) -> (f32, f32) {
    (f16_to_f32(u16::from_le_bytes([g[0], g[1]])), f16_to_f32(u16::from_le_bytes([g[2], g[3]])))
}

/// Like [`rows_i8`], two rows at a time (activations unpacked once per
/// pair), the last odd row alone; per row the same operations in the
/// same order. `f16_to_f32` as for [`rows_i8`].
#[inline(always)]
#[allow(clippy::too_many_arguments)]
pub(crate) fn row_pairs_i8(
    matrix: &[u8],
    row_bytes: usize,
    group_bytes: usize,
    acts: &[i8],
    group: usize,
    x_scales: &[f32],
    x_sums: &[i32],
    out: &mut [f32],
    dot1: impl Fn([&[u8]; 1], &[i8]) -> [i32; 1],
    dot2: impl Fn([&[u8]; 2], &[i8]) -> [i32; 2],
    f16_to_f32: impl Fn(u16) -> f32 + Copy,
) {
    let pairs = out.len() / 2;
    let (paired_out, last_out) = out.split_at_mut(2 * pairs);
    for (o, rows) in paired_out.chunks_exact_mut(2).zip(matrix.chunks_exact(2 * row_bytes)) {
        let (row0, row1) = rows.split_at(row_bytes);
        let (mut result0, mut result1) = (0f32, 0f32);
        for (((g0, g1), a), (&s, &sum)) in row0
            .chunks_exact(group_bytes)
            .zip(row1.chunks_exact(group_bytes))
            .zip(acts.chunks_exact(group))
            .zip(x_scales.iter().zip(x_sums))
        {
            let [acc0, acc1] = dot2([&g0[GROUP_HEADER_BYTES..], &g1[GROUP_HEADER_BYTES..]], a);
            let (scale0, min0) = header(g0, f16_to_f32);
            let (scale1, min1) = header(g1, f16_to_f32);
            // Same expression and order as eddy_quant::dot_row_i8, per row.
            result0 += s * (scale0 * acc0 as f32 + min0 * sum as f32);
            result1 += s * (scale1 * acc1 as f32 + min1 * sum as f32);
        }
        o[0] = result0;
        o[1] = result1;
    }
    let last_row = &matrix[2 * pairs * row_bytes..];
    rows_i8(
        last_row,
        row_bytes,
        group_bytes,
        acts,
        group,
        x_scales,
        x_sums,
        last_out,
        |c, a| dot1([c], a)[0],
        f16_to_f32,
    );
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
    let (xq, x_scales, x_sums) = (acts.q, acts.scales, acts.sums);
    let Some(IntShape { bits, group, groups, group_bytes, row_bytes }) =
        IntShape::for_matvec(format, cols, out.len(), matrix, acts, perm.len())
    else {
        eddy_quant::matvec_i8(format, matrix, cols, xq, x_scales, x_sums, out);
        return;
    };
    let acts: &[i8] = if bits == 8 {
        &xq[..cols]
    } else {
        permute_activations(bits, &xq[..cols], &mut perm[..cols]);
        &perm[..cols]
    };
    let (m, a, xs, xsum) = (&matrix[..row_bytes * out.len()], acts, &x_scales[..groups], &x_sums[..groups]);
    macro_rules! run {
        ($dot:ident) => {
            row_pairs_i8(
                m,
                row_bytes,
                group_bytes,
                a,
                group,
                xs,
                xsum,
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
