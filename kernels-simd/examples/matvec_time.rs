//! Wall-clock time of one integer matrix-vector product (and of one
//! multi-token product per token) for every kernel set this CPU supports,
//! at the shapes of mamba-130m's layers and head. Prints the best of many
//! calls, which is robust on a shared, loaded machine, and the read
//! bandwidth that time implies (weight bytes / time). "cold" cycles through
//! copies of the matrix totalling over 64 MiB (more than the last-level
//! cache), as decode does, where every weight comes from memory; "warm"
//! repeats one copy, which stays in cache when it fits.
//!
//! Also times one token of the selective scan (mamba-130m: 1536 channels,
//! d_state 16) with each set's recurrent kernels.
//!
//! `cargo run --release -p eddy-kernels --example matvec_time [CALLS]`

use eddy_kernels::{compiled, supported, ActsI8, Kernels, QuantMatrix, ScanArgs};
use eddy_quant::{quantize_activations_i8, TensorFormat};
use std::hint::black_box;

mod common;
use common::{best_of, matrix};

fn main() {
    let calls: usize = std::env::args().nth(1).and_then(|s| s.parse().ok()).unwrap_or(50);
    let shapes: [(&str, TensorFormat, usize, usize); 6] = [
        ("in_proj", TensorFormat::W2 { group: 128 }, 1536, 768),
        ("out_proj", TensorFormat::W2 { group: 128 }, 768, 1536),
        ("x_proj", TensorFormat::W2 { group: 128 }, 80, 1536),
        ("in_proj", TensorFormat::W2 { group: 64 }, 1536, 768),
        ("in_proj", TensorFormat::W4 { group: 64 }, 1536, 768),
        ("head", TensorFormat::W8 { group: 64 }, 50280, 768),
    ];
    let sets: Vec<&Kernels> = compiled().iter().copied().filter(|k| supported(k)).collect();
    let tokens = 64;
    println!("| matrix | format | set | warm µs | warm GB/s | cold µs | cold GB/s | matmat µs/token ({tokens} tokens) |");
    println!("|---|---|---|---:|---:|---:|---:|---:|");
    for (name, f, rows, cols) in shapes {
        let m = matrix(f, rows, cols, rows as u64 * 31 + cols as u64);
        let copies: Vec<Vec<u8>> = (0..(64 << 20) / m.len() + 1).map(|_| m.clone()).collect();
        let g = f.group_size().unwrap_or(32);
        let xs: Vec<f32> = (0..tokens * cols).map(|i| ((i * 7919) % 2001) as f32 / 1000.0 - 1.0).collect();
        let (mut q, mut sc, mut su) =
            (vec![0i8; tokens * cols], vec![0f32; tokens * cols / g], vec![0i32; tokens * cols / g]);
        for t in 0..tokens {
            let (a, b) = (t * cols, t * cols / g);
            let (qs, ss, us) = (&mut q[a..a + cols], &mut sc[b..b + cols / g], &mut su[b..b + cols / g]);
            quantize_activations_i8(&xs[a..a + cols], g, qs, ss, us).expect("finite");
        }
        let acts: Vec<ActsI8<'_>> = (0..tokens)
            .map(|t| ActsI8 {
                q: &q[t * cols..(t + 1) * cols],
                scales: &sc[t * cols / g..(t + 1) * cols / g],
                sums: &su[t * cols / g..(t + 1) * cols / g],
            })
            .collect();
        let mut out = vec![0f32; tokens * rows];
        let mut perm = vec![0i8; eddy_kernels::matmat_scratch_len(cols, tokens)];
        for k in &sets {
            let calls = if k.name == "scalar" || rows > 10_000 { calls.div_ceil(5) } else { calls };
            let one = best_of(calls, || {
                (k.matvec_i8)(
                    QuantMatrix { format: f, bytes: black_box(&m), cols },
                    &acts[0],
                    &mut out[..rows],
                    &mut perm,
                );
            });
            let mut next = 0;
            let cold = best_of(calls, || {
                next = (next + 1) % copies.len();
                (k.matvec_i8)(
                    QuantMatrix { format: f, bytes: black_box(&copies[next]), cols },
                    &acts[0],
                    &mut out[..rows],
                    &mut perm,
                );
            });
            let many = best_of(calls.div_ceil(10), || match k.matmat_i8 {
                Some(mm) => {
                    mm(QuantMatrix { format: f, bytes: black_box(&m), cols }, &acts, &mut out, &mut perm)
                }
                None => {
                    for (a, o) in acts.iter().zip(out.chunks_exact_mut(rows)) {
                        (k.matvec_i8)(QuantMatrix { format: f, bytes: black_box(&m), cols }, a, o, &mut perm);
                    }
                }
            });
            println!(
                "| {name} {rows}x{cols} | {} | {} | {:.1} | {:.2} | {:.1} | {:.2} | {:.1} |",
                f.name(),
                k.name,
                one * 1e6,
                m.len() as f64 / one / 1e9,
                cold * 1e6,
                m.len() as f64 / cold / 1e9,
                many * 1e6 / tokens as f64
            );
            black_box(&out);
        }
    }
    scan_times(&sets, calls);
}

/// One token of the selective scan at mamba-130m's shape, per set.
fn scan_times(sets: &[&Kernels], calls: usize) {
    let (channels, ds) = (1536, 16);
    let wave =
        |n: usize, k: usize| -> Vec<f32> { (0..n).map(|i| ((i * k) % 997) as f32 / 498.5 - 1.0).collect() };
    let a: Vec<f32> = (0..channels * ds).map(|i| -((1 + i % ds) as f32)).collect();
    let (d, dt, u, z) = (wave(channels, 3), wave(channels, 5), wave(channels, 7), wave(channels, 11));
    let (b, c) = (wave(ds, 13), wave(ds, 17));
    let args = ScanArgs { a: &a, d: &d, dt: &dt, u: &u, b: &b, c: &c, z: &z, d_state: ds };
    let mut state = vec![0f32; channels * ds];
    let mut y = vec![0f32; channels];
    println!();
    println!("| selective scan {channels}x{ds} | set | µs |");
    println!("|---|---|---:|");
    for k in sets {
        let scan = k.selective_scan;
        let t = best_of(calls, || scan(black_box(&args), &mut state, &mut y));
        println!("| one token | {} | {:.1} |", k.name, t * 1e6);
    }
    black_box(&y);
}
