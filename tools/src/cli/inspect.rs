//! `eddy inspect` and `eddy memory`: what a model holds and what a
//! sequence of it costs in memory.

use super::parse_counts;
use crate::{load, open, PREFILL_CHUNK, STATE_ARG};
use anyhow::{bail, Result};
use eddy::{HParam, StateFormat};
use std::path::{Path, PathBuf};

/// Whether a quantization report says calibration text was used.
fn calibrated(report: &serde_json::Value) -> bool {
    report["calib_tokens"].as_u64().is_some_and(|n| n > 0)
}

/// Total and per-token (active) parameters and weight bytes: they differ
/// only with experts, of which a token reads its `top_k`.
fn active_json(file: &eddy::file::EddyFile<'_>) -> serde_json::Value {
    let w = eddy::moe::active_weights(file);
    serde_json::json!({
        "total": w.total_params, "active": w.active_params,
        "total_bytes": w.total_bytes, "active_bytes": w.active_bytes,
    })
}

/// Everything `inspect` prints, as one JSON object.
fn inspect_json(path: &Path, model: &eddy::Model<'_>) -> serde_json::Value {
    use serde_json::json;
    let file = model.file();
    let hparams: serde_json::Map<String, serde_json::Value> = file
        .hparams()
        .map(|(k, v)| match HParam::from_code(k) {
            Some(key) if key.is_float() => (key.name().to_string(), json!(f32::from_bits(v))),
            Some(key) if v == u32::MAX => (key.name().to_string(), serde_json::Value::Null),
            Some(key) => (key.name().to_string(), json!(v)),
            None => (format!("key#{k}"), json!(v)),
        })
        .collect();
    let tensors: Vec<_> = file
        .tensors()
        .map(
            |t| json!({"name": t.name, "format": t.format.name(), "shape": t.shape(), "bytes": t.data.len()}),
        )
        .collect();
    let bits = eddy_cli::calibrate::bits_summary(model);
    let quantized = file.blob(eddy::BlobKind::QuantReport).map(|r| {
        let mut v: serde_json::Value = serde_json::from_slice(r).unwrap_or_default();
        let c = calibrated(&v);
        if let Some(o) = v.as_object_mut() {
            o.insert("calibrated".into(), json!(c));
        }
        v
    });
    let chat = eddy_cli::chat_template::ChatTemplate::from_model(model);
    let state_by_bits: serde_json::Map<String, serde_json::Value> =
        StateFormat::ALL.iter().map(|&f| (f.bits().to_string(), json!(model.state_bytes_in(f)))).collect();
    json!({
        "file": path.display().to_string(),
        "architecture": model.architecture().name(),
        "file_bytes": file.len(),
        "checksum": file.checksum(),
        "hyper_parameters": hparams,
        "tensors": tensors,
        "bits_per_weight": {"all": bits.all, "matrices": bits.matrices, "layer_linears": bits.layer_linears},
        "quantized": quantized,
        "tokenizer_bytes": model.tokenizer_json().map(<[u8]>::len),
        "chat_template": match &chat {
            Ok(t) => json!({"stored": !t.is_default(), "eos_token_ids": t.eos_token_ids()}),
            Err(e) => json!({"error": e.to_string()}),
        },
        "parameters": active_json(file),
        "state_bytes": model.state_bytes(),
        "state_format": model.state_format().to_string(),
        "state_bytes_by_bits": state_by_bits,
        "layer_kinds": file.blob(eddy::BlobKind::LayerKinds),
        "kv_cache": model.kv_cache().map(|kv| json!({"format": kv.format.name(), "sinks": kv.sinks, "window": kv.window})),
        "scratch_bytes": model.scratch_bytes(),
        "prefill_bytes": model.prefill_scratch_bytes(PREFILL_CHUNK, false),
        "kernels": model.kernels().name,
        "threads": model.workers().count(),
    })
}

