//! The Mamba-1 selective scan on Helium, bit-exact with
//! [`selective_scan_scalar`] (see the parent module for how MVE's flushing
//! and default NaN are caught).
//!
//! Channels go in blocks of four, one assembly call per block. The block's
//! `softplus(dt)` and `silu(z)` run one channel per lane. Then each
//! channel's state update runs four states per vector: `exp_fast` of `A
//! delta`, `h = decay h + (delta B) u` and the `C·h` products, keeping the
//! reference's eight partial sums (two vectors, alternating per four
//! states) and its pairwise reduction; `y = (C·h + u D) silu(z)` on the
//! scalar FPU. The flags are read after the block's softplus/silu and
//! after each channel's output; a NaN anywhere in a channel's work reaches
//! its `y` (every state enters `C·h`, and no step turns a NaN into a
//! number). A flushed softplus/silu sends the rest of the block to the
//! reference; a flushed or NaN channel is redone by the reference from its
//! previous state, which the kernel saves as it overwrites it.

use super::{CONSTS, FLUSHED, LANES};
use crate::vector::{selective_scan_scalar, ScanArgs};
use core::arch::asm;

/// Largest state size the kernel takes: its per-token work buffer lives on
/// the stack ([`RECORD`] × 8 floats, 896 bytes; Mamba-1 uses 16). Larger
/// ones run the reference.
const MAX_D_STATE: usize = 32;
/// Floats per four states in the work buffer: `C`, `B`, the saved state,
/// `exp_fast`'s coefficients c3 and c2 (four each), then its table of
/// `2^(k/8)` (eight). One record per four states lets one post-incremented
/// pointer reach all of them with immediate offsets (the loop has no
/// register to spare: r0-r5 hold constants, r8-r12 pointers and scalars,
/// lr the count), and the table gather address the record pointer plus
/// `4k`.
const RECORD: usize = 7 * LANES;
/// Offset (floats) of the saved state in a record.
const SAVED: usize = 2 * LANES;
/// What one block's assembly reads and writes (offsets are the
/// assembly's).
#[repr(C)]
struct Block {
    /// +0: r0-r5 of the assembly ([`CONSTS`][..6] as bits).
    consts: [u32; 6],
    /// +24: loop passes per channel (two four-state steps each).
    passes: u32,
    /// +28: the work records.
    work: *mut f32,
    /// +32: nonzero if the state size is 8k + 4 (the loop is entered in
    /// its middle).
    odd: u32,
    /// +36: [`CONSTS`].
    consts_all: *const f32,
    /// +40: `dt` in, `delta = softplus(dt)` out, one per channel.
    delta: [f32; LANES],
    /// +56: `z` in, `silu(z)` out.
    gate: [f32; LANES],
    /// +72: `u`.
    u: [f32; LANES],
    /// +88: `D`.
    d: [f32; LANES],
}

