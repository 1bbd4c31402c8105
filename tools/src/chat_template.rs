//! Chat templates: the checkpoint's Jinja template, stored in the `.eddy`
//! file at conversion, rendered with minijinja.
//!
//! `eddy convert` reads `chat_template` (a string, or a list of named
//! templates), `bos_token` and `eos_token` from `tokenizer_config.json` (or
//! `chat_template.jinja`) and the end-of-sequence ids from `config.json` and
//! `generation_config.json`, and stores them as one JSON blob
//! ([`StoredChatTemplate`]). [`ChatTemplate::from_model`] reads it back; a
//! file without it (older files, checkpoints without a template) gets
//! [`DEFAULT_TEMPLATE`], a plain `role: content` transcript.

use crate::text::TextCodec;
use eddy::{arch::HParam, Model};
use minijinja::syntax::SyntaxConfig;
use minijinja::{Environment, ErrorKind};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::path::{Path, PathBuf};

/// The template used when a model has none: `role:` on a line, then the
/// message; `assistant:` and a new line when a reply is asked for (the reply
/// starts a line, so the text the model generated is exactly what the
/// next turn renders, and the state carries over).
pub const DEFAULT_TEMPLATE: &str = "{% for message in messages %}{{ message.role }}:{{ '\\n' }}\
{{ message.content }}{{ '\\n' }}{% endfor %}{% if add_generation_prompt %}assistant:{{ '\\n' }}{% endif %}";

/// Why a chat template could not be read, stored or rendered.
#[derive(Debug, thiserror::Error)]
pub enum ChatTemplateError {
    /// A checkpoint file could not be read.
    #[error("cannot read {path}: {error}")]
    Io {
        /// The path.
        path: PathBuf,
        /// The cause.
        error: std::io::Error,
    },
    /// A checkpoint file is not valid JSON.
    #[error("{path}: invalid JSON: {error}")]
    Json {
        /// The path.
        path: PathBuf,
        /// The cause.
        error: serde_json::Error,
    },
    /// A field has a type the converter does not understand.
    #[error("{file}: `{field}` is not {expected}")]
    Field {
        /// The file.
        file: &'static str,
        /// The field.
        field: &'static str,
        /// What was expected.
        expected: &'static str,
    },
    /// The model file's chat template blob is not valid.
    #[error("the model's stored chat template is invalid (re-convert the model): {0}")]
    Blob(serde_json::Error),
    /// The template does not parse.
    #[error("the chat template does not parse: {0:#}")]
    Syntax(minijinja::Error),
    /// Rendering failed (including the template's own `raise_exception`).
    #[error("the chat template failed on these messages: {0:#}")]
    Render(minijinja::Error),
}

/// One message of a conversation.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChatMessage {
    /// `system`, `user` or `assistant`.
    pub role: String,
    /// The text.
    pub content: String,
}

impl ChatMessage {
    /// A message from `role` saying `content`.
    pub fn new(role: &str, content: &str) -> Self {
        ChatMessage { role: role.to_string(), content: content.to_string() }
    }
}

/// What the `.eddy` file stores (blob kind `ChatTemplate`, JSON).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct StoredChatTemplate {
    /// The template as in `tokenizer_config.json`: a string, or a list of
    /// `{"name", "template"}` (the one named `default` is used); null if none.
    #[serde(default)]
    pub chat_template: Value,
    /// The text of the beginning-of-sequence token, if known.
    #[serde(default)]
    pub bos_token: Option<String>,
    /// The text of the end-of-sequence token, if known.
    #[serde(default)]
    pub eos_token: Option<String>,
    /// Every token id that ends a reply.
    #[serde(default)]
    pub eos_token_ids: Vec<u32>,
}

