//! The recurrent kernels of every kernel set this CPU supports against the
//! scalar reference: bit-exact, on random inputs of realistic and extreme
//! size, channel counts that leave a ragged tail, and state sizes the SIMD
//! versions do not cover (which must fall back).

use eddy_kernels::vector::selective_scan_scalar;
use eddy_kernels::{
    compiled, supported, ConvTokens, ConvWeights, Kernels, ScanArgs, ScanTokens, TokenRows, SCALAR,
};
use eddy_testkit::Lcg as Rng;

fn bits(v: &[f32]) -> Vec<u32> {
    v.iter().map(|x| x.to_bits()).collect()
}

/// Run `steps` tokens of the scan with the scalar reference and with `k`'s
/// scan from the same state; states and outputs must agree bit for bit.
fn check(name: &str, rng: &mut Rng, channels: usize, ds: usize, dt_scale: f32, steps: usize) {
    let k = eddy_kernels::by_name(name).expect("supported set");
    let scan = k.selective_scan;
    // A like Mamba's (negative), D and the state random.
    let a: Vec<f32> = (0..channels * ds).map(|i| -((1 + i % ds) as f32) * (1.0 + rng.f().abs())).collect();
    let d = rng.vec(channels, 1.0);
    let mut want_state = rng.vec(channels * ds, 2.0);
    let mut got_state = want_state.clone();
    for step in 0..steps {
        let (dt, u, z) = (rng.vec(channels, dt_scale), rng.vec(channels, 3.0), rng.vec(channels, 6.0));
        let (b, c) = (rng.vec(ds, 1.5), rng.vec(ds, 1.5));
        let args = ScanArgs { a: &a, d: &d, dt: &dt, u: &u, b: &b, c: &c, z: &z, d_state: ds };
        let (mut want_y, mut got_y) = (vec![0f32; channels], vec![1f32; channels]);
        selective_scan_scalar(&args, &mut want_state, &mut want_y);
        scan(&args, &mut got_state, &mut got_y);
        let what = format!("{name} channels {channels} d_state {ds} dt scale {dt_scale} step {step}");
        assert_eq!(bits(&got_y), bits(&want_y), "y: {what}");
        assert_eq!(bits(&got_state), bits(&want_state), "state: {what}");
    }
}

#[test]
fn selective_scans_are_bit_exact() {
    let mut rng = Rng(11);
    for k in compiled().iter().filter(|k| supported(k)) {
        println!("scan of set {}", k.name);
        // Ragged channel tails for 8- and 4-channel blocks, state sizes
        // with a 4-state remainder (12, 20: NEON's lanes 0..4 tail) and
        // odd ones (3, 5, 9: the fallback).
        let shapes = [
            (1536, 16),
            (37, 16),
            (8, 8),
            (64, 24),
            (5, 16),
            (16, 4),
            (19, 3),
            (0, 16),
            (3, 16),
            (7, 16),
            (1537, 16),
            (13, 12),
            (10, 20),
            (6, 4),
            (11, 5),
            (4, 9),
            (1, 8),
        ];
        for (channels, ds) in shapes {
            // dt around Mamba's range, and wide enough to reach softplus's
            // linear region (> 20) and its tiny tail.
            for dt_scale in [4.0, 40.0] {
                check(k.name, &mut rng, channels, ds, dt_scale, 3);
            }
        }
    }
}

#[test]
fn scan_handles_non_finite_inputs_like_the_reference() {
    let mut rng = Rng(3);
    for k in compiled().iter().filter(|k| supported(k)) {
        let scan = k.selective_scan;
        let (channels, ds) = (24, 16);
        let a = vec![-1.0f32; channels * ds];
        let d = rng.vec(channels, 1.0);
        let mut dt = rng.vec(channels, 3.0);
        let mut z = rng.vec(channels, 3.0);
        dt[3] = f32::NAN;
        dt[9] = f32::INFINITY;
        dt[17] = f32::NEG_INFINITY;
        z[5] = f32::NAN;
        let (u, b, c) = (rng.vec(channels, 1.0), rng.vec(ds, 1.0), rng.vec(ds, 1.0));
        let args = ScanArgs { a: &a, d: &d, dt: &dt, u: &u, b: &b, c: &c, z: &z, d_state: ds };
        let mut want_state = vec![0.5f32; channels * ds];
        let mut got_state = want_state.clone();
        let (mut want_y, mut got_y) = (vec![0f32; channels], vec![0f32; channels]);
        selective_scan_scalar(&args, &mut want_state, &mut want_y);
        scan(&args, &mut got_state, &mut got_y);
        assert_eq!(bits(&got_y), bits(&want_y), "{}", k.name);
        assert_eq!(bits(&got_state), bits(&want_state), "{}", k.name);
    }
}

