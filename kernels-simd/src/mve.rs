//! Armv8.1-M Helium (MVE) kernels (Cortex-M55/M85): `VMLADAVA`, the
//! multiply-accumulate across a 128-bit vector into a scalar register.
//!
//! - W8: 8 codes are loaded zero-extended to u16 lanes (`VLDRB.U16`), 8
//!   activations sign-extended to s16 (`VLDRB.S16`), and `VMLADAVA.S16` adds
//!   the 8 products to an i32. (MVE has no mixed-sign byte dot product, and
//!   a code up to 255 does not fit an s8 lane.)
//! - W4: 16 code bytes give the 16 low nibbles (`VAND`) and the 16 high
//!   nibbles (`VSHR.U8 #4`), all below 16 and so valid s8 lanes;
//!   `VMLADAVA.S8` adds 16 products each.
//! - W2: 16 code bytes give four vectors of 2-bit codes (shift + mask);
//!   a 32-code tail (groups of 32) uses u16/s16 lanes on 8 bytes.
//!
//! Lane `k` of an unpacked vector holds code `p·k + j` (`p` codes per byte,
//! `j` the vector), so activations are reordered once per matrix-vector
//! product into the caller's `perm` scratch to match. All sums are exact
//! i32, the per-group f32 arithmetic is the reference's expression in the
//! reference's order, so results are bit-identical.
//!
//! Only the integer kernel uses Helium arithmetic. MVE floating point
//! computes with the standard FPSCR value (subnormals flushed to zero,
//! default NaN), so on its own it cannot reproduce the IEEE reference bit
//! for bit: the f32 product is the scalar kernel, and the f16 product is
//! the reference's loop with the FPU's f16 conversion (`VCVTB`, IEEE with
//! the reset FPSCR) in place of the software one. (The f32 work of the
//! recurrent layers does run on MVE, in `crate::mve_f32`, which detects
//! every flush and NaN and hands those parts to the reference.)
//!
//! The inline assembly uses q0-q3 (aliases of s0-s15) and declares them
//! clobbered; pointers and counters are pinned to r1-r3 because the
//! widening loads only accept r0-r7 as base, and the accumulator to r0
//! because `VMLADAVA` needs an even register.

use crate::armv7em::{row_pairs_i8, rows_i8};
use crate::{ActsI8, IntShape, Kernels};
use core::arch::asm;
use eddy_quant::TensorFormat;

/// The Helium kernel set (compiled when the target has MVE).
pub static HELIUM: Kernels = Kernels {
    name: "helium",
    matvec_i8,
    matmat_i8: None,
    matmat_f16: None,
    matvec_f32: crate::scalar::matvec_f32,
    matvec_f16,
    kv_scores: crate::scalar::kv_scores,
    kv_mix: crate::scalar::kv_mix,
};

/// `asm!` with q0-q3 (s0-s15) declared clobbered; reads memory, writes
/// none, no stack.
macro_rules! mve_asm {
    ($($body:tt)*) => {
        asm!(
            $($body)*
            out("s0") _, out("s1") _, out("s2") _, out("s3") _,
            out("s4") _, out("s5") _, out("s6") _, out("s7") _,
            out("s8") _, out("s9") _, out("s10") _, out("s11") _,
            out("s12") _, out("s13") _, out("s14") _, out("s15") _,
            options(nostack, readonly),
        )
    };
}

/// `asm!` with all of q0-q7 (s0-s31) declared clobbered; reads memory,
/// writes none, no stack.
macro_rules! mve_asm_q0_q7 {
    ($($body:tt)*) => {
        asm!(
            $($body)*
            out("s0") _, out("s1") _, out("s2") _, out("s3") _,
            out("s4") _, out("s5") _, out("s6") _, out("s7") _,
            out("s8") _, out("s9") _, out("s10") _, out("s11") _,
            out("s12") _, out("s13") _, out("s14") _, out("s15") _,
            out("s16") _, out("s17") _, out("s18") _, out("s19") _,
            out("s20") _, out("s21") _, out("s22") _, out("s23") _,
            out("s24") _, out("s25") _, out("s26") _, out("s27") _,
            out("s28") _, out("s29") _, out("s30") _, out("s31") _,
            options(nostack, readonly),
        )
    };
}

