//! The accelerator on a Linux board: registers through UIO, buffers from
//! u-dma-buf.
//!
//! - Registers: the kernel's AXI-Lite window must be exposed as a UIO device
//!   (device tree `compatible = "generic-uio"` with the node named e.g.
//!   `eddy_accel`, and `uio_pdrv_genirq.of_id=generic-uio` on the kernel
//!   command line). [`UioBus::open`] finds `/dev/uioN` by that name under
//!   `/sys/class/uio` and maps map 0.
//! - Buffers: the kernel's AXI masters need physically contiguous memory.
//!   [`UdmaBuf::open`] maps a buffer of the `u-dma-buf` driver
//!   (`/dev/udmabufN`; its bus address from
//!   `/sys/class/u-dma-buf/udmabufN/phys_addr`, size from `.../size`);
//!   bus addresses are then physical addresses inside that buffer.
//!
//! Not run on a board here: tests map ordinary files in place of the device
//! files (register accesses land at the documented offsets; a kernel that
//! never answers times out).

use crate::bus::{window_range, DeviceMemory, MemoryError, RegisterBus};
use crate::sim::KernelParams;
use memmap2::{MmapMut, MmapOptions};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Setting up the board device failed.
#[derive(Debug)]
pub enum BoardError {
    /// No UIO device has this name under the sysfs directory.
    NoUio {
        /// The name looked for.
        name: String,
        /// Where.
        sysfs: PathBuf,
    },
    /// A sysfs attribute or device file could not be read, parsed or mapped.
    Io {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        error: std::io::Error,
    },
    /// A host configuration line is malformed or a key is missing.
    Config(String),
}

impl core::fmt::Display for BoardError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            BoardError::NoUio { name, sysfs } => write!(
                f,
                "no UIO device named `{name}` under {}; is the kernel's register window bound to uio_pdrv_genirq?",
                sysfs.display()
            ),
            BoardError::Io { path, error } => write!(f, "{}: {error}", path.display()),
            BoardError::Config(m) => write!(f, "host configuration: {m}"),
        }
    }
}

impl std::error::Error for BoardError {}

fn io_err(path: &Path) -> impl Fn(std::io::Error) -> BoardError + '_ {
    move |error| BoardError::Io { path: path.to_path_buf(), error }
}

fn read_attr(path: &Path) -> Result<String, BoardError> {
    Ok(std::fs::read_to_string(path).map_err(io_err(path))?.trim().to_string())
}

fn parse_u64(path: &Path, text: &str) -> Result<u64, BoardError> {
    let t = text.trim();
    let v = match t.strip_prefix("0x").or_else(|| t.strip_prefix("0X")) {
        Some(hex) => u64::from_str_radix(hex, 16),
        None => t.parse(),
    };
    v.map_err(|e| BoardError::Io {
        path: path.to_path_buf(),
        error: std::io::Error::new(std::io::ErrorKind::InvalidData, format!("`{t}`: {e}")),
    })
}

/// The UIO device named `name`: (`/dev/uioN` under `dev`, size of map 0),
/// searching `sysfs` (normally `/sys/class/uio`).
pub fn find_uio(sysfs: &Path, dev: &Path, name: &str) -> Result<(PathBuf, u64), BoardError> {
    let entries = std::fs::read_dir(sysfs).map_err(io_err(sysfs))?;
    let mut found: Vec<PathBuf> = entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
    found.sort();
    for dir in found {
        let Ok(n) = std::fs::read_to_string(dir.join("name")) else { continue };
        if n.trim() != name {
            continue;
        }
        let size_path = dir.join("maps/map0/size");
        let size = parse_u64(&size_path, &read_attr(&size_path)?)?;
        let node = dir.file_name().map(|f| dev.join(f)).unwrap_or_default();
        return Ok((node, size));
    }
    Err(BoardError::NoUio { name: name.to_string(), sysfs: sysfs.to_path_buf() })
}

