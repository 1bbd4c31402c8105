//! The register-level driver: checks a job's arguments against the
//! kernel's limits and the device memory, programs the registers, starts
//! the kernel and waits for done with a bounded number of polls.

use crate::bus::{DeviceMemory, RegisterBus};
use crate::regs::{self, KernelStatus};
use crate::sim::KernelParams;
use eddy_quant::TensorFormat;

/// A device the driver can run: registers plus the memory its ports use.
pub trait Device: RegisterBus + DeviceMemory {}
impl<T: RegisterBus + DeviceMemory> Device for T {}

/// An integer matrix-vector product: `y = W x` (see `eddy_quant::matvec_i8`).
/// Addresses are bus addresses in device memory.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MatvecJob {
    /// Weight format (W2/W4/W8 with its group size).
    pub format: TensorFormat,
    /// Output length.
    pub rows: u32,
    /// Input length.
    pub cols: u32,
    /// Packed weights, `rows` rows of whole groups.
    pub w: u64,
    /// `cols` int8 activation codes.
    pub xq: u64,
    /// One f32 activation scale per group.
    pub xs: u64,
    /// One i32 code sum per group.
    pub xsum: u64,
    /// `rows` f32 outputs.
    pub y: u64,
}

/// One token of the selective scan over `channels` channels.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ScanJob {
    /// Channels (d_inner, or a tile of it).
    pub channels: u32,
    /// State size per channel.
    pub d_state: u32,
    /// f32 `A`, `[channels, d_state]`.
    pub a: u64,
    /// f32 `[channels][dt, u, z, D]`.
    pub chp: u64,
    /// f32 `B` then `C`, `2 * d_state`.
    pub bc: u64,
    /// f32 state `[channels, d_state]`, updated in place.
    pub h: u64,
    /// f32 output, `channels`.
    pub y: u64,
}

/// Arguments the driver refuses before touching the kernel.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ArgError {
    /// The weight format is not W2/W4/W8.
    NotInteger(&'static str),
    /// Zero rows (or channels).
    ZeroRows,
    /// Columns are zero or not a multiple of the group size.
    RaggedCols {
        /// Columns.
        cols: u32,
        /// Group size.
        group: u32,
    },
    /// More columns than the kernel's activation buffer holds.
    TooManyCols {
        /// Columns asked for.
        cols: u32,
        /// The kernel's limit (`EDDY_MAX_COLS`).
        max: u32,
    },
    /// More scan channels than the kernel's buffers hold.
    TooManyChannels {
        /// Channels asked for.
        channels: u32,
        /// The kernel's limit (`EDDY_MAX_CHANNELS`).
        max: u32,
    },
    /// Scan state size zero or above the kernel's limit.
    StateSize {
        /// State size asked for.
        d_state: u32,
        /// The kernel's limit (`EDDY_MAX_DSTATE`).
        max: u32,
    },
    /// A buffer does not lie inside device memory.
    OutOfMemory {
        /// Which buffer.
        buffer: &'static str,
        /// Its bus address.
        addr: u64,
        /// Its length in bytes.
        len: u64,
    },
    /// A buffer of 4-byte values is not 4-byte aligned.
    Misaligned {
        /// Which buffer.
        buffer: &'static str,
        /// Its bus address.
        addr: u64,
    },
    /// The output overlaps an input.
    Overlap {
        /// The output buffer.
        output: &'static str,
        /// The input it overlaps.
        input: &'static str,
    },
}

impl core::fmt::Display for ArgError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            ArgError::NotInteger(name) => {
                write!(f, "format {name} is not an integer format; the accelerator takes W2/W4/W8")
            }
            ArgError::ZeroRows => write!(f, "zero rows/channels"),
            ArgError::RaggedCols { cols, group } => {
                write!(f, "{cols} columns are not a positive multiple of the group size {group}")
            }
            ArgError::TooManyCols { cols, max } => write!(
                f,
                "{cols} columns exceed the kernel's activation buffer ({max}); rebuild with a larger EDDY_MAX_COLS"
            ),
            ArgError::TooManyChannels { channels, max } => write!(
                f,
                "{channels} scan channels exceed the kernel's buffers ({max}); rebuild with a larger EDDY_MAX_CHANNELS"
            ),
            ArgError::StateSize { d_state, max } => {
                write!(f, "state size {d_state} is zero or above the kernel's limit {max} (EDDY_MAX_DSTATE)")
            }
            ArgError::OutOfMemory { buffer, addr, len } => {
                write!(f, "buffer `{buffer}` ({len} bytes at {addr:#x}) is outside device memory")
            }
            ArgError::Misaligned { buffer, addr } => write!(f, "buffer `{buffer}` at {addr:#x} is not 4-byte aligned"),
            ArgError::Overlap { output, input } => write!(f, "output `{output}` overlaps input `{input}`"),
        }
    }
}

