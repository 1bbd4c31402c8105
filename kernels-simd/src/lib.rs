//! Fast kernels for eddy's number formats, one module per ISA behind one
//! interface ([`Kernels`]), with the scalar reference of `eddy-quant`
//! always available. The choice is made once, at model load: at run time
//! with `std` (CPU feature detection), at compile time without it
//! (`target_feature`; on ARM, where stable Rust reports no target
//! features, the build script derives them: see `build.rs`).
//!
//! Integer kernels reproduce the reference bit for bit: the same exact i32
//! group sums and the same f32 operations in the same order. The f32/f16
//! dot products use the reference's 8-lane order and no FMA, so they are
//! bit-exact too, as are the attention kernels ([`KvScores`], [`KvMix`]):
//! `eddy_quant::kv_dot` fixes an 8-lane summation order per scale group
//! that SIMD reproduces, and `eddy_quant::kv_axpy` works element by
//! element.
//!
//! # Layout
//!
//! One folder per ISA, each a `mod.rs` with its kernel sets plus one file
//! per operation, named alike in every folder (an ISA lacks the files of
//! operations it does not speed up):
//!
//! | file | operation | `x86/` | `aarch64/` | `arm/dsp/` | `arm/helium/` |
//! | --- | --- | --- | --- | --- | --- |
//! | `matvec.rs` | integer matrix × one token | ✓ | ✓ | ✓ | ✓ |
//! | `matmat.rs` | integer matrix × several tokens | ✓ | ✓ (+ `matmat_neon.rs`) | | |
//! | `token_lanes.rs` | the same, one token per lane | ✓ | ✓ | | |
//! | `group.rs` | one group's code unpacking and dot product | ✓ | ✓ | ✓ | ✓ |
//! | `sparse24.rs` | 2:4 sparse integer matrix × one token | ✓ | | | |
//! | `float.rs` | f32/f16 matrix × vector | ✓ | ✓ | | ✓ (f16) |
//! | `float_tokens.rs` | f16 matrix × several tokens | ✓ | ✓ | | |
//! | `float_tiles.rs` | f32 matrix × several tokens | ✓ | | | |
//! | `kv.rs` | attention over the KV cache | ✓ | ✓ | | |
//! | `acts.rs` | int8 activation quantization | ✓ | ✓ | | |
//! | `scan.rs` (+ `scan_tokens.rs`) | selective scan | ✓ | ✓ | | ✓ |
//! | `conv.rs` (+ `conv_tokens.rs`) | causal convolution + SiLU | ✓ | ✓ | | ✓ |
//! | `scan_heads.rs` | per-head diagonal scan (Mamba-2), one token and a chunk | ✓ | ✓ | | |
//! | `silu_mul.rs` | `silu(gate) * up` of a SiLU-gated MLP | ✓ | ✓ | | |
//!
//! `x86/vnni.rs` holds the `avx512-vnni` set's dot-product codes, which
//! run through the AVX2 row loops. Loops shared across ISAs are written
//! once and instantiated per ISA inside its `#[target_feature]` functions:
//! the KV pass over rows (`kv_pass.rs`, with an eight-lane vector per
//! ISA), the causal convolution's channel blocks on that vector
//! (`causal_conv_pass.rs`), the activation quantizer's group loop
//! (`acts_pass.rs`) and the
//! Cortex-M row driver (`arm/rows.rs`, for `dsp` and `helium`).
//! `scalar.rs` is the reference set, `vector.rs` the per-token
//! vector operations, `math.rs` the shared scalar math.
#![no_std]
#![warn(missing_docs)]

#[cfg(feature = "std")]
extern crate std;