/// What [`block_asm`] returns when the block's `softplus`/`silu` flushed.
const GATES_FLUSHED: u32 = u32::MAX;

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
    let channels = args.channels(state, y);
    let chunks = ds / LANES;
    let mut work = [0f32; RECORD * MAX_D_STATE / LANES];
    for (j, rec) in work.chunks_exact_mut(RECORD).take(chunks).enumerate() {
        let states = j * LANES..(j + 1) * LANES;
        rec[..LANES].copy_from_slice(&args.c[states.clone()]);
        rec[LANES..2 * LANES].copy_from_slice(&args.b[states]);
        rec[3 * LANES..4 * LANES].fill(CONSTS[6]);
        rec[4 * LANES..5 * LANES].fill(CONSTS[7]);
        rec[5 * LANES..].copy_from_slice(&CONSTS[17..25]);
    }
    let mut blk = Block {
        consts: [0; 6],
        passes: chunks.div_ceil(2) as u32,
        work: work.as_mut_ptr(),
        odd: (chunks % 2) as u32,
        consts_all: CONSTS.as_ptr(),
        delta: [0.0; LANES],
        gate: [0.0; LANES],
        u: [0.0; LANES],
        d: [0.0; LANES],
    };
    for (v, c) in blk.consts.iter_mut().zip(&CONSTS[..6]) {
        *v = c.to_bits();
    }
    for c0 in (0..channels).step_by(LANES) {
        let end = (c0 + LANES).min(channels);
        let mut first = c0;
        while first < end {
            let n = end - first;
            // Padding lanes compute on zeros (no flush) and are not used.
            let lanes = [&mut blk.delta, &mut blk.gate, &mut blk.u, &mut blk.d];
            // (Element by element: `copy_from_slice` of a variable length
            // is a `memcpy` call, costlier than the copy.)
            for (dst, src) in lanes.into_iter().zip([args.dt, args.z, args.u, args.d]) {
                let src = &src[first..end];
                *dst = core::array::from_fn(|i| src.get(i).copied().unwrap_or(0.0));
            }
            // SAFETY: channels `first..end` have `ds` floats of `a` and
            // `state` each and an output in `y`; `blk` describes `work`,
            // filled above for `chunks >= 1` records.
            let left = unsafe {
                block_asm(
                    &mut blk,
                    args.a[first * ds..].as_ptr(),
                    state[first * ds..].as_mut_ptr(),
                    y[first..].as_mut_ptr(),
                    n,
                )
            };
            if left == 0 {
                break;
            }
            // The reference from channel `first` to `last` (inclusive):
            // the whole rest after a flushed softplus/silu, else the
            // channel that stopped, its state first restored.
            let (from, last) = if left == GATES_FLUSHED {
                (first, end - 1)
            } else {
                let ch = end - left as usize;
                let h = &mut state[ch * ds..(ch + 1) * ds];
                for (hs, rec) in h.chunks_exact_mut(LANES).zip(work.chunks_exact(RECORD)) {
                    hs.copy_from_slice(&rec[SAVED..SAVED + LANES]);
                }
                (ch, ch)
            };
            let part = ScanArgs {
                a: &args.a[from * ds..(last + 1) * ds],
                d: &args.d[from..=last],
                dt: &args.dt[from..=last],
                u: &args.u[from..=last],
                z: &args.z[from..=last],
                ..*args
            };
            selective_scan_scalar(&part, &mut state[from * ds..(last + 1) * ds], &mut y[from..=last]);
            first = last + 1;
        }
    }
}

/// `softplus` of the four floats at r11 and `silu` of the four at r11+16,
/// in place, as [`crate::math::softplus`] and [`crate::math::silu`] lane
/// by lane. Needs what [`exp_q0!`] needs; clobbers q0-q5, r10 and lr.
macro_rules! softplus_silu {
    () => {
        concat!(
            // softplus(x), x in q4: e = exp_fast(-|x|) in q0.
            "vldrw.u32 q4, [r11]\n",
            "vorr q0, q4, q4\n",
            "vorr.i32 q0, #0x80000000\n",
            exp_q0!(),
            // log1p_unit(e): u = 1 + e (q1), rounding = (e - (u - 1)) / u
            // (q2, divided lane by lane on the scalar FPU).
            "vadd.f32 q1, q0, q6\n",
            "vsub.f32 q2, q1, q6\n",
            "vsub.f32 q2, q0, q2\n",
            "vdiv.f32 s8, s8, s4\n",
            "vdiv.f32 s9, s9, s5\n",
            "vdiv.f32 s10, s10, s6\n",
            "vdiv.f32 s11, s11, s7\n",
            // u > sqrt2: m = u / 2 (q1), k = ln2 (q5, else 0).
            "vmul.f32 q3, q1, q7\n",
            "vmov.i32 q5, #0\n",
            "ldr r10, [r12, #40]\n",
            "ldr lr, [r12, #44]\n",
            "vptt.f32 gt, q1, r10\n",
            "vorrt q1, q3, q3\n",
            "vdupt.32 q5, lr\n",
            // s = (m - 1) / (m + 1) (q3), s2 = s s (q1).
            "vsub.f32 q3, q1, q6\n",
            "vadd.f32 q1, q1, q6\n",
            "vdiv.f32 s12, s12, s4\n",
            "vdiv.f32 s13, s13, s5\n",
            "vdiv.f32 s14, s14, s6\n",
            "vdiv.f32 s15, s15, s7\n",
            "vmul.f32 q1, q3, q3\n",
            // p = s2 (c3 + s2 (c5 + s2 (c7 + s2 c9))) (q0).
            "ldr r10, [r12, #48]\n",
            "vmul.f32 q0, q1, r10\n",
            "ldr r10, [r12, #52]\n",
            "vadd.f32 q0, q0, r10\n",
            "vmul.f32 q0, q0, q1\n",
            "ldr r10, [r12, #56]\n",
            "vadd.f32 q0, q0, r10\n",
            "vmul.f32 q0, q0, q1\n",
            "ldr r10, [r12, #60]\n",
            "vadd.f32 q0, q0, r10\n",
            "vmul.f32 q0, q0, q1\n",
            // k + ((2s + 2s p) + rounding).
            "vadd.f32 q3, q3, q3\n",
            "vmul.f32 q0, q3, q0\n",
            "vadd.f32 q0, q3, q0\n",
            "vadd.f32 q0, q0, q2\n",
            "vadd.f32 q0, q5, q0\n",
            // + (x > 0 ? x : 0); x > 20 ? x : that.
            "vmov.i32 q1, #0\n",
            "vpt.f32 gt, q4, q1\n",
            "vorrt q1, q4, q4\n",
            "vadd.f32 q0, q1, q0\n",
            "ldr r10, [r12, #64]\n",
            "vpt.f32 gt, q4, r10\n",
            "vorrt q0, q4, q4\n",
            "vstrw.32 q0, [r11]\n",
            // silu(z) = z / (1 + exp_fast(-z)), z in q4.
            "vldrw.u32 q4, [r11, #16]\n",
            "vneg.f32 q0, q4\n",
            exp_q0!(),
            "vadd.f32 q0, q0, q6\n",
            "vdiv.f32 s16, s16, s0\n",
            "vdiv.f32 s17, s17, s1\n",
            "vdiv.f32 s18, s18, s2\n",
            "vdiv.f32 s19, s19, s3\n",
            "vstrw.32 q4, [r11, #16]\n",
        )
    };
}