/// Why a job did not complete.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DriverError {
    /// Rejected before start; the kernel was not touched.
    BadArgs(ArgError),
    /// The kernel was not idle when a job was to start (a previous job
    /// never finished).
    Busy,
    /// Done did not come within this many polls; the kernel may still be
    /// running.
    Timeout {
        /// Polls made.
        polls: u64,
    },
    /// The kernel finished with an error status.
    Kernel(KernelStatus),
    /// A host copy to or from device memory failed.
    Memory(crate::bus::MemoryError),
}

impl core::fmt::Display for DriverError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            DriverError::BadArgs(e) => write!(f, "bad accelerator arguments: {e}"),
            DriverError::Busy => write!(f, "the accelerator is still busy with an earlier job; reset it"),
            DriverError::Timeout { polls } => {
                write!(
                    f,
                    "the accelerator did not signal done after {polls} polls; raise the timeout or reset it"
                )
            }
            DriverError::Kernel(s) => write!(f, "the accelerator reported an error: {s}"),
            DriverError::Memory(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for DriverError {}

impl From<crate::bus::MemoryError> for DriverError {
    fn from(e: crate::bus::MemoryError) -> Self {
        DriverError::Memory(e)
    }
}

/// What a completed job reports.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RunInfo {
    /// Pipeline iterations the kernel ran (ITERS register).
    pub iters: u32,
    /// Polls of CTRL until done.
    pub polls: u64,
}

/// The driver for one accelerator instance.
pub struct Accel<D> {
    dev: D,
    params: KernelParams,
    timeout_polls: u64,
}

impl<D: Device> Accel<D> {
    /// Polls before a job times out, by default.
    pub const DEFAULT_TIMEOUT_POLLS: u64 = 10_000_000;

    /// Drive `dev`, whose kernel was built with `params`.
    pub fn new(dev: D, params: KernelParams) -> Self {
        Accel { dev, params, timeout_polls: Self::DEFAULT_TIMEOUT_POLLS }
    }

    /// Give up waiting for done after `polls` polls.
    pub fn set_timeout_polls(&mut self, polls: u64) {
        self.timeout_polls = polls;
    }

    /// The kernel's parameters.
    pub fn params(&self) -> KernelParams {
        self.params
    }

    /// The device (registers and memory).
    pub fn device(&mut self) -> &mut D {
        &mut self.dev
    }

    /// Raise the interrupt line on done (GIE + IER done bit), or stop.
    pub fn enable_interrupts(&mut self, on: bool) {
        self.dev.write32(regs::IER, if on { regs::IRQ_DONE } else { 0 });
        self.dev.write32(regs::GIE, on as u32);
    }

    /// Acknowledge pending interrupts (write-1-to-toggle ISR).
    pub fn clear_interrupts(&mut self) {
        let pending = self.dev.read32(regs::ISR) & (regs::IRQ_DONE | regs::IRQ_READY);
        if pending != 0 {
            self.dev.write32(regs::ISR, pending);
        }
    }

    fn check_buffer(&self, buffer: &'static str, addr: u64, len: u64, align: u64) -> Result<(), ArgError> {
        let (base, size) = (self.dev.base(), self.dev.len());
        let inside = addr >= base && addr - base <= size && len <= size - (addr - base);
        if !inside {
            return Err(ArgError::OutOfMemory { buffer, addr, len });
        }
        if addr % align != 0 {
            return Err(ArgError::Misaligned { buffer, addr });
        }
        Ok(())
    }

    /// Check a matvec job against the kernel's limits and device memory.
    pub fn check_matvec(&self, job: &MatvecJob) -> Result<(), ArgError> {
        let (Some(group), Some(bits), Some(group_bytes)) =
            (job.format.group_size(), job.format.code_bits(), job.format.group_bytes())
        else {
            return Err(ArgError::NotInteger(job.format.name()));
        };
        let _ = bits;
        let group = group as u32;
        if job.rows == 0 {
            return Err(ArgError::ZeroRows);
        }
        if job.cols == 0 || job.cols % group != 0 {
            return Err(ArgError::RaggedCols { cols: job.cols, group });
        }
        if job.cols > self.params.max_cols {
            return Err(ArgError::TooManyCols { cols: job.cols, max: self.params.max_cols });
        }
        let groups = (job.cols / group) as u64;
        let w_len = job.rows as u64 * groups * group_bytes as u64;
        let y_len = job.rows as u64 * 4;
        self.check_buffer("w", job.w, w_len, 1)?;
        self.check_buffer("xq", job.xq, job.cols as u64, 1)?;
        self.check_buffer("xs", job.xs, groups * 4, 4)?;
        self.check_buffer("xsum", job.xsum, groups * 4, 4)?;
        self.check_buffer("y", job.y, y_len, 4)?;
        let inputs = [
            ("w", job.w, w_len),
            ("xq", job.xq, job.cols as u64),
            ("xs", job.xs, groups * 4),
            ("xsum", job.xsum, groups * 4),
        ];
        check_disjoint("y", job.y, y_len, &inputs)
    }

