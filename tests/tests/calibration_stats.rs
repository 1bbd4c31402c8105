//! Calibration statistics from the batched prefill hook
//! (`Session::prefill_observed`) against the stepping hook
//! (`Session::step_observed`, the path calibration used before): the same
//! f64 sums in the same token order, so the figures must be bit-identical,
//! also when the text runs as separate sequences (`--calib-ctx`).

use eddy::file::AlignedBytes;
use eddy::{Model, Session};
use eddy_cli::calibrate::{collect_activation_stats_for, ActivationStats, CALIB_CHUNK};
use eddy_cli::convert::{convert_dir, WeightDtype};
use eddy_tests::{fixture_dir, load_reference};
use std::collections::HashMap;

/// Mean squares and full `E[x xᵀ]` by stepping, as calibration did before,
/// the state reset every `context` tokens.
fn stepped_stats(
    model: &Model<'_>,
    tokens: &[u32],
    context: usize,
) -> (HashMap<String, Vec<f32>>, HashMap<String, Vec<f64>>) {
    let mut sums: HashMap<String, Vec<f64>> = HashMap::new();
    let mut outer: HashMap<String, Vec<f64>> = HashMap::new();
    let mut session = Session::new_owned(model);
    for (i, &t) in tokens.iter().enumerate() {
        if i % context == 0 {
            session.reset();
        }
        session
            .step_observed(t, &mut |name, x| {
                let acc = sums.entry(name.to_string()).or_insert_with(|| vec![0.0; x.len()]);
                for (a, v) in acc.iter_mut().zip(x) {
                    *a += (*v as f64) * (*v as f64);
                }
                let n = x.len();
                let h = outer.entry(name.to_string()).or_insert_with(|| vec![0.0; n * n]);
                for r in 0..n {
                    for c in r..n {
                        h[r * n + c] += x[r] as f64 * x[c] as f64;
                    }
                }
            })
            .unwrap();
    }
    let stats = ActivationStats::from_sums(sums, outer, tokens.len());
    (stats.mean_sq, stats.hessians)
}

#[test]
fn batched_statistics_equal_stepped_ones_bit_for_bit() {
    let fixtures = [
        "mamba-tiny-tied",
        "mamba2-tiny",
        "lfm2-tiny",
        "gla-tiny",
        "gated-deltanet-tiny",
        "recurrentgemma-tiny",
        "rwkv4-tiny",
        "rwkv7-tiny",
        "gru-tiny",
        "lstm-tiny",
    ];
    for fixture in fixtures {
        let conv = convert_dir(&fixture_dir(fixture), WeightDtype::F32).unwrap();
        let bytes = AlignedBytes::copy_from(&conv.bytes);
        let model = Model::from_bytes(bytes.as_slice()).unwrap();
        // More tokens than one prefill chunk, and a ragged last chunk.
        let ids = load_reference(fixture).input_ids;
        let tokens: Vec<u32> = ids.iter().cycle().take(CALIB_CHUNK + 40).copied().collect();
        // One sequence, and sequences of 70 tokens (the last one ragged).
        for context in [None, Some(70)] {
            let (mean_sq, hessians) = stepped_stats(&model, &tokens, context.unwrap_or(tokens.len()));
            let got = collect_activation_stats_for(&model, &tokens, context, &|_| true, |_| {}).unwrap();
            compare(&format!("{fixture} context {context:?}"), &got, &mean_sq, &hessians);
        }
    }
}

/// `got` has exactly the `mean_sq` and `hessians` (bit for bit).
fn compare(
    fixture: &str,
    got: &ActivationStats,
    mean_sq: &HashMap<String, Vec<f32>>,
    hessians: &HashMap<String, Vec<f64>>,
) {
    assert!(!mean_sq.is_empty(), "{fixture}: no linear layer observed");
    assert_eq!(got.mean_sq.len(), mean_sq.len(), "{fixture}: layers observed");
    assert_eq!(got.hessians.len(), hessians.len(), "{fixture}: Hessians");
    for (name, want) in mean_sq {
        let have = &got.mean_sq[name];
        let same = have.len() == want.len() && have.iter().zip(want).all(|(a, b)| a.to_bits() == b.to_bits());
        assert!(same, "{fixture}: mean squares of {name} differ");
    }
    for (name, want) in hessians {
        let have = &got.hessians[name];
        let same = have.len() == want.len() && have.iter().zip(want).all(|(a, b)| a.to_bits() == b.to_bits());
        assert!(same, "{fixture}: Hessian of {name} differs");
    }
}
