//! Wall-clock time of one 2:4 sparse integer matrix-vector product against
//! the dense products of the same shape, for every kernel set this CPU
//! supports: 2:4 W4 against dense W4 (same recipe) and dense W2 (about the
//! same bytes), at mamba-130m's in_proj and out_proj shapes. Best of many
//! calls; "cold" cycles through copies of the matrix totalling over 64 MiB,
//! as decode reads weights from memory.
//!
//! `cargo run --release -p eddy-kernels --example sparse24_time [CALLS]`

use eddy_kernels::{compiled, supported, ActsI8, Kernels, QuantMatrix, SparseMatrix};
use eddy_quant::{quantize_activations_i8, Sparse24, TensorFormat};
use std::hint::black_box;

mod common;
use common::{best_of, matrix};

/// A random 2:4 matrix: random kept codes and positions (any position byte
/// is valid as long as the two positions differ, which the timing does
/// not depend on), sane group headers.
fn sparse_matrix(f: Sparse24, rows: usize, cols: usize, seed: u64) -> Vec<u8> {
    // Random bytes of the dense format's (larger) size, cut to length.
    let mut m = matrix(f.dense(), rows, cols, seed);
    m.truncate(f.byte_len(rows as u64, cols as u64).unwrap_or(0) as usize);
    let (gb, code_bytes) = (f.group_bytes(), f.group_size() / 2 * f.code_bits() as usize / 8);
    let (scale, min) = (eddy_quant::f32_to_f16_bits(0.01), eddy_quant::f32_to_f16_bits(-0.02));
    for grp in m.chunks_exact_mut(gb) {
        grp[..2].copy_from_slice(&scale.to_le_bytes());
        grp[2..4].copy_from_slice(&min.to_le_bytes());
        for (i, b) in grp[4 + code_bytes..].iter_mut().enumerate() {
            // Blocks keep (0, 2) and (1, 3) alternately.
            *b = if i % 2 == 0 { 0b1000 | (0b1101 << 4) } else { 0b1101 | (0b1000 << 4) };
        }
    }
    m
}

fn main() {
    let calls: usize = std::env::args().nth(1).and_then(|s| s.parse().ok()).unwrap_or(50);
    let sets: Vec<&Kernels> = compiled().iter().copied().filter(|k| supported(k)).collect();
    println!("| shape | weights | set | bytes | warm µs | cold µs |");
    println!("|---|---|---|---:|---:|---:|");
    for (name, rows, cols) in [("in_proj", 1536usize, 768usize), ("out_proj", 768, 1536)] {
        let g = 64;
        let x: Vec<f32> = (0..cols).map(|i| ((i * 7919) % 2001) as f32 / 1000.0 - 1.0).collect();
        let (mut q, mut sc, mut su) = (vec![0i8; cols], vec![0f32; cols / g], vec![0i32; cols / g]);
        quantize_activations_i8(&x, g, &mut q, &mut sc, &mut su).expect("finite");
        let acts = ActsI8 { q: &q, scales: &sc, sums: &su };
        let mut out = vec![0f32; rows];
        let mut perm = vec![0i8; cols];
        let sparse = Sparse24::new(TensorFormat::W4 { group: 64 }).expect("integer format");
        let sm = sparse_matrix(sparse, rows, cols, 7);
        let s_copies: Vec<Vec<u8>> = (0..(64 << 20) / sm.len() + 1).map(|_| sm.clone()).collect();
        for k in &sets {
            let warm = best_of(calls, || {
                (k.matvec_sparse24_i8)(
                    SparseMatrix { format: sparse, bytes: black_box(&sm), cols },
                    &acts,
                    &mut out,
                )
            });
            let mut next = 0;
            let cold = best_of(calls, || {
                next = (next + 1) % s_copies.len();
                let bytes = black_box(&s_copies[next]);
                (k.matvec_sparse24_i8)(SparseMatrix { format: sparse, bytes, cols }, &acts, &mut out)
            });
            println!(
                "| {name} {rows}x{cols} | 2:4 w4g64 | {} | {} | {:.1} | {:.1} |",
                k.name,
                sm.len(),
                warm * 1e6,
                cold * 1e6
            );
        }
        for f in [TensorFormat::W4 { group: 64 }, TensorFormat::W2 { group: 64 }] {
            let m = matrix(f, rows, cols, 11);
            let copies: Vec<Vec<u8>> = (0..(64 << 20) / m.len() + 1).map(|_| m.clone()).collect();
            for k in &sets {
                let warm = best_of(calls, || {
                    (k.matvec_i8)(
                        QuantMatrix { format: f, bytes: black_box(&m), cols },
                        &acts,
                        &mut out,
                        &mut perm,
                    )
                });
                let mut next = 0;
                let cold = best_of(calls, || {
                    next = (next + 1) % copies.len();
                    let bytes = black_box(&copies[next]);
                    (k.matvec_i8)(QuantMatrix { format: f, bytes, cols }, &acts, &mut out, &mut perm)
                });
                println!(
                    "| {name} {rows}x{cols} | dense {} | {} | {} | {:.1} | {:.1} |",
                    f.name(),
                    k.name,
                    m.len(),
                    warm * 1e6,
                    cold * 1e6
                );
            }
        }
    }
}
