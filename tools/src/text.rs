//! Text <-> token ids with the tokenizer embedded in a `.eddy` file.

use anyhow::{anyhow, Context, Result};
use tokenizers::Tokenizer;

/// The model's tokenizer, plus incremental decoding for streaming output.
pub struct TextCodec {
    tokenizer: Tokenizer,
}

impl TextCodec {
    /// Load from `tokenizer.json` bytes.
    pub fn from_json(bytes: &[u8]) -> Result<Self> {
        // Invalid JSON is refused here: the tokenizers library panics on
        // some of it (`expect("Helper")` in a decoder) instead of erring.
        serde_json::from_slice::<serde::de::IgnoredAny>(bytes)
            .map_err(|e| anyhow!("the embedded tokenizer.json is not valid JSON: {e}"))?;
        // The same library panics on some malformed decoders
        // (`expect("Helper")`) instead of returning an error: caught here.
        let tokenizer = std::panic::catch_unwind(|| Tokenizer::from_bytes(bytes))
            .map_err(|_| {
                anyhow!("the embedded tokenizer.json is invalid (the tokenizer library panicked on it)")
            })?
            .map_err(|e| anyhow!("the embedded tokenizer.json is invalid: {e}"))?;
        Ok(TextCodec { tokenizer })
    }

    /// Encode text without adding special tokens.
    pub fn encode(&self, text: &str) -> Result<Vec<u32>> {
        let enc = self.tokenizer.encode(text, false).map_err(|e| anyhow!("tokenizing failed: {e}"))?;
        Ok(enc.get_ids().to_vec())
    }

    /// The id of a token given by its text (e.g. a special token), if any.
    pub fn token_id(&self, token: &str) -> Option<u32> {
        self.tokenizer.token_to_id(token)
    }

    /// Decode ids to text.
    pub fn decode(&self, ids: &[u32]) -> Result<String> {
        self.tokenizer.decode(ids, false).map_err(|e| anyhow!("decoding failed: {e}"))
    }

    /// The text `ids[..n]` adds beyond `ids[..n-1]`, for streaming: decodes
    /// a short tail so multi-token characters come out whole.
    pub fn decode_increment(&self, ids: &[u32]) -> Result<String> {
        let start = ids.len().saturating_sub(8);
        let with = self.decode(&ids[start..])?;
        let without = self.decode(&ids[start..ids.len().saturating_sub(1)])?;
        Ok(with.strip_prefix(&without).map(str::to_string).unwrap_or_default())
    }
}

/// Parse a comma-separated list of token ids ("1,2, 3").
pub fn parse_token_list(s: &str) -> Result<Vec<u32>> {
    s.split(',')
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .map(|t| t.parse::<u32>().with_context(|| format!("`{t}` is not a token id")))
        .collect()
}

/// Bytes read per piece of [`TextPieces`].
pub const PIECE_BYTES: usize = 64 * 1024;

/// UTF-8 text read in pieces of about `piece` bytes, each cut just before
/// a space that sits between two non-space characters. Word-level
/// pre-tokenizers (byte-level BPE, SentencePiece's metaspace) start a new
/// word there anyway, so encoding piece by piece gives the ids of encoding
/// the whole text. A piece with no such space (e.g. text without spaces)
/// grows to 16 times `piece` and is then cut at a character boundary.
pub struct TextPieces<R> {
    reader: R,
    piece: usize,
    /// Bytes read but not yet handed out (the start of the next piece).
    carry: Vec<u8>,
    done: bool,
}

impl<R: std::io::Read> TextPieces<R> {
    /// Pieces of about `piece` bytes from `reader`.
    pub fn new(reader: R, piece: usize) -> Self {
        TextPieces { reader, piece: piece.max(1), carry: Vec::new(), done: false }
    }

    /// The next piece, `None` at the end; an error for a read failure or
    /// bytes that are not UTF-8 (with their offset in the piece).
    pub fn next_piece(&mut self) -> Result<Option<String>> {
        let mut limit = self.piece;
        loop {
            while !self.done && self.carry.len() < limit {
                let mut buf = vec![0u8; limit - self.carry.len()];
                let n = self.reader.read(&mut buf).context("cannot read the text")?;
                if n == 0 {
                    self.done = true;
                }
                self.carry.extend_from_slice(&buf[..n]);
            }
            if self.done {
                if self.carry.is_empty() {
                    return Ok(None);
                }
                let all = std::mem::take(&mut self.carry);
                return String::from_utf8(all).map(Some).map_err(|e| not_utf8(e.utf8_error()));
            }
            // Cut at the last word-starting space, else grow, else cut at
            // the last character boundary.
            let valid = match std::str::from_utf8(&self.carry) {
                Ok(s) => s.len(),
                Err(e) if e.error_len().is_none() => e.valid_up_to(),
                Err(e) => return Err(not_utf8(e)),
            };
            let cut = word_cut(&self.carry[..valid]).or((limit >= 16 * self.piece).then_some(valid));
            match cut {
                Some(at) if at > 0 => {
                    let rest = self.carry.split_off(at);
                    let piece = std::mem::replace(&mut self.carry, rest);
                    return String::from_utf8(piece).map(Some).map_err(|e| not_utf8(e.utf8_error()));
                }
                _ => limit = limit.saturating_mul(2),
            }
        }
    }
}

fn not_utf8(e: std::str::Utf8Error) -> anyhow::Error {
    anyhow!("the text is not UTF-8 (invalid bytes after {} bytes of a piece)", e.valid_up_to())
}

/// Offset of the last space preceded and followed by a non-space byte.
fn word_cut(bytes: &[u8]) -> Option<usize> {
    (1..bytes.len().saturating_sub(1)).rev().find(|&i| {
        bytes[i] == b' ' && !bytes[i - 1].is_ascii_whitespace() && !bytes[i + 1].is_ascii_whitespace()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pieces(text: &str, piece: usize) -> Vec<String> {
        let mut p = TextPieces::new(text.as_bytes(), piece);
        std::iter::from_fn(|| p.next_piece().unwrap()).collect()
    }

    #[test]
    fn pieces_rejoin_and_cut_before_words() {
        let text = "one two  three\nfour é五 six seven eight";
        for size in 1..12 {
            let p = pieces(text, size);
            assert_eq!(p.concat(), text, "size {size}");
            for piece in &p[1..] {
                let b = piece.as_bytes();
                assert!(b[0] != b' ' || !b[1].is_ascii_whitespace(), "{p:?}");
            }
        }
        assert_eq!(pieces("abcdefgh", 2).concat(), "abcdefgh");
        assert!(pieces("", 4).is_empty());
    }

    #[test]
    fn a_decoder_the_tokenizer_library_panics_on_is_an_error() {
        // Found by the convert_inputs fuzz target: tokenizers 0.22 panics
        // (`expect("Helper")`) on a decoder object with a non-string key.
        let json = br#"{"version":"1.0","model":{"type":"BPE","vocab":{},"merges":[]},"decoder":{1:2}}"#;
        let e = TextCodec::from_json(json).err().expect("refused");
        assert!(e.to_string().contains("tokenizer.json"), "{e}");
    }

    #[test]
    fn invalid_utf8_is_an_error() {
        let mut p = TextPieces::new(&b"ok \xff\xfe bad"[..], 64);
        assert!(p.next_piece().unwrap_err().to_string().contains("not UTF-8"));
    }
}
