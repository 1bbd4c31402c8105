//! Exit status codes of the firmware and how to report them.
//!
//! QEMU exits with the status the firmware passes to semihosting
//! `SYS_EXIT_EXTENDED`, so scripts can tell the failures apart.

use cortex_m_semihosting::{debug, hprintln};

/// Why the firmware stopped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u32)]
pub enum Status {
    /// Generation finished.
    Ok = 0,
    /// The embedded model file is damaged or malformed (`FileError`).
    BadModelFile = 2,
    /// The file is well formed but not a model this runtime can run.
    BadModel = 3,
    /// The static buffers do not fit the model (build/model mismatch).
    BadBuffers = 4,
    /// The prompt is empty or has a token id outside the vocabulary.
    BadPrompt = 5,
    /// SysTick does not count (QEMU without `-icount shift=0`).
    NoClock = 6,
    /// The kernel set named by `EDDY_FW_KERNELS` is not in this build.
    NoSuchKernels = 7,
    /// A Rust panic (a bug: library code must not panic on input).
    Panic = 101,
    /// A HardFault (a bug).
    HardFault = 102,
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
    hprintln!("exit: the debugger did not stop the program");
    loop {
        cortex_m::asm::wfi();
    }
}
