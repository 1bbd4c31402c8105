//! `eddy run`: generate text from a prompt, streaming it.

use super::out::Out;
use crate::{fpga_for, load, open, PREFILL_CHUNK};
use anyhow::{bail, Context, Result};
use eddy_cli::chat_template::ChatTemplate;
use eddy_cli::generate::{generate, StopRules};
use eddy_cli::sample::{Sampler, SamplerConfig};
use eddy_cli::state_file;
use eddy_cli::text::{parse_token_list, TextCodec};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::Instant;

/// Sampling and stopping options shared by `run` and `chat`.
#[derive(clap::Args, Clone)]
#[command(next_help_heading = "Sampling")]
pub(crate) struct SamplingArgs {
    /// Most tokens to generate (per reply in chat).
    #[arg(short = 'n', long, default_value_t = 64)]
    pub n_tokens: usize,
    /// Sampling temperature (0 = greedy).
    #[arg(long, visible_alias = "temp", default_value_t = 0.0)]
    pub temperature: f32,
    /// Keep only the k most likely tokens (0 = all).
    #[arg(long, default_value_t = 0)]
    pub top_k: usize,
    /// Nucleus sampling threshold (1 = off).
    #[arg(long, default_value_t = 1.0)]
    pub top_p: f32,
    /// Random seed for sampling.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Stop when this text is generated (repeatable; not printed).
    #[arg(long = "stop", value_name = "STR")]
    pub stop: Vec<String>,
    /// Keep going past the end-of-sequence token.
    #[arg(long)]
    pub ignore_eos: bool,
}

impl SamplingArgs {
    /// Refuse sampling options that make no sense (NaN temperature,
    /// top-p outside (0, 1]).
    pub(crate) fn check(&self) -> Result<()> {
        Ok(eddy_cli::validate::check_sampling(&self.config())?)
    }

    fn config(&self) -> SamplerConfig {
        let (temperature, top_k, top_p, seed) = (self.temperature, self.top_k, self.top_p, self.seed);
        SamplerConfig { temperature, top_k, top_p, seed }
    }

    /// The sampler these options describe.
    pub(crate) fn sampler(&self) -> Sampler {
        Sampler::new(self.config())
    }

    /// Stop rules: the model's EOS ids (unless --ignore-eos) and --stop.
    pub(crate) fn stop_rules(&self, template: &ChatTemplate) -> StopRules {
        let eos_token_ids = if self.ignore_eos { Vec::new() } else { template.eos_token_ids().to_vec() };
        StopRules { eos_token_ids, stop_strings: self.stop.clone() }
    }
}

/// `eddy run` arguments.
#[derive(clap::Args)]
pub(crate) struct RunArgs {
    /// The .eddy file.
    model: PathBuf,
    /// Prompt text (needs the embedded tokenizer); `-` reads it from stdin.
    #[arg(short, long, group = "input")]
    prompt: Option<String>,
    /// Read the prompt text from this file.
    #[arg(short = 'f', long = "file", value_name = "FILE", group = "input")]
    file: Option<PathBuf>,
    /// Prompt as comma-separated token ids instead of text.
    #[arg(long, group = "input")]
    tokens: Option<String>,
    /// Print generated token ids instead of text.
    #[arg(long)]
    ids: bool,
    /// Start from the state saved in this file (then the prompt continues it).
    #[arg(long, value_name = "FILE")]
    load_state: Option<PathBuf>,
    /// Save the state after the prompt and the generated tokens to this file.
    #[arg(long, value_name = "FILE")]
    save_state: Option<PathBuf>,
    #[command(flatten)]
    sampling: SamplingArgs,
}

/// Prompt text from `--prompt` (`-` = stdin) or `--file`, if given.
pub(crate) fn prompt_text(prompt: Option<&str>, file: Option<&Path>) -> Result<Option<String>> {
    match (prompt, file) {
        (Some("-"), _) => {
            let mut text = String::new();
            std::io::stdin()
                .read_to_string(&mut text)
                .context("cannot read the prompt from stdin as UTF-8")?;
            Ok(Some(text))
        }
        (Some(p), _) => Ok(Some(p.to_string())),
        (None, Some(f)) => std::fs::read_to_string(f)
            .map(Some)
            .with_context(|| format!("cannot read the prompt file {} as UTF-8 text", f.display())),
        (None, None) => Ok(None),
    }
}

/// Generate from a prompt (text or token ids), streaming the text.
pub(crate) fn cmd_run(args: RunArgs) -> Result<()> {
    args.sampling.check()?;
    let mapped = open(&args.model)?;
    let mut model = load(&mapped)?;
    let fpga = fpga_for(&model, mapped.bytes())?;
    if let Some(f) = &fpga {
        model.set_offload(eddy_cli::fpga::as_offload(f));
    }
    let codec = match model.tokenizer_json() {
        Some(json) => Some(TextCodec::from_json(json)?),
        None => None,
    };
    let template = ChatTemplate::from_model(&model)?;
    let text = prompt_text(args.prompt.as_deref(), args.file.as_deref())?;
    let prompt_ids = match (&text, &args.tokens) {
        (_, Some(t)) => parse_token_list(t)?,
        (Some(p), None) => match &codec {
            Some(c) => c.encode(p)?,
            None => bail!(
                "{} has no embedded tokenizer; pass --tokens 1,2,3 instead of a text prompt",
                args.model.display()
            ),
        },
        (None, None) => {
            bail!("give a prompt with --prompt \"text\", --prompt - (stdin), -f FILE or --tokens 1,2,3")
        }
    };
    if prompt_ids.is_empty() {
        bail!("the prompt encodes to zero tokens; give a non-empty prompt");
    }
    let text_out = codec.as_ref().filter(|_| !args.ids);
    let mut session = eddy_cli::validate::new_session(&model)?;
    if let Some(path) = &args.load_state {
        let h = state_file::load(path, &mut session)?;
        eprintln!("loaded state of {} tokens from {}", h.position, path.display());
    }
    let mut sampler = args.sampling.sampler();
    let mut out = Out::stdout();
    if let (Some(_), Some(p)) = (text_out, &text) {
        out.write(p)?;
    }
    let t0 = Instant::now();
    session.prefill_chunked(&prompt_ids, PREFILL_CHUNK, false, |_, _| {})?;
    let t_prefill = t0.elapsed();
    let t1 = Instant::now();
    let rules = args.sampling.stop_rules(&template);
    let generated = generate(
        &mut session,
        &mut sampler,
        text_out,
        &prompt_ids,
        args.sampling.n_tokens,
        &rules,
        &mut |piece| out.write(piece),
    )?;
    let t_gen = t1.elapsed();
    out.write("\n")?;
    if let Some(path) = &args.save_state {
        state_file::save(path, &session, None)?;
        eprintln!("saved the state of {} tokens to {}", session.position(), path.display());
    }
    let n = generated.ids.len();
    eprintln!(
        "prompt: {} tokens in {:.3} s ({:.1} tok/s); generated: {n} tokens in {:.3} s ({:.1} tok/s, {}); \
         kernels {}, {} thread(s), state {} ({} bytes)",
        prompt_ids.len(),
        t_prefill.as_secs_f64(),
        prompt_ids.len() as f64 / t_prefill.as_secs_f64().max(1e-9),
        t_gen.as_secs_f64(),
        n as f64 / t_gen.as_secs_f64().max(1e-9),
        generated.reason,
        model.kernels().name,
        model.workers().count(),
        model.state_format(),
        model.state_bytes(),
    );
    eddy_cli::fpga::report(fpga.as_ref())
}
