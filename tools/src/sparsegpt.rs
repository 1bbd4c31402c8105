//! 2:4 pruning with error compensation (SparseGPT, Frantar & Alistarh,
//! 2023), written here on GPTQ's inverse-Hessian factor
//! ([`crate::gptq::inverse_hessian_factor`]), jointly with quantization of
//! the kept weights.
//!
//! Columns are swept left to right as in GPTQ. When a group's first column
//! is reached, each block of four of the group keeps the two weights with
//! the largest saliency `w² / U_jj²` (the OBS cost of zeroing them, on the
//! already-compensated weights; SparseGPT's adaptive mask selection with a
//! mask block of one group), and the group's range is searched over its
//! kept weights. Each column is then replaced by 0 (pruned) or its quantized
//! value (kept), and the error is pushed onto the later columns through `U`
//! so they absorb it. Magnitude pruning ([`magnitude_mask`]) is the same
//! without the Hessian: what calibration buys is measured by the test
//! `pruning_uses_calibration`.

use crate::calibrate::search_range;
use eddy::TensorFormat;
use eddy_quant::{QuantError, Sparse24};
use half::f16;

/// A pruned and quantized matrix: the packed rows and the keep mask.
pub struct Pruned24 {
    /// Packed rows in the [`Sparse24`] layout.
    pub bytes: Vec<u8>,
    /// Which weights were kept (two of every four), row-major.
    pub keep: Vec<bool>,
}

/// What the packed row reconstructs for kept `v` in a group with range
/// `(lo, hi)` (mirrors [`Sparse24::quantize_row_with_ranges`]).
fn fake_quant(v: f32, (lo, hi): (f32, f32), levels: f32) -> f32 {
    let (lo, hi) = if lo <= hi { (lo, hi) } else { (hi, lo) };
    let s = f16::from_f32((hi - lo) / levels).to_f32();
    let m = f16::from_f32(lo).to_f32();
    let c = if s > 0.0 { eddy_quant::round_half_away((v - m) / s).clamp(0.0, levels) } else { 0.0 };
    s * c + m
}

/// Keep the two of `scores` (one block of four) with the largest values,
/// the lower index first on ties.
fn keep_two(scores: [f64; 4], keep: &mut [bool]) {
    let mut order = [0usize, 1, 2, 3];
    order.sort_by(|&a, &b| scores[b].total_cmp(&scores[a]).then(a.cmp(&b)));
    keep[..4].fill(false);
    keep[order[0]] = true;
    keep[order[1]] = true;
}

/// The 2:4 mask of magnitude pruning: in each block of four of each row,
/// the two largest `|w|` (no calibration).
pub fn magnitude_mask(weights: &[f32]) -> Vec<bool> {
    let mut keep = vec![false; weights.len()];
    for (w, k) in weights.chunks_exact(4).zip(keep.chunks_exact_mut(4)) {
        keep_two([0, 1, 2, 3].map(|i| w[i].abs() as f64), k);
    }
    keep
}

