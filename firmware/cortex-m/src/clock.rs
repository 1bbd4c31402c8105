//! Instruction counter from SysTick.
//!
//! SysTick is a 24-bit down-counter; its interrupt counts wraps so long
//! regions (a whole prompt) are measured without overflow. Under QEMU with
//! `-icount shift=0` the virtual clock advances 1 ns per guest instruction
//! and SysTick is clocked from it, so ticks are proportional to executed
//! instructions; [`Clock::calibrate`] finds the ratio with a loop of known
//! length. QEMU models no pipeline, caches or wait states: these are
//! instruction counts, not cycles. On a real board the same ticks are core
//! cycles.

use core::arch::asm;
use core::sync::atomic::{AtomicU32, Ordering};
use cortex_m::peripheral::{syst::SystClkSource, SYST};
use cortex_m_rt::exception;

/// SysTick reload: the full 24-bit range.
const RELOAD: u32 = 0x00ff_ffff;
/// Iterations of the calibration loop (2 instructions each).
const CAL_ITERS: u32 = 200_000;

/// SysTick wraps since the clock started.
static WRAPS: AtomicU32 = AtomicU32::new(0);

#[exception]
fn SysTick() {
    WRAPS.fetch_add(1, Ordering::Relaxed);
}

/// A free-running 64-bit tick counter built on SysTick.
pub struct Clock {
    _syst: SYST,
    /// Instructions per 1024 ticks, from [`Clock::calibrate`].
    instr_per_1024_ticks: u64,
}

impl Clock {
    /// Start SysTick from the core clock with its wrap interrupt.
    pub fn start(mut syst: SYST) -> Self {
        syst.set_clock_source(SystClkSource::Core);
        syst.set_reload(RELOAD);
        syst.clear_current();
        syst.enable_interrupt();
        syst.enable_counter();
        Clock { _syst: syst, instr_per_1024_ticks: 1024 }
    }

    /// Ticks since [`Clock::start`].
    pub fn ticks(&self) -> u64 {
        loop {
            let before = WRAPS.load(Ordering::Relaxed);
            let current = SYST::get_current();
            let after = WRAPS.load(Ordering::Relaxed);
            // A wrap between the two loads: the counter value may belong to
            // either period, so read again.
            if before == after {
                return ((before as u64) << 24) + (RELOAD - current) as u64;
            }
        }
    }

    /// Measure ticks per instruction with a loop of known length. Returns
    /// the ticks the loop took (0 means SysTick does not advance: QEMU
    /// without `-icount`, or no SysTick).
    pub fn calibrate(&mut self) -> u64 {
        let start = self.ticks();
        count_down(CAL_ITERS);
        let ticks = self.ticks() - start;
        if let Some(ratio) = (2 * CAL_ITERS as u64 * 1024).checked_div(ticks) {
            self.instr_per_1024_ticks = ratio;
        }
        ticks
    }

    /// Convert a tick count to instructions (by the calibration).
    pub fn instructions(&self, ticks: u64) -> u64 {
        ticks * self.instr_per_1024_ticks / 1024
    }
}

fn count_down(n: u32) {
    // SAFETY: a register-only loop; it touches no memory and clobbers only
    // the flags and the counter register it declares.
    unsafe {
        asm!("2:", "subs {n}, #1", "bne 2b", n = inout(reg) n => _, options(nomem, nostack));
    }
}
