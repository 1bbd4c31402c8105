//! The register protocol against the C-simulated kernel: results through
//! the same registers a board has, the control bits, interrupts, and the
//! error paths (bad arguments refused before start, kernel-side checks,
//! timeout, busy).

use eddy_fpga::golden::{matvec_cases, scan_cases, SCAN_ABS_BOUND, SCAN_REL_BOUND};
use eddy_fpga::{
    regs, Accel, ArgError, DeviceMemory, DriverError, KernelStatus, MatvecJob, RegisterBus, ScanJob, SimBus,
};
use eddy_quant::TensorFormat;

mod common;
use common::{f32_bytes, place_scan, read_f32};

const MEM: u64 = 1 << 20;

fn accel() -> Accel<SimBus> {
    Accel::new(SimBus::new(MEM).expect("sim"), SimBus::params())
}

/// Lay a matvec case out in device memory; returns the job.
fn place(acc: &mut Accel<SimBus>, case: &eddy_fpga::golden::MatvecCase) -> MatvecJob {
    let base = acc.device().base();
    let (w, xq, xs) = (base, base + 0x8_0000, base + 0x9_0000);
    let (xsum, y) = (base + 0xA_0000, base + 0xB_0000);
    let dev = acc.device();
    dev.write(w, &case.w).unwrap();
    dev.write(xq, &case.xq.iter().map(|&q| q as u8).collect::<Vec<_>>()).unwrap();
    dev.write(xs, &f32_bytes(&case.xs)).unwrap();
    dev.write(xsum, &case.xsum.iter().flat_map(|v| v.to_le_bytes()).collect::<Vec<_>>()).unwrap();
    MatvecJob { format: case.format, rows: case.rows as u32, cols: case.cols as u32, w, xq, xs, xsum, y }
}

#[test]
fn matvec_through_registers_is_bit_exact() {
    let mut acc = accel();
    let p = acc.params();
    for case in matvec_cases() {
        let job = place(&mut acc, &case);
        let info = acc.matvec(&job).unwrap_or_else(|e| panic!("{}: {e}", case.name));
        let expect_iters = case.rows.div_ceil(p.pe as usize) * (case.cols / p.simd as usize);
        assert_eq!(info.iters as usize, expect_iters, "{}", case.name);
        // Done comes only after the simulated pipeline time has passed.
        assert!(info.polls > expect_iters as u64 / SimBus::DEFAULT_CYCLES_PER_PAUSE, "{}", case.name);
        let got = read_f32(&mut acc, job.y, case.rows);
        for (r, (g, w)) in got.iter().zip(&case.y).enumerate() {
            assert!(
                g.to_bits() == w.to_bits() || (g.is_nan() && w.is_nan()),
                "{} row {r}: {g} vs {w}",
                case.name
            );
        }
    }
    assert_eq!(acc.device().starts(), matvec_cases().len() as u64);
    assert_eq!(acc.device().bad_accesses(), 0);
}

#[test]
fn scan_through_registers_is_within_bound() {
    let mut acc = accel();
    for case in scan_cases() {
        let cells = case.channels * case.d_state;
        let job = place_scan(&mut acc, &case, [0x4_0000, 0x5_0000, 0x6_0000, 0x8_0000]);
        let info = acc.scan(&job).expect("scan");
        let lanes = acc.params().scan_lanes as usize;
        assert_eq!(info.iters as usize, case.channels.div_ceil(lanes) * case.d_state);
        let h = read_f32(&mut acc, job.h, cells);
        let y = read_f32(&mut acc, job.y, case.channels);
        let mags = case.h_mag.iter().chain(&case.y_mag);
        for ((got, want), mag) in h.iter().zip(&case.h_out).chain(y.iter().zip(&case.y)).zip(mags) {
            assert!(
                (got - want).abs() <= SCAN_ABS_BOUND + SCAN_REL_BOUND * mag,
                "{}: {got} vs {want}",
                case.name
            );
        }
    }
}

