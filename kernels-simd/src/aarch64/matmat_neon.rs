//! Multi-token kernel (prefill) with plain NEON (`smull`/`smlal` into i16,
//! `sadalp` into i32), for CPUs without `sdot` (Cortex-A53/A72, Pi 3/4).
//!
//! Four rows times four tokens per pass, over blocks of rows small enough
//! to stay in cache while every batch of tokens passes over them. The loop
//! order keeps the sixteen (token, row) i32 accumulators in registers: per
//! 32 codes the four tokens' activations are loaded first (eight vectors),
//! then each row's codes are unpacked (two vectors, loaded and unpacked
//! once for all four tokens) and multiplied with every token at once, so
//! only one row's codes are live at a time. Each (token, row) result comes
//! from exactly the operations of the plain-NEON matrix-vector kernel
//! (`group::unit_dot`, the same group sums and f32 group arithmetic), so it
//! is bit-exact with the scalar reference.

use super::group::{by_kind, unit_dot, unpack, Kind, Unit};
use super::matmat::{matmat_with, rows4_tokens, wide_half, Batch, GroupAcc, UnitAt, UnitDot, TOKENS};
use crate::{ActsI8, QuantMatrix};
use core::arch::aarch64::*;

/// [`crate::MatmatI8`] with plain NEON multiplies. For shapes the kernels
/// do not cover, the matrix-vector product per token; the tokens after the
/// last whole batch of four, and rows after the last block of four, use
/// the plain-NEON matrix-vector kernel.
pub fn matmat_i8_neon(w: QuantMatrix<'_>, acts: &[ActsI8<'_>], out: &mut [f32], perm: &mut [i8]) {
    // SAFETY: NEON is present (this module compiles only with it), which
    // is all `rows4_tokens_kind` and the plain matrix-vector kernel need.
    unsafe { matmat_with(false, rows4_tokens_kind, w, acts, out, perm) }
}

/// 32 codes of one row unpacked to two vectors in the matrix-vector
/// kernel's order: for W2 in 64-code units (`WIDE`), half `h` of the unit
/// (its vectors `2h`, `2h + 1`) from the unit's 16 bytes at `c`; otherwise
/// the 32-code unit at `c` (`group::unpack`).
///
/// # Safety
/// NEON must be present; `c` points at the unit's readable code bytes.
#[inline(always)]
unsafe fn unpack_half<const BITS: u32, const WIDE: bool>(c: *const u8, h: usize) -> Unit {
    // SAFETY: per the contract; W2 wide reads the unit's 16 bytes.
    unsafe {
        if !WIDE {
            return unpack::<BITS, false>(c);
        }
        wide_half(vld1q_u8(c), h)
    }
}

/// The plain-NEON loop order: the four rows' codes are unpacked first,
/// then each token's activations are loaded once for all rows
/// ([`half_dot`]).
struct Mull;

impl UnitDot for Mull {
    #[inline(always)]
    unsafe fn unit<const BITS: u32, const WIDE: bool>(at: &UnitAt, acc: &mut GroupAcc) {
        // SAFETY: reads inside the unit's codes and activations (the
        // second half only for W2's 64-code units); NEON per the contract.
        unsafe {
            half_dot::<BITS, WIDE, 0>(&at.codes, &at.xs, 0, acc);
            if WIDE {
                half_dot::<BITS, WIDE, 1>(&at.codes, &at.xs, 32, acc);
            }
        }
    }
}

/// 32 codes (half `H` of a W2 64-code unit if `WIDE`) of four rows times
/// four tokens: `acc[t][r] += Σ w·x` for the codes at `codes[r]` and token
/// `t`'s activations at `x_at[t] + at`. The four rows' codes are unpacked
/// first, then each token's activations are loaded once for all rows.
///
/// # Safety
/// NEON must be present; each `codes[r]` points at the unit's readable
/// code bytes, each `x_at[t] + at` at 32 readable activations.
#[inline(always)]
unsafe fn half_dot<const BITS: u32, const WIDE: bool, const H: usize>(
    codes: &[*const u8; 4],
    x_at: &[*const i8; TOKENS],
    at: usize,
    acc: &mut GroupAcc,
) {
    // SAFETY: per the contract.
    unsafe {
        let zero = vdupq_n_s8(0);
        let w: [Unit; 4] = core::array::from_fn(|r| unpack_half::<BITS, WIDE>(codes[r], H));
        for (acc_t, xs) in acc.iter_mut().zip(x_at) {
            let xs = xs.add(at);
            let x: Unit = [vld1q_s8(xs), vld1q_s8(xs.add(16)), zero, zero];
            for (a, wr) in acc_t.iter_mut().zip(&w) {
                *a = unit_dot::<BITS, false, false>(*a, wr, &x);
            }
        }
    }
}

/// [`rows4_tokens`] with [`Mull`], dispatched on `b.kind`.
///
/// # Safety
/// As [`rows4_tokens`].
unsafe fn rows4_tokens_kind(b: &Batch<'_>, rows: *const u8, out: &mut [f32], stride: usize) {
    // SAFETY: same contract.
    unsafe { by_kind!(b.kind, BITS, WIDE => rows4_tokens::<Mull, BITS, WIDE>(b, rows, out, stride)) }
}
