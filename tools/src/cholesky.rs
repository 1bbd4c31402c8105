//! A blocked, threaded Cholesky factorization that gives nalgebra's
//! `Cholesky::new` bit for bit, and the inverse from it on threads.
//!
//! nalgebra factors column by column: column `j` gets `-L[j][k] * L[i][k]`
//! added for `k = 0, 1, ..., j - 1` in turn, then its diagonal becomes its
//! square root and the rest is divided by it. Every element's chain of
//! operations is fixed by that order, not by which element is done when;
//! here the columns go in panels of [`PANEL`]: first each row's panel
//! elements take the products with all finished columns (rows split over
//! threads, the panel's part of `L` copied out, transposed, so the row's
//! elements update side by side), then the panel is finished row by row,
//! its diagonal block first. Each element sees the same operations in the
//! same order, so the factor is nalgebra's exactly, with the work on
//! threads and each finished column read once per panel from cache instead
//! of once per later column.

use nalgebra::{Cholesky, DMatrix, Dyn};

/// Columns factored together.
const PANEL: usize = 32;

/// Rows per thread at least (small matrices stay on one thread).
const MIN_ROWS: usize = 64;

/// The lower Cholesky factor `L` of the symmetric `n x n` row-major `a`
/// (only its lower triangle is read), written over `a`'s lower triangle;
/// the strict upper triangle is set to zero. False, as nalgebra's `None`,
/// if a pivot is not positive (`a` is then partly overwritten).
pub fn cholesky_lower(a: &mut [f64], n: usize) -> bool {
    if a.len() != n * n {
        return false;
    }
    let mut panel_t = vec![0f64; n * PANEL];
    for j0 in (0..n).step_by(PANEL) {
        let j1 = (j0 + PANEL).min(n);
        let width = j1 - j0;
        // Rows j0..j1 of L over the finished columns, transposed:
        // panel_t[k * PANEL + m] = L[j0 + m][k].
        for m in 0..width {
            for k in 0..j0 {
                panel_t[k * PANEL + m] = a[(j0 + m) * n + k];
            }
        }
        let panel_t = &panel_t[..j0 * PANEL];
        let (done, rest) = a.split_at_mut(j1 * n);
        // The diagonal block, in row order: each row needs the rows above.
        for i in j0..j1 {
            let (above, row) = done.split_at_mut(i * n);
            let row = &mut row[..n];
            update_from_finished(row, j0, (i + 1).min(j1), panel_t);
            if !finish_panel(row, i, j0, (i + 1).min(j1), &above[j0 * n..]) {
                return false;
            }
        }
        let diagonal_block = &done[j0 * n..];
        let ok = crate::par::try_for_rows(rest, n, MIN_ROWS, |_, rows| {
            for row in rows.chunks_exact_mut(n) {
                update_from_finished(row, j0, j1, panel_t);
                finish_panel(row, usize::MAX, j0, j1, diagonal_block);
            }
            Ok::<(), ()>(())
        });
        if ok.is_err() {
            return false;
        }
    }
    for i in 0..n {
        a[i * n + i + 1..(i + 1) * n].fill(0.0);
    }
    true
}

/// `row[j] -= L[j][k] * row[k]` for the panel's columns `j0..j_end` and the
/// finished columns `k = 0..j0` in order (`panel_t` as in
/// [`cholesky_lower`]).
#[inline]
fn update_from_finished(row: &mut [f64], j0: usize, j_end: usize, panel_t: &[f64]) {
    let width = j_end - j0;
    let mut acc = [0f64; PANEL];
    acc[..width].copy_from_slice(&row[j0..j_end]);
    for (k, l_panel) in panel_t.chunks_exact(PANEL).enumerate() {
        let x = row[k];
        for (a, &l) in acc.iter_mut().zip(l_panel) {
            *a -= l * x;
        }
    }
    row[j0..j_end].copy_from_slice(&acc[..width]);
}

