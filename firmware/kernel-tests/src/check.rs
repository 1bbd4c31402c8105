//! Bit-exact cross-check of one kernel set against the scalar reference on
//! random shapes (every format and group size, odd group and row counts),
//! extreme inputs, a too-short scratch (fallback path) and ragged f32/f16
//! tails.

use cortex_m_semihosting::hprintln;
use eddy_kernels::{ActsI8, Kernels, QuantMatrix, SCALAR};
use eddy_quant::{quantize_activations_i8, quantize_row, TensorFormat, GROUP_SIZES};

/// Largest shape the cross-check draws.
const MAX_ROWS: usize = 9;
const MAX_GROUPS: usize = 5;
const MAX_COLS: usize = 256 * MAX_GROUPS;
/// Bytes of a row at the widest format (W8 with 32-wide groups).
const MAX_ROW_BYTES: usize = MAX_COLS / 32 * (4 + 32);

/// The shared deterministic generator (64-bit LCG, high bits out).
pub use eddy_testkit::Lcg as Rng;

/// What one set's cross-check did.
pub struct Report {
    pub int_cases: u32,
    pub float_cases: u32,
    pub mismatches: u32,
}

struct Buffers {
    weights: [f32; MAX_ROWS * MAX_COLS],
    matrix: [u8; MAX_ROWS * MAX_ROW_BYTES],
    x: [f32; MAX_COLS],
    q: [i8; MAX_COLS],
    scales: [f32; MAX_COLS / 32],
    sums: [i32; MAX_COLS / 32],
    perm: [i8; MAX_COLS],
    want: [f32; MAX_ROWS],
    got: [f32; MAX_ROWS],
}

/// How weights and activations are drawn for one case.
#[derive(Clone, Copy)]
enum Fill {
    Random,
    /// Weights at ±1 (codes 0 and max), activations at ±7 (codes ±127).
    Extremes,
    Zeros,
    /// Random bytes for the whole matrix: headers hit every f16 class
    /// (subnormals, infinities, NaNs) and codes every value.
    RawBytes,
}

/// Bit-exact equality, except that any NaN equals any NaN: Rust (like
/// LLVM) leaves NaN payloads unspecified, so even the reference may give
/// different NaN bits when the compiler commutes an addition.
fn same(a: f32, b: f32) -> bool {
    a.to_bits() == b.to_bits() || (a.is_nan() && b.is_nan())
}

/// Run every case for `k` and report.
pub fn cross_check(k: &Kernels) -> Report {
    let mut b = Buffers {
        weights: [0.0; MAX_ROWS * MAX_COLS],
        matrix: [0; MAX_ROWS * MAX_ROW_BYTES],
        x: [0.0; MAX_COLS],
        q: [0; MAX_COLS],
        scales: [0.0; MAX_COLS / 32],
        sums: [0; MAX_COLS / 32],
        perm: [0; MAX_COLS],
        want: [0.0; MAX_ROWS],
        got: [0.0; MAX_ROWS],
    };
    let mut rng = Rng(0x5eed_0005);
    let mut report = Report { int_cases: 0, float_cases: 0, mismatches: 0 };
    for group in GROUP_SIZES {
        for f in [TensorFormat::W2 { group }, TensorFormat::W4 { group }, TensorFormat::W8 { group }] {
            for case in 0..8 {
                let rows = rng.range(1, MAX_ROWS);
                // Odd group counts first (1, 3, 5), then random.
                let groups = if case < 3 { 2 * case + 1 } else { rng.range(1, MAX_GROUPS) };
                let fill = match case {
                    4 => Fill::Extremes,
                    5 => Fill::Zeros,
                    6 | 7 => Fill::RawBytes,
                    _ => Fill::Random,
                };
                let cols = group as usize * groups;
                report.mismatches += check_i8(k, f, rows, cols, fill, cols, &mut rng, &mut b);
                report.int_cases += 1;
            }
            // A scratch shorter than `cols` must take the fallback path.
            let cols = group as usize * 2;
            report.mismatches += check_i8(k, f, 3, cols, Fill::Random, cols - 1, &mut rng, &mut b);
            report.int_cases += 1;
        }
    }
    for _ in 0..24 {
        let rows = rng.range(1, MAX_ROWS);
        let cols = rng.range(1, 37);
        report.mismatches += check_float(k, rows, cols, &mut rng, &mut b);
        report.float_cases += 1;
    }
    // Whole chunks of eight columns (the Helium f16 kernel's assembly path;
    // random widths hit it only now and then).
    for cols in [8, 16, 24, 32] {
        let rows = rng.range(1, MAX_ROWS);
        report.mismatches += check_float(k, rows, cols, &mut rng, &mut b);
        report.float_cases += 1;
    }
    report
}

