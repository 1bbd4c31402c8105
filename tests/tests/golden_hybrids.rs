//! Golden logits for the hybrid families (LFM2, RecurrentGemma, Qwen3-Next): eddy's
//! converter + runtime against transformers on tiny random models
//! (fixtures from tools/python/make_hybrid_fixtures.py and, for Qwen3-Next,
//! make_moe_fixtures.py), the Lambda window
//! against a masked-attention reference, and the KV cache formats.

use eddy::file::AlignedBytes;
use eddy::{Architecture, KvCacheOptions, KvFormat, Model};
use eddy_cli::convert::WeightDtype;
use eddy_tests::{
    convert, f32_with_ids, fixture_dir, load_reference, max_abs_diff, restore_one_step_snapshot,
    resume_from_snapshot, same_length_kv_layouts, step_and_prefill,
};
use safetensors::SafeTensors;

/// f32 tolerance: only summation order and exp/tanh implementations differ.
const F32_TOL: f32 = 1e-4;

const HYBRIDS: [(&str, Architecture); 3] = [
    ("lfm2-tiny", Architecture::Lfm2),
    ("recurrentgemma-tiny", Architecture::RecurrentGemma),
    // Qwen3-Next as released: Gated DeltaNet + gated attention + experts.
    ("qwen3next-tiny", Architecture::GatedDeltaNet),
];

/// The model with its cache in `format`, keeping the default window.
fn with_format<'a>(model: &Model<'a>, format: KvFormat) -> Model<'a> {
    let kv = model.kv_cache().expect("hybrids have attention layers");
    model.with_kv_cache(KvCacheOptions { format, ..kv }).unwrap()
}

#[test]
fn f32_cache_matches_transformers_and_prefill_equals_step() {
    for (fixture, arch) in HYBRIDS {
        let bytes = convert(fixture, WeightDtype::F32);
        let model = with_format(&Model::from_bytes(bytes.as_slice()).unwrap(), KvFormat::F32);
        assert_eq!(model.architecture(), arch);
        let reference = load_reference(fixture);
        let (stepwise, batched) = step_and_prefill(&model, &reference.input_ids);
        let e_dec = max_abs_diff(&stepwise, &reference.logits_decode);
        let e_fwd = max_abs_diff(&batched, &reference.logits_forward);
        println!("{fixture}: max |eddy step - decode| {e_dec:.3e}, |eddy prefill - forward| {e_fwd:.3e}");
        assert!(e_dec <= F32_TOL && e_fwd <= F32_TOL, "{fixture}: {e_dec} / {e_fwd}");
        assert_eq!(stepwise, batched, "{fixture}: batched prefill must equal stepping bit for bit");
    }
}

#[test]
fn recurrent_gemma_defaults_to_its_own_window() {
    let bytes = convert("recurrentgemma-tiny", WeightDtype::F32);
    let model = Model::from_bytes(bytes.as_slice()).unwrap();
    // The fixture's attention_window_size is 8 (shorter than its 24 tokens).
    let kv = model.kv_cache().unwrap();
    assert_eq!((kv.sinks, kv.window, kv.format), (0, 8, KvFormat::Q4));
}

#[test]
fn lambda_window_matches_masked_attention() {
    let bytes = convert("lfm2-tiny", WeightDtype::F32);
    let model = Model::from_bytes(bytes.as_slice()).unwrap();
    let raw = std::fs::read(fixture_dir("lfm2-tiny").join("reference.safetensors")).unwrap();
    let st = SafeTensors::deserialize(&raw).unwrap();
    let int = |name: &str| {
        let d = st.tensor(name).unwrap().data().to_vec();
        i32::from_le_bytes([d[0], d[1], d[2], d[3]]) as u32
    };
    let (sinks, window) = (int("lambda_sinks"), int("lambda_window"));
    let want: Vec<f32> = st
        .tensor("lambda_logits")
        .unwrap()
        .data()
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect();
    let reference = load_reference("lfm2-tiny");
    let lambda = model.with_kv_cache(KvCacheOptions { format: KvFormat::F32, sinks, window }).unwrap();
    let (stepwise, batched) = step_and_prefill(&lambda, &reference.input_ids);
    let err = max_abs_diff(&stepwise, &want);
    println!("lfm2-tiny sinks {sinks} window {window}: max |eddy - masked reference| {err:.3e}");
    assert!(err <= F32_TOL, "lambda window error {err}");
    assert_eq!(stepwise, batched);
    // And the window really matters here: the full-attention logits differ.
    assert!(max_abs_diff(&stepwise, &reference.logits_forward) > 1e-2);
    // A smaller cache holds fewer slots.
    assert!(lambda.state_bytes() < with_format(&model, KvFormat::F32).state_bytes());
}

