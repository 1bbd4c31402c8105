//! [`FpgaOffload`]: an [`eddy::Offload`] that runs a model's integer matrix
//! products (and, if asked, its selective scan) on an [`Accel`].
//!
//! The whole `.eddy` file is copied into device memory once, so a weight
//! matrix's bus address is the file's base address plus the matrix's
//! offset in the file: the runtime hands over slices of those same bytes.
//! Per call only the activations go in and the outputs come out (for the
//! scan also the state, which lives in the host's session memory).

use crate::driver::{Accel, Device, DriverError, MatvecJob, ScanJob};
use crate::sim::{KernelParams, SimBus, SimError};
use eddy::offload::{OffloadError, ScanArgs};
use eddy::{Model, Offload};
use eddy_kernels::ActsI8;
use eddy_quant::TensorFormat;
use std::sync::Mutex;

/// Counters of what the device did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct OffloadStats {
    /// Matrix-vector products run on the device.
    pub matvecs: u64,
    /// Scans run on the device.
    pub scans: u64,
    /// Requests declined (the CPU ran them): not in the model file, or
    /// beyond the kernel's limits.
    pub declined: u64,
    /// Requests that failed on the device (their outputs are NaN).
    pub errors: u64,
    /// The first failure, if any.
    pub first_error: Option<DriverError>,
    /// Pipeline iterations the kernel reported, summed.
    pub iters: u64,
}

/// The offload device could not be set up.
#[derive(Debug)]
pub enum OffloadInitError {
    /// Device memory is smaller than the model plus working buffers.
    DeviceTooSmall {
        /// Bytes needed.
        needed: u64,
        /// Bytes the device has.
        have: u64,
    },
    /// Copying the model into device memory failed.
    Upload(crate::bus::MemoryError),
    /// The C-simulator could not be created.
    Sim(SimError),
}

impl core::fmt::Display for OffloadInitError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            OffloadInitError::DeviceTooSmall { needed, have } => {
                write!(f, "device memory holds {have} bytes but the model and buffers need {needed}")
            }
            OffloadInitError::Upload(e) => write!(f, "uploading the model: {e}"),
            OffloadInitError::Sim(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for OffloadInitError {}

/// Where things live in device memory, as offsets from its base.
#[derive(Clone, Copy, Debug)]
struct Layout {
    model: u64,
    xq: u64,
    xs: u64,
    xsum: u64,
    y: u64,
    chp: u64,
    bc: u64,
    h: u64,
    total: u64,
}

fn align64(v: u64) -> u64 {
    v.div_ceil(64) * 64
}

impl Layout {
    fn new(model: &Model<'_>, model_len: usize) -> Self {
        let (mut max_rows, mut max_cols) = (1u64, 1u64);
        for t in model.file().tensors() {
            if t.format.group_size().is_some() {
                max_rows = max_rows.max(t.rows());
                max_cols = max_cols.max(t.cols());
            }
        }
        let (channels, ds) =
            model.offload_scan_shape().map_or((1, 1), |s| (s.channels as u64, s.d_state as u64));
        max_rows = max_rows.max(channels);
        let mut at = align64(model_len as u64);
        let mut take = |bytes: u64| {
            let start = at;
            at = align64(at + bytes);
            start
        };
        let groups = max_cols.div_ceil(32);
        let (xq, xs, xsum, y) = (take(max_cols), take(groups * 4), take(groups * 4), take(max_rows * 4));
        let (chp, bc, h) = (take(channels * 16), take(ds * 8), take(channels * ds * 4));
        Layout { model: 0, xq, xs, xsum, y, chp, bc, h, total: at }
    }
}

struct State<D> {
    accel: Accel<D>,
    base: u64,
    layout: Layout,
    stats: OffloadStats,
    staging: Vec<u8>,
}

/// A model's accelerator: offers the runtime every integer matrix-vector
/// product of the model it was built for (and the scan if enabled).
pub struct FpgaOffload<'m, D> {
    name: String,
    model: &'m [u8],
    params: KernelParams,
    scan: bool,
    state: Mutex<State<D>>,
}

impl<'m, D: Device + Send> FpgaOffload<'m, D> {
    /// Bytes of device memory a model needs (file plus working buffers).
    pub fn device_bytes(model: &Model<'_>, bytes: &[u8]) -> u64 {
        Layout::new(model, bytes.len()).total
    }

