//! `eddy bench`: prefill and decode throughput in the style of
//! llama-bench (pp = prompt processing, tg = text generation), plus the
//! memory-bandwidth roofline of decode measured in the same run.

use eddy::{Model, Session, SessionError, Workers};
use serde::Serialize;
use std::time::Instant;

/// What to measure.
#[derive(Clone, Debug)]
pub struct BenchPlan {
    /// Prompt lengths to prefill (each one test, `pp<N>`).
    pub prompts: Vec<usize>,
    /// Tokens to generate (`tg<N>`; 0 skips decode).
    pub decode: usize,
    /// Thread counts to run every test with.
    pub threads: Vec<usize>,
    /// Repetitions per test (mean and standard deviation are reported).
    pub reps: usize,
    /// Tokens per batched prefill chunk.
    pub chunk: usize,
}

/// One measured test.
#[derive(Clone, Debug, Serialize)]
pub struct BenchRow {
    /// `pp512`, `tg128`, ...
    pub test: String,
    /// Threads used.
    pub threads: usize,
    /// Mean tokens per second over the repetitions.
    pub tokens_per_s: f64,
    /// Standard deviation of tokens per second.
    pub stddev: f64,
}

/// Deterministic prompt tokens for a benchmark.
pub fn bench_tokens(n: usize, vocab: u32) -> Vec<u32> {
    (0..n.max(1) as u32).map(|i| (i.wrapping_mul(7919).wrapping_add(13)) % vocab.max(1)).collect()
}

fn mean_std(xs: &[f64]) -> (f64, f64) {
    let n = xs.len().max(1) as f64;
    let mean = xs.iter().sum::<f64>() / n;
    let var = xs.iter().map(|x| (x - mean) * (x - mean)).sum::<f64>() / n;
    (mean, var.sqrt())
}

fn argmax(logits: &[f32]) -> u32 {
    crate::sample::argmax(logits)
}

impl BenchPlan {
    /// Timed runs in the plan: (prompt sizes + decode) x threads x reps.
    pub fn runs(&self) -> usize {
        (self.prompts.len() + usize::from(self.decode > 0)) * self.threads.len() * self.reps.max(1)
    }
}

/// Run every test of `plan` on `model` (its kernel set is kept; its thread
/// setting is replaced per row). `progress(done, test)` is called after
/// each timed run, with the runs done so far (of [`BenchPlan::runs`]).
pub fn run_plan(
    model: &Model<'_>,
    plan: &BenchPlan,
    mut progress: impl FnMut(usize, &str),
) -> Result<Vec<BenchRow>, BenchError> {
    let vocab = model.vocab_size() as u32;
    let mut rows = Vec::new();
    let mut done = 0;
    let mut tick = |test: &str| {
        done += 1;
        progress(done, test);
    };
    for &threads in &plan.threads {
        let mut m = *model;
        m.set_workers(Workers::threads(threads).map_err(|e| BenchError::Threads(e.to_string()))?);
        for &n in &plan.prompts {
            let tokens = bench_tokens(n, vocab);
            let mut rates = Vec::new();
            for _ in 0..plan.reps.max(1) {
                let mut session = Session::new_owned(&m);
                let t0 = Instant::now();
                session.prefill_chunked(&tokens, plan.chunk, false, |_, _| {})?;
                rates.push(n as f64 / t0.elapsed().as_secs_f64().max(1e-9));
                tick(&format!("pp{n}, {threads} thread(s)"));
            }
            let (mean, sd) = mean_std(&rates);
            rows.push(BenchRow { test: format!("pp{n}"), threads, tokens_per_s: mean, stddev: sd });
        }
        if plan.decode > 0 {
            let mut rates = Vec::new();
            for _ in 0..plan.reps.max(1) {
                let mut session = Session::new_owned(&m);
                // The first step warms caches; generation is timed after it.
                let mut next = argmax(session.step(1 % vocab)?);
                let t0 = Instant::now();
                for _ in 0..plan.decode {
                    next = argmax(session.step(next)?);
                }
                rates.push(plan.decode as f64 / t0.elapsed().as_secs_f64().max(1e-9));
                tick(&format!("tg{}, {threads} thread(s)", plan.decode));
            }
            let (mean, sd) = mean_std(&rates);
            rows.push(BenchRow {
                test: format!("tg{}", plan.decode),
                threads,
                tokens_per_s: mean,
                stddev: sd,
            });
        }
    }
    Ok(rows)
}

