//! `eddy`: convert, inspect and run recurrent language models.

use anyhow::{bail, Context, Result};
use clap::{Parser, Subcommand, ValueEnum};
use eddy::{HParam, MappedModel, Model, Session, StateFormat};
use eddy_cli::convert::{convert_dir, write_atomic, WeightDtype};
use eddy_cli::fpga::Backend;
use eddy_cli::sample::{Sampler, SamplerConfig};
use eddy_cli::text::{parse_token_list, TextCodec};
use std::io::Write;
use std::path::PathBuf;
use std::time::Instant;

#[derive(Parser)]
#[command(name = "eddy", version, about = "Run quantized recurrent language models on small machines")]
struct Cli {
    #[command(subcommand)]
    command: Command,
    /// Kernel set: scalar, avx2, avx512-vnni (x86-64; avx512-vnni only when named), neon, neon-sdot (aarch64)
    /// (default: the best this CPU supports; also settable with the
    /// EDDY_KERNELS environment variable).
    #[arg(long, global = true)]
    kernels: Option<String>,
    /// Threads for matrix work (default: all cores; also settable with the
    /// EDDY_THREADS environment variable). Results do not depend on it.
    #[arg(long, global = true)]
    threads: Option<usize>,
    /// Where integer matrix products run (run, logits): the CPU, or the
    /// FPGA kernel in C-simulation (bit-identical results).
    #[arg(long, global = true, value_enum, default_value = "cpu")]
    backend: Backend,
    /// With --backend fpga-sim: run the selective scan on the accelerator
    /// too (within the bound in fpga/README.md, not bit-exact).
    #[arg(long, global = true)]
    fpga_scan: bool,
    /// Bits per value of the recurrent state kept between steps (run,
    /// eval, bench, logits): 32 (f32, exact), 8 or 4 (large state tensors
    /// coded with a scale per group of 32; less memory, some quality).
    #[arg(long, global = true, value_name = "32|8|4", default_value = "32", value_parser = parse_state_bits)]
    state_bits: StateFormat,
    /// KV cache format of attention layers (hybrid models): f32, f16, q8
    /// or q4 (default q4).
    #[arg(long, global = true)]
    kv: Option<String>,
    /// Attention sinks: first tokens that stay in the KV cache (default 4
    /// for full-attention layers, 0 for sliding-window ones).
    #[arg(long, global = true)]
    kv_sinks: Option<u32>,
    /// Most recent tokens kept in the KV cache (default: the model's own
    /// window, or 4092 for full-attention layers).
    #[arg(long, global = true)]
    kv_window: Option<u32>,
}

/// `--kv`, `--kv-sinks`, `--kv-window` as given.
#[derive(Clone, Default)]
struct KvArgs {
    format: Option<String>,
    sinks: Option<u32>,
    window: Option<u32>,
}

static KV_ARG: std::sync::OnceLock<KvArgs> = std::sync::OnceLock::new();

/// Apply the KV cache flags to a model with attention layers.
fn configure_kv(model: &mut Model<'_>) -> Result<()> {
    let args = KV_ARG.get().cloned().unwrap_or_default();
    if args.format.is_none() && args.sinks.is_none() && args.window.is_none() {
        return Ok(());
    }
    let Some(mut kv) = model.kv_cache() else {
        bail!(
            "--kv/--kv-sinks/--kv-window set the KV cache of attention layers; this {} model has none",
            model.architecture().name()
        )
    };
    if let Some(f) = &args.format {
        kv.format =
            eddy::KvFormat::parse(f).with_context(|| format!("--kv `{f}`: expected f32, f16, q8 or q4"))?;
    }
    kv.sinks = args.sinks.unwrap_or(kv.sinks);
    kv.window = args.window.unwrap_or(kv.window);
    *model = model.with_kv_cache(kv)?;
    Ok(())
}

/// `--state-bits`: 32, 8 or 4.
fn parse_state_bits(s: &str) -> Result<StateFormat, String> {
    s.trim()
        .parse::<u32>()
        .ok()
        .and_then(StateFormat::from_bits)
        .ok_or_else(|| format!("`{s}` is not a state width; use 32 (f32), 8 or 4"))
}

static STATE_ARG: std::sync::OnceLock<StateFormat> = std::sync::OnceLock::new();

static BACKEND_ARG: std::sync::OnceLock<(Backend, bool)> = std::sync::OnceLock::new();

