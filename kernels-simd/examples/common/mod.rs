//! Shared by the kernel timing examples: random quantized matrices and a
//! best-of-N timer.

use eddy_quant::{TensorFormat, GROUP_HEADER_BYTES};
use std::time::Instant;

/// A random quantized matrix with sane f16 group headers.
pub fn matrix(f: TensorFormat, rows: usize, cols: usize, seed: u64) -> Vec<u8> {
    let rb = f.byte_len(1, cols as u64).unwrap_or(0) as usize;
    let (gb, g) = (f.group_bytes().unwrap_or(1), f.group_size().unwrap_or(1));
    let mut s = seed | 1;
    let mut m = vec![0u8; rb * rows];
    for b in m.iter_mut() {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        *b = (s >> 24) as u8;
    }
    let (scale, min) = (eddy_quant::f32_to_f16_bits(0.01), eddy_quant::f32_to_f16_bits(-0.02));
    for row in m.chunks_exact_mut(rb) {
        for grp in row.chunks_exact_mut(gb).take(cols / g) {
            grp[..2].copy_from_slice(&scale.to_le_bytes());
            grp[2..GROUP_HEADER_BYTES].copy_from_slice(&min.to_le_bytes());
        }
    }
    m
}

/// Best time in seconds of `calls` runs of `f`.
pub fn best_of(calls: usize, mut f: impl FnMut()) -> f64 {
    let mut best = f64::INFINITY;
    for _ in 0..calls {
        let t0 = Instant::now();
        f();
        best = best.min(t0.elapsed().as_secs_f64());
    }
    best
}
