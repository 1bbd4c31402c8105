//! The linear-attention and RNN recurrences of every kernel set this CPU
//! supports against the scalar reference (`SCALAR`), bit for bit: several
//! tokens from the same state, head widths that leave ragged tails for
//! eight- and four-lane vectors, buffers shorter than the heads claim, and
//! non-finite values; the GRU/LSTM gates at widths with ragged tails.

use eddy_kernels::{
    compiled, supported, DeltaRuleArgs, GatedOuterProductArgs, GeneralizedDeltaRuleArgs, Kernels, WkvArgs,
    SCALAR,
};
use eddy_testkit::Lcg as Rng;

fn bits(v: &[f32]) -> Vec<u32> {
    v.iter().map(|x| x.to_bits()).collect()
}

/// Every supported set but the reference itself.
fn sets() -> impl Iterator<Item = &'static Kernels> {
    compiled().iter().copied().filter(|k| supported(k) && k.name != SCALAR.name)
}

/// Values in (0, 1]: decays.
fn decays(rng: &mut Rng, n: usize) -> Vec<f32> {
    (0..n).map(|_| 1.0 - 0.5 * rng.f().abs()).collect()
}

/// Run `steps` tokens of `op` with the reference and with `got` from the
/// same state (fresh inputs from `inputs` per token); state and output
/// must agree bit for bit after every token (outputs a call leaves
/// alone included).
fn compare<I>(
    what: &str,
    state: Vec<f32>,
    out_len: usize,
    steps: usize,
    mut inputs: impl FnMut() -> I,
    run: impl Fn(bool, &I, &mut [f32], &mut [f32]),
) {
    let (mut want_state, mut got_state) = (state.clone(), state);
    for step in 0..steps {
        let input = inputs();
        let (mut want, mut got) = (vec![7f32; out_len], vec![7f32; out_len]);
        run(false, &input, &mut want_state, &mut want);
        run(true, &input, &mut got_state, &mut got);
        assert_eq!(bits(&got), bits(&want), "output: {what} step {step}");
        assert_eq!(bits(&got_state), bits(&want_state), "state: {what} step {step}");
    }
}

/// (heads, key rows, value columns) with ragged tails, one head of a
/// realistic size, and degenerate ones.
const MATRIX_SHAPES: [(usize, usize, usize); 10] = [
    (2, 16, 32),
    (3, 5, 37),
    (1, 9, 8),
    (2, 7, 3),
    (1, 64, 128),
    (2, 33, 41),
    (1, 1, 1),
    (0, 4, 8),
    (2, 0, 8),
    (1, 4, 0),
];

#[test]
fn gated_outer_product_is_bit_exact() {
    let mut rng = Rng(21);
    for k in sets() {
        for (heads, kd, vd) in MATRIX_SHAPES {
            for short in [false, true] {
                // Short: the decays end inside the last head (the reference
                // stops part-way through it).
                let rows = (heads * kd).saturating_sub(if short { 2 } else { 0 });
                let what = format!("{} gated_outer_product heads {heads} {kd}x{vd} short {short}", k.name);
                let inputs =
                    || (rng.vec(heads * kd, 1.0), rng.vec(heads * kd, 1.0), rng.vec(heads * vd, 2.0));
                let mut dr = Rng(heads as u64 * 31 + kd as u64);
                let decay = decays(&mut dr, rows);
                let state = dr.vec(heads * kd * vd, 2.0);
                compare(&what, state, heads * vd, 3, inputs, |fast, (q, kk, v), s, o| {
                    let args = GatedOuterProductArgs {
                        q,
                        k: kk,
                        v,
                        decay: &decay,
                        heads,
                        key_dim: kd,
                        value_dim: vd,
                    };
                    (if fast { k.gated_outer_product } else { SCALAR.gated_outer_product })(&args, s, o)
                });
            }
        }
    }
}

