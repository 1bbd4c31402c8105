//! The `--backend fpga-sim` option of `eddy run`/`eddy logits`: the model's
//! integer matrix products (and with `--fpga-scan` its selective scan) run
//! on the FPGA kernel in C-simulation, driven through its registers, and
//! the `eddy fpga` subcommands.
//!
//! Without the cargo feature `fpga` (default on) the CLI builds without
//! eddy-fpga and so without a C++ compiler; the options and subcommands
//! still parse, and using them is a clear error.

use anyhow::{bail, Result};
use eddy::{Model, Offload};
#[cfg(feature = "fpga")]
use eddy_fpga::{FpgaOffload, SimBus};

/// The simulated accelerator the FPGA backend drives.
#[cfg(feature = "fpga")]
pub type Accelerator<'m> = FpgaOffload<'m, SimBus>;

/// No accelerator exists in a build without the `fpga` feature.
#[cfg(not(feature = "fpga"))]
pub enum NoAccelerator {}

/// No accelerator exists in a build without the `fpga` feature.
#[cfg(not(feature = "fpga"))]
pub type Accelerator<'m> = NoAccelerator;

/// What a build without the `fpga` feature says for any FPGA use.
#[cfg(not(feature = "fpga"))]
pub const NO_FPGA: &str =
    "this eddy was built without FPGA support (cargo feature `fpga` of eddy-cli is off)";

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
/// for the CPU backend. Set it on the model with `Model::set_offload`
/// (see [`as_offload`]).
pub fn attach<'m>(
    backend: Backend,
    scan: bool,
    model: &Model<'_>,
    bytes: &'m [u8],
) -> Result<Option<Accelerator<'m>>> {
    if scan && backend != Backend::FpgaSim {
        bail!("--fpga-scan needs --backend fpga-sim");
    }
    match backend {
        Backend::Cpu => Ok(None),
        #[cfg(feature = "fpga")]
        Backend::FpgaSim => Ok(Some(FpgaOffload::simulated(model, bytes, scan)?)),
        #[cfg(not(feature = "fpga"))]
        Backend::FpgaSim => {
            let _ = (model, bytes);
            bail!("{NO_FPGA}; --backend fpga-sim is unavailable")
        }
    }
}

/// The accelerator as the model's offload device.
#[cfg(feature = "fpga")]
pub fn as_offload<'a>(fpga: &'a Accelerator<'_>) -> &'a dyn Offload {
    fpga
}

/// The accelerator as the model's offload device (there is none).
#[cfg(not(feature = "fpga"))]
pub fn as_offload<'a>(fpga: &'a Accelerator<'_>) -> &'a dyn Offload {
    match *fpga {}
}

/// Print what the accelerator did to stderr; an error if any request
/// failed on the device (its outputs were NaN).
#[cfg(feature = "fpga")]
pub fn report(fpga: Option<&Accelerator<'_>>) -> Result<()> {
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

/// `eddy fpga ...` subcommands.
#[derive(Debug, clap::Subcommand)]
pub enum FpgaCommand {
    /// Write a Vitis HLS project (tcl, sources, directives, C-sim golden
    /// vectors) and the host configuration for a board.
    Export {
        /// Target board.
        #[arg(long, value_parser = ["u280", "kv260"])]
        board: String,
        /// Output directory.
        #[arg(short, long)]
        output: std::path::PathBuf,
        /// Design parameters (default: the board's, see `eddy fpga predict`).
        #[command(flatten)]
        design: DesignArgs,
    },
    /// Print the cycle model's predicted tokens/s for Mamba-130M and
    /// Mamba-2.8B on each board (model predictions, not measurements).
    Predict {
        /// Print the predictions as JSON (one object per model and board).
        #[arg(long)]
        json: bool,
    },
}

/// Overrides of a board's default design parameters.
#[derive(Debug, clap::Args)]
pub struct DesignArgs {
    /// Processing elements (rows in parallel).
    #[arg(long)]
    pub pe: Option<u32>,
    /// SIMD lanes (weights per row per cycle); 32/SIMD must cover the f32
    /// adder latency (8).
    #[arg(long)]
    pub simd: Option<u32>,
    /// Kernel clock in MHz.
    #[arg(long)]
    pub clock_mhz: Option<f64>,
    /// Scan channels side by side.
    #[arg(long)]
    pub scan_lanes: Option<u32>,
}

/// Nothing ran on an accelerator in a build without the `fpga` feature.
#[cfg(not(feature = "fpga"))]
pub fn report(fpga: Option<&Accelerator<'_>>) -> Result<()> {
    match fpga {
        None => Ok(()),
        Some(f) => match *f {},
    }
}

/// Run an `eddy fpga` subcommand.
#[cfg(not(feature = "fpga"))]
pub fn run(cmd: FpgaCommand) -> Result<()> {
    let _ = cmd;
    bail!("{NO_FPGA}; `eddy fpga` is unavailable")
}

/// Run an `eddy fpga` subcommand.
#[cfg(feature = "fpga")]
pub fn run(cmd: FpgaCommand) -> Result<()> {
    use eddy_fpga::cycles;
    match cmd {
        FpgaCommand::Export { board, output, design } => {
            let Some(b) = cycles::board(&board) else { bail!("unknown board `{board}`; use u280 or kv260") };
            let mut d = b.design;
            d.pe = design.pe.unwrap_or(d.pe);
            d.simd = design.simd.unwrap_or(d.simd);
            d.clock_mhz = design.clock_mhz.unwrap_or(d.clock_mhz);
            d.scan_lanes = design.scan_lanes.unwrap_or(d.scan_lanes);
            let files = eddy_fpga::export::export(&b, &d, &output)?;
            println!(
                "wrote {} files to {} ({}, part {}, PE {} x SIMD {}, {} scan lanes, {} MHz)",
                files.len(),
                output.display(),
                b.name,
                b.part,
                d.pe,
                d.simd,
                d.scan_lanes,
                d.clock_mhz
            );
            println!("next: cd {} && vitis_hls -f run_hls.tcl   (see fpga/README.md)", output.display());
            Ok(())
        }
        FpgaCommand::Predict { json: true } => {
            let rows: Vec<serde_json::Value> = [cycles::MAMBA_130M, cycles::MAMBA_2_8B]
                .iter()
                .flat_map(|shape| cycles::BOARDS.iter().map(move |b| (shape, b)))
                .map(|(shape, b)| {
                    let d = b.design;
                    let p = cycles::predict_token(&d, b, shape);
                    serde_json::json!({
                        "model": shape.name,
                        "board": b.name,
                        "pe": d.pe,
                        "simd": d.simd,
                        "clock_mhz": d.clock_mhz,
                        "weight_bytes_per_token": p.weight_bytes,
                        "cycles_per_token": p.cycles,
                        "scan_cycles_per_token": p.scan_cycles,
                        "kernel_tok_s": p.kernel_tok_s,
                        "tok_s_incl_host": p.tok_s,
                        "memory_bound": p.memory_bound,
                        "dsp_estimate": cycles::dsp_estimate(&d),
                        "dsps": b.dsps,
                    })
                })
                .collect();
            println!(
                "{}",
                serde_json::json!({"kind": "model prediction, not a measurement", "predictions": rows})
            );
            Ok(())
        }
        FpgaCommand::Predict { json: false } => {
            println!("Model predictions (fpga/src/cycles.rs), not measurements:\n");
            print!("{}", cycles::prediction_table());
            Ok(())
        }
    }
}