impl StoredChatTemplate {
    /// Read what a checkpoint directory says about chatting; `None` if it
    /// says nothing (no template, no special tokens, no extra EOS ids).
    pub fn from_checkpoint(dir: &Path, config: &Value) -> Result<Option<Self>, ChatTemplateError> {
        let tok_config = read_json(&dir.join("tokenizer_config.json"))?.unwrap_or(Value::Null);
        let generation = read_json(&dir.join("generation_config.json"))?.unwrap_or(Value::Null);
        let jinja_path = dir.join("chat_template.jinja");
        let mut chat_template = tok_config.get("chat_template").cloned().unwrap_or(Value::Null);
        if chat_template.is_null() && jinja_path.exists() {
            let text = std::fs::read_to_string(&jinja_path)
                .map_err(|error| ChatTemplateError::Io { path: jinja_path.clone(), error })?;
            chat_template = Value::String(text);
        }
        check_template_shape(&chat_template)?;
        let bos_token = special_token(&tok_config, "bos_token")?;
        let eos_token = special_token(&tok_config, "eos_token")?;
        let mut eos_token_ids = Vec::new();
        for (file, v) in [("config.json", config), ("generation_config.json", &generation)] {
            eos_token_ids.extend(token_ids(file, v.get("eos_token_id"))?);
        }
        if let (Some(eos), Ok(tok)) = (&eos_token, std::fs::read(dir.join("tokenizer.json"))) {
            if let Some(id) = TextCodec::from_json(&tok).ok().and_then(|c| c.token_id(eos)) {
                eos_token_ids.push(id);
            }
        }
        eos_token_ids.sort_unstable();
        eos_token_ids.dedup();
        let stored = StoredChatTemplate { chat_template, bos_token, eos_token, eos_token_ids };
        Ok((stored != StoredChatTemplate::default()).then_some(stored))
    }

    /// The JSON bytes stored in the file.
    pub fn to_bytes(&self) -> Vec<u8> {
        // Serializing plain strings, numbers and JSON values cannot fail.
        serde_json::to_vec(self).unwrap_or_default()
    }

    /// Parse the stored JSON bytes.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, ChatTemplateError> {
        serde_json::from_slice(bytes).map_err(ChatTemplateError::Blob)
    }

    /// The template text to use: the string, or the list entry named
    /// `default` (else the first); `None` if there is none.
    pub fn template_source(&self) -> Option<&str> {
        match &self.chat_template {
            Value::String(s) => Some(s),
            Value::Array(list) => {
                let named = |n: &str| list.iter().find(|t| t.get("name").and_then(Value::as_str) == Some(n));
                named("default").or(list.first())?.get("template")?.as_str()
            }
            _ => None,
        }
    }
}

/// A model's chat template, ready to render, and the ids that end a reply.
pub struct ChatTemplate {
    env: Environment<'static>,
    stored: StoredChatTemplate,
    is_default: bool,
}

impl std::fmt::Debug for ChatTemplate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChatTemplate").field("stored", &self.stored).finish_non_exhaustive()
    }
}

impl ChatTemplate {
    /// The template stored in `model`'s file, or [`DEFAULT_TEMPLATE`]; the
    /// EOS ids are the stored ones plus the header's `eos_token`.
    pub fn from_model(model: &Model<'_>) -> Result<Self, ChatTemplateError> {
        let mut stored = match model.chat_template_json() {
            Some(bytes) => StoredChatTemplate::from_bytes(bytes)?,
            None => StoredChatTemplate::default(),
        };
        if let Some(id) = model.file().hparam(HParam::EosToken).filter(|&id| id != u32::MAX) {
            if !stored.eos_token_ids.contains(&id) {
                stored.eos_token_ids.push(id);
            }
        }
        Self::new(stored)
    }

    /// Compile the template of `stored` (or the default if it has none).
    pub fn new(stored: StoredChatTemplate) -> Result<Self, ChatTemplateError> {
        let source = stored.template_source().map(str::to_string);
        let is_default = source.is_none();
        let mut env = Environment::new();
        // The settings Hugging Face renders chat templates with.
        let syntax = SyntaxConfig::builder().trim_blocks(true).lstrip_blocks(true).build();
        env.set_syntax(syntax.map_err(ChatTemplateError::Syntax)?);
        env.set_unknown_method_callback(minijinja_contrib::pycompat::unknown_method_callback);
        env.add_function("raise_exception", |msg: String| -> Result<String, minijinja::Error> {
            Err(minijinja::Error::new(ErrorKind::InvalidOperation, msg))
        });
        env.add_template_owned("chat", source.unwrap_or_else(|| DEFAULT_TEMPLATE.to_string()))
            .map_err(ChatTemplateError::Syntax)?;
        Ok(ChatTemplate { env, stored, is_default })
    }

