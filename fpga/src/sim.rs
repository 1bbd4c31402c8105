//! `SimBus`: the C-simulated kernel (the HLS sources compiled by g++,
//! behind a model of its AXI-Lite register file) as a register bus and
//! device memory, reached through FFI.

use crate::bus::{window_range, DeviceMemory, MemoryError, RegisterBus};
use core::ffi::c_void;
use core::ptr::NonNull;

extern "C" {
    fn eddy_sim_params(out: *mut u32);
    fn eddy_sim_new(mem_bytes: u64, base: u64) -> *mut c_void;
    fn eddy_sim_free(sim: *mut c_void);
    fn eddy_sim_read32(sim: *mut c_void, offset: u32) -> u32;
    fn eddy_sim_write32(sim: *mut c_void, offset: u32, value: u32);
    fn eddy_sim_mem(sim: *mut c_void) -> *mut u8;
    fn eddy_sim_mem_len(sim: *mut c_void) -> u64;
    fn eddy_sim_tick(sim: *mut c_void, cycles: u64);
    fn eddy_sim_now(sim: *mut c_void) -> u64;
    fn eddy_sim_set_hang(sim: *mut c_void, hang: i32);
    fn eddy_sim_starts(sim: *mut c_void) -> u64;
    fn eddy_sim_bad_accesses(sim: *mut c_void) -> u64;
    fn eddy_sim_irq(sim: *mut c_void) -> i32;
}

/// Compile-time parameters of the simulated kernel (from
/// `fpga/hls/eddy_params.h` and the build's `EDDY_FPGA_PE`/`_SIMD`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KernelParams {
    /// Processing elements (rows in parallel).
    pub pe: u32,
    /// SIMD lanes (weights per row per cycle).
    pub simd: u32,
    /// Largest input length the activation buffer holds.
    pub max_cols: u32,
    /// Largest scan state size per channel.
    pub max_dstate: u32,
    /// Largest scan channel count.
    pub max_channels: u32,
    /// Channels the scan unit updates side by side.
    pub scan_lanes: u32,
}

/// The simulator could not be created.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SimError {
    /// Device memory of this many bytes could not be allocated.
    OutOfMemory(u64),
}

impl core::fmt::Display for SimError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            SimError::OutOfMemory(n) => write!(f, "cannot allocate {n} bytes of simulated device memory"),
        }
    }
}

impl std::error::Error for SimError {}

/// The C-simulated accelerator: registers, device memory and a simulated
/// clock. Each [`RegisterBus::pause`] advances the clock by
/// [`cycles_per_pause`](Self::set_cycles_per_pause) cycles; a started
/// kernel signals done once its pipeline iterations have elapsed.
pub struct SimBus {
    raw: NonNull<c_void>,
    base: u64,
    len: u64,
    cycles_per_pause: u64,
}

// SAFETY: the C++ simulator object has no thread affinity and no shared
// state with other instances (the kernel's buffers are locals); `&mut self`
// on every access serializes use of one instance.
unsafe impl Send for SimBus {}

impl SimBus {
    /// Bus address of device memory by default: above 4 GiB, so the high
    /// address words are exercised as on an HBM/DDR board.
    pub const DEFAULT_BASE: u64 = 0x4_0000_0000;

    /// Simulated cycles per poll pause by default.
    pub const DEFAULT_CYCLES_PER_PAUSE: u64 = 256;

    /// A simulator with `mem_bytes` of zeroed device memory at
    /// [`DEFAULT_BASE`](Self::DEFAULT_BASE).
    pub fn new(mem_bytes: u64) -> Result<Self, SimError> {
        Self::with_base(mem_bytes, Self::DEFAULT_BASE)
    }

    /// A simulator whose device memory starts at bus address `base`.
    pub fn with_base(mem_bytes: u64, base: u64) -> Result<Self, SimError> {
        // SAFETY: plain constructor; returns NULL on allocation failure.
        let raw = unsafe { eddy_sim_new(mem_bytes, base) };
        let raw = NonNull::new(raw).ok_or(SimError::OutOfMemory(mem_bytes))?;
        // SAFETY: `raw` is a live simulator.
        let len = unsafe { eddy_sim_mem_len(raw.as_ptr()) };
        Ok(SimBus { raw, base, len, cycles_per_pause: Self::DEFAULT_CYCLES_PER_PAUSE })
    }

