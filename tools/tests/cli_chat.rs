//! `eddy chat` over a piped stdin: the state carried across turns gives
//! exactly what the whole conversation gives as one prompt.

use eddy::file::AlignedBytes;
use eddy::Model;
use eddy_cli::chat_template::{ChatMessage, ChatTemplate};
use eddy_cli::text::TextCodec;
use std::path::PathBuf;

mod common;

use common::{ok, tmp};

fn eddy(args: &[&str], stdin: &str) -> std::process::Output {
    common::eddy_with_stdin(args, stdin)
}

fn converted(name: &str) -> PathBuf {
    common::convert_fixture("mamba-tiny-tied", name).0
}

/// Ids as `--tokens` takes them.
fn list(ids: &[u32]) -> String {
    ids.iter().map(u32::to_string).collect::<Vec<_>>().join(",")
}

const N: &str = "6";

#[test]
fn two_chat_turns_equal_the_conversation_as_one_prompt() {
    let m = converted("two-turns");
    let ms = m.to_str().unwrap();
    let o = eddy(&["chat", ms, "-n", N, "--ignore-eos"], "Hi there\nAnd then?\n");
    assert!(!String::from_utf8_lossy(&o.stderr).contains("reading the conversation again"));
    let chat = ok(o);
    // The same conversation, tokenized as the chat feeds it: the first
    // rendering, the reply's ids, then the text the second turn adds.
    let bytes = AlignedBytes::copy_from(&std::fs::read(&m).unwrap());
    let model = Model::from_bytes(bytes.as_slice()).unwrap();
    let codec = TextCodec::from_json(model.tokenizer_json().unwrap()).unwrap();
    let template = ChatTemplate::from_model(&model).unwrap();
    let first = vec![ChatMessage::new("user", "Hi there")];
    let first_text = template.render(&first, true).unwrap();
    let mut prompt = codec.encode(&first_text).unwrap();
    let reply1 = ok(eddy(&["run", ms, "--tokens", &list(&prompt), "-n", N, "--ids", "--ignore-eos"], ""));
    let reply1_ids: Vec<u32> = reply1.trim().split(',').map(|t| t.parse().unwrap()).collect();
    let reply1_text = codec.decode(&reply1_ids).unwrap();
    let mut all = first.clone();
    all.push(ChatMessage::new("assistant", &reply1_text));
    all.push(ChatMessage::new("user", "And then?"));
    let second_text = template.render(&all, true).unwrap();
    let added =
        second_text.strip_prefix(&format!("{first_text}{reply1_text}")).expect("history re-renders alike");
    prompt.extend(&reply1_ids);
    prompt.extend(codec.encode(added).unwrap());
    let reply2 = ok(eddy(&["run", ms, "--tokens", &list(&prompt), "-n", N, "--ignore-eos"], ""));
    let one_turn = ok(eddy(
        &["run", ms, "--tokens", &list(&codec.encode(&first_text).unwrap()), "-n", N, "--ignore-eos"],
        "",
    ));
    assert_eq!(chat, format!("{one_turn}{reply2}"));
}

#[test]
fn save_load_and_reset_continue_or_restart_the_conversation() {
    let m = converted("save-load");
    let ms = m.to_str().unwrap();
    let state = tmp("chat.state");
    let state = state.to_str().unwrap();
    let three = ok(eddy(&["chat", ms, "-n", N, "--ignore-eos"], "one\ntwo\nthree\n"));
    let lines: Vec<&str> = three.split_inclusive('\n').collect();
    // Saved after two turns and loaded in a new process, the third reply is the same.
    let saved = ok(eddy(&["chat", ms, "-n", N, "--ignore-eos"], &format!("one\ntwo\n/save {state}\n")));
    assert_eq!(saved, lines[..2].concat());
    let loaded = ok(eddy(&["chat", ms, "-n", N, "--ignore-eos"], &format!("/load {state}\nthree\n")));
    assert_eq!(loaded, lines[2..].concat());
    // After /reset the conversation starts over.
    let reset = ok(eddy(&["chat", ms, "-n", N, "--ignore-eos"], "one\n/reset\none\n"));
    assert_eq!(reset, format!("{}{}", lines[0], lines[0]));
    // A bad command or file is an error line, and the chat goes on.
    let o = eddy(&["chat", ms, "-n", N, "--ignore-eos"], "/load /nonexistent/state\n/frobnicate\none\n");
    let err = String::from_utf8_lossy(&o.stderr).into_owned();
    assert!(err.contains("error: cannot read state file /nonexistent/state"), "{err}");
    assert!(err.contains("error: unknown command `/frobnicate`"), "{err}");
    assert_eq!(ok(o), lines[0]);
}
