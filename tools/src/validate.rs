//! Checks on what a user hands the `eddy` command before any work starts:
//! option ranges (threads, sampling), input files that are not regular
//! files, the memory a session asks for, and non-finite logits while a
//! model runs. Each failure is one error a user can act on.

use eddy::{Model, OwnedSession, Session};
use std::fs::File;
use std::path::Path;

/// Threads allowed per core: more only add switching, and a typo such as
/// `--threads 100000` would otherwise spawn (and wait on) every one.
pub const MAX_THREADS_PER_CORE: usize = 8;

/// Environment variable that sets the largest session (state + scratch)
/// in bytes; the default is the machine's physical memory.
pub const STATE_LIMIT_VAR: &str = "EDDY_MAX_STATE_BYTES";

/// Why an option or input was refused.
#[derive(Debug, thiserror::Error)]
pub enum ValidateError {
    /// A thread count outside `1..=MAX_THREADS_PER_CORE * cores`.
    #[error("`{given}` is not a usable thread count: use 1 to {max} ({MAX_THREADS_PER_CORE} per core on {cores} core(s); more only add switching)")]
    Threads {
        /// What was given.
        given: String,
        /// The largest count accepted.
        max: usize,
        /// Cores of this machine.
        cores: usize,
    },
    /// A sampling option outside its range.
    #[error("`{given}` is not a usable {option}: {why}")]
    Sampling {
        /// The option, e.g. `--top-p`.
        option: &'static str,
        /// What was given.
        given: String,
        /// The accepted range.
        why: &'static str,
    },
    /// An input path that is not a regular file (a FIFO, device or
    /// directory would block or mislead the reader).
    #[error("{path}: not a regular file ({kind}); give a file")]
    NotRegular {
        /// The path.
        path: String,
        /// What it is.
        kind: &'static str,
    },
    /// A session larger than the memory limit.
    #[error("this model's session needs {needed} bytes (state {state} + scratch {scratch}), more than the limit of {limit} bytes ({source_of_limit}); use a smaller --kv-window or --state-bits, or raise {STATE_LIMIT_VAR}")]
    StateTooLarge {
        /// State plus scratch bytes.
        needed: u64,
        /// State bytes.
        state: u64,
        /// Scratch bytes.
        scratch: u64,
        /// The limit.
        limit: u64,
        /// Where the limit comes from.
        source_of_limit: &'static str,
    },
    /// `EDDY_MAX_STATE_BYTES` is not a number.
    #[error("{STATE_LIMIT_VAR}=`{0}` is not a byte count")]
    BadLimit(String),
    /// The model produced NaN or infinite logits.
    #[error("the model produced {what} logits at position {position} (token index {index}); its weights or state are not finite")]
    NonFiniteLogits {
        /// "NaN" or "infinite".
        what: &'static str,
        /// Sequence position whose logits these are.
        position: u64,
        /// First non-finite vocabulary index.
        index: usize,
    },
    /// A context length beyond what a position can count.
    #[error("--ctx {0} is too long: context lengths go up to {max} tokens", max = u32::MAX)]
    ContextTooLong(usize),
    /// The session buffers could not be allocated.
    #[error("{0}")]
    Session(#[from] eddy::SessionError),
}

/// Cores of this machine (1 if unknown).
fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// A thread count given as text (`EDDY_THREADS`): see [`check_threads`].
pub fn parse_threads(s: &str) -> Result<usize, ValidateError> {
    let n = s.trim().parse::<usize>().unwrap_or(0);
    check_threads(n).map_err(|_| threads_error(s))
}

/// A thread count: 1 to [`MAX_THREADS_PER_CORE`] times the cores.
pub fn check_threads(n: usize) -> Result<usize, ValidateError> {
    let max = cores().saturating_mul(MAX_THREADS_PER_CORE);
    if (1..=max).contains(&n) {
        Ok(n)
    } else {
        Err(threads_error(&n.to_string()))
    }
}

fn threads_error(given: &str) -> ValidateError {
    let cores = cores();
    ValidateError::Threads {
        given: given.to_string(),
        max: cores.saturating_mul(MAX_THREADS_PER_CORE),
        cores,
    }
}

/// Sampling options: a finite temperature >= 0 (0 = greedy) and a top-p
/// above 0 and at most 1 (1 = off).
pub fn check_sampling(c: &crate::sample::SamplerConfig) -> Result<(), ValidateError> {
    if !(c.temperature.is_finite() && c.temperature >= 0.0) {
        return Err(ValidateError::Sampling {
            option: "--temperature",
            given: c.temperature.to_string(),
            why: "use a finite number >= 0 (0 = greedy)",
        });
    }
    if !(c.top_p > 0.0 && c.top_p <= 1.0) {
        return Err(ValidateError::Sampling {
            option: "--top-p",
            given: c.top_p.to_string(),
            why: "use a number above 0 and at most 1 (1 = off)",
        });
    }
    Ok(())
}

/// Refuse a path that exists but is not a regular file (after symlinks):
/// opening a FIFO for reading blocks until a writer comes, a directory or
/// device is never a model. A missing path passes (the open reports it).
pub fn require_regular(path: &Path) -> Result<(), ValidateError> {
    let Ok(meta) = std::fs::metadata(path) else { return Ok(()) };
    let ft = meta.file_type();
    if ft.is_file() {
        return Ok(());
    }
    let kind = if ft.is_dir() {
        "a directory"
    } else if is_fifo(&ft) {
        "a FIFO"
    } else {
        "a device or socket"
    };
    Err(ValidateError::NotRegular { path: path.display().to_string(), kind })
}

#[cfg(unix)]
fn is_fifo(ft: &std::fs::FileType) -> bool {
    std::os::unix::fs::FileTypeExt::is_fifo(ft)
}

#[cfg(not(unix))]
fn is_fifo(_: &std::fs::FileType) -> bool {
    false
}

/// Open `path` for reading if it is a regular file (see
/// [`require_regular`]), as an I/O error otherwise.
pub fn open_regular(path: &Path) -> std::io::Result<File> {
    if let Err(ValidateError::NotRegular { kind, .. }) = require_regular(path) {
        let message = format!("not a regular file ({kind})");
        return Err(std::io::Error::new(std::io::ErrorKind::InvalidInput, message));
    }
    File::open(path)
}

/// Read all of `path` if it is a regular file.
pub fn read_regular(path: &Path) -> std::io::Result<Vec<u8>> {
    let mut bytes = Vec::new();
    std::io::Read::read_to_end(&mut open_regular(path)?, &mut bytes)?;
    Ok(bytes)
}

/// The largest session allowed: `EDDY_MAX_STATE_BYTES`, else the physical
/// memory (from /proc/meminfo), else none.
fn state_limit() -> Result<Option<(u64, &'static str)>, ValidateError> {
    if let Ok(v) = std::env::var(STATE_LIMIT_VAR) {
        let n = v.trim().parse::<u64>().map_err(|_| ValidateError::BadLimit(v.clone()))?;
        return Ok(Some((n, "set by EDDY_MAX_STATE_BYTES")));
    }
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    let total_kb = meminfo
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse::<u64>().ok());
    Ok(total_kb.map(|kb| (kb.saturating_mul(1024), "this machine's physical memory")))
}