    /// The compiled kernel's parameters.
    pub fn params() -> KernelParams {
        let mut p = [0u32; 6];
        // SAFETY: writes exactly six u32 into `p`.
        unsafe { eddy_sim_params(p.as_mut_ptr()) };
        KernelParams {
            pe: p[0],
            simd: p[1],
            max_cols: p[2],
            max_dstate: p[3],
            max_channels: p[4],
            scan_lanes: p[5],
        }
    }

    /// Simulated cycles each pause between polls lets pass.
    pub fn set_cycles_per_pause(&mut self, cycles: u64) {
        self.cycles_per_pause = cycles;
    }

    /// Advance the simulated clock.
    pub fn tick(&mut self, cycles: u64) {
        // SAFETY: live simulator, exclusive access.
        unsafe { eddy_sim_tick(self.raw.as_ptr(), cycles) }
    }

    /// Simulated cycles elapsed.
    pub fn now(&self) -> u64 {
        // SAFETY: live simulator; reads a counter.
        unsafe { eddy_sim_now(self.raw.as_ptr()) }
    }

    /// Fault injection: a kernel started from now on never signals done.
    pub fn set_hang(&mut self, hang: bool) {
        // SAFETY: live simulator, exclusive access.
        unsafe { eddy_sim_set_hang(self.raw.as_ptr(), hang as i32) }
    }

    /// Times the kernel was started (CTRL start written while idle).
    pub fn starts(&self) -> u64 {
        // SAFETY: live simulator; reads a counter.
        unsafe { eddy_sim_starts(self.raw.as_ptr()) }
    }

    /// Register accesses to unmapped or read-only offsets.
    pub fn bad_accesses(&self) -> u64 {
        // SAFETY: live simulator; reads a counter.
        unsafe { eddy_sim_bad_accesses(self.raw.as_ptr()) }
    }

    fn mem(&mut self) -> &mut [u8] {
        // SAFETY: the simulator owns `len` bytes at this pointer for its
        // lifetime; `&mut self` makes this the only borrow.
        unsafe { core::slice::from_raw_parts_mut(eddy_sim_mem(self.raw.as_ptr()), self.len as usize) }
    }
}

impl Drop for SimBus {
    fn drop(&mut self) {
        // SAFETY: created by eddy_sim_new, freed once.
        unsafe { eddy_sim_free(self.raw.as_ptr()) }
    }
}

impl RegisterBus for SimBus {
    fn read32(&mut self, offset: u32) -> u32 {
        // SAFETY: live simulator, exclusive access.
        unsafe { eddy_sim_read32(self.raw.as_ptr(), offset) }
    }

    fn write32(&mut self, offset: u32, value: u32) {
        // SAFETY: live simulator, exclusive access.
        unsafe { eddy_sim_write32(self.raw.as_ptr(), offset, value) }
    }

    fn pause(&mut self) {
        self.tick(self.cycles_per_pause);
    }

    fn irq_pending(&mut self) -> Option<bool> {
        // SAFETY: live simulator, exclusive access.
        Some(unsafe { eddy_sim_irq(self.raw.as_ptr()) } != 0)
    }
}

impl DeviceMemory for SimBus {
    fn base(&self) -> u64 {
        self.base
    }

    fn len(&self) -> u64 {
        self.len
    }

    fn write(&mut self, addr: u64, data: &[u8]) -> Result<(), MemoryError> {
        let r = window_range(self.base, self.len, addr, data.len())?;
        self.mem()[r].copy_from_slice(data);
        Ok(())
    }

    fn read(&mut self, addr: u64, out: &mut [u8]) -> Result<(), MemoryError> {
        let r = window_range(self.base, self.len, addr, out.len())?;
        out.copy_from_slice(&self.mem()[r]);
        Ok(())
    }
}
