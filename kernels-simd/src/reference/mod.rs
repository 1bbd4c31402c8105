//! The recurrent operations of the model families, named by what they
//! compute, each with its scalar reference (one file per operation).
//!
//! A family never calls these functions directly: it calls the field of
//! its [`Kernels`](crate::Kernels) set, whose value in
//! [`SCALAR`](crate::SCALAR) is the reference here. A SIMD version of an
//! operation must reproduce its reference bit for bit (same f32
//! operations in the same order, no FMA).

mod causal_conv;
mod delta_rule;
mod diagonal_scan;
mod gated_outer_product;
mod generalized_delta_rule;
mod rg_lru;
mod rnn_gates;
mod silu_mul;
mod wkv;

pub use causal_conv::{causal_conv, causal_conv_tokens, CausalConv, CausalConvTokens, ConvWeights};
pub use delta_rule::{delta_rule, DeltaRule, DeltaRuleArgs};
pub use diagonal_scan::{
    diagonal_scan_heads, diagonal_scan_heads_by_token, diagonal_scan_heads_tokens, DiagonalScanHeads,
    DiagonalScanHeadsTokens, HeadScanArgs, HeadScanTokens,
};
// Shared by the vector versions (x86, aarch64) only.
#[cfg(any(target_arch = "x86_64", all(target_arch = "aarch64", target_feature = "neon")))]
pub(crate) use diagonal_scan::{
    each_head, each_head_chunk, each_head_token, scan_channel, HeadChunk, HeadStep,
};
pub use gated_outer_product::{gated_outer_product, GatedOuterProduct, GatedOuterProductArgs};
pub use generalized_delta_rule::{generalized_delta_rule, GeneralizedDeltaRule, GeneralizedDeltaRuleArgs};
pub use rg_lru::{rg_lru, RgLru, RgLruArgs};
pub use rnn_gates::{gru_gates, lstm_gates, tanh_by_exp, GruGates, LstmGates};
pub use silu_mul::{silu_mul, SiluMul};
pub use wkv::{wkv, Wkv, WkvArgs};
// Shared by the vector versions (x86, aarch64) only.
#[cfg(any(target_arch = "x86_64", all(target_arch = "aarch64", target_feature = "neon")))]
pub(crate) use {
    causal_conv::conv_as_one_token, causal_conv::conv_tokens_by_blocks, rg_lru::rg_lru_by_blocks,
    rnn_gates::gru_channel, rnn_gates::lstm_channel,
};