/// The simulated accelerator for a model if `--backend fpga-sim` was given.
fn fpga_for<'m>(
    model: &Model<'_>,
    bytes: &'m [u8],
) -> Result<Option<eddy_fpga::FpgaOffload<'m, eddy_fpga::SimBus>>> {
    let (backend, scan) = BACKEND_ARG.get().copied().unwrap_or((Backend::Cpu, false));
    eddy_cli::fpga::attach(backend, scan, model, bytes)
}

/// The kernel set the user asked for (flag, then EDDY_KERNELS), if any.
fn requested_kernels() -> Result<Option<&'static eddy::Kernels>> {
    let name = KERNELS_ARG.get().cloned().flatten().or_else(|| std::env::var("EDDY_KERNELS").ok());
    match name {
        None => Ok(None),
        Some(n) => match eddy_kernels::by_name(&n) {
            Some(k) => Ok(Some(k)),
            None => {
                let avail: Vec<&str> = eddy_kernels::compiled()
                    .iter()
                    .filter(|k| eddy_kernels::supported(k))
                    .map(|k| k.name)
                    .collect();
                bail!("kernel set `{n}` is not available on this CPU; available: {}", avail.join(", "))
            }
        },
    }
}

static KERNELS_ARG: std::sync::OnceLock<Option<String>> = std::sync::OnceLock::new();
static THREADS_ARG: std::sync::OnceLock<Option<usize>> = std::sync::OnceLock::new();

/// Thread count from the flag, then EDDY_THREADS, then the core count.
fn requested_threads() -> Result<usize> {
    let n = match THREADS_ARG.get().copied().flatten() {
        Some(n) => n,
        None => match std::env::var("EDDY_THREADS") {
            Ok(v) => v.parse().with_context(|| format!("EDDY_THREADS=`{v}` is not a number"))?,
            Err(_) => std::thread::available_parallelism().map_or(1, |n| n.get()),
        },
    };
    if n == 0 {
        bail!("the thread count must be at least 1");
    }
    Ok(n)
}

/// Apply the requested kernel set, thread count and state format to a model.
fn configure(model: &mut Model<'_>) -> Result<()> {
    if let Some(k) = requested_kernels()? {
        model.set_kernels(k);
    }
    let state = STATE_ARG.get().copied().unwrap_or_default();
    model.set_state_format(state).with_context(|| format!("cannot keep this model's state as {state}"))?;
    model.set_workers(eddy::Workers::threads(requested_threads()?).context("cannot start the thread pool")?);
    configure_kv(model)
}

/// Load a model from a mapped file with the requested kernel set.
fn load(mapped: &MappedModel) -> Result<Model<'_>> {
    let mut model = mapped.model()?;
    configure(&mut model)?;
    Ok(model)
}

#[derive(Clone, Copy, ValueEnum)]
enum DtypeArg {
    F32,
    F16,
}

/// Quantization options shared by `convert` and `quantize`.
#[derive(clap::Args)]
struct QuantArgs {
    /// Calibration text (UTF-8); without it, weights are quantized with
    /// plain error (no activation statistics).
    #[arg(long)]
    calib: Option<PathBuf>,
    /// Calibration tokens to use.
    #[arg(long, default_value_t = 4096)]
    calib_tokens: usize,
    /// Override a tensor's format: PATTERN=FORMAT (repeatable), e.g. '*.out_proj.weight=w4g64'.
    #[arg(long = "set")]
    overrides: Vec<String>,
    /// Ablation: plain per-group min/max instead of the clip search.
    #[arg(long)]
    no_clip_search: bool,
    /// Ablation: ignore activation statistics in the error.
    #[arg(long)]
    no_act_aware: bool,
    /// Ablation: no GPTQ error compensation.
    #[arg(long)]
    no_gptq: bool,
}

