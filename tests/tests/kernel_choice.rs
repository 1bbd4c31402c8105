//! Neither the kernel set nor the thread count changes a logit: a random
//! Mamba-1 model wide enough for every SIMD path (the 8-channel scan and
//! conv blocks, 8-row integer blocks, the multi-token kernel, the scan
//! split across threads), f32 and quantized (W2/W4/W8 x A8 and an f16
//! `dt_proj`), prefilled in chunks and equal to stepping, with every
//! kernel set this CPU supports and 1, 2 and 3 threads, bit for bit.

use eddy::file::AlignedBytes;
use eddy::mamba::Mamba1Config;
use eddy::{Model, Session, Workers};
use eddy_cli::calibrate::CalibrationOptions;
use eddy_cli::convert::WeightDtype;
use eddy_cli::quantize::quantize_model;
use eddy_cli::random::random_mamba1;
use eddy_cli::recipe::Recipe;

const PLAIN: CalibrationOptions =
    CalibrationOptions { clip_search: false, activation_aware: false, gptq: false };

fn config() -> Mamba1Config {
    Mamba1Config {
        vocab_size: 300,
        d_model: 128,
        n_layer: 2,
        d_state: 16,
        d_conv: 4,
        // 300 channels: 37 blocks of eight and a ragged tail of four.
        d_inner: 300,
        dt_rank: 8,
        norm_eps: 1e-5,
        tied_embeddings: true,
        proj_bias: false,
        conv_bias: true,
    }
}

/// The model in f32 and quantized by each integer preset.
fn models() -> Vec<(String, AlignedBytes)> {
    let f32_bytes = AlignedBytes::copy_from(&random_mamba1(&config(), WeightDtype::F32, 7).unwrap());
    let f32_model = Model::from_bytes(f32_bytes.as_slice()).unwrap();
    let mut out = Vec::new();
    for preset in ["w2a8", "w4a8", "w8a8"] {
        let recipe = Recipe::preset(preset).unwrap();
        let (bytes, _) = quantize_model(&f32_model, &recipe, None, 0, PLAIN, |_, _| {}).unwrap();
        out.push((preset.to_string(), AlignedBytes::copy_from(&bytes)));
    }
    out.push(("f32".to_string(), f32_bytes));
    out
}

/// Logits of a 70-token prompt prefilled in chunks of 32 (all positions),
/// as raw bits; checked equal to stepping the same tokens one by one (the
/// prefill's chunked scan runs channel blocks over the tokens instead).
fn logits(model: &Model<'_>) -> Vec<u32> {
    let tokens: Vec<u32> = (0..70u32).map(|i| (i * 37 + 11) % 300).collect();
    let mut stepped = Vec::new();
    let mut session = Session::new_owned(model);
    for &t in &tokens {
        stepped.extend(session.step(t).unwrap().iter().map(|v| v.to_bits()));
    }
    let mut bits = Vec::new();
    let mut session = Session::new_owned(model);
    session.prefill_chunked(&tokens, 32, true, |_, l| bits.extend(l.iter().map(|v| v.to_bits()))).unwrap();
    let diff = bits.iter().zip(&stepped).filter(|(a, b)| a != b).count();
    assert_eq!((bits.len(), diff), (stepped.len(), 0), "prefill differs from stepping in {diff} logits");
    bits
}

#[test]
fn kernel_sets_and_threads_give_identical_logits() {
    for (name, bytes) in models() {
        let mut model = Model::from_bytes(bytes.as_slice()).unwrap();
        model.set_kernels(eddy_kernels::by_name("scalar").unwrap());
        model.set_workers(Workers::threads(1).unwrap());
        let want = logits(&model);
        assert!(want.iter().all(|&b| f32::from_bits(b).is_finite()), "{name}: non-finite logits");
        for kernels in eddy_kernels::compiled().iter().copied().filter(|k| eddy_kernels::supported(k)) {
            for threads in [1, 2, 3] {
                model.set_kernels(kernels);
                model.set_workers(Workers::threads(threads).unwrap());
                let got = logits(&model);
                let diff = got.iter().zip(&want).filter(|(a, b)| a != b).count();
                assert_eq!(diff, 0, "{name}: {} with {threads} threads: {diff} logits differ", kernels.name);
            }
        }
    }
}
