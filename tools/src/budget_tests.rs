//! Tests of the byte-budget allocator.

use super::*;

fn w(bits: u32, group: u32) -> TensorFormat {
    match bits {
        2 => TensorFormat::W2 { group },
        4 => TensorFormat::W4 { group },
        _ => TensorFormat::W8 { group },
    }
}

/// A `rows x cols` tensor whose loss in each format is `sensitivity`
/// times a per-format error that falls with bits (as measured errors do).
fn tensor(name: &str, rows: u64, cols: u64, sensitivity: f64) -> TensorChoices {
    let candidates = CANDIDATE_FORMATS
        .iter()
        .map(|&format| {
            let bytes = format.byte_len(rows, cols).unwrap();
            let bits = bytes as f64 * 8.0 / (rows * cols) as f64;
            Candidate { format, bytes, loss: sensitivity * (rows * cols) as f64 * 4f64.powf(-bits) }
        })
        .collect();
    TensorChoices { name: name.to_string(), candidates }
}

fn total_bytes(tensors: &[TensorChoices], a: &Allocation, fixed: u64) -> u64 {
    fixed
        + a.formats
            .iter()
            .zip(tensors)
            .map(|((_, f), t)| t.candidates.iter().find(|c| c.format == *f).unwrap().bytes)
            .sum::<u64>()
}

/// Tensors of unequal sensitivity get unequal formats (the sensitive one
/// more bits), within the budget, at a lower loss than any single format
/// that fits: an allocator that falls back to one format fails here.
#[test]
fn allocation_mixes_formats_by_sensitivity() {
    let tensors = vec![tensor("a", 256, 512, 1.0), tensor("b", 256, 512, 30.0), tensor("c", 512, 256, 3.0)];
    let params: u64 = 3 * 256 * 512 + 1000;
    let fixed = 4000;
    let a = allocate(&tensors, fixed, params, 3.0).unwrap();
    let distinct: std::collections::BTreeSet<String> =
        a.formats.iter().map(|(_, f)| f.name().to_string()).collect();
    assert!(distinct.len() >= 2, "one format for all: {:?}", a.formats);
    assert_eq!(a.bytes, total_bytes(&tensors, &a, fixed));
    assert!(a.bytes <= a.budget, "{} bytes over the budget {}", a.bytes, a.budget);
    let bits = |name: &str| a.formats.iter().find(|(n, _)| n == name).unwrap().1.code_bits().unwrap();
    assert!(bits("b") > bits("a"), "{:?}", a.formats);
    // The best uniform choice within the same budget loses more.
    let uniform = CANDIDATE_FORMATS
        .iter()
        .filter_map(|&f| {
            let picks: Vec<&Candidate> =
                tensors.iter().map(|t| t.candidates.iter().find(|c| c.format == f).unwrap()).collect();
            let bytes = fixed + picks.iter().map(|c| c.bytes).sum::<u64>();
            (bytes <= a.budget).then(|| picks.iter().map(|c| c.loss).sum::<f64>())
        })
        .fold(f64::INFINITY, f64::min);
    assert!(a.loss < uniform, "allocated {} vs best single format {uniform}", a.loss);
    // Most of the budget is used (a greedy that stops early would not).
    let smallest = tensors.iter().map(|t| t.candidates[0].bytes).sum::<u64>() + fixed;
    assert!(a.bytes - smallest > (a.budget - smallest) * 9 / 10, "{} of {}", a.bytes, a.budget);
}

/// A larger budget never costs loss, and each allocation fits its budget.
#[test]
fn loss_falls_as_the_budget_grows() {
    let tensors = vec![tensor("a", 128, 256, 2.0), tensor("b", 64, 512, 5.0), tensor("c", 256, 256, 1.0)];
    let params = 128 * 256 + 64 * 512 + 256 * 256;
    let mut last = f64::INFINITY;
    for tenth in 23..85 {
        let a = allocate(&tensors, 0, params, tenth as f64 / 10.0).unwrap();
        assert!(a.bytes <= a.budget && a.loss <= last, "at {}: {a:?}", tenth as f64 / 10.0);
        last = a.loss;
    }
}

/// Dominated formats (more bytes, no less loss) and points above the
/// hull are never chosen.
#[test]
fn hull_keeps_only_useful_steps() {
    let c = |bits, group, bytes, loss| Candidate { format: w(bits, group), bytes, loss };
    let hull =
        convex_hull(&[c(4, 64, 300, 5.0), c(2, 64, 100, 10.0), c(4, 32, 400, 6.0), c(2, 32, 200, 9.9)]);
    let kept: Vec<u64> = hull.iter().map(|c| c.bytes).collect();
    assert_eq!(kept, vec![100, 300]);
}

/// Targets that are not numbers, or out of reach either way, are refused
/// with the reachable range.
#[test]
fn bad_targets_are_refused() {
    let tensors = vec![tensor("a", 256, 512, 1.0), tensor("b", 256, 512, 2.0)];
    let params = 2 * 256 * 512;
    for bad in [f64::NAN, 0.0, -2.5, f64::INFINITY] {
        assert!(matches!(allocate(&tensors, 0, params, bad), Err(BudgetError::BadTarget(_))), "{bad}");
    }
    let err = allocate(&tensors, 0, params, 1.5).unwrap_err();
    assert!(matches!(err, BudgetError::TooSmall { .. }), "{err}");
    assert!(err.to_string().contains("2.125"), "{err}");
    let err = allocate(&tensors, 0, params, 9.0).unwrap_err();
    assert!(matches!(err, BudgetError::TooLarge { .. }), "{err}");
    assert!(err.to_string().contains("w8a8"), "{err}");
    assert!(matches!(allocate(&[], 0, params, 2.5), Err(BudgetError::NothingToAllocate)));
}
