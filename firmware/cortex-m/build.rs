//! Build-time setup of the demo firmware:
//!
//! - with the `defmt` feature, links defmt's `defmt.x`;
//! - picks the memory map for the target (`memory-m4.x` or `memory-m55.x`)
//!   and puts it where cortex-m-rt's `link.x` finds it as `memory.x`;
//! - opens the model named by `EDDY_FW_MODEL` with the host build of the
//!   eddy runtime, which validates it and reports the exact state and
//!   scratch bytes a session needs; these become constants that size the
//!   static buffers (no guess, no heap);
//! - copies the model to `OUT_DIR/model.eddy` for `include_bytes!`. With
//!   `EDDY_FW_CORRUPT_AT=<offset>` the byte at that offset is flipped in
//!   the copy (after sizing), to test that the firmware reports a damaged
//!   model as an error instead of faulting;
//! - turns the prompt (`EDDY_FW_PROMPT`, comma-separated token ids) and
//!   the number of tokens to generate (`EDDY_FW_GENERATE`) into constants;
//!   `EDDY_FW_KERNELS=<name>` (e.g. `scalar`) makes the firmware use that
//!   kernel set instead of the best one compiled in (for comparisons);
//! - checks that the model's family is compiled in (this crate's feature
//!   of the same name as the runtime's, or `all-families`) and otherwise
//!   fails naming the feature to enable;
//! - applies `EDDY_FW_STATE_BITS` (32, 8 or 4) and `EDDY_FW_KV`
//!   (`FORMAT[,SINKS[,WINDOW]]`, hybrids with attention layers) to the
//!   host model before sizing, and hands them to the firmware, which
//!   applies the same options to its model (see `demo.rs`).
use std::{env, fmt::Write as _, fs, path::PathBuf};

use eddy::{KvCacheOptions, KvFormat, Model, StateFormat};

const DEFAULT_GENERATE: usize = 16;

fn fail(msg: String) -> ! {
    eprintln!("error: {msg}");
    std::process::exit(1);
}

