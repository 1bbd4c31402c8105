//! Helium (MVE) f32 kernels of the recurrent layers: the Mamba-1 selective
//! scan, bit-exact with [`selective_scan_scalar`].
//!
//! Channels go in blocks of four. A block's `softplus(dt)` and `silu(z)`
//! run one channel per lane (the divisions on the scalar FPU, lane by
//! lane: MVE has no divide). Then each channel's state update runs four
//! states per vector: `exp_fast` of `A delta`, `h = decay h + (delta B) u`
//! and the `C·h` products, keeping the reference's eight partial sums (two
//! vectors, alternating per four states) and its pairwise reduction. Every
//! value is the reference's operations in the reference's order, without
//! fused multiply-add.
//!
//! MVE floating point computes with the standard FPSCR value: subnormal
//! inputs and results are flushed to zero and a NaN result is the default
//! NaN, where the scalar FPU (IEEE, reset FPSCR) keeps subnormals and NaN
//! payloads. Every other result is the same IEEE value, so MVE reproduces
//! the reference unless a flush happened or a NaN appeared, and both are
//! detected:
//!
//! - a flush sets the cumulative FPSCR flag IDC (an input) or UFC (a
//!   result); the kernel clears the flags before a block and reads them
//!   after its `softplus`/`silu` and after each channel (QEMU's MVE helpers
//!   raise them in the same FPSCR);
//! - a NaN anywhere in a channel's work reaches its output `y`: every state
//!   enters `C·h`, and no step turns a NaN into a number (the clamps keep
//!   NaN as `f32::clamp` does, so they are a compare and a predicated move,
//!   not `VMINNM`/`VMAXNM`, which would return the bound).
//!
//! Then the block (flags after `softplus`/`silu`) or the channel is
//! recomputed by the reference, from the previous state, which the kernel
//! saves as it overwrites it. Scalar code between channels can raise UFC
//! too (an inexact subnormal result): that only sends the channel to the
//! reference, it never changes a result.

use crate::math::{ATANH_C, EXP_C, EXP_MAX, EXP_MIN, LN2_HI, LN2_LO, LN_2, LOG2E, ROUND, SQRT_2};
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
/// Offset (floats) of the saved state in a record.
const SAVED: usize = 2 * LANES;
/// FPSCR cumulative flags IDC (input flushed) and UFC (underflow, which a
/// flushed result raises).
const FLUSHED: u32 = (1 << 7) | (1 << 3);

// c2 is the assembly's `vmov.f32 q7, #0.5`.
const _: () = assert!(EXP_C[0] == 0.5);

