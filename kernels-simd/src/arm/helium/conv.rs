//! Mamba's causal depthwise convolution (width 4) + SiLU on Helium,
//! bit-exact with [`causal_conv_silu_step`] (see the parent module for how
//! MVE's flushing and default NaN are caught).
//!
//! Two passes over blocks of four channels, one channel per lane. The
//! convolution: `VLD40..VLD43` de-interleave the block's 4×4 weights into
//! one vector per tap, gathers (`VLDRW` with a vector of addresses) read the
//! three window values of each channel, and the sum is the reference's,
//! `((((0 + w0 x0) + w1 x1) + w2 x2) + w3 x) + b`; the window shifts (by
//! scatter stores) only after the block's flags and NaN check passed.
//! Then SiLU, `z / (1 + exp_fast(-z))`, in place. A block that flushed or
//! gave a NaN is computed by the reference instead, and the pass resumes
//! after it; channels after the last whole block run the reference.

use super::{CONSTS, FLUSHED, LANES};
use crate::math::{causal_conv_silu_step, causal_conv_step, silu};
use crate::ConvWeights;
use core::arch::asm;

/// Taps of the convolution the kernel takes (Mamba's `d_conv`).
const WIDTH: usize = 4;

/// See [`crate::ConvSilu`]; bit-exact with [`causal_conv_silu_step`].
/// Widths other than 4, or buffers shorter than the channel count asks,
/// run the reference.
pub fn conv_silu(w: &ConvWeights<'_>, window: &mut [f32], xs: &[f32], out: &mut [f32]) {
    let n = out.len();
    if !w.fits(WIDTH, window, xs, n) {
        causal_conv_silu_step(w, window, xs, out);
        return;
    }
    let ConvWeights { weight, bias, .. } = *w;
    let blocks = n / LANES;
    let mut done = 0;
    while done < blocks {
        let c0 = done * LANES;
        // SAFETY: channels `c0..blocks·4` have 4 weights, 3 window values,
        // an input, an output and (if any) a bias each (checked above).
        let left = unsafe {
            conv_blocks(
                weight[c0 * WIDTH..].as_ptr(),
                bias.map_or(core::ptr::null(), |b| b[c0..].as_ptr()),
                window[c0 * (WIDTH - 1)..].as_mut_ptr(),
                xs[c0..].as_ptr(),
                out[c0..].as_mut_ptr(),
                blocks - done,
            )
        };
        if left == 0 {
            break;
        }
        // The block that stopped: the reference (no SiLU yet).
        let ch = (blocks - left) * LANES;
        let part = ch..ch + LANES;
        causal_conv_step(
            &w.from_channel(ch),
            &mut window[ch * (WIDTH - 1)..],
            &xs[part.clone()],
            &mut out[part],
        );
        done = blocks - left + 1;
    }
    let tail = blocks * LANES;
    causal_conv_step(&w.from_channel(tail), &mut window[tail * (WIDTH - 1)..], &xs[tail..], &mut out[tail..]);
    let mut done = 0;
    while done < blocks {
        // SAFETY: `out` holds `blocks·4` floats.
        let left = unsafe { silu_blocks(out[done * LANES..].as_mut_ptr(), blocks - done) };
        if left == 0 {
            break;
        }
        let ch = (blocks - left) * LANES;
        for o in &mut out[ch..ch + LANES] {
            *o = silu(*o);
        }
        done = blocks - left + 1;
    }
    for o in &mut out[tail..] {
        *o = silu(*o);
    }
}

