//! The per-token f32 kernels of Mamba's layers (fields of `Kernels`):
//! the selective scan and the convolution + SiLU of every compiled set
//! checked bit for bit against `selective_scan_scalar` and
//! `causal_conv_silu_step` over several tokens (the state and the window
//! carry), and guest instructions for one token of each at the demo
//! firmware model's size.

use crate::bench::print_bench_line;
use crate::check::Rng;
use cortex_m_semihosting::hprintln;
use eddy_kernels::math::causal_conv_silu_step;
use eddy_kernels::vector::selective_scan_scalar;
use eddy_kernels::{compiled, ConvWeights, Kernels, ScanArgs, SCALAR};

/// True for the scalar set and for a set with its own (SIMD) scan and
/// convolution; false for a set that takes them from the scalar set.
fn has_own_vector_kernels(set: &Kernels) -> bool {
    let scan = |k: &Kernels| k.selective_scan as usize;
    let conv = |k: &Kernels| k.conv_silu as usize;
    set.name == SCALAR.name || scan(set) != scan(&SCALAR) || conv(set) != conv(&SCALAR)
}

/// Largest case: channels and state size.
const MAX_CH: usize = 37;
const MAX_DS: usize = 64;
/// Tokens per case.
const TOKENS: usize = 3;

/// Bit-exact equality, any NaN equal to any NaN (as in `check.rs`).
fn same(a: f32, b: f32) -> bool {
    a.to_bits() == b.to_bits() || (a.is_nan() && b.is_nan())
}

/// Values where MVE's flush-to-zero, default NaN or the clamp could differ
/// from the IEEE reference: subnormals, values whose products underflow,
/// infinities, NaNs, the softplus threshold and `exp_fast`'s clamp range.
const SPECIALS: [f32; 16] = [
    0.0,
    -0.0,
    -1e30,
    1e30,
    40.0,
    1e-40,
    -3e-39,
    1e-37,
    f32::MIN_POSITIVE,
    f32::NAN,
    f32::INFINITY,
    f32::NEG_INFINITY,
    88.5,
    -87.5,
    20.0,
    -20.0,
];

/// How one case's inputs are drawn.
#[derive(Clone, Copy, PartialEq)]
enum Fill {
    /// Model-like ranges (`A < 0`, moderate `dt`).
    Random,
    /// Random, with one value in six replaced by one of [`SPECIALS`].
    Specials,
    /// Large `dt` and `A`: `exp(A delta)` clamps at e^-87 and `decay h`
    /// underflows (the flush path without NaNs).
    Underflow,
}

struct Case {
    a: [f32; MAX_CH * MAX_DS],
    d: [f32; MAX_CH],
    dt: [f32; MAX_CH],
    u: [f32; MAX_CH],
    z: [f32; MAX_CH],
    b: [f32; MAX_DS],
    c: [f32; MAX_DS],
    want_h: [f32; MAX_CH * MAX_DS],
    got_h: [f32; MAX_CH * MAX_DS],
    want_y: [f32; MAX_CH],
    got_y: [f32; MAX_CH],
}

fn draw(rng: &mut Rng, fill: Fill, lo: f32, hi: f32) -> f32 {
    if fill == Fill::Specials && rng.next().is_multiple_of(6) {
        return SPECIALS[rng.next() as usize % SPECIALS.len()];
    }
    lo + (hi - lo) * (rng.f() * 0.5 + 0.5)
}

