//! The `avx512-vnni` kernel set's integer products, with each dot product
//! done by `vpdpbusd` (AVX-512 VNNI on 256-bit vectors, which needs
//! AVX-512VL): one instruction multiplies 32 unsigned codes by 32 int8
//! activations and adds each four products into an i32 lane, where AVX2
//! needs `vpmaddubsw`, an i16 add and a `vpmaddwd`.
//!
//! - One token (decode): the AVX2 kernel of [`super::matvec`] (same
//!   unpacking, row blocks, prefetching and per-group f32 arithmetic).
//! - Several tokens (prefill): the token-lane kernel of [`token_lanes`]
//!   with [`DpbusdTiles`], one token per i32 lane; its AVX2 multi-token
//!   kernel ([`super::matmat`]) when the caller's scratch is too small.
//!
//! The i32 lanes hold the same integer sums as the AVX2 kernels', so
//! results are bit-identical to AVX2 and to the scalar reference. W8 codes
//! are multiplied as the unsigned bytes they are stored as, so W8 needs
//! neither the sign trick nor the nibble split.
//!
//! Run on hardware: an AMD EPYC (Zen 4 class, AVX-512 F/BW/VL/VNNI) runs
//! `kernels-simd/tests/cross_check.rs` on this set, bit-exact against the
//! scalar reference (QEMU's TCG does not emulate AVX-512). There its
//! multi-token products are faster than AVX2's, but its one-token products
//! are not (decode 3-6% slower with this set in BENCHMARKS.md's idle
//! "avx2 vs avx512-vnni" runs), so the whole set is only used when asked
//! for (`--kernels avx512-vnni`); its multi-token products are chosen
//! automatically on AMD CPUs as part of `avx2-vnni-prefill`
//! ([`super::AVX2_VNNI_PREFILL`]).

use super::group::{Codes, Unpacked, MAX_BLOCKS, W2, W4};
use super::matmat::{matmat_i8_lanes, matmat_rows, MatmatRows, TokenLanes};
use super::matvec::{kernel_for, matvec_i8_with, matvec_rows, MatvecRows};
use super::token_lanes::{self, TileSums, MAX_ROWS};
use crate::{ActsI8, IntShape, QuantMatrix};
use core::arch::x86_64::*;

/// True if this CPU runs the `avx512-vnni` set (AVX2, FMA, F16C for the
/// rest of the set; AVX-512F, VL and VNNI for `vpdpbusd` on ymm registers).
pub fn vnni_available() -> bool {
    #[cfg(feature = "std")]
    {
        super::avx2_available()
            && std::is_x86_feature_detected!("avx512f")
            && std::is_x86_feature_detected!("avx512vl")
            && std::is_x86_feature_detected!("avx512vnni")
    }
    #[cfg(not(feature = "std"))]
    {
        super::avx2_available()
            && cfg!(all(
                target_feature = "avx512f",
                target_feature = "avx512vl",
                target_feature = "avx512vnni"
            ))
    }
}

/// `acc + vpdpbusd(w, x)`: lane `k` of `acc` plus the four products of
/// the unsigned bytes `4k..4k + 4` of `w` with the signed bytes of `x`.
/// Written with `asm!` (EVEX encoding, AVX-512VL on ymm registers):
/// `_mm256_dpbusd_epi32` and the `avx512vnni` target feature need Rust
/// 1.89, above this workspace's MSRV. Callers check the CPU has the
/// instructions ([`vnni_available`]). (`avx2` enabled for the ymm
/// operands; inlined into the kernels, which enable it too.)
#[inline]
#[target_feature(enable = "avx2")]
pub(super) unsafe fn dpbusd(acc: __m256i, w: __m256i, x: __m256i) -> __m256i {
    let mut acc = acc;
    // SAFETY (caller): the CPU has AVX-512F, VL and VNNI; the instruction
    // only reads and writes the three registers.
    core::arch::asm!(
        "{{evex}} vpdpbusd {acc}, {w}, {x}",
        acc = inout(ymm_reg) acc,
        w = in(ymm_reg) w,
        x = in(ymm_reg) x,
        options(pure, nomem, nostack, preserves_flags),
    );
    acc
}

/// Where `vpdpbusd` comes from: the instruction ([`Hardware`]) or, in
/// tests on CPUs without it, a lane-by-lane model of its definition.
pub(super) trait DotInstruction {
    /// `acc + vpdpbusd(w, x)` (see [`dpbusd`]).
    unsafe fn dpbusd(acc: __m256i, w: __m256i, x: __m256i) -> __m256i;
}

/// The `vpdpbusd` instruction.
pub(super) struct Hardware;