/// A vector kernel set of an ISA folder (x86, aarch64): the given fields,
/// then the recurrences every such folder implements under the shared file
/// names (`scan_heads`, `gated_outer_product`, `delta_rule`,
/// `generalized_delta_rule`, `causal_conv`, `rg_lru`, `wkv`, `silu_mul`,
/// `rnn_gates`), then the reference for the rest. Written once so the folders cannot drift apart.
#[cfg(any(target_arch = "x86_64", all(target_arch = "aarch64", target_feature = "neon")))]
macro_rules! vector_set {
    ($($field:ident $(: $value:expr)?),* $(,)?) => {
        Kernels {
            $($field $(: $value)?,)*
            diagonal_scan_heads: scan_heads::diagonal_scan_heads,
            diagonal_scan_heads_tokens: scan_heads::diagonal_scan_heads_tokens,
            gated_outer_product: gated_outer_product::gated_outer_product,
            delta_rule: delta_rule::delta_rule,
            generalized_delta_rule: generalized_delta_rule::generalized_delta_rule,
            causal_conv: causal_conv::causal_conv,
            causal_conv_tokens: causal_conv::causal_conv_tokens,
            rg_lru: rg_lru::rg_lru,
            wkv: wkv::wkv,
            silu_mul: silu_mul::silu_mul,
            gru_gates: rnn_gates::gru_gates,
            lstm_gates: rnn_gates::lstm_gates,
            ..SCALAR
        }
    };
}

#[cfg(all(target_arch = "aarch64", target_feature = "neon"))]
pub mod aarch64;
#[cfg(any(target_arch = "x86_64", all(target_arch = "aarch64", target_feature = "neon")))]
mod acts_pass;
#[cfg(all(target_arch = "arm", eddy_dsp))]
pub mod arm;
#[cfg(any(target_arch = "x86_64", all(target_arch = "aarch64", target_feature = "neon")))]
mod causal_conv_pass;
#[cfg(any(target_arch = "x86_64", all(target_arch = "aarch64", target_feature = "neon")))]
mod kv_pass;
#[cfg(any(target_arch = "x86_64", all(target_arch = "aarch64", target_feature = "neon")))]
mod linear_attention_pass;
pub mod math;
pub mod reference;
#[cfg(any(target_arch = "x86_64", all(target_arch = "aarch64", target_feature = "neon")))]
mod rnn_gates_pass;
pub mod scalar;
pub mod vector;
#[cfg(any(target_arch = "x86_64", all(target_arch = "aarch64", target_feature = "neon")))]
mod wkv_pass;
#[cfg(target_arch = "x86_64")]
pub mod x86;

use eddy_quant::{KvFormat, Sparse24, TensorFormat};
pub use reference::{
    CausalConv, ConvWeights, DeltaRule, DeltaRuleArgs, DiagonalScanHeads, GatedOuterProduct,
    GatedOuterProductArgs, GeneralizedDeltaRule, GeneralizedDeltaRuleArgs, GruGates, HeadScanArgs, LstmGates,
    RgLru, RgLruArgs, Wkv, WkvArgs,
};
pub use reference::{DiagonalScanHeadsTokens, HeadScanTokens};
pub use vector::{
    ConvSilu, ConvSiluTokens, ConvTokens, QuantizeActs, ScanArgs, ScanTokens, SelectiveScan,
    SelectiveScanTokens, TokenRows,
};

/// int8 activations quantized per group (see
/// `eddy_quant::quantize_activations_i8`).
#[derive(Clone, Copy, Debug)]
pub struct ActsI8<'a> {
    /// Codes.
    pub q: &'a [i8],
    /// One scale per group.
    pub scales: &'a [f32],
    /// One code sum per group.
    pub sums: &'a [i32],
}

/// A quantized weight matrix as the integer kernels take it: rows of
/// groups in `format`, `cols` weights per row, the rows one after another
/// in `bytes` (how many rows a call uses follows from its output length).
#[derive(Clone, Copy, Debug)]
pub struct QuantMatrix<'m> {
    /// Number format of the rows (an integer format for the SIMD kernels).
    pub format: TensorFormat,
    /// The encoded rows.
    pub bytes: &'m [u8],
    /// Weights per row.
    pub cols: usize,
}