/// f16 bits to f32 with the FPU's `VCVTB.F32.F16` (Armv8.1-M cores with
/// MVE have the FP16 conversions). Exact; with the reset FPSCR (no
/// default-NaN mode) a NaN keeps its payload and gets the quiet bit, as in
/// `half`'s conversion that the reference uses (the cross-check feeds raw
/// random headers, NaNs included).
#[inline(always)]
pub fn f16_to_f32(h: u16) -> f32 {
    let r: f32;
    // SAFETY: register-only FPU instructions (FP is enabled in CPACR before
    // main by the runtime); no memory, stack or condition flags touched.
    unsafe {
        asm!("vmov {r}, {h}", "vcvtb.f32.f16 {r}, {r}", h = in(reg) h as u32, r = out(sreg) r,
             options(pure, nomem, nostack, preserves_flags));
    }
    r
}

/// See [`crate::MatvecF16`]: `eddy_quant::dot_f16_f32` per row, with
/// [`f16_to_f32`] (one `VCVTB`) instead of the software conversion, which
/// costs ~20 instructions per weight; scalar FPU arithmetic in the
/// reference's lane order, so the result is bit-identical.
pub fn matvec_f16(matrix: &[u16], cols: usize, x: &[f32], out: &mut [f32]) {
    let chunks = cols / eddy_quant::F32_DOT_LANES;
    if chunks > 0 && cols % eddy_quant::F32_DOT_LANES == 0 && x.len() >= cols {
        for (o, row) in out.iter_mut().zip(matrix.chunks_exact(cols)) {
            // SAFETY: `row` holds `cols` = 8·chunks f16 values and `x` at
            // least as many f32s.
            *o = unsafe { dot_f16_row(row.as_ptr(), x.as_ptr(), chunks) };
        }
        return;
    }
    for (o, row) in out.iter_mut().zip(matrix.chunks_exact(cols.max(1))) {
        *o = eddy_quant::dot_f16_f32_with(row, x, f16_to_f32);
    }
}

/// `eddy_quant::dot_f16_f32` of one row of `8·chunks` weights, in
/// assembly: lane `l` accumulates (from +0.0) the products of columns
/// `l (mod 8)` in s16-s23, summed pairwise at the end in the reference's
/// order. Two f16 per load, widened by `VCVTB`/`VCVTT`; scalar FPU
/// arithmetic (IEEE with the reset FPSCR), no fused multiply-add, so the
/// result is the reference's bit for bit.
///
/// # Safety
/// `w` must point to `8·chunks` readable u16s, `x` (4-byte aligned) to
/// as many f32s; `chunks >= 1`.
unsafe fn dot_f16_row(w: *const u16, x: *const f32, chunks: usize) -> f32 {
    let sum: f32;
    // SAFETY: each of the `chunks` iterations reads 16 bytes at `w` and 32
    // at `x`, within what the caller guarantees; FPU registers only
    // (s0-s5, s16-s23 declared clobbered), no stack.
    unsafe {
        asm!(
            "movs {t}, #0",
            "vmov s16, {t}",
            "vmov s17, {t}",
            "vmov s18, {t}",
            "vmov s19, {t}",
            "vmov s20, {t}",
            "vmov s21, {t}",
            "vmov s22, {t}",
            "vmov s23, {t}",
            "2:",
            "ldr {t}, [{w}], #4",
            "vmov s0, {t}",
            "vldmia {x}!, {{s4, s5}}",
            "vcvtb.f32.f16 s1, s0",
            "vcvtt.f32.f16 s2, s0",
            "vmul.f32 s1, s1, s4",
            "vmul.f32 s2, s2, s5",
            "vadd.f32 s16, s16, s1",
            "vadd.f32 s17, s17, s2",
            "ldr {t}, [{w}], #4",
            "vmov s0, {t}",
            "vldmia {x}!, {{s4, s5}}",
            "vcvtb.f32.f16 s1, s0",
            "vcvtt.f32.f16 s2, s0",
            "vmul.f32 s1, s1, s4",
            "vmul.f32 s2, s2, s5",
            "vadd.f32 s18, s18, s1",
            "vadd.f32 s19, s19, s2",
            "ldr {t}, [{w}], #4",
            "vmov s0, {t}",
            "vldmia {x}!, {{s4, s5}}",
            "vcvtb.f32.f16 s1, s0",
            "vcvtt.f32.f16 s2, s0",
            "vmul.f32 s1, s1, s4",
            "vmul.f32 s2, s2, s5",
            "vadd.f32 s20, s20, s1",
            "vadd.f32 s21, s21, s2",
            "ldr {t}, [{w}], #4",
            "vmov s0, {t}",
            "vldmia {x}!, {{s4, s5}}",
            "vcvtb.f32.f16 s1, s0",
            "vcvtt.f32.f16 s2, s0",
            "vmul.f32 s1, s1, s4",
            "vmul.f32 s2, s2, s5",
            "vadd.f32 s22, s22, s1",
            "vadd.f32 s23, s23, s2",
            "subs {n}, #1",
            "bne 2b",
            // ((a0 + a4) + (a2 + a6)) + ((a1 + a5) + (a3 + a7))
            "vadd.f32 s0, s16, s20",
            "vadd.f32 s1, s18, s22",
            "vadd.f32 s0, s0, s1",
            "vadd.f32 s2, s17, s21",
            "vadd.f32 s3, s19, s23",
            "vadd.f32 s2, s2, s3",
            "vadd.f32 s0, s0, s2",
            t = out(reg) _,
            w = inout(reg) w => _,
            x = inout(reg) x => _,
            n = inout(reg) chunks => _,
            out("s0") sum,
            out("s1") _, out("s2") _, out("s3") _, out("s4") _, out("s5") _,
            out("s16") _, out("s17") _, out("s18") _, out("s19") _,
            out("s20") _, out("s21") _, out("s22") _, out("s23") _,
            options(nostack, readonly),
        );
    }
    sum
}

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

