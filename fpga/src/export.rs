//! `eddy fpga export`: a Vitis HLS project for one board and design
//! (sources, top, part, clock, directives, C-sim testbench with golden
//! vectors) plus the host configuration the driver reads on the board.
//!
//! The sources are embedded in this crate at build time, so the exported
//! project is exactly what the C-simulation tests compiled.

use crate::cycles::{Board, Design};
use std::path::{Path, PathBuf};

/// The HLS sources, testbench and golden vectors, as (relative path, bytes).
const SOURCES: [(&str, &[u8]); 7] = [
    ("hls/eddy_hls.h", include_bytes!("../hls/eddy_hls.h")),
    ("hls/eddy_params.h", include_bytes!("../hls/eddy_params.h")),
    ("hls/mvau.h", include_bytes!("../hls/mvau.h")),
    ("hls/scan.h", include_bytes!("../hls/scan.h")),
    ("hls/eddy_accel.h", include_bytes!("../hls/eddy_accel.h")),
    ("hls/eddy_accel.cpp", include_bytes!("../hls/eddy_accel.cpp")),
    ("hls/tb/tb_accel.cpp", include_bytes!("../hls/tb/tb_accel.cpp")),
];

/// Largest input length of the exported kernel (Mamba-2.8B's d_inner is
/// 5120; the head's input is d_model).
pub const EXPORT_MAX_COLS: u32 = 8192;
/// Largest scan state size of the exported kernel.
pub const EXPORT_MAX_DSTATE: u32 = 64;
/// Largest scan channel count of the exported kernel.
pub const EXPORT_MAX_CHANNELS: u32 = 8192;

/// Writing the project failed.
#[derive(Debug)]
pub enum ExportError {
    /// The design violates a synthesis constraint.
    Design(String),
    /// A file could not be written.
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        error: std::io::Error,
    },
}

impl core::fmt::Display for ExportError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            ExportError::Design(m) => write!(f, "{m}"),
            ExportError::Io { path, error } => write!(f, "cannot write {}: {error}", path.display()),
        }
    }
}

impl std::error::Error for ExportError {}

/// Check the constraints `fpga/hls/eddy_params.h` enforces in synthesis.
pub fn check_design(d: &Design) -> Result<(), ExportError> {
    if d.pe == 0 || d.pe > 256 {
        return Err(ExportError::Design(format!("PE {} must be in 1..=256", d.pe)));
    }
    if d.simd == 0 || 32 % d.simd != 0 {
        return Err(ExportError::Design(format!("SIMD {} must divide 32", d.simd)));
    }
    if 32 / d.simd < d.fadd_latency {
        return Err(ExportError::Design(format!(
            "SIMD {} too wide: 32/SIMD must be at least the f32 adder latency {}",
            d.simd, d.fadd_latency
        )));
    }
    if d.scan_lanes == 0 || d.scan_lanes > 64 {
        return Err(ExportError::Design(format!("scan lanes {} must be in 1..=64", d.scan_lanes)));
    }
    if !(d.clock_mhz > 0.0 && d.clock_mhz <= 1000.0) {
        return Err(ExportError::Design(format!("clock {} MHz out of range", d.clock_mhz)));
    }
    Ok(())
}

fn cflags(d: &Design) -> String {
    format!(
        "-std=c++14 -Ihls -DEDDY_PE={} -DEDDY_SIMD={} -DEDDY_MAX_COLS={} -DEDDY_MAX_DSTATE={} -DEDDY_FADD_LATENCY={} \
         -DEDDY_SCAN_LANES={} -DEDDY_MAX_CHANNELS={}",
        d.pe, d.simd, EXPORT_MAX_COLS, EXPORT_MAX_DSTATE, d.fadd_latency, d.scan_lanes, EXPORT_MAX_CHANNELS
    )
}

/// The Vitis HLS script.
pub fn hls_tcl(board: &Board, d: &Design) -> String {
    let vitis = board.name == "u280";
    let period = 1000.0 / d.clock_mhz;
    let flags = cflags(d);
    format!(
        "# Vitis HLS project for the eddy accelerator on {name} ({part}), written by `eddy fpga export`.\n\
         # Run: vitis_hls -f run_hls.tcl   (C-sim, synthesis, export; co-sim is commented out)\n\
         open_project -reset eddy_accel_prj\n\
         set_top eddy_accel\n\
         add_files hls/eddy_accel.cpp -cflags \"{flags}\"\n\
         add_files -tb hls/tb/tb_accel.cpp -cflags \"{flags} -Wno-unknown-pragmas\"\n\
         open_solution -reset solution1 -flow_target {flow}\n\
         set_part {{{part}}}\n\
         create_clock -period {period:.3} -name default\n\
         config_interface -m_axi_addr64\n\
         source directives.tcl\n\
         # The testbench compares with golden vectors from eddy's Rust reference.\n\
         set golden [lmap f [lsort [glob hls/golden/*.bin]] {{file normalize $f}}]\n\
         csim_design -argv [join $golden \" \"]\n\
         csynth_design\n\
         # cosim_design -argv [join $golden \" \"]\n\
         export_design -format {format} -rtl verilog\n\
         exit\n",
        name = board.name,
        part = board.part,
        flow = if vitis { "vitis" } else { "vivado" },
        format = if vitis { "xo" } else { "ip_catalog" },
    )
}