impl DotInstruction for Hardware {
    #[inline(always)]
    unsafe fn dpbusd(acc: __m256i, w: __m256i, x: __m256i) -> __m256i {
        // SAFETY (caller): the CPU has AVX-512 VNNI and VL.
        dpbusd(acc, w, x)
    }
}

/// Σ over the group's blocks of `vpdpbusd(codes_b, act_b)`: the codes are
/// unsigned (W2 0..3, W4 0..15, W8 0..255), the activations int8; a
/// lane's sum is at most 8 blocks x 4 x 255 x 128 < 2^31.
#[inline(always)]
unsafe fn dot_dpbusd<D: DotInstruction>(w: &Unpacked, acts: *const i8, blocks: usize) -> __m256i {
    let mut acc = _mm256_setzero_si256();
    for (b, wb) in w.iter().enumerate().take(blocks) {
        // SAFETY (caller): `acts` holds the group's `32 * blocks` bytes.
        let x = _mm256_loadu_si256(acts.add(32 * b) as *const __m256i);
        acc = D::dpbusd(acc, *wb, x);
    }
    acc
}

/// W2 codes unpacked as for AVX2, multiplied by `vpdpbusd`.
pub(super) struct W2Dp<const G: usize, D = Hardware>(core::marker::PhantomData<D>);
/// W4 codes unpacked as for AVX2, multiplied by `vpdpbusd`.
pub(super) struct W4Dp<const G: usize, D = Hardware>(core::marker::PhantomData<D>);
/// W8 codes as stored (unsigned bytes), multiplied by `vpdpbusd`.
pub(super) struct W8Dp<const G: usize, D = Hardware>(core::marker::PhantomData<D>);

impl<const G: usize, D: DotInstruction> Codes for W2Dp<G, D> {
    const GROUP: usize = G;
    const SUM_BIAS: i32 = 0;

    #[inline(always)]
    unsafe fn unpack(codes: *const u8) -> Unpacked {
        // SAFETY (caller): as for `W2`.
        W2::<G>::unpack(codes)
    }

    #[inline(always)]
    unsafe fn dot(w: &Unpacked, acts: *const i8) -> __m256i {
        dot_dpbusd::<D>(w, acts, Self::BLOCKS)
    }
}

impl<const G: usize, D: DotInstruction> Codes for W4Dp<G, D> {
    const GROUP: usize = G;
    const SUM_BIAS: i32 = 0;

    #[inline(always)]
    unsafe fn unpack(codes: *const u8) -> Unpacked {
        // SAFETY (caller): as for `W4`.
        W4::<G>::unpack(codes)
    }

    #[inline(always)]
    unsafe fn dot(w: &Unpacked, acts: *const i8) -> __m256i {
        dot_dpbusd::<D>(w, acts, Self::BLOCKS)
    }
}

impl<const G: usize, D: DotInstruction> Codes for W8Dp<G, D> {
    const GROUP: usize = G;
    const SUM_BIAS: i32 = 0;

    #[inline(always)]
    unsafe fn unpack(codes: *const u8) -> Unpacked {
        let mut w = [_mm256_setzero_si256(); MAX_BLOCKS];
        for (b, wb) in w.iter_mut().enumerate().take(G / 32) {
            // SAFETY (caller): the group's `G` code bytes are readable.
            *wb = _mm256_loadu_si256(codes.add(32 * b) as *const __m256i);
        }
        w
    }

    #[inline(always)]
    unsafe fn dot(w: &Unpacked, acts: *const i8) -> __m256i {
        dot_dpbusd::<D>(w, acts, Self::BLOCKS)
    }
}

/// The token-lane kernel's tiles ([`token_lanes`]) summed by `vpdpbusd`:
/// one instruction per four codes of a row and eight tokens, adding into
/// the i32 lanes (a lane's group sum is at most 64 x 4 x 255 x 128 <
/// 2^31); W8 codes are unsigned bytes, one plane.
pub(super) struct DpbusdTiles<D = Hardware>(core::marker::PhantomData<D>);

impl<D: DotInstruction> TileSums for DpbusdTiles<D> {
    const ENTRIES: usize = VNNI_ROWS;
    const W8_PLANES: usize = 1;

    #[inline(always)]
    unsafe fn group_sums<C: Codes, const PLANES: usize>(
        codes: *const u8,
        xs: *const u8,
    ) -> [__m256i; MAX_ROWS] {
        let mut acc = [_mm256_setzero_si256(); MAX_ROWS];
        for j in 0..C::GROUP / 4 {
            // SAFETY (caller): `xs` holds the group's interleaved
            // activations and `codes` its chunks of every entry.
            let x = _mm256_loadu_si256(xs.add(32 * j) as *const __m256i);
            for (k, a) in acc.iter_mut().enumerate().take(Self::ENTRIES) {
                let four = (codes.add((j * Self::ENTRIES + k) * 4) as *const i32).read_unaligned();
                *a = D::dpbusd(*a, _mm256_set1_epi32(four), x);
            }
        }
        acc
    }
}

