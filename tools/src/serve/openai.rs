//! The OpenAI request and response shapes `eddy serve` speaks, and the
//! checks that turn a request into generation settings.

use crate::sample::SamplerConfig;
use serde::Deserialize;
use serde_json::{json, Value};

/// A request the server refuses: HTTP status, OpenAI error type, message.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct ApiError {
    /// HTTP status code.
    pub status: u16,
    /// OpenAI error `type` (`invalid_request_error`, ...).
    pub kind: &'static str,
    /// What was wrong, for the user.
    pub message: String,
}

impl ApiError {
    /// A 400 `invalid_request_error`.
    pub fn invalid(message: impl Into<String>) -> Self {
        ApiError { status: 400, kind: "invalid_request_error", message: message.into() }
    }

    /// Any other status.
    pub fn new(status: u16, kind: &'static str, message: impl Into<String>) -> Self {
        ApiError { status, kind, message: message.into() }
    }

    /// The JSON body: `{"error": {"message", "type", "code"}}`.
    pub fn body(&self) -> String {
        json!({"error": {"message": self.message, "type": self.kind, "code": self.status}}).to_string()
    }
}

/// `prompt` of a completion: text or token ids.
#[derive(Deserialize)]
#[serde(untagged)]
pub enum Prompt {
    /// Text, tokenized by the model's tokenizer.
    Text(String),
    /// Token ids, read as given.
    Tokens(Vec<u32>),
}

/// `stop`: one string or several.
#[derive(Deserialize)]
#[serde(untagged)]
pub enum Stop {
    /// One stop string.
    One(String),
    /// Up to four stop strings.
    Many(Vec<String>),
}

/// `stream_options`.
#[derive(Deserialize, Default)]
pub struct StreamOptions {
    /// Send a last chunk with token counts before `[DONE]`.
    #[serde(default)]
    pub include_usage: bool,
}

/// Settings common to both endpoints.
#[derive(Deserialize)]
pub struct Sampling {
    /// Most tokens to generate.
    pub max_tokens: Option<u64>,
    /// The chat endpoint's newer name for `max_tokens`.
    pub max_completion_tokens: Option<u64>,
    /// Softmax temperature; 0 is greedy.
    pub temperature: Option<f32>,
    /// Nucleus sampling threshold.
    pub top_p: Option<f32>,
    /// Strings that end the generation (not included in the text).
    pub stop: Option<Stop>,
    /// Random seed of the sampler.
    pub seed: Option<u64>,
    /// Answer as server-sent events.
    #[serde(default)]
    pub stream: bool,
    /// Options of the stream.
    pub stream_options: Option<StreamOptions>,
    /// Number of choices; only 1 is supported.
    pub n: Option<u32>,
    /// Keep generating past end-of-sequence tokens (llama-server's and
    /// vLLM's extension; for benchmarks and tests).
    #[serde(default)]
    pub ignore_eos: bool,
}

/// Body of `POST /v1/completions`.
#[derive(Deserialize)]
pub struct CompletionRequest {
    /// The prompt.
    pub prompt: Prompt,
    /// Sampling and stream settings.
    #[serde(flatten)]
    pub sampling: Sampling,
}

/// One chat message.
#[derive(Deserialize, Clone, Debug)]
pub struct ChatMessage {
    /// `system`, `user`, `assistant`, ...
    pub role: String,
    /// The text.
    pub content: String,
}

/// Body of `POST /v1/chat/completions`.
#[derive(Deserialize)]
pub struct ChatRequest {
    /// The conversation so far.
    pub messages: Vec<ChatMessage>,
    /// Sampling and stream settings.
    #[serde(flatten)]
    pub sampling: Sampling,
}

/// Server-wide limits on what a request may ask for.
#[derive(Clone, Copy, Debug)]
pub struct RequestLimits {
    /// `max_tokens` when a request gives none.
    pub default_max_tokens: u64,
    /// Largest `max_tokens` accepted.
    pub max_tokens: u64,
    /// Longest prompt accepted, in tokens.
    pub max_prompt_tokens: usize,
}

