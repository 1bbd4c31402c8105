//! Error of the scan unit (C-simulated, through the register protocol)
//! against the CPU scan, over many random channels: measured and checked
//! against the stated bound (`golden::SCAN_ABS_BOUND`/`SCAN_REL_BOUND`).

use eddy_fpga::golden::{ScanCase, SCAN_ABS_BOUND, SCAN_REL_BOUND};
use eddy_fpga::{Accel, DeviceMemory, SimBus};

mod common;
use common::place_scan;

#[test]
fn scan_error_is_measured_and_within_bound() {
    let mut acc = Accel::new(SimBus::new(8 << 20).unwrap(), SimBus::params());
    let (mut worst_abs, mut worst_rel, mut worst_bound, mut values, mut exact) =
        (0f64, 0f64, 0f64, 0usize, 0usize);
    for seed in 0..16u64 {
        let case = ScanCase::random("measure", 1024, 16, 1000 + seed);
        let cells = 1024 * 16;
        let job = place_scan(&mut acc, &case, [0x10_0000, 0x20_0000, 0x30_0000, 0x40_0000]);
        acc.scan(&job).unwrap();
        let mut hb = vec![0u8; cells * 4];
        let mut yb = vec![0u8; 1024 * 4];
        acc.device().read(job.h, &mut hb).unwrap();
        acc.device().read(job.y, &mut yb).unwrap();
        let got = hb
            .chunks_exact(4)
            .chain(yb.chunks_exact(4))
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]));
        let mags = case.h_mag.iter().chain(&case.y_mag);
        for ((g, &w), &mag) in got.zip(case.h_out.iter().chain(&case.y)).zip(mags) {
            let err = (g as f64 - w as f64).abs();
            values += 1;
            exact += (g.to_bits() == w.to_bits()) as usize;
            worst_abs = worst_abs.max(err);
            if mag > 1e-6 {
                worst_rel = worst_rel.max(err / mag as f64);
            }
            worst_bound = worst_bound.max(err / (SCAN_ABS_BOUND as f64 + SCAN_REL_BOUND as f64 * mag as f64));
        }
    }
    println!(
        "scan unit vs CPU over {values} values: {exact} bit-identical, worst abs {worst_abs:.3e}, \
         worst error / term magnitude {worst_rel:.3e}, worst error / bound {worst_bound:.3}"
    );
    assert!(worst_bound <= 1.0, "scan error exceeds the stated bound");
    // The unit is not trivially the CPU code: its log1p differs.
    assert!(exact < values);
}
