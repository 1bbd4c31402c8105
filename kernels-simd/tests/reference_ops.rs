//! The family-generic recurrent operations of `eddy_kernels::reference`
//! on buffers that end early: they must not panic, and what they do
//! compute must equal the same part of a full call (a kernel set's
//! version will be checked against these references bit for bit).

use eddy_kernels::reference::{
    delta_rule, diagonal_scan_heads, gated_outer_product, generalized_delta_rule, gru_gates, lstm_gates,
    rg_lru, wkv,
};
use eddy_kernels::{
    DeltaRuleArgs, GatedOuterProductArgs, GeneralizedDeltaRuleArgs, HeadScanArgs, RgLruArgs, WkvArgs,
};

struct Rng(u64);
impl Rng {
    fn vec(&mut self, n: usize, scale: f32) -> Vec<f32> {
        (0..n)
            .map(|_| {
                self.0 = self.0.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                (((self.0 >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0) * scale
            })
            .collect()
    }
}

fn bits(v: &[f32]) -> Vec<u32> {
    v.iter().map(|x| x.to_bits()).collect()
}

/// Run `op(state, out)` on full buffers and on buffers cut to `state_len`
/// and `out_len`: the cut run's outputs must be the full run's prefix.
fn check_prefix(
    name: &str,
    state: &[f32],
    out_len: usize,
    cut: (usize, usize),
    op: &dyn Fn(&mut [f32], &mut [f32]),
) {
    let (mut full_state, mut full_out) = (state.to_vec(), vec![0f32; out_len]);
    op(&mut full_state, &mut full_out);
    let (mut cut_state, mut cut_out) = (state[..cut.0].to_vec(), vec![0f32; cut.1]);
    op(&mut cut_state, &mut cut_out);
    assert_eq!(bits(&cut_out), bits(&full_out[..cut.1]), "{name}: outputs");
    assert_eq!(bits(&cut_state), bits(&full_state[..cut.0]), "{name}: state");
    // Nothing at all: no panic.
    op(&mut [], &mut []);
}

#[test]
fn operations_stop_early_on_short_buffers() {
    let mut rng = Rng(7);
    let (heads, hd, ds) = (4usize, 3usize, 5usize);
    let (a, d, dt, bias) =
        (rng.vec(heads, 2.0), rng.vec(heads, 1.0), rng.vec(heads, 2.0), rng.vec(heads, 1.0));
    let (x, b, c) = (rng.vec(heads * hd, 1.0), rng.vec(2 * ds, 1.0), rng.vec(2 * ds, 1.0));
    let scan = HeadScanArgs {
        a: &a,
        d: &d,
        dt: &dt,
        dt_bias: &bias,
        x: &x,
        b: &b,
        c: &c,
        head_dim: hd,
        d_state: ds,
        heads_per_group: 2,
    };
    let state = rng.vec(heads * hd * ds, 1.0);
    check_prefix("diagonal_scan_heads", &state, heads * hd, (2 * hd * ds, 2 * hd), &|s, y| {
        diagonal_scan_heads(&scan, s, y)
    });

    let (kd, vd) = (3usize, 4usize);
    let (q, k, v, decay) = (
        rng.vec(heads * kd, 1.0),
        rng.vec(heads * kd, 1.0),
        rng.vec(heads * vd, 1.0),
        rng.vec(heads * kd, 0.5),
    );
    let gla = GatedOuterProductArgs { q: &q, k: &k, v: &v, decay: &decay, heads, key_dim: kd, value_dim: vd };
    let state = rng.vec(heads * kd * vd, 1.0);
    check_prefix("gated_outer_product", &state, heads * vd, (kd * vd, vd), &|s, o| {
        gated_outer_product(&gla, s, o)
    });

    let (beta, decay) = (rng.vec(heads, 0.5), rng.vec(heads, 0.5));
    let rule = DeltaRuleArgs {
        q: &q[..2 * kd],
        k: &k[..2 * kd],
        v: &v,
        beta: &beta,
        decay: &decay,
        heads,
        heads_per_key: 2,
        key_dim: kd,
        value_dim: vd,
    };
    check_prefix("delta_rule", &state, heads * vd, (3 * kd * vd, 3 * vd), &|s, o| delta_rule(&rule, s, o));

    let n = 4usize;
    let c = heads * n;
    let (r, w, kk, vv, kappa, kappa_a) = (
        rng.vec(c, 1.0),
        rng.vec(c, 0.5),
        rng.vec(c, 1.0),
        rng.vec(c, 1.0),
        rng.vec(c, 0.5),
        rng.vec(c, 0.5),
    );
    let general = GeneralizedDeltaRuleArgs {
        r: &r,
        w: &w,
        k: &kk,
        v: &vv,
        kappa: &kappa,
        kappa_a: &kappa_a,
        heads,
        head_size: n,
    };
    let state = rng.vec(heads * n * n, 1.0);
    check_prefix("generalized_delta_rule", &state, c, (2 * n * n, 2 * n), &|s, o| {
        generalized_delta_rule(&general, s, o)
    });

    let ch = 6usize;
    let (x, gi, ga, coef, y) =
        (rng.vec(ch, 1.0), rng.vec(ch, 2.0), rng.vec(ch, 2.0), rng.vec(ch, 4.0), rng.vec(ch, 2.0));
    for first in [true, false] {
        let lru = RgLruArgs { x: &x, input_gate: &gi, a_gate: &ga, log_a_coef: &coef, y: &y, first };
        check_prefix("rg_lru", &rng.vec(ch, 1.0), ch, (4, 4), &|h, o| rg_lru(&lru, h, o));
    }

    let (k, v, r, u, decay) =
        (rng.vec(ch, 2.0), rng.vec(ch, 1.0), rng.vec(ch, 2.0), rng.vec(ch, 1.0), rng.vec(ch, 1.0));
    let wkv_args = WkvArgs { k: &k, v: &v, r: &r, first: &u, decay: &decay };
    let mut state = rng.vec(3 * ch, 1.0);
    let mut out = vec![0f32; ch];
    wkv(&wkv_args, &mut state, &mut out);
    assert!(out.iter().all(|o| o.is_finite()), "wkv: finite outputs");
    // A state shorter than 3 channels' worth leaves everything untouched.
    let (mut short, mut out) = (vec![1f32; 3 * ch - 1], vec![0f32; ch]);
    wkv(&wkv_args, &mut short, &mut out);
    assert!(short.iter().all(|&s| s == 1.0) && out.iter().all(|&o| o == 0.0), "wkv: short state");

    let (gi, gh) = (rng.vec(4 * ch, 2.0), rng.vec(4 * ch, 2.0));
    let mut h = rng.vec(ch, 1.0);
    let h0 = h.clone();
    gru_gates(&gi[..3 * ch - 1], &gh, &mut h);
    assert_eq!(bits(&h), bits(&h0), "gru_gates: short gates leave h");
    gru_gates(&gi, &gh, &mut h);
    assert_ne!(bits(&h), bits(&h0), "gru_gates: updates h");
    let mut hc = rng.vec(2 * ch, 1.0);
    let hc0 = hc.clone();
    lstm_gates(&gi[..4 * ch - 1], &gh, &mut hc);
    assert_eq!(bits(&hc), bits(&hc0), "lstm_gates: short gates leave the state");
    lstm_gates(&gi, &gh, &mut hc);
    assert_ne!(bits(&hc), bits(&hc0), "lstm_gates: updates the state");
}
