//! AVX2 RG-LRU (RecurrentGemma), bit-exact with [`crate::reference::rg_lru`]:
//! eight channels per vector, the same operations per lane in the same
//! order (no FMA). The sigmoids and decays use `exp_fast` eight at a time
//! and `sqrt` is correctly rounded in both; the GELU of the output gate
//! calls `libm::tanhf` lane by lane, as the reference does.

use super::avx2_available;
use super::scan::exp8_each;
use crate::math::gelu_tanh;
use crate::reference::{rg_lru as reference_rg_lru, rg_lru_by_blocks, RgLruArgs};
use core::arch::x86_64::*;

/// Channels per vector.
const LANES: usize = 8;

/// See [`crate::RgLru`].
pub fn rg_lru(args: &RgLruArgs<'_>, h: &mut [f32], out: &mut [f32]) {
    if !avx2_available() {
        reference_rg_lru(args, h, out);
        return;
    }
    rg_lru_by_blocks((args, h, out), LANES, |args, h, out, done| {
        // SAFETY: AVX2 was detected; every buffer holds `done` values.
        unsafe { rg_lru_blocks(args, h, out, done) }
    });
}

/// Channels `0..done` (a multiple of eight).
#[target_feature(enable = "avx2")]
unsafe fn rg_lru_blocks(args: &RgLruArgs<'_>, h: &mut [f32], out: &mut [f32], done: usize) {
    let s = _mm256_set1_ps;
    let (one, sign) = (s(1.0), s(-0.0));
    // A macro, not a closure: a closure would not inherit AVX2.
    macro_rules! load {
        ($v:expr, $c:expr) => {
            _mm256_loadu_ps($v.as_ptr().add($c))
        };
    }
    for c in (0..done).step_by(LANES) {
        let (gi, ga) = (load!(args.input_gate, c), load!(args.a_gate, c));
        // sigmoid(v) = 1 / (1 + exp_fast(-v)), both gates side by side.
        let [ei, ea] = exp8_each([_mm256_xor_ps(gi, sign), _mm256_xor_ps(ga, sign)]);
        let gated = _mm256_mul_ps(load!(args.x, c), _mm256_div_ps(one, _mm256_add_ps(one, ei)));
        let log_a = _mm256_mul_ps(load!(args.log_a_coef, c), _mm256_div_ps(one, _mm256_add_ps(one, ea)));
        let hv = if args.first {
            gated
        } else {
            let [a, a2] = exp8_each([log_a, _mm256_mul_ps(s(2.0), log_a)]);
            let multiplier = _mm256_sqrt_ps(_mm256_sub_ps(one, a2));
            _mm256_add_ps(_mm256_mul_ps(a, load!(h, c)), _mm256_mul_ps(multiplier, gated))
        };
        _mm256_storeu_ps(h.as_mut_ptr().add(c), hv);
        let mut gelu = [0f32; LANES];
        for (g, &y) in gelu.iter_mut().zip(&args.y[c..c + LANES]) {
            *g = gelu_tanh(y);
        }
        _mm256_storeu_ps(out.as_mut_ptr().add(c), _mm256_mul_ps(hv, _mm256_loadu_ps(gelu.as_ptr())));
    }
}
