//! The `eddy` binary's larger subcommands, one module each (the argument
//! types and the small commands stay in `main.rs`).

pub(crate) mod bench;
pub(crate) mod chat;
pub(crate) mod eval;
pub(crate) mod inspect;
pub(crate) mod out;
pub(crate) mod run;

use anyhow::{Context, Result};

/// Comma-separated counts (`128,512`); zeros are dropped.
pub(crate) fn parse_counts(list: &str, what: &str) -> Result<Vec<usize>> {
    list.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| s.parse::<usize>().with_context(|| format!("{what}: `{s}` is not a number")))
        .filter(|n| !matches!(n, Ok(0)))
        .collect()
}
