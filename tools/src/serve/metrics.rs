//! Server counters, rendered in the Prometheus text format for `/metrics`.

use super::state_cache::CacheStats;
use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};

/// Counters and gauges updated by the HTTP and generating threads.
#[derive(Default)]
pub struct Metrics {
    /// HTTP requests received (any path).
    pub requests: AtomicU64,
    /// Requests answered with a 4xx or 5xx status.
    pub requests_failed: AtomicU64,
    /// Requests refused because the queue was full (503).
    pub requests_rejected: AtomicU64,
    /// Generations stopped because the client went away.
    pub generations_cancelled: AtomicU64,
    /// Generations finished (any reason but cancellation).
    pub generations_finished: AtomicU64,
    /// Prompt tokens of all generations.
    pub prompt_tokens: AtomicU64,
    /// Prompt tokens not read because a saved state covered them.
    pub prompt_tokens_cached: AtomicU64,
    /// Tokens generated.
    pub completion_tokens: AtomicU64,
    /// Microseconds spent reading prompts.
    pub prefill_micros: AtomicU64,
    /// Microseconds spent generating.
    pub decode_micros: AtomicU64,
    /// Generations running now.
    pub active_sessions: AtomicU64,
    /// Generations waiting for a free session.
    pub queued: AtomicU64,
}

impl Metrics {
    /// Add one to a counter.
    pub fn bump(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }

    /// Add `n` to a counter.
    pub fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }

    /// One less on a gauge.
    pub fn drop_one(gauge: &AtomicU64) {
        gauge.fetch_sub(1, Ordering::Relaxed);
    }

    /// The Prometheus text exposition of every metric; `state_bytes` is
    /// the size of one conversation's state.
    pub fn render(&self, cache: CacheStats, state_bytes: usize, sessions: usize) -> String {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        let secs = |c: &AtomicU64| get(c) as f64 / 1e6;
        let rate =
            |tokens: u64, micros: u64| if micros == 0 { 0.0 } else { tokens as f64 * 1e6 / micros as f64 };
        let rows: [(&str, &str, &str, f64); 18] = [
            ("eddy_requests_total", "counter", "HTTP requests received", get(&self.requests) as f64),
            (
                "eddy_requests_failed_total",
                "counter",
                "Requests answered with an error status",
                get(&self.requests_failed) as f64,
            ),
            (
                "eddy_requests_rejected_total",
                "counter",
                "Requests refused with 503 because the queue was full",
                get(&self.requests_rejected) as f64,
            ),
            (
                "eddy_generations_finished_total",
                "counter",
                "Generations that ran to a stop",
                get(&self.generations_finished) as f64,
            ),
            (
                "eddy_generations_cancelled_total",
                "counter",
                "Generations stopped because the client disconnected",
                get(&self.generations_cancelled) as f64,
            ),
            (
                "eddy_prompt_tokens_total",
                "counter",
                "Prompt tokens of all generations",
                get(&self.prompt_tokens) as f64,
            ),
            (
                "eddy_prompt_tokens_cached_total",
                "counter",
                "Prompt tokens resumed from a saved state instead of read",
                get(&self.prompt_tokens_cached) as f64,
            ),
            (
                "eddy_completion_tokens_total",
                "counter",
                "Tokens generated",
                get(&self.completion_tokens) as f64,
            ),
            (
                "eddy_prefill_seconds_total",
                "counter",
                "Time spent reading prompts",
                secs(&self.prefill_micros),
            ),
            ("eddy_decode_seconds_total", "counter", "Time spent generating", secs(&self.decode_micros)),
            (
                "eddy_prefill_tokens_per_second",
                "gauge",
                "Prompt tokens read per second of prefill since start",
                rate(
                    get(&self.prompt_tokens).saturating_sub(get(&self.prompt_tokens_cached)),
                    get(&self.prefill_micros),
                ),
            ),
            (
                "eddy_decode_tokens_per_second",
                "gauge",
                "Tokens generated per second of decode since start",
                rate(get(&self.completion_tokens), get(&self.decode_micros)),
            ),
            ("eddy_active_sessions", "gauge", "Generations running now", get(&self.active_sessions) as f64),
            (
                "eddy_queued_requests",
                "gauge",
                "Generations waiting for a free session",
                get(&self.queued) as f64,
            ),
            ("eddy_sessions", "gauge", "Sessions that can generate at once (--parallel)", sessions as f64),
            ("eddy_state_bytes", "gauge", "Bytes of one conversation state", state_bytes as f64),
            (
                "eddy_state_cache_bytes",
                "gauge",
                "Bytes of saved states (and their token keys) in memory",
                cache.memory_bytes as f64,
            ),
            (
                "eddy_state_cache_entries",
                "gauge",
                "Saved conversation states in memory",
                cache.memory_entries as f64,
            ),
        ];
        let mut out = String::new();
        for (name, kind, help, value) in rows {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {value}");
        }
        let _ = writeln!(
            out,
            "# HELP eddy_state_spill_bytes Bytes of saved states spilled to --state-dir\n\
             # TYPE eddy_state_spill_bytes gauge\neddy_state_spill_bytes {}\n\
             # HELP eddy_state_spill_entries Saved states spilled to --state-dir\n\
             # TYPE eddy_state_spill_entries gauge\neddy_state_spill_entries {}",
            cache.disk_bytes, cache.disk_entries
        );
        out
    }
}