/// Constants of the assembly, in the order it loads them: `exp_fast`'s
/// clamp, range reduction and Taylor coefficients c6..c3, then
/// `log1p_unit`'s and softplus's.
static CONSTS: [f32; 17] = [
    EXP_MIN, EXP_MAX, LOG2E, ROUND, LN2_HI, LN2_LO, // r0-r5 (ldm)
    EXP_C[4], EXP_C[3], EXP_C[2], EXP_C[1], // +24: c6, c5, c4, c3
    SQRT_2, LN_2, // +40
    ATANH_C[3], ATANH_C[2], ATANH_C[1], ATANH_C[0], // +48: 1/9, 1/7, 1/5, 1/3
    20.0,       // +64: softplus threshold
];

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
    for (j, rec) in work.chunks_exact_mut(RECORD).take(chunks).enumerate() {
        let states = j * LANES..(j + 1) * LANES;
        rec[..LANES].copy_from_slice(&args.c[states.clone()]);
        rec[LANES..2 * LANES].copy_from_slice(&args.b[states]);
        for (k, &coef) in CONSTS[6..10].iter().enumerate() {
            rec[(3 + k) * LANES..(4 + k) * LANES].fill(coef);
        }
    }
    // What the channel assembly loads: r0-r5, then its pair count.
    let mut setup = [0u32; 7];
    for (v, c) in setup.iter_mut().zip(&CONSTS[..6]) {
        *v = c.to_bits();
    }
    setup[6] = (chunks / 2) as u32;
    let tail = chunks % 2 == 1;
    for c0 in (0..channels).step_by(LANES) {
        let n = (channels - c0).min(LANES);
        let block = c0..c0 + n;
        let (dt, z, u, d) =
            (&args.dt[block.clone()], &args.z[block.clone()], &args.u[block.clone()], &args.d[block.clone()]);
        let (a, h, yb) = (&args.a[c0 * ds..(c0 + n) * ds], &mut state[c0 * ds..(c0 + n) * ds], &mut y[block]);
        // softplus(dt) and silu(z) of the block's channels; padding lanes
        // compute on zeros and are not used.
        let mut gates = [0f32; 2 * LANES];
        for i in 0..n {
            (gates[i], gates[LANES + i]) = (dt[i], z[i]);
        }
        // SAFETY: FP and MVE are enabled (this kernel set is compiled only
        // for such targets, and the runtime enables FP before main).
        let flags = unsafe { softplus_silu4(&mut gates) };
        if flags & FLUSHED != 0 {
            let part = ScanArgs { a, d, dt, u, z, ..*args };
            selective_scan_scalar(&part, h, yb);
            clear_fp_flags();
            continue;
        }
        let rows = h.chunks_exact_mut(ds).zip(a.chunks_exact(ds)).zip(yb.iter_mut().zip(u.iter().zip(d)));
        for (i, ((hc, ac), (yc, (&uc, &dc)))) in rows.enumerate() {
            let (delta, gate) = (gates[i], gates[LANES + i]);
            // SAFETY: `ac` and `hc` hold `ds = 4·chunks` floats, `work`
            // holds `chunks` records filled above, `setup` r0-r5 and the
            // pair count, `tail` is `chunks % 2 == 1`.
            let (dot, flags) =
                unsafe { channel(ac.as_ptr(), hc.as_mut_ptr(), work.as_mut_ptr(), &setup, tail, delta, uc) };
            let out = (dot + uc * dc) * gate;
            if flags & FLUSHED == 0 && !out.is_nan() {
                *yc = out;
                continue;
            }
            // Flushed or NaN: restore the state and run the reference.
            for (hs, rec) in hc.chunks_exact_mut(LANES).zip(work.chunks_exact(RECORD)) {
                hs.copy_from_slice(&rec[SAVED..SAVED + LANES]);
            }
            let one = ScanArgs { a: ac, d: &d[i..=i], dt: &dt[i..=i], u: &u[i..=i], z: &z[i..=i], ..*args };
            selective_scan_scalar(&one, hc, core::slice::from_mut(yc));
            clear_fp_flags();
        }
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

/// `exp_fast` of q0 into q0, as [`crate::math::exp_fast`]: clamp (NaN
/// kept), range reduction, Taylor polynomial, `2^n` from `t`'s bits.
/// Needs r0-r5 = [`CONSTS`][..6], `{tab}` = [`CONSTS`], q6 = 1.0 (also
/// the bits `127 << 23`), q7 = 0.5; clobbers q1-q3 and `{k}`.
macro_rules! exp_q0 {
    () => {
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
            "vshl.i32 q1, q1, #23\n",
            "vadd.i32 q1, q1, q6\n",
            "ldr {k}, [{tab}, #24]\n",
            "vmul.f32 q2, q0, {k}\n",
            "ldr {k}, [{tab}, #28]\n",
            "vadd.f32 q2, q2, {k}\n",
            "vmul.f32 q2, q2, q0\n",
            "ldr {k}, [{tab}, #32]\n",
            "vadd.f32 q2, q2, {k}\n",
            "vmul.f32 q2, q2, q0\n",
            "ldr {k}, [{tab}, #36]\n",
            "vadd.f32 q2, q2, {k}\n",
            "vmul.f32 q2, q2, q0\n",
            "vadd.f32 q2, q2, q7\n",
            "vmul.f32 q2, q2, q0\n",
            "vadd.f32 q2, q2, q6\n",
            "vmul.f32 q2, q2, q0\n",
            "vadd.f32 q2, q2, q6\n",
            "vmul.f32 q0, q2, q1\n",
        )
    };
}