#[test]
fn control_bits_follow_the_protocol() {
    let mut acc = accel();
    let case = &matvec_cases()[0];
    let job = place(&mut acc, case);
    let dev = acc.device();
    assert_eq!(dev.read32(regs::CTRL), regs::CTRL_IDLE, "idle before any start");
    // Program by hand through the bus, as a board's host would.
    for (off, v) in [
        (regs::OP, regs::OP_MATVEC),
        (regs::BITS, 2),
        (regs::GROUP, 128),
        (regs::ROWS, job.rows),
        (regs::COLS, job.cols),
    ] {
        dev.write32(off, v);
        assert_eq!(dev.read32(off), v, "argument registers read back");
    }
    for (off, a) in
        [(regs::W, job.w), (regs::XQ, job.xq), (regs::XS, job.xs), (regs::XSUM, job.xsum), (regs::Y, job.y)]
    {
        dev.write32(off, a as u32);
        dev.write32(off + 4, (a >> 32) as u32);
    }
    dev.write32(regs::IER, regs::IRQ_DONE);
    dev.write32(regs::GIE, 1);
    dev.write32(regs::CTRL, regs::CTRL_START);
    assert_eq!(dev.read32(regs::CTRL), regs::CTRL_START, "running: start set, not idle, not done");
    assert_eq!(dev.irq_pending(), Some(false));
    dev.tick(1_000_000);
    let ctrl = dev.read32(regs::CTRL);
    assert_eq!(ctrl, regs::CTRL_DONE | regs::CTRL_IDLE | regs::CTRL_READY, "done, idle, ready");
    assert_eq!(dev.read32(regs::CTRL), regs::CTRL_IDLE, "done and ready clear on read");
    assert_eq!(dev.read32(regs::STATUS), 0);
    assert_eq!(dev.irq_pending(), Some(true), "interrupt raised on done");
    assert_eq!(dev.read32(regs::ISR), regs::IRQ_DONE);
    dev.write32(regs::ISR, regs::IRQ_DONE);
    assert_eq!(dev.irq_pending(), Some(false), "toggle-on-write clears it");
    // Read-only and unmapped registers ignore writes and are counted.
    dev.write32(regs::STATUS, 5);
    dev.write32(0x200, 1);
    assert_eq!(dev.read32(regs::STATUS), 0);
    assert_eq!(dev.bad_accesses(), 2);
    assert_eq!(dev.starts(), 1);
}

#[test]
fn driver_interrupts_can_be_enabled_and_cleared() {
    let mut acc = accel();
    let job = place(&mut acc, &matvec_cases()[1]);
    acc.enable_interrupts(true);
    acc.matvec(&job).expect("run");
    assert_eq!(acc.device().irq_pending(), Some(true));
    acc.clear_interrupts();
    assert_eq!(acc.device().irq_pending(), Some(false));
    acc.enable_interrupts(false);
    acc.matvec(&job).expect("run");
    assert_eq!(acc.device().irq_pending(), Some(false));
}

#[test]
fn hung_kernel_times_out_then_reports_busy() {
    let mut acc = accel();
    let job = place(&mut acc, &matvec_cases()[2]);
    acc.device().set_hang(true);
    acc.set_timeout_polls(50);
    assert_eq!(acc.matvec(&job), Err(DriverError::Timeout { polls: 50 }));
    assert_eq!(acc.device().starts(), 1);
    // Still running: a new job is refused without being started.
    assert_eq!(acc.matvec(&job), Err(DriverError::Busy));
    assert_eq!(acc.device().starts(), 1);
}

#[test]
fn too_short_a_wait_times_out_and_the_kernel_recovers() {
    let mut acc = accel();
    let case = &matvec_cases()[0];
    let job = place(&mut acc, case);
    acc.device().set_cycles_per_pause(1);
    acc.set_timeout_polls(3);
    assert_eq!(acc.matvec(&job), Err(DriverError::Timeout { polls: 3 }));
    // Let the kernel finish, then the driver works again with a sane budget.
    acc.device().tick(1_000_000);
    acc.set_timeout_polls(1_000_000);
    acc.matvec(&job).expect("recovered");
    let got = read_f32(&mut acc, job.y, case.rows);
    assert!(got.iter().zip(&case.y).all(|(g, w)| g.to_bits() == w.to_bits()));
}

#[test]
fn bad_arguments_are_refused_before_start() {
    let mut acc = accel();
    let job = place(&mut acc, &matvec_cases()[0]);
    let base = acc.device().base();
    let max_cols = acc.params().max_cols;
    let cases: Vec<(MatvecJob, ArgError)> = vec![
        (MatvecJob { format: TensorFormat::F16, ..job }, ArgError::NotInteger("f16")),
        (MatvecJob { rows: 0, ..job }, ArgError::ZeroRows),
        (MatvecJob { cols: 500, ..job }, ArgError::RaggedCols { cols: 500, group: 128 }),
        (MatvecJob { cols: 0, ..job }, ArgError::RaggedCols { cols: 0, group: 128 }),
        (
            MatvecJob { cols: max_cols + 128, ..job },
            ArgError::TooManyCols { cols: max_cols + 128, max: max_cols },
        ),
        (
            MatvecJob { w: base - 4, ..job },
            ArgError::OutOfMemory { buffer: "w", addr: base - 4, len: 37 * 4 * 36 },
        ),
        (
            MatvecJob { y: base + MEM - 8, ..job },
            ArgError::OutOfMemory { buffer: "y", addr: base + MEM - 8, len: 37 * 4 },
        ),
        (
            MatvecJob { rows: u32::MAX, ..job },
            ArgError::OutOfMemory { buffer: "w", addr: job.w, len: u32::MAX as u64 * 144 },
        ),
        (MatvecJob { xs: job.xs + 2, ..job }, ArgError::Misaligned { buffer: "xs", addr: job.xs + 2 }),
        (MatvecJob { y: job.w + 8, ..job }, ArgError::Overlap { output: "y", input: "w" }),
    ];
    for (bad, want) in cases {
        assert_eq!(acc.matvec(&bad), Err(DriverError::BadArgs(want)));
    }
    let scan = ScanJob {
        channels: 4,
        d_state: 16,
        a: base,
        chp: base + 0x1000,
        bc: base + 0x2000,
        h: base + 0x3000,
        y: base + 0x4000,
    };
    let max_ds = acc.params().max_dstate;
    let scan_cases: Vec<(ScanJob, ArgError)> = vec![
        (ScanJob { channels: 0, ..scan }, ArgError::ZeroRows),
        (ScanJob { d_state: 0, ..scan }, ArgError::StateSize { d_state: 0, max: max_ds }),
        (ScanJob { d_state: max_ds + 1, ..scan }, ArgError::StateSize { d_state: max_ds + 1, max: max_ds }),
        (ScanJob { h: base + 2, ..scan }, ArgError::Misaligned { buffer: "h", addr: base + 2 }),
        (ScanJob { y: base + 0x1004, ..scan }, ArgError::Overlap { output: "y", input: "chp" }),
        (ScanJob { h: base + 0x10, ..scan }, ArgError::Overlap { output: "h", input: "a" }),
    ];
    for (bad, want) in scan_cases {
        assert_eq!(acc.scan(&bad), Err(DriverError::BadArgs(want)));
    }
    // Nothing reached the kernel: never started, argument registers untouched.
    assert_eq!(acc.device().starts(), 0);
    assert_eq!(acc.device().read32(regs::ROWS), 0);
    assert_eq!(acc.device().read32(regs::W), 0);
    // The same job with good arguments runs.
    acc.matvec(&job).expect("good job");
    assert_eq!(acc.device().starts(), 1);
}

