//! Cycle and throughput model of the accelerator: predicted cycles per
//! kernel call from the design parameters (PE, SIMD, clock, ports) and the
//! board's memory bandwidth, then tokens/s for a Mamba-1 shape.
//!
//! Every number here is a model prediction. What is validated: the MAC
//! pipeline iteration count equals the C-simulated kernel's ITERS register
//! for every shape the tests try. What is not: latencies, achieved clock,
//! achieved bandwidth and launch overhead are assumptions (listed in
//! `fpga/README.md`); no synthesis or RTL simulation of the HLS code was
//! run here.

use eddy_quant::TensorFormat;

/// Accelerator parameters (what `eddy fpga export` writes as cflags).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Design {
    /// Processing elements (rows in parallel).
    pub pe: u32,
    /// SIMD lanes (weights per row per cycle).
    pub simd: u32,
    /// Kernel clock in MHz.
    pub clock_mhz: f64,
    /// AXI master ports the weights are striped over.
    pub weight_ports: u32,
    /// Bytes per cycle of one port (512-bit = 64).
    pub port_bytes: u32,
    /// Latency of the f32 adder on the row recurrence (cycles).
    pub fadd_latency: u32,
    /// Cycles from start to the first pipeline iteration (control, first
    /// burst) plus pipeline drain, per call.
    pub call_cycles: u64,
    /// Channels the scan unit updates side by side.
    pub scan_lanes: u32,
    /// Pipeline depth of one scan stage (exp, softplus, silu chains), paid
    /// once per stage and once per channel tile.
    pub scan_depth: u64,
    /// Host time per kernel call (register writes, polls, activation
    /// copies), microseconds.
    pub host_us_per_call: f64,
}

/// A board: part name and what the kernel can get from its memory.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Board {
    /// Short name (`u280`, `kv260`).
    pub name: &'static str,
    /// FPGA part for the HLS project.
    pub part: &'static str,
    /// Memory bandwidth the kernel's ports can reach together, GB/s
    /// (effective, not the datasheet peak).
    pub mem_gbs: f64,
    /// DSP slices of the part.
    pub dsps: u32,
    /// The design this crate proposes for the board.
    pub design: Design,
}

/// Alveo U280: HBM2 (460 GB/s peak over 32 pseudo-channels of ~14.4 GB/s);
/// the design stripes weights over 8 of them.
pub const U280: Board = Board {
    name: "u280",
    part: "xcu280-fsvh2892-2L-e",
    mem_gbs: 8.0 * 12.0,
    dsps: 9024,
    design: Design {
        pe: 256,
        simd: 4,
        clock_mhz: 250.0,
        weight_ports: 8,
        port_bytes: 64,
        fadd_latency: 8,
        call_cycles: 200,
        scan_lanes: 32,
        scan_depth: 60,
        host_us_per_call: 20.0,
    },
};

/// Kria KV260 (Zynq UltraScale+ XCK26): DDR4-2400 x64, 19.2 GB/s peak,
/// shared with the ARM cores; four 128-bit HP ports.
pub const KV260: Board = Board {
    name: "kv260",
    part: "xck26-sfvc784-2LV-c",
    mem_gbs: 12.0,
    dsps: 1248,
    design: Design {
        pe: 48,
        simd: 4,
        clock_mhz: 200.0,
        weight_ports: 4,
        port_bytes: 16,
        fadd_latency: 8,
        call_cycles: 200,
        scan_lanes: 8,
        scan_depth: 60,
        host_us_per_call: 3.0,
    },
};

/// Boards `eddy fpga export` knows.
pub const BOARDS: [Board; 2] = [U280, KV260];

/// The board named `name`.
pub fn board(name: &str) -> Option<Board> {
    BOARDS.iter().copied().find(|b| b.name == name)
}

/// Predicted cost of one matrix-vector call.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct MatvecCost {
    /// MAC pipeline iterations: ceil(rows/PE) * cols/SIMD (what the
    /// kernel's ITERS register counts).
    pub iters: u64,
    /// Cycles if compute-bound (iterations, the adder recurrence, output
    /// writes, activation load, call latency).
    pub compute_cycles: u64,
    /// Cycles to stream the weights at the achievable bandwidth.
    pub memory_cycles: u64,
    /// The larger of the two.
    pub cycles: u64,
}