/// What a valid request asks the generator for.
#[derive(Clone, Debug)]
pub struct GenerationSettings {
    /// Most tokens to generate.
    pub max_tokens: usize,
    /// Sampler settings.
    pub sampler: SamplerConfig,
    /// Stop strings.
    pub stop: Vec<String>,
    /// Whether end-of-sequence tokens are generated like any other.
    pub ignore_eos: bool,
}

/// Parse a JSON body into `T`, with serde's message (path, expected
/// type) as the 400 error.
pub fn parse_body<'a, T: Deserialize<'a>>(body: &'a [u8]) -> Result<T, ApiError> {
    serde_json::from_slice(body).map_err(|e| ApiError::invalid(format!("invalid request body: {e}")))
}

impl Sampling {
    /// Check the settings against the limits.
    pub fn settings(&self, limits: &RequestLimits) -> Result<GenerationSettings, ApiError> {
        if self.n.is_some_and(|n| n != 1) {
            return Err(ApiError::invalid("`n`: only one choice per request is supported"));
        }
        let max_tokens = self.max_completion_tokens.or(self.max_tokens).unwrap_or(limits.default_max_tokens);
        if max_tokens == 0 || max_tokens > limits.max_tokens {
            return Err(ApiError::invalid(format!(
                "`max_tokens` must be between 1 and {} (this server's --max-tokens-limit), got {max_tokens}",
                limits.max_tokens
            )));
        }
        let temperature = self.temperature.unwrap_or(1.0);
        if !(0.0..=2.0).contains(&temperature) {
            return Err(ApiError::invalid(format!(
                "`temperature` must be between 0 and 2, got {temperature}"
            )));
        }
        let top_p = self.top_p.unwrap_or(1.0);
        if !(top_p > 0.0 && top_p <= 1.0) {
            return Err(ApiError::invalid(format!("`top_p` must be above 0 and at most 1, got {top_p}")));
        }
        let stop = match &self.stop {
            None => Vec::new(),
            Some(Stop::One(s)) => vec![s.clone()],
            Some(Stop::Many(v)) => v.clone(),
        };
        if stop.len() > 4 || stop.iter().any(String::is_empty) {
            return Err(ApiError::invalid("`stop`: at most 4 strings, none empty"));
        }
        // The sampler's default seed when none is given: runs repeat.
        let seed = self.seed.unwrap_or(0);
        Ok(GenerationSettings {
            max_tokens: max_tokens as usize,
            sampler: SamplerConfig { temperature, top_k: 0, top_p, seed },
            stop,
            ignore_eos: self.ignore_eos,
        })
    }

    /// Whether a streamed answer ends with a usage chunk.
    pub fn include_usage(&self) -> bool {
        self.stream_options.as_ref().is_some_and(|o| o.include_usage)
    }
}

/// Token counts of one generation.
#[derive(Clone, Copy, Debug, Default)]
pub struct Usage {
    /// Prompt tokens.
    pub prompt_tokens: usize,
    /// Prompt tokens resumed from a saved state (not read again).
    pub cached_tokens: usize,
    /// Generated tokens.
    pub completion_tokens: usize,
}

impl Usage {
    /// The OpenAI `usage` object.
    pub fn json(&self) -> Value {
        json!({
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "total_tokens": self.prompt_tokens + self.completion_tokens,
            "prompt_tokens_details": {"cached_tokens": self.cached_tokens},
        })
    }
}

/// Which endpoint a response belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Endpoint {
    /// `/v1/completions`.
    Completion,
    /// `/v1/chat/completions`.
    Chat,
}

/// Fields every response object of one request shares.
pub struct ResponseHead<'a> {
    /// `cmpl-...` or `chatcmpl-...`.
    pub id: &'a str,
    /// Unix seconds.
    pub created: u64,
    /// The served model's name.
    pub model: &'a str,
    /// The endpoint.
    pub endpoint: Endpoint,
}