/// Rows per `vpdpbusd` tile: their i32 sums, one activation and two code
/// vectors fit the 16 ymm registers `asm!` can allocate (registers 16-31
/// need the AVX-512 target features, above the MSRV); a multiple of 4 for
/// the transposed unpacking (14, in a first version, spilled a sum).
const VNNI_ROWS: usize = 12;

/// The VNNI token-lane kernel for a shape, if this CPU has the
/// instructions.
fn pick_lanes(s: &IntShape) -> Option<TokenLanes> {
    if !vnni_available() {
        return None;
    }
    kernel_for!(s, vnni_lanes, W2Dp, W4Dp, W8Dp)
}

/// The codes of one format whose products come from `Dot`.
trait DotCodes: Codes {
    /// The source of `vpdpbusd`.
    type Dot: DotInstruction;
}

impl<const G: usize, D: DotInstruction> DotCodes for W2Dp<G, D> {
    type Dot = D;
}

impl<const G: usize, D: DotInstruction> DotCodes for W4Dp<G, D> {
    type Dot = D;
}

impl<const G: usize, D: DotInstruction> DotCodes for W8Dp<G, D> {
    type Dot = D;
}

/// [`token_lanes::matmat`] with [`DpbusdTiles`] (one plane for every
/// format).
///
/// # Safety
/// As for [`token_lanes::matmat`]; the CPU has AVX-512F, VL and VNNI (for
/// [`Hardware`]).
#[target_feature(enable = "avx2,f16c")]
unsafe fn vnni_lanes<C: DotCodes>(
    s: &IntShape,
    matrix: &[u8],
    acts: &[ActsI8<'_>],
    out: &mut [f32],
    scratch: &mut [i8],
) {
    token_lanes::matmat::<C, 1, DpbusdTiles<C::Dot>>(s, matrix, acts, out, scratch)
}

/// The VNNI kernel for a shape, if this CPU has the instructions.
fn pick_matvec(s: &IntShape) -> Option<MatvecRows> {
    if !vnni_available() {
        return None;
    }
    kernel_for!(s, matvec_rows, W2Dp, W4Dp, W8Dp)
}

/// The VNNI multi-token kernel for a shape, if this CPU has the
/// instructions.
fn pick_matmat(s: &IntShape) -> Option<MatmatRows> {
    if !vnni_available() {
        return None;
    }
    kernel_for!(s, matmat_rows, W2Dp, W4Dp, W8Dp)
}

/// See [`crate::MatvecI8`]: the AVX2 kernel with `vpdpbusd` (module docs);
/// the scalar reference on a CPU without AVX-512 VNNI or for shapes it does
/// not cover.
pub fn matvec_i8(w: QuantMatrix<'_>, acts: &ActsI8<'_>, out: &mut [f32], perm: &mut [i8]) {
    matvec_i8_with(pick_matvec, w, acts, out, perm);
}

/// See [`crate::MatmatI8`]: the token-lane kernel with `vpdpbusd` when
/// the scratch suffices, else the AVX2 multi-token kernel with it.
pub fn matmat_i8(w: QuantMatrix<'_>, acts: &[ActsI8<'_>], out: &mut [f32], perm: &mut [i8]) {
    matmat_i8_lanes::<DpbusdTiles>(pick_lanes, pick_matmat, w, acts, out, perm);
}

#[cfg(test)]
mod tests {
    //! The VNNI kernels' arithmetic with `vpdpbusd` modelled lane by lane
    //! from Intel's definition, on this CPU's AVX2: their unpacking, W8
    //! handling (unsigned codes, no bias) and per-group sums against the
    //! scalar reference, bit for bit. (The instruction itself runs only on
    //! a CPU with AVX-512 VNNI, where `tests/cross_check.rs` covers it.)
    use super::*;
    use crate::x86::avx2_available;
    use crate::x86::matmat::matmat_i8_with;
    use eddy_quant::{quantize_activations_i8, quantize_row, TensorFormat};

    /// `vpdpbusd` by its definition: lane `k` += Σ_j u8(w[4k + j]) ·
    /// i8(x[4k + j]), wrapping.
    struct Model;