#[derive(Subcommand)]
enum Command {
    /// Convert a Hugging Face checkpoint directory into a .eddy file.
    Convert {
        /// Directory with config.json, *.safetensors and tokenizer.json.
        hf_dir: PathBuf,
        /// Output file.
        #[arg(short, long)]
        output: PathBuf,
        /// Storage of the weight matrices (norms, biases, conv, A, D stay f32).
        #[arg(long, value_enum, default_value = "f32")]
        dtype: DtypeArg,
        /// Quantize right away with this recipe (see `eddy quantize`).
        #[arg(long)]
        recipe: Option<String>,
        #[command(flatten)]
        quant: QuantArgs,
    },
    /// Quantize a converted model's matrices by a recipe, calibrated on text.
    Quantize {
        /// The f32/f16 .eddy file (output of `eddy convert`).
        model: PathBuf,
        /// Output file.
        #[arg(short, long)]
        output: PathBuf,
        /// Recipe: a preset (f32, f16, w8a8, w4a8, w2a8) or a .toml file.
        #[arg(long)]
        recipe: String,
        #[command(flatten)]
        quant: QuantArgs,
    },
    /// Print architecture, hyper-parameters, tensors and memory needs.
    Inspect {
        /// The .eddy file.
        model: PathBuf,
    },
    /// Generate text from a prompt, streaming it.
    Run {
        /// The .eddy file.
        model: PathBuf,
        /// Prompt text (needs the embedded tokenizer).
        #[arg(short, long, conflicts_with = "tokens")]
        prompt: Option<String>,
        /// Prompt as comma-separated token ids instead of text.
        #[arg(long)]
        tokens: Option<String>,
        /// Tokens to generate.
        #[arg(short = 'n', long, default_value_t = 64)]
        n_tokens: usize,
        /// Sampling temperature (0 = greedy, the default).
        #[arg(long, default_value_t = 0.0)]
        temperature: f32,
        /// Keep only the k most likely tokens (0 = all).
        #[arg(long, default_value_t = 0)]
        top_k: usize,
        /// Nucleus sampling threshold (1 = off).
        #[arg(long, default_value_t = 1.0)]
        top_p: f32,
        /// Random seed for sampling.
        #[arg(long, default_value_t = 0)]
        seed: u64,
        /// Print generated token ids instead of text.
        #[arg(long)]
        ids: bool,
    },
    /// Measure prefill (ppN) and decode (tgN) tokens/s like llama-bench,
    /// with the decode memory-bandwidth roofline measured in the same run.
    Bench(BenchArgs),
    /// Perplexity of a text file (one stream, state carried across chunks).
    Eval {
        /// The .eddy file.
        model: PathBuf,
        /// UTF-8 text file to score (needs the embedded tokenizer).
        #[arg(long)]
        ppl: PathBuf,
        /// Tokens per prefill chunk (does not change the result).
        #[arg(long, default_value_t = 512)]
        chunk: usize,
        /// Score at most this many tokens (0 = all).
        #[arg(long, default_value_t = 0)]
        limit: usize,
        /// Restart from an empty state every this many tokens (0 = score
        /// the text as one stream).
        #[arg(long, default_value_t = 0)]
        ctx: usize,
    },
    /// FPGA backend: export a board project, print the cycle model.
    Fpga {
        #[command(subcommand)]
        command: eddy_cli::fpga::FpgaCommand,
    },
    /// Per-sequence memory at several context lengths: full KV cache vs
    /// the bounded (sinks + window) cache in f16/q8/q4.
    Memory {
        /// The .eddy file (or use --shape).
        #[arg(required_unless_present = "shape")]
        model: Option<PathBuf>,
        /// A public model's shape instead of a file: mamba-130m, mamba-2.8b,
        /// mamba2-2.7b, lfm2-350m, lfm2-1.2b, recurrentgemma-2b.
        #[arg(long, conflicts_with = "model")]
        shape: Option<String>,
        /// Context lengths, comma-separated.
        #[arg(long, default_value = "1024,32768,1048576")]
        ctx: String,
    },
    /// Write the logits of every position as a .npy array [tokens, vocab].
    Logits {
        /// The .eddy file.
        model: PathBuf,
        /// Comma-separated token ids.
        #[arg(long)]
        tokens: String,
        /// Output .npy file.
        #[arg(short, long)]
        output: PathBuf,
        /// Use token-by-token decode instead of prefill.
        #[arg(long)]
        stepwise: bool,
    },
}

/// Tokens per batched prefill chunk in the CLI.
const PREFILL_CHUNK: usize = 64;

fn open(path: &PathBuf) -> Result<MappedModel> {
    MappedModel::open(path).map_err(anyhow::Error::from)
}

