//! Mamba-2's per-head scan (`diagonal_scan_heads`, one token, and
//! `diagonal_scan_heads_tokens`, a chunk) of every kernel set this CPU
//! supports against the scalar reference: bit-exact, on random inputs,
//! head sizes that leave a ragged tail of channels, state sizes the SIMD
//! versions do not cover (which must fall back), non-finite inputs and
//! short buffers.

use eddy_kernels::reference::{diagonal_scan_heads, diagonal_scan_heads_tokens};
use eddy_kernels::{compiled, supported, HeadScanArgs, HeadScanTokens, Kernels, TokenRows};
use eddy_testkit::Lcg as Rng;

fn bits(v: &[f32]) -> Vec<u32> {
    v.iter().map(|x| x.to_bits()).collect()
}

/// Run `reference` and `kernel` (each `(state, y)`) from `state` with
/// outputs of `y_len` (the same sentinel in both, for outputs a short
/// buffer leaves unwritten): outputs and states must agree bit for bit.
/// Leaves the new state in `state`.
fn check_same(
    what: &str,
    state: &mut [f32],
    y_len: usize,
    reference: &dyn Fn(&mut [f32], &mut [f32]),
    kernel: &dyn Fn(&mut [f32], &mut [f32]),
) {
    let mut got_state = state.to_vec();
    let (mut want_y, mut got_y) = (vec![0.25f32; y_len], vec![0.25f32; y_len]);
    reference(state, &mut want_y);
    kernel(&mut got_state, &mut got_y);
    assert_eq!(bits(&got_y), bits(&want_y), "y: {what}");
    assert_eq!(bits(&got_state), bits(state), "state: {what}");
}

fn sets() -> impl Iterator<Item = &'static Kernels> {
    compiled().iter().copied().filter(|k| supported(k))
}

/// `(heads, head_dim, d_state, heads_per_group)`: Mamba-2 130m's layer,
/// ragged channel tails (head_dim not a multiple of 8 or 4), state sizes
/// with a remainder of four (12, 20) and odd ones (the fallback).
const SHAPES: [(usize, usize, usize, usize); 12] = [
    (24, 64, 128, 24),
    (4, 16, 16, 2),
    (3, 13, 16, 1),
    (5, 9, 24, 5),
    (2, 7, 8, 1),
    (6, 4, 32, 3),
    (2, 12, 12, 1),
    (3, 10, 20, 3),
    (3, 5, 7, 1),
    (2, 8, 9, 2),
    (0, 8, 16, 1),
    (1, 1, 8, 1),
];

/// One layer's per-head parameters: `A` negative like Mamba-2's.
struct Params {
    a: Vec<f32>,
    d: Vec<f32>,
    bias: Vec<f32>,
}

impl Params {
    /// One token's arguments: `(dt, x, B, C)` and `(head_dim, d_state,
    /// heads_per_group)`.
    fn token<'x>(
        &'x self,
        (dt, x, b, c): (&'x [f32], &'x [f32], &'x [f32], &'x [f32]),
        (head_dim, d_state, heads_per_group): (usize, usize, usize),
    ) -> HeadScanArgs<'x> {
        HeadScanArgs {
            a: &self.a,
            d: &self.d,
            dt,
            dt_bias: &self.bias,
            x,
            b,
            c,
            head_dim,
            d_state,
            heads_per_group,
        }
    }

    fn random(rng: &mut Rng, heads: usize) -> Self {
        let a = (0..heads).map(|h| -((1 + h % 16) as f32) * (0.1 + rng.f().abs())).collect();
        Params { a, d: rng.vec(heads, 1.0), bias: rng.vec(heads, 1.0) }
    }
}

#[test]
fn one_token_scans_are_bit_exact() {
    let mut rng = Rng(21);
    for k in sets() {
        for (heads, hd, ds, hpg) in SHAPES {
            let groups = heads.div_ceil(hpg);
            let p = Params::random(&mut rng, heads);
            let mut state = rng.vec(heads * hd * ds, 2.0);
            // dt around Mamba's range, and wide enough to reach softplus's
            // linear region (> 20) and its tiny tail.
            for (step, dt_scale) in [4.0, 40.0, 4.0].into_iter().enumerate() {
                let dt = rng.vec(heads, dt_scale);
                let (x, b, c) =
                    (rng.vec(heads * hd, 3.0), rng.vec(groups * ds, 1.5), rng.vec(groups * ds, 1.5));
                let args = p.token((&dt, &x, &b, &c), (hd, ds, hpg));
                let what = format!("{} heads {heads} head_dim {hd} d_state {ds} step {step}", k.name);
                check_same(
                    &what,
                    &mut state,
                    heads * hd,
                    &|s, y| diagonal_scan_heads(&args, s, y),
                    &|s, y| (k.diagonal_scan_heads)(&args, s, y),
                );
            }
        }
    }
}

