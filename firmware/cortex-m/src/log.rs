//! The log: one macro call per line, sent either as text on the board's
//! serial port (`embedded_io::Write`) or, with the `defmt` feature, as a
//! defmt frame through the board's global defmt logger.
//!
//! Format strings use only `{}` and `{:#x}` with integers and `&str`, which
//! mean the same in `core::fmt` and defmt, so each log line is written once
//! for both paths. With defmt, the strings stay in the ELF (not in flash)
//! and `defmt-print -e ELF` turns the frames back into these lines.

/// Write one log line: as a defmt frame at `$level` (`info`, `error`) with
/// the `defmt` feature, else as text on `$out`.
macro_rules! log_line {
    ($level:ident, $out:expr, $fmt:literal $(, $arg:expr)*) => {{
        #[cfg(feature = "defmt")]
        {
            let _ = &$out;
            defmt::$level!($fmt $(, $arg)*);
        }
        #[cfg(not(feature = "defmt"))]
        {
            // A failed write cannot be reported anywhere else.
            let _ = embedded_io::Write::write_fmt(
                &mut *$out,
                format_args!(concat!($fmt, "\n") $(, $arg)*),
            );
        }
    }};
}

/// Log a line at info level: `say!(serial, "format", args...)`.
macro_rules! say {
    ($out:expr, $fmt:literal $(, $arg:expr)* $(,)?) => {
        $crate::log::log_line!(info, $out, $fmt $(, $arg)*)
    };
}

/// Log a line at error level: `shout!(serial, "format", args...)`.
macro_rules! shout {
    ($out:expr, $fmt:literal $(, $arg:expr)* $(,)?) => {
        $crate::log::log_line!(error, $out, $fmt $(, $arg)*)
    };
}

pub(crate) use {log_line, say, shout};

/// Capacity of a formatted error message; longer ones are cut (the error
/// code, logged beside it, is still exact).
pub const MESSAGE_CAPACITY: usize = 200;

/// Format a `Display` value (an eddy error) into a fixed-capacity string,
/// so both log paths can send it as a `&str`. Text past
/// [`MESSAGE_CAPACITY`] bytes is dropped at a character boundary.
pub fn message(value: &dyn core::fmt::Display) -> heapless::String<MESSAGE_CAPACITY> {
    /// Keeps what fits instead of failing the whole write.
    struct Truncating(heapless::String<MESSAGE_CAPACITY>);
    impl core::fmt::Write for Truncating {
        fn write_str(&mut self, s: &str) -> core::fmt::Result {
            for c in s.chars() {
                if self.0.push(c).is_err() {
                    break;
                }
            }
            Ok(())
        }
    }
    let mut text = Truncating(heapless::String::new());
    let _ = core::fmt::write(&mut text, format_args!("{value}"));
    text.0
}