/// Bytes per cycle the weight ports can move on `board` at `design`'s clock.
pub fn weight_bytes_per_cycle(design: &Design, board: &Board) -> f64 {
    let ports = (design.weight_ports * design.port_bytes) as f64;
    let mem = board.mem_gbs * 1e9 / (design.clock_mhz * 1e6);
    ports.min(mem)
}

/// Cost of `y = W x` for a `rows x cols` integer matrix.
pub fn matvec_cost(design: &Design, board: &Board, format: TensorFormat, rows: u64, cols: u64) -> MatvecCost {
    let (Some(group), Some(row_bytes)) = (format.group_size(), format.byte_len(1, cols).ok()) else {
        return MatvecCost { iters: 0, compute_cycles: 0, memory_cycles: 0, cycles: 0 };
    };
    let (pe, simd) = (design.pe.max(1) as u64, design.simd.max(1) as u64);
    let tiles = rows.div_ceil(pe);
    let groups = cols / group as u64;
    let steps = (group as u64).div_ceil(simd);
    let iters = tiles * groups * steps;
    // Per group the row sums advance once; the adder's latency bounds the
    // pace when a group takes fewer steps than that.
    let per_group = steps.max(design.fadd_latency as u64);
    let load_x = cols.div_ceil(design.port_bytes as u64) + groups;
    let compute = tiles * (groups * per_group + pe) + load_x + design.call_cycles;
    let bytes = (rows * row_bytes) as f64;
    let memory = (bytes / weight_bytes_per_cycle(design, board)).ceil() as u64 + load_x + design.call_cycles;
    MatvecCost { iters, compute_cycles: compute, memory_cycles: memory, cycles: compute.max(memory) }
}

/// State-loop iterations of one scan call: ceil(channels / lanes) * d_state
/// (what the kernel's ITERS register counts for a scan).
pub fn scan_iters(design: &Design, channels: u64, d_state: u64) -> u64 {
    channels.div_ceil(design.scan_lanes.max(1) as u64) * d_state
}

/// Cycles of one scan call: the softplus and output stages (II=1 over
/// channels), the state stage (II=1 over states per tile of lanes, plus the
/// pipeline depth per tile), or the A/state traffic (A and h read, h
/// written: 12 bytes per state value over one 64-byte port), whichever is
/// slower.
pub fn scan_cycles(design: &Design, channels: u64, d_state: u64) -> u64 {
    let tiles = channels.div_ceil(design.scan_lanes.max(1) as u64);
    let compute = 2 * (channels + design.scan_depth) + tiles * (d_state + design.scan_depth);
    let memory = (channels * d_state * 12).div_ceil(64);
    compute.max(memory) + design.call_cycles
}

/// A Mamba-1 shape and the formats of its matrices.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct MambaShape {
    /// Name shown in the table.
    pub name: &'static str,
    /// Model width.
    pub d_model: u64,
    /// Layers.
    pub n_layer: u64,
    /// Inner width.
    pub d_inner: u64,
    /// State size.
    pub d_state: u64,
    /// dt rank.
    pub dt_rank: u64,
    /// Vocabulary.
    pub vocab: u64,
}

/// Mamba-130M (state-spaces/mamba-130m).
pub const MAMBA_130M: MambaShape = MambaShape {
    name: "Mamba-130M",
    d_model: 768,
    n_layer: 24,
    d_inner: 1536,
    d_state: 16,
    dt_rank: 48,
    vocab: 50280,
};
/// Mamba-2.8B (state-spaces/mamba-2.8b).
pub const MAMBA_2_8B: MambaShape = MambaShape {
    name: "Mamba-2.8B",
    d_model: 2560,
    n_layer: 64,
    d_inner: 5120,
    d_state: 16,
    dt_rank: 160,
    vocab: 50280,
};

/// Predicted decode throughput of one shape on one board.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct TokenPrediction {
    /// Kernel cycles per token (all layers' in/x/out projections and
    /// scans, and the head).
    pub cycles: u64,
    /// Of which the scan.
    pub scan_cycles: u64,
    /// Kernel calls per token.
    pub calls: u64,
    /// Weight bytes read per token.
    pub weight_bytes: u64,
    /// Tokens/s from kernel cycles alone.
    pub kernel_tok_s: f64,
    /// Tokens/s including the host's per-call time.
    pub tok_s: f64,
    /// True if the weight stream, not the MACs, bounds most of the time.
    pub memory_bound: bool,
}

