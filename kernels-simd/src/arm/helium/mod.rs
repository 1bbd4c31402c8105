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
//! recurrent layers does run on MVE, in `scan` and `conv`, which detect
//! every flush and NaN and hand those parts to the reference.)
//!
//! The inline assembly uses q0-q3 (aliases of s0-s15) and declares them
//! clobbered; pointers and counters are pinned to r1-r3 because the
//! widening loads only accept r0-r7 as base, and the accumulator to r0
//! because `VMLADAVA` needs an even register.
//!
//! Helium (MVE) f32 kernels of the recurrent layers, bit-exact with the
//! scalar references: the Mamba-1 selective scan ([`scan`]) and the causal
//! convolution + SiLU ([`conv`]). Every value is the reference's
//! operations in the reference's order, without fused multiply-add; the
//! divisions (MVE has no divide) run on the scalar FPU, lane by lane.
//!
//! MVE floating point computes with the standard FPSCR value: subnormal
//! inputs and results are flushed to zero and a NaN result is the default
//! NaN, where the scalar FPU (IEEE, reset FPSCR) keeps subnormals and NaN
//! payloads. (Measured in QEMU: `VMUL.F32` of 1e-20 by 1e-20 gives 0 and
//! sets UFC, the scalar `VMUL.F32` the subnormal 0x000116c2.) Every other
//! result is the same IEEE value, so MVE reproduces the reference unless a
//! flush happened or a NaN appeared, and the kernels detect both:
//!
//! - a flush sets the cumulative FPSCR flag IDC (an input) or UFC (a
//!   result); the kernels clear the flags first and read them before they
//!   store a result;
//! - a NaN is looked for in the results (the scan's clamps keep NaN as
//!   `f32::clamp` does, so they are a compare and a predicated move, not
//!   `VMINNM`/`VMAXNM`, which would return the bound).
//!
//! The assembly then stops, the reference computes that part from the
//! inputs the kernel left untouched (or saved), and the kernel resumes
//! after it. Scalar FPU code inside a kernel can raise UFC too (an inexact
//! subnormal result): that only sends the part to the reference, it never
//! changes a result.
//!
//! The reference is whatever the compiler made of it: at `opt-level = 3`
//! with `-C target-cpu=cortex-m55`, LLVM auto-vectorizes the scan's state
//! loop and `eddy_quant::dot_f32` with MVE, so there the compiled "scalar"
//! reference flushes subnormals itself (the kernel tests run so); at the
//! demo firmware's `opt-level = "s"` it stays on the scalar FPU (IEEE).
//! The kernels equal the compiled reference in both cases: they hand every
//! flushed part to it.

pub use float::{f16_to_f32, matvec_f16};
pub use matvec::matvec_i8;

use crate::{Kernels, SCALAR};

/// The Helium kernel set (compiled when the target has MVE).
/// With MVE floating point (`eddy_mve_fp`) the selective scan and the
/// convolution + SiLU are Helium's too; activation quantization and the
/// rest are the reference's.
pub const HELIUM: Kernels = Kernels {
    name: "helium",
    matvec_i8,
    matvec_f16,
    #[cfg(eddy_mve_fp)]
    conv_silu: conv::conv_silu,
    #[cfg(eddy_mve_fp)]
    conv_silu_tokens: conv::conv_silu_tokens,
    #[cfg(eddy_mve_fp)]
    selective_scan: scan::selective_scan,
    #[cfg(eddy_mve_fp)]
    selective_scan_tokens: scan::selective_scan_tokens,
    ..SCALAR
};

/// `asm!` with q0-q3 (`q0_q3`, s0-s15) or all of q0-q7 (`q0_q7`,
/// s0-s31) declared clobbered and the given options: the clobber list is
/// written once here for every Helium kernel.
macro_rules! asm_clobbering {
    (q0_q3, [$($opt:ident),*], $($body:tt)*) => {
        asm!(
            $($body)*
            out("s0") _, out("s1") _, out("s2") _, out("s3") _,
            out("s4") _, out("s5") _, out("s6") _, out("s7") _,
            out("s8") _, out("s9") _, out("s10") _, out("s11") _,
            out("s12") _, out("s13") _, out("s14") _, out("s15") _,
            options($($opt),*),
        )
    };
    (q0_q7, [$($opt:ident),*], $($body:tt)*) => {
        asm_clobbering!(
            q0_q3, [$($opt),*], $($body)*
            out("s16") _, out("s17") _, out("s18") _, out("s19") _,
            out("s20") _, out("s21") _, out("s22") _, out("s23") _,
            out("s24") _, out("s25") _, out("s26") _, out("s27") _,
            out("s28") _, out("s29") _, out("s30") _, out("s31") _,
        )
    };
}

/// `asm!` with q0-q3 (s0-s15) declared clobbered; reads memory, writes
/// none, no stack.
macro_rules! mve_asm {
    ($($body:tt)*) => {
        asm_clobbering!(q0_q3, [nostack, readonly], $($body)*)
    };
}

/// `asm!` with all of q0-q7 (s0-s31) declared clobbered; reads memory,
/// writes none, no stack.
macro_rules! mve_asm_q0_q7 {
    ($($body:tt)*) => {
        asm_clobbering!(q0_q7, [nostack, readonly], $($body)*)
    };
}

