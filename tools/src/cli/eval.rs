//! `eddy eval`: perplexity of a text file, with the running figure shown
//! and, on Ctrl-C, the perplexity of the tokens scored so far.

use crate::{load, open};
use anyhow::{Context, Result};
use eddy_cli::progress::Progress;
use eddy_cli::text::TextCodec;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

/// `eddy eval` arguments.
#[derive(clap::Args)]
pub(crate) struct EvalArgs {
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
    /// Restart from an empty state every this many tokens (0 = score the
    /// text as one stream).
    #[arg(short = 'c', long, default_value_t = 0)]
    ctx: usize,
    /// Print the result as one JSON object.
    #[arg(long)]
    json: bool,
}

/// Score the text; Ctrl-C stops early and reports what was scored.
pub(crate) fn cmd_eval(args: EvalArgs) -> Result<()> {
    let mapped = open(&args.model)?;
    let model = load(&mapped)?;
    let json = model
        .tokenizer_json()
        .with_context(|| format!("{} has no embedded tokenizer; eval needs one", args.model.display()))?;
    let codec = TextCodec::from_json(json)?;
    let file = eddy_cli::validate::open_regular(&args.ppl)
        .with_context(|| format!("cannot read {}", args.ppl.display()))?;
    let size = file.metadata().map_or(0, |m| m.len());
    let interrupted = Arc::new(AtomicBool::new(false));
    let flag = interrupted.clone();
    // A second Ctrl-C ends at once (the handler is replaced by the default
    // only by exiting): the first asks for the partial result.
    ctrlc::set_handler(move || {
        if flag.swap(true, Ordering::SeqCst) {
            std::process::exit(130);
        }
    })
    .context("cannot install the Ctrl-C handler")?;
    // The text is read, tokenized and scored in pieces, so progress is in
    // bytes of text.
    let mut bar = Progress::new("eval", size, "bytes");
    let t0 = Instant::now();
    let result = eddy_cli::eval::perplexity_of_text(
        &model,
        &codec,
        file,
        (args.chunk, args.limit, args.ctx),
        |done, so_far| {
            match so_far {
                Some(p) => bar.set_with(done, &format!("ppl {:.4}", p.ppl())),
                None => bar.set(done),
            }
            !interrupted.load(Ordering::SeqCst)
        },
    )
    .with_context(|| format!("cannot score {}", args.ppl.display()))?;
    bar.finish();
    let complete = !interrupted.load(Ordering::SeqCst);
    let tok_s = result.predicted as f64 / t0.elapsed().as_secs_f64();
    if args.json {
        let v = serde_json::json!({
            "model": args.model.display().to_string(),
            "text": args.ppl.display().to_string(),
            "tokens_evaluated": result.predicted,
            "mean_nll": result.mean_nll,
            "ppl": result.ppl(),
            "complete": complete,
            "tok_per_s": tok_s,
            "state_format": model.state_format().to_string(),
            "state_bytes": model.state_bytes(),
        });
        println!("{v}");
    } else {
        println!(
            "tokens evaluated: {}  mean nll: {:.6}  ppl: {:.4}  ({:.1} tok/s, state {}, {} bytes){}",
            result.predicted,
            result.mean_nll,
            result.ppl(),
            tok_s,
            model.state_format(),
            model.state_bytes(),
            if complete { "" } else { "  (interrupted: perplexity of the tokens scored so far)" }
        );
    }
    if !complete {
        std::process::exit(130);
    }
    Ok(())
}
