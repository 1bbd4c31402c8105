//! Per-kernel throughput at realistic shapes (mamba-130m's projections and
//! its 50280-row head), the multi-token product of prefill and the
//! selective scan, every compiled kernel set this CPU supports.
//! Run: cargo bench -p eddy-kernels   (names: "matvec ROWSxCOLS/FORMAT SET",
//! "matmat ROWSxCOLSxTOKENS/FORMAT SET", "scan CHANNELSxSTATES/SET",
//! "scan tokens CHANNELSxSTATESxTOKENS/SET [by token]",
//! "conv tokens CHANNELSxWIDTHxTOKENS/SET [by token]"; "by token" runs the
//! same work as one-token calls, as prefill did before the multi-token
//! kernels)

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use eddy_kernels::vector::{conv_silu_by_token, selective_scan_by_token};
use eddy_kernels::{
    compiled, supported, ActsI8, ConvTokens, ConvWeights, QuantMatrix, ScanArgs, ScanTokens, TokenRows,
};
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
                            QuantMatrix { format: f, bytes: black_box(&m), cols },
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

/// The multi-token product of prefill: mamba-130m's `in_proj` (3072x768)
/// and `out_proj` (768x1536) times 64 tokens, per kernel set that has one.
fn bench_matmat(c: &mut Criterion) {
    const TOKENS: usize = 64;
    for (rows, cols) in [(3072usize, 768usize), (768, 1536)] {
        let w: Vec<f32> = (0..rows * cols).map(|i| ((i * 7919) % 1000) as f32 / 500.0 - 1.0).collect();
        let x: Vec<f32> = (0..cols * TOKENS).map(|i| ((i * 31) % 100) as f32 / 50.0 - 1.0).collect();
        let mut group = c.benchmark_group(format!("matmat {rows}x{cols}x{TOKENS}"));
        group.sample_size(20);
        group.throughput(Throughput::Elements((rows * cols * TOKENS) as u64));
        // W2 g128: the w2a8 models' weights.
        for f in [
            TensorFormat::W2 { group: 64 },
            TensorFormat::W2 { group: 128 },
            TensorFormat::W4 { group: 64 },
            TensorFormat::W8 { group: 64 },
        ] {
            let g = f.group_size().unwrap_or(64);
            let rb = f.byte_len(1, cols as u64).unwrap() as usize;
            let mut m = vec![0u8; rb * rows];
            for r in 0..rows {
                quantize_row(f, &w[r * cols..(r + 1) * cols], &mut m[r * rb..(r + 1) * rb]).unwrap();
            }
            let (mut q, mut s, mut sums) =
                (vec![0i8; cols * TOKENS], vec![0f32; cols / g * TOKENS], vec![0i32; cols / g * TOKENS]);
            for t in 0..TOKENS {
                let (qs, ss, sm) = (
                    &mut q[t * cols..(t + 1) * cols],
                    &mut s[t * cols / g..(t + 1) * cols / g],
                    &mut sums[t * cols / g..(t + 1) * cols / g],
                );
                quantize_activations_i8(&x[t * cols..(t + 1) * cols], g, qs, ss, sm).unwrap();
            }
            let acts: Vec<ActsI8<'_>> = (0..TOKENS)
                .map(|t| ActsI8 {
                    q: &q[t * cols..(t + 1) * cols],
                    scales: &s[t * cols / g..(t + 1) * cols / g],
                    sums: &sums[t * cols / g..(t + 1) * cols / g],
                })
                .collect();
            let mut out = vec![0f32; rows * TOKENS];
            let mut perm = vec![0i8; eddy_kernels::matmat_scratch_len(cols, TOKENS)];
            for k in compiled().iter().filter(|k| supported(k)) {
                let Some(matmat) = k.matmat_i8 else { continue };
                group.bench_function(format!("{} {}", f.name(), k.name), |b| {
                    b.iter(|| {
                        matmat(
                            QuantMatrix { format: f, bytes: black_box(&m), cols },
                            &acts,
                            &mut out,
                            &mut perm,
                        )
                    })
                });
            }
        }
        group.finish();
    }
}

