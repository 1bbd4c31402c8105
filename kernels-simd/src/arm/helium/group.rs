//! One group's exact integer dot product with `VMLADAVA` (W8, W4, W2; one
//! row or two at once).

use core::arch::asm;

/// A loop over one group: `$body` (which sets up and ends in the label
/// `2:` at its loop start) runs `$iters` times with the codes at r1 and the
/// activations at r2, accumulating into r0; returns the i32 sum.
macro_rules! dot_loop {
    ($codes:expr, $acts:expr, $iters:expr, $($body:expr),+ $(,)?) => {{
        let mut acc = 0i32;
        mve_asm!(
            $($body,)+
            "subs r3, #1",
            "bne 2b",
            inout("r0") acc,
            inout("r1") $codes => _,
            inout("r2") $acts => _,
            inout("r3") $iters => _,
        );
        acc
    }};
}

/// Eight W8 codes (r1) times eight activations (r2), zero- and
/// sign-extended to 16-bit lanes in `$w` and `$a`, added to r0.
macro_rules! w8_step {
    ($w:literal, $a:literal) => {
        concat!(
            "vldrb.u16 ",
            $w,
            ", [r1], #8\n",
            "vldrb.s16 ",
            $a,
            ", [r2], #8\n",
            "vmladava.s16 r0, ",
            $w,
            ", ",
            $a,
        )
    };
}

/// A middle 2-bit plane (bits `$shift..$shift + 2`) of the codes in q0
/// (`$u` lanes, mask 3 in q3) times the next vector of activations (`$s`
/// lanes from r2, `$step` bytes), added to r0.
macro_rules! w2_plane {
    ($u:literal, $s:literal, $shift:literal, $step:literal) => {
        concat!(
            "vshr.",
            $u,
            " q1, q0, #",
            $shift,
            "\n",
            "vand q1, q1, q3\n",
            "vldrb.",
            $s,
            " q2, [r2], ",
            $step,
            "\n",
            "vmladava.",
            $s,
            " r0, q1, q2\n",
        )
    };
}

/// The four 2-bit planes of the codes in q0 (`$u` lanes, mask 3 in q3)
/// times the next four vectors of activations (`$s` lanes from r2, `$step`
/// bytes each; `$last` is the last load's post-increment), added to r0.
/// The top plane needs no mask: the shift leaves only its two bits.
macro_rules! w2_planes {
    ($u:literal, $s:literal, $step:literal, $last:literal) => {
        concat!(
            "vand q1, q0, q3\n",
            "vldrb.",
            $s,
            " q2, [r2], ",
            $step,
            "\n",
            "vmladava.",
            $s,
            " r0, q1, q2\n",
            w2_plane!($u, $s, "2", $step),
            w2_plane!($u, $s, "4", $step),
            "vshr.",
            $u,
            " q1, q0, #6\n",
            "vldrb.",
            $s,
            " q2, [r2]",
            $last,
            "\n",
            "vmladava.",
            $s,
            " r0, q1, q2",
        )
    };
}

/// One middle 2-bit plane (bits `$shift..$shift + 2`, mask 3 in q3) of
/// both rows' codes (q0, q1) times the activations in `$a`, added to r0
/// and r4.
macro_rules! w2_x2_plane {
    ($shift:literal, $a:literal) => {
        concat!(
            "vshr.u8 q2, q0, #",
            $shift,
            "\n",
            "vand q2, q2, q3\n",
            "vmladava.s8 r0, q2, ",
            $a,
            "\n",
            "vshr.u8 q2, q1, #",
            $shift,
            "\n",
            "vand q2, q2, q3\n",
            "vmladava.s8 r4, q2, ",
            $a,
        )
    };
}

/// Sixteen W8 codes of both rows (r1, r5) as `c - 128` (0x80 in q3) times
/// sixteen activations (r2), added to r0 and r4; their sum to r8.
macro_rules! w8_x2_step {
    () => {
        concat!(
            "vldrb.u8 q2, [r2], #16\n",
            "vldrb.u8 q0, [r1], #16\n",
            "vldrb.u8 q1, [r5], #16\n",
            "veor q0, q0, q3\n",
            "veor q1, q1, q3\n",
            "vmladava.s8 r0, q0, q2\n",
            "vmladava.s8 r4, q1, q2\n",
            "vaddva.s8 r8, q2",
        )
    };
}

/// Σ code·act over one W8 group of `n` codes (`n` a multiple of 32).
///
/// # Safety
/// `codes` and `acts` must hold at least `n` bytes each, `n >= 32`.
pub(super) unsafe fn group_dot_w8(codes: *const u8, acts: *const i8, n: usize) -> i32 {
    // SAFETY: the caller guarantees n readable bytes at both pointers; the
    // loop reads exactly n bytes from each (n / 32 iterations of 4 × 8).
    unsafe {
        dot_loop!(
            codes,
            acts,
            n / 32,
            "2:",
            w8_step!("q0", "q1"),
            w8_step!("q2", "q3"),
            w8_step!("q0", "q1"),
            w8_step!("q2", "q3"),
        )
    }
}

/// Σ code·act over one W4 group of `n` codes (`n` a multiple of 32), with
/// activations permuted per 32.
///
/// # Safety
/// `codes` must hold `n / 2` bytes and `acts` `n`, `n >= 32`.
pub(super) unsafe fn group_dot_w4(codes: *const u8, acts: *const i8, n: usize) -> i32 {
    // SAFETY: n / 32 iterations each read 16 code bytes and 32 activation
    // bytes, exactly what the caller guarantees.
    unsafe {
        dot_loop!(
            codes,
            acts,
            n / 32,
            "vmov.i8 q3, #15",
            "2:",
            "vldrb.u8 q0, [r1], #16",
            "vand q1, q0, q3",
            "vshr.u8 q0, q0, #4",
            "vldrb.s8 q2, [r2], #16",
            "vmladava.s8 r0, q1, q2",
            "vldrb.s8 q2, [r2], #16",
            "vmladava.s8 r0, q0, q2",
        )
    }
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
                w2_planes!("u8", "s8", "#16", ", #16"),
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
                w2_planes!("u16", "s16", "#8", ""),
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
            w2_x2_plane!(2, "q5"),
            w2_x2_plane!(4, "q6"),
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
            w8_x2_step!(),
            w8_x2_step!(),
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