#[test]
fn one_token_scan_handles_non_finite_inputs_like_the_reference() {
    let mut rng = Rng(5);
    let (heads, hd, ds) = (6, 16, 16);
    for k in sets() {
        let p = Params::random(&mut rng, heads);
        let mut dt = rng.vec(heads, 3.0);
        dt[1] = f32::NAN;
        dt[3] = f32::INFINITY;
        dt[4] = f32::NEG_INFINITY;
        let (mut x, b, mut c) = (rng.vec(heads * hd, 1.0), rng.vec(ds, 1.0), rng.vec(ds, 1.0));
        x[40] = f32::NAN;
        c[5] = f32::INFINITY;
        let args = p.token((&dt, &x, &b, &c), (hd, ds, heads));
        let mut state = rng.vec(heads * hd * ds, 1.0);
        state[7] = f32::NAN;
        check_same(k.name, &mut state, heads * hd, &|s, y| diagonal_scan_heads(&args, s, y), &|s, y| {
            (k.diagonal_scan_heads)(&args, s, y)
        });
    }
}

#[test]
fn one_token_scan_stops_early_on_short_buffers_like_the_reference() {
    let mut rng = Rng(8);
    let (heads, hd, ds) = (4, 16, 16);
    let p = Params::random(&mut rng, heads);
    let (dt, x, b, c) =
        (rng.vec(heads, 3.0), rng.vec(heads * hd, 1.0), rng.vec(2 * ds, 1.0), rng.vec(2 * ds, 1.0));
    let state0 = rng.vec(heads * hd * ds, 1.0);
    for k in sets() {
        // Short x, B (one group for two), state and y.
        for (x_len, bc_len, state_len, y_len) in [
            (3 * hd + 5, 2 * ds, state0.len(), heads * hd),
            (heads * hd, ds, state0.len(), heads * hd),
            (heads * hd, 2 * ds, 2 * hd * ds + 7, heads * hd),
            (heads * hd, 2 * ds, state0.len(), hd + 3),
        ] {
            let args = p.token((&dt, &x[..x_len], &b[..bc_len], &c[..bc_len]), (hd, ds, 2));
            let (mut want_state, mut got_state) =
                (state0[..state_len].to_vec(), state0[..state_len].to_vec());
            let (mut want_y, mut got_y) = (vec![0f32; y_len], vec![0f32; y_len]);
            diagonal_scan_heads(&args, &mut want_state, &mut want_y);
            (k.diagonal_scan_heads)(&args, &mut got_state, &mut got_y);
            let what = format!("{} x {x_len} bc {bc_len} state {state_len} y {y_len}", k.name);
            assert_eq!(bits(&got_y), bits(&want_y), "y: {what}");
            assert_eq!(bits(&got_state), bits(&want_state), "state: {what}");
        }
    }
}

/// A chunk laid out as Mamba-2's prefill has it: `dt` at the end of wider
/// `in_proj` rows, `x`, B and C side by side in the conv output rows.
struct Chunk {
    proj: Vec<f32>,
    conv: Vec<f32>,
    proj_width: usize,
    conv_width: usize,
    /// Offset of `dt` in a `proj` row.
    dt_at: usize,
    /// Offset of B in a `conv` row (C follows B's groups).
    b_at: usize,
}

impl Chunk {
    fn random(rng: &mut Rng, (heads, hd, ds, hpg): (usize, usize, usize, usize), tokens: usize) -> Self {
        let (channels, bc) = (heads * hd, heads.div_ceil(hpg) * ds);
        let (proj_width, conv_width) = (channels + 3 + heads, channels + 2 * bc + 1);
        let mut proj = rng.vec(proj_width * tokens, 4.0);
        // Every fourth token's dt wide enough for softplus's linear region.
        for t in (0..tokens).step_by(4) {
            for v in &mut proj[t * proj_width + channels + 3..][..heads] {
                *v *= 10.0;
            }
        }
        let conv = rng.vec(conv_width * tokens, 2.0);
        Chunk { proj, conv, proj_width, conv_width, dt_at: channels + 3, b_at: channels }
    }

    /// The scan of heads `h0..h0 + heads` of `shape`.
    fn args<'x>(
        &'x self,
        p: &'x Params,
        shape: (usize, usize, usize, usize),
        h0: usize,
        heads: usize,
        tokens: usize,
    ) -> HeadScanTokens<'x> {
        let (_, hd, ds, hpg) = shape;
        let g0 = h0 / hpg;
        let bc = shape.0.div_ceil(hpg) * ds;
        HeadScanTokens {
            a: &p.a[h0..h0 + heads],
            d: &p.d[h0..h0 + heads],
            dt_bias: &p.bias[h0..h0 + heads],
            dt: TokenRows { data: &self.proj[self.dt_at + h0..], stride: self.proj_width },
            x: TokenRows { data: &self.conv[h0 * hd..], stride: self.conv_width },
            b: TokenRows { data: &self.conv[self.b_at + g0 * ds..], stride: self.conv_width },
            c: TokenRows { data: &self.conv[self.b_at + bc + g0 * ds..], stride: self.conv_width },
            head_dim: hd,
            d_state: ds,
            heads_per_group: hpg,
            tokens,
        }
    }
}