/// A 2:4 sparse quantized matrix (`eddy_quant::Sparse24` rows), as the
/// sparse kernels take it: `cols` weights per row, rows one after another
/// in `bytes`.
#[derive(Clone, Copy, Debug)]
pub struct SparseMatrix<'m> {
    /// The sparse format of the rows.
    pub format: Sparse24,
    /// The encoded rows.
    pub bytes: &'m [u8],
    /// Weights per row (pruned ones included).
    pub cols: usize,
}

/// 2:4 sparse matrix times int8 activations: `out[r]` is exactly
/// `eddy_quant::Sparse24::dot_row_i8` of row `r` (the first `out.len()`
/// rows), the kept weights' activations gathered by their positions.
pub type MatvecSparse24I8 = fn(w: SparseMatrix<'_>, acts: &ActsI8<'_>, out: &mut [f32]);

/// Geometry of a quantized matrix, as the SIMD kernels walk it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IntShape {
    /// Bits per code (2, 4 or 8).
    pub bits: u32,
    /// Weights per group.
    pub group: usize,
    /// Groups per row.
    pub groups: usize,
    /// Bytes per group (header + codes).
    pub group_bytes: usize,
    /// Bytes per row.
    pub row_bytes: usize,
}

impl IntShape {
    /// The shape of the first `rows` rows of `w` if the SIMD kernels
    /// cover it (whole groups that are a multiple of 32 weights) and every
    /// buffer is long enough; `None` sends the caller to the scalar
    /// reference.
    pub fn for_matvec(w: QuantMatrix<'_>, rows: usize, acts: &ActsI8<'_>, perm_len: usize) -> Option<Self> {
        let QuantMatrix { format, bytes: matrix, cols } = w;
        let (group, bits, group_bytes) = (format.group_size()?, format.code_bits()?, format.group_bytes()?);
        let groups = cols / group.max(1);
        let row_bytes = groups * group_bytes;
        let ok = group >= 32
            && group % 32 == 0
            && cols % group == 0
            && row_bytes > 0
            && acts.q.len() >= cols
            && perm_len >= cols
            && acts.scales.len() >= groups
            && acts.sums.len() >= groups
            && matrix.len() >= row_bytes.checked_mul(rows)?;
        ok.then_some(IntShape { bits, group, groups, group_bytes, row_bytes })
    }

    /// [`for_matvec`](Self::for_matvec) for `out.len()` rows; when that is
    /// `None`, first computes `out` with the scalar reference, so the
    /// caller only returns.
    #[cfg_attr(not(any(target_arch = "aarch64", target_arch = "arm")), allow(dead_code))]
    pub(crate) fn for_matvec_or_reference(
        w: QuantMatrix<'_>,
        acts: &ActsI8<'_>,
        out: &mut [f32],
        perm_len: usize,
    ) -> Option<Self> {
        let shape = Self::for_matvec(w, out.len(), acts, perm_len);
        if shape.is_none() {
            scalar::matvec_i8(w, acts, out, &mut []);
        }
        shape
    }

    /// [`for_matvec`](Self::for_matvec) for every token of a multi-token
    /// product (`rows = out_len / acts.len()`): their common shape, `None`
    /// if any token's check fails or there are no tokens or no rows.
    pub fn for_tokens(
        w: QuantMatrix<'_>,
        out_len: usize,
        acts: &[ActsI8<'_>],
        perm_len: usize,
    ) -> Option<Self> {
        let rows = out_len.checked_div(acts.len()).filter(|&r| r > 0)?;
        acts.iter()
            .map(|a| Self::for_matvec(w, rows, a, perm_len))
            .reduce(|a, b| if a == b { a } else { None })
            .flatten()
    }
}

/// Integer matrix-vector product: `out[r] = Σ_g s_g (scale_rg acc_rg +
/// min_rg sum_g)` over the first `out.len()` rows of `w` (see
/// `eddy_quant::dot_row_i8`). `perm` is scratch of at least `w.cols` bytes
/// for reordered activations.
pub type MatvecI8 = fn(w: QuantMatrix<'_>, acts: &ActsI8<'_>, out: &mut [f32], perm: &mut [i8]);

/// Integer matrix times several token vectors (prefill): `out[t * rows + r]`
/// is exactly what [`MatvecI8`] gives for token `t`, row `r`
/// (`rows = out.len() / acts.len()`). `perm` is scratch of at least
/// [`matmat_scratch_len`]`(w.cols, acts.len())` bytes (with less, the
/// kernel runs one [`MatvecI8`] per token). Lets a kernel unpack each
/// weight once for several tokens.
pub type MatmatI8 = fn(w: QuantMatrix<'_>, acts: &[ActsI8<'_>], out: &mut [f32], perm: &mut [i8]);

