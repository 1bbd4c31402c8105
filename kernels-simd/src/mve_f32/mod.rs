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

use crate::math::{
    ATANH_C, EXP2_EIGHTHS_BIASED, EXP_C, EXP_MAX, EXP_MIN, LN2_8_HI, LN2_8_LO, LN_2, LOG2E_8, ROUND, SQRT_2,
};
use crate::vector::VectorKernels;

/// The Helium vector kernels: the selective scan and the convolution +
/// SiLU on MVE; activation quantization is the scalar reference.
pub static MVE_VECTOR: VectorKernels = VectorKernels {
    name: "helium",
    quantize_acts: eddy_quant::quantize_activations_i8,
    conv_silu: conv::conv_silu,
    conv_silu_tokens: conv::conv_silu_tokens,
    selective_scan: scan::selective_scan,
    selective_scan_tokens: scan::selective_scan_tokens,
};

/// f32 lanes per vector.
const LANES: usize = 4;
/// FPSCR cumulative flags IDC (input flushed) and UFC (underflow, which a
/// flushed result raises).
const FLUSHED: u32 = (1 << 7) | (1 << 3);

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

/// `exp_fast` of q0 into q0, as [`crate::math::exp_fast`]: clamp (NaN
/// kept), range reduction by eighths of an octave, `2^(k/8)` gathered from
/// [`CONSTS`]' table, `2^n` added to its exponent field, degree-3
/// polynomial. Needs r0-r5 = [`CONSTS`][..6], r12 = [`CONSTS`], q6 = 1.0;
/// clobbers q1-q3 and r10.
macro_rules! exp_q0 {
    () => {
        concat!(
            "vpt.f32 lt, q0, r0\n",
            "vdupt.32 q0, r0\n",
            "vpt.f32 gt, q0, r1\n",
            "vdupt.32 q0, r1\n",
            // t = x 8log2e + ROUND (q1), m = t - ROUND (q2),
            // r = (x - m LN2_8_HI) - m LN2_8_LO (q0).
            "vmul.f32 q1, q0, r2\n",
            "vadd.f32 q1, q1, r3\n",
            "vsub.f32 q2, q1, r3\n",
            "vmul.f32 q3, q2, r4\n",
            "vsub.f32 q0, q0, q3\n",
            "vmul.f32 q3, q2, r5\n",
            "vsub.f32 q0, q0, q3\n",
            // 2^(k/8) (q3, k = t_bits & 7, from the biased table) +
            // (t_bits << 20): the reference's scale bits.
            "vmov.i32 q2, #7\n",
            "vand q2, q1, q2\n",
            "vshl.i32 q2, q2, #2\n",
            "vadd.i32 q2, q2, r12\n",
            "vldrw.u32 q3, [q2, #68]\n",
            "vshl.i32 q1, q1, #20\n",
            "vadd.i32 q1, q1, q3\n",
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

pub mod conv;
pub mod scan;