#[test]
fn delta_rule_is_bit_exact() {
    let mut rng = Rng(22);
    for k in sets() {
        for (heads, kd, vd) in MATRIX_SHAPES {
            for per_key in [1, 2] {
                for short in [false, true] {
                    let key_heads = heads.div_ceil(per_key);
                    // Short: the last head has no β (the reference stops
                    // before it).
                    let betas = heads.saturating_sub(short as usize);
                    let what =
                        format!("{} delta_rule heads {heads}/{per_key} {kd}x{vd} short {short}", k.name);
                    let inputs = || {
                        let (q, kk, v) = (
                            rng.vec(key_heads * kd, 0.5),
                            rng.vec(key_heads * kd, 0.5),
                            rng.vec(heads * vd, 2.0),
                        );
                        let (beta, decay) = (decays(&mut rng, betas), decays(&mut rng, heads));
                        (q, kk, v, beta, decay)
                    };
                    let state = Rng(kd as u64 + 5).vec(heads * kd * vd, 2.0);
                    compare(&what, state, heads * vd, 3, inputs, |fast, (q, kk, v, beta, decay), s, o| {
                        let args = DeltaRuleArgs {
                            q,
                            k: kk,
                            v,
                            beta,
                            decay,
                            heads,
                            heads_per_key: per_key,
                            key_dim: kd,
                            value_dim: vd,
                        };
                        (if fast { k.delta_rule } else { SCALAR.delta_rule })(&args, s, o)
                    });
                }
            }
        }
    }
}

#[test]
fn generalized_delta_rule_is_bit_exact() {
    let mut rng = Rng(23);
    for k in sets() {
        // Head sizes: RWKV-7's 64, whole blocks, ragged rows and columns.
        for (heads, n) in [(2, 64), (3, 16), (1, 8), (2, 13), (1, 21), (2, 5), (1, 1), (0, 8), (2, 0)] {
            for short in [false, true] {
                // Short: the last head has no removal weights.
                let cut = if short { n } else { 0 };
                let what = format!("{} generalized_delta_rule heads {heads} size {n} short {short}", k.name);
                let inputs = || {
                    let len = heads * n;
                    let (r, w, kk, v) =
                        (rng.vec(len, 1.0), decays(&mut rng, len), rng.vec(len, 0.5), rng.vec(len, 1.0));
                    let kappa = rng.vec(len, 0.3);
                    let a: Vec<f32> = (0..len.saturating_sub(cut)).map(|_| 0.5 + 0.5 * rng.f()).collect();
                    let kappa_a = kappa.iter().zip(&a).map(|(x, y)| x * y).collect::<Vec<_>>();
                    (r, w, kk, v, kappa, kappa_a)
                };
                let state = Rng(n as u64 + 9).vec(heads * n * n, 1.0);
                compare(&what, state, heads * n, 3, inputs, |fast, (r, w, kk, v, kappa, kappa_a), s, o| {
                    let args =
                        GeneralizedDeltaRuleArgs { r, w, k: kk, v, kappa, kappa_a, heads, head_size: n };
                    (if fast { k.generalized_delta_rule } else { SCALAR.generalized_delta_rule })(&args, s, o)
                });
            }
        }
    }
}