fn main() {
    let out = PathBuf::from(env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    let target = env::var("TARGET").unwrap_or_default();
    let memory = if target.starts_with("thumbv8m") { "memory-m55.x" } else { "memory-m4.x" };
    fs::copy(memory, out.join("memory.x")).unwrap_or_else(|e| fail(format!("cannot copy {memory}: {e}")));
    println!("cargo::rustc-link-search={}", out.display());
    // defmt's linker script places the log strings' symbols (in the ELF
    // only; they take no flash); it exists only when defmt is built.
    if env::var_os("CARGO_FEATURE_DEFMT").is_some() {
        println!("cargo::rustc-link-arg=-Tdefmt.x");
    }
    for f in ["memory-m4.x", "memory-m55.x", "build.rs"] {
        println!("cargo::rerun-if-changed={f}");
    }
    for v in [
        "EDDY_FW_MODEL",
        "EDDY_FW_CORRUPT_AT",
        "EDDY_FW_PROMPT",
        "EDDY_FW_GENERATE",
        "EDDY_FW_KERNELS",
        "EDDY_FW_STATE_BITS",
        "EDDY_FW_KV",
    ] {
        println!("cargo::rerun-if-env-changed={v}");
    }

    let Some(path) = env::var_os("EDDY_FW_MODEL").map(PathBuf::from) else {
        fail("set EDDY_FW_MODEL to the .eddy model to embed (firmware/run-qemu does this)".into())
    };
    println!("cargo::rerun-if-changed={}", path.display());
    let mapped = eddy::MappedModel::open(&path)
        .unwrap_or_else(|e| fail(format!("{}: {e}; cannot size the firmware's buffers", path.display())));
    let model = mapped.model().unwrap_or_else(|e| fail(format!("{}: {e}", path.display())));
    check_family_compiled(&model, &path);
    let state_format = state_format_from_env();
    let model =
        model.with_state_format(state_format).unwrap_or_else(|e| fail(format!("EDDY_FW_STATE_BITS: {e}")));
    let kv = kv_from_env(&model);
    let model = match kv {
        Some(kv) => model.with_kv_cache(kv).unwrap_or_else(|e| fail(format!("EDDY_FW_KV: {e}"))),
        None => model,
    };
    let (state_bytes, scratch_bytes, vocab) =
        (model.state_bytes(), model.scratch_bytes(), model.vocab_size());

    let mut bytes = mapped.bytes().to_vec();
    let corrupt_at = match env::var("EDDY_FW_CORRUPT_AT") {
        Ok(s) if !s.is_empty() => {
            let at: usize =
                s.parse().unwrap_or_else(|_| fail(format!("EDDY_FW_CORRUPT_AT={s} is not a byte offset")));
            let len = bytes.len();
            let b = bytes
                .get_mut(at)
                .unwrap_or_else(|| fail(format!("EDDY_FW_CORRUPT_AT={at} is past the model's {len} bytes")));
            *b ^= 0xff;
            println!("cargo::warning=byte {at} of the embedded model is flipped (EDDY_FW_CORRUPT_AT)");
            Some(at)
        }
        _ => None,
    };
    fs::write(out.join("model.eddy"), &bytes)
        .unwrap_or_else(|e| fail(format!("cannot write model copy: {e}")));

    let prompt_text = env::var("EDDY_FW_PROMPT").unwrap_or_else(|_| "0".into());
    let prompt: Vec<u32> = prompt_text
        .split(',')
        .map(|t| {
            t.trim().parse().unwrap_or_else(|_| {
                fail(format!("EDDY_FW_PROMPT: `{t}` is not a token id (want e.g. 1,2,3)"))
            })
        })
        .collect();
    let generate: usize = match env::var("EDDY_FW_GENERATE") {
        Ok(s) => s.parse().unwrap_or_else(|_| fail(format!("EDDY_FW_GENERATE={s} is not a count"))),
        Err(_) => DEFAULT_GENERATE,
    };
    if generate == 0 {
        fail("EDDY_FW_GENERATE must be at least 1".into());
    }
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();

    let mut consts = String::new();
    let mut line = |s: String| {
        consts.push_str(&s);
        consts.push('\n');
    };
    line("/// Bytes of the embedded model file.".into());
    line(format!("pub const MODEL_LEN: usize = {};", bytes.len()));
    line("/// File name of the embedded model (for the log).".into());
    line(format!("pub const MODEL_NAME: &str = {name:?};"));
    line("/// `Model::state_bytes()` of the model, computed by the host runtime at build time.".into());
    line(format!("pub const STATE_BYTES: usize = {state_bytes};"));
    line("/// `Model::scratch_bytes()` of the model, computed by the host runtime at build time.".into());
    line(format!("pub const SCRATCH_BYTES: usize = {scratch_bytes};"));
    line("/// Vocabulary size (for the log).".into());
    line(format!("pub const VOCAB: usize = {vocab};"));
    line("/// Prompt token ids.".into());
    let mut ids = String::new();
    for t in &prompt {
        let _ = write!(ids, "{t},");
    }
    line(format!("pub const PROMPT: &[u32] = &[{ids}];"));
    line("/// Tokens to generate greedily after the prompt.".into());
    line(format!("pub const GENERATE: usize = {generate};"));
    line("/// Byte flipped on purpose in the embedded copy, if any.".into());
    line(format!("pub const CORRUPT_AT: Option<usize> = {corrupt_at:?};"));
    let kernels = env::var("EDDY_FW_KERNELS").ok().filter(|k| !k.is_empty());
    line("/// Kernel set requested by name instead of the best compiled one.".into());
    line(format!("pub const KERNELS: Option<&str> = {kernels:?};"));
    line("/// Bits per value of the recurrent state (`EDDY_FW_STATE_BITS`, 32 = f32).".into());
    line(format!("pub const STATE_BITS: u32 = {};", state_format.bits()));
    line("/// KV cache of the attention layers (`EDDY_FW_KV`): format code, sinks, window.".into());
    let kv = kv.map(|k| (k.format.code(), k.sinks, k.window));
    line(format!("pub const KV: Option<(u32, u32, u32)> = {kv:?};"));
    fs::write(out.join("build_consts.rs"), consts)
        .unwrap_or_else(|e| fail(format!("cannot write constants: {e}")));
}

/// Fails, naming the feature, unless the model's family is compiled into
/// the firmware (the host runtime here has every family).
fn check_family_compiled(model: &Model<'_>, path: &std::path::Path) {
    let arch = model.architecture();
    let feature = arch.feature();
    let var = format!("CARGO_FEATURE_{}", feature.to_uppercase().replace('-', "_"));
    if env::var_os(&var).is_none() && env::var_os("CARGO_FEATURE_ALL_FAMILIES").is_none() {
        fail(format!(
            "{} is a `{}` model; build the firmware with `--features {feature}` (or `all-families`); \
             firmware/run-qemu picks it from the model",
            path.display(),
            arch.name()
        ));
    }
}

/// `EDDY_FW_STATE_BITS`: 32 (default), 8 or 4.
fn state_format_from_env() -> StateFormat {
    match env::var("EDDY_FW_STATE_BITS") {
        Ok(s) if !s.trim().is_empty() => s
            .trim()
            .parse()
            .ok()
            .and_then(StateFormat::from_bits)
            .unwrap_or_else(|| fail(format!("EDDY_FW_STATE_BITS={s}: want 32, 8 or 4"))),
        _ => StateFormat::F32,
    }
}

/// `EDDY_FW_KV=FORMAT[,SINKS[,WINDOW]]` over the model's own KV cache
/// options (an empty field keeps the default); `None` when unset.
fn kv_from_env(model: &Model<'_>) -> Option<KvCacheOptions> {
    let text = env::var("EDDY_FW_KV").ok().filter(|s| !s.trim().is_empty())?;
    let Some(mut kv) = model.kv_cache() else {
        fail(format!(
            "EDDY_FW_KV={text}: this {} model has no attention layers (no KV cache)",
            model.architecture().name()
        ))
    };
    let fields: Vec<&str> = text.split(',').map(str::trim).collect();
    if fields.len() > 3 {
        fail(format!("EDDY_FW_KV={text}: want FORMAT[,SINKS[,WINDOW]], e.g. q4,4,60"));
    }
    if let Some(f) = fields.first().filter(|f| !f.is_empty()) {
        kv.format = KvFormat::parse(f)
            .unwrap_or_else(|| fail(format!("EDDY_FW_KV: format `{f}`: want f32, f16, q8 or q4")));
    }
    let count = |i: usize, what: &str, default: u32| match fields.get(i).filter(|f| !f.is_empty()) {
        Some(f) => f.parse().unwrap_or_else(|_| fail(format!("EDDY_FW_KV: {what} `{f}` is not a count"))),
        None => default,
    };
    kv.sinks = count(1, "sinks", kv.sinks);
    kv.window = count(2, "window", kv.window);
    Some(kv)
}
