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
        let tokenizer = Tokenizer::from_bytes(bytes)
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
