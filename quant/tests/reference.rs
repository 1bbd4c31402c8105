//! The integer formats' scalar reference: round trips, error bounds,
//! extreme inputs, and the quantized dot product against float math.

use eddy_quant::*;
use eddy_testkit::Rng;

fn formats() -> Vec<TensorFormat> {
    let mut v = Vec::new();
    for group in GROUP_SIZES {
        v.push(TensorFormat::W8 { group });
        v.push(TensorFormat::W4 { group });
        v.push(TensorFormat::W2 { group });
    }
    v
}

fn row_bytes(f: TensorFormat, cols: usize) -> usize {
    f.byte_len(1, cols as u64).unwrap() as usize
}

#[test]
fn round_trip_error_is_at_most_half_a_step() {
    let mut rng = Rng(7);
    for f in formats() {
        let cols = f.group_size().unwrap() * 3;
        let w: Vec<f32> = (0..cols).map(|_| rng.uniform(-1.0, 1.0) * 3.0).collect();
        let mut bytes = vec![0u8; row_bytes(f, cols)];
        quantize_row(f, &w, &mut bytes).unwrap();
        let mut back = vec![0f32; cols];
        dequantize_row(f, &bytes, &mut back);
        let gb = f.group_bytes().unwrap();
        for (g, (wg, bg)) in
            w.chunks(f.group_size().unwrap()).zip(back.chunks(f.group_size().unwrap())).enumerate()
        {
            let (scale, _) = group_header(&bytes[g * gb..]);
            for (a, b) in wg.iter().zip(bg) {
                // Half a step, plus the f16 rounding of the minimum.
                assert!((a - b).abs() <= scale * 0.5 + 2e-3, "{f:?}: {a} vs {b} (scale {scale})");
            }
        }
        // Re-quantizing the dequantized row gives the same bytes.
        let mut again = vec![0u8; bytes.len()];
        quantize_row(f, &back, &mut again).unwrap();
        let mut back2 = vec![0f32; cols];
        dequantize_row(f, &again, &mut back2);
        for (a, b) in back.iter().zip(&back2) {
            assert!((a - b).abs() <= 1e-2, "{f:?}: not idempotent: {a} vs {b}");
        }
    }
}

#[test]
fn constant_zero_and_extreme_groups() {
    for f in formats() {
        let g = f.group_size().unwrap();
        let mut bytes = vec![0u8; row_bytes(f, g)];
        let mut back = vec![0f32; g];
        // Constant groups representable in f16 round-trip exactly.
        for c in [0.0f32, 1.5, -3.25, 1024.0] {
            quantize_row(f, &vec![c; g], &mut bytes).unwrap();
            dequantize_row(f, &bytes, &mut back);
            assert!(back.iter().all(|&v| v == c), "{f:?} constant {c}: {back:?}");
        }
        // Tiny magnitudes: subnormal f16 scales, no NaN.
        let tiny: Vec<f32> = (0..g).map(|i| i as f32 * 1e-7).collect();
        quantize_row(f, &tiny, &mut bytes).unwrap();
        dequantize_row(f, &bytes, &mut back);
        assert!(back.iter().all(|v| v.is_finite() && v.abs() < 1e-4));
        // Beyond the f16 range: a clear error, not infinities.
        let huge: Vec<f32> = (0..g).map(|i| if i == 0 { -1e6 } else { 1e6 }).collect();
        assert_eq!(quantize_row(f, &huge, &mut bytes), Err(QuantError::OutOfRange { group: 0 }));
        // NaN and infinity are rejected with their index.
        let mut bad = vec![0.5f32; g];
        bad[3] = f32::NAN;
        assert_eq!(quantize_row(f, &bad, &mut bytes), Err(QuantError::NonFinite { index: 3 }));
        bad[3] = f32::INFINITY;
        assert_eq!(quantize_row(f, &bad, &mut bytes), Err(QuantError::NonFinite { index: 3 }));
        // Wrong buffer length and ragged rows.
        assert_eq!(quantize_row(f, &vec![0.0; g], &mut bytes[1..]), Err(QuantError::BadLength));
        assert!(matches!(quantize_row(f, &vec![0.0; g + 1], &mut bytes), Err(QuantError::Format(_))));
    }
    assert_eq!(quantize_row(TensorFormat::F16, &[0.0; 32], &mut [0u8; 64]), Err(QuantError::NotInteger));
}

#[test]
fn clip_ranges_clamp_outliers() {
    let f = TensorFormat::W2 { group: 32 };
    let mut w = vec![0.1f32; 32];
    w[0] = 10.0;
    let mut bytes = vec![0u8; row_bytes(f, 32)];
    quantize_row_with_ranges(f, &w, &[(0.0, 1.0)], &mut bytes).unwrap();
    let mut back = vec![0f32; 32];
    dequantize_row(f, &bytes, &mut back);
    assert!((back[0] - 1.0).abs() < 1e-3, "outlier clamped to the range: {}", back[0]);
    assert!((back[1] - 0.0).abs() < 0.2);
    assert_eq!(
        quantize_row_with_ranges(f, &w, &[(0.0, 1.0), (0.0, 1.0)], &mut bytes),
        Err(QuantError::BadLength)
    );
}

