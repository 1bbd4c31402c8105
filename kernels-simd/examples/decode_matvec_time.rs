//! Cold (from memory) time of one integer matrix-vector product at
//! lfm2-350m's decode shapes for every kernel set this CPU supports, next to
//! a plain streaming read of the same bytes in the same run (the ratio is
//! the kernel's share of the read bandwidth). Copies of each matrix total
//! over 256 MiB, so every weight comes from memory, as in decode. Prints the
//! best of many calls, which is robust on a shared, loaded machine.
//!
//! `cargo run --release -p eddy-kernels --example decode_matvec_time [CALLS [NAME]]`

use eddy_kernels::{compiled, supported, ActsI8, Kernels, QuantMatrix};
use eddy_quant::{quantize_activations_i8, TensorFormat};
use std::hint::black_box;

mod common;
use common::{best_of, matrix};

/// Sum of `bytes` as u64 words with eight independent sums (a plain
/// streaming read).
fn read_all(bytes: &[u8]) -> u64 {
    let mut acc = [0u64; 8];
    for chunk in bytes.chunks_exact(64) {
        for (a, w) in acc.iter_mut().zip(chunk.chunks_exact(8)) {
            *a = a.wrapping_add(u64::from_le_bytes(w.try_into().unwrap_or([0; 8])));
        }
    }
    acc.iter().fold(0, |s, a| s.wrapping_add(*a))
}

fn main() {
    let calls: usize = std::env::args().nth(1).and_then(|s| s.parse().ok()).unwrap_or(30);
    // An optional second argument keeps the matrices whose name contains it.
    let only = std::env::args().nth(2).unwrap_or_default();
    let shapes: [(&str, TensorFormat, usize, usize); 4] = [
        ("attn", TensorFormat::W2 { group: 128 }, 1024, 1024),
        ("ffn w1", TensorFormat::W2 { group: 128 }, 4608, 1024),
        ("ffn w2", TensorFormat::W2 { group: 128 }, 1024, 4608),
        ("head", TensorFormat::W8 { group: 64 }, 65536, 1024),
    ];
    let sets: Vec<&Kernels> =
        compiled().iter().copied().filter(|k| supported(k) && k.name != "scalar").collect();
    println!("| matrix | format | set | warm µs | cold µs | cold GB/s | plain read GB/s | share |");
    println!("|---|---|---|---:|---:|---:|---:|---:|");
    for (name, f, rows, cols) in shapes.into_iter().filter(|s| s.0.contains(only.as_str())) {
        let m = matrix(f, rows, cols, rows as u64 * 31 + cols as u64);
        let copies: Vec<Vec<u8>> = (0..(256 << 20) / m.len() + 2).map(|_| m.clone()).collect();
        let g = f.group_size().unwrap_or(32);
        let xs: Vec<f32> = (0..cols).map(|i| ((i * 7919) % 2001) as f32 / 1000.0 - 1.0).collect();
        let (mut q, mut sc, mut su) = (vec![0i8; cols], vec![0f32; cols / g], vec![0i32; cols / g]);
        quantize_activations_i8(&xs, g, &mut q, &mut sc, &mut su).expect("finite");
        let acts = ActsI8 { q: &q, scales: &sc, sums: &su };
        let mut out = vec![0f32; rows];
        let mut perm = vec![0i8; cols];
        let mut next = 0;
        let read = best_of(calls, || {
            next = (next + 1) % copies.len();
            black_box(read_all(black_box(&copies[next])));
        });
        for k in &sets {
            let cold = best_of(calls, || {
                next = (next + 1) % copies.len();
                (k.matvec_i8)(
                    QuantMatrix { format: f, bytes: black_box(&copies[next]), cols },
                    &acts,
                    &mut out,
                    &mut perm,
                );
            });
            let warm = best_of(calls * 10, || {
                (k.matvec_i8)(
                    QuantMatrix { format: f, bytes: black_box(&m), cols },
                    &acts,
                    &mut out,
                    &mut perm,
                );
            });
            println!(
                "| {name} {rows}x{cols} | {} | {} | {:.1} | {:.1} | {:.2} | {:.2} | {:.0}% |",
                f.name(),
                k.name,
                warm * 1e6,
                cold * 1e6,
                m.len() as f64 / cold / 1e9,
                m.len() as f64 / read / 1e9,
                100.0 * read / cold
            );
            black_box(&out);
        }
    }
}