    /// Check a scan job against the kernel's limits and device memory.
    pub fn check_scan(&self, job: &ScanJob) -> Result<(), ArgError> {
        if job.channels == 0 {
            return Err(ArgError::ZeroRows);
        }
        if job.channels > self.params.max_channels {
            return Err(ArgError::TooManyChannels { channels: job.channels, max: self.params.max_channels });
        }
        if job.d_state == 0 || job.d_state > self.params.max_dstate {
            return Err(ArgError::StateSize { d_state: job.d_state, max: self.params.max_dstate });
        }
        let cells = job.channels as u64 * job.d_state as u64 * 4;
        let chp = job.channels as u64 * 16;
        let bc = job.d_state as u64 * 8;
        let y = job.channels as u64 * 4;
        self.check_buffer("a", job.a, cells, 4)?;
        self.check_buffer("chp", job.chp, chp, 4)?;
        self.check_buffer("bc", job.bc, bc, 4)?;
        self.check_buffer("h", job.h, cells, 4)?;
        self.check_buffer("y", job.y, y, 4)?;
        let inputs = [("a", job.a, cells), ("chp", job.chp, chp), ("bc", job.bc, bc)];
        check_disjoint("h", job.h, cells, &inputs)?;
        check_disjoint(
            "y",
            job.y,
            y,
            &[("a", job.a, cells), ("chp", job.chp, chp), ("bc", job.bc, bc), ("h", job.h, cells)],
        )
    }

    /// Write a job's registers in order: the `(offset, value)` words, then
    /// each `(offset, address)` as its low word at `offset` and its high
    /// word at `offset + 4`.
    fn write_job(&mut self, words: &[(u32, u32)], addrs: &[(u32, u64)]) {
        for &(offset, value) in words {
            self.dev.write32(offset, value);
        }
        for &(offset, addr) in addrs {
            self.dev.write32(offset, addr as u32);
            self.dev.write32(offset + 4, (addr >> 32) as u32);
        }
    }

    /// Run a matvec job to completion. Bad arguments are refused before
    /// any register is written.
    pub fn matvec(&mut self, job: &MatvecJob) -> Result<RunInfo, DriverError> {
        self.check_matvec(job).map_err(DriverError::BadArgs)?;
        self.ensure_idle()?;
        let (group, bits) =
            (job.format.group_size().unwrap_or(0) as u32, job.format.code_bits().unwrap_or(0));
        self.write_job(
            &[
                (regs::OP, regs::OP_MATVEC),
                (regs::BITS, bits),
                (regs::GROUP, group),
                (regs::ROWS, job.rows),
                (regs::COLS, job.cols),
            ],
            &[
                (regs::W, job.w),
                (regs::XQ, job.xq),
                (regs::XS, job.xs),
                (regs::XSUM, job.xsum),
                (regs::Y, job.y),
            ],
        );
        self.start_and_wait()
    }

    /// Run a scan job to completion. Bad arguments are refused before any
    /// register is written.
    pub fn scan(&mut self, job: &ScanJob) -> Result<RunInfo, DriverError> {
        self.check_scan(job).map_err(DriverError::BadArgs)?;
        self.ensure_idle()?;
        self.write_job(
            &[(regs::OP, regs::OP_SCAN), (regs::ROWS, job.channels), (regs::COLS, job.d_state)],
            &[(regs::A, job.a), (regs::CHP, job.chp), (regs::BC, job.bc), (regs::H, job.h), (regs::Y, job.y)],
        );
        self.start_and_wait()
    }

    fn ensure_idle(&mut self) -> Result<(), DriverError> {
        if self.dev.read32(regs::CTRL) & regs::CTRL_IDLE == 0 {
            return Err(DriverError::Busy);
        }
        Ok(())
    }

    /// Set start, then poll CTRL until done (at most the timeout's polls),
    /// then read STATUS and ITERS.
    fn start_and_wait(&mut self) -> Result<RunInfo, DriverError> {
        self.dev.write32(regs::CTRL, regs::CTRL_START);
        let mut polls = 0u64;
        loop {
            polls += 1;
            if self.dev.read32(regs::CTRL) & regs::CTRL_DONE != 0 {
                break;
            }
            if polls >= self.timeout_polls {
                return Err(DriverError::Timeout { polls });
            }
            self.dev.pause();
        }
        let status = KernelStatus::from_code(self.dev.read32(regs::STATUS));
        if status != KernelStatus::Ok {
            return Err(DriverError::Kernel(status));
        }
        Ok(RunInfo { iters: self.dev.read32(regs::ITERS), polls })
    }
}

fn check_disjoint(
    output: &'static str,
    addr: u64,
    len: u64,
    inputs: &[(&'static str, u64, u64)],
) -> Result<(), ArgError> {
    for &(input, a, l) in inputs {
        if addr < a.saturating_add(l) && a < addr.saturating_add(len) {
            return Err(ArgError::Overlap { output, input });
        }
    }
    Ok(())
}