fn map_file(path: &Path, len: u64) -> Result<MmapMut, BoardError> {
    let file = std::fs::OpenOptions::new().read(true).write(true).open(path).map_err(io_err(path))?;
    // SAFETY: a device (or test) file mapped shared; every access goes
    // through volatile reads/writes or bounds-checked copies, and the
    // mapping lives as long as the struct that owns it.
    unsafe { MmapOptions::new().len(len as usize).map_mut(&file) }.map_err(io_err(path))
}

/// The kernel's registers through a UIO map.
pub struct UioBus {
    map: MmapMut,
    poll_interval: Duration,
    bad_accesses: u64,
}

impl UioBus {
    /// Find the UIO device `name` under `/sys/class/uio` and map it.
    pub fn open(name: &str) -> Result<Self, BoardError> {
        let (node, size) = find_uio(Path::new("/sys/class/uio"), Path::new("/dev"), name)?;
        Self::map(&node, size)
    }

    /// Map `size` bytes of `path` as the register window (a UIO node, or a
    /// plain file in tests).
    pub fn map(path: &Path, size: u64) -> Result<Self, BoardError> {
        Ok(UioBus { map: map_file(path, size)?, poll_interval: Duration::from_micros(1), bad_accesses: 0 })
    }

    /// Time to wait between two polls of CTRL (default 1 µs; zero spins).
    pub fn set_poll_interval(&mut self, interval: Duration) {
        self.poll_interval = interval;
    }

    /// Accesses outside the window or misaligned (ignored, reads give 0).
    pub fn bad_accesses(&self) -> u64 {
        self.bad_accesses
    }

    fn word(&mut self, offset: u32) -> Option<*mut u32> {
        let off = offset as usize;
        if off % 4 != 0 || off + 4 > self.map.len() {
            self.bad_accesses += 1;
            return None;
        }
        // SAFETY: in bounds (checked above); the map is page aligned, so an
        // offset that is a multiple of 4 is 4-byte aligned.
        Some(unsafe { self.map.as_mut_ptr().add(off) }.cast::<u32>())
    }
}

impl RegisterBus for UioBus {
    fn read32(&mut self, offset: u32) -> u32 {
        match self.word(offset) {
            // SAFETY: aligned, in-bounds pointer into the live map; volatile
            // because a device register changes behind the compiler's back.
            Some(p) => u32::from_le(unsafe { p.read_volatile() }),
            None => 0,
        }
    }

    fn write32(&mut self, offset: u32, value: u32) {
        if let Some(p) = self.word(offset) {
            // SAFETY: aligned, in-bounds pointer into the live map.
            unsafe { p.write_volatile(value.to_le()) }
        }
    }

    fn pause(&mut self) {
        if self.poll_interval.is_zero() {
            std::hint::spin_loop();
        } else {
            std::thread::sleep(self.poll_interval);
        }
    }
}

/// A physically contiguous buffer of the u-dma-buf driver, addressed by
/// the kernel with physical (bus) addresses.
pub struct UdmaBuf {
    map: MmapMut,
    phys: u64,
}

impl UdmaBuf {
    /// Open `/dev/<name>` with its address and size from
    /// `/sys/class/u-dma-buf/<name>/`.
    pub fn open(name: &str) -> Result<Self, BoardError> {
        Self::open_in(Path::new("/sys/class/u-dma-buf"), Path::new("/dev"), name)
    }

    /// [`open`](Self::open) with other sysfs and device directories.
    pub fn open_in(sysfs: &Path, dev: &Path, name: &str) -> Result<Self, BoardError> {
        let dir = sysfs.join(name);
        let (pa, sz) = (dir.join("phys_addr"), dir.join("size"));
        let phys = parse_u64(&pa, &read_attr(&pa)?)?;
        let size = parse_u64(&sz, &read_attr(&sz)?)?;
        Ok(UdmaBuf { map: map_file(&dev.join(name), size)?, phys })
    }
}

impl DeviceMemory for UdmaBuf {
    fn base(&self) -> u64 {
        self.phys
    }

    fn len(&self) -> u64 {
        self.map.len() as u64
    }

