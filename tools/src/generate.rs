//! Token-by-token generation shared by `eddy run` and `eddy chat`:
//! sampling, streaming text, and stopping at an end-of-sequence token, a
//! stop string or a token budget.

use crate::sample::Sampler;
use crate::text::TextCodec;
use anyhow::Result;
use eddy::OwnedSession;

/// When generation ends early.
#[derive(Clone, Debug, Default)]
pub struct StopRules {
    /// Token ids that end the reply (not printed, not consumed).
    pub eos_token_ids: Vec<u32>,
    /// Strings that end the reply (not printed).
    pub stop_strings: Vec<String>,
}

/// Why generation ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StopReason {
    /// An end-of-sequence token was sampled.
    Eos,
    /// A stop string appeared in the text.
    StopString,
    /// The token budget was used up.
    Length,
}

impl std::fmt::Display for StopReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            StopReason::Eos => "stopped at end-of-sequence",
            StopReason::StopString => "stopped at a stop string",
            StopReason::Length => "token limit",
        })
    }
}

/// What one generation produced.
#[derive(Clone, Debug)]
pub struct Generated {
    /// The generated ids (without a final EOS), all consumed by the session.
    pub ids: Vec<u32>,
    /// The text as printed (without a stop string).
    pub text: String,
    /// Why it ended.
    pub reason: StopReason,
}

/// Holds back streamed text that might be the start of a stop string, so
/// that a stop string is never printed.
#[derive(Debug, Default)]
pub struct StopFilter {
    stops: Vec<String>,
    held: String,
}

impl StopFilter {
    /// A filter for these stop strings (empty ones are ignored).
    pub fn new(stops: &[String]) -> Self {
        StopFilter { stops: stops.iter().filter(|s| !s.is_empty()).cloned().collect(), held: String::new() }
    }

    /// Add generated text; the text safe to print now, and whether a stop
    /// string was completed (then the text before it is returned).
    pub fn push(&mut self, piece: &str) -> (String, bool) {
        self.held.push_str(piece);
        if let Some(at) = self.stops.iter().filter_map(|s| self.held.find(s.as_str())).min() {
            let out = self.held[..at].to_string();
            self.held.clear();
            return (out, true);
        }
        // Keep the longest tail that is a prefix of some stop string.
        let keep = self
            .held
            .char_indices()
            .map(|(i, _)| i)
            .find(|&i| self.stops.iter().any(|s| s.starts_with(&self.held[i..])))
            .unwrap_or(self.held.len());
        let out = self.held[..keep].to_string();
        self.held.drain(..keep);
        (out, false)
    }

    /// The text still held back (generation ended without a stop string).
    pub fn finish(&mut self) -> String {
        std::mem::take(&mut self.held)
    }
}

/// Generate up to `max_tokens` after the session's current logits, calling
/// `emit` with each piece of text (or, without a codec, each id, preceded
/// by a comma after the first); `before` are the ids consumed just before
/// (the prompt's tail), the context a token's text is decoded in. Every
/// returned id has been consumed by the session, so it can continue (or be
/// saved) right after.
pub fn generate(
    session: &mut OwnedSession<'_, '_>,
    sampler: &mut Sampler,
    codec: Option<&TextCodec>,
    before: &[u32],
    max_tokens: usize,
    rules: &StopRules,
    emit: &mut dyn FnMut(&str) -> Result<()>,
) -> Result<Generated> {
    let mut filter = StopFilter::new(&rules.stop_strings);
    let mut ids = Vec::new();
    let mut context = before[before.len().saturating_sub(8)..].to_vec();
    let mut text = String::new();
    let mut reason = StopReason::Length;
    for _ in 0..max_tokens {
        crate::validate::check_logits(session.logits(), session.position().saturating_sub(1))?;
        let next = sampler.sample(session.logits());
        if rules.eos_token_ids.contains(&next) {
            reason = StopReason::Eos;
            break;
        }
        ids.push(next);
        context.push(next);
        session.step(next)?;
        let piece = match codec {
            Some(c) => c.decode_increment(&context)?,
            None if ids.len() == 1 => next.to_string(),
            None => format!(",{next}"),
        };
        let (out, stopped) = filter.push(&piece);
        text.push_str(&out);
        emit(&out)?;
        if stopped {
            reason = StopReason::StopString;
            break;
        }
    }
    if reason != StopReason::StopString {
        let rest = filter.finish();
        text.push_str(&rest);
        emit(&rest)?;
    }
    Ok(Generated { ids, text, reason })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(stops: &[&str], pieces: &[&str]) -> (String, bool) {
        let stops: Vec<String> = stops.iter().map(|s| s.to_string()).collect();
        let mut f = StopFilter::new(&stops);
        let mut out = String::new();
        for p in pieces {
            let (o, stopped) = f.push(p);
            out.push_str(&o);
            if stopped {
                return (out, true);
            }
        }
        out.push_str(&f.finish());
        (out, false)
    }

    #[test]
    fn held_back_text_is_never_sent_early() {
        let stops = vec!["STOP".to_string()];
        let mut f = StopFilter::new(&stops);
        assert_eq!(f.push("go ST"), ("go ".to_string(), false));
        assert_eq!(f.push("O"), (String::new(), false));
        assert_eq!(f.push("P!"), (String::new(), true));
    }

    #[test]
    fn a_stop_string_split_over_pieces_is_never_printed() {
        assert_eq!(run(&["\nUser:"], &["Hi", " there", "\nUs", "er:", " more"]), ("Hi there".into(), true));
        assert_eq!(run(&["END"], &["abcEN", "Dxyz"]), ("abc".into(), true));
    }

    #[test]
    fn held_text_comes_out_when_the_stop_string_does_not_complete() {
        assert_eq!(run(&["END"], &["abcE", "Nx", "y"]), ("abcENxy".into(), false));
        assert_eq!(run(&["END"], &["abcEN"]), ("abcEN".into(), false));
        assert_eq!(run(&[], &["a", "b"]), ("ab".into(), false));
    }

    #[test]
    fn the_earliest_of_several_stop_strings_wins() {
        assert_eq!(run(&["yz", "b"], &["abcxyz"]), ("a".into(), true));
    }

    #[test]
    fn multibyte_text_is_cut_on_character_boundaries() {
        assert_eq!(run(&["é!"], &["caféé", "!x"]), ("café".into(), true));
    }
}