/// Token-major inputs of a multi-token scan laid out as a prefill chunk
/// has them: `dt`, `u` in rows of `channels`, `z` inside rows twice as
/// wide plus padding, `B` and `C` inside `x_proj`-like rows after a
/// `dt_rank` prefix.
struct TokenInputs {
    a: Vec<f32>,
    d: Vec<f32>,
    dt: Vec<f32>,
    u: Vec<f32>,
    xz: Vec<f32>,
    x_dbl: Vec<f32>,
    channels: usize,
    ds: usize,
}

impl TokenInputs {
    const DT_RANK: usize = 3;

    fn random(rng: &mut Rng, channels: usize, ds: usize, tokens: usize, dt_scale: f32) -> Self {
        let a = (0..channels * ds).map(|i| -((1 + i % ds) as f32) * (1.0 + rng.f().abs())).collect();
        let xw = Self::DT_RANK + 2 * ds;
        TokenInputs {
            a,
            d: rng.vec(channels, 1.0),
            dt: rng.vec(channels * tokens, dt_scale),
            u: rng.vec(channels * tokens, 3.0),
            xz: rng.vec((2 * channels + 5) * tokens, 6.0),
            x_dbl: rng.vec(xw * tokens, 1.5),
            channels,
            ds,
        }
    }

    fn args(&self, tokens: usize) -> ScanTokens<'_> {
        let (ch, ds) = (self.channels, self.ds);
        let xw = Self::DT_RANK + 2 * ds;
        ScanTokens {
            a: &self.a,
            d: &self.d,
            dt: TokenRows { data: &self.dt, stride: ch },
            u: TokenRows { data: &self.u, stride: ch },
            z: TokenRows { data: &self.xz[ch..], stride: 2 * ch + 5 },
            b: TokenRows { data: &self.x_dbl[Self::DT_RANK..], stride: xw },
            c: TokenRows { data: &self.x_dbl[Self::DT_RANK + ds..], stride: xw },
            d_state: ds,
            tokens,
        }
    }
}

/// `args.tokens` calls of the scalar one-token scan (what every set's
/// multi-token scan must equal).
fn scan_by_token_reference(args: &ScanTokens<'_>, state: &mut [f32], y: &mut [f32]) {
    let channels = args.d.len();
    for t in 0..args.tokens {
        let start = (t * channels).min(y.len());
        let end = (start + channels).min(y.len());
        selective_scan_scalar(&args.token(t), state, &mut y[start..end]);
    }
}

fn check_tokens(name: &str, args: &ScanTokens<'_>, state0: &[f32], y_len: usize, what: &str) {
    let k = eddy_kernels::by_name(name).expect("supported set");
    let scan_tokens = k.selective_scan_tokens;
    let (mut want_state, mut got_state) = (state0.to_vec(), state0.to_vec());
    // Outputs a scan leaves alone (cut rows) must stay as they were.
    let (mut want_y, mut got_y) = (vec![7f32; y_len], vec![7f32; y_len]);
    scan_by_token_reference(args, &mut want_state, &mut want_y);
    scan_tokens(args, &mut got_state, &mut got_y);
    assert_eq!(bits(&got_y), bits(&want_y), "y: {name} {what}");
    assert_eq!(bits(&got_state), bits(&want_state), "state: {name} {what}");
}

