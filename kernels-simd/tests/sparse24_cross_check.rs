//! The 2:4 sparse product of every compiled kernel set this CPU supports
//! against `eddy_quant::Sparse24`'s reference: bit-exact for W8/W4/W2 at
//! every group size, random masks (all six patterns), extreme activations
//! and codes, odd row counts, and shapes the SIMD loop leaves to the
//! reference. Sets without a sparse kernel (NEON, Cortex-M) run the
//! reference through `..SCALAR`, checked here all the same under QEMU.

use eddy_kernels::{compiled, supported, ActsI8, SparseMatrix, SCALAR};
use eddy_quant::{quantize_activations_i8, Sparse24, TensorFormat, GROUP_SIZES};
use eddy_testkit::Lcg as Rng;

/// A random 2:4 mask over `n` weights.
fn mask(rng: &mut Rng, n: usize) -> Vec<bool> {
    const PATTERNS: [[bool; 4]; 6] = [
        [true, true, false, false],
        [true, false, true, false],
        [true, false, false, true],
        [false, true, true, false],
        [false, true, false, true],
        [false, false, true, true],
    ];
    (0..n / 4).flat_map(|_| PATTERNS[rng.range(0, 5)]).collect()
}

fn check(f: Sparse24, rows: usize, cols: usize, w: &[f32], x: &[f32], rng: &mut Rng) {
    let g = f.group_size();
    let rb = f.byte_len(1, cols as u64).unwrap() as usize;
    let keep = mask(rng, rows * cols);
    let mut m = vec![0u8; rb * rows];
    for r in 0..rows {
        let span = r * cols..(r + 1) * cols;
        f.quantize_row(&w[span.clone()], &keep[span], &mut m[r * rb..(r + 1) * rb]).unwrap();
    }
    let groups = cols.div_ceil(g);
    let (mut q, mut s, mut sums) = (vec![0i8; cols], vec![0f32; groups], vec![0i32; groups]);
    quantize_activations_i8(x, g, &mut q, &mut s, &mut sums).unwrap();
    let acts = ActsI8 { q: &q, scales: &s, sums: &sums };
    let w = SparseMatrix { format: f, bytes: &m, cols };
    let mut want = vec![0f32; rows];
    (SCALAR.matvec_sparse24_i8)(w, &acts, &mut want);
    let mut direct = vec![0f32; rows];
    f.matvec_i8(&m, cols, &q, &s, &mut direct);
    assert_eq!(want, direct, "the scalar set is the reference");
    for k in compiled().iter().filter(|k| supported(k)) {
        let mut got = vec![1f32; rows];
        (k.matvec_sparse24_i8)(w, &acts, &mut got);
        let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<u32>>();
        assert_eq!(bits(&got), bits(&want), "{} {f:?} rows {rows} cols {cols}", k.name);
    }
}

#[test]
fn sparse_products_equal_the_reference_bit_for_bit() {
    let mut rng = Rng(0x24);
    for group in GROUP_SIZES {
        for dense in [TensorFormat::W8 { group }, TensorFormat::W4 { group }, TensorFormat::W2 { group }] {
            let f = Sparse24::new(dense).unwrap();
            let g = group as usize;
            for (rows, cols) in [(1, g), (7, 3 * g), (16, 512.max(g))] {
                let w = rng.vec(rows * cols, 1.0);
                let x = rng.vec(cols, 3.0);
                check(f, rows, cols, &w, &x, &mut rng);
                // Extremes: ±127 activations and full-range codes.
                let x: Vec<f32> = (0..cols).map(|i| if i % 3 == 0 { -1.0 } else { 1.0 }).collect();
                let w: Vec<f32> = (0..rows * cols).map(|i| if i % 2 == 0 { -1.0 } else { 1.0 }).collect();
                check(f, rows, cols, &w, &x, &mut rng);
            }
        }
    }
}

#[test]
fn short_buffers_fall_back_to_the_reference() {
    let mut rng = Rng(9);
    let f = Sparse24::new(TensorFormat::W4 { group: 32 }).unwrap();
    let (rows, cols) = (3, 64);
    let w = rng.vec(rows * cols, 1.0);
    let x = rng.vec(cols, 1.0);
    check(f, rows, cols, &w, &x, &mut rng);
    // Fewer matrix bytes than rows asked for: every set computes what it
    // can without reading past the end (the reference's `zip`).
    let keep = mask(&mut rng, cols);
    let rb = f.byte_len(1, cols as u64).unwrap() as usize;
    let mut m = vec![0u8; rb];
    f.quantize_row(&w[..cols], &keep, &mut m).unwrap();
    let (mut q, mut s, mut sums) = (vec![0i8; cols], vec![0f32; 2], vec![0i32; 2]);
    quantize_activations_i8(&x, 32, &mut q, &mut s, &mut sums).unwrap();
    let acts = ActsI8 { q: &q, scales: &s, sums: &sums };
    for k in compiled().iter().filter(|k| supported(k)) {
        let mut out = vec![5f32; 2];
        (k.matvec_sparse24_i8)(SparseMatrix { format: f, bytes: &m, cols }, &acts, &mut out);
        assert_eq!(out[1], 5.0, "{}: a row that is not there is not written", k.name);
        assert_eq!(out[0].to_bits(), f.dot_row_i8(&m, &q, &s).to_bits(), "{}", k.name);
    }
}
