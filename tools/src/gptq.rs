//! GPTQ-style error compensation (Frantar et al., 2022), written here.
//!
//! Columns are quantized left to right; the error each column makes is
//! pushed onto the not-yet-quantized columns through the inverse Hessian of
//! the layer's inputs (`H = E[x xᵀ]` on calibration text), so later columns
//! absorb it. Group ranges are chosen when the first column of a group is
//! reached, from the already-compensated weights.

use crate::calibrate::{search_range, tensor_error, TensorError};
use crate::cholesky::{cholesky_lower, inverse_from_factor};
use eddy::TensorFormat;
use eddy_quant::QuantError;
use half::f16;

/// Relative dampening added to the Hessian diagonal (as in the paper).
const DAMP: f64 = 0.01;

/// Rows swept together: each row of `U` is read once per tile of rows
/// (from cache), not once per row.
const ROW_TILE: usize = 8;

/// Upper Cholesky factor `U` of `H⁻¹` (so `H⁻¹ = Uᵀ U`), row-major, or
/// `None` if `H` is not positive definite even after dampening. Matrices
/// with the same input (a gated MLP's gate and up, attention's q, k, v)
/// have the same `H`: compute it once and pass it to
/// [`gptq_quantize_factored`] for each.
///
/// The factorizations are [`crate::cholesky`]'s blocked, threaded ones,
/// bit-identical to nalgebra's unblocked ones used before.
pub fn inverse_hessian_factor(h: &[f64], cols: usize) -> Option<Vec<f64>> {
    if h.len() != cols * cols {
        return None;
    }
    let mut m = h.to_vec();
    let mean_diag = (0..cols).map(|i| m[i * cols + i]).sum::<f64>() / cols as f64;
    for i in 0..cols {
        let d = &mut m[i * cols + i];
        // Columns never activated get a unit diagonal: nothing to compensate.
        if *d <= 0.0 {
            *d = 1.0;
        }
        *d += DAMP * mean_diag.max(1e-12);
    }
    if !cholesky_lower(&mut m, cols) {
        return None;
    }
    let mut inv = inverse_from_factor(&m, cols);
    drop(m);
    if !cholesky_lower(&mut inv, cols) {
        return None;
    }
    // U = Lᵀ.
    for i in 0..cols {
        for j in i + 1..cols {
            inv.swap(i * cols + j, j * cols + i);
        }
    }
    Some(inv)
}

/// What the runtime will reconstruct for `v` in a group with range `(lo, hi)`
/// (mirrors `eddy_quant::quantize_row_with_ranges`).
fn fake_quant(v: f32, lo: f32, hi: f32, levels: f32) -> f32 {
    let (lo, hi) = if lo <= hi { (lo, hi) } else { (hi, lo) };
    let s = f16::from_f32((hi - lo) / levels).to_f32();
    let m = f16::from_f32(lo).to_f32();
    let c = if s > 0.0 { ((v - m) / s).round().clamp(0.0, levels) } else { 0.0 };
    s * c + m
}

/// Quantize a `[rows, cols]` matrix with GPTQ. `hessian` is `cols x cols`
/// row-major; its diagonal weighs the per-group range search. Falls back to
/// `None` if the Hessian cannot be factored.
///
/// Each row's sweep depends only on that row and `U`, so rows are split
/// across threads and swept in tiles; every weight sees the same updates in
/// the same order as a row-at-a-time sweep (bit-identical for any split).
pub fn gptq_quantize(
    format: TensorFormat,
    rows: usize,
    cols: usize,
    weights: &[f32],
    hessian: &[f64],
    clip_search: bool,
) -> Result<Option<(Vec<u8>, TensorError)>, QuantError> {
    check_shapes(format, rows, cols, weights, hessian)?;
    let factor = inverse_hessian_factor(hessian, cols);
    gptq_quantize_factored(format, rows, cols, weights, hessian, factor.as_deref(), clip_search)
}

