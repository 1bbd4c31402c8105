//! Long streams in constant memory: tokens go through a hybrid (attention
//! layers on the bounded Lambda KV cache) and pure recurrent models, and
//! the test checks that the step loop never allocates, that resident
//! memory does not grow, and that logits stay finite.
//!
//! `streams_stay_flat` runs 30,000 tokens per model (CI); the ignored
//! `million_token_streams` runs 1,000,000 and prints tokens/s and peak
//! resident memory (`cargo test --release -p eddy-tests --test long_stream
//! -- --ignored --nocapture`).

use eddy::file::AlignedBytes;
use eddy::{KvCacheOptions, KvFormat, Model, Session};
use eddy_cli::calibrate::CalibrationOptions;
use eddy_cli::convert::{convert_dir, WeightDtype};
use eddy_cli::quantize::quantize_model;
use eddy_cli::recipe::Recipe;
use eddy_tests::fixture_dir;
use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

/// Counts every allocation of this test binary.
struct CountingAllocator;

static ALLOCATIONS: AtomicUsize = AtomicUsize::new(0);

// SAFETY: forwards to the system allocator unchanged; only counts calls.
unsafe impl GlobalAlloc for CountingAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: same contract as the caller's.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as the caller's.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: same contract as the caller's.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: CountingAllocator = CountingAllocator;

/// Resident memory of this process in bytes (Linux `/proc/self/statm`).
fn resident_bytes() -> usize {
    let statm = std::fs::read_to_string("/proc/self/statm").expect("/proc/self/statm");
    let pages: usize = statm.split_whitespace().nth(1).and_then(|p| p.parse().ok()).expect("resident pages");
    pages * 4096
}

/// A fixture converted and quantized to W2A8 (the format the stream runs in
/// on a device), with the KV cache options if the model has attention.
fn w2a8_model(fixture: &str) -> AlignedBytes {
    let f32_bytes =
        AlignedBytes::copy_from(&convert_dir(&fixture_dir(fixture), WeightDtype::F32).unwrap().bytes);
    let model = Model::from_bytes(f32_bytes.as_slice()).unwrap();
    let recipe = Recipe::preset("w2a8").unwrap();
    let plain = CalibrationOptions { clip_search: false, activation_aware: false, gptq: false };
    let (bytes, _) = quantize_model(&model, &recipe, None, 0, plain, |_, _| {}).unwrap();
    AlignedBytes::copy_from(&bytes)
}

struct StreamReport {
    tokens: u64,
    seconds: f64,
    state_bytes: usize,
    rss_growth: isize,
    peak_rss: usize,
}

/// Stream `tokens` pseudo-random tokens through `model` one step at a time.
fn stream(model: &Model<'_>, tokens: u64) -> StreamReport {
    let mut session = Session::new_owned(model);
    let vocab = model.vocab_size() as u64;
    let mut seed = 0x2545_f491_4f6c_dd1du64;
    let mut next = || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        (seed % vocab) as u32
    };
    // Warm up: the first steps touch every page of state and scratch.
    for _ in 0..1000 {
        session.step(next()).unwrap();
    }
    let samples = 20u64;
    let (rss_start, allocations) = (resident_bytes(), ALLOCATIONS.load(Ordering::Relaxed));
    let (mut rss_low, mut rss_high) = (rss_start, rss_start);
    let t0 = Instant::now();
    for i in 0..tokens {
        let logits = session.step(next()).unwrap();
        if i % (tokens / samples).max(1) == 0 {
            assert!(logits.iter().all(|l| l.is_finite()), "non-finite logits at token {i}");
            let rss = resident_bytes();
            (rss_low, rss_high) = (rss_low.min(rss), rss_high.max(rss));
        }
    }
    let seconds = t0.elapsed().as_secs_f64();
    // Reading /proc allocates a String per sample: count those out.
    let step_allocations = ALLOCATIONS.load(Ordering::Relaxed) - allocations;
    assert!(
        step_allocations <= 4 * (samples as usize + 1),
        "the step loop allocated {step_allocations} times in {tokens} tokens"
    );
    assert!(session.logits().iter().all(|l| l.is_finite()));
    assert_eq!(session.position(), tokens + 1000);
    StreamReport {
        tokens,
        seconds,
        state_bytes: model.state_bytes(),
        rss_growth: rss_high as isize - rss_start as isize,
        peak_rss: rss_high.max(rss_low),
    }
}

/// The models streamed: two hybrids with a small Lambda window (so the
/// ring wraps thousands of times), and two pure recurrent models.
fn run_all(tokens: u64) {
    let window = KvCacheOptions { format: KvFormat::Q4, sinks: 4, window: 60 };
    for (fixture, kv) in [
        ("lfm2-tiny", Some(window)),
        ("recurrentgemma-tiny", None),
        ("mamba2-tiny", None),
        ("gru-tiny", None),
    ] {
        let bytes = w2a8_model(fixture);
        let mut model = Model::from_bytes(bytes.as_slice()).unwrap();
        if let Some(kv) = kv {
            model = model.with_kv_cache(kv).unwrap();
        }
        let r = stream(&model, tokens);
        println!(
            "{fixture}: {} tokens in {:.1} s ({:.0} tok/s), state {} bytes, peak RSS {:.1} MiB, RSS growth {} bytes",
            r.tokens,
            r.seconds,
            r.tokens as f64 / r.seconds,
            r.state_bytes,
            r.peak_rss as f64 / (1 << 20) as f64,
            r.rss_growth
        );
        // No allocation happens, so resident memory may only move by page
        // cache noise: a few pages, far less than one token's worth of a
        // growing cache over this many tokens.
        assert!(r.rss_growth < 256 * 1024, "{fixture}: resident memory grew by {} bytes", r.rss_growth);
    }
}

#[test]
fn streams_stay_flat() {
    run_all(30_000);
}

#[test]
#[ignore = "1M tokens per model: minutes; run with --ignored"]
fn million_token_streams() {
    run_all(1_000_000);
}
