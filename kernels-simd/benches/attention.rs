//! Attention of one query head over a window of 2048 cached rows (head_dim
//! 64 and 128): scores, scalar softmax, weighted sum of values, for each
//! cache format with the scalar kernels and with every SIMD set this CPU
//! supports. Run: cargo bench -p eddy-kernels --bench attention
//! (names: "attention w2048 dDIM/FORMAT SET"). For a quick table of ns per
//! call and ratios, see `examples/kv_attention.rs`.

#[path = "common/attention.rs"]
mod attention;

use attention::Head;
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use eddy_kernels::{compiled, supported};
use eddy_quant::KvFormat;

fn bench(c: &mut Criterion) {
    let window = 2048;
    for head_dim in [64usize, 128] {
        let mut group = c.benchmark_group(format!("attention w{window} d{head_dim}"));
        group.throughput(Throughput::Elements((window * head_dim) as u64));
        for format in [KvFormat::F16, KvFormat::Q4, KvFormat::Q8, KvFormat::F32] {
            let head = Head::random(format, head_dim, window);
            let (mut scores, mut out) = (vec![0f32; window], vec![0f32; head_dim]);
            for k in compiled().iter().filter(|k| supported(k)) {
                group.bench_function(format!("{} {}", format.name(), k.name), |b| {
                    b.iter(|| head.attend(k, &mut scores, &mut out))
                });
            }
        }
        group.finish();
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
