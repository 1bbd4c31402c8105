//! Load test of a running `eddy serve` on this machine: for each client
//! count, that many threads send completions back to back; prints
//! requests/s, generated tokens/s and p50/p99 latency.
//!
//! `cargo run --release -p eddy-cli --example serve_load -- http://127.0.0.1:8080 [CLIENTS=1,2,8] [REQUESTS=16] [MAX_TOKENS=32] [SECONDS=60]`
//!
//! Bounded: REQUESTS per client count, and no new request starts after
//! SECONDS. Loopback addresses only.

use serde_json::{json, Value};
use std::time::{Duration, Instant};

fn main() {
    if let Err(e) = run() {
        eprintln!("error: {e}");
        std::process::exit(1);
    }
}

fn arg<T: std::str::FromStr>(args: &[String], i: usize, default: T) -> Result<T, String> {
    match args.get(i) {
        None => Ok(default),
        Some(s) => s.parse().map_err(|_| format!("argument {i} `{s}` is not a number")),
    }
}

fn run() -> Result<(), String> {
    let args: Vec<String> = std::env::args().collect();
    let base = args.get(1).ok_or("usage: serve_load URL [CLIENTS] [REQUESTS] [MAX_TOKENS] [SECONDS]")?;
    let host = base.strip_prefix("http://").ok_or("the URL must start with http://")?;
    if !(host.starts_with("127.") || host.starts_with("localhost") || host.starts_with("[::1]")) {
        return Err(format!(
            "{base} is not a loopback address; this load test only runs against this machine"
        ));
    }
    let clients: Vec<usize> = args
        .get(2)
        .map_or("1,2,8", String::as_str)
        .split(',')
        .map(|c| c.trim().parse().map_err(|_| format!("`{c}` is not a client count")))
        .collect::<Result<_, _>>()?;
    let requests: usize = arg(&args, 3, 16)?;
    let max_tokens: usize = arg(&args, 4, 32)?;
    let seconds: u64 = arg(&args, 5, 60)?;
    let prompts = ["The meaning of life is", "Once upon a time", "A fool and his money", "Never trust a"];
    println!("| clients | requests | req/s | gen tok/s | p50 latency (s) | p99 latency (s) |");
    println!("|---:|---:|---:|---:|---:|---:|");
    for &n in &clients {
        let deadline = Instant::now() + Duration::from_secs(seconds);
        let next = std::sync::atomic::AtomicUsize::new(0);
        let t0 = Instant::now();
        let results: Vec<(f64, u64)> = std::thread::scope(|s| {
            let workers: Vec<_> = (0..n)
                .map(|_| {
                    s.spawn(|| {
                        let mut out = Vec::new();
                        loop {
                            let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                            if i >= requests || Instant::now() > deadline {
                                return out;
                            }
                            let body = json!({"prompt": prompts[i % prompts.len()], "max_tokens": max_tokens,
                                              "temperature": 0.8, "seed": i, "ignore_eos": true});
                            let start = Instant::now();
                            let reply: Result<Value, String> = ureq::post(format!("{base}/v1/completions"))
                                .send(body.to_string())
                                .map_err(|e| e.to_string())
                                .and_then(|mut r| r.body_mut().read_to_string().map_err(|e| e.to_string()))
                                .and_then(|t| serde_json::from_str(&t).map_err(|e| e.to_string()));
                            match reply {
                                Ok(v) => out.push((
                                    start.elapsed().as_secs_f64(),
                                    v["usage"]["completion_tokens"].as_u64().unwrap_or(0),
                                )),
                                Err(e) => eprintln!("request {i} failed: {e}"),
                            }
                        }
                    })
                })
                .collect();
            workers.into_iter().flat_map(|w| w.join().unwrap_or_default()).collect()
        });
        let wall = t0.elapsed().as_secs_f64();
        let mut latencies: Vec<f64> = results.iter().map(|r| r.0).collect();
        latencies.sort_by(f64::total_cmp);
        let pct = |p: f64| latencies.get(((latencies.len() as f64 * p).ceil() as usize).saturating_sub(1));
        let tokens: u64 = results.iter().map(|r| r.1).sum();
        match (pct(0.5), pct(0.99)) {
            (Some(p50), Some(p99)) => println!(
                "| {n} | {} | {:.2} | {:.1} | {p50:.3} | {p99:.3} |",
                results.len(),
                results.len() as f64 / wall,
                tokens as f64 / wall
            ),
            _ => println!("| {n} | 0 | - | - | - | - |"),
        }
    }
    Ok(())
}