    /// Copy `bytes` (the file `model` was loaded from) into the device's
    /// memory and serve `model`'s products from there. With `scan`, the
    /// selective scan runs on the device too.
    pub fn new(
        name: &str,
        mut accel: Accel<D>,
        model: &Model<'_>,
        bytes: &'m [u8],
        scan: bool,
    ) -> Result<Self, OffloadInitError> {
        let layout = Layout::new(model, bytes.len());
        let dev = accel.device();
        if layout.total > dev.len() {
            return Err(OffloadInitError::DeviceTooSmall { needed: layout.total, have: dev.len() });
        }
        let base = dev.base();
        dev.write(base + layout.model, bytes).map_err(OffloadInitError::Upload)?;
        let params = accel.params();
        let state = State { accel, base, layout, stats: OffloadStats::default(), staging: Vec::new() };
        Ok(FpgaOffload { name: name.to_string(), model: bytes, params, scan, state: Mutex::new(state) })
    }

    /// What the device has done so far.
    pub fn stats(&self) -> OffloadStats {
        self.lock().stats.clone()
    }

    /// The kernel's parameters.
    pub fn params(&self) -> KernelParams {
        self.params
    }

    /// Run `f` on the driver (e.g. to change its timeout or inject faults
    /// in tests).
    pub fn with_accel<R>(&self, f: impl FnOnce(&mut Accel<D>) -> R) -> R {
        f(&mut self.lock().accel)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State<D>> {
        // A panic while holding the lock leaves only counters half-updated.
        self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Bus address of `part` if it lies inside the uploaded model file.
    fn model_addr(&self, base: u64, part: &[u8]) -> Option<u64> {
        let start = self.model.as_ptr() as usize;
        let p = part.as_ptr() as usize;
        let off = p.checked_sub(start)?;
        (off.checked_add(part.len())? <= self.model.len()).then_some(base + off as u64)
    }
}

impl<'m> FpgaOffload<'m, SimBus> {
    /// The C-simulated accelerator, with device memory sized for `model`.
    pub fn simulated(model: &Model<'_>, bytes: &'m [u8], scan: bool) -> Result<Self, OffloadInitError> {
        let sim = SimBus::new(Self::device_bytes(model, bytes)).map_err(OffloadInitError::Sim)?;
        Self::new("fpga-sim", Accel::new(sim, SimBus::params()), model, bytes, scan)
    }
}

fn le_bytes<'a, T: Copy + 'a, const N: usize>(
    out: &mut Vec<u8>,
    values: impl Iterator<Item = &'a T>,
    f: impl Fn(T) -> [u8; N],
) {
    out.clear();
    for &v in values {
        out.extend_from_slice(&f(v));
    }
}

impl<D: Device + Send> State<D> {
    fn fail(&mut self, e: DriverError) -> OffloadError {
        self.stats.errors += 1;
        if self.stats.first_error.is_none() {
            self.stats.first_error = Some(e);
        }
        OffloadError::Device
    }

    fn put(&mut self, off: u64, data: &[u8]) -> Result<(), DriverError> {
        let addr = self.base + off;
        self.accel.device().write(addr, data).map_err(DriverError::Memory)
    }

    fn get_f32(&mut self, off: u64, out: &mut [f32]) -> Result<(), DriverError> {
        let addr = self.base + off;
        let mut bytes = core::mem::take(&mut self.staging);
        bytes.resize(out.len() * 4, 0);
        let r = self.accel.device().read(addr, &mut bytes).map_err(DriverError::Memory);
        for (o, c) in out.iter_mut().zip(bytes.chunks_exact(4)) {
            *o = f32::from_le_bytes([c[0], c[1], c[2], c[3]]);
        }
        self.staging = bytes;
        r
    }

    fn put_f32(&mut self, off: u64, values: &[f32]) -> Result<(), DriverError> {
        let mut bytes = core::mem::take(&mut self.staging);
        le_bytes(&mut bytes, values.iter(), f32::to_le_bytes);
        let r = self.put(off, &bytes);
        self.staging = bytes;
        r
    }

    fn matvec(&mut self, job: &MatvecJob, acts: &ActsI8<'_>, out: &mut [f32]) -> Result<u32, DriverError> {
        let l = self.layout;
        let mut bytes = core::mem::take(&mut self.staging);
        le_bytes(&mut bytes, acts.q.iter(), |q: i8| [q as u8]);
        let r = self.put(l.xq, &bytes);
        self.staging = bytes;
        r?;
        self.put_f32(l.xs, acts.scales)?;
        let mut bytes = core::mem::take(&mut self.staging);
        le_bytes(&mut bytes, acts.sums.iter(), i32::to_le_bytes);
        let r = self.put(l.xsum, &bytes);
        self.staging = bytes;
        r?;
        let info = self.accel.matvec(job)?;
        self.get_f32(l.y, out)?;
        Ok(info.iters)
    }

    fn scan(
        &mut self,
        job: &ScanJob,
        args: &ScanArgs<'_>,
        state: &mut [f32],
        y: &mut [f32],
    ) -> Result<u32, DriverError> {
        let l = self.layout;
        let channels = y.len();
        let mut chp = Vec::with_capacity(channels * 4);
        for c in 0..channels {
            chp.extend_from_slice(&[args.dt[c], args.u[c], args.z[c], args.d[c]]);
        }
        self.put_f32(l.chp, &chp)?;
        let mut bc = Vec::with_capacity(2 * args.d_state);
        bc.extend_from_slice(&args.b[..args.d_state]);
        bc.extend_from_slice(&args.c[..args.d_state]);
        self.put_f32(l.bc, &bc)?;
        self.put_f32(l.h, state)?;
        let info = self.accel.scan(job)?;
        self.get_f32(l.h, state)?;
        self.get_f32(l.y, y)?;
        Ok(info.iters)
    }
}

impl<D: Device + Send> Offload for FpgaOffload<'_, D> {
    fn name(&self) -> &str {
        &self.name
    }

    fn matvec_i8(
        &self,
        format: TensorFormat,
        matrix: &[u8],
        cols: usize,
        acts: &ActsI8<'_>,
        out: &mut [f32],
    ) -> Result<(), OffloadError> {
        let mut st = self.lock();
        let groups = format.group_size().map_or(0, |g| cols / g.max(1));
        let fits = cols <= self.params.max_cols as usize
            && out.len() <= u32::MAX as usize
            && acts.q.len() >= cols
            && acts.scales.len() >= groups
            && acts.sums.len() >= groups;
        let (base, l) = (st.base, st.layout);
        let Some(w) = self.model_addr(base, matrix).filter(|_| fits && format.group_size().is_some()) else {
            st.stats.declined += 1;
            return Err(OffloadError::Unsupported);
        };
        let job = MatvecJob {
            format,
            rows: out.len() as u32,
            cols: cols as u32,
            w,
            xq: base + l.xq,
            xs: base + l.xs,
            xsum: base + l.xsum,
            y: base + l.y,
        };
        let acts = ActsI8 { q: &acts.q[..cols], scales: &acts.scales[..groups], sums: &acts.sums[..groups] };
        match st.matvec(&job, &acts, out) {
            Ok(iters) => {
                st.stats.matvecs += 1;
                st.stats.iters += iters as u64;
                Ok(())
            }
            Err(e) => Err(st.fail(e)),
        }
    }

    fn scan(&self, args: &ScanArgs<'_>, state: &mut [f32], y: &mut [f32]) -> Result<(), OffloadError> {
        let mut st = self.lock();
        let (channels, ds) = (y.len(), args.d_state);
        let a_bytes: &[u8] = match args.a.get(..channels * ds) {
            Some(a) => bytemuck::cast_slice(a),
            None => &[],
        };
        let complete =
            [args.dt.len(), args.u.len(), args.z.len(), args.d.len()].iter().all(|&n| n >= channels)
                && args.b.len() >= ds
                && args.c.len() >= ds
                && state.len() == channels * ds
                && ds <= self.params.max_dstate as usize
                && channels <= self.params.max_channels as usize;
        let (base, l) = (st.base, st.layout);
        let a = self.model_addr(base, a_bytes).filter(|_| self.scan && complete && !a_bytes.is_empty());
        let Some(a) = a else {
            st.stats.declined += 1;
            return Err(OffloadError::Unsupported);
        };
        let job = ScanJob {
            channels: channels as u32,
            d_state: ds as u32,
            a,
            chp: base + l.chp,
            bc: base + l.bc,
            h: base + l.h,
            y: base + l.y,
        };
        match st.scan(&job, args, state, y) {
            Ok(iters) => {
                st.stats.scans += 1;
                st.stats.iters += iters as u64;
                Ok(())
            }
            Err(e) => Err(st.fail(e)),
        }
    }
}
