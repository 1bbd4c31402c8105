//! What the demo needs from a board, as traits, so that `demo.rs` ports to
//! a real board by writing one module like `qemu.rs`.
//!
//! - Text output: any [`embedded_io::Write`] (the serial trait of the
//!   embedded-hal project; UART drivers of the common HALs implement it).
//! - Timing: a [`Counter`]. embedded-hal 1.0 has no timer or monotonic
//!   counter trait (only `DelayNs`, which waits but does not measure), so
//!   the demo defines the one method it needs.

/// A free-running counter the demo reads to time the prefill and the
/// decode loop.
pub trait Counter {
    /// What the count measures, as printed in the log: `"instructions"`
    /// under QEMU `-icount`, `"cycles"` for a core cycle counter.
    const UNIT: &'static str;

    /// Units counted since the counter started; never decreases.
    fn count(&mut self) -> u64;
}
