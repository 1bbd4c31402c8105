//! x86-64 kernels: AVX2 (+F16C for f16 weights and parameters, +FMA where
//! a fused multiply-add is provably exact, see [`kv`]).
//!
//! Integer weights × int8 activations: see [`matvec`] and [`matmat`]
//! (2:4 sparse weights: `sparse24`). Attention over the KV
//! cache (`kv_scores`, `kv_mix`): see [`kv`]. Activation quantization: see
//! [`acts`]; the f32 work of the recurrent layers (selective scan): see
//! [`scan`] (one token) and `scan_tokens` (a prefill chunk).

pub mod acts;
pub mod amx;
mod amx_tiles;
mod causal_conv;
pub mod conv;
mod conv_tokens;
mod delta_rule;
pub mod float;
mod float_tiles;
pub mod float_tokens;
mod gated_outer_product;
mod generalized_delta_rule;
mod group;
pub mod kv;
pub mod matmat;
pub mod matvec;
mod rg_lru;
mod rnn_gates;
pub mod scan;
mod scan_heads;
mod scan_tokens;
mod silu_mul;
mod sparse24;
mod state_lanes;
mod token_lanes;
pub mod vnni;
mod wkv;

pub(crate) use token_lanes::scratch_len as matmat_scratch_len;

pub use float::{matvec_f16, matvec_f32};
pub use matmat::matmat_i8;
pub use matvec::matvec_i8;

use crate::{Kernels, SCALAR};
use core::arch::x86_64::*;

/// AVX2 kernels; only selected when the CPU has AVX2, FMA and F16C (every
/// AVX2 CPU from Intel Haswell and AMD Zen on has all three).
pub const AVX2: Kernels = vector_set! {
    name: "avx2",
    available: avx2_available,
    matvec_i8,
    matvec_sparse24_i8: sparse24::matvec_sparse24_i8,
    matmat_i8: Some(matmat_i8),
    matmat_f16: Some(float_tokens::matmat_f16),
    matmat_f32: Some(float_tiles::matmat_f32),
    matvec_f32,
    matvec_f16,
    kv_scores: kv::kv_scores,
    kv_mix: kv::kv_mix,
    quantize_acts: crate::acts_pass::quantize_activations_i8::<acts::Avx2Groups>,
    conv_silu: conv::conv_silu,
    conv_silu_tokens: conv_tokens::conv_silu_tokens,
    selective_scan: scan::selective_scan,
    selective_scan_tokens: scan_tokens::selective_scan_tokens,
};

/// The AVX2 kernels with AVX-512 VNNI's `vpdpbusd` for the integer dot
/// products ([`vnni`]); the rest is the AVX2 set's. Only used when asked
/// for (not faster at decode on the AVX-512 EPYC, see [`vnni`]).
pub const AVX512_VNNI: Kernels = Kernels {
    name: "avx512-vnni",
    available: vnni::vnni_available,
    auto: crate::by_name_only,
    matvec_i8: vnni::matvec_i8,
    matmat_i8: Some(vnni::matmat_i8),
    ..AVX2
};

/// AVX2's one-token products with AVX-512 VNNI's multi-token products:
/// decode as `avx2`, prefill as `avx512-vnni`. Chosen automatically on AMD
/// CPUs with AVX-512 VNNI, where `avx512-vnni` measured faster than `avx2`
/// at prefill and slower at decode (README, "Kernels"). On Intel `avx2`
/// stays automatic: on the Xeon measured so far `avx512-vnni` went the
/// other way (decode faster, prefill slower), which this set does not
/// mix.
pub const AVX2_VNNI_PREFILL: Kernels = Kernels {
    name: "avx2-vnni-prefill",
    available: vnni::vnni_available,
    auto: amd_cpu,
    matmat_i8: Some(vnni::matmat_i8),
    ..AVX2
};

/// The `avx512-vnni` set with AMX tiles for the multi-token integer
/// products (prefill, [`amx`]): only where the guarded check
/// ([`amx::amx_available`]) passes, and then automatic: on the Xeon it
/// was measured on, it prefilled faster than the other sets (most at
/// w2a8; BENCHMARKS.md, "AMX tiles for prefill"), and its decode is
/// `avx512-vnni`'s, which decodes faster than `avx2` on Intel (README,
/// "Kernels").
pub const AVX512_AMX: Kernels = Kernels {
    name: "avx512-amx",
    available: amx::amx_available,
    auto: crate::always_available,
    matmat_i8: Some(amx::matmat_i8),
    ..AVX512_VNNI
};

/// True on an AMD CPU (CPUID vendor string "AuthenticAMD").
pub fn amd_cpu() -> bool {
    // SAFETY: CPUID leaf 0 exists on every x86-64 CPU (the intrinsic is a
    // safe function on newer compilers, hence the allow).
    #[allow(unused_unsafe)]
    let id = unsafe { __cpuid(0) };
    let vendor = |s: &[u8; 4]| u32::from_le_bytes(*s);
    (id.ebx, id.edx, id.ecx) == (vendor(b"Auth"), vendor(b"enti"), vendor(b"cAMD"))
}

/// True if this CPU runs the AVX2 kernels.
pub fn avx2_available() -> bool {
    #[cfg(feature = "std")]
    {
        std::is_x86_feature_detected!("avx2")
            && std::is_x86_feature_detected!("fma")
            && std::is_x86_feature_detected!("f16c")
    }
    #[cfg(not(feature = "std"))]
    {
        cfg!(all(target_feature = "avx2", target_feature = "fma", target_feature = "f16c"))
    }
}

/// Lane `i` of the result = the reference's pairwise lane sum of `v[i]`
/// (`((a0 + a4) + (a2 + a6)) + ((a1 + a5) + (a3 + a7))`), eight at once.
#[inline(always)]
pub(crate) unsafe fn reduce_lanes8(v: &[__m256; 8]) -> __m256 {
    // Halves added: [vi: a0+a4, a1+a5, a2+a6, a3+a7 | vj: ...].
    let halves = |i: usize, j: usize| {
        _mm256_add_ps(_mm256_permute2f128_ps::<0x20>(v[i], v[j]), _mm256_permute2f128_ps::<0x31>(v[i], v[j]))
    };
    let (s01, s23, s45, s67) = (halves(0, 1), halves(2, 3), halves(4, 5), halves(6, 7));
    // (l0 + l2) and (l1 + l3): [v0: A, B, v2: A, B | v1: A, B, v3: A, B].
    let pair = |x: __m256, y: __m256| {
        _mm256_add_ps(_mm256_shuffle_ps::<0b01_00_01_00>(x, y), _mm256_shuffle_ps::<0b11_10_11_10>(x, y))
    };
    let (p, q) = (pair(s01, s23), pair(s45, s67));
    // A + B: [v0, v2, v4, v6 | v1, v3, v5, v7].
    let sums =
        _mm256_add_ps(_mm256_shuffle_ps::<0b10_00_10_00>(p, q), _mm256_shuffle_ps::<0b11_01_11_01>(p, q));
    _mm256_permutevar8x32_ps(sums, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7))
}
