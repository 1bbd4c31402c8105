//! `eddy bench`: llama-bench style prefill/decode table, the decode
//! roofline per thread count, and the ratios the speed targets are stated in.

use super::parse_counts;
use crate::{configure, quantize_bytes, DtypeArg, QuantArgs};
use anyhow::{bail, Context, Result};
use eddy::file::AlignedBytes;
use eddy::{Model, StateFormat};
use eddy_cli::convert::WeightDtype;
use eddy_cli::random::Storage;
use eddy_cli::recipe::Recipe;
use std::path::PathBuf;
use std::time::Instant;

/// `eddy bench` options.
#[derive(clap::Args)]
pub(crate) struct BenchArgs {
    /// The .eddy file (or use --random-model).
    #[arg(value_name = "MODEL")]
    path: Option<PathBuf>,
    /// Benchmark a random-weight model of a public shape instead (built as
    /// `eddy convert` + `eddy quantize` would build it); `list` shows the
    /// shapes, their families and parameter counts.
    #[arg(long, conflicts_with = "path")]
    random_model: Option<String>,
    /// Storage of the random model's matrices without --recipe.
    #[arg(long, value_enum, default_value = "f32")]
    dtype: DtypeArg,
    /// Quantize the model with this recipe first (no calibration); a
    /// random model is quantized tensor by tensor as it is generated.
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

/// Build or read the model, run the plan, print the table (or JSON).
pub(crate) fn cmd_bench(a: BenchArgs) -> Result<()> {
    use eddy_cli::bench::{read_bandwidth, run_plan, BenchPlan, Roofline};
    if a.random_model.as_deref() == Some("list") {
        print!("{}", eddy_cli::shapes::public_shape_table());
        return Ok(());
    }
    let (aligned, label) = match (a.path, a.random_model) {
        (_, Some(name)) => random_model(&name, a.dtype, a.recipe.as_deref())?,
        (Some(p), None) => {
            let bytes = std::fs::read(&p).with_context(|| format!("cannot read {}", p.display()))?;
            let label = p.display().to_string();
            match a.recipe {
                None => (AlignedBytes::copy_from(&bytes), label),
                Some(r) => {
                    let q = QuantArgs {
                        calib: None,
                        calib_tokens: 0,
                        calib_ctx: None,
                        overrides: Vec::new(),
                        no_clip_search: true,
                        no_act_aware: true,
                        no_gptq: true,
                        gptq: false,
                        target_bpw: None,
                    };
                    (AlignedBytes::copy_from(&quantize_bytes(&bytes, &r, &q)?), format!("{label} {r}"))
                }
            }
        }
        (None, None) => {
            bail!("give a model file or --random-model NAME (--random-model list shows the names)")
        }
    };
    let bytes = aligned.as_slice();
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
    let mut progress = eddy_cli::progress::Progress::new("bench", plan.runs() as u64, "runs");
    let rows = run_plan(&model, &plan, |done, test| progress.set_with(done as u64, test))?;
    progress.finish();
    let params: u64 = model.file().tensors().map(|t| t.rows() * t.cols()).sum();
    let active = eddy::moe::active_weights(model.file()).active_params;
    let bpw = bytes.len() as f64 * 8.0 / params.max(1) as f64;
    if a.json {
        let v = serde_json::json!({
            "model": label, "bytes": bytes.len(), "params": params, "active_params": active, "bits_per_weight": bpw,
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
    if active < params {
        println!();
        println!(
            "experts: {:.1} M of {:.1} M parameters active per token",
            active as f64 / 1e6,
            params as f64 / 1e6
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

/// Build the random model of the public shape `name`, stored by `recipe` or else as `dtype`.
fn random_model(name: &str, dtype: DtypeArg, recipe: Option<&str>) -> Result<(AlignedBytes, String)> {
    use eddy_cli::shapes::{public_shape, public_shape_table};
    let shape = public_shape(name)
        .with_context(|| format!("unknown shape `{name}`; known shapes:\n{}", public_shape_table()))?;
    let plan = shape.config().plan().with_context(|| format!("shape `{name}`"))?;
    let storage = match (recipe, dtype) {
        (Some(r), _) => Storage::Recipe(Recipe::load(r)?),
        (None, DtypeArg::F32) => Storage::Converted(WeightDtype::F32),
        (None, DtypeArg::F16) => Storage::Converted(WeightDtype::F16),
    };
    let t0 = Instant::now();
    let built = eddy_cli::random::build(&plan, &storage, 1)?;
    eprintln!(
        "built random {name} ({}, {:.1} M params) in {:.1} s",
        plan.architecture().name(),
        plan.parameters() as f64 / 1e6,
        t0.elapsed().as_secs_f64()
    );
    if let Some(first) = built.notes.first() {
        eprintln!(
            "note: {} tensors stored in another format than the recipe's; first: {first}",
            built.notes.len()
        );
    }
    let label = match recipe {
        Some(r) => format!("{name} (random) {r}"),
        None => format!("{name} (random)"),
    };
    Ok((built.bytes, label))
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
