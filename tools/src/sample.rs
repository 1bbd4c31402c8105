//! Choosing the next token from logits: greedy, temperature, top-k, top-p.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// Sampling settings. `temperature == 0` means greedy.
#[derive(Clone, Copy, Debug)]
pub struct SamplerConfig {
    /// Softmax temperature; 0 selects the arg-max.
    pub temperature: f32,
    /// Keep only the k most likely tokens (0: all).
    pub top_k: usize,
    /// Keep the smallest set of tokens whose probability reaches p (1: all).
    pub top_p: f32,
    /// Random seed.
    pub seed: u64,
}

/// A seeded sampler with reusable buffers.
pub struct Sampler {
    config: SamplerConfig,
    rng: StdRng,
    candidates: Vec<(u32, f32)>,
}

/// Index of the largest value (the first on ties); 0 for an empty slice.
pub fn argmax(logits: &[f32]) -> u32 {
    let mut best = 0usize;
    for (i, &v) in logits.iter().enumerate() {
        if v > logits[best] {
            best = i;
        }
    }
    best as u32
}

impl Sampler {
    /// A sampler with the given settings.
    pub fn new(config: SamplerConfig) -> Self {
        Sampler { config, rng: StdRng::seed_from_u64(config.seed), candidates: Vec::new() }
    }

    /// Pick the next token.
    pub fn sample(&mut self, logits: &[f32]) -> u32 {
        let c = self.config;
        if c.temperature <= 0.0 || c.top_k == 1 {
            return argmax(logits);
        }
        self.candidates.clear();
        self.candidates.extend(logits.iter().enumerate().map(|(i, &v)| (i as u32, v / c.temperature)));
        self.candidates.sort_by(|a, b| b.1.total_cmp(&a.1));
        if c.top_k > 0 {
            self.candidates.truncate(c.top_k);
        }
        let max = self.candidates.first().map_or(0.0, |x| x.1);
        let mut total = 0.0f32;
        for cand in &mut self.candidates {
            cand.1 = (cand.1 - max).exp();
            total += cand.1;
        }
        let mut kept = 0.0f32;
        let n = self.candidates.len();
        let mut cut = n;
        for (i, cand) in self.candidates.iter_mut().enumerate() {
            cand.1 /= total;
            kept += cand.1;
            if kept >= c.top_p && cut == n {
                cut = i + 1;
            }
        }
        self.candidates.truncate(cut.max(1));
        let mass: f32 = self.candidates.iter().map(|x| x.1).sum();
        let mut r = self.rng.gen::<f32>() * mass;
        for &(tok, p) in &self.candidates {
            if r < p {
                return tok;
            }
            r -= p;
        }
        self.candidates.last().map_or(0, |x| x.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn greedy_and_top_k_one_pick_argmax() {
        let logits = [0.1, 3.0, -1.0, 2.9];
        for cfg in [
            SamplerConfig { temperature: 0.0, top_k: 0, top_p: 1.0, seed: 1 },
            SamplerConfig { temperature: 1.0, top_k: 1, top_p: 1.0, seed: 1 },
        ] {
            assert_eq!(Sampler::new(cfg).sample(&logits), 1);
        }
    }

    #[test]
    fn top_k_restricts_and_seed_repeats() {
        let logits = [5.0, 4.9, -10.0, -10.0];
        let cfg = SamplerConfig { temperature: 1.0, top_k: 2, top_p: 1.0, seed: 7 };
        let (mut a, mut b) = (Sampler::new(cfg), Sampler::new(cfg));
        let mut seen = [0; 4];
        for _ in 0..200 {
            let t = a.sample(&logits);
            assert_eq!(t, b.sample(&logits));
            seen[t as usize] += 1;
        }
        assert!(seen[0] > 0 && seen[1] > 0 && seen[2] == 0 && seen[3] == 0);
    }

    #[test]
    fn top_p_keeps_only_the_dominant_token() {
        let logits = [10.0, 0.0, 0.0];
        let cfg = SamplerConfig { temperature: 1.0, top_k: 0, top_p: 0.5, seed: 3 };
        let mut s = Sampler::new(cfg);
        assert!((0..100).all(|_| s.sample(&logits) == 0));
    }
}
