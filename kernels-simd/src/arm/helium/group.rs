//! One group's exact integer dot product with `VMLADAVA` (W8, W4, W2; one
//! row or two at once).

use core::arch::asm;

/// Σ code·act over one W8 group of `n` codes (`n` a multiple of 32).
///
/// # Safety
/// `codes` and `acts` must hold at least `n` bytes each, `n >= 32`.
pub(super) unsafe fn group_dot_w8(codes: *const u8, acts: *const i8, n: usize) -> i32 {
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
pub(super) unsafe fn group_dot_w4(codes: *const u8, acts: *const i8, n: usize) -> i32 {
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
pub(super) unsafe fn group_dot_w2(codes: *const u8, acts: *const i8, n: usize) -> i32 {
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
pub(super) unsafe fn group_dot_w2_x2(c0: *const u8, c1: *const u8, acts: *const i8, n: usize) -> [i32; 2] {
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
pub(super) unsafe fn group_dot_w8_x2(c0: *const u8, c1: *const u8, acts: *const i8, n: usize) -> [i32; 2] {
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
