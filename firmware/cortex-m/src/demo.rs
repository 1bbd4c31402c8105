//! The demo itself, board-independent: open the model in place, prefill
//! the prompt, generate greedily, log timing and the tokens. It sees the
//! board only through [`embedded_io::Write`] and [`Counter`].

use crate::build::{
    CORRUPT_AT, GENERATE, KERNELS, KV, MODEL_NAME, PROMPT, SCRATCH_BYTES, STATE_BITS, STATE_BYTES, VOCAB,
};
use crate::hal::Counter;
use crate::log::{message, say, shout};
use crate::stack;
use crate::status::Status;
use eddy::{KvCacheOptions, KvFormat, Model, ModelError, Session, SessionError, StateFormat};

/// Log an error with its code; returns the status.
fn fail<W: embedded_io::Write>(
    out: &mut W,
    status: Status,
    what: &str,
    why: &dyn core::fmt::Display,
) -> Status {
    let text = message(why);
    shout!(out, "error {}: {}: {}", status as u32, what, text.as_str());
    status
}

fn model_status(e: &ModelError) -> Status {
    match e {
        ModelError::File(_) => Status::BadModelFile,
        _ => Status::BadModel,
    }
}

fn session_status(e: &SessionError) -> Status {
    match e {
        SessionError::TokenOutOfRange { .. } | SessionError::EmptyPrompt => Status::BadPrompt,
        _ => Status::BadBuffers,
    }
}

/// Index of the largest logit, the first on ties (as the host's greedy
/// sampler does).
fn argmax(logits: &[f32]) -> u32 {
    let mut best = 0usize;
    for (i, &v) in logits.iter().enumerate() {
        if v > logits[best] {
            best = i;
        }
    }
    best as u32
}

/// Apply the state format and KV cache options the image was built with
/// (`EDDY_FW_STATE_BITS`, `EDDY_FW_KV`; build.rs sized the buffers with
/// the same options on the host, so the sizes agree).
fn apply_options(model: &mut Model<'_>) -> Result<(), ModelError> {
    // build.rs wrote a valid width; an unknown one keeps f32, and the
    // session then reports the buffer sizes as wrong.
    model.set_state_format(StateFormat::from_bits(STATE_BITS).unwrap_or(StateFormat::F32))?;
    if let Some((code, sinks, window)) = KV {
        let format = KvFormat::from_code(code).unwrap_or(KvFormat::Q4);
        *model = model.with_kv_cache(KvCacheOptions { format, sinks, window })?;
    }
    Ok(())
}

/// Run the demo on `bytes` (the model, in place) with the session memory
/// `state` and `scratch`; returns the status to exit with.
pub fn run<W: embedded_io::Write, C: Counter>(
    out: &mut W,
    counter: &mut C,
    bytes: &[u8],
    state: &mut [u8],
    scratch: &mut [u8],
) -> Status {
    say!(
        out,
        "eddy firmware: model {} ({} bytes at {:#x}, in place)",
        MODEL_NAME,
        bytes.len(),
        bytes.as_ptr() as usize
    );
    if let Some(at) = CORRUPT_AT {
        say!(out, "note: byte {} of the embedded model was flipped on purpose (EDDY_FW_CORRUPT_AT)", at);
    }
    let t0 = counter.count();
    let mut model = match Model::from_bytes(bytes) {
        Ok(m) => m,
        Err(e) => return fail(out, model_status(&e), "model rejected", &e),
    };
    let t_load = counter.count() - t0;
    if let Err(e) = apply_options(&mut model) {
        return fail(out, model_status(&e), "model options", &e);
    }
    if let Some(name) = KERNELS {
        match eddy_kernels::by_name(name) {
            Some(k) => model.set_kernels(k),
            None => {
                let why = format_args!("kernel set `{name}` is not compiled in for this target");
                return fail(out, Status::NoSuchKernels, "EDDY_FW_KERNELS", &why);
            }
        }
    }
    say!(
        out,
        "model: {}, vocab {}, kernels {}, state {} bytes, scratch {} bytes (static)",
        model.architecture().name(),
        VOCAB,
        model.kernels().name,
        STATE_BYTES,
        SCRATCH_BYTES
    );
    say!(out, "options: state {}-bit", STATE_BITS);
    if let Some(kv) = model.kv_cache() {
        say!(out, "options: kv {}, sinks {}, window {}", kv.format.name(), kv.sinks, kv.window);
    }
    let mut session = match Session::new(&model, state, scratch) {
        Ok(s) => s,
        Err(e) => return fail(out, session_status(&e), "session", &e),
    };
    say!(out, "load + checksum: {} {}", t_load, C::UNIT);

    let t0 = counter.count();
    let mut next = match session.prefill(PROMPT) {
        Ok(logits) => argmax(logits),
        Err(e) => return fail(out, session_status(&e), "prompt", &e),
    };
    let t_prefill = counter.count() - t0;
    let per_token = t_prefill / PROMPT.len() as u64;
    say!(out, "prefill: {} tokens, {} {} ({} per token)", PROMPT.len(), t_prefill, C::UNIT, per_token);

    let mut generated: heapless::Vec<u32, GENERATE> = heapless::Vec::new();
    let t0 = counter.count();
    for _ in 0..GENERATE {
        // Capacity is GENERATE, so the push cannot fail.
        let _ = generated.push(next);
        if generated.is_full() {
            break;
        }
        next = match session.step(next) {
            Ok(logits) => argmax(logits),
            Err(e) => return fail(out, session_status(&e), "step", &e),
        };
    }
    let t_decode = counter.count() - t0;
    let steps = generated.len() - 1;
    let per_step = t_decode / steps.max(1) as u64;
    say!(
        out,
        "decode: {} tokens, {} {} ({} per token, {} steps)",
        generated.len(),
        t_decode,
        C::UNIT,
        per_step,
        steps
    );

    let stack = stack::high_water();
    say!(out, "stack: {} bytes used (high-water mark) of {} painted", stack.used, stack.painted);
    log_tokens(out, &generated);
    Status::Ok
}

/// The last line of the log: the generated ids. As text they are
/// comma-separated (like `eddy run --ids`); through defmt they go as one
/// `[?]` (slice) argument, which `defmt-print` shows as `[a, b, ...]`.
fn log_tokens<W: embedded_io::Write>(out: &mut W, tokens: &[u32]) {
    #[cfg(feature = "defmt")]
    {
        let _ = &out;
        defmt::info!("tokens: {=[?]}", tokens);
    }
    #[cfg(not(feature = "defmt"))]
    {
        let mut first = true;
        for t in tokens {
            let _ = write!(out, "{}{}", if first { "" } else { "," }, t);
            first = false;
        }
        let _ = out.write_all(b"\n");
    }
}