#[test]
fn multi_token_scans_equal_the_reference_token_by_token() {
    let mut rng = Rng(33);
    for k in sets() {
        for shape in SHAPES {
            let (heads, hd, ds, hpg) = shape;
            // Every length up to one past the kernels' token blocks, and
            // a prefill chunk of 64 (several whole blocks).
            for tokens in (1..=17).chain([64]) {
                let chunk = Chunk::random(&mut rng, shape, tokens);
                let p = Params::random(&mut rng, heads);
                // Every head, then (as a worker's block) the heads of the
                // last group.
                let last_group = heads.saturating_sub(hpg.min(heads));
                for (h0, n) in [(0, heads), (last_group, heads - last_group)] {
                    let args = chunk.args(&p, shape, h0, n, tokens);
                    let what = format!("{} shape {shape:?} heads {h0}+{n} tokens {tokens}", k.name);
                    let reference = |s: &mut [f32], y: &mut [f32]| diagonal_scan_heads_tokens(&args, s, y);
                    let kernel = |s: &mut [f32], y: &mut [f32]| (k.diagonal_scan_heads_tokens)(&args, s, y);
                    check_same(&what, &mut rng.vec(n * hd * ds, 2.0), tokens * n * hd, &reference, &kernel);
                }
            }
        }
    }
}

#[test]
fn multi_token_scan_with_short_rows_equals_the_reference() {
    let mut rng = Rng(2);
    let shape = (4, 16, 16, 2);
    let (heads, hd, ds, _) = shape;
    let tokens = 5;
    let chunk = Chunk::random(&mut rng, shape, tokens);
    let p = Params::random(&mut rng, heads);
    let state0 = rng.vec(heads * hd * ds, 1.0);
    for k in sets() {
        let full = chunk.args(&p, shape, 0, heads, tokens);
        // The last token's C row cut to 20 of its 32 values, then `y`
        // one token short.
        let c_len = (tokens - 1) * chunk.conv_width + 20;
        let short_c = HeadScanTokens { c: TokenRows { data: &full.c.data[..c_len], ..full.c }, ..full };
        for (args, y_len) in [(short_c, tokens * heads * hd), (full, (tokens - 1) * heads * hd + 5)] {
            let reference = |s: &mut [f32], y: &mut [f32]| diagonal_scan_heads_tokens(&args, s, y);
            let kernel = |s: &mut [f32], y: &mut [f32]| (k.diagonal_scan_heads_tokens)(&args, s, y);
            check_same(&format!("{} y {y_len}", k.name), &mut state0.clone(), y_len, &reference, &kernel);
        }
    }
}

#[test]
fn multi_token_scan_handles_non_finite_inputs_like_the_reference() {
    let mut rng = Rng(17);
    // Mamba-2's head size, and a ragged one with a state tile remainder.
    // One source of NaN per head (head 0 its state, head 1 its dt, head 2
    // its x), as in the one-token test: where an input NaN meets one an
    // operation made, x86 keeps the first operand's payload, and the
    // compiler may swap the operands of the reference's additions and
    // multiplications as well as the kernels'.
    for shape in [(3, 64, 128, 3), (3, 13, 72, 1)] {
        let (heads, hd, ds, hpg) = shape;
        let tokens = 19;
        let mut chunk = Chunk::random(&mut rng, shape, tokens);
        let p = Params::random(&mut rng, heads);
        let (pw, cw, c_at) = (chunk.proj_width, chunk.conv_width, chunk.b_at + heads.div_ceil(hpg) * ds);
        chunk.proj[3 * pw + chunk.dt_at + 1] = f32::NAN;
        chunk.proj[5 * pw + chunk.dt_at + 1] = f32::INFINITY;
        chunk.proj[7 * pw + chunk.dt_at + 1] = f32::NEG_INFINITY;
        chunk.conv[2 * cw + 2 * hd + 3] = f32::NAN;
        chunk.conv[11 * cw + c_at + 5] = f32::INFINITY;
        chunk.conv[17 * cw + chunk.b_at + 9] = f32::NEG_INFINITY;
        let mut state = rng.vec(heads * hd * ds, 1.0);
        state[77] = f32::NAN;
        for k in sets() {
            let args = chunk.args(&p, shape, 0, heads, tokens);
            let reference = |s: &mut [f32], y: &mut [f32]| diagonal_scan_heads_tokens(&args, s, y);
            let kernel = |s: &mut [f32], y: &mut [f32]| (k.diagonal_scan_heads_tokens)(&args, s, y);
            let what = format!("{} shape {shape:?}", k.name);
            check_same(&what, &mut state.clone(), tokens * heads * hd, &reference, &kernel);
        }
    }
}