/// Quantize the model in `bytes` by `recipe`, printing a summary.
fn quantize_bytes(bytes: &[u8], recipe: &str, q: &QuantArgs) -> Result<Vec<u8>> {
    use eddy_cli::calibrate::{collect_activation_stats, matrix_names, CalibrationOptions};
    let recipe = eddy_cli::recipe::Recipe::load(recipe)?.with_overrides(&q.overrides)?;
    let aligned = eddy::file::AlignedBytes::copy_from(bytes);
    let model = Model::from_bytes(aligned.as_slice())?;
    let stats = match &q.calib {
        None => None,
        Some(path) => {
            let json =
                model.tokenizer_json().context("calibration text needs the model's embedded tokenizer")?;
            let codec = TextCodec::from_json(json)?;
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("cannot read calibration text {}", path.display()))?;
            let mut tokens = codec.encode(&text)?;
            tokens.truncate(q.calib_tokens);
            if tokens.is_empty() {
                bail!("calibration text {} encodes to zero tokens", path.display());
            }
            let bar = progress_bar(tokens.len(), "calibration tokens");
            let s = collect_activation_stats(&model, &tokens, !q.no_gptq, |n| bar.set_position(n as u64))?;
            bar.finish_and_clear();
            eprintln!("calibrated on {} tokens of {}", tokens.len(), path.display());
            Some((s, tokens.len()))
        }
    };
    let opts = CalibrationOptions {
        clip_search: !q.no_clip_search,
        activation_aware: !q.no_act_aware,
        gptq: !q.no_gptq,
    };
    let bar = progress_bar(model.file().tensor_count() as usize, "tensors");
    let (out, report) = eddy_cli::quantize::quantize_model(
        &model,
        &recipe,
        stats.as_ref().map(|s| &s.0),
        stats.as_ref().map_or(0, |s| s.1),
        opts,
        |done, _| bar.set_position(done as u64),
    )?;
    bar.finish_and_clear();
    for note in &report.notes {
        eprintln!("note: {note}");
    }
    let names = matrix_names(&model);
    eprintln!(
        "recipe {}: {:.3} bits/weight overall, {:.3} on the matrices",
        report.recipe,
        report.bits_per_weight(false, &names),
        report.bits_per_weight(true, &names)
    );
    Ok(out)
}

