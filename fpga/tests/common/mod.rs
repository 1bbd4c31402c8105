//! Device-memory helpers shared by the C-simulated register tests.

// Each test binary uses its own subset of these helpers.
#![allow(dead_code)]

use eddy_fpga::golden::ScanCase;
use eddy_fpga::{Accel, DeviceMemory, ScanJob, SimBus};

/// Little-endian bytes of f32 values, as the kernel reads them.
pub fn f32_bytes(v: &[f32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

/// `n` f32 values read from device memory at `addr`.
pub fn read_f32(acc: &mut Accel<SimBus>, addr: u64, n: usize) -> Vec<f32> {
    let mut b = vec![0u8; n * 4];
    acc.device().read(addr, &mut b).expect("read");
    b.chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect()
}

/// Lay a scan case out in device memory, `A` at the base and the other
/// buffers at the base plus `[chp, bc, h, y]`; returns the job.
pub fn place_scan(acc: &mut Accel<SimBus>, case: &ScanCase, [chp, bc, h, y]: [u64; 4]) -> ScanJob {
    let base = acc.device().base();
    let job = ScanJob {
        channels: case.channels as u32,
        d_state: case.d_state as u32,
        a: base,
        chp: base + chp,
        bc: base + bc,
        h: base + h,
        y: base + y,
    };
    let dev = acc.device();
    dev.write(job.a, &f32_bytes(&case.a)).expect("write A");
    dev.write(job.chp, &f32_bytes(&case.chp)).expect("write chp");
    dev.write(job.bc, &f32_bytes(&case.bc)).expect("write B, C");
    dev.write(job.h, &f32_bytes(&case.h_in)).expect("write h");
    job
}