/// `v[..4] = softplus(v[..4])`, `v[4..] = silu(v[4..])`, as
/// [`crate::math::softplus`] and [`crate::math::silu`] lane by lane.
/// Clears the FPSCR flags first and returns FPSCR after.
///
/// # Safety
/// FP and MVE enabled (as for every kernel of this set).
unsafe fn softplus_silu4(v: &mut [f32; 2 * LANES]) -> u32 {
    let flags: u32;
    // SAFETY: reads and writes the 8 floats of `v` and reads CONSTS; FPU
    // registers q0-q7 and r0-r5 declared clobbered; no stack.
    unsafe {
        asm!(
            "vmrs {k}, fpscr",
            "bic {k}, {k}, #0x9f",
            "vmsr fpscr, {k}",
            "ldm {tab}, {{r0, r1, r2, r3, r4, r5}}",
            "vmov.f32 q6, #1.0",
            "vmov.f32 q7, #0.5",
            // softplus(x), x in q4: e = exp_fast(-|x|).
            "vldrw.u32 q4, [{v}]",
            "vorr q0, q4, q4",
            "vorr.i32 q0, #0x80000000",
            exp_q0!(),
            // log1p_unit(e): u = 1 + e (q1), rounding = (e - (u - 1)) / u
            // (q2, divided lane by lane on the scalar FPU).
            "vadd.f32 q1, q0, q6",
            "vsub.f32 q2, q1, q6",
            "vsub.f32 q2, q0, q2",
            "vdiv.f32 s8, s8, s4",
            "vdiv.f32 s9, s9, s5",
            "vdiv.f32 s10, s10, s6",
            "vdiv.f32 s11, s11, s7",
            // u > sqrt2: m = u / 2 (q1), k = ln2 (q5, else 0).
            "vmul.f32 q3, q1, q7",
            "vmov.i32 q5, #0",
            "ldr {k}, [{tab}, #40]",
            "ldr {k2}, [{tab}, #44]",
            "vptt.f32 gt, q1, {k}",
            "vorrt q1, q3, q3",
            "vdupt.32 q5, {k2}",
            // s = (m - 1) / (m + 1) (q3), s2 = s s (q1).
            "vsub.f32 q3, q1, q6",
            "vadd.f32 q1, q1, q6",
            "vdiv.f32 s12, s12, s4",
            "vdiv.f32 s13, s13, s5",
            "vdiv.f32 s14, s14, s6",
            "vdiv.f32 s15, s15, s7",
            "vmul.f32 q1, q3, q3",
            // p = s2 (c3 + s2 (c5 + s2 (c7 + s2 c9))) (q0).
            "ldr {k}, [{tab}, #48]",
            "vmul.f32 q0, q1, {k}",
            "ldr {k}, [{tab}, #52]",
            "vadd.f32 q0, q0, {k}",
            "vmul.f32 q0, q0, q1",
            "ldr {k}, [{tab}, #56]",
            "vadd.f32 q0, q0, {k}",
            "vmul.f32 q0, q0, q1",
            "ldr {k}, [{tab}, #60]",
            "vadd.f32 q0, q0, {k}",
            "vmul.f32 q0, q0, q1",
            // k + ((2s + 2s p) + rounding).
            "vadd.f32 q3, q3, q3",
            "vmul.f32 q0, q3, q0",
            "vadd.f32 q0, q3, q0",
            "vadd.f32 q0, q0, q2",
            "vadd.f32 q0, q5, q0",
            // + (x > 0 ? x : 0); x > 20 ? x : that.
            "vmov.i32 q1, #0",
            "vpt.f32 gt, q4, q1",
            "vorrt q1, q4, q4",
            "vadd.f32 q0, q1, q0",
            "ldr {k}, [{tab}, #64]",
            "vpt.f32 gt, q4, {k}",
            "vorrt q0, q4, q4",
            "vstrw.32 q0, [{v}]",
            // silu(z) = z / (1 + exp_fast(-z)), z in q4.
            "vldrw.u32 q4, [{v}, #16]",
            "vneg.f32 q0, q4",
            exp_q0!(),
            "vadd.f32 q0, q0, q6",
            "vdiv.f32 s16, s16, s0",
            "vdiv.f32 s17, s17, s1",
            "vdiv.f32 s18, s18, s2",
            "vdiv.f32 s19, s19, s3",
            "vstrw.32 q4, [{v}, #16]",
            "vmrs {k}, fpscr",
            v = in(reg) v.as_mut_ptr(),
            tab = in(reg) CONSTS.as_ptr(),
            k = out(reg) flags,
            k2 = out(reg) _,
            out("r0") _, out("r1") _, out("r2") _, out("r3") _, out("r4") _, out("r5") _,
            out("s0") _, out("s1") _, out("s2") _, out("s3") _,
            out("s4") _, out("s5") _, out("s6") _, out("s7") _,
            out("s8") _, out("s9") _, out("s10") _, out("s11") _,
            out("s12") _, out("s13") _, out("s14") _, out("s15") _,
            out("s16") _, out("s17") _, out("s18") _, out("s19") _,
            out("s20") _, out("s21") _, out("s22") _, out("s23") _,
            out("s24") _, out("s25") _, out("s26") _, out("s27") _,
            out("s28") _, out("s29") _, out("s30") _, out("s31") _,
            options(nostack),
        );
    }
    flags
}

