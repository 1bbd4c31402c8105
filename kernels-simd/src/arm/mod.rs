//! 32-bit Arm (Cortex-M) kernels: the DSP extension's set ([`dsp`],
//! Armv7E-M and later) and Helium's ([`helium`], Armv8.1-M MVE), which
//! share the per-row driver ([`rows`]).

pub mod dsp;
#[cfg(eddy_mve)]
pub mod helium;
mod rows;