fn progress_bar(len: usize, what: &str) -> indicatif::ProgressBar {
    let bar = indicatif::ProgressBar::new(len as u64);
    let template = format!("{{bar:40}} {{pos}}/{{len}} {what} ({{per_sec}}, eta {{eta}})");
    bar.set_style(
        indicatif::ProgressStyle::with_template(&template)
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    bar
}

fn cmd_quantize(path: PathBuf, output: PathBuf, recipe: String, q: QuantArgs) -> Result<()> {
    let bytes = std::fs::read(&path).with_context(|| format!("cannot read {}", path.display()))?;
    let out = quantize_bytes(&bytes, &recipe, &q)?;
    write_atomic(&output, &out)?;
    println!("wrote {} ({} bytes)", output.display(), out.len());
    Ok(())
}

fn cmd_convert(
    hf_dir: PathBuf,
    output: PathBuf,
    dtype: DtypeArg,
    recipe: Option<String>,
    q: QuantArgs,
) -> Result<()> {
    let dtype = match dtype {
        DtypeArg::F32 => WeightDtype::F32,
        DtypeArg::F16 => WeightDtype::F16,
    };
    let mut conv = convert_dir(&hf_dir, dtype)?;
    if let Some(recipe) = recipe {
        conv.bytes = quantize_bytes(&conv.bytes, &recipe, &q)?;
    }
    // Validate what we are about to write with the runtime's own reader.
    let aligned = eddy::file::AlignedBytes::copy_from(&conv.bytes);
    Model::from_bytes(aligned.as_slice()).context("internal error: converted file does not load")?;
    write_atomic(&output, &conv.bytes)?;
    for name in &conv.ignored {
        eprintln!("note: checkpoint tensor `{name}` is not used (tied or unknown)");
    }
    if !conv.has_tokenizer {
        eprintln!("note: no tokenizer.json in {}; use token ids with `eddy run --tokens`", hf_dir.display());
    }
    println!(
        "wrote {} ({} bytes): {}, {} layers, width {}, vocab {}",
        output.display(),
        conv.bytes.len(),
        conv.architecture.name(),
        conv.shape.0,
        conv.shape.1,
        conv.shape.2
    );
    Ok(())
}

fn cmd_inspect(path: PathBuf) -> Result<()> {
    let mapped = open(&path)?;
    let model = load(&mapped)?;
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
    let bits = eddy_cli::calibrate::bits_summary(&model);
    println!(
        "bits/weight:   {:.3} all tensors, {:.3} matrices, {:.3} layer linears (per-layer matrices)",
        bits.all, bits.matrices, bits.layer_linears
    );
    if let Some(report) = file.blob(eddy::BlobKind::QuantReport) {
        let v: serde_json::Value = serde_json::from_slice(report).unwrap_or_default();
        println!(
            "quantized:     recipe {}, {} calibration tokens, clip search {}, activation-aware {}, gptq {}",
            v["recipe"].as_str().unwrap_or("?"),
            v["calib_tokens"],
            v["clip_search"],
            v["activation_aware"],
            v["gptq"]
        );
    }
    match model.tokenizer_json() {
        Some(t) => println!("tokenizer:     embedded ({} bytes)", t.len()),
        None => println!("tokenizer:     none"),
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

#[allow(clippy::too_many_arguments)]
fn cmd_run(
    path: PathBuf,
    prompt: Option<String>,
    tokens: Option<String>,
    n_tokens: usize,
    sampler: SamplerConfig,
    print_ids: bool,
) -> Result<()> {
    let mapped = open(&path)?;
    let mut model = load(&mapped)?;
    let fpga = fpga_for(&model, mapped.bytes())?;
    if let Some(f) = &fpga {
        model.set_offload(f);
    }
    let codec = match model.tokenizer_json() {
        Some(json) => Some(TextCodec::from_json(json)?),
        None => None,
    };
    let prompt_ids = match (&prompt, &tokens) {
        (_, Some(t)) => parse_token_list(t)?,
        (Some(p), None) => match &codec {
            Some(c) => c.encode(p)?,
            None => {
                bail!("{} has no embedded tokenizer; pass --tokens 1,2,3 instead of --prompt", path.display())
            }
        },
        (None, None) => bail!("give a prompt with --prompt \"text\" or --tokens 1,2,3"),
    };
    if prompt_ids.is_empty() {
        bail!("the prompt encodes to zero tokens; give a non-empty prompt");
    }
    let text_out = codec.as_ref().filter(|_| !print_ids);
    let mut session = Session::new_owned(&model);
    let mut sampler = Sampler::new(sampler);
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    if let (Some(c), Some(p)) = (text_out, &prompt) {
        let _ = c;
        write!(out, "{p}")?;
    }
    let t0 = Instant::now();
    session.prefill_chunked(&prompt_ids, PREFILL_CHUNK, false, |_, _| {})?;
    let mut next = sampler.sample(session.logits());
    let t_prefill = t0.elapsed();
    let mut all_ids = prompt_ids.clone();
    let mut generated = Vec::new();
    let t1 = Instant::now();
    for i in 0..n_tokens {
        generated.push(next);
        all_ids.push(next);
        match text_out {
            Some(c) => write!(out, "{}", c.decode_increment(&all_ids)?)?,
            None => write!(out, "{}{next}", if i == 0 { "" } else { "," })?,
        }
        out.flush()?;
        if i + 1 == n_tokens {
            break;
        }
        let logits = session.step(next)?;
        next = sampler.sample(logits);
    }
    let t_gen = t1.elapsed();
    writeln!(out)?;
    eprintln!(
        "prompt: {} tokens in {:.3} s ({:.1} tok/s); generated: {} tokens in {:.3} s ({:.1} tok/s); \
         kernels {}, {} thread(s), state {} ({} bytes)",
        prompt_ids.len(),
        t_prefill.as_secs_f64(),
        prompt_ids.len() as f64 / t_prefill.as_secs_f64().max(1e-9),
        generated.len(),
        t_gen.as_secs_f64(),
        generated.len().saturating_sub(1) as f64 / t_gen.as_secs_f64().max(1e-9),
        model.kernels().name,
        model.workers().count(),
        model.state_format(),
        model.state_bytes(),
    );
    eddy_cli::fpga::report(fpga.as_ref())
}

/// `eddy bench` arguments.
#[derive(clap::Args)]
struct BenchArgs {
    /// The .eddy file (or use --random-model).
    #[arg(value_name = "MODEL")]
    path: Option<PathBuf>,
    /// Benchmark a random-weight model of a named shape instead:
    /// mamba-130m, mamba-370m, mamba-790m, mamba-1.4b, mamba-2.8b.
    #[arg(long, conflicts_with = "path")]
    random_model: Option<String>,
    /// Storage of the random model's matrices.
    #[arg(long, value_enum, default_value = "f32")]
    dtype: DtypeArg,
    /// Quantize the model with this recipe first (no calibration).
    #[arg(long)]
    recipe: Option<String>,
    /// Prompt lengths to prefill, comma-separated (0 or empty: none).
    #[arg(short = 'p', long, default_value = "128,512")]
    prompts: String,
    /// Tokens to generate (0: no decode test).
    #[arg(short = 'n', long, default_value_t = 128)]
    n_tokens: usize,
    /// Thread counts to test, comma-separated (default: --threads).
    #[arg(long)]
    sweep_threads: Option<String>,
    /// Repetitions per test.
    #[arg(short = 'r', long, default_value_t = 3)]
    reps: usize,
    /// Tokens per batched prefill chunk.
    #[arg(long, default_value_t = 64)]
    chunk: usize,
    /// Skip the memory-bandwidth measurement (saves ~2 s).
    #[arg(long)]
    no_roofline: bool,
    /// Print JSON instead of a table.
    #[arg(long)]
    json: bool,
}

fn parse_counts(list: &str, what: &str) -> Result<Vec<usize>> {
    list.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| s.parse::<usize>().with_context(|| format!("{what}: `{s}` is not a number")))
        .filter(|n| !matches!(n, Ok(0)))
        .collect()
}

fn cmd_bench(a: BenchArgs) -> Result<()> {
    use eddy_cli::bench::{read_bandwidth, run_plan, BenchPlan, Roofline};
    let (bytes, label) = match (a.path, a.random_model) {
        (_, Some(name)) => {
            let cfg = eddy_cli::random::named_shape(&name).with_context(|| {
                format!("unknown shape `{name}`; known: {}", eddy_cli::random::NAMED_SHAPES.join(", "))
            })?;
            let d = match a.dtype {
                DtypeArg::F32 => WeightDtype::F32,
                DtypeArg::F16 => WeightDtype::F16,
            };
            (eddy_cli::random::random_mamba1(&cfg, d, 1), format!("{name} (random)"))
        }
        (Some(p), None) => (
            std::fs::read(&p).with_context(|| format!("cannot read {}", p.display()))?,
            p.display().to_string(),
        ),
        (None, None) => bail!("give a model file or --random-model NAME"),
    };
    let (bytes, label) = match a.recipe {
        None => (bytes, label),
        Some(r) => {
            let q = QuantArgs {
                calib: None,
                calib_tokens: 0,
                overrides: Vec::new(),
                no_clip_search: true,
                no_act_aware: true,
                no_gptq: true,
            };
            (quantize_bytes(&bytes, &r, &q)?, format!("{label} {r}"))
        }
    };
    let aligned = eddy::file::AlignedBytes::copy_from(&bytes);
    let mut model = Model::from_bytes(aligned.as_slice())?;
    configure(&mut model)?;
    let label = match model.state_format() {
        StateFormat::F32 => label,
        f => format!("{label} state {f}"),
    };
    let threads = match a.sweep_threads {
        Some(list) => parse_counts(&list, "--sweep-threads")?,
        None => vec![model.workers().count()],
    };
    if threads.is_empty() {
        bail!("--sweep-threads lists no thread count");
    }
    let plan = BenchPlan {
        prompts: parse_counts(&a.prompts, "--prompts")?,
        decode: a.n_tokens,
        threads,
        reps: a.reps,
        chunk: a.chunk,
    };
    // The roofline of each thread count tested (bandwidth grows with the
    // threads reading), the single thread's always.
    let mut roofline_threads = plan.threads.clone();
    roofline_threads.push(1);
    roofline_threads.sort_unstable();
    roofline_threads.dedup();
    let rooflines: Vec<Roofline> = if a.no_roofline {
        Vec::new()
    } else {
        roofline_threads.iter().map(|&t| Roofline::new(&model, t, read_bandwidth(512 << 20, 3, t))).collect()
    };
    let rows = run_plan(&model, &plan)?;
    let params: u64 = model.file().tensors().map(|t| t.rows() * t.cols()).sum();
    let bpw = bytes.len() as f64 * 8.0 / params.max(1) as f64;
    if a.json {
        let v = serde_json::json!({
            "model": label, "bytes": bytes.len(), "params": params, "bits_per_weight": bpw,
            "kernels": model.kernels().name, "results": rows, "rooflines": rooflines,
        });
        println!("{}", serde_json::to_string_pretty(&v)?);
        return Ok(());
    }
    println!("| model | size | params | bpw | kernels | threads | test | t/s |");
    println!("| --- | ---: | ---: | ---: | --- | ---: | ---: | ---: |");
    for r in &rows {
        println!(
            "| {label} | {:.2} MiB | {:.1} M | {bpw:.2} | {} | {} | {} | {:.2} ± {:.2} |",
            bytes.len() as f64 / (1 << 20) as f64,
            params as f64 / 1e6,
            model.kernels().name,
            r.threads,
            r.test,
            r.tokens_per_s,
            r.stddev
        );
    }
    if let Some(rf) = rooflines.first() {
        println!();
        println!("roofline: {:.2} MB of weights read per token", rf.bytes_per_token as f64 / 1e6);
        for rf in &rooflines {
            println!(
                "read bandwidth {} thread(s): {:.2} GB/s -> at most {:.1} tok/s",
                rf.threads,
                rf.read_bytes_per_s / 1e9,
                rf.roofline_tokens_per_s
            );
        }
        for r in rows.iter().filter(|r| r.test.starts_with("tg")) {
            let same = rooflines.iter().find(|f| f.threads == r.threads).unwrap_or(rf);
            let own = match same.threads {
                1 => String::new(),
                t => format!(
                    ", {:.0}% of the {t}-thread roofline",
                    100.0 * r.tokens_per_s / same.roofline_tokens_per_s
                ),
            };
            println!(
                "decode {} thread(s): {:.2} tok/s = {:.0}% of the single-thread roofline{own}",
                r.threads,
                r.tokens_per_s,
                100.0 * r.tokens_per_s / rf.roofline_tokens_per_s,
            );
        }
    }
    print_ratios(&rows);
    Ok(())
}

/// Prefill vs decode speed and the speed-up over one thread, per test.
fn print_ratios(rows: &[eddy_cli::bench::BenchRow]) {
    let rate = |test: &str, threads: usize| {
        rows.iter().find(|r| r.test == test && r.threads == threads).map(|r| r.tokens_per_s)
    };
    let mut lines = Vec::new();
    for r in rows.iter().filter(|r| r.test.starts_with("pp")) {
        for tg in rows.iter().filter(|t| t.test.starts_with("tg") && t.threads == r.threads) {
            lines.push(format!(
                "{} / {} with {} thread(s): {:.2}x",
                r.test,
                tg.test,
                r.threads,
                r.tokens_per_s / tg.tokens_per_s.max(1e-9)
            ));
        }
    }
    for r in rows.iter().filter(|r| r.threads > 1) {
        if let Some(one) = rate(&r.test, 1) {
            lines.push(format!(
                "{} with {} threads: {:.2}x one thread",
                r.test,
                r.threads,
                r.tokens_per_s / one.max(1e-9)
            ));
        }
    }
    if !lines.is_empty() {
        println!();
        lines.iter().for_each(|l| println!("{l}"));
    }
}

fn cmd_eval(path: PathBuf, text_path: PathBuf, chunk: usize, limit: usize, ctx: usize) -> Result<()> {
    let mapped = open(&path)?;
    let model = load(&mapped)?;
    let json = model
        .tokenizer_json()
        .with_context(|| format!("{} has no embedded tokenizer; eval needs one", path.display()))?;
    let codec = TextCodec::from_json(json)?;
    let text = std::fs::read_to_string(&text_path)
        .with_context(|| format!("cannot read {} as UTF-8 text", text_path.display()))?;
    let mut tokens = codec.encode(&text)?;
    if limit > 0 {
        tokens.truncate(limit);
    }
    if tokens.len() < 2 {
        bail!("{} has fewer than 2 tokens; nothing to score", text_path.display());
    }
    let bar = progress_bar(tokens.len() - 1, "tokens");
    let t0 = Instant::now();
    let result = eddy_cli::eval::perplexity_in_windows(&model, &tokens, chunk, ctx, |done| {
        bar.set_position(done as u64)
    })?;
    bar.finish_and_clear();
    println!(
        "tokens evaluated: {}  mean nll: {:.6}  ppl: {:.4}  ({:.1} tok/s, state {}, {} bytes)",
        result.predicted,
        result.mean_nll,
        result.ppl(),
        result.predicted as f64 / t0.elapsed().as_secs_f64(),
        model.state_format(),
        model.state_bytes()
    );
    Ok(())
}

fn cmd_memory(path: Option<PathBuf>, shape: Option<String>, ctx: String) -> Result<()> {
    let contexts: Vec<u32> = parse_counts(&ctx, "--ctx")?.into_iter().map(|c| c as u32).collect();
    if contexts.is_empty() || contexts.contains(&0) {
        bail!("--ctx needs positive context lengths, e.g. 1024,32768,1048576");
    }
    let rows = match (&path, &shape) {
        (Some(path), _) => {
            let mapped = open(path)?;
            let model = load(&mapped)?;
            println!(
                "per-sequence state of {} ({}, state {}: --state-bits)",
                path.display(),
                model.architecture().name(),
                model.state_format()
            );
            eddy_cli::memory::model_memory_rows(&model, &contexts)?
        }
        (None, Some(name)) => {
            if STATE_ARG.get().is_some_and(|&f| f != StateFormat::F32) {
                bail!("--state-bits needs a .eddy file: a --shape is sized with an f32 recurrent state");
            }
            println!("per-sequence state of the {name} shape (hyper-parameters of the public checkpoint)");
            eddy_cli::memory::shape_memory_rows(name, &contexts)?
        }
        (None, None) => bail!("give a .eddy file or --shape"),
    };
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

fn cmd_logits(path: PathBuf, tokens: String, output: PathBuf, stepwise: bool) -> Result<()> {
    let mapped = open(&path)?;
    let mut model = load(&mapped)?;
    let fpga = fpga_for(&model, mapped.bytes())?;
    if let Some(f) = &fpga {
        model.set_offload(f);
    }
    let ids = parse_token_list(&tokens)?;
    if ids.is_empty() {
        bail!("--tokens is empty; give at least one token id");
    }
    let vocab = model.vocab_size();
    let mut session = Session::new_owned(&model);
    let mut all = Vec::with_capacity(ids.len() * vocab);
    if stepwise {
        for &t in &ids {
            all.extend_from_slice(session.step(t)?);
        }
    } else {
        session.prefill_chunked(&ids, PREFILL_CHUNK, true, |_, l| all.extend_from_slice(l))?;
    }
    let mut buf = Vec::new();
    eddy_cli::npy::write_f32_2d(&mut buf, ids.len(), vocab, &all)?;
    std::fs::write(&output, buf).with_context(|| format!("cannot write {}", output.display()))?;
    println!("wrote {} ([{}, {}] f32)", output.display(), ids.len(), vocab);
    eddy_cli::fpga::report(fpga.as_ref())
}

fn main() {
    let cli = Cli::parse();
    let _ = KERNELS_ARG.set(cli.kernels.clone());
    let _ = THREADS_ARG.set(cli.threads);
    let _ = BACKEND_ARG.set((cli.backend, cli.fpga_scan));
    let _ = STATE_ARG.set(cli.state_bits);
    let _ = KV_ARG.set(KvArgs { format: cli.kv.clone(), sinks: cli.kv_sinks, window: cli.kv_window });
    let result = match cli.command {
        Command::Convert { hf_dir, output, dtype, recipe, quant } => {
            cmd_convert(hf_dir, output, dtype, recipe, quant)
        }
        Command::Quantize { model, output, recipe, quant } => cmd_quantize(model, output, recipe, quant),
        Command::Inspect { model } => cmd_inspect(model),
        Command::Run { model, prompt, tokens, n_tokens, temperature, top_k, top_p, seed, ids } => {
            let cfg = SamplerConfig { temperature, top_k, top_p, seed };
            cmd_run(model, prompt, tokens, n_tokens, cfg, ids)
        }
        Command::Bench(args) => cmd_bench(args),
        Command::Eval { model, ppl, chunk, limit, ctx } => cmd_eval(model, ppl, chunk, limit, ctx),
        Command::Logits { model, tokens, output, stepwise } => cmd_logits(model, tokens, output, stepwise),
        Command::Memory { model, shape, ctx } => cmd_memory(model, shape, ctx),
        Command::Fpga { command } => eddy_cli::fpga::run(command),
    };
    if let Err(e) = result {
        eprintln!("error: {e:#}");
        std::process::exit(1);
    }
}