/// The convolution of `blocks` blocks of four channels. Returns 0, or the
/// number of blocks left counting one that flushed or gave a NaN (nothing
/// of it written).
///
/// # Safety
/// `weight` must point to `16·blocks` floats, `window` to `12·blocks`
/// (writable), `xs` and `out` (writable) to `4·blocks`, `bias` to
/// `4·blocks` or be null; `blocks >= 1`; FP and MVE enabled.
unsafe fn conv_blocks(
    weight: *const f32,
    bias: *const f32,
    window: *mut f32,
    xs: *const f32,
    out: *mut f32,
    blocks: usize,
) -> usize {
    // The four channels' window addresses, 12 bytes apart.
    let base = window as u32;
    let addrs = [base, base + 12, base + 24, base + 36];
    let left: usize;
    // SAFETY: each pass reads 16 weights, 12 window values (gathers at
    // `addrs`), 4 inputs and 4 biases, and writes 4 outputs and 12 window
    // values, all within the caller's bounds, advancing by one block; q0-q7
    // and the named registers are operands or clobbers; no stack.
    unsafe {
        asm_clobbering!(
            q0_q7,
            [nostack],

            "vmrs r0, fpscr",
            "bic r0, r0, #0x9f",
            "vmsr fpscr, r0",
            "vldrw.u32 q7, [{addrs}]",
            "dls lr, lr",
            "2:",
            "vld40.32 {{q0, q1, q2, q3}}, [{w}]",
            "vld41.32 {{q0, q1, q2, q3}}, [{w}]",
            "vld42.32 {{q0, q1, q2, q3}}, [{w}]",
            "vld43.32 {{q0, q1, q2, q3}}, [{w}]!",
            "vldrw.u32 q4, [q7]",
            "vldrw.u32 q5, [q7, #4]",
            "vldrw.u32 q6, [q7, #8]",
            // acc = (((0 + w0 x0) + w1 x1) + w2 x2) + w3 x.
            "vmul.f32 q0, q0, q4",
            "vmov.i32 q4, #0",
            "vadd.f32 q4, q4, q0",
            "vmul.f32 q0, q1, q5",
            "vadd.f32 q4, q4, q0",
            "vmul.f32 q0, q2, q6",
            "vadd.f32 q4, q4, q0",
            "vldrw.u32 q1, [{x}], #16",
            "vmul.f32 q0, q3, q1",
            "vadd.f32 q4, q4, q0",
            "cbz r1, 3f",
            "vldrw.u32 q0, [r1], #16",
            "vadd.f32 q4, q4, q0",
            "3:",
            // Stop before any store if flushed or NaN.
            "vmrs r0, fpscr",
            "tst r0, #{flushed}",
            "bne 9f",
            "vcmp.f32 ne, q4, q4",
            "vmrs r0, p0",
            "cbnz r0, 9f",
            "vstrw.32 q4, [{o}], #16",
            "vstrw.32 q5, [q7]",
            "vstrw.32 q6, [q7, #4]",
            "vstrw.32 q1, [q7, #8]",
            "vadd.i32 q7, q7, {step}",
            "le lr, 2b",
            "mov lr, #0",
            "9:",
            flushed = const FLUSHED,
            addrs = in(reg) addrs.as_ptr(),
            w = inout(reg) weight => _,
            inout("r1") bias => _,
            x = inout(reg) xs => _,
            o = inout(reg) out => _,
            step = in(reg) 48u32,
            out("r0") _,
            inout("lr") blocks => left,
        );
    }
    left
}

/// `silu` in place over `blocks` blocks of four floats. Returns 0, or the
/// number of blocks left counting one that flushed or gave a NaN (left
/// unchanged).
///
/// # Safety
/// `v` must point to `4·blocks` writable floats; `blocks >= 1`; FP and
/// MVE enabled.
unsafe fn silu_blocks(v: *mut f32, blocks: usize) -> usize {
    let left: usize;
    // SAFETY: each pass reads and writes four floats at `v`, advancing by
    // four, `blocks` times at most; q0-q7 and r0-r5, r10 clobbered; no
    // stack.
    unsafe {
        asm_clobbering!(
            q0_q7,
            [nostack],

            "vmrs r10, fpscr",
            "bic r10, r10, #0x9f",
            "vmsr fpscr, r10",
            "ldm r12, {{r0, r1, r2, r3, r4, r5}}",
            "vmov.f32 q6, #1.0",
            "vmov.f32 q7, #0.5",
            "dls lr, lr",
            "2:",
            // z / (1 + exp_fast(-z)), z in q4.
            "vldrw.u32 q4, [{v}]",
            "vneg.f32 q0, q4",
            exp_q0!(),
            "vadd.f32 q0, q0, q6",
            "vdiv.f32 s16, s16, s0",
            "vdiv.f32 s17, s17, s1",
            "vdiv.f32 s18, s18, s2",
            "vdiv.f32 s19, s19, s3",
            "vmrs r10, fpscr",
            "tst r10, #{flushed}",
            "bne 9f",
            "vcmp.f32 ne, q4, q4",
            "vmrs r10, p0",
            "cmp r10, #0",
            "bne 9f",
            "vstrw.32 q4, [{v}], #16",
            "le lr, 2b",
            "mov lr, #0",
            "9:",
            flushed = const FLUSHED,
            v = inout(reg) v => _,
            in("r12") CONSTS.as_ptr(),
            inout("lr") blocks => left,
            out("r0") _, out("r1") _, out("r2") _, out("r3") _, out("r4") _, out("r5") _,
            out("r10") _,
        );
    }
    left
}

/// See [`crate::vector::ConvSiluTokens`]: this set's one-token convolution,
/// token by token.
pub fn conv_silu_tokens(args: &crate::ConvTokens<'_>, window: &mut [f32], out: &mut [f32]) {
    crate::vector::conv_silu_by_token(conv_silu, args, window, out);
}