/// Failure of a benchmark run.
#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    /// The thread pool could not be created.
    #[error("cannot start the thread pool: {0}")]
    Threads(String),
    /// The session rejected the input.
    #[error(transparent)]
    Session(#[from] SessionError),
}

/// Bytes of weights one decode step reads: every tensor once, except an
/// untied embedding table, of which only one row is read, and stacked
/// experts, of which only the `top_k` chosen are read.
pub fn decode_bytes_per_token(model: &Model<'_>) -> u64 {
    let tied = model.file().hparam(eddy::HParam::TiedEmbeddings) == Some(1);
    let experts = model.file().hparam(eddy::HParam::NExperts).unwrap_or(0) as u64;
    let top_k = model.file().hparam(eddy::HParam::ExpertsPerToken).unwrap_or(0) as u64;
    model
        .file()
        .tensors()
        .map(|t| {
            let bytes = t.data.len() as u64;
            if t.name == "embed.weight" && !tied {
                bytes / t.rows().max(1)
            } else if experts > 0 && t.name.contains(".moe.experts_") {
                bytes / experts * top_k
            } else {
                bytes
            }
        })
        .sum()
}

/// Streaming read bandwidth in bytes/s with `threads` threads reading
/// disjoint parts of one `bytes`-long buffer (far larger than the caches)
/// at once: the best of `reps` passes.
pub fn read_bandwidth(bytes: usize, reps: usize, threads: usize) -> f64 {
    let threads = threads.max(1);
    let words = vec![1u64; bytes / 8];
    let per_thread = (words.len() / threads / 8 * 8).max(8);
    let mut best = 0.0f64;
    for _ in 0..reps.max(1) {
        let t0 = Instant::now();
        let read: usize = std::thread::scope(|s| {
            let parts = words.chunks(per_thread).take(threads);
            let jobs: Vec<_> = parts.map(|part| s.spawn(move || sum_words(part))).collect();
            jobs.into_iter().map(|j| j.join().unwrap_or(0)).sum()
        });
        let secs = t0.elapsed().as_secs_f64();
        let expected: usize = words.chunks(per_thread).take(threads).map(|p| p.len() / 8 * 8).sum();
        assert_eq!(read, expected, "bandwidth buffer was not read");
        best = best.max((read * 8) as f64 / secs.max(1e-9));
    }
    best
}

/// Sum of `words` (all ones: the count of whole 8-word chunks read).
fn sum_words(words: &[u64]) -> usize {
    // Eight independent sums so the loop is bound by loads, not adds.
    let mut acc = [0u64; 8];
    for chunk in words.chunks_exact(8) {
        for (a, w) in acc.iter_mut().zip(chunk) {
            *a = a.wrapping_add(*w);
        }
    }
    std::hint::black_box(acc.iter().fold(0u64, |s, a| s.wrapping_add(*a))) as usize
}

/// The decode roofline of one model on this machine.
#[derive(Clone, Debug, Serialize)]
pub struct Roofline {
    /// Weight bytes read per decoded token.
    pub bytes_per_token: u64,
    /// Threads reading at once when the bandwidth was measured.
    pub threads: usize,
    /// Measured read bandwidth with that many threads, bytes/s.
    pub read_bytes_per_s: f64,
    /// Tokens/s if decode were limited only by reading the weights.
    pub roofline_tokens_per_s: f64,
}

impl Roofline {
    /// Roofline of `model` for the bandwidth measured with `threads`.
    pub fn new(model: &Model<'_>, threads: usize, read_bytes_per_s: f64) -> Self {
        let bytes_per_token = decode_bytes_per_token(model);
        Roofline {
            bytes_per_token,
            threads,
            read_bytes_per_s,
            roofline_tokens_per_s: read_bytes_per_s / bytes_per_token.max(1) as f64,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statistics() {
        let (m, s) = mean_std(&[1.0, 3.0]);
        assert_eq!((m, s), (2.0, 1.0));
        assert_eq!(bench_tokens(3, 5).len(), 3);
        assert!(bench_tokens(100, 5).iter().all(|&t| t < 5));
    }

    #[test]
    fn bandwidth_is_positive() {
        assert!(read_bandwidth(1 << 20, 1, 1) > 0.0);
        assert!(read_bandwidth(1 << 20, 1, 3) > 0.0);
    }
}
