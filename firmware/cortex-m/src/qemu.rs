//! The QEMU board (mps2-an386 / mps3-an547): everything the demo touches
//! that a real board would do differently.
//!
//! - Serial: semihosting stdout as an [`embedded_io::Write`]
//!   ([`HostSerial`]); with the `defmt` feature the defmt frames go to the
//!   same stdout through `defmt-semihosting`'s global logger, and the
//!   serial is not written.
//! - Counter: SysTick with its wrap interrupt ([`SysTickCounter`]). Under
//!   QEMU with `-icount shift=0` the virtual clock advances 1 ns per guest
//!   instruction and SysTick is clocked from it, so ticks are proportional
//!   to executed instructions; a loop of known length calibrates the ratio
//!   at start. QEMU models no pipeline, caches or wait states: these are
//!   instruction counts, not cycles. (On a board, SysTick or DWT CYCCNT
//!   count core cycles and need no calibration.)
//! - Exit: semihosting `SYS_EXIT_EXTENDED`, so QEMU exits with the
//!   firmware's [`Status`]; the fault and panic handlers report through the
//!   log and exit the same way.
//!
//! Porting the demo: implement [`Counter`] and give it an
//! `embedded_io::Write` serial (a UART), and pick a defmt transport
//! (`defmt-rtt`, or frames on the UART) instead of `defmt-semihosting`.

use crate::hal::Counter;
use crate::log::shout;
use crate::status::Status;
use core::arch::asm;
use core::sync::atomic::{AtomicU32, Ordering};
use cortex_m::peripheral::{syst::SystClkSource, SYST};
use cortex_m_rt::{exception, ExceptionFrame};
use cortex_m_semihosting::{debug, hio};

/// The board's pieces, taken once at start.
pub struct Board {
    /// Text output (unused with the `defmt` feature).
    pub serial: HostSerial,
    /// Instruction counter.
    pub counter: SysTickCounter,
}

impl Board {
    /// Take the core peripherals, open stdout, start and calibrate the
    /// counter. Reports what failed and returns the status to exit with.
    pub fn take() -> Result<Board, Status> {
        let mut serial = HostSerial::open();
        let Some(p) = cortex_m::Peripherals::take() else {
            shout!(&mut serial, "error {}: core peripherals already taken", Status::NoClock as u32);
            return Err(Status::NoClock);
        };
        let mut counter = SysTickCounter::start(p.SYST);
        if !counter.calibrate() {
            shout!(
                &mut serial,
                "error {}: clock: SysTick does not advance; run QEMU with -icount shift=0",
                Status::NoClock as u32
            );
            return Err(Status::NoClock);
        }
        Ok(Board { serial, counter })
    }
}

/// Semihosting stdout as a serial port. Writes that fail (no debugger
/// attached) are reported as [`embedded_io::ErrorKind::Other`].
pub struct HostSerial(Option<hio::HostStream>);

impl HostSerial {
    /// Open the host's stdout (`:tt`); without a debugger every write fails.
    pub fn open() -> Self {
        HostSerial(hio::hstdout().ok())
    }
}

impl embedded_io::ErrorType for HostSerial {
    type Error = embedded_io::ErrorKind;
}

impl embedded_io::Write for HostSerial {
    fn write(&mut self, buf: &[u8]) -> Result<usize, Self::Error> {
        let stream = self.0.as_mut().ok_or(embedded_io::ErrorKind::NotConnected)?;
        stream.write_all(buf).map_err(|()| embedded_io::ErrorKind::Other)?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> Result<(), Self::Error> {
        // Semihosting writes are synchronous: the host has the bytes.
        Ok(())
    }
}

/// SysTick reload: the full 24-bit range.
const RELOAD: u32 = 0x00ff_ffff;
/// Iterations of the calibration loop (2 instructions each).
const CAL_ITERS: u32 = 200_000;

/// SysTick wraps since the counter started.
static WRAPS: AtomicU32 = AtomicU32::new(0);

#[exception]
fn SysTick() {
    WRAPS.fetch_add(1, Ordering::Relaxed);
}

/// Guest instructions counted with SysTick (see the module docs).
pub struct SysTickCounter {
    _syst: SYST,
    /// Instructions per 1024 ticks, from [`SysTickCounter::calibrate`].
    instr_per_1024_ticks: u64,
}

impl SysTickCounter {
    /// Start SysTick from the core clock with its wrap interrupt.
    fn start(mut syst: SYST) -> Self {
        syst.set_clock_source(SystClkSource::Core);
        syst.set_reload(RELOAD);
        syst.clear_current();
        syst.enable_interrupt();
        syst.enable_counter();
        // The cleared counter reads 0 until its first tick reloads it; a
        // read then would look like the end of a period, one period ahead
        // of the reads that follow.
        while SYST::get_current() == 0 {}
        SysTickCounter { _syst: syst, instr_per_1024_ticks: 1024 }
    }

    /// Raw ticks since [`SysTickCounter::start`].
    fn ticks(&self) -> u64 {
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

    /// Measure ticks per instruction with a loop of known length; false if
    /// SysTick does not advance (QEMU without `-icount`, or no SysTick).
    fn calibrate(&mut self) -> bool {
        let start = self.ticks();
        count_down(CAL_ITERS);
        let ticks = self.ticks() - start;
        match (2 * CAL_ITERS as u64 * 1024).checked_div(ticks) {
            Some(ratio) => {
                self.instr_per_1024_ticks = ratio;
                true
            }
            None => false,
        }
    }
}

impl Counter for SysTickCounter {
    const UNIT: &'static str = "instructions";

    fn count(&mut self) -> u64 {
        self.ticks() * self.instr_per_1024_ticks / 1024
    }
}

fn count_down(n: u32) {
    // SAFETY: a register-only loop; it touches no memory and clobbers only
    // the flags and the counter register it declares.
    unsafe {
        asm!("2:", "subs {n}, #1", "bne 2b", n = inout(reg) n => _, options(nomem, nostack));
    }
}

/// Semihosting operation number of `SYS_EXIT_EXTENDED`.
const SYS_EXIT_EXTENDED: usize = 0x20;
/// `ADP_Stopped_ApplicationExit`: the reason code for a normal exit.
const ADP_STOPPED_APPLICATION_EXIT: usize = 0x20026;

/// Stop the program; QEMU exits with `status` as its exit code.
pub fn exit(status: Status) -> ! {
    let block = [ADP_STOPPED_APPLICATION_EXIT, status as usize];
    // SAFETY: SYS_EXIT_EXTENDED reads the two-word parameter block, which
    // lives on this stack frame for the whole call.
    unsafe {
        cortex_m_semihosting::syscall(SYS_EXIT_EXTENDED, &block);
    }
    // A debugger that does not support the extended call: plain exit.
    debug::exit(if status == Status::Ok { debug::EXIT_SUCCESS } else { debug::EXIT_FAILURE });
    shout!(&mut HostSerial::open(), "exit: the debugger did not stop the program");
    loop {
        cortex_m::asm::wfi();
    }
}

#[exception]
unsafe fn HardFault(frame: &ExceptionFrame) -> ! {
    shout!(&mut HostSerial::open(), "error {}: HardFault at pc {:#x}", Status::HardFault as u32, frame.pc());
    exit(Status::HardFault)
}

#[panic_handler]
fn panic(info: &core::panic::PanicInfo) -> ! {
    let text = crate::log::message(info);
    shout!(&mut HostSerial::open(), "error {}: panic: {}", Status::Panic as u32, text.as_str());
    exit(Status::Panic)
}
