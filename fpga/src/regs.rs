//! The accelerator's AXI-Lite register map (byte offsets; see
//! `fpga/REGISTERS.md`, which documents the same numbers).

/// Control: bit 0 start (write 1; reads 1 while running), bit 1 done
/// (clear on read), bit 2 idle, bit 3 ready (clear on read).
pub const CTRL: u32 = 0x00;
/// Global interrupt enable: bit 0.
pub const GIE: u32 = 0x04;
/// Interrupt enable: bit 0 done, bit 1 ready.
pub const IER: u32 = 0x08;
/// Interrupt status: bit 0 done, bit 1 ready; write 1 to toggle (clear).
pub const ISR: u32 = 0x0c;

/// Operation: [`OP_MATVEC`] or [`OP_SCAN`].
pub const OP: u32 = 0x10;
/// Bits per weight code: 2, 4 or 8 (matvec).
pub const BITS: u32 = 0x14;
/// Weights per group: 32, 64, 128 or 256 (matvec).
pub const GROUP: u32 = 0x18;
/// Matrix rows (matvec) or channels (scan).
pub const ROWS: u32 = 0x1c;
/// Matrix columns (matvec) or state size per channel (scan).
pub const COLS: u32 = 0x20;
/// Weights address, low/high word (matvec).
pub const W: u32 = 0x24;
/// int8 activation codes address (matvec).
pub const XQ: u32 = 0x2c;
/// f32 activation scales address, one per group (matvec).
pub const XS: u32 = 0x34;
/// i32 activation code sums address, one per group (matvec).
pub const XSUM: u32 = 0x3c;
/// f32 output address: `rows` values (both operations).
pub const Y: u32 = 0x44;
/// f32 `A` address, `[channels, d_state]` (scan).
pub const A: u32 = 0x4c;
/// f32 per-channel parameters address, `[channels][dt, u, z, D]` (scan).
pub const CHP: u32 = 0x54;
/// f32 `B` then `C` address, `2 * d_state` values (scan).
pub const BC: u32 = 0x5c;
/// f32 state address, `[channels, d_state]`, read and written (scan).
pub const H: u32 = 0x64;
/// Kernel status of the last run (read-only): [`KernelStatus`] code.
pub const STATUS: u32 = 0x70;
/// Pipeline iterations of the last run (read-only).
pub const ITERS: u32 = 0x78;

/// CTRL bit: start.
pub const CTRL_START: u32 = 1 << 0;
/// CTRL bit: done (clear on read).
pub const CTRL_DONE: u32 = 1 << 1;
/// CTRL bit: idle.
pub const CTRL_IDLE: u32 = 1 << 2;
/// CTRL bit: ready (clear on read).
pub const CTRL_READY: u32 = 1 << 3;
/// IER/ISR bit: done.
pub const IRQ_DONE: u32 = 1 << 0;
/// IER/ISR bit: ready.
pub const IRQ_READY: u32 = 1 << 1;

/// OP value: integer matrix-vector product.
pub const OP_MATVEC: u32 = 0;
/// OP value: one token of the Mamba-1 selective scan.
pub const OP_SCAN: u32 = 1;

/// What the kernel reports in [`STATUS`] after a run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KernelStatus {
    /// Finished normally.
    Ok,
    /// BITS is not 2, 4 or 8.
    BadBits,
    /// GROUP is not 32, 64, 128 or 256.
    BadGroup,
    /// COLS is 0 or not a multiple of GROUP.
    BadCols,
    /// COLS exceeds the on-chip activation buffer.
    TooManyCols,
    /// ROWS is 0.
    BadRows,
    /// OP is unknown.
    BadOp,
    /// The scan's state size is 0 or exceeds the on-chip buffer.
    BadState,
    /// A buffer lies outside device memory or is misaligned.
    BusError,
    /// A code this driver does not know.
    Unknown(u32),
}

impl KernelStatus {
    /// Decode the STATUS register.
    pub fn from_code(code: u32) -> Self {
        match code {
            0 => KernelStatus::Ok,
            1 => KernelStatus::BadBits,
            2 => KernelStatus::BadGroup,
            3 => KernelStatus::BadCols,
            4 => KernelStatus::TooManyCols,
            5 => KernelStatus::BadRows,
            6 => KernelStatus::BadOp,
            7 => KernelStatus::BadState,
            8 => KernelStatus::BusError,
            c => KernelStatus::Unknown(c),
        }
    }
}

impl core::fmt::Display for KernelStatus {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        let s = match self {
            KernelStatus::Ok => "ok",
            KernelStatus::BadBits => "bits per code not 2, 4 or 8",
            KernelStatus::BadGroup => "group size not 32, 64, 128 or 256",
            KernelStatus::BadCols => "columns zero or not a multiple of the group",
            KernelStatus::TooManyCols => "columns exceed the on-chip activation buffer",
            KernelStatus::BadRows => "zero rows",
            KernelStatus::BadOp => "unknown operation",
            KernelStatus::BadState => "state size zero or above the on-chip buffer",
            KernelStatus::BusError => "buffer outside device memory or misaligned",
            KernelStatus::Unknown(c) => return write!(f, "unknown status code {c}"),
        };
        f.write_str(s)
    }
}