/// Σ code·act over one W8 group of `n` codes (`n` a multiple of 32).
///
/// # Safety
/// `codes` and `acts` must hold at least `n` bytes each, `n >= 32`.
unsafe fn group_dot_w8(codes: *const u8, acts: *const i8, n: usize) -> i32 {
    let mut acc = 0i32;
    // SAFETY: the caller guarantees n readable bytes at both pointers; the
    // loop reads exactly n bytes from each (n / 32 iterations of 4 × 8).
    unsafe {
        mve_asm!(
            "2:",
            "vldrb.u16 q0, [r1], #8",
            "vldrb.s16 q1, [r2], #8",
            "vmladava.s16 r0, q0, q1",
            "vldrb.u16 q2, [r1], #8",
            "vldrb.s16 q3, [r2], #8",
            "vmladava.s16 r0, q2, q3",
            "vldrb.u16 q0, [r1], #8",
            "vldrb.s16 q1, [r2], #8",
            "vmladava.s16 r0, q0, q1",
            "vldrb.u16 q2, [r1], #8",
            "vldrb.s16 q3, [r2], #8",
            "vmladava.s16 r0, q2, q3",
            "subs r3, #1",
            "bne 2b",
            inout("r0") acc,
            inout("r1") codes => _,
            inout("r2") acts => _,
            inout("r3") n / 32 => _,
        );
    }
    acc
}

/// Σ code·act over one W4 group of `n` codes (`n` a multiple of 32), with
/// activations permuted per 32.
///
/// # Safety
/// `codes` must hold `n / 2` bytes and `acts` `n`, `n >= 32`.
unsafe fn group_dot_w4(codes: *const u8, acts: *const i8, n: usize) -> i32 {
    let mut acc = 0i32;
    // SAFETY: n / 32 iterations each read 16 code bytes and 32 activation
    // bytes, exactly what the caller guarantees.
    unsafe {
        mve_asm!(
            "vmov.i8 q3, #15",
            "2:",
            "vldrb.u8 q0, [r1], #16",
            "vand q1, q0, q3",
            "vshr.u8 q0, q0, #4",
            "vldrb.s8 q2, [r2], #16",
            "vmladava.s8 r0, q1, q2",
            "vldrb.s8 q2, [r2], #16",
            "vmladava.s8 r0, q0, q2",
            "subs r3, #1",
            "bne 2b",
            inout("r0") acc,
            inout("r1") codes => _,
            inout("r2") acts => _,
            inout("r3") n / 32 => _,
        );
    }
    acc
}

