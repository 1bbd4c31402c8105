//! Runs one kernel set's vector kernel (see `eddy_kernels::vector`) a
//! given number of times at mamba-130m's shapes, for instruction counting
//! under QEMU (see `scripts/bench-vector-aarch64.sh`): the setup is cheap,
//! so the difference between two call counts is the kernel's.
//!
//! `vector_calls SET KERNEL CALLS`, KERNEL one of
//! - `scan`: one token of the selective scan, 1536 channels, d_state 16;
//! - `conv`: one token of the width-4 causal convolution + SiLU with bias,
//!   1536 channels;
//! - `quant`: int8 quantization of 1536 activations in groups of 64.
//!
//! Prints a checksum of the outputs (so the work cannot be optimised away)
//! to stdout.

#[path = "../benches/common/calls.rs"]
mod calls;

use eddy_kernels::{ConvWeights, ScanArgs};
use std::hint::black_box;
use std::process::ExitCode;

/// Channels (`d_inner` of mamba-130m).
const CHANNELS: usize = 1536;
/// State size per channel.
const D_STATE: usize = 16;
/// Convolution width.
const WIDTH: usize = 4;
/// Activation quantization group.
const GROUP: usize = 64;

fn main() -> ExitCode {
    calls::checksum_main("vector_calls", "SET KERNEL CALLS (KERNEL: scan, conv or quant)", run)
}

/// `n` deterministic values in [-1, 1) (a different sequence per `k`).
fn wave(n: usize, k: usize) -> Vec<f32> {
    (0..n).map(|i| ((i * k) % 997) as f32 / 498.5 - 1.0).collect()
}

fn run(args: &[String]) -> Result<f64, String> {
    let [set, kernel, calls] = args else {
        return Err(format!("expected 3 arguments, got {}", args.len()));
    };
    // Any compiled set: counting under QEMU picks the CPU to emulate.
    let k = calls::kernel_set(set, "compiled here", |_| true)?;
    let calls: usize = calls.parse().map_err(|e| format!("`{calls}`: {e}"))?;
    match kernel.as_str() {
        "scan" => {
            let a: Vec<f32> = (0..CHANNELS * D_STATE).map(|i| -((1 + i % D_STATE) as f32)).collect();
            let (d, dt, u, z) = (wave(CHANNELS, 3), wave(CHANNELS, 5), wave(CHANNELS, 7), wave(CHANNELS, 11));
            let (b, c) = (wave(D_STATE, 13), wave(D_STATE, 17));
            let args = ScanArgs { a: &a, d: &d, dt: &dt, u: &u, b: &b, c: &c, z: &z, d_state: D_STATE };
            let (mut state, mut y) = (vec![0f32; CHANNELS * D_STATE], vec![0f32; CHANNELS]);
            for _ in 0..calls {
                (k.selective_scan)(black_box(&args), &mut state, &mut y);
                black_box(&mut y);
            }
            Ok(y.iter().chain(&state).map(|&x| x as f64).sum())
        }
        "conv" => {
            let (weight, bias, xs) = (wave(CHANNELS * WIDTH, 19), wave(CHANNELS, 23), wave(CHANNELS, 29));
            let mut window = wave(CHANNELS * (WIDTH - 1), 31);
            let mut out = vec![0f32; CHANNELS];
            let w = ConvWeights { weight: &weight, bias: Some(&bias), width: WIDTH };
            for _ in 0..calls {
                (k.conv_silu)(&w, &mut window, black_box(&xs), &mut out);
                black_box(&mut out);
            }
            Ok(out.iter().chain(&window).map(|&x| x as f64).sum())
        }
        "quant" => {
            let x: Vec<f32> = wave(CHANNELS, 37).iter().map(|v| v * 4.0).collect();
            let groups = CHANNELS / GROUP;
            let (mut q, mut scales, mut sums) = (vec![0i8; CHANNELS], vec![0f32; groups], vec![0i32; groups]);
            for _ in 0..calls {
                (k.quantize_acts)(black_box(&x), GROUP, &mut q, &mut scales, &mut sums)
                    .map_err(|e| format!("quantize_acts: {e:?}"))?;
                black_box(&mut q);
            }
            let codes: i64 = q.iter().map(|&c| c as i64).sum();
            Ok(codes as f64 + scales.iter().map(|&s| s as f64).sum::<f64>())
        }
        other => Err(format!("unknown kernel `{other}`")),
    }
}