/// Checks `set`'s scan on one case; returns the number of mismatching
/// values (outputs and states, every token).
fn check_case(set: &Kernels, ch: usize, ds: usize, fill: Fill, rng: &mut Rng, k: &mut Case) -> u32 {
    let (dt_lo, dt_hi, a_lo) = match fill {
        Fill::Underflow => (30.0, 60.0, -80.0),
        _ => (-6.0, 3.0, -8.0),
    };
    for x in k.a[..ch * ds].iter_mut() {
        *x = draw(rng, fill, a_lo, -0.01);
    }
    for i in 0..ch * ds {
        let h = draw(rng, fill, -1.0, 1.0);
        k.want_h[i] = h;
        k.got_h[i] = h;
    }
    for x in k.d[..ch].iter_mut() {
        *x = draw(rng, fill, -1.0, 1.0);
    }
    let mut bad = 0;
    for token in 0..TOKENS {
        for i in 0..ch {
            k.dt[i] = draw(rng, fill, dt_lo, dt_hi);
            k.u[i] = draw(rng, fill, -3.0, 3.0);
            k.z[i] = draw(rng, fill, -3.0, 3.0);
        }
        for j in 0..ds {
            k.b[j] = draw(rng, fill, -1.0, 1.0);
            k.c[j] = draw(rng, fill, -1.0, 1.0);
        }
        if fill == Fill::Underflow {
            // `delta B u` small too, so `decay h` matters in the sum.
            k.u[..ch].fill(1e-30);
        }
        let args = ScanArgs {
            a: &k.a[..ch * ds],
            d: &k.d[..ch],
            dt: &k.dt[..ch],
            u: &k.u[..ch],
            b: &k.b[..ds],
            c: &k.c[..ds],
            z: &k.z[..ch],
            d_state: ds,
        };
        selective_scan_scalar(&args, &mut k.want_h[..ch * ds], &mut k.want_y[..ch]);
        (set.selective_scan)(&args, &mut k.got_h[..ch * ds], &mut k.got_y[..ch]);
        let y_bad = k.want_y[..ch].iter().zip(&k.got_y[..ch]).filter(|(a, b)| !same(**a, **b)).count();
        let h_bad =
            k.want_h[..ch * ds].iter().zip(&k.got_h[..ch * ds]).filter(|(a, b)| !same(**a, **b)).count();
        if y_bad + h_bad > 0 {
            let first = (0..ch).find(|&i| !same(k.want_y[i], k.got_y[i]));
            hprintln!(
                "  MISMATCH scan {} channels {} d_state {} token {}: {} outputs, {} states differ (first output {:?})",
                set.name,
                ch,
                ds,
                token,
                y_bad,
                h_bad,
                first.map(|i| (i, k.want_y[i].to_bits(), k.got_y[i].to_bits()))
            );
        }
        bad += (y_bad + h_bad) as u32;
    }
    bad
}

/// Largest convolution case: channels and width.
const CONV_CH: usize = 41;
const CONV_WIDTH: usize = 4;

/// Checks `set`'s convolution + SiLU on one case over [`TOKENS`] tokens;
/// returns the number of mismatching values (outputs and window).
fn check_conv(set: &Kernels, ch: usize, width: usize, bias: bool, fill: Fill, rng: &mut Rng) -> u32 {
    let mut weight = [0f32; CONV_CH * CONV_WIDTH];
    let mut b = [0f32; CONV_CH];
    let (mut want_win, mut got_win) = ([0f32; CONV_CH * CONV_WIDTH], [0f32; CONV_CH * CONV_WIDTH]);
    for w in weight[..ch * width].iter_mut().chain(&mut b[..ch]) {
        *w = draw(rng, fill, -1.0, 1.0);
    }
    for i in 0..ch * (width - 1) {
        let w = draw(rng, fill, -3.0, 3.0);
        (want_win[i], got_win[i]) = (w, w);
    }
    let bias = bias.then_some(&b[..ch]);
    let mut bad = 0;
    for token in 0..TOKENS {
        let mut xs = [0f32; CONV_CH];
        for x in xs[..ch].iter_mut() {
            *x = draw(rng, fill, -3.0, 3.0);
        }
        let (mut want, mut got) = ([0f32; CONV_CH], [0f32; CONV_CH]);
        let win = ch * (width - 1);
        let w = ConvWeights { weight: &weight[..ch * width], bias, width };
        causal_conv_silu_step(&w, &mut want_win[..win], &xs[..ch], &mut want[..ch]);
        (set.conv_silu)(&w, &mut got_win[..win], &xs[..ch], &mut got[..ch]);
        let out_bad = want[..ch].iter().zip(&got[..ch]).filter(|(a, b)| !same(**a, **b)).count();
        let win_bad = want_win[..win].iter().zip(&got_win[..win]).filter(|(a, b)| !same(**a, **b)).count();
        if out_bad + win_bad > 0 {
            hprintln!(
                "  MISMATCH conv {} channels {} width {} bias {} token {}: {} outputs, {} window values differ",
                set.name,
                ch,
                width,
                bias.is_some(),
                token,
                out_bad,
                win_bad
            );
        }
        bad += (out_bad + win_bad) as u32;
    }
    bad
}