/// Print architecture, hyper-parameters, tensors and memory needs.
pub(crate) fn cmd_inspect(path: PathBuf, json: bool) -> Result<()> {
    let mapped = open(&path)?;
    let model = load(&mapped)?;
    if json {
        println!("{:#}", inspect_json(&path, &model));
        return Ok(());
    }
    let file = model.file();
    println!("file:          {}", path.display());
    println!("architecture:  {}", model.architecture().name());
    println!("file bytes:    {}", file.len());
    println!("checksum:      {:#010x}", file.checksum());
    println!("hyper-parameters:");
    for (k, v) in file.hparams() {
        match HParam::from_code(k) {
            Some(key) if key.is_float() => println!("  {:<16} {}", key.name(), f32::from_bits(v)),
            Some(key) if v == u32::MAX => println!("  {:<16} none", key.name()),
            Some(key) => println!("  {:<16} {v}", key.name()),
            None => println!("  key#{k:<11} {v}"),
        }
    }
    println!("tensors ({}):", file.tensor_count());
    println!("  {:<32} {:<6} {:<16} {:>12}", "name", "format", "shape", "bytes");
    let mut total = 0u64;
    let mut params = 0u64;
    for t in file.tensors() {
        let shape: Vec<String> = t.shape().iter().map(|d| d.to_string()).collect();
        println!("  {:<32} {:<6} {:<16} {:>12}", t.name, t.format.name(), shape.join("x"), t.data.len());
        total += t.data.len() as u64;
        params += t.numel();
    }
    println!(
        "tensor bytes:  {total} ({params} parameters, {:.2} bits/parameter)",
        total as f64 * 8.0 / params as f64
    );
    let w = eddy::moe::active_weights(file);
    if w.active_params < w.total_params {
        println!(
            "experts:       {} of {} parameters ({} of {} bytes) active per token",
            w.active_params, w.total_params, w.active_bytes, w.total_bytes
        );
    }
    let bits = eddy_cli::calibrate::bits_summary(&model);
    println!(
        "bits/weight:   {:.3} all tensors, {:.3} matrices, {:.3} layer linears (per-layer matrices)",
        bits.all, bits.matrices, bits.layer_linears
    );
    if let Some(report) = file.blob(eddy::BlobKind::QuantReport) {
        let v: serde_json::Value = serde_json::from_slice(report).unwrap_or_default();
        if !calibrated(&v) {
            println!(
                "quantized:     recipe {}, uncalibrated (no --calib: plain weight error, no activation statistics)",
                v["recipe"].as_str().unwrap_or("?")
            );
        } else {
            println!(
            "quantized:     recipe {}, {} calibration tokens, clip search {}, activation-aware {}, gptq {}",
            v["recipe"].as_str().unwrap_or("?"),
            v["calib_tokens"],
            v["clip_search"],
            v["activation_aware"],
            v["gptq"]
        );
        }
    }
    match model.tokenizer_json() {
        Some(t) => println!("tokenizer:     embedded ({} bytes)", t.len()),
        None => println!("tokenizer:     none"),
    }
    match eddy_cli::chat_template::ChatTemplate::from_model(&model) {
        Ok(t) if t.is_default() => {
            println!(
                "chat template: none stored (plain default); end-of-sequence ids {:?}",
                t.eos_token_ids()
            )
        }
        Ok(t) => println!("chat template: stored; end-of-sequence ids {:?}", t.eos_token_ids()),
        Err(e) => println!("chat template: unusable: {e}"),
    }
    println!(
        "state bytes:   {} (per sequence, constant for any length; state {})",
        model.state_bytes(),
        model.state_format()
    );
    let by_format: Vec<String> = StateFormat::ALL
        .iter()
        .map(|&f| match model.state_bytes_in(f) {
            Some(b) => format!("{} {b}", f.bits()),
            None => format!("{} overflows", f.bits()),
        })
        .collect();
    println!("state by bits: {} (--state-bits)", by_format.join(", "));
    // Every family eddy runs keeps a fixed-size state: attention layers
    // keep a bounded (sinks + window) cache, so nothing grows.
    println!("state growth:  0 bytes per token of context");
    if let Some(kinds) = file.blob(eddy::BlobKind::LayerKinds) {
        let attention: Vec<String> =
            kinds.iter().enumerate().filter(|(_, &k)| k == 1).map(|(i, _)| i.to_string()).collect();
        println!("attention:     {} of {} layers ({})", attention.len(), kinds.len(), attention.join(", "));
    }
    if let Some(kv) = model.kv_cache() {
        println!(
            "kv cache:      {}, {} sinks + {} recent tokens (--kv, --kv-sinks, --kv-window)",
            kv.format.name(),
            kv.sinks,
            kv.window
        );
    }
    println!("scratch bytes: {}", model.scratch_bytes());
    if let Some(b) = model.prefill_scratch_bytes(PREFILL_CHUNK, false) {
        println!("prefill bytes: {b} (extra scratch for batched prefill of {PREFILL_CHUNK} tokens)");
    }
    println!("kernels:       {} (compiled: {})", model.kernels().name, {
        let names: Vec<&str> = eddy_kernels::compiled().iter().map(|k| k.name).collect();
        names.join(", ")
    });
    println!("threads:       {}", model.workers().count());
    Ok(())
}

