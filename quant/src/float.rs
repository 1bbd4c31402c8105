//! Scalar reference kernels for the float storage formats.

use half::f16;

/// Lanes of the reference f32 dot product: element `i` accumulates into
/// lane `i % 8`, lanes are summed pairwise at the end. Fixing the order
/// makes results reproducible and lets the compiler vectorize the loop.
pub const F32_DOT_LANES: usize = 8;

/// Dot product of two f32 vectors of equal length, in the reference order
/// (see [`F32_DOT_LANES`]).
pub fn dot_f32(a: &[f32], b: &[f32]) -> f32 {
    let mut acc = [0.0f32; F32_DOT_LANES];
    let (ca, cb) = (a.chunks_exact(F32_DOT_LANES), b.chunks_exact(F32_DOT_LANES));
    let (ra, rb) = (ca.remainder(), cb.remainder());
    for (x, y) in ca.zip(cb) {
        for l in 0..F32_DOT_LANES {
            acc[l] += x[l] * y[l];
        }
    }
    for (l, (x, y)) in ra.iter().zip(rb).enumerate() {
        acc[l] += x * y;
    }
    reduce_lanes(acc)
}

/// The pairwise lane sum that ends every reference dot product.
pub fn reduce_lanes(acc: [f32; F32_DOT_LANES]) -> f32 {
    ((acc[0] + acc[4]) + (acc[2] + acc[6])) + ((acc[1] + acc[5]) + (acc[3] + acc[7]))
}

/// Dot product of f16 weights (as raw bits) with an f32 vector, accumulated
/// in f32 in the same order as [`dot_f32`]. Each f16 converts exactly to
/// f32, so f16 weights give the same result as their f32 widening.
pub fn dot_f16_f32(w: &[u16], x: &[f32]) -> f32 {
    dot_f16_f32_with(w, x, |h| f16::from_bits(h).to_f32())
}

/// [`dot_f16_f32`] with the f16 to f32 conversion given by the caller (a
/// kernel with a hardware conversion). `to_f32` must be exact (every f16
/// is an f32), NaNs keeping their payload with the quiet bit set, as
/// `half`'s conversion does; then the result is bit-identical.
#[inline(always)]
pub fn dot_f16_f32_with(w: &[u16], x: &[f32], to_f32: impl Fn(u16) -> f32) -> f32 {
    let mut acc = [0.0f32; F32_DOT_LANES];
    let (cw, cx) = (w.chunks_exact(F32_DOT_LANES), x.chunks_exact(F32_DOT_LANES));
    let (rw, rx) = (cw.remainder(), cx.remainder());
    for (a, b) in cw.zip(cx) {
        for l in 0..F32_DOT_LANES {
            acc[l] += to_f32(a[l]) * b[l];
        }
    }
    for (l, (a, b)) in rw.iter().zip(rx).enumerate() {
        acc[l] += to_f32(*a) * b;
    }
    reduce_lanes(acc)
}

/// Convert f16 bits to f32 values; `out` must be at least as long as `src`.
pub fn f16_to_f32_slice(src: &[u16], out: &mut [f32]) {
    for (o, b) in out.iter_mut().zip(src) {
        *o = f16::from_bits(*b).to_f32();
    }
}

/// Round an f32 to the nearest f16 (ties to even), returned as bits.
pub fn f32_to_f16_bits(v: f32) -> u16 {
    f16::from_f32(v).to_bits()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn f16_dot_matches_f32_dot_on_exact_values() {
        let w = [1.5f32, -2.0, 0.25, 8.0];
        let x = [2.0f32, 3.0, -4.0, 0.5];
        let bits: [u16; 4] = core::array::from_fn(|i| f32_to_f16_bits(w[i]));
        assert_eq!(dot_f16_f32(&bits, &x), dot_f32(&w, &x));
        assert_eq!(dot_f32(&w, &x), 3.0 - 6.0 - 1.0 + 4.0);
    }
}
