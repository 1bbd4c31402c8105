//! Helium (MVE) f32 kernels of the recurrent layers: the Mamba-1 selective
//! scan, bit-exact with [`selective_scan_scalar`].
//!
//! Each channel's state update runs four states per vector: `exp_fast` of
//! `A delta`, `h = decay h + (delta B) u` and the `C·h` products, with the
//! reference's operations in the reference's order and no fused
//! multiply-add. The dot product keeps the reference's eight partial sums
//! (two vectors, alternating per four states) and its pairwise reduction.
//! `softplus`, `silu` and the output's gating are per channel and run the
//! scalar reference functions.
//!
//! MVE floating point computes with the standard FPSCR value: subnormal
//! inputs and results are flushed to zero and a NaN result is the default
//! NaN, where the reference (scalar FPU, IEEE with the reset FPSCR) keeps
//! subnormals and NaN payloads. Every other result is the same IEEE value,
//! so a channel computed with MVE equals the reference unless a flush
//! happened or a NaN appeared, and both are detected:
//!
//! - a flush sets the cumulative FPSCR flag IDC (an input) or UFC (a
//!   result); the kernel clears the flags before the scan and reads them
//!   after each channel (QEMU's MVE helpers raise them in the same FPSCR);
//! - a NaN anywhere in a channel's update reaches its output `y`: every
//!   state enters `C·h`, and no step turns a NaN into a number (the clamp
//!   keeps NaN as `f32::clamp` does, so it is a compare and a predicated
//!   move, not `VMINNM`/`VMAXNM`, which would return the bound).
//!
//! Such a channel is recomputed by the reference from its previous state,
//! which the kernel saves as it overwrites it. Scalar code between channels
//! can raise UFC too (an inexact subnormal result); that only sends the
//! channel to the reference, it never changes a result.

use crate::math::{silu, softplus, EXP_C, EXP_MAX, EXP_MIN, LN2_HI, LN2_LO, LOG2E, ROUND};
use crate::vector::{selective_scan_scalar, ScanArgs, VectorKernels};
use core::arch::asm;

/// The Helium vector kernels: the selective scan on MVE; activation
/// quantization and the convolution are the scalar references.
pub static MVE_VECTOR: VectorKernels = VectorKernels {
    name: "helium",
    quantize_acts: eddy_quant::quantize_activations_i8,
    conv_silu: crate::math::causal_conv_silu_step,
    selective_scan,
};

/// f32 lanes per vector.
const LANES: usize = 4;
/// Largest state size the kernel takes: its per-token work buffer lives on
/// the stack ([`RECORD`] × 16 floats, 1.75 KiB). Larger ones run the
/// reference.
const MAX_D_STATE: usize = 64;
/// Floats per four states in the work buffer: `C`, `B`, the saved state,
/// then the Taylor coefficients c6, c5, c4, c3 of `exp_fast` (four each).
/// One record per four states lets one post-incremented pointer reach all
/// of them with immediate offsets (the loop has no register to spare).
const RECORD: usize = 7 * LANES;
// c2 is the assembly's `vmov.f32 q7, #0.5`.
const _: () = assert!(EXP_C[0] == 0.5);
/// Offset (floats) of the saved state in a record.
const SAVED: usize = 2 * LANES;
/// FPSCR cumulative flags IDC (input flushed) and UFC (underflow, which a
/// flushed result raises).
const FLUSHED: u32 = (1 << 7) | (1 << 3);