/// Board-specific directives (the kernel's own pragmas are in the sources).
pub fn directives_tcl(board: &Board, d: &Design) -> String {
    format!(
        "# Directives for {name}: weights on their own AXI master, burst reads.\n\
         set_directive_interface -mode m_axi -bundle gmem_w -max_read_burst_length 256 -num_read_outstanding 16 eddy_accel w\n\
         set_directive_interface -mode m_axi -bundle gmem_x -max_read_burst_length 64 eddy_accel xq\n\
         # Clock uncertainty: 27% of the {mhz} MHz period (HLS default is 27%).\n\
         set_clock_uncertainty 27%\n",
        name = board.name,
        mhz = d.clock_mhz
    )
}

/// Vitis linker connectivity (U280: weights over HBM pseudo-channels).
pub fn connectivity_cfg(d: &Design) -> String {
    format!(
        "# v++ --link --config connectivity.cfg: memory banks of the kernel's ports.\n\
         [connectivity]\n\
         nk=eddy_accel:1:eddy_accel_1\n\
         sp=eddy_accel_1.w:HBM[0:{last}]\n\
         sp=eddy_accel_1.xq:HBM[{act}]\n\
         sp=eddy_accel_1.xs:HBM[{act}]\n\
         sp=eddy_accel_1.xsum:HBM[{act}]\n\
         sp=eddy_accel_1.y:HBM[{act}]\n\
         sp=eddy_accel_1.a:HBM[{act}]\n\
         sp=eddy_accel_1.chp:HBM[{act}]\n\
         sp=eddy_accel_1.bc:HBM[{act}]\n\
         sp=eddy_accel_1.h:HBM[{act}]\n",
        last = d.weight_ports.max(1) - 1,
        act = d.weight_ports.max(1)
    )
}

/// The host configuration the board driver reads (see
/// [`crate::uio::HostConfig`]).
pub fn host_config(board: &Board, d: &Design) -> String {
    format!(
        "# eddy accelerator host configuration (written by `eddy fpga export`).\n\
         board = {name}\n\
         part = {part}\n\
         clock_mhz = {mhz}\n\
         pe = {pe}\n\
         simd = {simd}\n\
         max_cols = {cols}\n\
         max_dstate = {ds}\n\
         max_channels = {ch}\n\
         scan_lanes = {lanes}\n\
         # Linux: the kernel's register window as a UIO device of this name,\n\
         # and a physically contiguous buffer from udmabuf of this name.\n\
         uio_name = eddy_accel\n\
         udmabuf = udmabuf0\n",
        name = board.name,
        part = board.part,
        mhz = d.clock_mhz,
        pe = d.pe,
        simd = d.simd,
        cols = EXPORT_MAX_COLS,
        ds = EXPORT_MAX_DSTATE,
        ch = EXPORT_MAX_CHANNELS,
        lanes = d.scan_lanes
    )
}

/// Write the project for `board` with `design` into `dir`; returns the
/// files written.
pub fn export(board: &Board, design: &Design, dir: &Path) -> Result<Vec<PathBuf>, ExportError> {
    check_design(design)?;
    let mut files: Vec<(String, Vec<u8>)> =
        SOURCES.iter().map(|(p, b)| (p.to_string(), b.to_vec())).collect();
    for (name, bytes) in crate::golden::all_files() {
        files.push((format!("hls/golden/{name}"), bytes));
    }
    files.push(("run_hls.tcl".into(), hls_tcl(board, design).into_bytes()));
    files.push(("directives.tcl".into(), directives_tcl(board, design).into_bytes()));
    if board.name == "u280" {
        files.push(("connectivity.cfg".into(), connectivity_cfg(design).into_bytes()));
    }
    files.push(("eddy-host.conf".into(), host_config(board, design).into_bytes()));
    let mut written = Vec::new();
    for (rel, bytes) in files {
        let path = dir.join(&rel);
        let io = |error| ExportError::Io { path: path.clone(), error };
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(io)?;
        }
        std::fs::write(&path, bytes).map_err(io)?;
        written.push(path);
    }
    Ok(written)
}