/// Bytes of scratch a [`MatmatI8`] or [`MatmatF16`] of every kernel set
/// needs for `tokens` tokens of `cols` activations.
pub const fn matmat_scratch_len(cols: usize, tokens: usize) -> usize {
    #[cfg(target_arch = "x86_64")]
    {
        let lanes = x86::matmat_scratch_len(cols, tokens);
        let float = x86::float_tokens::scratch_len(cols);
        let tiles = x86::amx::scratch_len(cols, tokens);
        let most = if lanes > float { lanes } else { float };
        let most = if tiles > most { tiles } else { most };
        if most > tokens * cols {
            return most;
        }
    }
    #[cfg(all(target_arch = "aarch64", target_feature = "neon"))]
    {
        let lanes = aarch64::token_lanes_scratch_len(cols, tokens);
        let float = aarch64::float_tokens::scratch_len(cols);
        let most = if lanes > float { lanes } else { float };
        if most > tokens * cols {
            return most;
        }
    }
    tokens * cols
}

/// The inputs of a [`MatmatF16`] call whose lengths a kernel checked:
/// `matrix` holds `rows` rows of `cols`, `xs` `tokens` rows of `cols`.
#[cfg_attr(not(any(target_arch = "x86_64", target_arch = "aarch64")), allow(dead_code))]
#[derive(Clone, Copy)]
pub(crate) struct F16Batch<'a> {
    /// The f16 matrix.
    pub matrix: &'a [u16],
    /// Columns.
    pub cols: usize,
    /// The tokens' inputs.
    pub xs: &'a [f32],
    /// Tokens.
    pub tokens: usize,
    /// Rows.
    pub rows: usize,
}

/// The checked [`F16Batch`] of a [`MatmatF16`] call that a kernel needing
/// `needed` bytes of scratch can run (`usable`: the CPU runs it); `None`
/// after computing it with `matvec` per token instead. Shared by the
/// ISAs' multi-token f16 kernels.
#[cfg_attr(not(any(target_arch = "x86_64", target_arch = "aarch64")), allow(dead_code))]
pub(crate) fn f16_batch_or_per_token<'a>(
    usable: bool,
    needed: usize,
    matvec: MatvecF16,
    (matrix, cols, xs, out, scratch): (&'a [u16], usize, &'a [f32], &mut [f32], &[i8]),
) -> Option<F16Batch<'a>> {
    let tokens = xs.len().checked_div(cols).unwrap_or(0);
    let rows = out.len().checked_div(tokens).unwrap_or(0);
    let fits = usable
        && cols > 0
        && rows > 0
        && matrix.len() >= rows * cols
        && xs.len() == tokens * cols
        && out.len() == tokens * rows
        && scratch.len() >= needed;
    if fits {
        return Some(F16Batch { matrix, cols, xs, tokens, rows });
    }
    matvec_per_token(matvec, matrix, cols, xs, out);
    None
}

