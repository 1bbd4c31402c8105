//! Armv7E-M kernels (Cortex-M4/M7, and any core with the DSP extension):
//! the dual 16-bit multiply-accumulate `SMLAD`.
//!
//! One 32-bit word of packed codes is split into halfword pairs with a
//! mask (`(w >> s) & 0x000m000m` puts one code in each halfword), and four
//! int8 activations are sign-extended into two halfword pairs with
//! `SXTB16` (bytes 0 and 2) and `SXTB16 ..., ROR #8` (bytes 1 and 3).
//! `SMLAD` then adds both products to an i32 accumulator. Codes are at most
//! 255 and activations at most 127 in magnitude, so every product and every
//! group sum is exact, as in the reference.
//!
//! The pairs a word yields are codes `(i, i + n/2)` for a word of `n`
//! codes, so the activations are reordered once per matrix-vector product
//! (into the caller's `perm` scratch) so that each activation word lines up
//! with two such pairs. W8 needs no reordering.
//!
//! Rows are processed two at a time so that each activation word is
//! loaded and sign-extended once for both (W2's pair step is one block of
//! assembly: as separate instructions the compiler spilled the
//! sign-extended pairs). Group headers are widened from f16 with a short
//! exact integer path for normal numbers.
//!
//! Only the integer kernel is specialised: f32/f16 matrix-vector products
//! use the scalar kernels (they are bit-exact by definition).

mod group;
mod matvec;

pub use matvec::matvec_i8;

use crate::{Kernels, SCALAR};

/// The DSP-extension kernel set (compiled when the target has `dsp`).
/// Only the integer product is its own; the rest is the reference's.
pub const DSP: Kernels = Kernels { name: "dsp", matvec_i8, ..SCALAR };

/// f16 bits to f32, the same value `half` (and so the reference) gives:
/// normal numbers by rebiasing the exponent (a few integer instructions,
/// exact), zeros, subnormals, infinities and NaNs through `half`.
#[inline(always)]
pub fn f16_to_f32(h: u16) -> f32 {
    let h32 = h as u32;
    let exp = h32 & 0x7c00;
    if exp != 0 && exp != 0x7c00 {
        f32::from_bits(((h32 & 0x8000) << 16) | (((h32 & 0x7fff) << 13) + ((127 - 15) << 23)))
    } else {
        half::f16::from_bits(h).to_f32()
    }
}
