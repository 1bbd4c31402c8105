//! The Helium f16 matrix-vector product (scalar FPU with `VCVTB`).

use core::arch::asm;

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