/// Predict one decode token of `shape` with W2 (groups of 128) layers and
/// a W8 head, as the `w2a8` recipe stores them. `dt_proj` (f16 in that
/// recipe) runs on the host and is not counted.
pub fn predict_token(design: &Design, board: &Board, shape: &MambaShape) -> TokenPrediction {
    let w2 = TensorFormat::W2 { group: 128 };
    let w8 = TensorFormat::W8 { group: 128 };
    let s = shape;
    let mats = [(2 * s.d_inner, s.d_model), (s.dt_rank + 2 * s.d_state, s.d_inner), (s.d_model, s.d_inner)];
    let (mut cycles, mut bytes, mut mem_cycles) = (0u64, 0u64, 0u64);
    for (rows, cols) in mats {
        let c = matvec_cost(design, board, w2, rows, cols);
        cycles += c.cycles * s.n_layer;
        mem_cycles +=
            c.memory_cycles.min(c.cycles) * s.n_layer * (c.memory_cycles >= c.compute_cycles) as u64;
        bytes += w2.byte_len(rows, cols).unwrap_or(0) * s.n_layer;
    }
    let scan = scan_cycles(design, s.d_inner, s.d_state) * s.n_layer;
    let head = matvec_cost(design, board, w8, s.vocab, s.d_model);
    cycles += scan + head.cycles;
    bytes += w8.byte_len(s.vocab, s.d_model).unwrap_or(0);
    let calls = 4 * s.n_layer + 1;
    let secs = cycles as f64 / (design.clock_mhz * 1e6);
    TokenPrediction {
        cycles,
        scan_cycles: scan,
        calls,
        weight_bytes: bytes,
        kernel_tok_s: 1.0 / secs,
        tok_s: 1.0 / (secs + calls as f64 * design.host_us_per_call * 1e-6),
        memory_bound: 2 * mem_cycles > cycles,
    }
}

/// Rough DSP count: one DSP48E2 per int8 MAC lane (what yosys maps the
/// RTL MAC array to, `tests/rtl.rs`; packing two per DSP by hand would
/// halve it), four f32 units (~3 DSPs each) per PE for the group update,
/// and per scan lane an exp unit and four f32 multiply/adds (~25). Only the
/// MAC term is backed by a synthesis run.
pub fn dsp_estimate(design: &Design) -> u64 {
    let (pe, simd) = (design.pe as u64, design.simd as u64);
    pe * simd + pe * 12 + design.scan_lanes as u64 * 25 + 60
}

/// The prediction table of `fpga/README.md` (Markdown), with the published
/// reference points.
pub fn prediction_table() -> String {
    let mut t = String::from(
        "| model | board | PE x SIMD | clock | weight BW | weights/token | cycles/token (scan) | kernel tok/s | tok/s incl. host | DSP est. |\n|---|---|---|---|---|---|---|---|---|---|\n",
    );
    for shape in [MAMBA_130M, MAMBA_2_8B] {
        for b in BOARDS {
            let d = b.design;
            let p = predict_token(&d, &b, &shape);
            let bw = weight_bytes_per_cycle(&d, &b) * d.clock_mhz * 1e6 / 1e9;
            t.push_str(&format!(
                "| {} | {} | {} x {} | {} MHz | {:.1} GB/s | {:.1} MB | {} ({}) | {:.0}{} | {:.0} | {} of {} |\n",
                shape.name,
                b.name,
                d.pe,
                d.simd,
                d.clock_mhz,
                bw,
                p.weight_bytes as f64 / 1e6,
                p.cycles,
                p.scan_cycles,
                p.kernel_tok_s,
                if p.memory_bound { " (memory-bound)" } else { "" },
                p.tok_s,
                dsp_estimate(&d),
                b.dsps
            ));
        }
    }
    t.push_str(
        "| Llama-2-7B W2A8KV4 (AccLLM, published) | u280 | - | 225 MHz | - | - | - | - | 164 (33 W) | - |\n\
         | Mamba-2.8B (LightMamba, published) | u280 | - | - | - | - | - | - | 93 | - |\n",
    );
    t
}
