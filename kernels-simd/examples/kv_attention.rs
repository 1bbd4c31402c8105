//! Attention of one query head over a KV cache (scores, scalar softmax,
//! weighted sum of values; see `benches/common/attention.rs`).
//!
//! `kv_attention` (no arguments): a table of nanoseconds per call for
//! window 2048, head_dim 64 and 128, every cache format with every kernel
//! set this CPU supports, and the ratio to the f16 cache with the scalar
//! kernels (median of 9 interleaved rounds of at least 20 ms each). Build
//! with `--release`.
//!
//! `kv_attention SET FORMAT HEAD_DIM WINDOW CALLS`: CALLS calls with one
//! set, for instruction counting under QEMU (see
//! `scripts/bench-kv-aarch64.sh`); prints a checksum of the output.

#[path = "../benches/common/attention.rs"]
mod attention;
#[path = "../benches/common/calls.rs"]
mod calls;

use attention::{softmax, Head};
use eddy_kernels::{compiled, supported, Kernels};
use eddy_quant::KvFormat;
use std::hint::black_box;
use std::process::ExitCode;
use std::time::Instant;

fn main() -> ExitCode {
    if std::env::args().len() <= 1 {
        table();
        return ExitCode::SUCCESS;
    }
    calls::checksum_main(
        "kv_attention",
        "[SET FORMAT HEAD_DIM WINDOW CALLS] (FORMAT: f32, f16, q8 or q4)",
        calls,
    )
}

fn calls(args: &[String]) -> Result<f64, String> {
    let [set, format, head_dim, window, calls] = args else {
        return Err(format!("expected 0 or 5 arguments, got {}", args.len()));
    };
    let k = calls::kernel_set(set, "available here", supported)?;
    let format = KvFormat::parse(format).ok_or(format!("unknown format `{format}`"))?;
    let number = |s: &String| s.parse::<usize>().map_err(|e| format!("`{s}`: {e}"));
    let (head_dim, window, calls) = (number(head_dim)?, number(window)?, number(calls)?);
    if !format.supports(head_dim) {
        return Err(format!("{} cannot hold head_dim {head_dim}", format.name()));
    }
    let head = Head::random(format, head_dim, window);
    let (mut scores, mut out) = (vec![0f32; window], vec![0f32; head_dim]);
    for _ in 0..calls {
        head.attend(k, black_box(&mut scores), &mut out);
        black_box(&mut out);
    }
    Ok(out.iter().map(|&v| v as f64).sum())
}

/// Nanoseconds per call of `f`, for `iters` calls.
fn time(iters: usize, mut f: impl FnMut()) -> f64 {
    let start = Instant::now();
    for _ in 0..iters {
        f();
    }
    start.elapsed().as_nanos() as f64 / iters as f64
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn table() {
    const WINDOW: usize = 2048;
    const ROUNDS: usize = 9;
    let sets: Vec<&Kernels> = compiled().iter().copied().filter(|k| supported(k)).collect();
    println!("attention, one query head, window {WINDOW}: ns per call (median of {ROUNDS} rounds)");
    println!("{:<9} {:<7} {:<10} {:>12} {:>18}", "head_dim", "cache", "kernels", "ns/call", "vs f16 scalar");
    for head_dim in [64usize, 128] {
        // (cache, kernel set) pairs; one head per cache format.
        let formats = [KvFormat::F16, KvFormat::Q4, KvFormat::Q8, KvFormat::F32];
        let heads: Vec<Head> = formats.iter().map(|&f| Head::random(f, head_dim, WINDOW)).collect();
        let cases: Vec<(&Head, &Kernels)> =
            heads.iter().flat_map(|h| sets.iter().map(move |k| (h, *k))).collect();
        let (mut scores, mut out) = (vec![0f32; WINDOW], vec![0f32; head_dim]);
        // Calls per measurement: at least 20 ms each.
        let iters: Vec<usize> = cases
            .iter()
            .map(|(h, k)| {
                let once = time(3, || h.attend(k, &mut scores, &mut out));
                ((20e6 / once) as usize).max(3)
            })
            .collect();
        let mut samples = vec![Vec::new(); cases.len()];
        for _ in 0..ROUNDS {
            for (c, ((h, k), n)) in cases.iter().zip(&iters).enumerate() {
                samples[c].push(time(*n, || h.attend(k, black_box(&mut scores), &mut out)));
            }
        }
        let ns: Vec<f64> = samples.into_iter().map(median).collect();
        let base = cases.iter().zip(&ns).find(|((h, k), _)| h.format == KvFormat::F16 && k.name == "scalar");
        let base = base.map(|(_, ns)| *ns).unwrap_or(f64::NAN);
        for ((h, k), ns) in cases.iter().zip(&ns) {
            println!("{head_dim:<9} {:<7} {:<10} {ns:>12.0} {:>17.2}x", h.format.name(), k.name, base / ns);
        }
        let mut scores: Vec<f32> = (0..WINDOW).map(|i| (i % 97) as f32 / 10.0).collect();
        let softmax_ns =
            median((0..ROUNDS).map(|_| time(2000, || softmax(black_box(&mut scores), 0.125))).collect());
        println!("{head_dim:<9} (softmax alone, included above: {softmax_ns:.0} ns)");
    }
}
