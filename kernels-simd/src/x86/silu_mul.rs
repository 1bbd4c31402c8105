//! AVX2 [`crate::reference::silu_mul`]: eight lanes per vector with the
//! scan's `silu8` (the reference's `silu`, same operations per lane, no
//! FMA), four vectors side by side so their `exp`s overlap; the last
//! `len % 8` values run the reference.

use super::avx2_available;
use super::scan::{exp8_each, silu8_with, LANES};
use core::arch::x86_64::*;

/// Vectors evaluated side by side.
const WIDE: usize = 4;

/// See [`crate::reference::SiluMul`]; bit-exact with the reference.
pub fn silu_mul(gate: &mut [f32], up: &[f32]) {
    let n = gate.len().min(up.len());
    if !avx2_available() {
        crate::reference::silu_mul(gate, up);
        return;
    }
    let whole = n / LANES * LANES;
    // SAFETY: AVX2 was detected; both slices hold `whole` values.
    unsafe { silu_mul_avx2(&mut gate[..whole], &up[..whole]) };
    crate::reference::silu_mul(&mut gate[whole..n], &up[whole..n]);
}

/// `gate = silu(gate) * up` for lengths that are a multiple of [`LANES`].
#[target_feature(enable = "avx2")]
unsafe fn silu_mul_avx2(gate: &mut [f32], up: &[f32]) {
    let mut gates = gate.chunks_exact_mut(WIDE * LANES);
    let mut ups = up.chunks_exact(WIDE * LANES);
    for (g, u) in (&mut gates).zip(&mut ups) {
        // SAFETY: `g` and `u` hold `WIDE * LANES` values.
        let x: [__m256; WIDE] = core::array::from_fn(|v| _mm256_loadu_ps(g.as_ptr().add(v * LANES)));
        let e = exp8_each(x.map(|v| _mm256_xor_ps(v, _mm256_set1_ps(-0.0))));
        for v in 0..WIDE {
            let y = _mm256_mul_ps(silu8_with(x[v], e[v]), _mm256_loadu_ps(u.as_ptr().add(v * LANES)));
            _mm256_storeu_ps(g.as_mut_ptr().add(v * LANES), y);
        }
    }
    for (g, u) in gates.into_remainder().chunks_exact_mut(LANES).zip(ups.remainder().chunks_exact(LANES)) {
        // SAFETY: `g` and `u` hold `LANES` values.
        let x = _mm256_loadu_ps(g.as_ptr());
        let [e] = exp8_each([_mm256_xor_ps(x, _mm256_set1_ps(-0.0))]);
        _mm256_storeu_ps(g.as_mut_ptr(), _mm256_mul_ps(silu8_with(x, e), _mm256_loadu_ps(u.as_ptr())));
    }
}
