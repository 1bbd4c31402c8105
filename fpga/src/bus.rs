//! How the driver reaches a kernel: its registers and the memory its AXI
//! master ports read and write.

/// A device's control registers (32-bit, byte offsets of
/// [`crate::regs`]).
pub trait RegisterBus {
    /// Read the register at `offset`.
    fn read32(&mut self, offset: u32) -> u32;
    /// Write `value` to the register at `offset`.
    fn write32(&mut self, offset: u32, value: u32);
    /// Let time pass between two polls of a busy kernel (a pause on a
    /// board, simulated cycles in C-simulation).
    fn pause(&mut self);
    /// The interrupt line, if the bus can see it without blocking.
    fn irq_pending(&mut self) -> Option<bool> {
        None
    }
}

/// Memory the kernel's AXI master ports address: a window of bus addresses
/// `base() .. base() + len()` that the host can also read and write.
pub trait DeviceMemory {
    /// Bus address of the first byte.
    fn base(&self) -> u64;
    /// Bytes in the window.
    fn len(&self) -> u64;
    /// True if the window is empty.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// Copy `data` to bus address `addr`.
    fn write(&mut self, addr: u64, data: &[u8]) -> Result<(), MemoryError>;
    /// Copy from bus address `addr` into `out`.
    fn read(&mut self, addr: u64, out: &mut [u8]) -> Result<(), MemoryError>;
}

/// A host access outside device memory.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MemoryError {
    /// First bus address of the access.
    pub addr: u64,
    /// Bytes of the access.
    pub len: u64,
}

impl core::fmt::Display for MemoryError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "access of {} bytes at bus address {:#x} is outside device memory", self.len, self.addr)
    }
}

impl std::error::Error for MemoryError {}

/// The byte range of `[addr, addr + len)` inside a window at `base` of
/// `size` bytes, if it fits.
pub(crate) fn window_range(
    base: u64,
    size: u64,
    addr: u64,
    len: usize,
) -> Result<core::ops::Range<usize>, MemoryError> {
    let err = MemoryError { addr, len: len as u64 };
    let off = addr.checked_sub(base).ok_or(err)?;
    let end = off.checked_add(len as u64).ok_or(err)?;
    if end > size {
        return Err(err);
    }
    Ok(off as usize..end as usize)
}
