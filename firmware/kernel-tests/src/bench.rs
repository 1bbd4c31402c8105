//! Guest instructions per matrix-vector product, per kernel set (and per
//! selective-scan and convolution token, see `vector.rs`).
//!
//! Method: QEMU runs with `-icount shift=0`, so its virtual clock advances
//! exactly 1 ns per executed guest instruction, and SysTick (core clock
//! source) is driven by that virtual clock. SysTick ticks are converted to
//! instructions with a calibration loop of a known instruction count
//! (`subs`/`bne`, 2 instructions per iteration), measured in the same run.
//! This counts instructions, not cycles: QEMU models no pipeline, no
//! memory wait states, no caches and no beat-wise MVE execution.

use crate::check::Rng;
use core::arch::asm;
use cortex_m::peripheral::{syst::SystClkSource, SYST};
use cortex_m_semihosting::hprintln;
use eddy_kernels::{compiled, ActsI8, Kernels, QuantMatrix, SCALAR};
use eddy_quant::{quantize_activations_i8, quantize_row, TensorFormat};

const ROWS: usize = 64;
const COLS: usize = 768;
const GROUP: usize = 64;
/// Bytes of the widest matrix (W8, 64-wide groups); GROUP is also the
/// smallest group measured.
const MATRIX_BYTES: usize = ROWS * (COLS / GROUP) * (4 + GROUP);
/// Iterations of the calibration loop.
const CAL_ITERS: u32 = 500_000;

/// SysTick as a free-running 24-bit down-counter.
struct Ticks(SYST);

impl Ticks {
    fn now(&self) -> u32 {
        SYST::get_current()
    }
    /// Ticks from `start` to now; measured regions stay far below the
    /// 2^24-tick period, so one wrap at most happened.
    fn since(&self, start: u32) -> u32 {
        start.wrapping_sub(self.now()) & 0x00ff_ffff
    }
}

fn calibration_loop(n: u32) {
    // SAFETY: a register-only count-down loop; it touches no memory and
    // clobbers only the flags and the counter register it declares.
    unsafe {
        asm!("2:", "subs {n}, #1", "bne 2b", n = inout(reg) n => _, options(nomem, nostack));
    }
}

/// Measure every compiled set on W2/W4/W8 (group 64) and W2 (group 128)
/// at ROWS×COLS; prints
/// ticks, instructions and the ratio to scalar. False if the counter does
/// not advance (no `-icount`, or a QEMU without SysTick).
pub fn instructions_per_matvec() -> bool {
    let Some(mut p) = cortex_m::Peripherals::take() else {
        hprintln!("bench: peripherals already taken");
        return false;
    };
    p.SYST.set_clock_source(SystClkSource::Core);
    p.SYST.set_reload(0x00ff_ffff);
    p.SYST.clear_current();
    p.SYST.enable_counter();
    let t = Ticks(p.SYST);

    // DWT CYCCNT, the usual cycle counter, for the record: QEMU does not
    // model it (the run prints what it reads).
    p.DCB.enable_trace();
    p.DWT.enable_cycle_counter();
    let cyc_start = cortex_m::peripheral::DWT::cycle_count();
    let start = t.now();
    calibration_loop(CAL_ITERS);
    let cal_ticks = t.since(start);
    let cyc = cortex_m::peripheral::DWT::cycle_count().wrapping_sub(cyc_start);
    hprintln!("bench: DWT CYCCNT advanced by {} over the calibration loop", cyc);
    // The loop is 2 instructions per iteration, plus the measuring code
    // around it (a handful), negligible against 10^6.
    let cal_instr = 2 * CAL_ITERS as u64;
    hprintln!("bench: calibration {} instructions = {} SysTick ticks", cal_instr, cal_ticks);
    if cal_ticks < 1000 {
        hprintln!("bench: SysTick does not advance with instructions; run QEMU with -icount shift=0");
        return false;
    }
    let instr = |ticks: u32| ticks as u64 * cal_instr / cal_ticks as u64;

    let mut rng = Rng(0xbe_4c4);
    let mut x = [0f32; COLS];
    for v in x.iter_mut() {
        *v = rng.f() * 3.0;
    }
    let mut matrix = [0u8; MATRIX_BYTES];
    let (mut out, mut perm) = ([0f32; ROWS], [0i8; COLS]);
    let mut row = [0f32; COLS];
    hprintln!("bench: {}x{} matrix, instructions per matvec (ratio = scalar / set)", ROWS, COLS);
    // Group 64 for every format, and the w2a8 preset's group 128.
    for f in [
        TensorFormat::W2 { group: 64 },
        TensorFormat::W4 { group: 64 },
        TensorFormat::W8 { group: 64 },
        TensorFormat::W2 { group: 128 },
    ] {
        let group = f.group_size().unwrap_or(GROUP);
        let (mut q, mut scales, mut sums) = ([0i8; COLS], [0f32; COLS / 32], [0i32; COLS / 32]);
        if quantize_activations_i8(&x, group, &mut q, &mut scales, &mut sums).is_err() {
            hprintln!("bench: activation quantization failed");
            return false;
        }
        let acts = ActsI8 { q: &q, scales: &scales[..COLS / group], sums: &sums[..COLS / group] };
        let Ok(rb) = f.byte_len(1, COLS as u64) else { return false };
        let rb = rb as usize;
        for r in 0..ROWS {
            for v in row.iter_mut() {
                *v = rng.f();
            }
            if quantize_row(f, &row, &mut matrix[r * rb..(r + 1) * rb]).is_err() {
                return false;
            }
        }
        let m = QuantMatrix { format: f, bytes: &matrix[..ROWS * rb], cols: COLS };
        let mut measure = |k: &Kernels| {
            // Once to warm QEMU's translation cache (instruction counts do
            // not depend on it, but it keeps both runs alike), then timed.
            (k.matvec_i8)(m, &acts, &mut out, &mut perm);
            let start = t.now();
            (k.matvec_i8)(m, &acts, &mut out, &mut perm);
            instr(t.since(start))
        };
        let scalar = measure(&SCALAR);
        for k in compiled().iter().copied() {
            let n = if k.name == SCALAR.name { scalar } else { measure(k) };
            print_bench_line(
                format_args!("{}", f.name()),
                k.name,
                n,
                "matvec",
                (ROWS * COLS) as u64,
                "weight",
                scalar,
            );
        }
    }
    let mut count = |run: &mut dyn FnMut()| {
        run();
        let start = t.now();
        run();
        instr(t.since(start))
    };
    crate::vector::instructions_per_scan(&mut count);
    crate::vector::instructions_per_conv(&mut count);
    true
}

/// Print one bench line: `n` instructions per `per` for the set `name`,
/// per `unit` (`units` of them), and scalar's count divided by `n`, both
/// with two decimals.
pub fn print_bench_line(
    label: core::fmt::Arguments,
    name: &str,
    n: u64,
    per: &str,
    units: u64,
    unit: &str,
    scalar: u64,
) {
    let ratio_x100 = scalar * 100 / n.max(1);
    hprintln!(
        "bench: {} {:>6}: {:>8} instructions/{}, {}.{:02} per {}, scalar/{} = {}.{:02}",
        label,
        name,
        n,
        per,
        n / units,
        n * 100 / units % 100,
        unit,
        name,
        ratio_x100 / 100,
        ratio_x100 % 100
    );
}
