//! HTTP: routing, the key check, body limits, JSON errors, and answers as
//! one JSON object or as server-sent events.

use super::engine::{Event, Job, Queue};
use super::metrics::Metrics;
use super::openai::{
    parse_body, ApiError, ChatRequest, CompletionRequest, Endpoint, Prompt, RequestLimits, ResponseHead,
    Sampling,
};
use super::state_cache::StateCache;
use super::ChatPrompter;
use crate::text::TextCodec;
use serde_json::{json, Value};
use std::io::{Read, Write};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver};
use std::sync::Arc;
use subtle::ConstantTimeEq;
use tiny_http::{Header, Method, Request, Response};

/// What the HTTP threads share.
pub struct Routes<'s> {
    /// Where generation jobs go.
    pub queue: Queue,
    /// Tokenizer of the model.
    pub codec: &'s TextCodec,
    /// Chat messages to prompt text.
    pub chat: &'s ChatPrompter,
    /// Counters.
    pub metrics: &'s Metrics,
    /// Saved states (for `/metrics`).
    pub cache: &'s StateCache,
    /// Limits on requests.
    pub limits: RequestLimits,
    /// Bearer key every route but `/health` needs, if set.
    pub api_key: Option<String>,
    /// The model's name in responses and `/v1/models`.
    pub model_name: String,
    /// Vocabulary size (token-id prompts are checked against it).
    pub vocab: usize,
    /// Bytes of one conversation state.
    pub state_bytes: usize,
    /// Sessions generating at once.
    pub sessions: usize,
    /// Largest request body accepted, in bytes.
    pub body_limit: usize,
}

/// A unique-enough response id: process start time and a counter.
fn response_id(prefix: &str) -> String {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    format!("{prefix}-{:x}{n:06x}", std::process::id())
}

fn unix_seconds() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

fn header(name: &str, value: &str) -> Option<Header> {
    Header::from_bytes(name.as_bytes(), value.as_bytes()).ok()
}

impl Routes<'_> {
    /// Answer one request (errors go to the client as JSON).
    pub fn handle(&self, mut req: Request) {
        Metrics::bump(&self.metrics.requests);
        let path = req.url().split('?').next().unwrap_or("").to_string();
        let method = req.method().clone();
        if path == "/health" && method == Method::Get {
            return self.reply(req, 200, "application/json", json!({"status": "ok"}).to_string());
        }
        if let Err(e) = self.authorize(&req) {
            return self.fail(req, &e);
        }
        let outcome = match (method, path.as_str()) {
            (Method::Get, "/metrics") => {
                let text = self.metrics.render(self.cache.stats(), self.state_bytes, self.sessions);
                return self.reply(req, 200, "text/plain; version=0.0.4", text);
            }
            (Method::Get, "/v1/models") => {
                let body = json!({"object": "list", "data": [
                    {"id": self.model_name, "object": "model", "created": 0, "owned_by": "eddy"}]});
                return self.reply(req, 200, "application/json", body.to_string());
            }
            (Method::Post, "/v1/completions") => self.read_body(&mut req).and_then(|b| self.completion(&b)),
            (Method::Post, "/v1/chat/completions") => self.read_body(&mut req).and_then(|b| self.chat(&b)),
            (_, "/metrics" | "/v1/models" | "/v1/completions" | "/v1/chat/completions" | "/health") => {
                Err(ApiError::new(405, "invalid_request_error", format!("method not allowed on {path}")))
            }
            _ => Err(ApiError::new(404, "not_found", format!("no route {path}"))),
        };
        match outcome {
            Ok(generation) => self.answer(req, generation),
            Err(e) => self.fail(req, &e),
        }
    }

    /// Check `Authorization: Bearer KEY` in constant time.
    fn authorize(&self, req: &Request) -> Result<(), ApiError> {
        let Some(key) = &self.api_key else { return Ok(()) };
        let given = req
            .headers()
            .iter()
            .find(|h| h.field.equiv("Authorization"))
            .and_then(|h| h.value.as_str().strip_prefix("Bearer "))
            .unwrap_or("");
        if bool::from(given.as_bytes().ct_eq(key.as_bytes())) {
            Ok(())
        } else {
            Err(ApiError::new(401, "invalid_api_key", "missing or wrong API key (Authorization: Bearer KEY)"))
        }
    }

    fn read_body(&self, req: &mut Request) -> Result<Vec<u8>, ApiError> {
        let too_large = || {
            ApiError::new(
                413,
                "invalid_request_error",
                format!("request body over {} bytes", self.body_limit),
            )
        };
        if req.body_length().is_some_and(|n| n > self.body_limit) {
            return Err(too_large());
        }
        let mut body = Vec::new();
        req.as_reader()
            .take(self.body_limit as u64 + 1)
            .read_to_end(&mut body)
            .map_err(|e| ApiError::invalid(format!("cannot read the request body: {e}")))?;
        if body.len() > self.body_limit {
            return Err(too_large());
        }
        Ok(body)
    }

    fn completion(&self, body: &[u8]) -> Result<Generation, ApiError> {
        let request: CompletionRequest = parse_body(body)?;
        let prompt = match request.prompt {
            Prompt::Text(text) => self.encode(&text)?,
            Prompt::Tokens(ids) => {
                if let Some(bad) = ids.iter().find(|&&t| t as usize >= self.vocab) {
                    return Err(ApiError::invalid(format!(
                        "token id {bad} is out of range (vocabulary size {})",
                        self.vocab
                    )));
                }
                ids
            }
        };
        self.start(prompt, &request.sampling, Endpoint::Completion)
    }

    fn chat(&self, body: &[u8]) -> Result<Generation, ApiError> {
        let request: ChatRequest = parse_body(body)?;
        if request.messages.is_empty() {
            return Err(ApiError::invalid("`messages` is empty"));
        }
        let text = self.chat.prompt(&request.messages)?;
        let prompt = self.encode(&text)?;
        self.start(prompt, &request.sampling, Endpoint::Chat)
    }

    fn encode(&self, text: &str) -> Result<Vec<u32>, ApiError> {
        self.codec.encode(text).map_err(|e| ApiError::invalid(format!("cannot tokenize the prompt: {e:#}")))
    }

    /// Check the prompt and settings, then queue the job.
    fn start(
        &self,
        prompt: Vec<u32>,
        sampling: &Sampling,
        endpoint: Endpoint,
    ) -> Result<Generation, ApiError> {
        let settings = sampling.settings(&self.limits)?;
        if prompt.is_empty() {
            return Err(ApiError::invalid("the prompt is empty (zero tokens)"));
        }
        if prompt.len() > self.limits.max_prompt_tokens {
            return Err(ApiError::new(
                400,
                "context_length_exceeded",
                format!(
                    "the prompt has {} tokens; this server takes at most {} (--max-prompt-tokens)",
                    prompt.len(),
                    self.limits.max_prompt_tokens
                ),
            ));
        }
        let (events, rx) = mpsc::channel();
        let cancel = Arc::new(AtomicBool::new(false));
        self.queue.submit(Job { prompt, settings, events, cancel: cancel.clone() }, self.metrics)?;
        Ok(Generation {
            endpoint,
            stream: sampling.stream,
            include_usage: sampling.include_usage(),
            rx,
            cancel,
        })
    }

    fn answer(&self, req: Request, g: Generation) {
        let id = response_id(if g.endpoint == Endpoint::Chat { "chatcmpl" } else { "cmpl" });
        let head =
            ResponseHead { id: &id, created: unix_seconds(), model: &self.model_name, endpoint: g.endpoint };
        if g.stream {
            return stream(req, &head, &g);
        }
        let mut text = String::new();
        let end = loop {
            match g.rx.recv() {
                Ok(Event::Text(t)) => text += &t,
                Ok(Event::Done { finish_reason, usage }) => break Ok((finish_reason, usage)),
                Ok(Event::Failed(message)) => break Err(ApiError::new(500, "server_error", message)),
                Err(_) => {
                    break Err(ApiError::new(500, "server_error", "the generation ended without a result"))
                }
            }
        };
        match end {
            Ok((finish_reason, usage)) => {
                let body = head.full(&text, finish_reason, &usage).to_string();
                self.reply(req, 200, "application/json", body)
            }
            Err(e) => self.fail(req, &e),
        }
    }

    fn fail(&self, req: Request, e: &ApiError) {
        Metrics::bump(&self.metrics.requests_failed);
        self.reply(req, e.status, "application/json", e.body())
    }

    fn reply(&self, req: Request, status: u16, content_type: &str, body: String) {
        let mut response = Response::from_string(body).with_status_code(status);
        if let Some(h) = header("Content-Type", content_type) {
            response.add_header(h);
        }
        if status == 401 {
            if let Some(h) = header("WWW-Authenticate", "Bearer") {
                response.add_header(h);
            }
        }
        // The client may be gone; nothing to do about it.
        let _ = req.respond(response);
    }
}