#[test]
fn state_updates_propagate_non_finite_values_like_the_reference() {
    let mut rng = Rng(24);
    let specials = [f32::NAN, f32::INFINITY, f32::NEG_INFINITY, -0.0, 1e38, -1e-45];
    for k in sets() {
        let (heads, kd, vd) = (2, 9, 19);
        let mut state = rng.vec(heads * kd * vd, 1.0);
        let mut q = rng.vec(heads * kd, 1.0);
        for (i, &x) in specials.iter().enumerate() {
            state[i * 29 % (heads * kd * vd)] = x;
            q[i * 7 % (heads * kd)] = x;
        }
        let (kk, v, decay) =
            (rng.vec(heads * kd, 1.0), rng.vec(heads * vd, 1.0), decays(&mut rng, heads * kd));
        let what = format!("{} non-finite", k.name);
        let gop =
            GatedOuterProductArgs { q: &q, k: &kk, v: &v, decay: &decay, heads, key_dim: kd, value_dim: vd };
        compare(
            &what,
            state.clone(),
            heads * vd,
            1,
            || (),
            |fast, _, s, o| {
                (if fast { k.gated_outer_product } else { SCALAR.gated_outer_product })(&gop, s, o)
            },
        );
        let delta = DeltaRuleArgs {
            q: &q,
            k: &kk,
            v: &v,
            beta: &decay[..heads],
            decay: &decay[heads..2 * heads],
            heads,
            heads_per_key: 1,
            key_dim: kd,
            value_dim: vd,
        };
        compare(
            &what,
            state.clone(),
            heads * vd,
            1,
            || (),
            |fast, _, s, o| (if fast { k.delta_rule } else { SCALAR.delta_rule })(&delta, s, o),
        );
        let n = 9;
        let gdr = GeneralizedDeltaRuleArgs {
            r: &q[..n],
            w: &decay[..n],
            k: &kk[..n],
            v: &v[..n],
            kappa: &q[n..2 * n],
            kappa_a: &kk[n..2 * n],
            heads: 1,
            head_size: n,
        };
        compare(
            &what,
            state[..n * n].to_vec(),
            n,
            1,
            || (),
            |fast, _, s, o| {
                (if fast { k.generalized_delta_rule } else { SCALAR.generalized_delta_rule })(&gdr, s, o)
            },
        );
    }
}

#[test]
fn wkv_is_bit_exact() {
    let mut rng = Rng(25);
    for k in sets() {
        // Channel counts with ragged tails (RWKV-4 169M has 768).
        for channels in [768usize, 37, 8, 7, 1, 0, 19] {
            for short in [false, true] {
                // Short: the decays end early (the reference stops there).
                let decays = channels.saturating_sub(if short { 3 } else { 0 });
                let what = format!("{} wkv channels {channels} short {short}", k.name);
                let inputs = || {
                    let (kk, v, r) = (rng.vec(channels, 8.0), rng.vec(channels, 2.0), rng.vec(channels, 6.0));
                    let (u, w) =
                        (rng.vec(channels, 1.0), (0..decays).map(|_| -rng.f().abs() * 3.0).collect());
                    (kk, v, r, u, w)
                };
                // num, den > 0 and max like a running state.
                let mut sr = Rng(channels as u64);
                let mut state = sr.vec(channels, 1.0);
                state.extend((0..channels).map(|_| 0.5 + sr.f().abs()));
                state.extend(sr.vec(channels, 10.0));
                compare(
                    &what,
                    state,
                    channels,
                    4,
                    inputs,
                    |fast, (kk, v, r, u, w): &(_, _, _, Vec<f32>, Vec<f32>), s, o| {
                        let args = WkvArgs { k: kk, v, r, first: u, decay: w };
                        (if fast { k.wkv } else { SCALAR.wkv })(&args, s, o)
                    },
                );
            }
        }
    }
}