/// A multi-token product as one `matvec` per token (`xs` rows of `cols`,
/// `out` as many rows of `out.len() / tokens`): the fallback of the
/// multi-token float kernels.
#[cfg_attr(not(any(target_arch = "x86_64", target_arch = "aarch64")), allow(dead_code))]
pub(crate) fn matvec_per_token<W>(
    matvec: fn(&[W], usize, &[f32], &mut [f32]),
    matrix: &[W],
    cols: usize,
    xs: &[f32],
    out: &mut [f32],
) {
    let tokens = xs.len().checked_div(cols).unwrap_or(0);
    let rows = out.len().checked_div(tokens).unwrap_or(0);
    for (x, o) in xs.chunks_exact(cols.max(1)).zip(out.chunks_exact_mut(rows.max(1))) {
        matvec(matrix, cols, x, o);
    }
}

/// f16 matrix times several token vectors (prefill): `xs` holds `tokens =
/// xs.len() / cols` inputs, `out[t * rows + r]` is exactly what
/// [`MatvecF16`] gives for token `t`, row `r` (`rows = out.len() /
/// tokens`). `scratch` holds at least [`matmat_scratch_len`]`(cols, 1)`
/// bytes (with less, one [`MatvecF16`] per token).
pub type MatmatF16 = fn(matrix: &[u16], cols: usize, xs: &[f32], out: &mut [f32], scratch: &mut [i8]);

/// f32 matrix times several token vectors (prefill, calibration): `xs`
/// holds `tokens = xs.len() / cols` inputs, `out[t * rows + r]` is exactly
/// what [`MatvecF32`] gives for token `t`, row `r` (`rows = out.len() /
/// tokens`).
pub type MatmatF32 = fn(matrix: &[f32], cols: usize, xs: &[f32], out: &mut [f32]);

/// f32 matrix (`[rows, cols]` row-major) times f32 vector.
pub type MatvecF32 = fn(matrix: &[f32], cols: usize, x: &[f32], out: &mut [f32]);

/// f16 matrix (raw bits) times f32 vector.
pub type MatvecF16 = fn(matrix: &[u16], cols: usize, x: &[f32], out: &mut [f32]);

/// `count` rows of an attention cache, `stride` bytes apart, each one
/// head vector of `head_dim` values in `format` (see `eddy_quant::kv_dot`).
#[derive(Clone, Copy, Debug)]
pub struct KvRows<'a> {
    /// Storage format of every row.
    pub format: KvFormat,
    /// The rows; row `j` starts at byte `j * stride`.
    pub bytes: &'a [u8],
    /// Bytes from one row to the next.
    pub stride: usize,
    /// Number of rows.
    pub count: usize,
    /// Values per row.
    pub head_dim: usize,
}

impl<'a> KvRows<'a> {
    /// Bytes of one row, if the format holds `head_dim` values and every
    /// row lies inside `bytes`; `None` means there is nothing valid to read.
    pub fn row_bytes(&self) -> Option<usize> {
        let row = self.format.row_bytes(self.head_dim)?;
        if self.count == 0 {
            return Some(row);
        }
        let end = (self.count - 1).checked_mul(self.stride)?.checked_add(row)?;
        (self.stride >= row && end <= self.bytes.len()).then_some(row)
    }

    /// Row `j` (caller checked [`row_bytes`](Self::row_bytes)).
    #[inline]
    pub fn row(&self, j: usize, row_bytes: usize) -> &'a [u8] {
        &self.bytes[j * self.stride..j * self.stride + row_bytes]
    }
}

