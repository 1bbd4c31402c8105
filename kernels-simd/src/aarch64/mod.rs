//! aarch64 kernels: plain NEON (`neon`, every aarch64 CPU with Advanced
//! SIMD) and NEON with the Armv8.2 dot-product instruction (`neon-sdot`,
//! `sdot` via `asm!` because `vdotq_s32` is unstable; only selected when
//! the CPU has `dotprod`).
//!
//! Integer path: codes are unpacked to 16-lane i8 vectors with shifts and
//! masks (W2: 64 codes from one 16-byte load when the group is a multiple
//! of 64, else 32 from 8 bytes; W4: 32 from 16 bytes) or re-biased to i8
//! (W8, `w = c - 128`, corrected with `128 Σx` per group). Unpacking
//! leaves W2/W4 codes in a fixed permuted order, so the activations are
//! permuted the same way once per matrix-vector product (`ld4`/`ld2`).
//! Rows go in blocks of four: each unit of activations is loaded once and
//! multiplied with the same unit of the four rows. `neon` multiplies with
//! `smull`/`smlal` into i16 and widens into i32 with `sadalp`; `neon-sdot`
//! accumulates four products per i32 lane with `sdot`. Both give the
//! reference's exact i32 group sums, and the f32 group math runs with one
//! row per lane in the reference's order (no FMA), so results are
//! bit-exact. Group headers of the four rows are loaded as four u32 and
//! split into scales and mins with `xtn`/`shrn`, widened with `fcvtl`.
//! The f32/f16 matrix-vector products use the reference's 8-lane order
//! (two 4-lane accumulators), f16 widened with `fcvtl`. Attention over
//! the KV cache (`kv_scores`, `kv_mix`, both sets): see [`kv`]. The f32
//! work of the recurrent layers and activation quantization
//! (both sets): see `scan` and `acts`.

mod acts;
mod causal_conv;
mod conv;
mod delta_rule;
mod float;
pub mod float_tokens;
mod gated_outer_product;
mod generalized_delta_rule;
mod group;
pub mod kv;
mod matmat;
mod matmat_neon;
mod matvec;
mod rg_lru;
mod rnn_gates;
mod scan;
mod scan_heads;
mod silu_mul;
mod state_lanes;
mod token_lanes;
mod wkv;

pub(crate) use token_lanes::scratch_len as token_lanes_scratch_len;

pub use float::{matvec_f16, matvec_f32};
pub use matmat::matmat_i8_sdot;
pub use matvec::{matvec_i8_neon, matvec_i8_sdot};

use crate::{Kernels, SCALAR};
use core::arch::aarch64::*;

/// Plain NEON kernels (every aarch64 CPU this module compiles for). The
/// vector kernels (activation quantization, scan, convolution) are the
/// same in both NEON sets: they need no `dotprod`.
pub const NEON: Kernels = vector_set! {
    name: "neon",
    matvec_i8: matvec_i8_neon,
    matmat_i8: Some(matmat_neon::matmat_i8_neon),
    matmat_f16: Some(float_tokens::matmat_f16),
    matvec_f32,
    matvec_f16,
    kv_scores: kv::kv_scores,
    kv_mix: kv::kv_mix,
    quantize_acts: crate::acts_pass::quantize_activations_i8::<acts::NeonGroups>,
    conv_silu: conv::conv_silu,
    conv_silu_tokens: conv::conv_silu_tokens,
    selective_scan: scan::selective_scan,
    selective_scan_tokens: scan::selective_scan_tokens,
};

/// NEON + `sdot` kernels; only selected when the CPU has `dotprod`.
pub const NEON_SDOT: Kernels = Kernels {
    name: "neon-sdot",
    available: dotprod_available,
    matvec_i8: matvec_i8_sdot,
    matmat_i8: Some(matmat_i8_sdot),
    ..NEON
};

/// True if this CPU has the dot-product instructions (`sdot`) that the
/// `neon-sdot` set needs: detected at run time with `std`, from
/// `target_feature` (e.g. `-C target-cpu=cortex-a76`) without it.
pub fn dotprod_available() -> bool {
    #[cfg(feature = "std")]
    {
        std::arch::is_aarch64_feature_detected!("dotprod")
    }
    #[cfg(not(feature = "std"))]
    {
        cfg!(target_feature = "dotprod")
    }
}

/// An f16-to-f32 widening instruction (`$insn {out}, {inp}`) as a
/// function from `$input` (raw f16 bits) to four f32 values (exact).
/// Written with `asm!`: the f16 vector intrinsics are unstable.
macro_rules! f16_widen {
    ($(#[$doc:meta])* $name:ident($input:ty) = $insn:literal) => {
        $(#[$doc])*
        ///
        /// # Safety
        /// NEON must be present (f16 conversion is part of base Armv8
        /// Advanced SIMD).
        #[inline(always)]
        unsafe fn $name(bits: $input) -> float32x4_t {
            let out: float32x4_t;
            // SAFETY: a register-only conversion instruction of base Armv8
            // NEON; no memory, stack or flags touched.
            unsafe {
                core::arch::asm!(
                    $insn,
                    out = out(vreg) out,
                    inp = in(vreg) bits,
                    options(pure, nomem, nostack, preserves_flags)
                );
            }
            out
        }
    };
}

f16_widen!(
    /// Four f16 values widened to f32 with `fcvtl`.
    f16x4_to_f32(uint16x4_t) = "fcvtl {out:v}.4s, {inp:v}.4h"
);
f16_widen!(
    /// The upper four f16 values of `bits` widened to f32 with `fcvtl2`.
    f16x8_high_to_f32(uint16x8_t) = "fcvtl2 {out:v}.4s, {inp:v}.8h"
);
