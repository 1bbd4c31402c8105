//! The chat template travels from a checkpoint's `tokenizer_config.json`
//! into the `.eddy` file and back out of it.

use eddy::file::AlignedBytes;
use eddy::Model;
use eddy_cli::chat_template::{ChatMessage, ChatTemplate};
use eddy_cli::convert::{convert_dir, WeightDtype};
use std::path::PathBuf;

mod common;

use common::fixture;

/// A copy of a fixture checkpoint with `extra` files added.
fn checkpoint_with(name: &str, extra: &[(&str, &str)]) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("eddy-chat-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    for e in std::fs::read_dir(fixture(name)).unwrap() {
        let e = e.unwrap();
        std::fs::copy(e.path(), dir.join(e.file_name())).unwrap();
    }
    for (file, text) in extra {
        std::fs::write(dir.join(file), text).unwrap();
    }
    dir
}

const TEMPLATE: &str = "{% for m in messages %}[{{ m.role }}]{{ m.content }}{{ eos_token }}{% endfor %}\
{% if add_generation_prompt %}[assistant]{% endif %}";

#[test]
fn convert_stores_the_template_and_eos_ids() {
    let cfg = serde_json::json!({"chat_template": TEMPLATE, "eos_token": "!", "bos_token": "\""});
    let dir = checkpoint_with("mamba-tiny-tied", &[("tokenizer_config.json", &cfg.to_string())]);
    let converted = convert_dir(&dir, WeightDtype::F32).unwrap();
    let bytes = AlignedBytes::copy_from(&converted.bytes);
    let model = Model::from_bytes(bytes.as_slice()).unwrap();
    let t = ChatTemplate::from_model(&model).unwrap();
    assert!(!t.is_default());
    let msgs = [ChatMessage::new("user", "hi")];
    assert_eq!(t.render(&msgs, true).unwrap(), "[user]hi![assistant]");
    // config.json's eos_token_id 0 is the tokenizer's "!".
    assert_eq!(t.eos_token_ids(), &[0]);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_file_without_a_template_gets_the_default_and_the_header_eos() {
    let converted = convert_dir(&fixture("mamba-tiny-tied"), WeightDtype::F32).unwrap();
    let bytes = AlignedBytes::copy_from(&converted.bytes);
    let model = Model::from_bytes(bytes.as_slice()).unwrap();
    assert!(model.chat_template_json().is_some(), "generation_config.json's eos id is stored");
    let t = ChatTemplate::from_model(&model).unwrap();
    assert!(t.is_default());
    assert_eq!(t.eos_token_ids(), &[0]);
    assert_eq!(t.render(&[ChatMessage::new("user", "hi")], true).unwrap(), "user:\nhi\nassistant:\n");
}

#[test]
fn convert_refuses_a_template_that_does_not_parse() {
    let cfg = serde_json::json!({"chat_template": "{% if %}"});
    let dir = checkpoint_with("mamba2-tiny", &[("tokenizer_config.json", &cfg.to_string())]);
    let e = convert_dir(&dir, WeightDtype::F32).unwrap_err().to_string();
    assert!(e.contains("chat template does not parse"), "{e}");
    std::fs::remove_dir_all(&dir).unwrap();
}