    /// The conversation as the model expects it; with
    /// `add_generation_prompt` it ends where the assistant's reply begins.
    pub fn render(
        &self,
        messages: &[ChatMessage],
        add_generation_prompt: bool,
    ) -> Result<String, ChatTemplateError> {
        let template = self.env.get_template("chat").map_err(ChatTemplateError::Syntax)?;
        let ctx = minijinja::context! {
            messages => minijinja::Value::from(minijinja::value::Serde(messages)),
            add_generation_prompt => add_generation_prompt,
            bos_token => self.stored.bos_token.as_deref().unwrap_or(""),
            eos_token => self.stored.eos_token.as_deref().unwrap_or(""),
        };
        template.render(ctx).map_err(ChatTemplateError::Render)
    }

    /// Token ids that end a reply (may be empty).
    pub fn eos_token_ids(&self) -> &[u32] {
        &self.stored.eos_token_ids
    }

    /// Whether this is [`DEFAULT_TEMPLATE`] (the model stores none).
    pub fn is_default(&self) -> bool {
        self.is_default
    }
}

fn read_json(path: &Path) -> Result<Option<Value>, ChatTemplateError> {
    match std::fs::read_to_string(path) {
        Ok(text) => serde_json::from_str(&text)
            .map(Some)
            .map_err(|error| ChatTemplateError::Json { path: path.to_path_buf(), error }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(error) => Err(ChatTemplateError::Io { path: path.to_path_buf(), error }),
    }
}

fn check_template_shape(t: &Value) -> Result<(), ChatTemplateError> {
    let named = |e: &Value| e.get("template").is_some_and(Value::is_string);
    match t {
        Value::Null | Value::String(_) => Ok(()),
        Value::Array(list) if list.iter().all(named) => Ok(()),
        _ => Err(ChatTemplateError::Field {
            file: "tokenizer_config.json",
            field: "chat_template",
            expected: "a string or a list of {\"name\", \"template\"}",
        }),
    }
}

/// A special token's text: a string, or an object with `content`.
fn special_token(cfg: &Value, field: &'static str) -> Result<Option<String>, ChatTemplateError> {
    match cfg.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(v) => match v.get("content").and_then(Value::as_str) {
            Some(s) => Ok(Some(s.to_string())),
            None => Err(ChatTemplateError::Field {
                file: "tokenizer_config.json",
                field,
                expected: "a string or an object with `content`",
            }),
        },
    }
}

