//! Perplexity: the quality number every quantization choice is judged by.

use eddy::{Model, Session, SessionError, PREFILL_CHUNK};

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

/// Score `tokens` as one stream: the state is carried across chunks of
/// `chunk` tokens, so the result equals one pass over the whole sequence.
/// Token `i + 1` is predicted from tokens `0..=i`. `progress` is called
/// with the number of tokens consumed after each chunk.
pub fn perplexity(
    model: &Model<'_>,
    tokens: &[u32],
    chunk: usize,
    progress: impl FnMut(usize),
) -> Result<Perplexity, SessionError> {
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
) -> Result<Perplexity, SessionError> {
    perplexity_until(model, tokens, chunk, context, |done, _| {
        progress(done);
        true
    })
}

/// Like [`perplexity_in_windows`], calling `progress` after each chunk with
/// the tokens consumed and the perplexity so far; scoring ends early (with
/// the perplexity of the tokens scored) when `progress` returns false.
pub fn perplexity_until(
    model: &Model<'_>,
    tokens: &[u32],
    chunk: usize,
    context: usize,
    mut progress: impl FnMut(usize, Perplexity) -> bool,
) -> Result<Perplexity, SessionError> {
    if tokens.len() < 2 {
        return Err(SessionError::EmptyPrompt);
    }
    let context = if context == 0 { tokens.len() } else { context.max(2) };
    let mut session = Session::new_owned(model);
    let mut total = 0.0f64;
    let mut count = 0usize;
    for (w, window) in tokens.chunks(context).enumerate() {
        if window.len() < 2 {
            continue;
        }
        session.reset();
        let start = w * context;
        let inputs = &window[..window.len() - 1];
        for (c, part) in inputs.chunks(chunk.max(1)).enumerate() {
            let base = c * chunk.max(1);
            session.prefill_chunked(part, PREFILL_CHUNK, true, |i, logits| {
                total += nll(logits, window[base + i + 1]);
                count += 1;
            })?;
            let so_far = Perplexity { predicted: count, mean_nll: total / count as f64 };
            if !progress(start + base + part.len(), so_far) {
                return Ok(so_far);
            }
        }
    }
    Ok(Perplexity { predicted: count, mean_nll: total / count as f64 })
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