/// Cross-checks the scan and the convolution of every distinct vector set
/// of the compiled kernel sets. False on a mismatch, or if the `helium` set's vector
/// kernels are not its own (a silent fallback to scalar).
pub fn cross_check() -> bool {
    let mut ok = true;
    let mut k = Case {
        a: [0.0; MAX_CH * MAX_DS],
        d: [0.0; MAX_CH],
        dt: [0.0; MAX_CH],
        u: [0.0; MAX_CH],
        z: [0.0; MAX_CH],
        b: [0.0; MAX_DS],
        c: [0.0; MAX_DS],
        want_h: [0.0; MAX_CH * MAX_DS],
        got_h: [0.0; MAX_CH * MAX_DS],
        want_y: [0.0; MAX_CH],
        got_y: [0.0; MAX_CH],
    };
    for set in compiled().iter().copied() {
        let own = has_own_vector_kernels(set);
        hprintln!("kernel set {}: own vector kernels {}", set.name, own);
        if set.name == "helium" && !own {
            hprintln!("error: the helium set runs the scalar vector kernels");
            ok = false;
        }
        if !own {
            continue; // scalar vector kernels: checked once, with `scalar`.
        }
        let mut rng = Rng(0x5ca_7001);
        let (mut cases, mut bad) = (0u32, 0u32);
        // 16 (Mamba's), other multiples of four (8k + 4 enters the loop
        // halfway), the largest the Helium kernel takes (32), and sizes it
        // leaves to the reference (odd, too large).
        for ds in [16, 4, 8, 12, 20, 32, 7, 1, 36, 64] {
            for fill in [Fill::Random, Fill::Specials, Fill::Underflow] {
                // Ragged channel counts (not multiples of 4 or 8).
                for ch in [1, 3, 5, 13, rng.range(6, MAX_CH)] {
                    bad += check_case(set, ch, ds, fill, &mut rng, &mut k);
                    cases += 1;
                }
            }
        }
        ok &= report("scan", set, cases, bad);
        let (mut cases, mut bad) = (0u32, 0u32);
        // Width 4 (Mamba's; the Helium kernel's), others (the reference);
        // ragged channel counts, with and without bias.
        for width in [4, 3, 2] {
            for fill in [Fill::Random, Fill::Specials] {
                for ch in [1, 3, 4, 5, 8, 13, rng.range(14, CONV_CH)] {
                    for bias in [true, false] {
                        bad += check_conv(set, ch, width, bias, fill, &mut rng);
                        cases += 1;
                    }
                }
            }
        }
        ok &= report("conv", set, cases, bad);
    }
    ok
}

/// Prints the verdict of one operation of `set` (`cases` cases of
/// [`TOKENS`] tokens, `bad` mismatching values); true if it passed.
fn report(operation: &str, set: &Kernels, cases: u32, bad: u32) -> bool {
    let verdict = if bad == 0 { "PASS" } else { "FAIL" };
    hprintln!(
        "{} {}: {} ({} cases of {} tokens, {} mismatching values)",
        operation,
        set.name,
        verdict,
        cases,
        TOKENS,
        bad
    );
    bad == 0
}