/// See [`crate::vector::SelectiveScan`]; bit-exact with
/// [`selective_scan_scalar`]. State sizes that are not a multiple of four
/// or exceed [`MAX_D_STATE`] run the reference.
pub fn selective_scan(args: &ScanArgs<'_>, state: &mut [f32], y: &mut [f32]) {
    let ds = args.d_state;
    if ds == 0 || ds % LANES != 0 || ds > MAX_D_STATE || args.b.len() < ds || args.c.len() < ds {
        selective_scan_scalar(args, state, y);
        return;
    }
    // The reference stops at the shortest input.
    let channels = [y.len(), args.dt.len(), args.u.len(), args.d.len(), args.z.len()]
        .into_iter()
        .fold(state.len().min(args.a.len()) / ds, usize::min);
    let chunks = ds / LANES;
    let mut work = [0f32; RECORD * MAX_D_STATE / LANES];
    let [_, c3, c4, c5, c6] = EXP_C;
    for (j, rec) in work.chunks_exact_mut(RECORD).take(chunks).enumerate() {
        let states = j * LANES..(j + 1) * LANES;
        rec[..LANES].copy_from_slice(&args.c[states.clone()]);
        rec[LANES..2 * LANES].copy_from_slice(&args.b[states]);
        for (k, coef) in [c6, c5, c4, c3].into_iter().enumerate() {
            rec[(3 + k) * LANES..(4 + k) * LANES].fill(coef);
        }
    }
    clear_fp_flags();
    let rows = state.chunks_exact_mut(ds).zip(args.a.chunks_exact(ds));
    for (ch, (yc, (h, a))) in y.iter_mut().zip(rows).enumerate().take(channels) {
        let (dt, u, d, z) = (args.dt[ch], args.u[ch], args.d[ch], args.z[ch]);
        let delta = softplus(dt);
        // SAFETY: `a` and `h` hold `ds = 4·chunks` floats, `work` holds
        // `chunks` records of RECORD floats (chunks <= MAX_D_STATE / 4).
        let (dot, flags) =
            unsafe { channel(a.as_ptr(), h.as_mut_ptr(), work.as_mut_ptr(), chunks, delta, u) };
        let out = (dot + u * d) * silu(z);
        if flags & FLUSHED == 0 && !out.is_nan() {
            *yc = out;
            continue;
        }
        // Flushed or NaN: restore the state and run the reference.
        for (hs, rec) in h.chunks_exact_mut(LANES).zip(work.chunks_exact(RECORD)) {
            hs.copy_from_slice(&rec[SAVED..SAVED + LANES]);
        }
        let one = ScanArgs {
            a,
            d: &args.d[ch..=ch],
            dt: &args.dt[ch..=ch],
            u: &args.u[ch..=ch],
            z: &args.z[ch..=ch],
            ..*args
        };
        selective_scan_scalar(&one, h, core::slice::from_mut(yc));
        clear_fp_flags();
    }
}

/// Clears the FPSCR cumulative exception flags (IOC, DZC, OFC, UFC, IXC,
/// IDC), keeping its control bits.
#[inline(always)]
fn clear_fp_flags() {
    // SAFETY: reads and writes FPSCR only (FP is enabled before main);
    // the rounding mode and flush/NaN controls are written back unchanged,
    // and neither Rust nor LLVM reads the exception flags.
    unsafe {
        asm!(
            "vmrs {t}, fpscr",
            "bic {t}, {t}, #0x9f",
            "vmsr fpscr, {t}",
            t = out(reg) _,
            options(nomem, nostack, preserves_flags),
        );
    }
}

/// Four states of one channel, accumulating `h·c` into `$acc` (q4 or q5,
/// the reference's dot-product lanes 0-3 or 4-7). Registers: q0 x then r,
/// q1 t then 2^n, q2 n then the polynomial, q3 temporary, q6 = 1.0 (also
/// the bits `127 << 23`), q7 = 0.5. The record at `{w}`: +0 C, +16 B,
/// +32 saved state, +48.. c6, c5, c4, c3; `{w}` moves to the next record
/// with the last load.
macro_rules! four_states {
    ($acc:literal) => {
        concat!(
            // x = clamp(a delta, EXP_MIN, EXP_MAX), NaN kept.
            "vldrw.u32 q0, [{a}], #16\n",
            "vmul.f32 q0, q0, {delta}\n",
            "vpt.f32 lt, q0, {min}\n",
            "vdupt.32 q0, {min}\n",
            "vpt.f32 gt, q0, {max}\n",
            "vdupt.32 q0, {max}\n",
            // t = x log2e + ROUND, n = t - ROUND,
            // r = (x - n LN2_HI) - n LN2_LO.
            "vmul.f32 q1, q0, {log2e}\n",
            "vadd.f32 q1, q1, {round}\n",
            "vsub.f32 q2, q1, {round}\n",
            "vmul.f32 q3, q2, {hi}\n",
            "vsub.f32 q0, q0, q3\n",
            "vmul.f32 q3, q2, {lo}\n",
            "vsub.f32 q0, q0, q3\n",
            // 2^n: ((t_bits - ROUND_bits + 127) << 23) equals
            // (t_bits << 23) + (127 << 23) mod 2^32, as ROUND_bits is a
            // multiple of 2^9.
            "vshl.i32 q1, q1, #23\n",
            "vadd.i32 q1, q1, q6\n",
            // p = 1 + r (1 + r (c2 + r (c3 + r (c4 + r (c5 + r c6))))).
            "vldrw.u32 q3, [{w}, #48]\n",
            "vmul.f32 q2, q0, q3\n",
            "vldrw.u32 q3, [{w}, #64]\n",
            "vadd.f32 q2, q2, q3\n",
            "vmul.f32 q2, q2, q0\n",
            "vldrw.u32 q3, [{w}, #80]\n",
            "vadd.f32 q2, q2, q3\n",
            "vmul.f32 q2, q2, q0\n",
            "vldrw.u32 q3, [{w}, #96]\n",
            "vadd.f32 q2, q2, q3\n",
            "vmul.f32 q2, q2, q0\n",
            "vadd.f32 q2, q2, q7\n",
            "vmul.f32 q2, q2, q0\n",
            "vadd.f32 q2, q2, q6\n",
            "vmul.f32 q2, q2, q0\n",
            "vadd.f32 q2, q2, q6\n",
            // decay = p 2^n; h = decay h + (delta b) u, the old h saved.
            "vmul.f32 q2, q2, q1\n",
            "vldrw.u32 q0, [{h}]\n",
            "vstrw.32 q0, [{w}, #32]\n",
            "vmul.f32 q2, q2, q0\n",
            "vldrw.u32 q0, [{w}, #16]\n",
            "vmul.f32 q0, q0, {delta}\n",
            "vmul.f32 q0, q0, {u}\n",
            "vadd.f32 q2, q2, q0\n",
            "vstrw.32 q2, [{h}], #16\n",
            // acc += h c.
            "vldrw.u32 q0, [{w}], #112\n",
            "vmul.f32 q0, q2, q0\n",
            "vadd.f32 ",
            $acc,
            ", ",
            $acc,
            ", q0\n",
        )
    };
}