    impl DotInstruction for Model {
        unsafe fn dpbusd(acc: __m256i, w: __m256i, x: __m256i) -> __m256i {
            let (mut a, mut wb, mut xb) = ([0i32; 8], [0u8; 32], [0i8; 32]);
            // SAFETY: each array is 32 bytes.
            unsafe {
                _mm256_storeu_si256(a.as_mut_ptr() as *mut __m256i, acc);
                _mm256_storeu_si256(wb.as_mut_ptr() as *mut __m256i, w);
                _mm256_storeu_si256(xb.as_mut_ptr() as *mut __m256i, x);
            }
            for (k, lane) in a.iter_mut().enumerate() {
                for j in 4 * k..4 * k + 4 {
                    *lane = lane.wrapping_add(wb[j] as i32 * xb[j] as i32);
                }
            }
            // SAFETY: `a` is 32 bytes.
            unsafe { _mm256_loadu_si256(a.as_ptr() as *const __m256i) }
        }
    }

    type W2M<const G: usize> = W2Dp<G, Model>;
    type W4M<const G: usize> = W4Dp<G, Model>;
    type W8M<const G: usize> = W8Dp<G, Model>;

    fn pick_model_matvec(s: &IntShape) -> Option<MatvecRows> {
        kernel_for!(s, matvec_rows, W2M, W4M, W8M)
    }

    fn pick_model_matmat(s: &IntShape) -> Option<MatmatRows> {
        kernel_for!(s, matmat_rows, W2M, W4M, W8M)
    }

    fn pick_model_lanes(s: &IntShape) -> Option<TokenLanes> {
        kernel_for!(s, vnni_lanes, W2M, W4M, W8M)
    }

    #[test]
    fn vnni_arithmetic_equals_the_reference() {
        if !avx2_available() {
            return;
        }
        let mut seed = 0x9e37_79b9_7f4a_7c15u64;
        let mut rnd = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            (seed >> 40) as f32 / (1u64 << 24) as f32 - 0.5
        };
        let (rows, cols, tokens) = (19, 512, 11);
        for bits in [2u32, 4, 8] {
            for group in [32u32, 64, 128, 256] {
                let f = match bits {
                    2 => TensorFormat::W2 { group },
                    4 => TensorFormat::W4 { group },
                    _ => TensorFormat::W8 { group },
                };
                let rb = f.byte_len(1, cols as u64).unwrap() as usize;
                let mut m = std::vec![0u8; rb * rows];
                for row in m.chunks_exact_mut(rb) {
                    let w: std::vec::Vec<f32> = (0..cols).map(|_| rnd()).collect();
                    quantize_row(f, &w, row).unwrap();
                }
                let g = group as usize;
                let gs = cols / g;
                let (mut q, mut sc, mut su) = (
                    std::vec![0i8; tokens * cols],
                    std::vec![0f32; tokens * gs],
                    std::vec![0i32; tokens * gs],
                );
                for t in 0..tokens {
                    // Token 0 saturates at ±127: the largest sums.
                    let x: std::vec::Vec<f32> =
                        (0..cols).map(|i| if t == 0 { [9.0, -9.0][i % 2] } else { rnd() * 4.0 }).collect();
                    let (qt, st, ut) =
                        (&mut q[t * cols..][..cols], &mut sc[t * gs..][..gs], &mut su[t * gs..][..gs]);
                    quantize_activations_i8(&x, g, qt, st, ut).unwrap();
                }
                let acts: std::vec::Vec<ActsI8> = (0..tokens)
                    .map(|t| ActsI8 {
                        q: &q[t * cols..][..cols],
                        scales: &sc[t * gs..][..gs],
                        sums: &su[t * gs..][..gs],
                    })
                    .collect();
                let mut perm = std::vec![0i8; tokens * cols];
                let (mut want, mut one, mut many) = (
                    std::vec![0f32; tokens * rows],
                    std::vec![1f32; tokens * rows],
                    std::vec![2f32; tokens * rows],
                );
                let w = QuantMatrix { format: f, bytes: &m, cols };
                for (t, a) in acts.iter().enumerate() {
                    eddy_quant::matvec_i8(f, &m, cols, a.q, a.scales, a.sums, &mut want[t * rows..][..rows]);
                    matvec_i8_with(pick_model_matvec, w, a, &mut one[t * rows..][..rows], &mut perm);
                }
                matmat_i8_with(pick_model_matmat, w, &acts, &mut many, &mut perm);
                let mut scratch = std::vec![0i8; crate::matmat_scratch_len(cols, tokens)];
                let mut lanes = std::vec![3f32; tokens * rows];
                matmat_i8_lanes::<DpbusdTiles<Model>>(
                    pick_model_lanes,
                    pick_model_matmat,
                    w,
                    &acts,
                    &mut lanes,
                    &mut scratch,
                );
                let bits_of = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<std::vec::Vec<_>>();
                assert_eq!(bits_of(&want), bits_of(&one), "matvec {f:?}");
                assert_eq!(bits_of(&want), bits_of(&many), "matmat {f:?}");
                assert_eq!(bits_of(&want), bits_of(&lanes), "token lanes {f:?}");
            }
        }
    }
}