/// Σ code·act over one W2 group of `n` codes (`n` a multiple of 32), with
/// activations permuted per 64 (and per 32 for a tail).
///
/// # Safety
/// `codes` must hold `n / 4` bytes and `acts` `n`, `n >= 32`.
unsafe fn group_dot_w2(codes: *const u8, acts: *const i8, n: usize) -> i32 {
    let mut acc = 0i32;
    let (blocks, tail) = (n / 64, n % 64 != 0);
    let (mut c, mut a) = (codes, acts);
    if blocks > 0 {
        // SAFETY: `blocks` iterations read 16 code bytes and 64 activation
        // bytes each, within the caller's n / 4 and n bytes.
        unsafe {
            mve_asm!(
                "vmov.i8 q3, #3",
                "2:",
                "vldrb.u8 q0, [r1], #16",
                "vand q1, q0, q3",
                "vldrb.s8 q2, [r2], #16",
                "vmladava.s8 r0, q1, q2",
                "vshr.u8 q1, q0, #2",
                "vand q1, q1, q3",
                "vldrb.s8 q2, [r2], #16",
                "vmladava.s8 r0, q1, q2",
                "vshr.u8 q1, q0, #4",
                "vand q1, q1, q3",
                "vldrb.s8 q2, [r2], #16",
                "vmladava.s8 r0, q1, q2",
                "vshr.u8 q1, q0, #6",
                "vldrb.s8 q2, [r2], #16",
                "vmladava.s8 r0, q1, q2",
                "subs r3, #1",
                "bne 2b",
                inout("r0") acc,
                inout("r1") c,
                inout("r2") a,
                inout("r3") blocks => _,
            );
        }
    }
    if tail {
        // SAFETY: the last 32 codes: 8 code bytes at `c` and 32 activation
        // bytes at `a`, both inside the caller's buffers.
        unsafe {
            mve_asm!(
                "vmov.i16 q3, #3",
                "vldrb.u16 q0, [r1]",
                "vand q1, q0, q3",
                "vldrb.s16 q2, [r2], #8",
                "vmladava.s16 r0, q1, q2",
                "vshr.u16 q1, q0, #2",
                "vand q1, q1, q3",
                "vldrb.s16 q2, [r2], #8",
                "vmladava.s16 r0, q1, q2",
                "vshr.u16 q1, q0, #4",
                "vand q1, q1, q3",
                "vldrb.s16 q2, [r2], #8",
                "vmladava.s16 r0, q1, q2",
                "vshr.u16 q1, q0, #6",
                "vldrb.s16 q2, [r2]",
                "vmladava.s16 r0, q1, q2",
                inout("r0") acc,
                in("r1") c,
                inout("r2") a => _,
            );
        }
    }
    acc
}

/// Σ code·act over one W2 group of `n` codes (`n` a multiple of 64) for
/// two rows at once, activations in their natural order: `VLD40..VLD43`
/// de-interleave 64 activations into four vectors, vector `j` lane `k`
/// holding activation `4k + j`, the lane order of the codes at bits
/// `2j..2j+2` of 16 code bytes. No reordering pass, and the activations
/// are loaded once for both rows.
///
/// # Safety
/// `c0` and `c1` must hold `n / 4` bytes each and `acts` `n`, `n >= 64`.
unsafe fn group_dot_w2_x2(c0: *const u8, c1: *const u8, acts: *const i8, n: usize) -> [i32; 2] {
    let (mut acc0, mut acc1) = (0i32, 0i32);
    // SAFETY: n / 64 iterations each read 16 bytes at c0 and at c1 and 64
    // at acts, exactly what the caller guarantees.
    unsafe {
        mve_asm_q0_q7!(
            "vmov.i8 q3, #3",
            "2:",
            "vld40.8 {{q4, q5, q6, q7}}, [r2]",
            "vld41.8 {{q4, q5, q6, q7}}, [r2]",
            "vld42.8 {{q4, q5, q6, q7}}, [r2]",
            "vld43.8 {{q4, q5, q6, q7}}, [r2]!",
            "vldrb.u8 q0, [r1], #16",
            "vldrb.u8 q1, [r5], #16",
            "vand q2, q0, q3",
            "vmladava.s8 r0, q2, q4",
            "vand q2, q1, q3",
            "vmladava.s8 r4, q2, q4",
            "vshr.u8 q2, q0, #2",
            "vand q2, q2, q3",
            "vmladava.s8 r0, q2, q5",
            "vshr.u8 q2, q1, #2",
            "vand q2, q2, q3",
            "vmladava.s8 r4, q2, q5",
            "vshr.u8 q2, q0, #4",
            "vand q2, q2, q3",
            "vmladava.s8 r0, q2, q6",
            "vshr.u8 q2, q1, #4",
            "vand q2, q2, q3",
            "vmladava.s8 r4, q2, q6",
            "vshr.u8 q2, q0, #6",
            "vmladava.s8 r0, q2, q7",
            "vshr.u8 q2, q1, #6",
            "vmladava.s8 r4, q2, q7",
            "subs r3, #1",
            "bne 2b",
            inout("r0") acc0,
            inout("r4") acc1,
            inout("r1") c0 => _,
            inout("r5") c1 => _,
            inout("r2") acts => _,
            inout("r3") n / 64 => _,
        );
    }
    [acc0, acc1]
}