/// Attention scores: `scores[j] = q · row_j` for the `rows.count` rows
/// (`q.len() == head_dim`, `scores.len() >= count`), each exactly
/// `eddy_quant::kv_dot` (bit for bit in every kernel set).
pub type KvScores = fn(rows: KvRows<'_>, q: &[f32], scores: &mut [f32]);

/// Attention output: `out = Σ_j weights[j] row_j` (`out.len() == head_dim`,
/// overwritten), summed over `j` in order from zero with
/// `eddy_quant::kv_axpy`'s per-element expression (bit for bit in every
/// kernel set).
pub type KvMix = fn(rows: KvRows<'_>, weights: &[f32], out: &mut [f32]);

/// One set of kernels for one instruction set: every operation a family
/// or layer runs, as a function pointer. A set is written as the
/// reference plus what it speeds up (`Kernels { name: "avx2", matvec_i8:
/// .., ..SCALAR }`), so an operation without a SIMD version is the
/// reference's.
#[derive(Clone, Copy)]
pub struct Kernels {
    /// Short name (`scalar`, `avx2`, ...), shown by `eddy inspect`.
    pub name: &'static str,
    /// True if this CPU can run the set (CPU feature detection with
    /// `std`, target features without it).
    pub available: fn() -> bool,
    /// True if [`best`] may choose the set on this CPU (given it is
    /// [`available`](Self::available)): [`by_name_only`] for sets that run only
    /// when asked for by name, a CPU check for sets that win only on some.
    pub auto: fn() -> bool,
    /// Quantized weights × int8 activations.
    pub matvec_i8: MatvecI8,
    /// 2:4 sparse quantized weights × int8 activations.
    pub matvec_sparse24_i8: MatvecSparse24I8,
    /// Quantized weights × several tokens' activations, if this set has a
    /// kernel that is faster than one `matvec_i8` per token.
    pub matmat_i8: Option<MatmatI8>,
    /// f16 weights × several tokens, if this set has a kernel that is
    /// faster than one `matvec_f16` per token.
    pub matmat_f16: Option<MatmatF16>,
    /// f32 weights × several tokens, if this set has a kernel that is
    /// faster than one `matvec_f32` per token.
    pub matmat_f32: Option<MatmatF32>,
    /// f32 weights × f32 activations.
    pub matvec_f32: MatvecF32,
    /// f16 weights × f32 activations.
    pub matvec_f16: MatvecF16,
    /// `q · k` over an attention cache.
    pub kv_scores: KvScores,
    /// Weighted sum of attention cache rows.
    pub kv_mix: KvMix,
    /// Activation quantization before every integer matrix product.
    pub quantize_acts: QuantizeActs,
    /// Causal convolution + SiLU (Mamba-1/2, Gated DeltaNet), one token.
    pub conv_silu: ConvSilu,
    /// Causal convolution + SiLU, several tokens (Mamba-1 prefill).
    pub conv_silu_tokens: ConvSiluTokens,
    /// Causal convolution without activation (LFM2, RecurrentGemma).
    pub causal_conv: CausalConv,
    /// Causal convolution without activation, several tokens (prefill).
    pub causal_conv_tokens: reference::CausalConvTokens,
    /// Diagonal-decay selective scan per channel (Mamba-1), one token.
    pub selective_scan: SelectiveScan,
    /// Diagonal-decay selective scan per channel, several tokens (Mamba-1
    /// prefill).
    pub selective_scan_tokens: SelectiveScanTokens,
    /// Diagonal-decay selective scan per head (Mamba-2).
    pub diagonal_scan_heads: DiagonalScanHeads,
    /// Diagonal-decay selective scan per head, several tokens (Mamba-2 prefill).
    pub diagonal_scan_heads_tokens: DiagonalScanHeadsTokens,
    /// Gated outer-product state update (GLA).
    pub gated_outer_product: GatedOuterProduct,
    /// Gated delta-rule state update (Gated DeltaNet).
    pub delta_rule: DeltaRule,
    /// Generalized delta-rule state update (RWKV-7).
    pub generalized_delta_rule: GeneralizedDeltaRule,
    /// Real-gated linear recurrence (RecurrentGemma).
    pub rg_lru: RgLru,
    /// RWKV-4's WKV.
    pub wkv: Wkv,
    /// GRU cell gates.
    pub gru_gates: GruGates,
    /// LSTM cell gates.
    pub lstm_gates: LstmGates,
    /// `silu(gate) * up` of a SiLU-gated MLP (LFM2).
    pub silu_mul: reference::SiluMul,
}

impl core::fmt::Debug for Kernels {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "Kernels({})", self.name)
    }
}