/// One token of mamba-130m's selective scan (1536 channels, 16 states).
fn bench_scan(c: &mut Criterion) {
    let (channels, d_state) = (1536usize, 16usize);
    let wave =
        |n: usize, k: usize| -> Vec<f32> { (0..n).map(|i| ((i * k) % 100) as f32 / 50.0 - 1.0).collect() };
    let a: Vec<f32> = (0..channels * d_state).map(|i| -1.0 - (i % d_state) as f32).collect();
    let (d, dt, u, z) = (wave(channels, 7), wave(channels, 13), wave(channels, 17), wave(channels, 19));
    let (b_in, c_in) = (wave(d_state, 23), wave(d_state, 29));
    let args = ScanArgs { a: &a, d: &d, dt: &dt, u: &u, b: &b_in, c: &c_in, z: &z, d_state };
    let mut group = c.benchmark_group(format!("scan {channels}x{d_state}"));
    group.throughput(Throughput::Elements((channels * d_state) as u64));
    for k in compiled().iter().filter(|k| supported(k)) {
        let (mut state, mut y) = (vec![0f32; channels * d_state], vec![0f32; channels]);
        group.bench_function(k.name, |bench| {
            bench.iter(|| (k.selective_scan)(black_box(&args), &mut state, &mut y))
        });
    }
    group.finish();
}

/// A prefill chunk's selective scan as the runtime calls it: one block of
/// 128 channels (d_state 16) over 64 tokens.
fn bench_scan_tokens(c: &mut Criterion) {
    let (channels, d_state, tokens) = (128usize, 16usize, 64usize);
    let wave =
        |n: usize, k: usize| -> Vec<f32> { (0..n).map(|i| ((i * k) % 100) as f32 / 50.0 - 1.0).collect() };
    let a: Vec<f32> = (0..channels * d_state).map(|i| -1.0 - (i % d_state) as f32).collect();
    let d = wave(channels, 7);
    let (dt, u, z) = (wave(channels * tokens, 13), wave(channels * tokens, 17), wave(channels * tokens, 19));
    let (b_in, c_in) = (wave(d_state * tokens, 23), wave(d_state * tokens, 29));
    let args = ScanTokens {
        a: &a,
        d: &d,
        dt: TokenRows { data: &dt, stride: channels },
        u: TokenRows { data: &u, stride: channels },
        z: TokenRows { data: &z, stride: channels },
        b: TokenRows { data: &b_in, stride: d_state },
        c: TokenRows { data: &c_in, stride: d_state },
        d_state,
        tokens,
    };
    let mut group = c.benchmark_group(format!("scan tokens {channels}x{d_state}x{tokens}"));
    group.throughput(Throughput::Elements((channels * d_state * tokens) as u64));
    for k in compiled().iter().filter(|k| supported(k)) {
        let (mut state, mut y) = (vec![0f32; channels * d_state], vec![0f32; channels * tokens]);
        group.bench_function(k.name, |bench| {
            bench.iter(|| (k.selective_scan_tokens)(black_box(&args), &mut state, &mut y))
        });
        // The same work as one-token calls (what prefill ran before).
        group.bench_function(format!("{} by token", k.name), |bench| {
            bench.iter(|| selective_scan_by_token(k.selective_scan, black_box(&args), &mut state, &mut y))
        });
    }
    group.finish();
}

/// A prefill chunk's convolution + SiLU as the runtime calls it with one
/// thread: mamba-130m's 1536 channels, width 4 with bias, 64 tokens read
/// in place from `in_proj`-sized rows.
fn bench_conv_tokens(c: &mut Criterion) {
    let (channels, width, tokens) = (1536usize, 4usize, 64usize);
    let wave =
        |n: usize, k: usize| -> Vec<f32> { (0..n).map(|i| ((i * k) % 100) as f32 / 50.0 - 1.0).collect() };
    let (weight, bias, xz) = (wave(channels * width, 7), wave(channels, 11), wave(2 * channels * tokens, 13));
    let args = ConvTokens {
        conv: ConvWeights { weight: &weight, bias: Some(&bias), width },
        xs: TokenRows { data: &xz, stride: 2 * channels },
        channels,
        tokens,
    };
    let mut group = c.benchmark_group(format!("conv tokens {channels}x{width}x{tokens}"));
    group.throughput(Throughput::Elements((channels * tokens) as u64));
    for k in compiled().iter().filter(|k| supported(k)) {
        let (mut window, mut out) = (vec![0f32; channels * (width - 1)], vec![0f32; channels * tokens]);
        group.bench_function(k.name, |bench| {
            bench.iter(|| (k.conv_silu_tokens)(black_box(&args), &mut window, &mut out))
        });
        group.bench_function(format!("{} by token", k.name), |bench| {
            bench.iter(|| conv_silu_by_token(k.conv_silu, black_box(&args), &mut window, &mut out))
        });
    }
    group.finish();
}

criterion_group!(benches, bench, bench_matmat, bench_scan, bench_scan_tokens, bench_conv_tokens);
criterion_main!(benches);