#[test]
fn multi_token_scans_equal_one_token_scans() {
    let mut rng = Rng(29);
    for k in compiled().iter().filter(|k| supported(k)) {
        // Ragged channel blocks, state sizes in one, two and several
        // decay groups (8, 16, 24, 40), ones the SIMD kernels leave to the
        // fallback (12 on x86, 5), and token counts around the kernels'
        // token blocks.
        let shapes = [
            (128, 16, 64),
            (37, 16, 9),
            (8, 8, 8),
            (16, 24, 7),
            (9, 40, 17),
            (13, 12, 5),
            (6, 5, 3),
            (3, 16, 2),
        ];
        for (channels, ds, tokens) in shapes {
            for dt_scale in [4.0, 40.0] {
                let inputs = TokenInputs::random(&mut rng, channels, ds, tokens, dt_scale);
                let state0 = rng.vec(channels * ds, 2.0);
                let what = format!("channels {channels} d_state {ds} tokens {tokens} dt scale {dt_scale}");
                check_tokens(k.name, &inputs.args(tokens), &state0, channels * tokens, &what);
            }
        }
        // One token, none, and an output shorter than all the tokens'.
        let inputs = TokenInputs::random(&mut rng, 24, 16, 10, 4.0);
        let state0 = rng.vec(24 * 16, 2.0);
        check_tokens(k.name, &inputs.args(1), &state0, 24, "one token");
        check_tokens(k.name, &inputs.args(0), &state0, 0, "no token");
        check_tokens(k.name, &inputs.args(10), &state0, 24 * 10 - 5, "short y");
        // A last row cut short (z's data ends inside the last token's
        // row): the one-token scans stop early there, and so must this.
        let mut cut = inputs.args(10);
        cut.z.data = &cut.z.data[..9 * cut.z.stride + 11];
        check_tokens(k.name, &cut, &state0, 24 * 10, "short last z row");
        // Non-finite inputs in the middle of the chunk.
        let mut inputs = TokenInputs::random(&mut rng, 24, 16, 10, 4.0);
        inputs.dt[3 * 24 + 5] = f32::NAN;
        inputs.dt[6 * 24 + 9] = f32::INFINITY;
        inputs.xz[2 * (2 * 24 + 5) + 24 + 17] = f32::NAN;
        check_tokens(k.name, &inputs.args(10), &state0, 24 * 10, "non-finite inputs");
    }
}

/// Every operation of a set as (field name, function address; 0 for a
/// missing optional kernel). The pattern names every field, so a new
/// field does not compile until it is listed here.
fn operations(k: &Kernels) -> Vec<(&'static str, usize)> {
    let Kernels {
        name: _,
        auto: _,
        available,
        matvec_i8,
        matvec_sparse24_i8,
        matmat_i8,
        matmat_f16,
        matmat_f32,
        matvec_f32,
        matvec_f16,
        kv_scores,
        kv_mix,
        quantize_acts,
        conv_silu,
        conv_silu_tokens,
        causal_conv,
        causal_conv_tokens,
        selective_scan,
        selective_scan_tokens,
        diagonal_scan_heads,
        diagonal_scan_heads_tokens,
        gated_outer_product,
        delta_rule,
        generalized_delta_rule,
        rg_lru,
        wkv,
        gru_gates,
        lstm_gates,
        silu_mul,
    } = *k;
    vec![
        ("available", available as usize),
        ("matvec_i8", matvec_i8 as usize),
        ("matvec_sparse24_i8", matvec_sparse24_i8 as usize),
        ("matmat_i8", matmat_i8.map_or(0, |f| f as usize)),
        ("matmat_f16", matmat_f16.map_or(0, |f| f as usize)),
        ("matmat_f32", matmat_f32.map_or(0, |f| f as usize)),
        ("matvec_f32", matvec_f32 as usize),
        ("matvec_f16", matvec_f16 as usize),
        ("kv_scores", kv_scores as usize),
        ("kv_mix", kv_mix as usize),
        ("quantize_acts", quantize_acts as usize),
        ("conv_silu", conv_silu as usize),
        ("conv_silu_tokens", conv_silu_tokens as usize),
        ("causal_conv", causal_conv as usize),
        ("causal_conv_tokens", causal_conv_tokens as usize),
        ("selective_scan", selective_scan as usize),
        ("selective_scan_tokens", selective_scan_tokens as usize),
        ("diagonal_scan_heads", diagonal_scan_heads as usize),
        ("diagonal_scan_heads_tokens", diagonal_scan_heads_tokens as usize),
        ("gated_outer_product", gated_outer_product as usize),
        ("delta_rule", delta_rule as usize),
        ("generalized_delta_rule", generalized_delta_rule as usize),
        ("rg_lru", rg_lru as usize),
        ("wkv", wkv as usize),
        ("gru_gates", gru_gates as usize),
        ("lstm_gates", lstm_gates as usize),
        ("silu_mul", silu_mul as usize),
    ]
}

