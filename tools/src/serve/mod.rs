//! `eddy serve`: an OpenAI-compatible HTTP server.
//!
//! Up to `--parallel` requests generate at once, each on its own session
//! (its own state) with matrix work on the model's worker pool; more wait
//! in a bounded queue (503 when full). Finished conversations' states are
//! kept by a hash of their tokens so that a chat turn extending an earlier
//! one reads only its new tokens.

pub mod engine;
pub mod http;
pub mod metrics;
pub mod openai;
pub mod state_cache;

use crate::chat_template::{self, ChatTemplate, ChatTemplateError};
use crate::text::TextCodec;
use eddy::Model;
use engine::{Engine, Queue};
use metrics::Metrics;
use openai::{ApiError, ChatMessage, RequestLimits};
use state_cache::{CacheLimits, StateCache};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// `eddy serve` options.
#[derive(clap::Args, Debug)]
pub struct ServeArgs {
    /// The .eddy file (with its embedded tokenizer).
    pub model: PathBuf,
    /// Address to bind; loopback unless told otherwise.
    #[arg(long, default_value = "127.0.0.1")]
    pub host: String,
    /// Port (0: any free port; the address is printed).
    #[arg(long, default_value_t = 8080)]
    pub port: u16,
    /// Requests that generate at once, each with its own state.
    #[arg(long, default_value_t = 2)]
    pub parallel: usize,
    /// Requests that may wait for a free session; more get 503.
    #[arg(long, default_value_t = 16)]
    pub queue: usize,
    /// Conversation states kept in memory for reuse (least recently used
    /// dropped first).
    #[arg(long, default_value_t = 64)]
    pub max_sessions: usize,
    /// Memory cap of the kept states, in MiB.
    #[arg(long, default_value_t = 256)]
    pub state_cache_mib: usize,
    /// Spill states evicted from memory to this directory instead of
    /// dropping them (files are removed at exit).
    #[arg(long)]
    pub state_dir: Option<PathBuf>,
    /// Disk cap of the spilled states, in MiB.
    #[arg(long, default_value_t = 1024)]
    pub state_dir_mib: usize,
    /// Require `Authorization: Bearer KEY` on every route but /health.
    #[arg(long)]
    pub api_key: Option<String>,
    /// Longest prompt accepted, in tokens.
    #[arg(long, default_value_t = 8192)]
    pub max_prompt_tokens: usize,
    /// `max_tokens` of requests that give none.
    #[arg(long, default_value_t = 256)]
    pub default_max_tokens: u64,
    /// Largest `max_tokens` a request may ask for.
    #[arg(long, default_value_t = 4096)]
    pub max_tokens_limit: u64,
    /// Largest request body, in KiB.
    #[arg(long, default_value_t = 1024)]
    pub body_limit_kib: usize,
}

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// The model has no tokenizer.
    #[error("{0} has no embedded tokenizer; `eddy serve` needs one (convert from a directory with tokenizer.json)")]
    NoTokenizer(PathBuf),
    /// The embedded tokenizer does not load.
    #[error("the embedded tokenizer does not load: {0:#}")]
    Tokenizer(anyhow::Error),
    /// A setting is out of range.
    #[error("{0}")]
    BadOption(String),
    /// The state directory cannot be made.
    #[error("cannot use --state-dir {path}: {source}")]
    StateDir {
        /// The directory.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// Binding the address failed.
    #[error("cannot listen on {addr}: {message}")]
    Bind {
        /// host:port.
        addr: String,
        /// The cause.
        message: String,
    },
    /// The stored chat template does not load.
    #[error(transparent)]
    ChatTemplate(#[from] ChatTemplateError),
    /// The signal handler could not be installed.
    #[error("cannot install the SIGINT/SIGTERM handler: {0}")]
    Signal(#[from] ctrlc::Error),
}

/// Chat messages to prompt text, with the model's chat template.
pub struct ChatPrompter {
    template: ChatTemplate,
}

impl ChatPrompter {
    /// The prompt text for a conversation, ending where the assistant's
    /// reply begins.
    pub fn prompt(&self, messages: &[ChatMessage]) -> Result<String, ApiError> {
        let messages: Vec<chat_template::ChatMessage> =
            messages.iter().map(|m| chat_template::ChatMessage::new(&m.role, &m.content)).collect();
        self.template.render(&messages, true).map_err(|e| ApiError::invalid(e.to_string()))
    }
}

/// Serve `model` (loaded from `args.model`) until SIGINT or SIGTERM;
/// running generations finish first (a second signal exits at once).
pub fn run(model: &Model<'_>, args: &ServeArgs) -> Result<(), ServeError> {
    if args.parallel == 0 {
        return Err(ServeError::BadOption("--parallel must be at least 1".into()));
    }
    if args.max_tokens_limit == 0 || args.default_max_tokens > args.max_tokens_limit {
        return Err(ServeError::BadOption(
            "--default-max-tokens must be between 1 and --max-tokens-limit".into(),
        ));
    }
    let json = model.tokenizer_json().ok_or_else(|| ServeError::NoTokenizer(args.model.clone()))?;
    let codec = TextCodec::from_json(json).map_err(ServeError::Tokenizer)?;
    if let Some(dir) = &args.state_dir {
        std::fs::create_dir_all(dir).map_err(|source| ServeError::StateDir { path: dir.clone(), source })?;
    }
    let cache = StateCache::new(CacheLimits {
        max_entries: args.max_sessions,
        max_bytes: args.state_cache_mib << 20,
        spill_dir: args.state_dir.clone(),
        max_spill_bytes: args.state_dir_mib << 20,
    });
    let metrics = Metrics::default();
    let chat = ChatPrompter { template: ChatTemplate::from_model(model)? };
    let addr = format!("{}:{}", args.host, args.port);
    let server =
        tiny_http::Server::http(&addr).map_err(|e| ServeError::Bind { addr, message: e.to_string() })?;

    let stopping = Arc::new(AtomicBool::new(false));
    {
        let stopping = stopping.clone();
        ctrlc::set_handler(move || {
            if stopping.swap(true, Ordering::SeqCst) {
                std::process::exit(130);
            }
            eprintln!("eddy serve: stopping (running generations finish; signal again to exit now)");
        })?;
    }

    let (queue, jobs) = Queue::new(args.parallel, args.queue);
    let engine =
        Engine { model, codec: &codec, cache: &cache, metrics: &metrics, eos: chat.template.eos_token_ids() };
    let routes = http::Routes {
        queue,
        codec: &codec,
        chat: &chat,
        metrics: &metrics,
        cache: &cache,
        limits: RequestLimits {
            default_max_tokens: args.default_max_tokens,
            max_tokens: args.max_tokens_limit,
            max_prompt_tokens: args.max_prompt_tokens,
        },
        api_key: args.api_key.clone(),
        model_name: model_name(&args.model),
        vocab: model.vocab_size(),
        state_bytes: model.state_bytes(),
        sessions: args.parallel,
        body_limit: args.body_limit_kib << 10,
    };
    // Every waiting or running request holds an HTTP thread; two more keep
    // /health, /metrics and the 503 answers responsive when all are busy.
    let http_threads = args.parallel + args.queue + 2;
    eprintln!(
        "eddy serve: {} ({}, state {} bytes per conversation, {} chat template), {} session(s), {} thread(s) each",
        args.model.display(),
        model.architecture().name(),
        model.state_bytes(),
        if chat.template.is_default() { "plain `role: content`" } else { "its own" },
        args.parallel,
        model.workers().count()
    );
    eprintln!("listening on http://{}", server.server_addr());
    std::thread::scope(|s| {
        let (routes, server, stopping) = (&routes, &server, &stopping);
        let http: Vec<_> = (0..http_threads)
            .map(|_| {
                s.spawn(move || {
                    while !stopping.load(Ordering::SeqCst) {
                        if let Ok(Some(req)) = server.recv_timeout(Duration::from_millis(100)) {
                            routes.handle(req);
                        }
                    }
                })
            })
            .collect();
        for _ in 0..args.parallel {
            s.spawn(|| engine.worker(&jobs));
        }
        for h in http {
            let _ = h.join();
        }
        // The HTTP threads are done: close the queue so the sessions stop.
        routes.queue.close();
    });
    eprintln!("eddy serve: stopped");
    Ok(())
}

/// The name `/v1/models` reports: the file name without `.eddy`.
fn model_name(path: &std::path::Path) -> String {
    path.file_stem().map_or_else(|| "model".to_string(), |s| s.to_string_lossy().into_owned())
}