/// Per-sequence memory at several context lengths (a file or a named shape).
pub(crate) fn cmd_memory(
    path: Option<PathBuf>,
    shape: Option<String>,
    ctx: String,
    json: bool,
) -> Result<()> {
    let contexts = eddy_cli::validate::context_lengths(&parse_counts(&ctx, "--ctx")?)?;
    if contexts.is_empty() || contexts.contains(&0) {
        bail!("--ctx needs positive context lengths, e.g. 1024,32768,1048576");
    }
    // The rows first, so a bad file or shape prints nothing but the error.
    let (title, rows) = match (&path, &shape) {
        (Some(path), _) => {
            let mapped = open(path)?;
            let model = load(&mapped)?;
            let title = format!(
                "per-sequence state of {} ({}, state {}: --state-bits)",
                path.display(),
                model.architecture().name(),
                model.state_format()
            );
            (title, eddy_cli::memory::model_memory_rows(&model, &contexts)?)
        }
        (None, Some(name)) => {
            let format = STATE_ARG.get().copied().unwrap_or(StateFormat::F32);
            let rows = eddy_cli::memory::shape_memory_rows(name, &contexts, format)?;
            (
                format!(
                    "per-sequence state of the {name} shape (hyper-parameters of the public checkpoint, \
                     state {format}: --state-bits)"
                ),
                rows,
            )
        }
        (None, None) => bail!("give a .eddy file or --shape"),
    };
    if json {
        let rows: Vec<_> =
            rows.iter().map(|r| serde_json::json!({"setting": r.setting, "bytes": r.bytes})).collect();
        println!("{}", serde_json::json!({"contexts": contexts, "rows": rows}));
        return Ok(());
    }
    println!("{title}");
    let size = |b: usize| match b {
        b if b < 1 << 20 => format!("{:.1} KiB", b as f64 / 1024.0),
        b if b < 1 << 30 => format!("{:.1} MiB", b as f64 / (1u64 << 20) as f64),
        b => format!("{:.2} GiB", b as f64 / (1u64 << 30) as f64),
    };
    let head: Vec<String> = contexts.iter().map(|c| format!("{c} tokens")).collect();
    println!("| cache | {} |", head.join(" | "));
    println!("|---|{}", "---|".repeat(contexts.len()));
    for r in rows {
        let cells: Vec<String> = r.bytes.iter().map(|&b| size(b)).collect();
        println!("| {} | {} |", r.setting, cells.join(" | "));
    }
    Ok(())
}