/// The operations of AVX2 that have SIMD versions, after its CPU check.
const AVX2_OPERATIONS: &[&str] = &[
    "matvec_sparse24_i8",
    "matmat_f32",
    "available",
    "matvec_i8",
    "matmat_i8",
    "matmat_f16",
    "matvec_f32",
    "matvec_f16",
    "kv_scores",
    "kv_mix",
    "quantize_acts",
    "conv_silu",
    "conv_silu_tokens",
    "selective_scan",
    "selective_scan_tokens",
    "diagonal_scan_heads",
    "diagonal_scan_heads_tokens",
    "gated_outer_product",
    "delta_rule",
    "generalized_delta_rule",
    "causal_conv",
    "causal_conv_tokens",
    "rg_lru",
    "wkv",
    "silu_mul",
    "gru_gates",
    "lstm_gates",
];

/// The operations of NEON that have SIMD versions: AVX2's without the
/// 2:4 sparse product and the f32 multi-token kernel (no NEON versions
/// yet: NEON takes the sparse reference and multiplies f32 matrices a
/// token at a time) and without the CPU check (every aarch64 CPU with
/// NEON runs them).
const NEON_OPERATIONS: &[&str] = AVX2_OPERATIONS.split_at(3).1;

/// Each set, the set it is built on, and the operations it replaces
/// (every other one must be the base's): `avx512-vnni` is the AVX2 set
/// with VNNI integer products, `avx2-vnni-prefill` with VNNI multi-token
/// products only, `avx512-amx` `avx512-vnni` with AMX multi-token
/// products, `neon-sdot` NEON with `sdot`, `dsp` the
/// scalar set with `SMLAD` products. A set missing here fails the test, so
/// a new set must say what it is built on.
#[allow(clippy::type_complexity)]
const BUILT_ON: [(&str, &str, &[&str]); 8] = [
    ("avx2", "scalar", AVX2_OPERATIONS),
    ("avx512-vnni", "avx2", &["available", "matvec_i8", "matmat_i8"]),
    ("avx2-vnni-prefill", "avx2", &["available", "matmat_i8"]),
    ("avx512-amx", "avx512-vnni", &["available", "matmat_i8"]),
    ("neon", "scalar", NEON_OPERATIONS),
    ("neon-sdot", "neon", &["available", "matvec_i8", "matmat_i8"]),
    ("dsp", "scalar", &["matvec_i8"]),
    (
        "helium",
        "scalar",
        &[
            "matvec_i8",
            "matvec_f16",
            "conv_silu",
            "conv_silu_tokens",
            "selective_scan",
            "selective_scan_tokens",
        ],
    ),
];

#[test]
fn every_set_is_the_set_it_is_built_on_plus_its_own_kernels() {
    // Every compiled set, not only those this CPU runs: which kernels a
    // set uses must not depend on the machine the test runs on.
    let set =
        |name: &str| *compiled().iter().find(|k| k.name == name).unwrap_or_else(|| panic!("{name} compiled"));
    assert_eq!(compiled()[0].name, SCALAR.name, "the scalar set comes first");
    for k in &compiled()[1..] {
        let (_, base, replaced) = BUILT_ON
            .iter()
            .find(|(name, ..)| *name == k.name)
            .unwrap_or_else(|| panic!("set {} is missing from BUILT_ON", k.name));
        for ((op, got), (_, from_base)) in operations(k).into_iter().zip(operations(set(base))) {
            if replaced.contains(&op) {
                assert_ne!(got, from_base, "{} replaces {op} of {base}", k.name);
            } else {
                assert_eq!(got, from_base, "{} takes {op} from {base}", k.name);
            }
        }
        let auto = match k.name {
            "avx512-vnni" => false,
            "avx2-vnni-prefill" => amd_cpu(),
            _ => true,
        };
        assert_eq!((k.auto)(), auto, "{} chosen automatically", k.name);
    }
    assert!((SCALAR.auto)() && (SCALAR.available)());
}

