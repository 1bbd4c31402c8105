//! Handing work to an accelerator (an FPGA, its C-simulation, ...).
//!
//! A model with an [`Offload`] set (`Model::set_offload`) asks it first for
//! every integer (W8/W4/W2) matrix-vector product, and for the Mamba-1
//! selective scan when the device offers one. A device answers
//! [`OffloadError::Unsupported`] for work it does not take (the CPU kernel
//! then runs it, with the same result) and [`OffloadError::Device`] when
//! it failed: the output is then filled with NaN so a failure is never
//! mistaken for a result; the device keeps the details.

use crate::parallel::Workers;
use eddy_kernels::ActsI8;
use eddy_quant::TensorFormat;

/// Why a device did not produce a result.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OffloadError {
    /// The device does not take this work (format, shape, size): run it on
    /// the CPU.
    Unsupported,
    /// The device failed; ask the device for the cause.
    Device,
}

pub use eddy_kernels::ScanArgs;

/// The largest selective scan a model offers an offload device
/// ([`Offload::scan`]), for sizing the device's buffers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ScanShape {
    /// Channels scanned per token.
    pub channels: usize,
    /// State values per channel.
    pub d_state: usize,
}

/// An accelerator that computes a model's matrix products (and optionally
/// its scan). Object safe; shared by reference across worker threads.
pub trait Offload: Sync {
    /// Short name, shown by the tools.
    fn name(&self) -> &str;

    /// `out[r] = Σ_g s_g (scale_rg acc_rg + min_rg sum_g)` for the `rows x
    /// cols` integer matrix `matrix` (bytes of whole rows in `format`),
    /// bit-identical to `eddy_quant::matvec_i8`.
    fn matvec_i8(
        &self,
        format: TensorFormat,
        matrix: &[u8],
        cols: usize,
        acts: &ActsI8<'_>,
        out: &mut [f32],
    ) -> Result<(), OffloadError>;

    /// One token of the selective scan: update `state` (`[channels,
    /// d_state]`) and write `y` (`[channels]`). Devices without a scan unit
    /// keep the default, which declines.
    fn scan(&self, args: &ScanArgs<'_>, state: &mut [f32], y: &mut [f32]) -> Result<(), OffloadError> {
        let _ = (args, state, y);
        Err(OffloadError::Unsupported)
    }
}

/// Run an integer matvec on the workers' offload device, if any. True when
/// `out` was written (with the result, or NaN after a device failure).
pub(crate) fn try_matvec(
    workers: Workers<'_>,
    format: TensorFormat,
    matrix: &[u8],
    cols: usize,
    acts: &ActsI8<'_>,
    out: &mut [f32],
) -> bool {
    let Some(dev) = workers.offload() else { return false };
    match dev.matvec_i8(format, matrix, cols, acts, out) {
        Ok(()) => true,
        Err(OffloadError::Unsupported) => false,
        Err(OffloadError::Device) => {
            out.fill(f32::NAN);
            true
        }
    }
}

/// [`try_matvec`] for each of `tokens` inputs (prefill). False (and
/// nothing written) if the device declines the first token.
pub(crate) fn try_matmat<'x>(
    workers: Workers<'_>,
    format: TensorFormat,
    matrix: &[u8],
    cols: usize,
    token_acts: &dyn Fn(usize) -> ActsI8<'x>,
    out: &mut [f32],
    tokens: usize,
) -> bool {
    let rows = out.len() / tokens.max(1);
    if workers.offload().is_none() || rows == 0 {
        return false;
    }
    for (t, y) in out.chunks_exact_mut(rows).enumerate() {
        if !try_matvec(workers, format, matrix, cols, &token_acts(t), y) {
            if t == 0 {
                return false;
            }
            // Declined midway (cannot happen with a consistent device):
            // keep the result total with the CPU reference.
            eddy_quant::matvec_i8(
                format,
                matrix,
                cols,
                token_acts(t).q,
                token_acts(t).scales,
                token_acts(t).sums,
                y,
            );
        }
    }
    true
}

/// Run the scan on the workers' offload device, if it has one. True when
/// `y` and `state` were written (NaN `y` after a device failure).
pub(crate) fn try_scan(workers: Workers<'_>, args: &ScanArgs<'_>, state: &mut [f32], y: &mut [f32]) -> bool {
    let Some(dev) = workers.offload() else { return false };
    match dev.scan(args, state, y) {
        Ok(()) => true,
        Err(OffloadError::Unsupported) => false,
        Err(OffloadError::Device) => {
            y.fill(f32::NAN);
            true
        }
    }
}

/// The CPU's reference selective scan for one token (what `Mamba1` runs
/// with the scalar kernel set when no device takes the scan): per channel
/// `delta = softplus(dt)`, `h = exp(A delta) h + delta B u`, `y = (C·h +
/// D u) silu(z)`. Public so an accelerator's scan can be measured against
/// it. `state` is `[channels, d_state]`, `y` is `[channels]`; shorter
/// inputs stop early. Every SIMD kernel set's scan is bit-identical to it.
pub fn scan_cpu(args: &ScanArgs<'_>, state: &mut [f32], y: &mut [f32]) {
    eddy_kernels::vector::selective_scan_scalar(args, state, y)
}
