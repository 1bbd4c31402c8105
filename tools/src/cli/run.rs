//! `eddy run`: generate text from a prompt, streaming it.

use crate::{fpga_for, load, open, PREFILL_CHUNK};
use anyhow::{bail, Result};
use eddy_cli::sample::{Sampler, SamplerConfig};
use eddy_cli::text::{parse_token_list, TextCodec};
use eddy_cli::validate::check_logits;
use std::io::Write;
use std::path::PathBuf;
use std::time::Instant;

/// Generate from a prompt (text or token ids), streaming the text.
#[allow(clippy::too_many_arguments)]
pub(crate) fn cmd_run(
    path: PathBuf,
    prompt: Option<String>,
    tokens: Option<String>,
    n_tokens: usize,
    sampler: SamplerConfig,
    print_ids: bool,
) -> Result<()> {
    eddy_cli::validate::check_sampling(&sampler)?;
    let mapped = open(&path)?;
    let mut model = load(&mapped)?;
    let fpga = fpga_for(&model, mapped.bytes())?;
    if let Some(f) = &fpga {
        model.set_offload(eddy_cli::fpga::as_offload(f));
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
    let mut session = eddy_cli::validate::new_session(&model)?;
    let mut sampler = Sampler::new(sampler);
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    if let (Some(c), Some(p)) = (text_out, &prompt) {
        let _ = c;
        write!(out, "{p}")?;
    }
    let t0 = Instant::now();
    session.prefill_chunked(&prompt_ids, PREFILL_CHUNK, false, |_, _| {})?;
    check_logits(session.logits(), session.position() - 1)?;
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
        let position = session.position();
        let logits = session.step(next)?;
        check_logits(logits, position)?;
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
