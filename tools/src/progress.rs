//! Progress of a long phase on stderr: a bar on a terminal, else plain
//! lines (logs, CI, `2> file`) at most every few seconds; both with an ETA,
//! and the phase's time when it ends.

use std::io::IsTerminal;
use std::time::{Duration, Instant};

/// Seconds between plain progress lines.
const LINE_EVERY: Duration = Duration::from_secs(5);

/// One phase's progress, in units of `total` (tokens, weights, ...).
pub struct Progress {
    phase: String,
    unit: String,
    total: u64,
    start: Instant,
    last_line: Instant,
    bar: Option<indicatif::ProgressBar>,
}

impl Progress {
    /// Start a phase of `total` units.
    pub fn new(phase: &str, total: u64, unit: &str) -> Self {
        let bar = std::io::stderr().is_terminal().then(|| {
            let bar = indicatif::ProgressBar::new(total);
            let template =
                format!("{phase}: {{bar:40}} {{human_pos}}/{{human_len}} {unit} (eta {{eta}}) {{msg}}");
            bar.set_style(
                indicatif::ProgressStyle::with_template(&template)
                    .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
            );
            bar
        });
        let now = Instant::now();
        Progress { phase: phase.to_string(), unit: unit.to_string(), total, start: now, last_line: now, bar }
    }

    /// `done` units of the phase are done.
    pub fn set(&mut self, done: u64) {
        self.set_with(done, "")
    }

    /// `done` units are done; `note` (e.g. a running figure) is shown beside.
    pub fn set_with(&mut self, done: u64, note: &str) {
        if let Some(bar) = &self.bar {
            bar.set_position(done);
            bar.set_message(note.to_string());
            return;
        }
        if self.last_line.elapsed() < LINE_EVERY || done >= self.total {
            return;
        }
        self.last_line = Instant::now();
        let elapsed = self.start.elapsed().as_secs_f64();
        let eta = if done > 0 { elapsed * (self.total - done) as f64 / done as f64 } else { f64::NAN };
        eprintln!(
            "{}: {done}/{} {} ({:.0}%), {elapsed:.0} s, eta {eta:.0} s{}{note}",
            self.phase,
            self.total,
            self.unit,
            100.0 * done as f64 / self.total.max(1) as f64,
            if note.is_empty() { "" } else { ", " }
        );
    }

    /// End the phase, printing its time.
    pub fn finish(self) -> Duration {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
        let took = self.start.elapsed();
        eprintln!("{}: {} {} in {:.1} s", self.phase, self.total, self.unit, took.as_secs_f64());
        took
    }
}