/// Four states of one channel, accumulating `h·c` into `$acc` (q4 or q5,
/// the reference's dot-product lanes 0-3 or 4-7). Registers: r0-r5 =
/// [`CONSTS`][..6], q0 x then r, q1 t then 2^n, q2 n then the polynomial,
/// q3 temporary, q6 = 1.0 (also the bits `127 << 23`), q7 = 0.5. The
/// record at `{w}`: +0 C, +16 B, +32 saved state, +48.. c6, c5, c4, c3;
/// `{w}` moves to the next record with the last load.
macro_rules! four_states {
    ($acc:literal) => {
        concat!(
            // x = clamp(a delta, EXP_MIN, EXP_MAX), NaN kept.
            "vldrw.u32 q0, [{a}], #16\n",
            "vmul.f32 q0, q0, {delta}\n",
            "vpt.f32 lt, q0, r0\n",
            "vdupt.32 q0, r0\n",
            "vpt.f32 gt, q0, r1\n",
            "vdupt.32 q0, r1\n",
            // t = x log2e + ROUND, n = t - ROUND,
            // r = (x - n LN2_HI) - n LN2_LO.
            "vmul.f32 q1, q0, r2\n",
            "vadd.f32 q1, q1, r3\n",
            "vsub.f32 q2, q1, r3\n",
            "vmul.f32 q3, q2, r4\n",
            "vsub.f32 q0, q0, q3\n",
            "vmul.f32 q3, q2, r5\n",
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
/// [`four_states!`] when the state size is 8k + 4. `$setup` points to
/// r0-r5's values and the pair count. Returns `C·h` (s16) and FPSCR (read
/// into lr at the end).
macro_rules! channel_asm {
    ($a:expr, $h:expr, $w:expr, $setup:expr, $delta:expr, $u:expr, $($tail:expr)?) => {{
        let dot: f32;
        let fpscr: u32;
        asm!(
            "ldm lr, {{r0, r1, r2, r3, r4, r5}}",
            "ldr lr, [lr, #24]",
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
            inout("lr") $setup => fpscr,
            out("r0") _, out("r1") _, out("r2") _, out("r3") _, out("r4") _, out("r5") _,
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
/// [`selective_scan`] does, `setup` hold r0-r5 and `chunks / 2`, `tail`
/// be `chunks % 2 == 1`; `chunks >= 1`.
unsafe fn channel(
    a: *const f32,
    h: *mut f32,
    work: *mut f32,
    setup: &[u32; 7],
    tail: bool,
    delta: f32,
    u: f32,
) -> (f32, u32) {
    let setup = setup.as_ptr();
    // SAFETY: every pass reads four floats at `a`, reads and writes four at
    // `h`, and reads/writes within one record at `work`, advancing each by
    // one unit, `chunks` times in all: within what the caller guarantees.
    // q0-q7 and r0-r5 are declared clobbered, lr carries `setup` in and
    // FPSCR out; no stack.
    unsafe {
        if tail {
            channel_asm!(a, h, work, setup, delta, u, four_states!("q4"))
        } else {
            channel_asm!(a, h, work, setup, delta, u,)
        }
    }
}