/// Activation quantization of every set against the reference: codes,
/// scales, sums and errors identical, for every group size, ragged last
/// groups, rounding ties, extremes and non-finite input.
#[test]
fn activation_quantization_is_exact() {
    let mut rng = Rng(23);
    for k in compiled().iter().filter(|k| supported(k)) {
        let quantize = k.quantize_acts;
        for group in [32usize, 64, 128, 256] {
            for len in [group, 3 * group, 6 * group + 17, 5, 1536] {
                let mut inputs = vec![rng.vec(len, 4.0), rng.vec(len, 1e-3), vec![0.0; len]];
                // Subnormal groups: `1 / scale` overflows to infinity
                // (codes ±127 and, for zeros, 0 * inf = NaN -> 0) or is
                // large and inexact.
                inputs.push(rng.vec(len, 1e-43));
                inputs.push(rng.vec(len, 1e-38));
                let mut sparse = vec![0.0f32; len];
                sparse[len / 3] = -3e-44;
                inputs.push(sparse);
                // Ties: amax 127 makes every x/scale an exact half-integer.
                let mut ties: Vec<f32> = (0..len).map(|i| (i % 254) as f32 - 126.5).collect();
                ties[0] = 127.0;
                inputs.push(ties);
                let mut bad = rng.vec(len, 1.0);
                bad[len / 2] = f32::NAN;
                inputs.push(bad);
                let mut inf = rng.vec(len, 1.0);
                inf[len - 1] = f32::NEG_INFINITY;
                inputs.push(inf);
                for x in inputs {
                    let groups = len.div_ceil(group);
                    let mut want = (vec![0i8; len], vec![0f32; groups], vec![0i32; groups]);
                    let mut got = (vec![1i8; len], vec![1f32; groups], vec![1i32; groups]);
                    let w =
                        eddy_quant::quantize_activations_i8(&x, group, &mut want.0, &mut want.1, &mut want.2);
                    let g = quantize(&x, group, &mut got.0, &mut got.1, &mut got.2);
                    let what = format!("{} group {group} len {len}", k.name);
                    assert_eq!(w, g, "result: {what}");
                    if w.is_ok() {
                        assert_eq!(want.0, got.0, "codes: {what}");
                        assert_eq!(bits(&want.1), bits(&got.1), "scales: {what}");
                        assert_eq!(want.2, got.2, "sums: {what}");
                    }
                }
            }
        }
        // Buffers too short: the same error as the reference.
        let x = rng.vec(64, 1.0);
        let (mut q, mut s, mut u) = (vec![0i8; 63], vec![0f32; 2], vec![0i32; 2]);
        assert_eq!(
            quantize(&x, 32, &mut q, &mut s, &mut u),
            eddy_quant::quantize_activations_i8(&x, 32, &mut q, &mut s, &mut u)
        );
    }
}

/// Convolution + SiLU of every set against the reference: outputs and the
/// shifted windows bit for bit, with and without bias, widths 4 (the SIMD
/// path) and others (fallback), channel counts with ragged tails.
#[test]
fn conv_silu_is_bit_exact() {
    let mut rng = Rng(31);
    for k in compiled().iter().filter(|k| supported(k)) {
        let conv = k.conv_silu;
        for (channels, width) in
            [(1536, 4), (13, 4), (8, 4), (1, 4), (7, 4), (1539, 4), (40, 3), (24, 5), (9, 1)]
        {
            let keep = width - 1;
            let mut weight = rng.vec(channels * width, 1.0);
            // Channel 0's weights negative: with a zero window and input
            // every product is -0.0, and the sum must start from +0.0.
            for w in &mut weight[..width] {
                *w = -w.abs() - 0.1;
            }
            let bias = rng.vec(channels, 0.5);
            for with_bias in [false, true] {
                let mut want_win = rng.vec(channels * keep, 3.0);
                let mut got_win = want_win.clone();
                for step in 0..3 {
                    let mut xs = rng.vec(channels, 4.0);
                    if step == 2 && channels > 3 {
                        xs[3] = f32::NAN;
                    }
                    if step == 1 {
                        xs[0] = 0.0;
                        want_win[..keep].fill(0.0);
                        got_win[..keep].fill(0.0);
                    }
                    let w = ConvWeights { weight: &weight, bias: with_bias.then_some(&bias[..]), width };
                    let (mut want, mut got) = (vec![0f32; channels], vec![1f32; channels]);
                    eddy_kernels::math::causal_conv_silu_step(&w, &mut want_win, &xs, &mut want);
                    conv(&w, &mut got_win, &xs, &mut got);
                    let what =
                        format!("{} channels {channels} width {width} bias {with_bias} step {step}", k.name);
                    assert_eq!(bits(&got), bits(&want), "out: {what}");
                    assert_eq!(bits(&got_win), bits(&want_win), "window: {what}");
                }
            }
        }
    }
}

