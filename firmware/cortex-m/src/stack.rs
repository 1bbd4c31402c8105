//! Stack high-water mark by painting.
//!
//! cortex-m-rt's `paint-stack` feature fills the whole stack region, from
//! `_stack_end` (the end of static RAM) up to `_stack_start` (the initial
//! stack pointer), with [`cortex_m_rt::STACK_PAINT_VALUE`] before `main`.
//! The deepest word that no longer holds the paint marks how far the stack
//! has grown.

use cortex_m_rt::STACK_PAINT_VALUE;

extern "C" {
    static _stack_start: u32;
    static _stack_end: u32;
}

/// Stack use so far.
pub struct StackUse {
    /// Bytes from the initial stack pointer down to the deepest touched word.
    pub used: usize,
    /// Bytes of the painted stack region.
    pub painted: usize,
}

/// Scan the painted region from its low end for the first overwritten word.
pub fn high_water() -> StackUse {
    let top = core::ptr::addr_of!(_stack_start) as usize;
    let bottom = core::ptr::addr_of!(_stack_end) as usize;
    let mut addr = bottom;
    while addr < top {
        // SAFETY: `addr` is word-aligned (the linker script asserts both
        // symbols are) and inside the RAM region between the end of the
        // statics and the initial stack pointer, which is always mapped.
        let word = unsafe { core::ptr::read_volatile(addr as *const u32) };
        if word != STACK_PAINT_VALUE {
            break;
        }
        addr += 4;
    }
    StackUse { used: top - addr, painted: top - bottom }
}