/// Worst logit errors against the f32 cache, per format f16/q8/q4: bounds
/// about 2-3x the measurement (lfm2 0.0012/0.033/0.42, recurrentgemma
/// 0.0012/0.017/0.38; random tiny heads of 16 and 12 values, one scale
/// group per head; qwen3next 0.015/0.15/2.29, higher as its output-gated
/// attention feeds expert routers, and a router that picks another
/// expert moves the logits by a jump); fewer bits must cost more.
const KV_BOUNDS: [(&str, [f32; 3]); 3] = [
    ("lfm2-tiny", [0.003, 0.08, 0.9]),
    ("recurrentgemma-tiny", [0.003, 0.04, 0.8]),
    ("qwen3next-tiny", [0.04, 0.4, 5.0]),
];

#[test]
fn kv_formats_stay_bounded_and_snapshots_are_exact() {
    for (fixture, bounds) in KV_BOUNDS {
        let (bytes, ids) = f32_with_ids(fixture);
        let model = Model::from_bytes(bytes.as_slice()).unwrap();
        let (exact, _) = step_and_prefill(&with_format(&model, KvFormat::F32), &ids);
        let mut prev = 0.0;
        let mut prev_bytes = usize::MAX;
        for (format, bound) in [KvFormat::F16, KvFormat::Q8, KvFormat::Q4].into_iter().zip(bounds) {
            let m = with_format(&model, format);
            let (stepwise, batched) = step_and_prefill(&m, &ids);
            assert_eq!(stepwise, batched, "{fixture} {format:?}: prefill != step");
            let err = max_abs_diff(&stepwise, &exact);
            println!(
                "{fixture} kv {}: max logit error vs f32 cache {err:.4}, state {} bytes",
                format.name(),
                m.state_bytes()
            );
            assert!(
                err <= bound && err > prev,
                "{fixture} {format:?}: {err} (bound {bound}, previous {prev})"
            );
            assert!(m.state_bytes() < prev_bytes, "{fixture} {format:?}: fewer bits must take less state");
            (prev, prev_bytes) = (err, m.state_bytes());
            // Snapshot mid-stream, continue, restore, continue: identical.
            let (want, got, _) = resume_from_snapshot(&m, &ids);
            assert_eq!(want, got, "{fixture} {format:?}: snapshot/restore");
        }
    }
}

#[test]
fn bad_kv_options_are_refused_with_a_reason() {
    let bytes = convert("lfm2-tiny", WeightDtype::F32);
    let model = Model::from_bytes(bytes.as_slice()).unwrap();
    for bad in [
        KvCacheOptions { format: KvFormat::Q4, sinks: 4, window: 0 },
        KvCacheOptions { format: KvFormat::F16, sinks: u32::MAX, window: 8 },
    ] {
        let e = model.with_kv_cache(bad).unwrap_err();
        assert!(e.to_string().contains("window"), "{e}");
    }
    // Snapshots of one cache layout do not restore into another.
    let small = model.with_kv_cache(KvCacheOptions { format: KvFormat::Q4, sinks: 0, window: 4 }).unwrap();
    assert!(restore_one_step_snapshot(&small, &model).is_err());
    // Even when two layouts have the same byte length.
    let (f16, q8) = same_length_kv_layouts(&model);
    assert!(restore_one_step_snapshot(&f16, &q8).is_err());
}

/// LFM2 honours a file's `rotary_dims`: the converted model rebuilt with
/// `rotary_dims = head_dim` (the default) gives the same logits bit for
/// bit, with half of it different ones (only the leading half of each head
/// rotates).
#[test]
fn lfm2_honours_rotary_dims() {
    use eddy::writer::{FileBuilder, TensorData};
    use eddy::HParam;
    let bytes = convert("lfm2-tiny", WeightDtype::F32);
    let base = with_format(&Model::from_bytes(bytes.as_slice()).unwrap(), KvFormat::F32);
    let head_dim = base.file().hparam(HParam::HeadDim).unwrap();
    let rebuilt = |rotary: u32| {
        let file = base.file();
        let mut b = FileBuilder::new(Architecture::Lfm2);
        for (k, v) in file.hparams() {
            b.hparam_raw(k, v);
        }
        b.hparam(HParam::RotaryDims, rotary);
        for t in file.tensors() {
            b.tensor(TensorData::f32(t.name, t.shape(), t.as_f32().unwrap())).unwrap();
        }
        for (kind, data) in (0..file.blob_count()).filter_map(|i| file.blob_at(i)) {
            b.blob(kind, data.to_vec());
        }
        AlignedBytes::copy_from(&b.to_bytes())
    };
    let ids = [1u32, 5, 9, 2, 7, 3, 8, 4];
    let (want, _) = step_and_prefill(&base, &ids);
    let full = rebuilt(head_dim);
    let (same, _) =
        step_and_prefill(&with_format(&Model::from_bytes(full.as_slice()).unwrap(), KvFormat::F32), &ids);
    assert_eq!(want, same, "rotary_dims = head_dim must change nothing");
    let half = rebuilt(head_dim / 2);
    let (other, _) =
        step_and_prefill(&with_format(&Model::from_bytes(half.as_slice()).unwrap(), KvFormat::F32), &ids);
    assert!(max_abs_diff(&want, &other) > 1e-4, "rotary_dims = head_dim / 2 must change the logits");
}