/// Channels and state size of the demo firmware's model (mamba-fortunes:
/// d_model 256, d_inner 512, d_state 16).
pub const BENCH_CH: usize = 512;
pub const BENCH_DS: usize = 16;

/// Instructions for one scan token of every distinct vector set, timed
/// by `count` (which runs its argument once to warm up, then once timed).
pub fn instructions_per_scan(count: &mut dyn FnMut(&mut dyn FnMut()) -> u64) {
    let mut rng = Rng(0x5ca_7002);
    let mut a = [0f32; BENCH_CH * BENCH_DS];
    let mut state = [0f32; BENCH_CH * BENCH_DS];
    let (mut dt, mut u, mut z, mut d) =
        ([0f32; BENCH_CH], [0f32; BENCH_CH], [0f32; BENCH_CH], [0f32; BENCH_CH]);
    let (mut b, mut c) = ([0f32; BENCH_DS], [0f32; BENCH_DS]);
    // Model-like values: A = -(1..16) per state, dt before softplus
    // around -4 .. 0.
    for (i, x) in a.iter_mut().enumerate() {
        *x = -((i % BENCH_DS) as f32 + 1.0) * (1.0 + 0.1 * rng.f());
    }
    for x in state.iter_mut().chain(&mut u).chain(&mut z).chain(&mut d).chain(&mut b).chain(&mut c) {
        *x = rng.f();
    }
    for x in dt.iter_mut() {
        *x = rng.f() * 2.0 - 2.0;
    }
    let args = ScanArgs { a: &a, d: &d, dt: &dt, u: &u, b: &b, c: &c, z: &z, d_state: BENCH_DS };
    let mut y = [0f32; BENCH_CH];
    let label = format_args!("scan {}x{}", BENCH_CH, BENCH_DS);
    bench_vector_sets(count, label, (BENCH_CH * BENCH_DS) as u64, "state", &mut |set| {
        (set.selective_scan)(&args, &mut state, &mut y)
    });
}

/// Instructions for one convolution + SiLU token (d_inner channels, width
/// 4, with bias) of every distinct vector set, timed like
/// [`instructions_per_scan`].
pub fn instructions_per_conv(count: &mut dyn FnMut(&mut dyn FnMut()) -> u64) {
    let mut rng = Rng(0xc0_7003);
    let mut weight = [0f32; BENCH_CH * 4];
    let mut window = [0f32; BENCH_CH * 3];
    let (mut bias, mut xs, mut out) = ([0f32; BENCH_CH], [0f32; BENCH_CH], [0f32; BENCH_CH]);
    for x in weight.iter_mut().chain(&mut window).chain(&mut bias).chain(&mut xs) {
        *x = rng.f();
    }
    let w = ConvWeights { weight: &weight, bias: Some(&bias), width: 4 };
    let label = format_args!("conv+silu {}x4", BENCH_CH);
    bench_vector_sets(count, label, BENCH_CH as u64, "channel", &mut |set| {
        (set.conv_silu)(&w, &mut window, &xs, &mut out)
    });
}

/// Count the instructions of one `token` call for every set with its own
/// vector kernels and print one bench line each, per `unit` (`units` of
/// them), with the ratio to scalar.
fn bench_vector_sets(
    count: &mut dyn FnMut(&mut dyn FnMut()) -> u64,
    label: core::fmt::Arguments,
    units: u64,
    unit: &str,
    token: &mut dyn FnMut(&Kernels),
) {
    let mut scalar = 0u64;
    for set in compiled().iter().copied() {
        if !has_own_vector_kernels(set) {
            continue;
        }
        let n = count(&mut || token(set));
        if set.name == SCALAR.name {
            scalar = n;
        }
        print_bench_line(label, set.name, n, "token", units, unit, scalar);
    }
}
