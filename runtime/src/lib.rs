//! eddy: run quantized recurrent language models on small machines.
//!
//! The core is `#![no_std]` and never allocates: [`Model::from_bytes`]
//! validates a `.eddy` file and borrows its tensors in place, and a
//! [`Session`] runs in memory the caller provides, sized by
//! [`Model::state_bytes`] and [`Model::scratch_bytes`].
//!
//! Features: `alloc` adds owned sessions; `std` adds loading from a path
//! (memory-mapped) and the file writer used by the host tools; `threads`
//! (default) splits matrix work across a thread pool ([`Workers`]); one
//! feature per model family (`mamba1`, `mamba2`, `rnn`, `rwkv4`, `rwkv7`,
//! `gated-deltanet`, `gla`, `lfm2`, `recurrent-gemma`; `all-families` is default) chooses what is compiled in.
//!
//! A model can keep its sessions' recurrent state quantized to 8 or 4 bits
//! ([`Model::set_state_format`], [`StateFormat`]) to shrink per-sequence memory.
#![cfg_attr(not(feature = "std"), no_std)]
#![warn(missing_docs)]
// With only some families compiled in, helpers of the others go unused.
#![cfg_attr(not(feature = "all-families"), allow(dead_code, unused_imports, unused_macros))]

#[cfg(feature = "alloc")]
extern crate alloc;

#[cfg(not(any(
    feature = "mamba1",
    feature = "mamba2",
    feature = "rnn",
    feature = "rwkv4",
    feature = "rwkv7",
    feature = "gated-deltanet",
    feature = "gla",
    feature = "lfm2",
    feature = "recurrent-gemma"
)))]
compile_error!("enable at least one model family feature of `eddy` (e.g. `mamba1`, or `all-families`)");

pub mod arch;
pub mod attention;
mod error;
pub mod families;
mod family;
pub mod file;
mod linear;
mod model;
pub mod offload;
mod ops;
pub mod parallel;
pub mod schema;
mod session;
mod state_store;
#[cfg(feature = "std")]
pub mod writer;

// The family modules under their paths from before they moved to
// `families/`, which other crates use.
#[cfg(feature = "gated-deltanet")]
pub use families::gated_deltanet;
#[cfg(feature = "gla")]
pub use families::gla;
#[cfg(any(feature = "lfm2", feature = "recurrent-gemma"))]
pub use families::hybrid;
#[cfg(feature = "lfm2")]
pub use families::lfm2;
#[cfg(feature = "mamba1")]
pub use families::mamba1 as mamba;
#[cfg(feature = "mamba2")]
pub use families::mamba2;
#[cfg(feature = "recurrent-gemma")]
pub use families::recurrent_gemma;
#[cfg(feature = "rnn")]
pub use families::rnn;
#[cfg(feature = "rwkv4")]
pub use families::rwkv4;
#[cfg(feature = "rwkv7")]
pub use families::rwkv7;

pub use arch::{Architecture, HParam};
pub use attention::KvCacheOptions;
pub use eddy_kernels::Kernels;
pub use eddy_quant::{KvFormat, TensorFormat};
pub use error::{FileError, ModelError, SessionError};
pub use family::Observer;
pub use file::{BlobKind, EddyFile, TensorView};
#[cfg(feature = "std")]
pub use model::{MappedModel, OpenError};
pub use model::{Model, STATE_HEADER_WORDS};
pub use offload::{Offload, OffloadError};
pub use parallel::Workers;
#[cfg(feature = "alloc")]
pub use session::OwnedSession;
pub use session::Session;
pub use state_store::{StateFormat, STATE_GROUP};
