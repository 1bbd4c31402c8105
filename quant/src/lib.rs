//! Number formats of eddy.
//!
//! Every tensor in a `.eddy` file has a [`TensorFormat`]. This crate knows how
//! many bytes a tensor of a given format and shape occupies and holds the one
//! scalar reference implementation of every operation on each format. Fast
//! kernels elsewhere are tested against these references.
#![no_std]
#![forbid(unsafe_code)]
#![warn(missing_docs)]

#[cfg(feature = "std")]
extern crate std;

mod block;
mod float;
mod format;
mod kv;
mod sparse;
mod state;

pub use block::{
    code_at, dequantize_row, dot_row_i8, group_dot_i32, group_header, matvec_i8, quantize_activations_i8,
    quantize_row, quantize_row_with_ranges, round_half_away, QuantError,
};
pub use float::{
    dot_f16_f32, dot_f16_f32_with, dot_f32, f16_to_f32_slice, f32_to_f16_bits, reduce_lanes, F32_DOT_LANES,
};
pub use format::{FormatError, TensorFormat, GROUP_HEADER_BYTES, GROUP_SIZES};
pub use kv::{decode_kv_row, encode_kv_row, kv_axpy, kv_dot, kv_group, KvFormat};
pub use sparse::{positions as sparse24_positions, sparse_group_dot_i32, Sparse24};
pub use state::{dequantize_state_group, requantize_state_group, StateBits};