/// The multi-token convolution + SiLU of every set against one reference
/// call per token: outputs and windows bit for bit, inputs read in place
/// from `in_proj`-like rows (stride twice the channels plus padding), with
/// and without bias, ragged channel groups and token tiles, widths the
/// SIMD kernels leave to the fallback, and non-finite inputs.
#[test]
fn multi_token_conv_silu_equals_one_token_calls() {
    let mut rng = Rng(37);
    for k in compiled().iter().filter(|k| supported(k)) {
        let conv_tokens = k.conv_silu_tokens;
        let shapes = [
            (128, 4, 64),
            (1536, 4, 9),
            (72, 4, 17),
            (13, 4, 5),
            (8, 4, 1),
            (5, 4, 3),
            (40, 3, 6),
            (9, 1, 4),
        ];
        for (channels, width, tokens) in shapes {
            let keep = width - 1;
            let stride = 2 * channels + 3;
            let mut weight = rng.vec(channels * width, 1.0);
            for w in &mut weight[..width] {
                *w = -w.abs() - 0.1;
            }
            let bias = rng.vec(channels, 0.5);
            let mut xz = rng.vec(stride * tokens, 4.0);
            if tokens > 2 && channels > 3 {
                xz[2 * stride + 3] = f32::NAN;
                xz[stride + channels - 1] = f32::INFINITY;
            }
            for with_bias in [false, true] {
                let conv = ConvWeights { weight: &weight, bias: with_bias.then_some(&bias[..]), width };
                let args = ConvTokens { conv, xs: TokenRows { data: &xz, stride }, channels, tokens };
                let window0 = rng.vec(channels * keep, 3.0);
                let (mut want_win, mut got_win) = (window0.clone(), window0);
                let (mut want, mut got) = (vec![7f32; channels * tokens], vec![7f32; channels * tokens]);
                for t in 0..tokens {
                    let xs = &xz[t * stride..t * stride + channels];
                    let o = &mut want[t * channels..(t + 1) * channels];
                    eddy_kernels::math::causal_conv_silu_step(&conv, &mut want_win, xs, o);
                }
                conv_tokens(&args, &mut got_win, &mut got);
                let what =
                    format!("{} channels {channels} width {width} tokens {tokens} bias {with_bias}", k.name);
                assert_eq!(bits(&got), bits(&want), "out: {what}");
                assert_eq!(bits(&got_win), bits(&want_win), "window: {what}");
            }
        }
    }
}

/// `silu(gate) * up` of every set against the reference, bit for bit:
/// lengths with ragged tails for 4- and 8-lane vectors and 32-value
/// steps, `up` shorter or longer than `gate`, the exp's clamp range
/// (|gate| up to 200) and non-finite values.
#[test]
fn silu_mul_is_bit_exact() {
    let mut rng = Rng(41);
    for k in compiled().iter().filter(|k| supported(k)) {
        for (len, up_len) in [
            (0, 0),
            (1, 1),
            (7, 7),
            (8, 8),
            (13, 13),
            (31, 31),
            (33, 33),
            (4608, 4608),
            (4611, 4611),
            (37, 30),
            (21, 40),
        ] {
            for scale in [1.0, 12.0, 200.0] {
                let mut gate = rng.vec(len, scale);
                if len > 5 {
                    gate[1] = f32::NAN;
                    gate[3] = f32::INFINITY;
                    gate[5] = f32::NEG_INFINITY;
                }
                let up = rng.vec(up_len, 3.0);
                let (mut want, mut got) = (gate.clone(), gate);
                eddy_kernels::reference::silu_mul(&mut want, &up);
                (k.silu_mul)(&mut got, &up);
                assert_eq!(bits(&got), bits(&want), "{} len {len} up {up_len} scale {scale}", k.name);
            }
        }
    }
}

/// True on an AMD CPU, read from `/proc/cpuinfo` (independently of the
/// CPUID check the kernel sets use); false where there is no such file.
fn amd_cpu() -> bool {
    std::fs::read_to_string("/proc/cpuinfo")
        .is_ok_and(|s| s.lines().any(|l| l.starts_with("vendor_id") && l.ends_with("AuthenticAMD")))
}
