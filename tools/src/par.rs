//! Splitting the tools' own heavy loops (clip search, GPTQ, calibration
//! statistics) across threads. Every split is over independent rows, so the
//! results do not depend on the thread count.

use std::sync::atomic::{AtomicUsize, Ordering};

/// Threads requested by the user (0: one per core).
static THREADS: AtomicUsize = AtomicUsize::new(0);

/// Use `n` threads for the tools' loops (0: one per core).
pub fn set_threads(n: usize) {
    THREADS.store(n, Ordering::Relaxed);
}

/// Threads the tools' loops split across.
pub fn threads() -> usize {
    match THREADS.load(Ordering::Relaxed) {
        0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
        n => n,
    }
}

/// Call `job(first_row, piece)` on consecutive pieces of `data`, a matrix of
/// rows of `row_len` items, split at the row indices `bounds` (increasing,
/// from 0 to the row count), each piece on its own thread; the first error
/// is returned.
pub fn try_for_row_ranges<T: Send, E: Send>(
    data: &mut [T],
    row_len: usize,
    bounds: &[usize],
    job: impl Fn(usize, &mut [T]) -> Result<(), E> + Sync,
) -> Result<(), E> {
    let row_len = row_len.max(1);
    let mut pieces = Vec::with_capacity(bounds.len());
    let mut rest = data;
    for w in bounds.windows(2) {
        let (piece, tail) = rest.split_at_mut(((w[1] - w[0]) * row_len).min(rest.len()));
        pieces.push((w[0], piece));
        rest = tail;
    }
    if pieces.len() <= 1 {
        return pieces.into_iter().try_for_each(|(first, piece)| job(first, piece));
    }
    let job = &job;
    std::thread::scope(|s| {
        let handles: Vec<_> =
            pieces.into_iter().map(|(first, piece)| s.spawn(move || job(first, piece))).collect();
        // A panicking job is a bug; re-raise it here rather than hide it.
        handles.into_iter().try_for_each(|h| h.join().unwrap_or_else(|e| std::panic::resume_unwind(e)))
    })
}

/// [`try_for_row_ranges`] with `rows` split evenly over [`threads`] (at
/// least `min_rows` per piece, so small matrices stay on one thread).
pub fn try_for_rows<T: Send, E: Send>(
    data: &mut [T],
    row_len: usize,
    min_rows: usize,
    job: impl Fn(usize, &mut [T]) -> Result<(), E> + Sync,
) -> Result<(), E> {
    let rows = data.len() / row_len.max(1);
    let pieces = threads().min(rows / min_rows.max(1)).max(1);
    let bounds: Vec<usize> = (0..=pieces).map(|i| i * rows / pieces).collect();
    try_for_row_ranges(data, row_len, &bounds, job)
}
