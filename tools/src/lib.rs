//! Host-side tools of eddy: the converter from Hugging Face checkpoints and
//! the helpers behind the `eddy` command (sampling, `.npy` output,
//! tokenization).
#![warn(missing_docs)]

pub mod bench;
pub mod budget;
pub mod calibrate;
pub mod chat_template;
pub mod cholesky;
pub mod convert;
pub mod eval;
pub mod file_layout;
pub mod file_writer;
pub mod fpga;
pub mod generate;
pub mod gptq;
pub mod mapped_input;
pub mod memory;
pub mod npy;
pub mod par;
pub mod progress;
pub mod quantize;
pub mod random;
pub mod recipe;
pub mod sample;
pub mod serve;
pub mod shapes;
pub mod sparsegpt;
pub mod state_file;
pub mod text;
pub mod validate;