/// Prune a `[rows, cols]` matrix to 2:4 and quantize its kept weights in
/// `format` (W8/W4/W2), compensating every pruning and rounding error
/// through `factor`, the [`crate::gptq::inverse_hessian_factor`] of the
/// layer's input Hessian `hessian` (`cols x cols`, whose diagonal weighs
/// the range search). `BadLength` if the shapes do not match.
pub fn sparsegpt_24(
    format: TensorFormat,
    (rows, cols): (usize, usize),
    weights: &[f32],
    hessian: &[f64],
    factor: &[f64],
    clip_search: bool,
) -> Result<Pruned24, QuantError> {
    let sparse = Sparse24::new(format)?;
    let group = sparse.group_size();
    if weights.len() != rows * cols || hessian.len() != cols * cols || factor.len() != cols * cols {
        return Err(QuantError::BadLength);
    }
    if cols % group != 0 {
        return Err(QuantError::BadLength);
    }
    let importance: Vec<f32> = (0..cols).map(|i| hessian[i * cols + i].max(1e-12) as f32).collect();
    let levels = ((1u32 << sparse.code_bits()) - 1) as f32;
    let row_bytes = sparse.byte_len(1, cols as u64).map_err(QuantError::Format)? as usize;
    let mut bytes = vec![0u8; rows * row_bytes];
    let mut keep = vec![false; rows * cols];
    let (mut w, mut ranges) = (vec![0f32; cols], vec![(0f32, 0f32); cols / group]);
    let (mut kept_w, mut kept_imp) = (Vec::with_capacity(group), Vec::with_capacity(group));
    for (r, (out, mask)) in bytes.chunks_exact_mut(row_bytes).zip(keep.chunks_exact_mut(cols)).enumerate() {
        w.copy_from_slice(&weights[r * cols..(r + 1) * cols]);
        for j in 0..cols {
            if j % group == 0 {
                for b in (j..j + group).step_by(4) {
                    let saliency = [0, 1, 2, 3].map(|i| {
                        let d = factor[(b + i) * cols + b + i];
                        (w[b + i] as f64 / d).powi(2)
                    });
                    keep_two(saliency, &mut mask[b..b + 4]);
                }
                kept_w.clear();
                kept_imp.clear();
                for i in (j..j + group).filter(|&i| mask[i]) {
                    kept_w.push(w[i]);
                    kept_imp.push(importance[i]);
                }
                ranges[j / group] = search_range(format, &kept_w, &kept_imp, clip_search)?;
            }
            let q = if mask[j] { fake_quant(w[j], ranges[j / group], levels) } else { 0.0 };
            let u_row = &factor[j * cols..(j + 1) * cols];
            let err = (w[j] - q) as f64 / u_row[j];
            w[j] = q;
            for (x, &uk) in w[j + 1..].iter_mut().zip(&u_row[j + 1..]) {
                *x -= (err * uk) as f32;
            }
        }
        sparse.quantize_row_with_ranges(&w, mask, &ranges, out)?;
    }
    Ok(Pruned24 { bytes, keep })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gptq::inverse_hessian_factor;

    fn lcg(seed: &mut u64) -> f32 {
        *seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        ((*seed >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
    }

    /// The fixture: weights `[rows, cols]` in [-1, 1) and `samples`
    /// calibration inputs whose columns have scales spread over two orders
    /// of magnitude and are correlated (each mixes its neighbour), as
    /// activations of a trained model are; returns the weights, the
    /// inputs and `H = XᵀX / samples`.
    fn fixture(rows: usize, cols: usize, samples: usize) -> (Vec<f32>, Vec<f32>, Vec<f64>) {
        let mut seed = 0x05ee_d2a4_u64;
        let w: Vec<f32> = (0..rows * cols).map(|_| lcg(&mut seed)).collect();
        let scales: Vec<f32> = (0..cols).map(|_| 10f32.powf(lcg(&mut seed))).collect();
        let mut x = vec![0f32; samples * cols];
        for s in 0..samples {
            let z: Vec<f32> = (0..cols).map(|_| lcg(&mut seed)).collect();
            for c in 0..cols {
                x[s * cols + c] = scales[c] * (z[c] + 0.7 * z[(c + 1) % cols]);
            }
        }
        let mut h = vec![0f64; cols * cols];
        for xs in x.chunks_exact(cols) {
            for i in 0..cols {
                for j in 0..cols {
                    h[i * cols + j] += xs[i] as f64 * xs[j] as f64 / samples as f64;
                }
            }
        }
        (w, x, h)
    }

    /// Mean squared output error `‖(W - W') x‖²` over the inputs.
    fn output_error(w: &[f32], approx: &[f32], x: &[f32], cols: usize) -> f64 {
        let samples = x.len() / cols;
        let mut total = 0f64;
        for (wr, ar) in w.chunks_exact(cols).zip(approx.chunks_exact(cols)) {
            for xs in x.chunks_exact(cols) {
                let d: f64 =
                    wr.iter().zip(ar).zip(xs).map(|((a, b), v)| (*a as f64 - *b as f64) * *v as f64).sum();
                total += d * d;
            }
        }
        total / samples as f64
    }

    /// Magnitude pruning of the same matrix, kept weights quantized with
    /// min/max ranges (the calibration-free baseline).
    fn magnitude_24(format: TensorFormat, w: &[f32], cols: usize) -> Vec<f32> {
        let sparse = Sparse24::new(format).unwrap();
        let keep = magnitude_mask(w);
        let rb = sparse.byte_len(1, cols as u64).unwrap() as usize;
        let mut out = vec![0f32; w.len()];
        for ((wr, kr), o) in w.chunks_exact(cols).zip(keep.chunks_exact(cols)).zip(out.chunks_exact_mut(cols))
        {
            let mut bytes = vec![0u8; rb];
            sparse.quantize_row(wr, kr, &mut bytes).unwrap();
            sparse.dequantize_row(&bytes, o);
        }
        out
    }

    /// The test that fails if pruning ignores calibration: on the fixture,
    /// SparseGPT's output error is below 0.3x magnitude pruning's, at W8
    /// (pruning error dominates) and W4, with a different mask.
    #[test]
    fn pruning_uses_calibration() {
        let (rows, cols) = (16, 128);
        let (w, x, h) = fixture(rows, cols, 512);
        let factor = inverse_hessian_factor(&h, cols).unwrap();
        for format in [TensorFormat::W8 { group: 32 }, TensorFormat::W4 { group: 32 }] {
            let sparse = Sparse24::new(format).unwrap();
            let pruned = sparsegpt_24(format, (rows, cols), &w, &h, &factor, false).unwrap();
            let rb = sparse.byte_len(1, cols as u64).unwrap() as usize;
            let mut approx = vec![0f32; rows * cols];
            for (bytes, o) in pruned.bytes.chunks_exact(rb).zip(approx.chunks_exact_mut(cols)) {
                sparse.dequantize_row(bytes, o);
            }
            for (a, k) in approx.iter().zip(&pruned.keep) {
                assert!(*k || *a == 0.0, "a pruned weight must read back as 0");
            }
            let ours = output_error(&w, &approx, &x, cols);
            let baseline = output_error(&w, &magnitude_24(format, &w, cols), &x, cols);
            eprintln!("{format:?}: SparseGPT {ours:.4} vs magnitude {baseline:.4} ({:.3}x)", ours / baseline);
            assert!(ours < 0.3 * baseline, "{format:?}: SparseGPT {ours} vs magnitude {baseline}");
            assert_ne!(pruned.keep, magnitude_mask(&w), "the mask must depend on the Hessian");
        }
    }

    #[test]
    fn bad_shapes_are_errors() {
        let f = TensorFormat::W4 { group: 32 };
        let (w, h) = (vec![0.5f32; 64], vec![0f64; 64 * 64]);
        assert!(matches!(sparsegpt_24(f, (1, 64), &w, &h, &h[..10], false), Err(QuantError::BadLength)));
        assert!(matches!(sparsegpt_24(f, (2, 64), &w, &h, &h, false), Err(QuantError::BadLength)));
        assert!(matches!(
            sparsegpt_24(TensorFormat::F16, (1, 64), &w, &h, &h, false),
            Err(QuantError::NotInteger)
        ));
    }
}