    fn write(&mut self, addr: u64, data: &[u8]) -> Result<(), MemoryError> {
        let r = window_range(self.phys, self.map.len() as u64, addr, data.len())?;
        self.map[r].copy_from_slice(data);
        Ok(())
    }

    fn read(&mut self, addr: u64, out: &mut [u8]) -> Result<(), MemoryError> {
        let r = window_range(self.phys, self.map.len() as u64, addr, out.len())?;
        out.copy_from_slice(&self.map[r]);
        Ok(())
    }
}

/// Registers and buffer of one board, as one [`crate::Device`].
pub struct BoardDevice<R, M> {
    /// Register window.
    pub regs: R,
    /// Device memory.
    pub mem: M,
}

impl<R: RegisterBus, M> RegisterBus for BoardDevice<R, M> {
    fn read32(&mut self, offset: u32) -> u32 {
        self.regs.read32(offset)
    }
    fn write32(&mut self, offset: u32, value: u32) {
        self.regs.write32(offset, value)
    }
    fn pause(&mut self) {
        self.regs.pause()
    }
    fn irq_pending(&mut self) -> Option<bool> {
        self.regs.irq_pending()
    }
}

impl<R, M: DeviceMemory> DeviceMemory for BoardDevice<R, M> {
    fn base(&self) -> u64 {
        self.mem.base()
    }
    fn len(&self) -> u64 {
        self.mem.len()
    }
    fn write(&mut self, addr: u64, data: &[u8]) -> Result<(), MemoryError> {
        self.mem.write(addr, data)
    }
    fn read(&mut self, addr: u64, out: &mut [u8]) -> Result<(), MemoryError> {
        self.mem.read(addr, out)
    }
}

/// The host configuration `eddy fpga export` writes (`eddy-host.conf`):
/// `key = value` lines, `#` comments.
#[derive(Clone, Debug, PartialEq)]
pub struct HostConfig {
    /// The kernel's parameters.
    pub params: KernelParams,
    /// UIO device name of the register window.
    pub uio_name: String,
    /// u-dma-buf device name.
    pub udmabuf: String,
    /// Kernel clock, MHz.
    pub clock_mhz: f64,
}

impl HostConfig {
    /// Parse the file's text.
    pub fn parse(text: &str) -> Result<Self, BoardError> {
        let mut kv = std::collections::HashMap::new();
        for (n, line) in text.lines().enumerate() {
            let line = line.split('#').next().unwrap_or("").trim();
            if line.is_empty() {
                continue;
            }
            let (k, v) = line
                .split_once('=')
                .ok_or_else(|| BoardError::Config(format!("line {}: expected `key = value`", n + 1)))?;
            kv.insert(k.trim().to_string(), v.trim().to_string());
        }
        let get = |k: &str| kv.get(k).ok_or_else(|| BoardError::Config(format!("missing key `{k}`")));
        let num = |k: &str| -> Result<u32, BoardError> {
            get(k)?.parse().map_err(|e| BoardError::Config(format!("`{k}`: {e}")))
        };
        Ok(HostConfig {
            params: KernelParams {
                pe: num("pe")?,
                simd: num("simd")?,
                max_cols: num("max_cols")?,
                max_dstate: num("max_dstate")?,
                max_channels: num("max_channels")?,
                scan_lanes: num("scan_lanes")?,
            },
            uio_name: get("uio_name")?.clone(),
            udmabuf: get("udmabuf")?.clone(),
            clock_mhz: get("clock_mhz")?
                .parse()
                .map_err(|e| BoardError::Config(format!("`clock_mhz`: {e}")))?,
        })
    }

    /// Open the board this configuration describes.
    pub fn open_board(&self) -> Result<crate::Accel<BoardDevice<UioBus, UdmaBuf>>, BoardError> {
        let dev = BoardDevice { regs: UioBus::open(&self.uio_name)?, mem: UdmaBuf::open(&self.udmabuf)? };
        Ok(crate::Accel::new(dev, self.params))
    }
}
