//! `eddy`: convert, inspect and run recurrent language models.

use anyhow::{bail, Context, Result};
use clap::{Parser, Subcommand, ValueEnum};
use eddy::{MappedModel, Model, StateFormat, PREFILL_CHUNK};
use eddy_cli::convert::gguf::GgufWeights;
use eddy_cli::convert::{convert_into_with_progress, WeightDtype};
use eddy_cli::file_writer::TempOutput;
use eddy_cli::fpga::Backend;
use eddy_cli::mapped_input::MappedInput;
use eddy_cli::text::{parse_token_list, TextCodec};
mod cli;

use cli::bench::{cmd_bench, BenchArgs};
use cli::chat::{cmd_chat, ChatArgs};
use cli::eval::{cmd_eval, EvalArgs};
use cli::inspect::{cmd_inspect, cmd_memory};
use cli::run::{cmd_run, RunArgs};
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::time::Instant;

#[derive(Parser)]
#[command(name = "eddy", version, about = "Run quantized recurrent language models on small machines")]
struct Cli {
    #[command(subcommand)]
    command: Command,
    /// Kernel set: scalar, avx2, avx2-vnni-prefill, avx512-vnni (x86-64; avx512-vnni only when named,
    /// avx2-vnni-prefill automatic on AMD CPUs with AVX-512 VNNI), avx512-amx (x86-64 with AMX:
    /// automatic where its guarded check passes; EDDY_AMX=0 turns it off), neon, neon-sdot (aarch64)
    /// (default: the best this CPU supports; also settable with the
    /// EDDY_KERNELS environment variable).
    #[arg(long, global = true)]
    kernels: Option<String>,
    /// Threads for matrix work (default: all cores; also settable with the
    /// EDDY_THREADS environment variable). Results do not depend on it.
    #[arg(short = 't', long, global = true)]
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
    /// LM-Infinite's distance limit for attention layers: keys further
    /// back than N tokens are scored as if N back (set it to the trained
    /// context to stream past it; default off).
    #[arg(long, global = true, value_name = "N")]
    kv_distance_limit: Option<u32>,
}

/// `--kv`, `--kv-sinks`, `--kv-window` as given.
#[derive(Clone, Default)]
struct KvArgs {
    format: Option<String>,
    sinks: Option<u32>,
    window: Option<u32>,
    distance_limit: Option<u32>,
}

static KV_ARG: std::sync::OnceLock<KvArgs> = std::sync::OnceLock::new();