/// Σ code·act over one W8 group of `n` codes (`n` a multiple of 32) for
/// two rows at once. A code `c` (0..=255) does not fit an s8 lane, but
/// `c ^ 0x80` read as s8 is `c - 128`, so `VMLADAVA.S8` gives
/// `Σ (c - 128)·a` sixteen lanes at a time and `VADDVA.S8` gives `Σ a`;
/// `Σ c·a = Σ (c - 128)·a + 128·Σ a`, exact in i32 (|Σ c·a| < 2^24 for
/// the largest group). The activations are loaded once for both rows.
///
/// # Safety
/// `c0`, `c1` and `acts` must hold `n` bytes each, `n >= 32`.
unsafe fn group_dot_w8_x2(c0: *const u8, c1: *const u8, acts: *const i8, n: usize) -> [i32; 2] {
    let (mut acc0, mut acc1, mut act_sum) = (0i32, 0i32, 0i32);
    // SAFETY: n / 32 iterations each read 32 bytes at c0, c1 and acts,
    // exactly what the caller guarantees.
    unsafe {
        mve_asm!(
            "vmov.i8 q3, #0x80",
            "2:",
            "vldrb.u8 q2, [r2], #16",
            "vldrb.u8 q0, [r1], #16",
            "vldrb.u8 q1, [r5], #16",
            "veor q0, q0, q3",
            "veor q1, q1, q3",
            "vmladava.s8 r0, q0, q2",
            "vmladava.s8 r4, q1, q2",
            "vaddva.s8 r8, q2",
            "vldrb.u8 q2, [r2], #16",
            "vldrb.u8 q0, [r1], #16",
            "vldrb.u8 q1, [r5], #16",
            "veor q0, q0, q3",
            "veor q1, q1, q3",
            "vmladava.s8 r0, q0, q2",
            "vmladava.s8 r4, q1, q2",
            "vaddva.s8 r8, q2",
            "subs r3, #1",
            "bne 2b",
            inout("r0") acc0,
            inout("r4") acc1,
            inout("r8") act_sum,
            inout("r1") c0 => _,
            inout("r5") c1 => _,
            inout("r2") acts => _,
            inout("r3") n / 32 => _,
        );
    }
    let offset = act_sum.wrapping_mul(128);
    [acc0.wrapping_add(offset), acc1.wrapping_add(offset)]
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
    if bits == 8 || (bits == 2 && group % 64 == 0) {
        // Two rows per pass; W2 activations de-interleaved by the loads.
        let (m, a, xs, xsum) =
            (&matrix[..row_bytes * out.len()], &xq[..cols], &x_scales[..groups], &x_sums[..groups]);
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
    let (m, a, xs, xsum) = (&matrix[..row_bytes * out.len()], acts, &x_scales[..groups], &x_sums[..groups]);
    match bits {
        2 => rows_i8(
            m,
            row_bytes,
            group_bytes,
            a,
            group,
            xs,
            xsum,
            out,
            |codes, acts| {
                // SAFETY: `codes` holds group·bits/8 bytes and `acts` group
                // bytes, group a multiple of 32 (checked above).
                unsafe { group_dot_w2(codes.as_ptr(), acts.as_ptr(), group) }
            },
            f16_to_f32,
        ),
        4 => rows_i8(
            m,
            row_bytes,
            group_bytes,
            a,
            group,
            xs,
            xsum,
            out,
            |codes, acts| {
                // SAFETY: `codes` holds group·bits/8 bytes and `acts` group
                // bytes, group a multiple of 32 (checked above).
                unsafe { group_dot_w4(codes.as_ptr(), acts.as_ptr(), group) }
            },
            f16_to_f32,
        ),
        _ => rows_i8(
            m,
            row_bytes,
            group_bytes,
            a,
            group,
            xs,
            xsum,
            out,
            |codes, acts| {
                // SAFETY: `codes` holds group·bits/8 bytes and `acts` group
                // bytes, group a multiple of 32 (checked above).
                unsafe { group_dot_w8(codes.as_ptr(), acts.as_ptr(), group) }
            },
            f16_to_f32,
        ),
    }
}