/// LM-Infinite's distance limit as a model option: a limit no distance
/// reaches changes nothing (bit for bit), a binding one changes the logits
/// past it; prefill equals stepping with it; the state layout is the
/// same (snapshots restore across it); 0 is refused with a reason.
#[test]
fn kv_distance_limit_is_a_model_option() {
    let bytes = convert("lfm2-tiny", WeightDtype::F32);
    let model = with_format(&Model::from_bytes(bytes.as_slice()).unwrap(), KvFormat::F32);
    assert_eq!(model.kv_distance_limit(), None, "off by default");
    let e = model.with_kv_distance_limit(Some(0)).unwrap_err();
    assert!(e.to_string().contains("distance limit"), "{e}");
    let ids: Vec<u32> = (0..24).map(|i| (i * 7 + 3) % 50).collect();
    let far = model.with_kv_distance_limit(Some(1000)).unwrap();
    let near = model.with_kv_distance_limit(Some(4)).unwrap();
    assert_eq!((far.kv_distance_limit(), near.state_bytes()), (Some(1000), model.state_bytes()));
    let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<u32>>();
    let (plain, _) = step_and_prefill(&model, &ids);
    let (unreached, _) = step_and_prefill(&far, &ids);
    assert_eq!(bits(&plain), bits(&unreached), "a limit no distance reaches changes nothing");
    let (stepped, prefilled) = step_and_prefill(&near, &ids);
    assert_eq!(bits(&stepped), bits(&prefilled), "prefill equals stepping with a limit");
    let vocab = plain.len() / ids.len();
    // Distances reach 4 from the sixth token on: the first five agree.
    assert_eq!(bits(&plain[..5 * vocab]), bits(&stepped[..5 * vocab]));
    assert!(
        max_abs_diff(&plain[5 * vocab..], &stepped[5 * vocab..]) > 1e-4,
        "a binding limit changes logits"
    );
    assert!(restore_one_step_snapshot(&model, &near).is_ok(), "the state layout is unchanged");
}

/// Qwen3-Next's experts: a token reads `top_k` of each layer's stacked
/// expert matrices (inspect and bench count those as its active
/// parameters), every other tensor whole.
#[test]
fn experts_count_only_the_chosen_as_active() {
    use eddy::HParam;
    let bytes = convert("qwen3next-tiny", WeightDtype::F32);
    let model = Model::from_bytes(bytes.as_slice()).unwrap();
    let file = model.file();
    let h = |k| file.hparam(k).unwrap() as u64;
    let (experts, top_k) = (h(HParam::NExperts), h(HParam::ExpertsPerToken));
    assert_eq!((experts, top_k), (8, 2));
    let stacked: u64 = file.tensors().filter(|t| t.name.contains(".moe.experts_")).map(|t| t.numel()).sum();
    // Three layers with experts, gate+up and down of d_expert 32, width 64.
    assert_eq!(stacked, 3 * experts * 3 * 32 * 64);
    let w = eddy::moe::active_weights(file);
    assert_eq!(w.total_params, file.tensors().map(|t| t.numel()).sum::<u64>());
    assert_eq!(w.total_params - w.active_params, stacked / experts * (experts - top_k));
    assert_eq!(w.total_bytes - w.active_bytes, 4 * (w.total_params - w.active_params));
    // Decode also reads one row of the (untied) embedding table.
    let embed = file.tensors().next().unwrap();
    let unread = embed.data.len() as u64 / embed.rows() * (embed.rows() - 1);
    assert_eq!(eddy_cli::bench::decode_bytes_per_token(&model), w.active_bytes - unread);
}
