//! The converter's inputs: the first byte picks `config.json` (planned
//! against no tensors), `tokenizer.json`, or a `model.safetensors` file
//! converted with a fixed Mamba-1 config. Errors are fine; panics are
//! findings.
#![no_main]

use libfuzzer_sys::fuzz_target;

/// A Mamba-1 config for the safetensors case.
const CONFIG: &str = r#"{"architectures":["MambaForCausalLM"],"vocab_size":16,"hidden_size":8,
"num_hidden_layers":1,"state_size":4,"expand":2,"conv_kernel":2,"time_step_rank":2}"#;

fuzz_target!(|data: &[u8]| {
    let Some((&kind, rest)) = data.split_first() else { return };
    match kind % 3 {
        0 => {
            if let Ok(cfg) = serde_json::from_slice::<serde_json::Value>(rest) {
                let _ = eddy_cli::convert::plan_config(&cfg, &[]);
            }
        }
        1 => {
            // `TextCodec::from_json` catches a panic of the tokenizers
            // library (a known bug on malformed decoders); libFuzzer's
            // hook would abort before the unwind, so use the default one.
            // A panic anywhere else still aborts at the target's boundary.
            static DEFAULT_HOOK: std::sync::Once = std::sync::Once::new();
            DEFAULT_HOOK.call_once(|| drop(std::panic::take_hook()));
            if let Ok(codec) = eddy_cli::text::TextCodec::from_json(rest) {
                let _ = codec.encode("Hello, world! 123 \u{e9}\u{4e94}");
            }
        }
        _ => {
            let dir = std::env::temp_dir().join(format!("eddy-fuzz-st-{}", std::process::id()));
            let _ = std::fs::create_dir_all(&dir);
            let ok = std::fs::write(dir.join("config.json"), CONFIG).is_ok()
                && std::fs::write(dir.join("model.safetensors"), rest).is_ok();
            if ok {
                let _ = eddy_cli::convert::convert_dir(&dir, eddy_cli::convert::WeightDtype::F16);
            }
        }
    }
});
