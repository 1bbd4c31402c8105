//! Scalar reference kernels for the float storage formats.

use half::f16;

/// Dot product of two f32 vectors of equal length (sequential sum, the
/// reference order).
pub fn dot_f32(a: &[f32], b: &[f32]) -> f32 {
    let mut acc = 0.0f32;
    for (x, y) in a.iter().zip(b) {
        acc += x * y;
    }
    acc
}

/// Dot product of f16 weights (as raw bits) with an f32 vector, accumulated
/// in f32. Each f16 converts exactly to f32.
pub fn dot_f16_f32(w: &[u16], x: &[f32]) -> f32 {
    let mut acc = 0.0f32;
    for (b, v) in w.iter().zip(x) {
        acc += f16::from_bits(*b).to_f32() * v;
    }
    acc
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