/// A session for `model`, refused with the sizes if it exceeds the state
/// limit, and allocated fallibly (an allocator failure is an error naming
/// the bytes, never an abort).
pub fn new_session<'m, 'a>(model: &'m Model<'a>) -> Result<OwnedSession<'m, 'a>, ValidateError> {
    let (state, scratch) = (model.state_bytes() as u64, model.scratch_bytes() as u64);
    let needed = state.saturating_add(scratch);
    if let Some((limit, source_of_limit)) = state_limit()? {
        if needed > limit {
            return Err(ValidateError::StateTooLarge { needed, state, scratch, limit, source_of_limit });
        }
    }
    Ok(Session::try_new_owned(model)?)
}

/// Refuse logits with a NaN or infinity (`position`: the sequence position
/// they belong to). One pass over the row: cheap beside the step itself.
pub fn check_logits(logits: &[f32], position: u64) -> Result<(), ValidateError> {
    match logits.iter().position(|v| !v.is_finite()) {
        None => Ok(()),
        Some(index) => {
            let what = if logits[index].is_nan() { "NaN" } else { "infinite" };
            Err(ValidateError::NonFiniteLogits { what, position, index })
        }
    }
}

/// Let a write past the file-size limit (`ulimit -f`) fail with an error
/// instead of killing the process, so temporary outputs are removed.
pub fn ignore_file_size_signal() {
    #[cfg(unix)]
    // SAFETY: installing SIG_IGN for SIGXFSZ at startup, before any thread
    // is spawned, touches no Rust state.
    unsafe {
        libc::signal(libc::SIGXFSZ, libc::SIG_IGN);
    }
}