/// The matrix geometry GPTQ can work on (an integer format, whole groups,
/// lengths that match).
fn check_shapes(
    format: TensorFormat,
    rows: usize,
    cols: usize,
    weights: &[f32],
    hessian: &[f64],
) -> Result<(usize, u32), QuantError> {
    let (Some(group), Some(bits)) = (format.group_size(), format.code_bits()) else {
        return Err(QuantError::NotInteger);
    };
    if hessian.len() != cols * cols || weights.len() != rows * cols || group == 0 || cols % group != 0 {
        return Err(QuantError::BadLength);
    }
    Ok((group, bits))
}

/// [`gptq_quantize`] with `hessian`'s [`inverse_hessian_factor`] given
/// (`None`: it has none, the result is `None`).
pub fn gptq_quantize_factored(
    format: TensorFormat,
    rows: usize,
    cols: usize,
    weights: &[f32],
    hessian: &[f64],
    factor: Option<&[f64]>,
    clip_search: bool,
) -> Result<Option<(Vec<u8>, TensorError)>, QuantError> {
    let (group, bits) = check_shapes(format, rows, cols, weights, hessian)?;
    let Some(u) = factor.filter(|u| u.len() == cols * cols) else { return Ok(None) };
    let importance: Vec<f32> = (0..cols).map(|i| hessian[i * cols + i].max(1e-12) as f32).collect();
    let levels = ((1u32 << bits) - 1) as f32;
    let groups = cols / group;
    let row_bytes = format.byte_len(1, cols as u64).map_err(QuantError::Format)? as usize;
    let mut out = vec![0u8; rows * row_bytes];
    crate::par::try_for_rows(&mut out, row_bytes, ROW_TILE, |first, piece| {
        let mut w = vec![0f32; ROW_TILE * cols];
        let mut ranges = vec![(0f32, 0f32); ROW_TILE * groups];
        for (t, dst) in piece.chunks_mut(ROW_TILE * row_bytes.max(1)).enumerate() {
            let n = dst.len() / row_bytes.max(1);
            let start = (first + t * ROW_TILE) * cols;
            w[..n * cols].copy_from_slice(&weights[start..start + n * cols]);
            for j in 0..cols {
                let g = j / group;
                let u_row = &u[j * cols..(j + 1) * cols];
                for (row, range) in w[..n * cols].chunks_exact_mut(cols).zip(ranges.chunks_exact_mut(groups))
                {
                    if j % group == 0 {
                        range[g] =
                            search_range(format, &row[j..j + group], &importance[j..j + group], clip_search)?;
                    }
                    let (lo, hi) = range[g];
                    let q = fake_quant(row[j], lo, hi, levels);
                    let err = (row[j] - q) as f64 / u_row[j];
                    for (x, &uk) in row[j + 1..].iter_mut().zip(&u_row[j + 1..]) {
                        *x -= (err * uk) as f32;
                    }
                }
            }
            for ((row, range), d) in
                w.chunks_exact(cols).zip(ranges.chunks_exact(groups)).zip(dst.chunks_exact_mut(row_bytes))
            {
                eddy_quant::quantize_row_with_ranges(format, row, range, d)?;
            }
        }
        Ok(())
    })?;
    let err = tensor_error(format, cols, weights, &out, &importance);
    Ok(Some((out, err)))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The sweep as it was: column by column over all rows, one row of
    /// the matrix at a time.
    fn gptq_row_at_a_time(f: TensorFormat, rows: usize, cols: usize, w0: &[f32], h: &[f64]) -> Vec<u8> {
        gptq_reference(f, rows, cols, w0, h, false)
    }

    /// The row-at-a-time sweep; with `stop_at_group`, a column's error is
    /// pushed only onto the rest of its own group (the truncation GPTQ must
    /// not make).
    fn gptq_reference(
        f: TensorFormat,
        rows: usize,
        cols: usize,
        w0: &[f32],
        h: &[f64],
        stop_at_group: bool,
    ) -> Vec<u8> {
        let (group, bits) = (f.group_size().unwrap(), f.code_bits().unwrap());
        let u = inverse_hessian_factor(h, cols).unwrap();
        let importance: Vec<f32> = (0..cols).map(|i| h[i * cols + i].max(1e-12) as f32).collect();
        let levels = ((1u32 << bits) - 1) as f32;
        let groups = cols / group;
        let mut w = w0.to_vec();
        let mut ranges = vec![(0f32, 0f32); rows * groups];
        for j in 0..cols {
            for r in 0..rows {
                let row = &mut w[r * cols..(r + 1) * cols];
                if j % group == 0 {
                    ranges[r * groups + j / group] =
                        search_range(f, &row[j..j + group], &importance[j..j + group], true).unwrap();
                }
                let (lo, hi) = ranges[r * groups + j / group];
                let err = (row[j] - fake_quant(row[j], lo, hi, levels)) as f64 / u[j * cols + j];
                let end = if stop_at_group { (j / group + 1) * group } else { cols };
                for k in j + 1..end {
                    row[k] -= (err * u[j * cols + k]) as f32;
                }
            }
        }
        let rb = f.byte_len(1, cols as u64).unwrap() as usize;
        let mut out = vec![0u8; rows * rb];
        for r in 0..rows {
            let (row, rg) = (&w[r * cols..(r + 1) * cols], &ranges[r * groups..(r + 1) * groups]);
            eddy_quant::quantize_row_with_ranges(f, row, rg, &mut out[r * rb..(r + 1) * rb]).unwrap();
        }
        out
    }

    /// Random weights `[rows, cols]` in [-1, 1), `samples` inputs with a
    /// shared component (`x = z + noise * r`) and their mean `x xᵀ`.
    fn correlated_problem(
        rows: usize,
        cols: usize,
        seed: u64,
        samples: usize,
        noise: f32,
    ) -> (Vec<f32>, Vec<Vec<f32>>, Vec<f64>) {
        let mut seed = seed;
        let mut rand = || {
            seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            ((seed >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
        };
        let w: Vec<f32> = (0..rows * cols).map(|_| rand()).collect();
        let xs: Vec<Vec<f32>> = (0..samples)
            .map(|_| {
                let z = rand();
                (0..cols).map(|_| z + noise * rand()).collect()
            })
            .collect();
        let mut h = vec![0f64; cols * cols];
        for x in &xs {
            for a in 0..cols {
                for b in 0..cols {
                    h[a * cols + b] += (x[a] * x[b]) as f64 / xs.len() as f64;
                }
            }
        }
        (w, xs, h)
    }

    /// The factor as it was computed before (nalgebra, unblocked).
    fn nalgebra_factor(h: &[f64], cols: usize) -> Vec<f64> {
        let mut m = nalgebra::DMatrix::from_row_slice(cols, cols, h);
        let mean_diag = (0..cols).map(|i| m[(i, i)]).sum::<f64>() / cols as f64;
        for i in 0..cols {
            if m[(i, i)] <= 0.0 {
                m[(i, i)] = 1.0;
            }
            m[(i, i)] += DAMP * mean_diag.max(1e-12);
        }
        let inv = m.cholesky().unwrap().inverse();
        inv.cholesky().unwrap().l().as_slice().to_vec()
    }

    /// The blocked, threaded factor is nalgebra's bit for bit (so GPTQ's
    /// output did not move), with a column never activated.
    #[test]
    fn factor_equals_nalgebra() {
        for (cols, seed) in [(64, 5), (200, 6)] {
            let (_, _, mut h) = correlated_problem(4, cols, seed, 300, 0.4);
            for c in 0..cols {
                h[3 * cols + c] = 0.0;
                h[c * cols + 3] = 0.0;
            }
            let want: Vec<u64> = nalgebra_factor(&h, cols).iter().map(|v| v.to_bits()).collect();
            for threads in [1, 2] {
                crate::par::set_threads(threads);
                let got: Vec<u64> =
                    inverse_hessian_factor(&h, cols).unwrap().iter().map(|v| v.to_bits()).collect();
                assert!(got == want, "{cols} columns, {threads} threads");
            }
            crate::par::set_threads(0);
        }
    }

    /// The tiled, threaded sweep gives the row-at-a-time sweep's bytes
    /// exactly, for ragged tiles and any thread count.
    #[test]
    fn tiled_threaded_sweep_equals_row_at_a_time() {
        let (rows, cols) = (37, 128);
        let (w, _, h) = correlated_problem(rows, cols, 3, 300, 0.5);
        for f in [TensorFormat::W2 { group: 32 }, TensorFormat::W4 { group: 64 }] {
            let want = gptq_row_at_a_time(f, rows, cols, &w, &h);
            for threads in [1, 2, 3] {
                crate::par::set_threads(threads);
                let (got, _) = gptq_quantize(f, rows, cols, &w, &h, true).unwrap().unwrap();
                assert!(got == want, "{f:?} on {threads} threads");
            }
            crate::par::set_threads(0);
        }
    }

    /// `Σ_x Σ_rows |(W - Q) x|²` over the calibration samples: what GPTQ
    /// minimises.
    fn output_error(f: TensorFormat, rows: usize, cols: usize, w: &[f32], xs: &[Vec<f32>], q: &[u8]) -> f64 {
        let rb = q.len() / rows;
        let mut deq = vec![0f32; rows * cols];
        for r in 0..rows {
            eddy_quant::dequantize_row(f, &q[r * rb..(r + 1) * rb], &mut deq[r * cols..(r + 1) * cols]);
        }
        let mut e = 0f64;
        for x in xs {
            for r in 0..rows {
                let d: f32 = (0..cols).map(|c| (w[r * cols + c] - deq[r * cols + c]) * x[c]).sum();
                e += (d * d) as f64;
            }
        }
        e
    }

    /// With inputs correlated across groups, pushing each column's error
    /// onto every later column (not only the rest of its group) is
    /// measurably better: GPTQ must beat the group-truncated sweep, and
    /// equal the full reference.
    #[test]
    fn error_feedback_crosses_group_boundaries() {
        let (rows, cols) = (16, 128);
        let (w, samples, h) = correlated_problem(rows, cols, 7, 512, 0.3);
        for f in [TensorFormat::W2 { group: 32 }, TensorFormat::W4 { group: 32 }] {
            let (got, _) = gptq_quantize(f, rows, cols, &w, &h, true).unwrap().unwrap();
            let truncated = gptq_reference(f, rows, cols, &w, &h, true);
            let (eg, et) = (
                output_error(f, rows, cols, &w, &samples, &got),
                output_error(f, rows, cols, &w, &samples, &truncated),
            );
            assert!(eg < 0.8 * et, "{f:?}: full propagation {eg} vs stopped at the group {et}");
            assert!(got == gptq_reference(f, rows, cols, &w, &h, false), "{f:?}: differs from the reference");
        }
    }

    /// On correlated inputs, GPTQ's output error `E|(W - Q) x|²` beats
    /// rounding each weight to its nearest code.
    #[test]
    fn gptq_reduces_output_error_on_correlated_inputs() {
        let (rows, cols) = (16, 64);
        // Inputs with a strong shared component: x = z * 1 + noise.
        let (w, samples, h) = correlated_problem(rows, cols, 1, 512, 0.3);
        let f = TensorFormat::W2 { group: 32 };
        let (gptq, _) = gptq_quantize(f, rows, cols, &w, &h, false).unwrap().unwrap();
        let mut rtn = vec![0u8; gptq.len()];
        let rb = gptq.len() / rows;
        for r in 0..rows {
            eddy_quant::quantize_row(f, &w[r * cols..(r + 1) * cols], &mut rtn[r * rb..(r + 1) * rb])
                .unwrap();
        }
        let out_err = |bytes: &[u8]| output_error(f, rows, cols, &w, &samples, bytes);
        let (eg, er) = (out_err(&gptq), out_err(&rtn));
        assert!(eg < 0.7 * er, "gptq {eg} vs round-to-nearest {er}");
    }
}
