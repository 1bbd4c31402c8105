//! eddy: run quantized recurrent language models on small machines.
//!
//! The core is `#![no_std]` and never allocates: [`Model::from_bytes`]
//! validates a `.eddy` file and borrows its tensors in place, and a
//! [`Session`] runs in memory the caller provides, sized by
//! [`Model::state_bytes`] and [`Model::scratch_bytes`].
//!
//! Features: `alloc` adds owned sessions; `std` adds loading from a path
//! (memory-mapped) and the file writer used by the host tools; `threads`
//! (default) splits matrix work across a thread pool ([`Workers`]).
#![cfg_attr(not(feature = "std"), no_std)]
#![warn(missing_docs)]

#[cfg(feature = "alloc")]
extern crate alloc;

pub mod arch;
mod error;
mod family;
pub mod file;
pub mod gated_deltanet;
mod linear;
pub mod mamba;
pub mod mamba2;
mod model;
mod ops;
pub mod parallel;
pub mod rnn;
pub mod rwkv4;
pub mod rwkv7;
pub mod schema;
mod session;
#[cfg(feature = "std")]
pub mod writer;

pub use arch::{Architecture, HParam};
pub use eddy_kernels::Kernels;
pub use eddy_quant::TensorFormat;
pub use error::{FileError, ModelError, SessionError};
pub use family::Observer;
pub use file::{BlobKind, EddyFile, TensorView};
pub use model::Model;
#[cfg(feature = "std")]
pub use model::{MappedModel, OpenError};
pub use parallel::Workers;
#[cfg(feature = "alloc")]
pub use session::OwnedSession;
pub use session::Session;