#[allow(clippy::too_many_arguments)]
fn check_i8(
    k: &Kernels,
    f: TensorFormat,
    rows: usize,
    cols: usize,
    fill: Fill,
    perm_len: usize,
    rng: &mut Rng,
    b: &mut Buffers,
) -> u32 {
    let Some(group) = f.group_size() else { return 1 };
    let Ok(rb) = f.byte_len(1, cols as u64) else { return 1 };
    let rb = rb as usize;
    for (i, w) in b.weights[..rows * cols].iter_mut().enumerate() {
        *w = match fill {
            Fill::Random => rng.f(),
            Fill::Extremes => {
                if i % 3 == 0 {
                    -1.0
                } else {
                    1.0
                }
            }
            Fill::Zeros | Fill::RawBytes => 0.0,
        };
    }
    for (i, x) in b.x[..cols].iter_mut().enumerate() {
        *x = match fill {
            Fill::Random => rng.f() * 5.0,
            Fill::Extremes => {
                if (i / 3) % 2 == 0 {
                    7.0
                } else {
                    -7.0
                }
            }
            Fill::Zeros => 0.0,
            Fill::RawBytes => rng.f() * 5.0,
        };
    }
    for r in 0..rows {
        let w = &b.weights[r * cols..(r + 1) * cols];
        if quantize_row(f, w, &mut b.matrix[r * rb..(r + 1) * rb]).is_err() {
            hprintln!("quantize_row failed for {} {}x{}", f.name(), rows, cols);
            return 1;
        }
    }
    if let Fill::RawBytes = fill {
        for byte in b.matrix[..rows * rb].iter_mut() {
            *byte = rng.next() as u8;
        }
    }
    let groups = cols / group;
    if quantize_activations_i8(&b.x[..cols], group, &mut b.q, &mut b.scales, &mut b.sums).is_err() {
        hprintln!("quantize_activations_i8 failed for {} cols {}", f.name(), cols);
        return 1;
    }
    let acts = ActsI8 { q: &b.q[..cols], scales: &b.scales[..groups], sums: &b.sums[..groups] };
    let matrix = QuantMatrix { format: f, bytes: &b.matrix[..rows * rb], cols };
    (SCALAR.matvec_i8)(matrix, &acts, &mut b.want[..rows], &mut b.perm);
    b.got[..rows].fill(f32::NAN);
    (k.matvec_i8)(matrix, &acts, &mut b.got[..rows], &mut b.perm[..perm_len]);
    let mut bad = 0;
    for r in 0..rows {
        if !same(b.want[r], b.got[r]) {
            if bad == 0 {
                hprintln!(
                    "  MISMATCH {} {} {}x{} row {}: scalar {:#010x} {} {:#010x}",
                    k.name,
                    f.name(),
                    rows,
                    cols,
                    r,
                    b.want[r].to_bits(),
                    k.name,
                    b.got[r].to_bits()
                );
            }
            bad += 1;
        }
    }
    bad
}

fn check_float(k: &Kernels, rows: usize, cols: usize, rng: &mut Rng, b: &mut Buffers) -> u32 {
    for w in b.weights[..rows * cols].iter_mut() {
        *w = rng.f();
    }
    for x in b.x[..cols].iter_mut() {
        *x = rng.f();
    }
    let (w, x) = (&b.weights[..rows * cols], &b.x[..cols]);
    let mut bad = 0;
    (SCALAR.matvec_f32)(w, cols, x, &mut b.want[..rows]);
    (k.matvec_f32)(w, cols, x, &mut b.got[..rows]);
    bad += count_diff(k, "f32", cols, &b.want[..rows], &b.got[..rows]);
    let mut w16 = [0u16; MAX_ROWS * 37];
    for (h, v) in w16.iter_mut().zip(w) {
        *h = eddy_quant::f32_to_f16_bits(*v);
    }
    (SCALAR.matvec_f16)(&w16[..rows * cols], cols, x, &mut b.want[..rows]);
    (k.matvec_f16)(&w16[..rows * cols], cols, x, &mut b.got[..rows]);
    bad += count_diff(k, "f16", cols, &b.want[..rows], &b.got[..rows]);
    // Raw f16 bits: subnormals, infinities and NaNs test the kernel's
    // f16 conversion on every class.
    for h in w16[..rows * cols].iter_mut() {
        *h = rng.next() as u16;
    }
    (SCALAR.matvec_f16)(&w16[..rows * cols], cols, x, &mut b.want[..rows]);
    (k.matvec_f16)(&w16[..rows * cols], cols, x, &mut b.got[..rows]);
    bad += count_diff(k, "f16 raw bits", cols, &b.want[..rows], &b.got[..rows]);
    bad
}

fn count_diff(k: &Kernels, what: &str, cols: usize, want: &[f32], got: &[f32]) -> u32 {
    let bad = want.iter().zip(got).filter(|(a, b)| !same(**a, **b)).count() as u32;
    if bad > 0 {
        hprintln!("  MISMATCH {} {} cols {}: {} rows differ", k.name, what, cols, bad);
    }
    bad
}
