//! The model families: one module per family (and [`hybrid`], what the
//! hybrids with attention layers share).

#[cfg(feature = "gated-deltanet")]
pub mod gated_deltanet;
#[cfg(feature = "gla")]
pub mod gla;
#[cfg(any(feature = "lfm2", feature = "recurrent-gemma"))]
pub mod hybrid;
#[cfg(feature = "lfm2")]
pub mod lfm2;
#[cfg(feature = "mamba1")]
pub mod mamba1;
#[cfg(feature = "mamba2")]
pub mod mamba2;
#[cfg(feature = "recurrent-gemma")]
pub mod recurrent_gemma;
#[cfg(feature = "rnn")]
pub mod rnn;
#[cfg(feature = "rwkv4")]
pub mod rwkv4;
#[cfg(feature = "rwkv7")]
pub mod rwkv7;
