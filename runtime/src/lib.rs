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
//! feature per model family (`mamba1`, `gla`, ...: the registry in
//! [`families`] lists them; `all-families` is default) chooses what is
//! compiled in.
//!
//! A model can keep its sessions' recurrent state quantized to 8 or 4 bits
//! ([`Model::set_state_format`], [`StateFormat`]) to shrink per-sequence memory.
#![cfg_attr(not(feature = "std"), no_std)]
#![warn(missing_docs)]
// With only some families compiled in, helpers of the others go unused.
#![cfg_attr(not(feature = "all-families"), allow(dead_code, unused_imports, unused_macros))]

#[cfg(feature = "alloc")]
extern crate alloc;

pub mod arch;
pub mod attention;
mod chunk;
mod error;
pub mod families;
mod family;
pub mod file;
mod linear;
mod model;
mod model_sizes;
pub mod offload;
mod ops;
pub mod parallel;
pub mod schema;
mod session;
mod state_store;
#[cfg(feature = "std")]
pub mod writer;

// Every family module also at the crate root (`eddy::gla`, ...), where
// other crates have always used them; Mamba-1 keeps its old name too.
#[cfg(feature = "mamba1")]
pub use families::mamba1 as mamba;
pub use families::*;

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
pub use model_sizes::ModelSizes;
pub use offload::{Offload, OffloadError, ScanShape};
pub use parallel::Workers;
pub use session::Session;
#[cfg(feature = "alloc")]
pub use session::{OwnedSession, PREFILL_CHUNK};
pub use state_store::{StateFormat, STATE_GROUP};
