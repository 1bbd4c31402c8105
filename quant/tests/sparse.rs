//! The 2:4 sparse formats' scalar reference: packing keeps exactly the
//! kept weights (pruned ones read back as 0), positions round-trip, and
//! the dot product equals the dense product of the same weights.

use eddy_quant::*;
use eddy_testkit::Rng;

fn formats() -> Vec<Sparse24> {
    let mut v = Vec::new();
    for group in GROUP_SIZES {
        for dense in [TensorFormat::W8 { group }, TensorFormat::W4 { group }, TensorFormat::W2 { group }] {
            v.push(Sparse24::new(dense).unwrap());
        }
    }
    v
}

/// A random 2:4 mask: two of every four, every one of the six patterns.
fn mask(rng: &mut Rng, cols: usize) -> Vec<bool> {
    const PATTERNS: [[bool; 4]; 6] = [
        [true, true, false, false],
        [true, false, true, false],
        [true, false, false, true],
        [false, true, true, false],
        [false, true, false, true],
        [false, false, true, true],
    ];
    (0..cols / 4).flat_map(|_| PATTERNS[rng.below(6) as usize]).collect()
}

#[test]
fn sizes_are_half_the_codes_plus_positions() {
    let f = Sparse24::new(TensorFormat::W4 { group: 64 }).unwrap();
    // 4 header + 32 kept codes x 4 bits + 64 / 4 blocks x 4 bits.
    assert_eq!(f.group_bytes(), 4 + 16 + 8);
    assert_eq!(f.bits_per_weight(), 3.5);
    assert_eq!(f.byte_len(3, 128), Ok(3 * 2 * 28));
    assert!(f.byte_len(1, 96).is_err());
    assert!(Sparse24::new(TensorFormat::F16).is_err());
}

#[test]
fn round_trip_keeps_the_kept_weights_and_zeros_the_rest() {
    let mut rng = Rng(11);
    for f in formats() {
        let cols = f.group_size() * 3;
        let w: Vec<f32> = (0..cols).map(|_| rng.uniform(-2.0, 2.0)).collect();
        let keep = mask(&mut rng, cols);
        let mut bytes = vec![0u8; f.byte_len(1, cols as u64).unwrap() as usize];
        f.quantize_row(&w, &keep, &mut bytes).unwrap();
        let mut back = vec![7f32; cols];
        f.dequantize_row(&bytes, &mut back);
        // The kept weights of the dense format's row, quantized with the
        // same ranges, are what comes back.
        let gb = f.group_bytes();
        for (i, ((&a, &b), &k)) in w.iter().zip(&back).zip(&keep).enumerate() {
            if k {
                let (scale, _) = group_header(&bytes[i / f.group_size() * gb..]);
                assert!((a - b).abs() <= scale * 0.5 + 2e-3, "{f:?} weight {i}: {a} vs {b}");
            } else {
                assert_eq!(b, 0.0, "{f:?} pruned weight {i}");
            }
        }
        for b in 0..cols / 4 {
            let g = b * 4 / f.group_size();
            let meta = &bytes[g * gb + 4 + f.group_size() / 2 * f.code_bits() as usize / 8..];
            let (p, q) = sparse24_positions(meta, b % (f.group_size() / 4));
            let kept: Vec<usize> = (0..4).filter(|&j| keep[b * 4 + j]).collect();
            assert_eq!(vec![p, q], kept, "{f:?} block {b}");
        }
    }
}

#[test]
fn masks_that_are_not_two_of_four_are_refused() {
    let f = Sparse24::new(TensorFormat::W4 { group: 32 }).unwrap();
    let w = vec![1.0f32; 32];
    let mut keep = [true, false, true, false].repeat(8);
    keep[5] = true;
    let mut bytes = vec![0u8; f.group_bytes()];
    assert_eq!(f.quantize_row(&w, &keep, &mut bytes), Err(QuantError::NotTwoOfFour { block: 1 }));
    assert_eq!(f.quantize_row(&w, &keep[..28], &mut bytes), Err(QuantError::BadLength));
    let mut nan = w.clone();
    nan[3] = f32::NAN;
    let keep = [true, false, false, true].repeat(8);
    assert_eq!(f.quantize_row(&nan, &keep, &mut bytes), Err(QuantError::NonFinite { index: 3 }));
}

/// The sparse product equals the dense reference product of the same row
/// with the pruned weights' codes forced to contribute 0: exactly in the
/// integer sums, and within f32 rounding of the dequantized float dot.
#[test]
fn dot_product_equals_the_dequantized_row_times_the_activations() {
    let mut rng = Rng(23);
    for f in formats() {
        let (g, cols) = (f.group_size(), f.group_size() * 4);
        let rows = 3;
        let w: Vec<f32> = (0..rows * cols).map(|_| rng.uniform(-1.0, 1.0)).collect();
        let keep: Vec<bool> = (0..rows).flat_map(|_| mask(&mut rng, cols)).collect();
        let rb = f.byte_len(1, cols as u64).unwrap() as usize;
        let mut m = vec![0u8; rows * rb];
        for r in 0..rows {
            let span = r * cols..(r + 1) * cols;
            f.quantize_row(&w[span.clone()], &keep[span], &mut m[r * rb..(r + 1) * rb]).unwrap();
        }
        let x: Vec<f32> = (0..cols).map(|_| rng.uniform(-3.0, 3.0)).collect();
        let mut xq = vec![0i8; cols];
        let (mut xs, mut sums) = (vec![0f32; cols / g], vec![0i32; cols / g]);
        quantize_activations_i8(&x, g, &mut xq, &mut xs, &mut sums).unwrap();
        let mut out = vec![0f32; rows];
        f.matvec_i8(&m, cols, &xq, &xs, &mut out);
        for r in 0..rows {
            let mut back = vec![0f32; cols];
            f.dequantize_row(&m[r * rb..(r + 1) * rb], &mut back);
            let want: f64 = back
                .iter()
                .zip(&xq)
                .enumerate()
                .map(|(i, (&a, &q))| a as f64 * q as f64 * xs[i / g] as f64)
                .sum();
            let mag: f64 = back
                .iter()
                .zip(&xq)
                .enumerate()
                .map(|(i, (&a, &q))| (a as f64 * q as f64 * xs[i / g] as f64).abs())
                .sum();
            assert!(
                ((out[r] as f64) - want).abs() <= 1e-5 * mag + 1e-5,
                "{f:?} row {r}: {} vs {want}",
                out[r]
            );
        }
        // The integer sums count only the kept columns.
        let group = &m[..f.group_bytes()];
        let (codes, meta) = group[4..].split_at(g / 2 * f.code_bits() as usize / 8);
        let (_, sum) = sparse_group_dot_i32(f.code_bits(), codes, meta, &xq[..g]);
        let want: i32 = (0..g).filter(|&i| keep[i]).map(|i| xq[i] as i32).sum();
        assert_eq!(sum, want, "{f:?}");
    }
}