/// One channel's state update in assembly, `$tail` being a last
/// [`four_states!`] when the state size is 8k + 4. Returns `C·h` (s16) and
/// FPSCR (read into lr at the end).
macro_rules! channel_asm {
    ($a:expr, $h:expr, $w:expr, $pairs:expr, $delta:expr, $u:expr, $($tail:expr)?) => {{
        let dot: f32;
        let fpscr: u32;
        asm!(
            "vmov.f32 q6, #1.0",
            "vmov.f32 q7, #0.5",
            "vmov.i32 q4, #0",
            "vmov.i32 q5, #0",
            "wls lr, lr, 3f",
            "2:",
            four_states!("q4"),
            four_states!("q5"),
            "le lr, 2b",
            "3:",
            $($tail,)?
            // The reference's reduction ((l0 + l4) + (l2 + l6)) +
            // ((l1 + l5) + (l3 + l7)): lane sums in MVE, the rest on the
            // scalar FPU (s16-s19 are q4).
            "vadd.f32 q4, q4, q5",
            "vadd.f32 s16, s16, s18",
            "vadd.f32 s17, s17, s19",
            "vadd.f32 s16, s16, s17",
            "vmrs lr, fpscr",
            a = inout(reg) $a => _,
            h = inout(reg) $h => _,
            w = inout(reg) $w => _,
            delta = in(reg) $delta.to_bits(),
            u = in(reg) $u.to_bits(),
            min = in(reg) EXP_MIN.to_bits(),
            max = in(reg) EXP_MAX.to_bits(),
            log2e = in(reg) LOG2E.to_bits(),
            round = in(reg) ROUND.to_bits(),
            hi = in(reg) LN2_HI.to_bits(),
            lo = in(reg) LN2_LO.to_bits(),
            inout("lr") $pairs => fpscr,
            out("s16") dot,
            out("s0") _, out("s1") _, out("s2") _, out("s3") _,
            out("s4") _, out("s5") _, out("s6") _, out("s7") _,
            out("s8") _, out("s9") _, out("s10") _, out("s11") _,
            out("s12") _, out("s13") _, out("s14") _, out("s15") _,
            out("s17") _, out("s18") _, out("s19") _,
            out("s20") _, out("s21") _, out("s22") _, out("s23") _,
            out("s24") _, out("s25") _, out("s26") _, out("s27") _,
            out("s28") _, out("s29") _, out("s30") _, out("s31") _,
            options(nostack),
        );
        (dot, fpscr)
    }};
}

/// One channel: `h = exp(A delta) h + delta B u` over `4·chunks` states,
/// the old states saved in the work records; returns `C·h` in the
/// reference's order and FPSCR after the channel.
///
/// # Safety
/// `a` and `h` must point to `4·chunks` floats (`h` writable), `work` to
/// `chunks` writable records of [`RECORD`] floats filled as
/// [`selective_scan`] does; `chunks >= 1`.
unsafe fn channel(
    a: *const f32,
    h: *mut f32,
    work: *mut f32,
    chunks: usize,
    delta: f32,
    u: f32,
) -> (f32, u32) {
    let pairs = chunks / 2;
    // SAFETY: every pass reads four floats at `a`, reads and writes four at
    // `h`, and reads/writes within one record at `work`, advancing each by
    // one unit, `chunks` times in all: within what the caller guarantees.
    // q0-q7 are declared clobbered, lr carries the count; no stack.
    unsafe {
        if chunks % 2 == 1 {
            channel_asm!(a, h, work, pairs, delta, u, four_states!("q4"))
        } else {
            channel_asm!(a, h, work, pairs, delta, u,)
        }
    }
}