/// Context lengths (`eddy memory --ctx`) as the runtime's `u32` token
/// counts: a larger one is refused with the bound, not wrapped.
pub fn context_lengths(counts: &[usize]) -> Result<Vec<u32>, ValidateError> {
    counts.iter().map(|&c| u32::try_from(c).map_err(|_| ValidateError::ContextTooLong(c))).collect()
}

/// An error and its causes as one line, each cause once: typed errors
/// often print their cause in their own message too, which `{:#}` would
/// repeat ("...: No such file (os error 2): No such file (os error 2)").
pub fn error_line(e: &anyhow::Error) -> String {
    let mut line = String::new();
    for cause in e.chain() {
        let text = cause.to_string();
        if line.contains(&text) {
            continue;
        }
        if !line.is_empty() {
            line.push_str(": ");
        }
        line.push_str(&text);
    }
    line
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_line_says_each_cause_once() {
        let io = std::io::Error::new(std::io::ErrorKind::NotFound, "no such file");
        let e = anyhow::Error::new(io).context("cannot read x: no such file").context("convert failed");
        assert_eq!(error_line(&e), "convert failed: cannot read x: no such file");
    }

    #[test]
    fn thread_counts_are_bounded_by_the_cores() {
        assert_eq!(parse_threads("1").unwrap(), 1);
        let max = cores() * MAX_THREADS_PER_CORE;
        assert_eq!(parse_threads(&max.to_string()).unwrap(), max);
        for bad in ["0", "-1", "x", "18446744073709551615", &(max + 1).to_string()] {
            assert!(parse_threads(bad).unwrap_err().to_string().contains("per core"), "{bad}");
        }
    }

    #[test]
    fn sampling_options_have_ranges() {
        use crate::sample::SamplerConfig;
        let cfg = |temperature, top_p| SamplerConfig { temperature, top_k: 0, top_p, seed: 0 };
        assert!(check_sampling(&cfg(0.0, 1.0)).is_ok());
        assert!(check_sampling(&cfg(0.7, 0.9)).is_ok());
        for (t, p) in
            [(f32::NAN, 1.0), (f32::INFINITY, 1.0), (-1.0, 1.0), (1.0, 2.0), (1.0, 0.0), (1.0, f32::NAN)]
        {
            assert!(check_sampling(&cfg(t, p)).is_err(), "{t} {p}");
        }
    }

    #[test]
    fn non_finite_logits_name_the_position_and_index() {
        assert!(check_logits(&[0.0, 1.0], 3).is_ok());
        let e = check_logits(&[0.0, f32::NAN], 7).unwrap_err().to_string();
        assert!(e.contains("NaN") && e.contains("position 7") && e.contains("index 1"), "{e}");
        let e = check_logits(&[f32::NEG_INFINITY], 0).unwrap_err().to_string();
        assert!(e.contains("infinite"), "{e}");
    }
}