/// A queued generation and how to answer it.
struct Generation {
    endpoint: Endpoint,
    stream: bool,
    include_usage: bool,
    rx: Receiver<Event>,
    cancel: Arc<AtomicBool>,
}

/// Send events as they come, as chunked server-sent events; a failed
/// write (the client went away) cancels the generation.
fn stream(req: Request, head: &ResponseHead<'_>, g: &Generation) {
    let mut out = req.into_writer();
    let sent = (|| -> std::io::Result<()> {
        out.write_all(
            b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-cache\r\n\
              Transfer-Encoding: chunked\r\n\r\n",
        )?;
        let mut first = true;
        loop {
            let event = g.rx.recv();
            match event {
                Ok(Event::Text(text)) => send_event(&mut out, &head.chunk(&text, None, first))?,
                Ok(Event::Done { finish_reason, usage }) => {
                    if first && head.endpoint == Endpoint::Chat {
                        send_event(&mut out, &head.chunk("", None, true))?;
                    }
                    send_event(&mut out, &head.chunk("", Some(finish_reason), false))?;
                    if g.include_usage {
                        send_event(&mut out, &head.usage_chunk(&usage))?;
                    }
                    break;
                }
                Ok(Event::Failed(message)) => {
                    send_event(&mut out, &json!({"error": {"message": message, "type": "server_error"}}))?;
                    break;
                }
                Err(_) => break,
            }
            first = false;
        }
        send_chunk(&mut out, b"data: [DONE]\n\n")?;
        out.write_all(b"0\r\n\r\n")?;
        out.flush()
    })();
    if sent.is_err() {
        g.cancel.store(true, Ordering::Relaxed);
    }
}

fn send_event(out: &mut dyn Write, event: &Value) -> std::io::Result<()> {
    send_chunk(out, format!("data: {event}\n\n").as_bytes())
}

/// One HTTP/1.1 chunk, flushed so the client sees it now.
fn send_chunk(out: &mut dyn Write, data: &[u8]) -> std::io::Result<()> {
    write!(out, "{:x}\r\n", data.len())?;
    out.write_all(data)?;
    out.write_all(b"\r\n")?;
    out.flush()
}
