//! eddy's FPGA backend.
//!
//! - `fpga/hls/`: the accelerator in Vitis HLS C++ (matrix-vector unit for
//!   W2/W4/W8 x int8, Mamba-1 scan unit, AXI-Lite/AXI master top). The same
//!   sources compile with g++; `build.rs` links that C-simulation here.
//! - [`RegisterBus`]/[`DeviceMemory`]: how the driver reaches a kernel.
//!   [`SimBus`] is the C-simulated kernel behind its register file;
//!   [`uio::UioBus`] a board's kernel through Linux UIO.
//! - [`Accel`]: the register-level driver (argument checks, start, bounded
//!   wait for done, status).
//! - [`FpgaOffload`]: an [`eddy::Offload`] that runs a model's integer
//!   matrix products (and optionally its scan) on an [`Accel`].
//! - [`cycles`]: the cycle/throughput model; [`export`]: the board project.
//!
//! The register map is in `fpga/REGISTERS.md`, the flow in `fpga/README.md`.
#![warn(missing_docs)]

pub mod bus;
pub mod cycles;
pub mod driver;
pub mod export;
pub mod golden;
pub mod offload;
pub mod regs;
pub mod sim;
pub mod uio;

pub use bus::{DeviceMemory, MemoryError, RegisterBus};
pub use driver::{Accel, ArgError, Device, DriverError, MatvecJob, RunInfo, ScanJob};
pub use offload::{FpgaOffload, OffloadInitError, OffloadStats};
pub use regs::KernelStatus;
pub use sim::{KernelParams, SimBus, SimError};
