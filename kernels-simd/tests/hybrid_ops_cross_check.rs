//! The hybrids' recurrent kernels (LFM2's and RecurrentGemma's causal
//! convolution without activation, one token and a prefill chunk, and
//! RecurrentGemma's RG-LRU) of every kernel set this CPU supports against
//! the scalar reference: bit-exact, on random inputs, every convolution
//! width 1 to 5 (the SIMD versions take 2 to 4), channel counts with ragged
//! tails, with and without bias.

use eddy_kernels::reference::{causal_conv, rg_lru};
use eddy_kernels::{compiled, supported, ConvTokens, ConvWeights, RgLruArgs, TokenRows};
use eddy_testkit::Lcg as Rng;

fn bits(v: &[f32]) -> Vec<u32> {
    v.iter().map(|x| x.to_bits()).collect()
}

const CHANNELS: [usize; 10] = [0, 1, 3, 7, 8, 9, 16, 31, 67, 1024];

#[test]
fn causal_conv_is_bit_exact() {
    let mut rng = Rng(21);
    for k in compiled().iter().filter(|k| supported(k)) {
        for width in 1..=5 {
            for channels in CHANNELS {
                for with_bias in [false, true] {
                    let weight = rng.vec(channels * width, 1.0);
                    let bias = rng.vec(channels, 0.5);
                    let conv = ConvWeights { weight: &weight, bias: with_bias.then_some(&bias[..]), width };
                    let mut want_window = rng.vec(channels * (width - 1), 2.0);
                    let mut got_window = want_window.clone();
                    for step in 0..4 {
                        let xs = rng.vec(channels, 3.0);
                        let (mut want, mut got) = (vec![0f32; channels], vec![1f32; channels]);
                        causal_conv(&conv, &mut want_window, &xs, &mut want);
                        (k.causal_conv)(&conv, &mut got_window, &xs, &mut got);
                        let what = format!(
                            "{} width {width} channels {channels} bias {with_bias} step {step}",
                            k.name
                        );
                        assert_eq!(bits(&got), bits(&want), "out: {what}");
                        assert_eq!(bits(&got_window), bits(&want_window), "window: {what}");
                    }
                }
            }
        }
    }
}

#[test]
fn multi_token_causal_conv_equals_one_token_calls() {
    let mut rng = Rng(22);
    for k in compiled().iter().filter(|k| supported(k)) {
        for width in 1..=5 {
            for channels in CHANNELS {
                for tokens in [0, 1, 5, 17] {
                    // Inputs inside wider rows (LFM2 reads `B ⊙ x` inside
                    // `in_proj`'s output), with bias on every other case.
                    let stride = 3 * channels + 1;
                    let data = rng.vec(tokens * stride, 3.0);
                    let xs = TokenRows { data: &data, stride };
                    let weight = rng.vec(channels * width, 1.0);
                    let bias = rng.vec(channels, 0.5);
                    let bias = (tokens % 2 == 1).then_some(&bias[..]);
                    let conv = ConvWeights { weight: &weight, bias, width };
                    let window0 = rng.vec(channels * (width - 1), 2.0);
                    let mut want_window = window0.clone();
                    let mut want = vec![0f32; tokens * channels];
                    for t in 0..tokens {
                        let out = &mut want[t * channels..(t + 1) * channels];
                        causal_conv(&conv, &mut want_window, xs.row(t, channels), out);
                    }
                    let mut got_window = window0;
                    let mut got = vec![1f32; tokens * channels];
                    let args = ConvTokens { conv, xs, channels, tokens };
                    (k.causal_conv_tokens)(&args, &mut got_window, &mut got);
                    let what = format!("{} width {width} channels {channels} tokens {tokens}", k.name);
                    assert_eq!(bits(&got), bits(&want), "out: {what}");
                    assert_eq!(bits(&got_window), bits(&want_window), "window: {what}");
                }
            }
        }
    }
}

#[test]
fn rg_lru_is_bit_exact() {
    let mut rng = Rng(23);
    for k in compiled().iter().filter(|k| supported(k)) {
        for channels in CHANNELS {
            // `log_a_coef = -8 softplus(Λ)`: negative, up to large decays.
            let coef: Vec<f32> = (0..channels).map(|_| -8.0 * (0.01 + 3.0 * rng.f().abs())).collect();
            let mut want_h = rng.vec(channels, 2.0);
            let mut got_h = want_h.clone();
            for step in 0..4 {
                let (x, gi, ga, y) = (
                    rng.vec(channels, 3.0),
                    rng.vec(channels, 6.0),
                    rng.vec(channels, 6.0),
                    rng.vec(channels, 4.0),
                );
                let args = RgLruArgs {
                    x: &x,
                    input_gate: &gi,
                    a_gate: &ga,
                    log_a_coef: &coef,
                    y: &y,
                    first: step == 1,
                };
                let (mut want, mut got) = (vec![0f32; channels], vec![1f32; channels]);
                rg_lru(&args, &mut want_h, &mut want);
                (k.rg_lru)(&args, &mut got_h, &mut got);
                let what = format!("{} channels {channels} step {step}", k.name);
                assert_eq!(bits(&got), bits(&want), "out: {what}");
                assert_eq!(bits(&got_h), bits(&want_h), "h: {what}");
            }
            // Shorter buffers stop early, like the reference.
            if channels > 2 {
                let n = channels - 2;
                let (x, gi, ga, y) =
                    (rng.vec(channels, 3.0), rng.vec(channels, 6.0), rng.vec(n, 6.0), rng.vec(channels, 4.0));
                let args =
                    RgLruArgs { x: &x, input_gate: &gi, a_gate: &ga, log_a_coef: &coef, y: &y, first: false };
                let (mut want, mut got) = (vec![0f32; channels], vec![1f32; channels]);
                want[n..].fill(1.0);
                rg_lru(&args, &mut want_h, &mut want);
                (k.rg_lru)(&args, &mut got_h, &mut got);
                assert_eq!(bits(&got), bits(&want), "{} channels {channels}, a_gate shorter", k.name);
                assert_eq!(bits(&got_h), bits(&want_h), "{} channels {channels}, a_gate shorter", k.name);
            }
        }
    }
}