/// For [`Kernels::available`] of sets every CPU of their build can run,
/// and [`Kernels::auto`] of sets chosen wherever they run.
pub fn always_available() -> bool {
    true
}

/// For [`Kernels::auto`] of sets that run only when asked for by name.
pub fn by_name_only() -> bool {
    false
}

/// The scalar reference kernels (every target). A `const` so that every
/// other set can take what it does not speed up from it (`..SCALAR`).
pub const SCALAR: Kernels = Kernels {
    name: "scalar",
    available: always_available,
    auto: always_available,
    matvec_i8: scalar::matvec_i8,
    matvec_sparse24_i8: scalar::matvec_sparse24_i8,
    matmat_i8: None,
    matmat_f16: None,
    matmat_f32: None,
    matvec_f32: scalar::matvec_f32,
    matvec_f16: scalar::matvec_f16,
    kv_scores: scalar::kv_scores,
    kv_mix: scalar::kv_mix,
    quantize_acts: eddy_quant::quantize_activations_i8,
    conv_silu: math::causal_conv_silu_step,
    conv_silu_tokens: vector::conv_silu_tokens_scalar,
    causal_conv: reference::causal_conv,
    causal_conv_tokens: reference::causal_conv_tokens,
    selective_scan: vector::selective_scan_scalar,
    selective_scan_tokens: vector::selective_scan_tokens_scalar,
    diagonal_scan_heads: reference::diagonal_scan_heads,
    diagonal_scan_heads_tokens: reference::diagonal_scan_heads_tokens,
    gated_outer_product: reference::gated_outer_product,
    delta_rule: reference::delta_rule,
    generalized_delta_rule: reference::generalized_delta_rule,
    rg_lru: reference::rg_lru,
    wkv: reference::wkv,
    gru_gates: reference::gru_gates,
    lstm_gates: reference::lstm_gates,
    silu_mul: reference::silu_mul,
};

#[cfg(target_arch = "x86_64")]
static COMPILED: [&Kernels; 5] =
    [&SCALAR, &x86::AVX2, &x86::AVX512_VNNI, &x86::AVX2_VNNI_PREFILL, &x86::AVX512_AMX];
#[cfg(all(target_arch = "arm", eddy_dsp, not(eddy_mve)))]
static COMPILED: [&Kernels; 2] = [&SCALAR, &arm::dsp::DSP];
#[cfg(all(target_arch = "arm", eddy_mve))]
static COMPILED: [&Kernels; 3] = [&SCALAR, &arm::dsp::DSP, &arm::helium::HELIUM];
#[cfg(all(target_arch = "aarch64", target_feature = "neon"))]
static COMPILED: [&Kernels; 3] = [&SCALAR, &aarch64::NEON, &aarch64::NEON_SDOT];
#[cfg(not(any(
    target_arch = "x86_64",
    all(target_arch = "arm", eddy_dsp),
    all(target_arch = "aarch64", target_feature = "neon")
)))]
static COMPILED: [&Kernels; 1] = [&SCALAR];

/// Every kernel set this build contains, slowest first (the CPU may not
/// support all).
pub fn compiled() -> &'static [&'static Kernels] {
    &COMPILED
}

/// True if this CPU can run `k` ([`Kernels::available`]). The Cortex-M
/// sets (`dsp`, `helium`) are chosen at compile time, so they are always
/// supported when compiled, as is `neon` on aarch64; `neon-sdot` needs
/// `dotprod`.
pub fn supported(k: &Kernels) -> bool {
    (k.available)()
}

/// The kernel set named `name`, if compiled in and supported by this CPU.
pub fn by_name(name: &str) -> Option<&'static Kernels> {
    compiled().iter().copied().find(|k| k.name == name && supported(k))
}

/// The best kernel set for this CPU that is chosen automatically.
pub fn best() -> &'static Kernels {
    compiled().iter().rev().copied().find(|k| supported(k) && (k.auto)()).unwrap_or(&SCALAR)
}