/// Apply the KV cache flags to a model with attention layers.
fn configure_kv(model: &mut Model<'_>) -> Result<()> {
    let args = KV_ARG.get().cloned().unwrap_or_default();
    if args.format.is_none() && args.sinks.is_none() && args.window.is_none() && args.distance_limit.is_none()
    {
        return Ok(());
    }
    let Some(mut kv) = model.kv_cache() else {
        bail!(
            "--kv/--kv-sinks/--kv-window/--kv-distance-limit set the KV cache of attention layers; this {} model has none",
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
    if args.distance_limit.is_some() {
        *model = model.with_kv_distance_limit(args.distance_limit)?;
    }
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
fn fpga_for<'m>(model: &Model<'_>, bytes: &'m [u8]) -> Result<Option<eddy_cli::fpga::Accelerator<'m>>> {
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
        Some(n) => eddy_cli::validate::check_threads(n).context("--threads")?,
        None => match std::env::var("EDDY_THREADS") {
            Ok(v) => eddy_cli::validate::parse_threads(&v).context("EDDY_THREADS")?,
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
    /// Calibration tokens to use (the first N of the text). Statistics cost
    /// grows with N; GPTQ's Hessians most (cols² per token and matrix).
    #[arg(long, default_value_t = 4096)]
    calib_tokens: usize,
    /// Run the calibration text as separate sequences of N tokens, the
    /// state reset before each, as llama-imatrix's `-c N` (default: one
    /// sequence). Bounds attention's cost; changes the statistics.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    calib_ctx: Option<u64>,
    /// Override a tensor's format: PATTERN=FORMAT (repeatable), e.g. '*.out_proj.weight=w4g64'.
    #[arg(long = "set")]
    overrides: Vec<String>,
    /// Ablation: plain per-group min/max instead of the clip search.
    #[arg(long)]
    no_clip_search: bool,
    /// Ablation: ignore activation statistics in the error.
    #[arg(long)]
    no_act_aware: bool,
    /// No GPTQ error compensation (activation-aware clip search only).
    #[arg(long, conflicts_with = "gptq")]
    no_gptq: bool,
    /// GPTQ error compensation even for models above 100M parameters, where
    /// it is off by default (its Hessians and sweeps grow with the square of
    /// a matrix's width: minutes to hours there, versus seconds without).
    #[arg(long)]
    gptq: bool,
    /// A byte budget instead of fixed formats: choose each matrix's format
    /// (2, 4 or 8 bits, groups of 32 to 256) from its measured,
    /// calibration-weighted error so that all tensors fit B bits per weight
    /// at the least expected loss (recipe default w2a8; its f16/f32 choices
    /// and --set stay as they are).
    #[arg(long, value_name = "B")]
    target_bpw: Option<f64>,
}

/// Above this many parameters GPTQ is off unless `--gptq` asks for it.
const GPTQ_DEFAULT_MAX_PARAMS: u64 = 100_000_000;

#[derive(Subcommand)]
enum Command {
    /// Convert a Hugging Face checkpoint directory or a llama.cpp GGUF file into a .eddy file.
    Convert {
        /// Directory with config.json, *.safetensors and tokenizer.json; or a .gguf file.
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
        /// Recipe: a preset (f32, f16, w8a8, w4a8, w2a8) or a .toml file
        /// (with --target-bpw: the base, w2a8 if not given).
        #[arg(long, required_unless_present = "target_bpw")]
        recipe: Option<String>,
        #[command(flatten)]
        quant: QuantArgs,
    },
    /// Print architecture, hyper-parameters, tensors and memory needs.
    Inspect {
        /// The .eddy file.
        model: PathBuf,
        /// Print everything as one JSON object.
        #[arg(long)]
        json: bool,
    },
    /// Generate text from a prompt, streaming it.
    Run(RunArgs),
    /// Chat on stdin/stdout with the model's chat template; the state
    /// carries across turns. Commands: /reset, /save FILE, /load FILE.
    Chat(ChatArgs),
    /// Measure prefill (ppN) and decode (tgN) tokens/s like llama-bench,
    /// with the decode memory-bandwidth roofline measured in the same run.
    Bench(BenchArgs),
    /// Perplexity of a text file (one stream, state carried across chunks).
    Eval(EvalArgs),
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
        /// Print the table as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Serve the model over HTTP with the OpenAI API (completions, chat).
    Serve(eddy_cli::serve::ServeArgs),
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

fn open(path: &PathBuf) -> Result<MappedModel> {
    MappedModel::open(path).map_err(anyhow::Error::from)
}

/// Quantize the model in `bytes` by `recipe` into memory, printing a summary.
fn quantize_bytes(bytes: &[u8], recipe: &str, q: &QuantArgs) -> Result<Vec<u8>> {
    let aligned = eddy::file::AlignedBytes::copy_from(bytes);
    let mut model = Model::from_bytes(aligned.as_slice())?;
    Ok(quantize_model_to(&mut model, recipe, q, std::io::Cursor::new(Vec::new()), |_| {})?.into_inner())
}

/// Quantize the model file `input` by `recipe` into `out` (the input
/// mapped, its pages dropped as soon as each tensor has been read), printing a summary.
fn quantize_file(input: &Path, out: BufWriter<File>, recipe: &str, q: &QuantArgs) -> Result<BufWriter<File>> {
    let mapped = MappedInput::open(input)?;
    let mut model = Model::from_file(mapped.file()?)?;
    let tensors: Vec<&[u8]> = model.file().tensors().map(|t| t.data).collect();
    quantize_model_to(&mut model, recipe, q, out, |i| {
        if let Some(data) = tensors.get(i) {
            mapped.release(data);
        }
    })
}

/// Quantize `model` by `recipe` into `out` tensor by tensor, printing a
/// summary, each phase's progress and time, and the total time;
/// `released(i)` is called once tensor `i`'s input is no longer read (by
/// calibration too, each time it moves past a layer).
fn quantize_model_to<W: std::io::Write + std::io::Seek>(
    model: &mut Model<'_>,
    recipe: &str,
    q: &QuantArgs,
    out: W,
    released: impl Fn(usize),
) -> Result<W> {
    use eddy_cli::calibrate::{
        collect_activation_stats_paged, hessian_matrices, matrix_names, CalibrationOptions,
    };
    use eddy_cli::progress::Progress;
    let started = Instant::now();
    let recipe = eddy_cli::recipe::Recipe::load(recipe)?.with_overrides(&q.overrides)?;
    let threads = requested_threads()?;
    model.set_workers(eddy::Workers::threads(threads).context("cannot start the thread pool")?);
    eddy_cli::par::set_threads(threads);
    let model = &*model;
    eddy_cli::recipe::Recipe::require_override_matches(&q.overrides, &matrix_names(model))?;
    let params: u64 = model.file().tensors().map(|t| t.numel()).sum();
    let gptq = match (q.gptq, q.no_gptq) {
        (true, _) => true,
        (_, true) => false,
        // Without calibration GPTQ has nothing to work with either way; the
        // flag is only recorded in the report, as before.
        _ if params > GPTQ_DEFAULT_MAX_PARAMS && q.calib.is_some() => {
            eprintln!(
                "note: {:.0}M parameters: GPTQ is off above {}M (pass --gptq to use it)",
                params as f64 / 1e6,
                GPTQ_DEFAULT_MAX_PARAMS / 1_000_000
            );
            false
        }
        _ => true,
    };
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
            let hessians: std::collections::HashSet<String> = if gptq {
                hessian_matrices(model, &recipe).into_iter().collect()
            } else {
                Default::default()
            };
            let context = q.calib_ctx.map(|n| n as usize);
            let phase = if gptq { "calibration (with GPTQ Hessians)" } else { "calibration" };
            let mut bar = Progress::new(phase, tokens.len() as u64, "tokens");
            let s = collect_activation_stats_paged(
                model,
                &tokens,
                context,
                &|name: &str| hessians.contains(name),
                &released,
                |n| bar.set(n as u64),
            )?;
            bar.finish();
            eprintln!("calibrated on {} tokens of {}", tokens.len(), path.display());
            Some((s, tokens.len()))
        }
    };
    let opts = CalibrationOptions { clip_search: !q.no_clip_search, activation_aware: !q.no_act_aware, gptq };
    let recipe = match q.target_bpw {
        None => recipe,
        Some(b) => {
            let (r, a) = eddy_cli::budget::recipe_for_target(
                model,
                &recipe,
                &q.overrides,
                stats.as_ref().map(|s| &s.0),
                opts,
                b,
            )?;
            eprintln!("budget: {} of {} tensor bytes; {}", a.bytes, a.budget, a.summary());
            r
        }
    };
    // Progress in weights, not tensors: the embedding alone can be a fifth.
    let weights_done: Vec<u64> = model
        .file()
        .tensors()
        .scan(0u64, |sum, t| {
            *sum += t.numel();
            Some(*sum)
        })
        .collect();
    let mut bar = Progress::new("quantization", params, "weights");
    let (out, report) = eddy_cli::quantize::quantize_model_into(
        model,
        &recipe,
        stats.as_ref().map(|s| &s.0),
        stats.as_ref().map_or(0, |s| s.1),
        opts,
        |done, _| bar.set(weights_done.get(done.saturating_sub(1)).copied().unwrap_or(params)),
        &released,
        out,
    )?;
    bar.finish();
    for note in &report.notes {
        eprintln!("note: {note}");
    }
    let names = matrix_names(model);
    eprintln!(
        "recipe {}: {:.3} bits/weight overall, {:.3} on the matrices; {:.1} s in all",
        report.recipe,
        report.bits_per_weight(false, &names),
        report.bits_per_weight(true, &names),
        started.elapsed().as_secs_f64()
    );
    Ok(out)
}

/// Check the finished file behind `tmp` with the runtime's own reader, then
/// put it in place; the size written.
fn persist_checked(tmp: TempOutput, mut file: BufWriter<File>) -> Result<u64> {
    file.flush().context("cannot write the output")?;
    {
        let mapped =
            MappedInput::open(tmp.path()).context("internal error: the written file does not load")?;
        Model::from_file(mapped.file()?).context("internal error: the written file does not load")?;
    }
    let len = file.get_ref().metadata().map(|m| m.len()).unwrap_or(0);
    tmp.persist(file).context("cannot put the output in place")?;
    Ok(len)
}

/// Say that a file quantized without `--calib` is of lower quality (its
/// report records zero calibration tokens: `inspect` shows "uncalibrated").
fn warn_if_uncalibrated(q: &QuantArgs) {
    if q.calib.is_none() {
        eprintln!(
            "warning: no --calib text: quantizing without activation statistics (plain weight error, no \
             GPTQ); the file is marked uncalibrated. Pass --calib TEXT for better quality."
        );
    }
}

fn cmd_quantize(path: PathBuf, output: PathBuf, recipe: String, q: QuantArgs) -> Result<()> {
    warn_if_uncalibrated(&q);
    let (tmp, file) =
        TempOutput::create(&output).with_context(|| format!("cannot create {}", output.display()))?;
    let file = quantize_file(&path, file, &recipe, &q)?;
    let len = persist_checked(tmp, file)?;
    println!("wrote {} ({len} bytes)", output.display());
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
    let create = |p: &Path| TempOutput::create(p).with_context(|| format!("cannot create {}", p.display()));
    // Streamed to a temporary file beside the output; with a recipe that
    // file is the quantizer's (mapped) input and is removed afterwards.
    let started = Instant::now();
    let (converted_tmp, file) = create(&output)?;
    // A recipe re-quantizes from floats, so a GGUF's quantized tensors are
    // then dequantized rather than kept.
    let weights = if recipe.is_some() { GgufWeights::Dequantize } else { GgufWeights::Keep };
    let mut bar: Option<eddy_cli::progress::Progress> = None;
    let (mut file, conv) = convert_into_with_progress(&hf_dir, dtype, weights, file, |done, total| {
        bar.get_or_insert_with(|| eddy_cli::progress::Progress::new("convert", total, "weights")).set(done)
    })?;
    if let Some(bar) = bar {
        bar.finish();
    }
    let len = match recipe {
        None => persist_checked(converted_tmp, file)?,
        Some(recipe) => {
            warn_if_uncalibrated(&q);
            file.flush().context("cannot write the output")?;
            drop(file);
            let (tmp, out) = create(&output)?;
            let out = quantize_file(converted_tmp.path(), out, &recipe, &q)?;
            drop(converted_tmp);
            persist_checked(tmp, out)?
        }
    };
    for note in &conv.notes {
        eprintln!("{note}");
    }
    for name in &conv.ignored {
        eprintln!("note: checkpoint tensor `{name}` is not used (tied or unknown)");
    }
    // (a GGUF file says in its notes why it has no tokenizer)
    if !conv.has_tokenizer && !hf_dir.is_file() {
        eprintln!("note: no tokenizer.json in {}; use token ids with `eddy run --tokens`", hf_dir.display());
    }
    println!(
        "wrote {} ({len} bytes): {}, {} layers, width {}, vocab {}; {:.1} s",
        output.display(),
        conv.architecture.name(),
        conv.shape.0,
        conv.shape.1,
        conv.shape.2,
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

fn cmd_logits(path: PathBuf, tokens: String, output: PathBuf, stepwise: bool) -> Result<()> {
    let mapped = open(&path)?;
    let mut model = load(&mapped)?;
    let fpga = fpga_for(&model, mapped.bytes())?;
    if let Some(f) = &fpga {
        model.set_offload(eddy_cli::fpga::as_offload(f));
    }
    let ids = parse_token_list(&tokens)?;
    if ids.is_empty() {
        bail!("--tokens is empty; give at least one token id");
    }
    let vocab = model.vocab_size();
    let mut session = eddy_cli::validate::new_session(&model)?;
    let mut all = Vec::with_capacity(ids.len() * vocab);
    if stepwise {
        for &t in &ids {
            all.extend_from_slice(session.step(t)?);
        }
    } else {
        session.prefill_chunked(&ids, PREFILL_CHUNK, true, |_, l| all.extend_from_slice(l))?;
    }
    for (position, row) in all.chunks(vocab.max(1)).enumerate() {
        eddy_cli::validate::check_logits(row, position as u64)?;
    }
    let mut buf = Vec::new();
    eddy_cli::npy::write_f32_2d(&mut buf, ids.len(), vocab, &all)?;
    std::fs::write(&output, buf).with_context(|| format!("cannot write {}", output.display()))?;
    println!("wrote {} ([{}, {}] f32)", output.display(), ids.len(), vocab);
    eddy_cli::fpga::report(fpga.as_ref())
}

/// Refuse runtime options given to a subcommand that would ignore them.
fn check_options_apply(cli: &Cli) -> Result<()> {
    let name = match &cli.command {
        Command::Convert { .. } => "convert",
        Command::Quantize { .. } => "quantize",
        Command::Inspect { .. } => "inspect",
        Command::Run(_) => "run",
        Command::Chat(_) => "chat",
        Command::Bench(_) => "bench",
        Command::Eval(_) => "eval",
        Command::Fpga { .. } => "fpga",
        Command::Memory { .. } => "memory",
        Command::Logits { .. } => "logits",
        Command::Serve(_) => "serve",
    };
    let backend = matches!(name, "run" | "logits");
    let state = !matches!(name, "convert" | "quantize" | "fpga");
    let given = [
        ("--backend", backend, cli.backend != Backend::Cpu),
        ("--fpga-scan", backend, cli.fpga_scan),
        ("--state-bits", state, cli.state_bits != StateFormat::F32),
        ("--kv", state, cli.kv.is_some()),
        ("--kv-sinks", state, cli.kv_sinks.is_some()),
        ("--kv-window", state, cli.kv_window.is_some()),
        ("--kv-distance-limit", state, cli.kv_distance_limit.is_some()),
    ];
    match given.iter().find(|(_, applies, set)| *set && !applies) {
        Some((flag, _, _)) => bail!("{flag} does not apply to `eddy {name}` (it would be ignored)"),
        None => Ok(()),
    }
}

fn main() {
    cli::out::exit_quietly_on_broken_pipe();
    eddy_cli::validate::ignore_file_size_signal();
    let cli = Cli::parse();
    if let Err(e) = check_options_apply(&cli) {
        eprintln!("error: {}", eddy_cli::validate::error_line(&e));
        std::process::exit(1);
    }
    let _ = KERNELS_ARG.set(cli.kernels.clone());
    let _ = THREADS_ARG.set(cli.threads);
    let _ = BACKEND_ARG.set((cli.backend, cli.fpga_scan));
    let _ = STATE_ARG.set(cli.state_bits);
    let _ = KV_ARG.set(KvArgs {
        format: cli.kv.clone(),
        sinks: cli.kv_sinks,
        window: cli.kv_window,
        distance_limit: cli.kv_distance_limit,
    });
    let result = match cli.command {
        Command::Convert { hf_dir, output, dtype, recipe, quant } => {
            // --target-bpw alone quantizes too, from the w2a8 base.
            let recipe = recipe.or_else(|| quant.target_bpw.map(|_| "w2a8".to_string()));
            cmd_convert(hf_dir, output, dtype, recipe, quant)
        }
        Command::Quantize { model, output, recipe, quant } => {
            cmd_quantize(model, output, recipe.unwrap_or_else(|| "w2a8".into()), quant)
        }
        Command::Inspect { model, json } => cmd_inspect(model, json),
        Command::Run(args) => cmd_run(args),
        Command::Chat(args) => cmd_chat(args),
        Command::Bench(args) => cmd_bench(args),
        Command::Eval(args) => cmd_eval(args),
        Command::Logits { model, tokens, output, stepwise } => cmd_logits(model, tokens, output, stepwise),
        Command::Memory { model, shape, ctx, json } => cmd_memory(model, shape, ctx, json),
        Command::Fpga { command } => eddy_cli::fpga::run(command),
        Command::Serve(args) => open(&args.model).and_then(|m| Ok(eddy_cli::serve::run(&load(&m)?, &args)?)),
    };
    if let Err(e) = result {
        if cli::out::is_broken_pipe(&e) {
            std::process::exit(0);
        }
        eprintln!("error: {}", eddy_cli::validate::error_line(&e));
        std::process::exit(1);
    }
}
