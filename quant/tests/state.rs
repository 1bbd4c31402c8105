//! The state codec's scalar reference: error bounds, the in-place decode
//! agreeing bit for bit with the stored codes, packing, extreme inputs.

use eddy_quant::{dequantize_state_group, requantize_state_group, StateBits};
use eddy_testkit::Rng;

const BOTH: [StateBits; 2] = [StateBits::Eight, StateBits::Four];

/// Code a copy of `v`; return (decoded in place, decoded from the codes, scale, codes).
fn round_trip(bits: StateBits, v: &[f32]) -> (Vec<f32>, Vec<f32>, f32, Vec<u8>) {
    let mut work = v.to_vec();
    let mut codes = vec![0u8; bits.code_bytes(v.len())];
    let scale = requantize_state_group(bits, &mut work, &mut codes);
    let mut decoded = vec![f32::NAN; v.len()];
    dequantize_state_group(bits, &codes, scale, &mut decoded);
    (work, decoded, scale, codes)
}

#[test]
fn error_is_at_most_half_a_step_and_in_place_equals_decoded() {
    let mut rng = Rng(11);
    for bits in BOTH {
        for len in [1, 2, 3, 7, 16, 31, 32, 33, 64] {
            for magnitude in [1e-30f32, 1e-6, 0.01, 1.0, 300.0, 1e30] {
                let v: Vec<f32> = (0..len).map(|_| rng.uniform(-1.0, 1.0) * magnitude).collect();
                let (work, decoded, scale, _) = round_trip(bits, &v);
                let amax = v.iter().fold(0f32, |m, x| m.max(x.abs()));
                assert_eq!(scale, amax / bits.max_code() as f32, "{bits:?}");
                for ((a, w), d) in v.iter().zip(&work).zip(&decoded) {
                    assert_eq!(w.to_bits(), d.to_bits(), "{bits:?} len {len}: in place {w} vs decoded {d}");
                    // Half a step plus the rounding of v / scale and of code * scale.
                    let bound = 0.5 * scale + 4.0 * f32::EPSILON * amax;
                    assert!((a - d).abs() <= bound, "{bits:?} len {len}: {a} -> {d}, scale {scale}");
                }
            }
        }
    }
}

#[test]
fn largest_magnitude_is_kept_and_codes_stay_in_range() {
    let mut rng = Rng(5);
    for bits in BOTH {
        let q = bits.max_code();
        let v: Vec<f32> = (0..32).map(|_| rng.uniform(-1.0, 1.0)).collect();
        let (_, decoded, scale, codes) = round_trip(bits, &v);
        let (i, amax) =
            v.iter().enumerate().fold((0, 0f32), |m, (i, x)| if x.abs() > m.1 { (i, x.abs()) } else { m });
        assert!((decoded[i].abs() - amax).abs() <= 2.0 * f32::EPSILON * amax);
        assert_eq!(decoded[i].signum(), v[i].signum());
        for d in &decoded {
            let k = d / scale;
            assert!(k.abs() <= q as f32 + 1e-3, "{bits:?}: code {k}");
            assert!((k - k.round()).abs() < 1e-3, "{bits:?}: not a multiple of the scale");
        }
        assert_eq!(codes.len(), bits.code_bytes(32));
    }
}

#[test]
fn zero_state_is_zero_bytes_and_positive_zero() {
    for bits in BOTH {
        let (work, decoded, scale, codes) = round_trip(bits, &[0.0; 9]);
        assert_eq!(scale, 0.0);
        assert!(codes.iter().all(|&c| c == 0));
        for x in work.iter().chain(&decoded) {
            assert_eq!(x.to_bits(), 0, "{bits:?}: a zero state must decode to +0.0");
        }
        // A fresh (all zero) buffer decodes to +0.0 as well.
        let mut out = [1f32; 9];
        dequantize_state_group(bits, &[0u8; 9], 0.0, &mut out);
        assert!(out.iter().all(|x| x.to_bits() == 0));
    }
}

#[test]
fn packing_is_twos_complement_low_nibble_first() {
    // scale 1: values are their codes.
    let v = [7.0f32, -7.0, 3.0, -1.0, 0.0];
    let (_, decoded, scale, codes) = round_trip(StateBits::Four, &v);
    assert_eq!(scale, 1.0);
    assert_eq!(codes, vec![0x97, 0xf3, 0x00]);
    assert_eq!(decoded, v.to_vec());
    let v = [127.0f32, -127.0, -1.0];
    let (_, decoded, _, codes) = round_trip(StateBits::Eight, &v);
    assert_eq!(codes, vec![0x7f, 0x81, 0xff]);
    assert_eq!(decoded, v.to_vec());
}

#[test]
fn ties_round_to_even() {
    // amax 14 -> 4-bit scale 2: 3 is 1.5 steps -> 2, -5 is -2.5 -> -2, 1 is 0.5 -> 0.
    let (_, decoded, scale, _) = round_trip(StateBits::Four, &[14.0, 3.0, -5.0, 1.0, -7.0]);
    assert_eq!(scale, 2.0);
    assert_eq!(decoded, vec![14.0, 4.0, -4.0, 0.0, -8.0]);
}

#[test]
fn non_finite_values_do_not_panic() {
    for bits in BOTH {
        let (_, decoded, _, _) = round_trip(bits, &[f32::NAN, 1.0, -2.0]);
        assert_eq!(decoded[0], 0.0, "{bits:?}: NaN codes as 0");
        assert!(decoded[2] < 0.0);
        let (_, decoded, scale, _) = round_trip(bits, &[f32::INFINITY, 1.0]);
        assert!(scale.is_infinite());
        assert!(decoded.iter().all(|x| x.is_nan()));
    }
}

#[test]
fn requantizing_decoded_values_is_stable() {
    // What a step stores and the next step decodes codes back to itself:
    // re-coding decoded values changes them by at most one ulp-level step.
    let mut rng = Rng(3);
    for bits in BOTH {
        let v: Vec<f32> = (0..48).map(|_| rng.uniform(-1.0, 1.0) * 5.0).collect();
        let (once, _, scale, _) = round_trip(bits, &v);
        let (twice, _, _, _) = round_trip(bits, &once);
        for (a, b) in once.iter().zip(&twice) {
            assert!((a - b).abs() <= 4.0 * f32::EPSILON * scale * bits.max_code() as f32, "{bits:?}");
        }
    }
}

#[test]
fn slowly_decaying_group_decays_like_f32() {
    // A state whose every value decays by `a` per token, re-coded each
    // token (what a step does with no input): the coded group must decay
    // at the f32 rate, not stall (a 16-bit scale rounds `a * scale` back to
    // `scale` when `a` is this close to 1).
    let a = 0.999f32;
    let mut rng = Rng(21);
    for bits in BOTH {
        let start: Vec<f32> = (0..32).map(|_| rng.uniform(-1.0, 1.0)).collect();
        let mut coded = start.clone();
        let mut codes = vec![0u8; bits.code_bytes(32)];
        requantize_state_group(bits, &mut coded, &mut codes);
        let first_max = coded.iter().fold(0f32, |m, x| m.max(x.abs()));
        for _ in 0..1000 {
            for v in coded.iter_mut() {
                *v *= a;
            }
            requantize_state_group(bits, &mut coded, &mut codes);
        }
        let max = coded.iter().fold(0f32, |m, x| m.max(x.abs()));
        let want = first_max * a.powi(1000);
        assert!((max / want - 1.0).abs() < 1e-3, "{bits:?}: decayed to {max}, f32 rate gives {want}");
    }
}