/// Four states of one channel, accumulating `h·c` into `$acc` (q4 or q5,
/// the reference's dot-product lanes 0-3 or 4-7, in either order: only
/// their lane-wise sum is used, and addition commutes). Registers: r0-r5
/// = [`CONSTS`][..6], r8 `a`, r9 `h`, r10 the record, r11 `delta`, r12
/// `u`; q0 x then r, q1 t then the scale, q2 m, the gather addresses,
/// then the polynomial, q3 temporary, q6 = 1.0. The record: +0 C, +16 B,
/// +32 saved state, +48 c3, +64 c2, +80 the table of `2^(k/8)`; r10 moves
/// to the next record with the last load.
macro_rules! four_states {
    ($acc:literal) => {
        concat!(
            // x = clamp(a delta, EXP_MIN, EXP_MAX), NaN kept.
            "vldrw.u32 q0, [r8], #16\n",
            "vmul.f32 q0, q0, r11\n",
            // Range reduction and scale bits, the table in the record.
            exp_reduce_q0!("r10", "80"),
            // p = 1 + r (1 + r (c2 + r c3)).
            "vldrw.u32 q3, [r10, #48]\n",
            "vmul.f32 q2, q0, q3\n",
            "vldrw.u32 q3, [r10, #64]\n",
            "vadd.f32 q2, q2, q3\n",
            "vmul.f32 q2, q2, q0\n",
            "vadd.f32 q2, q2, q6\n",
            "vmul.f32 q2, q2, q0\n",
            "vadd.f32 q2, q2, q6\n",
            // decay = p 2^n; h = decay h + (delta b) u, the old h saved.
            "vmul.f32 q2, q2, q1\n",
            "vldrw.u32 q0, [r9]\n",
            "vstrw.32 q0, [r10, #32]\n",
            "vmul.f32 q2, q2, q0\n",
            "vldrw.u32 q0, [r10, #16]\n",
            "vmul.f32 q0, q0, r11\n",
            "vmul.f32 q0, q0, r12\n",
            "vadd.f32 q2, q2, q0\n",
            "vstrw.32 q2, [r9], #16\n",
            // acc += h c.
            "vldrw.u32 q0, [r10], #112\n",
            "vmul.f32 q0, q2, q0\n",
            "vadd.f32 ",
            $acc,
            ", ",
            $acc,
            ", q0\n",
        )
    };
}