impl ResponseHead<'_> {
    fn object(&self, choices: Value, object: &str) -> Value {
        json!({"id": self.id, "object": object, "created": self.created, "model": self.model, "choices": choices})
    }

    /// The whole answer of a non-streamed request.
    pub fn full(&self, text: &str, finish_reason: &str, usage: &Usage) -> Value {
        let mut v = match self.endpoint {
            Endpoint::Completion => self.object(
                json!([{"index": 0, "text": text, "logprobs": null, "finish_reason": finish_reason}]),
                "text_completion",
            ),
            Endpoint::Chat => self.object(
                json!([{"index": 0, "message": {"role": "assistant", "content": text},
                        "logprobs": null, "finish_reason": finish_reason}]),
                "chat.completion",
            ),
        };
        v["usage"] = usage.json();
        v
    }

    /// One streamed chunk: new text, or (with `finish_reason`) the end.
    pub fn chunk(&self, text: &str, finish_reason: Option<&str>, first: bool) -> Value {
        match self.endpoint {
            Endpoint::Completion => self.object(
                json!([{"index": 0, "text": text, "logprobs": null, "finish_reason": finish_reason}]),
                "text_completion",
            ),
            Endpoint::Chat => {
                let mut delta = json!({});
                if first {
                    delta["role"] = json!("assistant");
                }
                if !text.is_empty() || first {
                    delta["content"] = json!(text);
                }
                self.object(
                    json!([{"index": 0, "delta": delta, "logprobs": null, "finish_reason": finish_reason}]),
                    "chat.completion.chunk",
                )
            }
        }
    }

    /// The usage chunk sent last when `stream_options.include_usage`.
    pub fn usage_chunk(&self, usage: &Usage) -> Value {
        let object = match self.endpoint {
            Endpoint::Completion => "text_completion",
            Endpoint::Chat => "chat.completion.chunk",
        };
        let mut v = self.object(json!([]), object);
        v["usage"] = usage.json();
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMITS: RequestLimits =
        RequestLimits { default_max_tokens: 16, max_tokens: 100, max_prompt_tokens: 50 };

    fn settings(body: &str) -> Result<GenerationSettings, ApiError> {
        parse_body::<CompletionRequest>(body.as_bytes())?.sampling.settings(&LIMITS)
    }

    #[test]
    fn defaults_and_limits() {
        let s = settings(r#"{"prompt": "hi"}"#).unwrap();
        assert_eq!((s.max_tokens, s.sampler.temperature, s.sampler.top_p), (16, 1.0, 1.0));
        let s = settings(r#"{"prompt": [1, 2], "max_tokens": 100, "stop": "x", "temperature": 0}"#).unwrap();
        assert_eq!((s.max_tokens, s.stop.len(), s.sampler.temperature), (100, 1, 0.0));
        for bad in [
            r#"{"prompt": "hi", "max_tokens": 101}"#,
            r#"{"prompt": "hi", "max_tokens": 0}"#,
            r#"{"prompt": "hi", "temperature": 2.5}"#,
            r#"{"prompt": "hi", "top_p": 0}"#,
            r#"{"prompt": "hi", "stop": ["a", "b", "c", "d", "e"]}"#,
            r#"{"prompt": "hi", "n": 2}"#,
        ] {
            let e = settings(bad).err().unwrap_or_else(|| panic!("accepted {bad}"));
            assert_eq!(e.status, 400, "{bad}");
        }
    }

    #[test]
    fn wrong_types_name_the_field() {
        let e = settings(r#"{"prompt": "hi", "max_tokens": "many"}"#).err().unwrap();
        assert!(e.message.contains("invalid"), "{}", e.message);
        assert!(settings(r#"{"prompt": 5}"#).is_err());
        assert!(settings("{not json").is_err());
    }
}
