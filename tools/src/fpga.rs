//! The `--backend fpga-sim` option of `eddy run`/`eddy logits`: the model's
//! integer matrix products (and with `--fpga-scan` its selective scan) run
//! on the FPGA kernel in C-simulation, driven through its registers.

use anyhow::{bail, Result};
use eddy::Model;
use eddy_fpga::{FpgaOffload, SimBus};

/// Where a model's matrix products run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Backend {
    /// The CPU kernels.
    Cpu,
    /// The FPGA accelerator's HLS C++ in C-simulation (bit-exact matrix
    /// products; see fpga/README.md).
    FpgaSim,
}

/// The simulated accelerator for `model` (loaded from `bytes`), or `None`
/// for the CPU backend. Set it on the model with `Model::set_offload`.
pub fn attach<'m>(
    backend: Backend,
    scan: bool,
    model: &Model<'_>,
    bytes: &'m [u8],
) -> Result<Option<FpgaOffload<'m, SimBus>>> {
    if scan && backend != Backend::FpgaSim {
        bail!("--fpga-scan needs --backend fpga-sim");
    }
    match backend {
        Backend::Cpu => Ok(None),
        Backend::FpgaSim => Ok(Some(FpgaOffload::simulated(model, bytes, scan)?)),
    }
}

/// Print what the accelerator did to stderr; an error if any request
/// failed on the device (its outputs were NaN).
pub fn report(fpga: Option<&FpgaOffload<'_, SimBus>>) -> Result<()> {
    let Some(f) = fpga else { return Ok(()) };
    let s = f.stats();
    let p = f.params();
    eprintln!(
        "fpga-sim (PE {}, SIMD {}): {} matvecs, {} scans on the accelerator, {} declined (ran on the CPU), \
         {} pipeline iterations",
        p.pe, p.simd, s.matvecs, s.scans, s.declined, s.iters
    );
    if let Some(e) = s.first_error {
        bail!("the accelerator failed {} time(s); first: {e}", s.errors);
    }
    Ok(())
}