#[cfg(eddy_mve_fp)]
use crate::math::{
    ATANH_C, EXP2_EIGHTHS_BIASED, EXP_C, EXP_MAX, EXP_MIN, LN2_8_HI, LN2_8_LO, LN_2, LOG2E_8, ROUND, SQRT_2,
};
#[cfg(eddy_mve_fp)]
/// f32 lanes per vector.
const LANES: usize = 4;
#[cfg(eddy_mve_fp)]
/// FPSCR cumulative flags IDC (input flushed) and UFC (underflow, which a
/// flushed result raises).
const FLUSHED: u32 = (1 << 7) | (1 << 3);

#[cfg(eddy_mve_fp)]
/// Constants of the assembly, in the order it loads them: `exp_fast`'s
/// clamp, range reduction and polynomial coefficients c3, c2 (two unused
/// slots after them keep the later offsets), `log1p_unit`'s and
/// softplus's, then `exp_fast`'s table of `2^(k/8)` (+68, for gathers;
/// biased, see `crate::math::EXP2_EIGHTHS_BIASED`).
static CONSTS: [f32; 25] = {
    let t = EXP2_EIGHTHS_BIASED;
    let e = f32::from_bits;
    [
        EXP_MIN,
        EXP_MAX,
        LOG2E_8,
        ROUND,
        LN2_8_HI,
        LN2_8_LO, // r0-r5 (ldm)
        EXP_C[1],
        EXP_C[0],
        0.0,
        0.0, // +24: c3, c2, unused
        SQRT_2,
        LN_2, // +40
        ATANH_C[3],
        ATANH_C[2],
        ATANH_C[1],
        ATANH_C[0], // +48: 1/9, 1/7, 1/5, 1/3
        20.0,       // +64: softplus threshold
        e(t[0]),
        e(t[1]),
        e(t[2]),
        e(t[3]),
        e(t[4]),
        e(t[5]),
        e(t[6]),
        e(t[7]), // +68: 2^(k/8)
    ]
};

#[cfg(eddy_mve_fp)]
/// The first half of `exp_fast` of q0 (see [`exp_q0`]): clamp to
/// `EXP_MIN..EXP_MAX` (NaN kept), `t = x 8log2e + ROUND` (q1),
/// `m = t - ROUND` (q2), `r = (x - m LN2_8_HI) - m LN2_8_LO` (q0), then the
/// scale bits in q1: `2^(k/8)` (k = t_bits & 7) gathered from the biased
/// table at `$table + $offset` plus `t_bits << 20`. Needs r0-r5 =
/// [`CONSTS`][..6]; clobbers q2-q3.
macro_rules! exp_reduce_q0 {
    ($table:literal, $offset:literal) => {
        concat!(
            "vpt.f32 lt, q0, r0\n",
            "vdupt.32 q0, r0\n",
            "vpt.f32 gt, q0, r1\n",
            "vdupt.32 q0, r1\n",
            "vmul.f32 q1, q0, r2\n",
            "vadd.f32 q1, q1, r3\n",
            "vsub.f32 q2, q1, r3\n",
            "vmul.f32 q3, q2, r4\n",
            "vsub.f32 q0, q0, q3\n",
            "vmul.f32 q3, q2, r5\n",
            "vsub.f32 q0, q0, q3\n",
            "vmov.i32 q2, #7\n",
            "vand q2, q1, q2\n",
            "vshl.i32 q2, q2, #2\n",
            "vadd.i32 q2, q2, ",
            $table,
            "\n",
            "vldrw.u32 q3, [q2, #",
            $offset,
            "]\n",
            "vshl.i32 q1, q1, #20\n",
            "vadd.i32 q1, q1, q3\n",
        )
    };
}

#[cfg(eddy_mve_fp)]
/// `exp_fast` of q0 into q0, as [`crate::math::exp_fast`]: clamp (NaN
/// kept), range reduction by eighths of an octave, `2^(k/8)` gathered from
/// [`CONSTS`]' table, `2^n` added to its exponent field, degree-3
/// polynomial. Needs r0-r5 = [`CONSTS`][..6], r12 = [`CONSTS`], q6 = 1.0;
/// clobbers q1-q3 and r10.
macro_rules! exp_q0 {
    () => {
        concat!(
            exp_reduce_q0!("r12", "68"),
            // p = 1 + r (1 + r (c2 + r c3)).
            "ldr r10, [r12, #24]\n",
            "vmul.f32 q2, q0, r10\n",
            "ldr r10, [r12, #28]\n",
            "vadd.f32 q2, q2, r10\n",
            "vmul.f32 q2, q2, q0\n",
            "vadd.f32 q2, q2, q6\n",
            "vmul.f32 q2, q2, q0\n",
            "vadd.f32 q2, q2, q6\n",
            "vmul.f32 q0, q2, q1\n",
        )
    };
}

// Declared after the assembly macros above, which they use.
#[cfg(eddy_mve_fp)]
pub mod conv;
mod float;
mod group;
mod matvec;
#[cfg(eddy_mve_fp)]
pub mod scan;
