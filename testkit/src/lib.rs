//! Deterministic random numbers for eddy's tests, golden-file generators
//! and the Cortex-M kernel test runner: `no_std`, no dependencies, the same
//! sequence on every target.
//!
//! Two generators, because committed data depends on each: [`Rng`]
//! (xorshift64*) produced the FPGA golden files, and the kernel
//! cross-checks were written against [`Lcg`]'s cases. [`Lcg31`] is the same
//! LCG with the draws the attention-cache cross-check uses.
#![no_std]
#![warn(missing_docs)]

#[cfg(feature = "alloc")]
extern crate alloc;

/// Deterministic xorshift64* generator.
#[derive(Clone, Debug)]
pub struct Rng(pub u64);

impl Rng {
    /// A generator from any seed, spread and made nonzero (the state itself
    /// may be set directly with `Rng(state)` when it is nonzero).
    pub fn new(seed: u64) -> Self {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    /// Next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// Uniform in `[lo, hi)` from the top 24 bits (`lo + (hi - lo) * u`).
    pub fn uniform(&mut self, lo: f32, hi: f32) -> f32 {
        let u = (self.next_u64() >> 40) as f32 / (1u64 << 24) as f32;
        lo + (hi - lo) * u
    }

    /// Uniform in `0..n`.
    pub fn below(&mut self, n: u32) -> u32 {
        (self.next_u64() % n as u64) as u32
    }
}

/// Advance a 64-bit LCG (Knuth's MMIX constants) and return the new state.
fn lcg_step(state: &mut u64) -> u64 {
    *state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
    *state
}

/// A 64-bit LCG with 32-bit outputs (the high bits of the state).
#[derive(Clone, Debug)]
pub struct Lcg(pub u64);

impl Lcg {
    /// 32 random bits.
    // `next`, as the tests written against the replaced copies call it; an
    // endless generator gains nothing from being an `Iterator`.
    #[allow(clippy::should_implement_trait)]
    pub fn next(&mut self) -> u32 {
        (lcg_step(&mut self.0) >> 32) as u32
    }

    /// Uniform in `[-1, 1)` from the top 24 bits.
    pub fn f(&mut self) -> f32 {
        (self.next() >> 8) as f32 / (1u32 << 23) as f32 - 1.0
    }

    /// Uniform in `lo ..= hi`.
    pub fn range(&mut self, lo: usize, hi: usize) -> usize {
        lo + self.next() as usize % (hi - lo + 1)
    }

    /// `n` values of [`Lcg::f`] times `scale`.
    #[cfg(feature = "alloc")]
    pub fn vec(&mut self, n: usize, scale: f32) -> alloc::vec::Vec<f32> {
        (0..n).map(|_| self.f() * scale).collect()
    }
}

/// The [`Lcg`] sequence drawn as 31-bit words, as the attention-cache
/// cross-check was written: its `f` spans `[-1, 3)`.
#[derive(Clone, Debug)]
pub struct Lcg31(pub u64);

impl Lcg31 {
    /// 31 random bits.
    #[allow(clippy::should_implement_trait)] // as on `Lcg::next`
    pub fn next(&mut self) -> u64 {
        lcg_step(&mut self.0) >> 33
    }

    /// Uniform in `[-1, 3)` from the top 24 bits.
    pub fn f(&mut self) -> f32 {
        (self.next() >> 7) as f32 / (1u64 << 23) as f32 * 2.0 - 1.0
    }

    /// Uniform in `0..n`.
    pub fn below(&mut self, n: usize) -> usize {
        self.next() as usize % n
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The draws the copies this crate replaced made, written as they were,
    /// must come out bit for bit: committed golden files and test cases
    /// depend on them.
    #[test]
    fn draws_match_the_replaced_copies() {
        let (mut rng, mut old) = (Rng::new(42), 42u64.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
        let mut old_next = || {
            let mut x = old;
            x ^= x >> 12;
            x ^= x << 25;
            x ^= x >> 27;
            old = x;
            x.wrapping_mul(0x2545_F491_4F6C_DD1D)
        };
        for _ in 0..1000 {
            // runtime tests' `f32()`, quant tests' `uniform()`.
            let half = (old_next() >> 40) as f32 / (1u64 << 24) as f32 - 0.5;
            assert_eq!(rng.uniform(-0.5, 0.5).to_bits(), half.to_bits());
            let unit = (old_next() >> 40) as f32 / (1u64 << 24) as f32 * 2.0 - 1.0;
            assert_eq!(rng.uniform(-1.0, 1.0).to_bits(), unit.to_bits());
        }
        let (mut lcg, mut lcg31, mut state) = (Lcg(7), Lcg31(7), 7u64);
        let mut step = || {
            state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            state
        };
        for _ in 0..1000 {
            // kernels-simd cross-checks' `f()`, and kv_cross_check's (which
            // spans [-1, 3)), on the same state sequence.
            let s = step();
            let f = ((s >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0;
            assert_eq!(lcg.f().to_bits(), f.to_bits());
            let wide = ((s >> 33) >> 7) as f32 / (1u64 << 23) as f32 * 2.0 - 1.0;
            assert_eq!(lcg31.f().to_bits(), wide.to_bits());
        }
    }
}