#[test]
fn activation_quantization() {
    let x: Vec<f32> = (0..70).map(|i| (i as f32 - 35.0) * 0.1).collect();
    let (mut q, mut s, mut sums) = (vec![0i8; 70], vec![0f32; 3], vec![0i32; 3]);
    quantize_activations_i8(&x, 32, &mut q, &mut s, &mut sums).unwrap();
    for (g, xg) in x.chunks(32).enumerate() {
        let amax = xg.iter().fold(0f32, |m, v| m.max(v.abs()));
        assert_eq!(s[g], amax / 127.0);
        let qg = &q[g * 32..(g * 32 + xg.len())];
        assert_eq!(sums[g], qg.iter().map(|&v| v as i32).sum::<i32>());
        assert!(qg.iter().any(|&v| v.abs() == 127));
        for (a, &b) in xg.iter().zip(qg) {
            assert!((a - s[g] * b as f32).abs() <= s[g] * 0.5 + 1e-6);
        }
    }
    // All zeros: scale 0, codes 0.
    quantize_activations_i8(&[0.0; 32], 32, &mut q, &mut s, &mut sums).unwrap();
    assert_eq!((s[0], sums[0]), (0.0, 0));
    assert_eq!(
        quantize_activations_i8(&[f32::NAN; 4], 32, &mut q, &mut s, &mut sums),
        Err(QuantError::NonFinite { index: 0 })
    );
    assert_eq!(quantize_activations_i8(&x, 32, &mut q[..10], &mut s, &mut sums), Err(QuantError::BadLength));
}

/// The integer dot product equals float math on the dequantized operands.
#[test]
fn dot_matches_dequantized_float_dot() {
    let mut rng = Rng(99);
    for f in formats() {
        let g = f.group_size().unwrap();
        let cols = g * 4;
        let w: Vec<f32> = (0..cols).map(|_| rng.uniform(-1.0, 1.0)).collect();
        let x: Vec<f32> = (0..cols).map(|_| rng.uniform(-1.0, 1.0) * 4.0).collect();
        let mut wb = vec![0u8; row_bytes(f, cols)];
        quantize_row(f, &w, &mut wb).unwrap();
        let (mut q, mut s, mut sums) = (vec![0i8; cols], vec![0f32; 4], vec![0i32; 4]);
        quantize_activations_i8(&x, g, &mut q, &mut s, &mut sums).unwrap();
        let mut wd = vec![0f32; cols];
        dequantize_row(f, &wb, &mut wd);
        let expect: f64 =
            wd.iter().zip(&q).enumerate().map(|(i, (a, &b))| *a as f64 * (s[i / g] * b as f32) as f64).sum();
        let got = dot_row_i8(f, &wb, &q, &s, &sums);
        let mag: f64 = wd.iter().zip(&x).map(|(a, b)| (a * b).abs() as f64).sum();
        assert!((got as f64 - expect).abs() <= 1e-5 * mag + 1e-6, "{f:?}: {got} vs {expect}");
        let mut out = vec![0f32; 2];
        let two_rows = [wb.clone(), wb.clone()].concat();
        matvec_i8(f, &two_rows, cols, &q, &s, &sums, &mut out);
        assert_eq!(out, [got, got]);
    }
}

/// Largest codes times ±127 over the largest group cannot overflow i32.
#[test]
fn integer_accumulation_is_exact_at_the_extremes() {
    for f in
        [TensorFormat::W8 { group: 256 }, TensorFormat::W4 { group: 256 }, TensorFormat::W2 { group: 256 }]
    {
        let bits = f.code_bits().unwrap();
        let codes = vec![0xffu8; 256 * bits as usize / 8];
        let max_code = (1i32 << bits) - 1;
        assert_eq!(group_dot_i32(bits, &codes, &[127; 256]), 256 * max_code * 127);
        assert_eq!(group_dot_i32(bits, &codes, &[-127; 256]), -256 * max_code * 127);
        for i in 0..256 {
            assert_eq!(code_at(bits, &codes, i) as i32, max_code);
        }
    }
}

#[test]
fn packing_order_is_little_end_first() {
    // W2: code 4k + j lives in bits 2j..2j+2 of byte k.
    assert_eq!(code_at(2, &[0b11_10_01_00], 0), 0);
    assert_eq!(code_at(2, &[0b11_10_01_00], 1), 1);
    assert_eq!(code_at(2, &[0b11_10_01_00], 3), 3);
    // W4: low nibble first.
    assert_eq!(code_at(4, &[0xa5], 0), 5);
    assert_eq!(code_at(4, &[0xa5], 1), 10);
}

/// The vectorizable rounding equals libm's `roundf` everywhere that
/// matters: ties, near-ties, huge values, signed zeros, non-finite values.
#[test]
fn round_half_away_equals_roundf() {
    use eddy_quant::round_half_away;
    let mut cases = vec![
        0.0f32,
        -0.0,
        0.5,
        -0.5,
        1.5,
        -1.5,
        2.5,
        -2.5,
        0.49999997,
        -0.49999997,
        126.5,
        -126.5,
        127.49,
        8388607.5,
        8388608.0,
        -8388609.0,
        1e30,
        -1e30,
        f32::INFINITY,
        f32::NEG_INFINITY,
        f32::MIN_POSITIVE,
        3e9,
        -3e9,
    ];
    let mut s = 0x1234_5678u32;
    for _ in 0..200_000 {
        s ^= s << 13;
        s ^= s >> 17;
        s ^= s << 5;
        cases.push(f32::from_bits(s));
        cases.push((s % 100_000) as f32 / 200.0 - 250.0);
    }
    for x in cases {
        let (got, want) = (round_half_away(x), libm::roundf(x));
        assert!(got.to_bits() == want.to_bits() || (got.is_nan() && want.is_nan()), "{x}: {got} vs {want}");
    }
}
