//! Perplexity: the quality number every quantization choice is judged by.

use eddy::{Model, OwnedSession, SessionError, PREFILL_CHUNK};

/// Result of a perplexity run.
#[derive(Clone, Copy, Debug)]
pub struct Perplexity {
    /// Tokens whose probability was scored (all but the first).
    pub predicted: usize,
    /// Mean negative log-likelihood in nats.
    pub mean_nll: f64,
}

impl Perplexity {
    /// `exp(mean NLL)`.
    pub fn ppl(&self) -> f64 {
        self.mean_nll.exp()
    }
}

/// `-log softmax(logits)[target]`, computed in f64.
pub fn nll(logits: &[f32], target: u32) -> f64 {
    let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max) as f64;
    let sum: f64 = logits.iter().map(|&l| (l as f64 - max).exp()).sum();
    let target = logits.get(target as usize).copied().unwrap_or(f32::NEG_INFINITY) as f64;
    sum.ln() + max - target
}

/// Why scoring stopped.
#[derive(Debug, thiserror::Error)]
pub enum EvalError {
    /// The session failed (token out of range, allocation).
    #[error("{0}")]
    Session(#[from] SessionError),
    /// The model produced non-finite logits.
    #[error("{0}")]
    Logits(#[from] crate::validate::ValidateError),
    /// Fewer than two tokens: nothing to predict.
    #[error("fewer than 2 tokens; nothing to score")]
    TooFewTokens,
}

/// Score `tokens` as one stream: the state is carried across chunks of
/// `chunk` tokens, so the result equals one pass over the whole sequence.
/// Token `i + 1` is predicted from tokens `0..=i`. `progress` is called
/// with the number of tokens consumed after each chunk.
pub fn perplexity(
    model: &Model<'_>,
    tokens: &[u32],
    chunk: usize,
    progress: impl FnMut(usize),
) -> Result<Perplexity, EvalError> {
    perplexity_in_windows(model, tokens, chunk, 0, progress)
}

/// Like [`perplexity`], but with a fresh session every `context` tokens
/// (`0`: one stream): the usual evaluation of models trained on windows of
/// that length. The first token of each window is context only.
pub fn perplexity_in_windows(
    model: &Model<'_>,
    tokens: &[u32],
    chunk: usize,
    context: usize,
    mut progress: impl FnMut(usize),
) -> Result<Perplexity, EvalError> {
    let mut scorer = StreamScorer::new(model, chunk, context)?;
    let mut each = |done, _| {
        progress(done);
        true
    };
    scorer.push(tokens, &mut each)?;
    scorer.finish(&mut each)
}

/// Perplexity of a token stream given piece by piece: memory stays one
/// chunk of tokens whatever the stream's length, and the result equals
/// [`perplexity_in_windows`] over the concatenated pieces.
pub struct StreamScorer<'m, 'a> {
    session: OwnedSession<'m, 'a>,
    chunk: usize,
    /// Tokens per window (`usize::MAX`: one stream).
    context: usize,
    /// Tokens of the current window seen so far.
    seen: usize,
    /// The current window's tokens from the first one not yet fed.
    pending: Vec<u32>,
    /// Tokens consumed (fed or pending), for progress.
    consumed: usize,
    total: f64,
    count: usize,
}

impl<'m, 'a> StreamScorer<'m, 'a> {
    /// A scorer feeding `chunk` tokens per prefill, restarting every
    /// `context` tokens (`0`: never).
    pub fn new(model: &'m Model<'a>, chunk: usize, context: usize) -> Result<Self, EvalError> {
        let session = crate::validate::new_session(model).map_err(|e| match e {
            crate::validate::ValidateError::Session(s) => EvalError::Session(s),
            other => EvalError::Logits(other),
        })?;
        let context = if context == 0 { usize::MAX } else { context.max(2) };
        let chunk = chunk.max(1);
        Ok(StreamScorer {
            session,
            chunk,
            context,
            seen: 0,
            pending: Vec::new(),
            consumed: 0,
            total: 0.0,
            count: 0,
        })
    }

    /// Add the next tokens of the stream; `progress(tokens consumed,
    /// perplexity so far)` after each chunk fed.
    /// Ok(false) when `progress` asked to stop (the rest of `tokens` is
    /// then not read).
    pub fn push(
        &mut self,
        tokens: &[u32],
        progress: &mut impl FnMut(usize, Option<Perplexity>) -> bool,
    ) -> Result<bool, EvalError> {
        for &t in tokens {
            if self.seen == self.context {
                self.feed(self.pending.len().saturating_sub(1))?;
                self.session.reset();
                self.pending.clear();
                self.seen = 0;
            }
            self.pending.push(t);
            self.seen += 1;
            self.consumed += 1;
            if self.pending.len() > self.chunk {
                self.feed(self.chunk)?;
                if !progress(self.consumed, self.so_far()) {
                    return Ok(false);
                }
            }
        }
        Ok(true)
    }

    /// The perplexity of the tokens scored so far.
    pub fn so_far(&self) -> Option<Perplexity> {
        (self.count > 0)
            .then(|| Perplexity { predicted: self.count, mean_nll: self.total / self.count as f64 })
    }

    /// Score what is left and return the result.
    pub fn finish(
        mut self,
        progress: &mut impl FnMut(usize, Option<Perplexity>) -> bool,
    ) -> Result<Perplexity, EvalError> {
        self.feed(self.pending.len().saturating_sub(1))?;
        progress(self.consumed, self.so_far());
        self.so_far().ok_or(EvalError::TooFewTokens)
    }

    /// Feed the first `n` pending tokens, each scored on the token after
    /// it, and keep the rest.
    fn feed(&mut self, n: usize) -> Result<(), EvalError> {
        if n == 0 {
            return Ok(());
        }
        let (total, count, pending) = (&mut self.total, &mut self.count, &self.pending);
        let start = self.session.position();
        let mut bad = None;
        self.session.prefill_chunked(&pending[..n], PREFILL_CHUNK, true, |i, logits| {
            if bad.is_none() {
                bad = crate::validate::check_logits(logits, start + i as u64).err();
            }
            *total += nll(logits, pending[i + 1]);
            *count += 1;
        })?;
        if let Some(e) = bad {
            return Err(e.into());
        }
        self.pending.drain(..n);
        Ok(())
    }
}

/// Perplexity of UTF-8 text read from `text` in pieces (see
/// [`TextPieces`](crate::text::TextPieces)): read, tokenized and scored a
/// piece at a time, so memory does not grow with the text. At most `limit`
/// tokens are scored (`0`: all); `progress(bytes of text read, perplexity
/// so far)` after each chunk scored. When `progress` returns false scoring
/// ends early with the perplexity of the tokens scored.
pub fn perplexity_of_text(
    model: &Model<'_>,
    codec: &crate::text::TextCodec,
    text: impl std::io::Read,
    (chunk, limit, context): (usize, usize, usize),
    mut progress: impl FnMut(u64, Option<Perplexity>) -> bool,
) -> anyhow::Result<Perplexity> {
    let mut pieces = crate::text::TextPieces::new(text, crate::text::PIECE_BYTES);
    let mut scorer = StreamScorer::new(model, chunk, context)?;
    let (mut bytes, mut tokens) = (0u64, 0usize);
    let limit = if limit == 0 { usize::MAX } else { limit };
    while tokens < limit {
        let Some(piece) = pieces.next_piece()? else { break };
        let ids = codec.encode(&piece)?;
        let take = ids.len().min(limit - tokens);
        bytes += piece.len() as u64;
        if !scorer.push(&ids[..take], &mut |_, so_far| progress(bytes, so_far))? {
            break;
        }
        tokens += take;
    }
    Ok(scorer.finish(&mut |_, _| true)?)
}

#[cfg(test)]
mod tests {
    use super::nll;

    #[test]
    fn nll_of_uniform_logits_is_log_vocab() {
        let l = [0.5f32; 8];
        assert!((nll(&l, 3) - (8f64).ln()).abs() < 1e-12);
        // Shift invariance and a confident prediction.
        let l = [1000.0f32, 0.0, 0.0];
        assert!(nll(&l, 0) < 1e-12);
        assert!((nll(&l, 1) - 1000.0).abs() < 1e-9);
    }
}
