//! Exit status codes of the firmware.
//!
//! Under QEMU the board module passes the status to semihosting
//! `SYS_EXIT_EXTENDED`, so QEMU exits with it and scripts can tell the
//! failures apart.

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
    /// The counter does not count (QEMU without `-icount shift=0`).
    NoClock = 6,
    /// The kernel set named by `EDDY_FW_KERNELS` is not in this build.
    NoSuchKernels = 7,
    /// A Rust panic (a bug: library code must not panic on input).
    Panic = 101,
    /// A HardFault (a bug).
    HardFault = 102,
}
