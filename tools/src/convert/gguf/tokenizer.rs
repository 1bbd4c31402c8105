//! A Hugging Face `tokenizer.json` rebuilt from GGUF's `tokenizer.ggml.*`
//! keys, so a converted GGUF model tokenizes text as llama.cpp does.
//!
//! Byte-level BPE (`tokenizer.ggml.model` = `gpt2`) is rebuilt: the
//! vocabulary in id order, the merges in rank order, control and
//! user-defined tokens as added tokens, and the pre-tokenizer named by
//! `tokenizer.ggml.pre` as its split rules. Other tokenizer models and
//! pre-tokenizers not mapped here are reported, and the model converts
//! without a tokenizer.

use super::reader::{GgufHeader, MetaValue};
use serde_json::{json, Map, Value};

/// llama.cpp's token types (`tokenizer.ggml.token_type`).
const TOKEN_CONTROL: u64 = 3;
const TOKEN_USER_DEFINED: u64 = 4;

/// Why no tokenizer could be rebuilt (the weights still convert).
#[derive(Debug, PartialEq, Eq)]
pub struct NoTokenizer(pub String);

fn strings<'a>(h: &'a GgufHeader, key: &str) -> Result<Vec<&'a str>, NoTokenizer> {
    let bad = || NoTokenizer(format!("`{key}` is missing or not a list of strings"));
    let items = h.get(key).and_then(MetaValue::as_array).ok_or_else(bad)?;
    items.iter().map(|v| v.as_str().ok_or_else(bad)).collect()
}

/// The pre-tokenizer that `tokenizer.ggml.pre` names, as `tokenizer.json`
/// writes it.
fn pre_tokenizer(pre: &str) -> Option<Value> {
    match pre {
        // GPT-2's own split regex, which the byte-level pre-tokenizer applies
        // with `use_regex`.
        "gpt-2" | "default" => Some(
            json!({"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true, "use_regex": true}),
        ),
        _ => None,
    }
}

/// Pre-tokenizer names [`rebuild`] maps, for README and messages.
pub const MAPPED_PRE: &str = "gpt-2";

/// Rebuild `tokenizer.json` from the header's tokenizer keys.
pub fn rebuild(h: &GgufHeader) -> Result<Vec<u8>, NoTokenizer> {
    let model = h.get("tokenizer.ggml.model").and_then(MetaValue::as_str);
    if model != Some("gpt2") {
        return Err(NoTokenizer(format!(
            "`tokenizer.ggml.model` is {model:?}; only byte-level BPE (`gpt2`) is rebuilt"
        )));
    }
    let pre_name = h.get("tokenizer.ggml.pre").and_then(MetaValue::as_str).unwrap_or("default");
    let pre = pre_tokenizer(pre_name).ok_or_else(|| {
        NoTokenizer(format!(
            "pre-tokenizer `tokenizer.ggml.pre` = {pre_name:?} is not mapped (mapped: {MAPPED_PRE})"
        ))
    })?;
    let tokens = strings(h, "tokenizer.ggml.tokens")?;
    let merges = strings(h, "tokenizer.ggml.merges")?;
    let types: Vec<u64> = match h.get("tokenizer.ggml.token_type").and_then(MetaValue::as_array) {
        Some(a) => a.iter().map(|v| v.as_u64().unwrap_or(1)).collect(),
        None => vec![1; tokens.len()],
    };
    if types.len() != tokens.len() {
        return Err(NoTokenizer(format!(
            "`tokenizer.ggml.token_type` has {} entries for {} tokens",
            types.len(),
            tokens.len()
        )));
    }
    let mut vocab = Map::new();
    let mut added = Vec::new();
    for (id, (&token, &ty)) in tokens.iter().zip(&types).enumerate() {
        if vocab.insert(token.to_string(), json!(id)).is_some() {
            return Err(NoTokenizer(format!("token {token:?} appears twice in `tokenizer.ggml.tokens`")));
        }
        if ty == TOKEN_CONTROL || ty == TOKEN_USER_DEFINED {
            added.push(json!({
                "id": id, "content": token, "single_word": false, "lstrip": false, "rstrip": false,
                "normalized": ty == TOKEN_USER_DEFINED, "special": ty == TOKEN_CONTROL,
            }));
        }
    }
    let mut pairs = Vec::with_capacity(merges.len());
    for m in merges {
        let (a, b) =
            m.split_once(' ').ok_or_else(|| NoTokenizer(format!("merge {m:?} is not two tokens")))?;
        pairs.push(json!([a, b]));
    }
    let tokenizer = json!({
        "version": "1.0",
        "truncation": null,
        "padding": null,
        "added_tokens": added,
        "normalizer": null,
        "pre_tokenizer": pre,
        "post_processor": null,
        "decoder": {"type": "ByteLevel", "add_prefix_space": true, "trim_offsets": true, "use_regex": true},
        "model": {
            "type": "BPE", "dropout": null, "unk_token": null, "continuing_subword_prefix": null,
            "end_of_word_suffix": null, "fuse_unk": false, "byte_fallback": false, "ignore_merges": false,
            "vocab": vocab, "merges": pairs,
        },
    });
    serde_json::to_vec(&tokenizer).map_err(|e| NoTokenizer(format!("cannot write tokenizer.json: {e}")))
}