#[test]
fn wkv_handles_non_finite_values_and_signed_zeros_like_the_reference() {
    let specials =
        [f32::NAN, -f32::NAN, f32::INFINITY, f32::NEG_INFINITY, 0.0, -0.0, 1e38, -1e38, 100.0, -100.0];
    for k in sets() {
        // Every pair of specials as (max, k + u) and (max + w, k).
        let n = specials.len() * specials.len();
        let (mut kk, mut mx) = (Vec::new(), Vec::new());
        for &a in &specials {
            for &b in &specials {
                mx.push(a);
                kk.push(b);
            }
        }
        let zeros = vec![0f32; n];
        let mut state = vec![1f32; 2 * n];
        state.extend(&mx);
        // Bits equal, but a NaN only as a NaN: the reference's NaN signs
        // follow the operand order the compiler picks for its
        // multiplications (it may swap them), not the source.
        let args = WkvArgs { k: &kk, v: &kk, r: &mx, first: &zeros, decay: &zeros };
        let key =
            |v: &[f32]| v.iter().map(|x| if x.is_nan() { u32::MAX } else { x.to_bits() }).collect::<Vec<_>>();
        let (mut want_state, mut got_state) = (state.clone(), state);
        for step in 0..2 {
            let (mut want, mut got) = (vec![7f32; n], vec![7f32; n]);
            (SCALAR.wkv)(&args, &mut want_state, &mut want);
            (k.wkv)(&args, &mut got_state, &mut got);
            assert_eq!(key(&got), key(&want), "{} wkv specials step {step}: output", k.name);
            assert_eq!(key(&got_state), key(&want_state), "{} wkv specials step {step}: state", k.name);
        }
    }
}

#[test]
fn rnn_gates_are_bit_exact() {
    let mut rng = Rng(26);
    for k in sets() {
        // Hidden widths with ragged tails (gru-50m and lstm-50m have 1024).
        for hidden in [1024usize, 1023, 37, 8, 7, 1, 0, 19] {
            for lstm in [false, true] {
                let (gates, words) = if lstm { (4, 2 * hidden) } else { (3, hidden) };
                for short in [false, true] {
                    // Short: `gi` one value too short, the call leaves the state.
                    let len = (gates * hidden).saturating_sub(short as usize);
                    let what = format!(
                        "{} {} hidden {hidden} short {short}",
                        k.name,
                        ["gru", "lstm"][lstm as usize]
                    );
                    let mut want = rng.vec(words, 3.0);
                    let mut got = want.clone();
                    for step in 0..4 {
                        // Scales up to 12: saturated gates and tanh too.
                        let (gi, gh) = (rng.vec(len, 4.0 * (step + 1) as f32), rng.vec(gates * hidden, 2.0));
                        if lstm {
                            (SCALAR.lstm_gates)(&gi, &gh, &mut want);
                            (k.lstm_gates)(&gi, &gh, &mut got);
                        } else {
                            (SCALAR.gru_gates)(&gi, &gh, &mut want);
                            (k.gru_gates)(&gi, &gh, &mut got);
                        }
                        assert_eq!(bits(&got), bits(&want), "{what} step {step}");
                    }
                }
            }
        }
    }
}

#[test]
fn rnn_gates_handle_non_finite_values_like_the_reference() {
    let specials = [f32::NAN, f32::INFINITY, f32::NEG_INFINITY, 0.0, -0.0, 1e38, -1e38, 100.0, -100.0, 0.5];
    // NaNs compared as NaNs (their signs follow the compiler's operand order).
    let key =
        |v: &[f32]| v.iter().map(|x| if x.is_nan() { u32::MAX } else { x.to_bits() }).collect::<Vec<_>>();
    for k in sets() {
        // Every special in every gate, across 8-lane blocks and a tail.
        let hidden = specials.len() * 2 + 3;
        for lstm in [false, true] {
            let gates = if lstm { 4 } else { 3 };
            let gi: Vec<f32> = (0..gates * hidden).map(|i| specials[i % specials.len()]).collect();
            let gh: Vec<f32> = (0..gates * hidden).map(|i| specials[(i / 3) % specials.len()]).collect();
            let mut want: Vec<f32> =
                (0..hidden * (1 + lstm as usize)).map(|i| specials[(i * 7) % specials.len()]).collect();
            let mut got = want.clone();
            if lstm {
                (SCALAR.lstm_gates)(&gi, &gh, &mut want);
                (k.lstm_gates)(&gi, &gh, &mut got);
            } else {
                (SCALAR.gru_gates)(&gi, &gh, &mut want);
                (k.gru_gates)(&gi, &gh, &mut got);
            }
            assert_eq!(key(&got), key(&want), "{} lstm {lstm}: specials", k.name);
        }
    }
}