/// One block of `n` (1..=4) channels in assembly: softplus/silu of the
/// block (in `blk`), then per channel the state update, `C·h`, and `y =
/// (C·h + u D) silu(z)`, stored if no flush happened and it is not NaN.
/// Returns 0 when all `n` are done, [`GATES_FLUSHED`] if softplus/silu
/// flushed (nothing written), else the number of channels left counting
/// the one that stopped (its state overwritten, the old one saved in the
/// work records).
///
/// # Safety
/// `a` and `h` must point to `n · 4·chunks` floats (`h` writable), `y` to
/// `n` writable floats, `blk` describe `chunks >= 1` work records filled
/// as [`selective_scan`] does; FP and MVE enabled.
unsafe fn block_asm(blk: &mut Block, a: *const f32, h: *mut f32, y: *mut f32, n: usize) -> u32 {
    let left: u32;
    // SAFETY: see the function's contract; each channel reads `4·chunks`
    // floats at `a`, reads and writes as many at `h` (both advance past
    // them), reads/writes within the work records, and writes one output
    // at `y`. Every register used is an operand or declared clobbered;
    // the stack is used for push/pop pairs inside the block only.
    unsafe {
        asm_clobbering!(
            q0_q7,
            [],

            // Clear the FPSCR flags, then softplus/silu with r0-r5 =
            // constants, r11 = &blk.delta, r12 = CONSTS.
            "vmrs r10, fpscr",
            "bic r10, r10, #0x9f",
            "vmsr fpscr, r10",
            "push {{r0, r1, r3}}",
            "ldr r12, [r0, #36]",
            "add r11, r0, #40",
            "ldm r0, {{r0, r1, r2, r3, r4, r5}}",
            "vmov.f32 q6, #1.0",
            "vmov.f32 q7, #0.5",
            softplus_silu!(),
            "vmrs r10, fpscr",
            "pop {{r0, r1, r3}}",
            "tst r10, #{flushed}",
            "bne 9f",
            // Channels: r0 = blk, r1 = y, r2 = cursor in blk.delta, r3 =
            // channels left.
            "add r2, r0, #40",
            "1:",
            "ldr r11, [r2]",
            "ldr r12, [r2, #32]",
            "ldr r10, [r0, #28]",
            "ldr lr, [r0, #24]",
            "ldr r4, [r0, #32]",
            "push {{r0, r1, r2, r3}}",
            "cmp r4, #0",
            "ldm r0, {{r0, r1, r2, r3, r4, r5}}",
            "vmov.i32 q4, #0",
            "vmov.i32 q5, #0",
            "dls lr, lr",
            // An odd number of four-state steps enters the loop halfway.
            "bne 5f",
            "2:",
            four_states!("q5"),
            "5:",
            four_states!("q4"),
            "le lr, 2b",
            // The reference's reduction ((l0 + l4) + (l2 + l6)) +
            // ((l1 + l5) + (l3 + l7)): lane sums in MVE, the rest on the
            // scalar FPU (s16-s19 are q4); then y on the scalar FPU.
            "vadd.f32 q4, q4, q5",
            "vadd.f32 s16, s16, s18",
            "vadd.f32 s17, s17, s19",
            "vadd.f32 s16, s16, s17",
            "pop {{r0, r1, r2, r3}}",
            "vmov s1, r12",
            "vldr s0, [r2, #48]",
            "vmul.f32 s0, s1, s0",
            "vadd.f32 s16, s16, s0",
            "vldr s0, [r2, #16]",
            "vmul.f32 s16, s16, s0",
            "vmrs r4, fpscr",
            "tst r4, #{flushed}",
            "bne 8f",
            "vcmp.f32 s16, s16",
            "vmrs APSR_nzcv, fpscr",
            "bvs 8f",
            "vstmia r1!, {{s16}}",
            "adds r2, #4",
            "subs r3, #1",
            "bne 1b",
            "b 8f",
            "9:",
            "mov r3, #-1",
            "8:",
            flushed = const FLUSHED,
            inout("r0") blk as *mut Block => _,
            inout("r1") y => _,
            out("r2") _,
            inout("r3") n as u32 => left,
            out("r4") _,
            out("r5") _,
            inout("r8") a => _,
            inout("r9") h => _,
            out("r10") _,
            out("r11") _,
            out("r12") _,
            out("lr") _,
        );
    }
    left
}

/// See [`crate::vector::SelectiveScanTokens`]: this set's one-token scan,
/// token by token.
pub fn selective_scan_tokens(args: &crate::ScanTokens<'_>, state: &mut [f32], y: &mut [f32]) {
    crate::vector::selective_scan_by_token(selective_scan, args, state, y);
}