#[test]
fn the_kernel_checks_what_reaches_it() {
    // Bypass the driver: the kernel reports bad shapes and addresses in STATUS.
    let mut acc = accel();
    let job = place(&mut acc, &matvec_cases()[0]);
    let dev = acc.device();
    let program = |dev: &mut SimBus, op: u32, bits: u32, group: u32, w: u64| {
        for (off, v) in [
            (regs::OP, op),
            (regs::BITS, bits),
            (regs::GROUP, group),
            (regs::ROWS, job.rows),
            (regs::COLS, job.cols),
        ] {
            dev.write32(off, v);
        }
        for (off, a) in
            [(regs::W, w), (regs::XQ, job.xq), (regs::XS, job.xs), (regs::XSUM, job.xsum), (regs::Y, job.y)]
        {
            dev.write32(off, a as u32);
            dev.write32(off + 4, (a >> 32) as u32);
        }
        dev.write32(regs::CTRL, regs::CTRL_START);
        dev.tick(1 << 20);
        assert_ne!(dev.read32(regs::CTRL) & regs::CTRL_DONE, 0);
        KernelStatus::from_code(dev.read32(regs::STATUS))
    };
    assert_eq!(program(dev, regs::OP_MATVEC, 3, 128, job.w), KernelStatus::BadBits);
    assert_eq!(program(dev, regs::OP_MATVEC, 2, 100, job.w), KernelStatus::BadGroup);
    assert_eq!(program(dev, 9, 2, 128, job.w), KernelStatus::BadOp);
    assert_eq!(program(dev, regs::OP_MATVEC, 2, 128, 0x1000), KernelStatus::BusError);
    assert_eq!(program(dev, regs::OP_MATVEC, 2, 128, job.w), KernelStatus::Ok);
    assert_eq!(dev.starts(), 5);
}

#[test]
fn cycle_model_iterations_match_the_csim_kernel() {
    // The model's MAC iteration count is what the C-simulated kernel ran.
    use eddy_fpga::cycles::{matvec_cost, Design, U280};
    let mut acc = accel();
    let p = acc.params();
    let design = Design { pe: p.pe, simd: p.simd, ..U280.design };
    for case in matvec_cases() {
        let job = place(&mut acc, &case);
        let info = acc.matvec(&job).unwrap();
        let cost = matvec_cost(&design, &U280, case.format, case.rows as u64, case.cols as u64);
        assert_eq!(cost.iters, info.iters as u64, "{}", case.name);
        assert!(cost.cycles >= cost.iters);
    }
}

#[test]
fn cycle_model_scan_iterations_match_the_csim_kernel() {
    use eddy_fpga::cycles::{scan_iters, Design, U280};
    let mut acc = accel();
    let p = acc.params();
    let design = Design { scan_lanes: p.scan_lanes, ..U280.design };
    let base = acc.device().base();
    for (channels, ds) in [(1u32, 1u32), (7, 16), (64, 16), (33, 5), (100, 64)] {
        let job = ScanJob {
            channels,
            d_state: ds,
            a: base,
            chp: base + 0x2_0000,
            bc: base + 0x3_0000,
            h: base + 0x4_0000,
            y: base + 0x6_0000,
        };
        let info = acc.scan(&job).unwrap();
        assert_eq!(info.iters as u64, scan_iters(&design, channels as u64, ds as u64), "{channels}x{ds}");
    }
}
