//! Standard output that may be a closed pipe (`eddy run ... | head`): the
//! reader going away ends the program quietly with status 0.

use anyhow::Result;
use std::io::Write;

/// Whether an error is (caused by) a closed pipe on our output.
pub(crate) fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.downcast_ref::<std::io::Error>().is_some_and(|e| e.kind() == std::io::ErrorKind::BrokenPipe)
    })
}

/// `println!` panics when stdout is a closed pipe: treat that panic as
/// the end of the output (exit 0), and leave every other panic as it is.
pub(crate) fn exit_quietly_on_broken_pipe() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let message = info
            .payload()
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| info.payload().downcast_ref::<&str>().copied())
            .unwrap_or("");
        if message.contains("failed printing to stdout") && message.contains("Broken pipe") {
            std::process::exit(0);
        }
        default(info)
    }));
}

/// Streamed text output, flushed after every piece.
pub(crate) struct Out {
    stdout: std::io::Stdout,
}

impl Out {
    /// Standard output.
    pub(crate) fn stdout() -> Self {
        Out { stdout: std::io::stdout() }
    }

    /// Write and flush `text`.
    pub(crate) fn write(&mut self, text: &str) -> Result<()> {
        let mut lock = self.stdout.lock();
        lock.write_all(text.as_bytes())?;
        lock.flush()?;
        Ok(())
    }
}
