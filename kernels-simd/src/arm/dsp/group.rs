//! One group's exact integer dot product on the DSP extension (`SMLAD`
//! on halfword pairs), for W8, W4 and W2 codes.

use core::arch::asm;

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
#[inline(always)]
unsafe fn word(p: *const u8) -> u32 {
    // SAFETY: the caller guarantees 4 readable bytes.
    u32::from_le(unsafe { core::ptr::read_unaligned(p as *const u32) })
}

/// Σ code·act over one W8 group of `n` codes for `R` rows at once
/// (activations in order, sign-extended once for all rows).
///
/// # Safety
/// Each `c[r]` and `a` must point to `n` readable bytes, `n` a multiple
/// of 8.
#[inline(always)]
pub(super) unsafe fn group_dot_w8<const R: usize>(
    mut c: [*const u8; R],
    mut a: *const u8,
    n: usize,
) -> [i32; R] {
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
pub(super) unsafe fn group_dot_w4<const R: usize>(
    mut c: [*const u8; R],
    mut a: *const u8,
    n: usize,
) -> [i32; R] {
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
pub(super) unsafe fn group_dot_w2<const R: usize>(
    mut c: [*const u8; R],
    mut a: *const u8,
    n: usize,
) -> [i32; R] {
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