/// `eos_token_id`: absent, one id or a list of ids.
fn token_ids(file: &'static str, v: Option<&Value>) -> Result<Vec<u32>, ChatTemplateError> {
    let one = |v: &Value| {
        v.as_u64().and_then(|n| u32::try_from(n).ok()).ok_or(ChatTemplateError::Field {
            file,
            field: "eos_token_id",
            expected: "a token id or a list of ids",
        })
    };
    match v {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::Array(list)) => list.iter().map(one).collect(),
        Some(v) => one(v).map(|id| vec![id]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CHATML: &str =
        "{% for m in messages %}<|im_start|>{{ m.role }}\n{{ m.content }}<|im_end|>\n{% endfor %}\
{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}";

    fn stored(template: Value) -> StoredChatTemplate {
        StoredChatTemplate {
            chat_template: template,
            bos_token: Some("<s>".into()),
            eos_token: Some("</s>".into()),
            eos_token_ids: vec![2],
        }
    }

    fn conversation() -> Vec<ChatMessage> {
        vec![
            ChatMessage::new("user", "Hi"),
            ChatMessage::new("assistant", "Hello."),
            ChatMessage::new("user", "Why?"),
        ]
    }

    #[test]
    fn renders_a_string_template_with_and_without_the_generation_prompt() {
        let t = ChatTemplate::new(stored(Value::String(CHATML.into()))).unwrap();
        let text = t.render(&conversation(), true).unwrap();
        assert_eq!(
            text,
            "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\nHello.<|im_end|>\n\
             <|im_start|>user\nWhy?<|im_end|>\n<|im_start|>assistant\n"
        );
        let without = t.render(&conversation(), false).unwrap();
        assert_eq!(format!("{without}<|im_start|>assistant\n"), text);
        assert!(!t.is_default());
    }

    #[test]
    fn a_named_list_uses_the_default_entry_and_sees_the_special_tokens() {
        let list = serde_json::json!([
            {"name": "tool_use", "template": "tools"},
            {"name": "default", "template": "{{ bos_token }}{{ messages[0].content }}{{ eos_token }}"}
        ]);
        let t = ChatTemplate::new(stored(list)).unwrap();
        assert_eq!(t.render(&conversation(), false).unwrap(), "<s>Hi</s>");
    }

    #[test]
    fn python_string_methods_and_raise_exception_work_like_in_transformers() {
        let src =
            "{% if messages[0].role != 'system' %}{{ raise_exception('need a system message') }}{% endif %}\
                   {{ messages[0].content.strip().upper() }}";
        let t = ChatTemplate::new(stored(Value::String(src.into()))).unwrap();
        let err = t.render(&conversation(), false).unwrap_err().to_string();
        assert!(err.contains("need a system message"), "{err}");
        let ok = t.render(&[ChatMessage::new("system", "  be brief ")], false).unwrap();
        assert_eq!(ok, "BE BRIEF");
    }

    #[test]
    fn no_template_means_the_plain_default() {
        let t = ChatTemplate::new(StoredChatTemplate::default()).unwrap();
        assert!(t.is_default());
        assert_eq!(
            t.render(&conversation()[..2], true).unwrap(),
            "user:\nHi\nassistant:\nHello.\nassistant:\n"
        );
    }

    #[test]
    fn a_broken_template_is_a_syntax_error() {
        let e = ChatTemplate::new(stored(Value::String("{% for %}".into()))).unwrap_err();
        assert!(matches!(e, ChatTemplateError::Syntax(_)), "{e}");
    }

    #[test]
    fn stored_bytes_round_trip() {
        let s = stored(Value::String(CHATML.into()));
        assert_eq!(StoredChatTemplate::from_bytes(&s.to_bytes()).unwrap(), s);
        assert!(matches!(StoredChatTemplate::from_bytes(b"{"), Err(ChatTemplateError::Blob(_))));
    }

    #[test]
    fn reads_a_checkpoint_directory() {
        let dir = std::env::temp_dir().join(format!("eddy-chat-template-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let tok_config = serde_json::json!({
            "chat_template": CHATML,
            "bos_token": {"content": "<s>", "lstrip": false},
            "eos_token": "</s>",
        });
        std::fs::write(dir.join("tokenizer_config.json"), tok_config.to_string()).unwrap();
        std::fs::write(dir.join("generation_config.json"), r#"{"eos_token_id": [7, 3]}"#).unwrap();
        let config = serde_json::json!({"eos_token_id": 3});
        let s = StoredChatTemplate::from_checkpoint(&dir, &config).unwrap().unwrap();
        assert_eq!(s.template_source(), Some(CHATML));
        assert_eq!(s.bos_token.as_deref(), Some("<s>"));
        assert_eq!(s.eos_token.as_deref(), Some("</s>"));
        assert_eq!(s.eos_token_ids, vec![3, 7]);
        std::fs::write(dir.join("tokenizer_config.json"), r#"{"chat_template": 5}"#).unwrap();
        let e = StoredChatTemplate::from_checkpoint(&dir, &config).unwrap_err();
        assert!(e.to_string().contains("chat_template"), "{e}");
        std::fs::remove_dir_all(&dir).unwrap();
        let empty = std::env::temp_dir().join(format!("eddy-chat-template-empty-{}", std::process::id()));
        std::fs::create_dir_all(&empty).unwrap();
        assert_eq!(StoredChatTemplate::from_checkpoint(&empty, &Value::Null).unwrap(), None);
        std::fs::remove_dir_all(&empty).unwrap();
    }
}