/// Finish the panel's columns `j0..j_end` of `row` (row `i` of `a`;
/// `usize::MAX` for a row below the panel): the products with the panel's
/// earlier columns in order, then the square root on the diagonal or the
/// division by it below. `block` holds the finished rows `j0..` of `L`.
/// False if a diagonal is not positive.
#[inline]
fn finish_panel(row: &mut [f64], i: usize, j0: usize, j_end: usize, block: &[f64]) -> bool {
    let n = row.len();
    for j in j0..j_end {
        let mut v = row[j];
        if j == i {
            for &x in &row[j0..j] {
                v -= x * x;
            }
            // nalgebra's `None` on a zero, negative or NaN pivot.
            if v.is_nan() || v <= 0.0 {
                return false;
            }
            row[j] = v.sqrt();
        } else {
            let l_row = &block[(j - j0) * n..(j - j0 + 1) * n];
            for k in j0..j {
                v -= l_row[k] * row[k];
            }
            row[j] = v / l_row[j];
        }
    }
    true
}

/// `A⁻¹` of the `n x n` matrix whose lower Cholesky factor is `l`
/// (row-major, as [`cholesky_lower`] leaves it), as nalgebra's
/// `Cholesky::inverse` computes it (each column solved on its own, the
/// columns split over threads), row-major.
pub fn inverse_from_factor(l: &[f64], n: usize) -> Vec<f64> {
    let chol = Cholesky::<f64, Dyn>::pack_dirty(DMatrix::from_row_slice(n, n, l));
    // Column-major: column j of the inverse is `inv_t[j * n..(j + 1) * n]`.
    let mut inv_t = vec![0f64; n * n];
    let result: Result<(), ()> = crate::par::try_for_rows(&mut inv_t, n, MIN_ROWS, |first, piece| {
        let cols = piece.len() / n.max(1);
        let mut b = DMatrix::<f64>::zeros(n, cols);
        for c in 0..cols {
            b[(first + c, c)] = 1.0;
        }
        chol.solve_mut(&mut b);
        piece.copy_from_slice(b.as_slice());
        Ok(())
    });
    debug_assert!(result.is_ok());
    // The inverse as nalgebra returns it is not exactly symmetric: keep
    // element (i, j) from column j, as reading its matrix would.
    let mut inv = vec![0f64; n * n];
    for (j, col) in inv_t.chunks_exact(n).enumerate() {
        for (i, &v) in col.iter().enumerate() {
            inv[i * n + j] = v;
        }
    }
    inv
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A random symmetric positive definite `n x n` matrix (`B Bᵀ / n + I / 10`).
    fn spd(n: usize, seed: u64) -> Vec<f64> {
        let mut s = seed;
        let mut rand = || {
            s = s.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            ((s >> 11) as f64 / (1u64 << 53) as f64) * 2.0 - 1.0
        };
        let b: Vec<f64> = (0..n * n).map(|_| rand()).collect();
        let mut a = vec![0f64; n * n];
        for i in 0..n {
            for j in 0..n {
                let dot: f64 = (0..n).map(|k| b[i * n + k] * b[j * n + k]).sum();
                a[i * n + j] = dot / n as f64 + if i == j { 0.1 } else { 0.0 };
            }
        }
        a
    }

    fn bits(v: &[f64]) -> Vec<u64> {
        v.iter().map(|x| x.to_bits()).collect()
    }

    /// Factor and inverse equal nalgebra's bit for bit, for sizes below,
    /// at and across panel and thread boundaries, on 1 to 3 threads.
    #[test]
    fn factor_and_inverse_equal_nalgebra() {
        for (n, seed) in [(1, 1), (5, 2), (32, 3), (33, 4), (100, 5), (161, 6)] {
            let a = spd(n, seed);
            let chol = DMatrix::from_row_slice(n, n, &a).cholesky().unwrap();
            let want_l = chol.l();
            let want_inv = chol.inverse();
            for threads in [1, 2, 3] {
                crate::par::set_threads(threads);
                let mut l = a.clone();
                assert!(cholesky_lower(&mut l, n));
                // nalgebra's matrices are column-major: compare transposed.
                assert_eq!(bits(&l), bits(want_l.transpose().as_slice()), "factor, n {n}, {threads} threads");
                let inv = inverse_from_factor(&l, n);
                assert_eq!(
                    bits(&inv),
                    bits(want_inv.transpose().as_slice()),
                    "inverse, n {n}, {threads} threads"
                );
            }
        }
        crate::par::set_threads(0);
    }

    /// A matrix that is not positive definite is refused, as by nalgebra.
    #[test]
    fn indefinite_is_refused() {
        let n = 40;
        let mut a = spd(n, 9);
        a[35 * n + 35] = -1.0;
        assert!(DMatrix::from_row_slice(n, n, &a).cholesky().is_none());
        assert!(!cholesky_lower(&mut a, n));
    }
}
