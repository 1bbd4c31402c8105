//! Per-kernel throughput at realistic shapes (mamba-130m's projections and
//! its 50280-row head), every compiled kernel set this CPU supports.
//! Run: cargo bench -p eddy-kernels   (names: "matvec ROWSxCOLS/FORMAT SET")

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use eddy_kernels::{compiled, supported, ActsI8};
use eddy_quant::{quantize_activations_i8, quantize_row, TensorFormat};
use std::hint::black_box;

fn bench(c: &mut Criterion) {
    let shapes = [(1536usize, 768usize), (768, 1536), (50280, 768)];
    let formats =
        [TensorFormat::W2 { group: 64 }, TensorFormat::W4 { group: 64 }, TensorFormat::W8 { group: 64 }];
    for (rows, cols) in shapes {
        let w: Vec<f32> = (0..rows * cols).map(|i| ((i * 7919) % 1000) as f32 / 500.0 - 1.0).collect();
        let x: Vec<f32> = (0..cols).map(|i| ((i * 31) % 100) as f32 / 50.0 - 1.0).collect();
        let mut group = c.benchmark_group(format!("matvec {rows}x{cols}"));
        if rows * cols > 10_000_000 {
            // The head: one call is milliseconds on the scalar path.
            group.sample_size(10);
        }
        group.throughput(Throughput::Elements((rows * cols) as u64));
        for f in formats {
            let g = f.group_size().unwrap_or(64);
            let rb = f.byte_len(1, cols as u64).unwrap() as usize;
            let mut m = vec![0u8; rb * rows];
            for r in 0..rows {
                quantize_row(f, &w[r * cols..(r + 1) * cols], &mut m[r * rb..(r + 1) * rb]).unwrap();
            }
            let (mut q, mut s, mut sums) = (vec![0i8; cols], vec![0f32; cols / g], vec![0i32; cols / g]);
            quantize_activations_i8(&x, g, &mut q, &mut s, &mut sums).unwrap();
            let mut out = vec![0f32; rows];
            let mut perm = vec![0i8; cols];
            for k in compiled().iter().filter(|k| supported(k)) {
                group.bench_function(format!("{} {}", f.name(), k.name), |b| {
                    b.iter(|| {
                        (k.matvec_i8)(
                            f,
                            black_box(&m),
                            cols,
                            &ActsI8 { q: &q, scales: &s, sums: &sums },
                            &mut out,
                            &mut perm,
                        )
                    })
                });
            }
        }
        for k in compiled().iter().filter(|k| supported(k)) {
            let mut out = vec![0f32; rows];
            group.bench_function(format!("f32 {}", k.name), |b| {
                b.iter(|| (k.matvec_f32)(black_box(&w), cols, &x, &mut out))
            });
        }
        group.finish();
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
