//! `eddy serve` end to end: the real binary on an ephemeral loopback port,
//! talked to over HTTP with a real client.

use serde_json::{json, Value};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

fn tmp_dir() -> PathBuf {
    let dir = std::env::temp_dir().join(format!("eddy-serve-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Convert a checkpoint directory into the test's temporary directory.
fn convert(src: &Path, name: &str) -> PathBuf {
    let out = tmp_dir().join(name);
    let o = Command::new(env!("CARGO_BIN_EXE_eddy"))
        .args(["convert", src.to_str().unwrap(), "-o", out.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    out
}

fn repo(dir: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join(dir)
}

/// The tiny random Mamba fixture (fast; its text is noise).
fn model() -> PathBuf {
    static MODEL: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    MODEL.get_or_init(|| convert(&repo("tests/fixtures/mamba-tiny-tied"), "mamba-tiny.eddy")).clone()
}

/// The trained 2M-parameter Mamba the repository ships (writes text).
fn fortunes() -> PathBuf {
    static MODEL: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    MODEL.get_or_init(|| convert(&repo("models/mamba-fortunes"), "mamba-fortunes.eddy")).clone()
}

/// A chat template of the shape real ones have, refusing a conversation
/// that does not start with the user.
const CHAT_TEMPLATE: &str = "{% if messages[0].role != 'user' %}{{ raise_exception('the first message must be from the user') }}{% endif %}\
{% for m in messages %}<{{ m.role }}> {{ m.content }}\n{% endfor %}{% if add_generation_prompt %}<assistant>{% endif %}";

/// mamba-fortunes with [`CHAT_TEMPLATE`] in its `tokenizer_config.json`.
fn fortunes_chat() -> PathBuf {
    static MODEL: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    MODEL
        .get_or_init(|| {
            let src = repo("models/mamba-fortunes");
            let dir = tmp_dir().join("fortunes-chat");
            std::fs::create_dir_all(&dir).unwrap();
            for e in std::fs::read_dir(&src).unwrap() {
                let e = e.unwrap();
                std::fs::copy(e.path(), dir.join(e.file_name())).unwrap();
            }
            let cfg = json!({"chat_template": CHAT_TEMPLATE});
            std::fs::write(dir.join("tokenizer_config.json"), cfg.to_string()).unwrap();
            convert(&dir, "fortunes-chat.eddy")
        })
        .clone()
}

/// A running `eddy serve`; killed when dropped.
struct Server {
    child: Child,
    base: String,
    agent: ureq::Agent,
}

impl Server {
    fn start(extra: &[&str]) -> Server {
        Server::start_with(&model(), extra)
    }

    fn start_with(m: &Path, extra: &[&str]) -> Server {
        let mut child = Command::new(env!("CARGO_BIN_EXE_eddy"))
            .args(["serve", m.to_str().unwrap(), "--port", "0", "--threads", "1"])
            .args(extra)
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
        let base = loop {
            let line = lines.next().expect("server printed its address").unwrap();
            if let Some(addr) = line.strip_prefix("listening on ") {
                break addr.to_string();
            }
        };
        // Keep draining the log so the server never blocks on it.
        std::thread::spawn(move || for _ in lines {});
        let agent = ureq::Agent::config_builder().http_status_as_error(false).build().into();
        Server { child, base, agent }
    }

    fn post_with(&self, path: &str, body: &str, key: Option<&str>) -> (u16, String) {
        let mut req =
            self.agent.post(format!("{}{path}", self.base)).header("Content-Type", "application/json");
        if let Some(k) = key {
            req = req.header("Authorization", format!("Bearer {k}"));
        }
        let mut resp = req.send(body).unwrap();
        (resp.status().as_u16(), resp.body_mut().read_to_string().unwrap())
    }

    fn post(&self, path: &str, body: Value) -> (u16, Value) {
        let (status, text) = self.post_with(path, &body.to_string(), None);
        (status, serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}: {text}")))
    }

    fn complete(&self, body: Value) -> Value {
        let (status, v) = self.post("/v1/completions", body);
        assert_eq!(status, 200, "{v}");
        v
    }

    fn get(&self, path: &str) -> (u16, String) {
        let mut resp = self.agent.get(format!("{}{path}", self.base)).call().unwrap();
        (resp.status().as_u16(), resp.body_mut().read_to_string().unwrap())
    }

    /// One value from `/metrics`.
    fn metric(&self, name: &str) -> f64 {
        let (_, text) = self.get("/metrics");
        text.lines()
            .find_map(|l| l.strip_prefix(name).and_then(|v| v.strip_prefix(' ')))
            .unwrap_or_else(|| panic!("{name} missing from:\n{text}"))
            .parse()
            .unwrap()
    }

    /// Open a streamed completion and return its event lines as read.
    fn stream(&self, body: Value) -> impl Iterator<Item = String> {
        let resp = self.agent.post(format!("{}/v1/completions", self.base)).send(body.to_string()).unwrap();
        assert_eq!(resp.status().as_u16(), 200);
        let ct = resp.headers().get("content-type").unwrap().to_str().unwrap().to_string();
        assert_eq!(ct, "text/event-stream");
        BufReader::new(resp.into_body().into_reader()).lines().map(|l| l.unwrap()).filter(|l| !l.is_empty())
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn text_of(v: &Value) -> String {
    v["choices"][0]["text"].as_str().unwrap().to_string()
}

fn greedy(prompt: Value, n: u64) -> Value {
    json!({"prompt": prompt, "max_tokens": n, "temperature": 0})
}

#[test]
fn completion_shape_usage_and_repeatability() {
    let s = Server::start(&[]);
    let v = s.complete(greedy(json!("Hello"), 12));
    assert_eq!(v["object"], "text_completion");
    assert_eq!(v["model"], "mamba-tiny");
    let usage = &v["usage"];
    let completion = usage["completion_tokens"].as_u64().unwrap();
    assert!((1..=12).contains(&completion));
    let reason = v["choices"][0]["finish_reason"].as_str().unwrap();
    assert_eq!(reason == "length", completion == 12, "{v}");
    assert_eq!(usage["total_tokens"], usage["prompt_tokens"].as_u64().unwrap() + completion);
    assert_eq!(s.complete(greedy(json!("Hello"), 12))["choices"], v["choices"]);
    // Token-id prompts are read as given; seeds repeat sampled text.
    let sampled = json!({"prompt": [5, 6, 7], "max_tokens": 10, "temperature": 1.0, "seed": 3});
    assert_eq!(text_of(&s.complete(sampled.clone())), text_of(&s.complete(sampled)));
    let (status, models) = s.get("/v1/models");
    assert_eq!(status, 200);
    assert!(models.contains("\"mamba-tiny\""), "{models}");
}

#[test]
fn streamed_text_equals_the_whole_answer_and_ends_with_done() {
    let s = Server::start(&[]);
    let whole = s.complete(greedy(json!([1, 2, 3]), 16));
    let mut body = greedy(json!([1, 2, 3]), 16);
    body["stream"] = json!(true);
    body["stream_options"] = json!({"include_usage": true});
    let lines: Vec<String> = s.stream(body).collect();
    assert_eq!(lines.last().map(String::as_str), Some("data: [DONE]"));
    let events: Vec<Value> = lines[..lines.len() - 1]
        .iter()
        .map(|l| serde_json::from_str(l.strip_prefix("data: ").unwrap()).unwrap())
        .collect();
    let text: String =
        events.iter().filter_map(|e| e["choices"].get(0).map(|c| c["text"].as_str().unwrap())).collect();
    assert_eq!(text, text_of(&whole));
    let finish = &events[events.len() - 2]["choices"][0]["finish_reason"];
    assert_eq!(finish, &whole["choices"][0]["finish_reason"]);
    let usage = &events.last().unwrap()["usage"];
    for count in ["prompt_tokens", "completion_tokens"] {
        assert_eq!(usage[count], whole["usage"][count]);
    }
}

#[test]
fn stop_strings_end_the_text_before_them() {
    let s = Server::start(&[]);
    let full = text_of(&s.complete(greedy(json!([1, 2, 3]), 24)));
    // Stop at a piece from the middle of the greedy text.
    let chars: Vec<char> = full.chars().collect();
    let stop: String = chars[chars.len() / 2..chars.len() / 2 + 2].iter().collect();
    let mut body = greedy(json!([1, 2, 3]), 24);
    body["stop"] = json!([stop.clone()]);
    let v = s.complete(body);
    let cut = &full[..full.find(&stop).unwrap()];
    assert_eq!(text_of(&v), cut, "stop {stop:?} in {full:?}");
    assert_eq!(v["choices"][0]["finish_reason"], "stop");
}

#[test]
fn four_concurrent_requests_each_keep_their_own_state() {
    let s = Server::start(&["--parallel", "2", "--queue", "4", "--max-sessions", "0"]);
    let prompts: Vec<Value> = (0..4).map(|i| json!([10 + i, 20 + i, 30 + i])).collect();
    let alone: Vec<String> = prompts.iter().map(|p| text_of(&s.complete(greedy(p.clone(), 24)))).collect();
    let together: Vec<String> = std::thread::scope(|sc| {
        let handles: Vec<_> =
            prompts.iter().map(|p| sc.spawn(|| text_of(&s.complete(greedy(p.clone(), 24))))).collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert_eq!(together, alone);
}

fn wait_for(what: &str, mut ok: impl FnMut() -> bool) {
    let t0 = Instant::now();
    while !ok() {
        assert!(t0.elapsed() < Duration::from_secs(30), "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn a_client_that_disconnects_cancels_its_generation() {
    let s = Server::start(&["--max-tokens-limit", "10000000"]);
    let body = json!({"prompt": [1, 2, 3], "max_tokens": 10_000_000, "stream": true, "ignore_eos": true});
    let mut events = s.stream(body);
    assert!(events.next().unwrap().starts_with("data: {"));
    assert_eq!(s.metric("eddy_active_sessions"), 1.0);
    drop(events);
    wait_for("the cancellation", || s.metric("eddy_generations_cancelled_total") == 1.0);
    wait_for("the session to be free", || s.metric("eddy_active_sessions") == 0.0);
    assert_eq!(s.metric("eddy_generations_finished_total"), 0.0);
}

#[test]
fn a_full_queue_answers_503() {
    let s = Server::start(&["--parallel", "1", "--queue", "0", "--max-tokens-limit", "10000000"]);
    let busy = json!({"prompt": [1, 2], "max_tokens": 10_000_000, "stream": true, "ignore_eos": true});
    let mut events = s.stream(busy);
    assert!(events.next().is_some());
    let (status, v) = s.post("/v1/completions", greedy(json!([1]), 2));
    assert_eq!(status, 503, "{v}");
    assert_eq!(v["error"]["type"], "server_busy");
    drop(events);
    wait_for("the session to be free", || s.metric("eddy_active_sessions") == 0.0);
    wait_for("a free session to take work", || s.post("/v1/completions", greedy(json!([1]), 2)).0 == 200);
}

#[test]
fn bad_requests_get_json_errors_and_the_server_stays_up() {
    let s = Server::start(&["--max-prompt-tokens", "8", "--body-limit-kib", "1"]);
    let cases: &[(&str, &str, u16, &str)] = &[
        ("/v1/completions", "{not json", 400, "invalid request body"),
        ("/v1/completions", r#"{"prompt": "hi", "max_tokens": "many"}"#, 400, "invalid type"),
        ("/v1/completions", r#"{"max_tokens": 3}"#, 400, "prompt"),
        ("/v1/completions", r#"{"prompt": "hi", "max_tokens": 1000000}"#, 400, "--max-tokens-limit"),
        ("/v1/completions", r#"{"prompt": "hi", "temperature": -1}"#, 400, "temperature"),
        ("/v1/completions", r#"{"prompt": [1,2,3,4,5,6,7,8,9]}"#, 400, "--max-prompt-tokens"),
        ("/v1/completions", r#"{"prompt": [299, 300]}"#, 400, "out of range"),
        ("/v1/completions", r#"{"prompt": ""}"#, 400, "empty"),
        ("/v1/chat/completions", r#"{"messages": []}"#, 400, "empty"),
        ("/v1/chat/completions", r#"{"messages": [{"role": "user"}]}"#, 400, "content"),
        ("/v1/nowhere", "{}", 404, "no route"),
        ("/health", "{}", 405, "not allowed"),
    ];
    for &(path, body, status, needle) in cases {
        let (got, text) = s.post_with(path, body, None);
        assert_eq!(got, status, "{path} {body}: {text}");
        let v: Value = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}: {text}"));
        let message = v["error"]["message"].as_str().unwrap();
        assert!(message.contains(needle), "{body}: `{needle}` not in {message}");
    }
    let big = format!(r#"{{"prompt": "{}"}}"#, "a".repeat(2000));
    assert_eq!(s.post_with("/v1/completions", &big, None).0, 413);
    assert_eq!(s.get("/health").0, 200);
    assert_eq!(s.metric("eddy_requests_failed_total"), (cases.len() + 1) as f64);
    s.complete(greedy(json!([1]), 2));
}

#[test]
fn the_api_key_is_required_except_for_health() {
    let s = Server::start(&["--api-key", "sesame"]);
    let body = greedy(json!([1, 2]), 2).to_string();
    for key in [None, Some("wrong"), Some("sesam"), Some("sesame2")] {
        let (status, text) = s.post_with("/v1/completions", &body, key);
        assert_eq!(status, 401, "{key:?}: {text}");
        assert!(text.contains("invalid_api_key"), "{text}");
    }
    assert_eq!(s.post_with("/v1/completions", &body, Some("sesame")).0, 200);
    assert_eq!(s.get("/metrics").0, 401);
    assert_eq!(s.get("/health").0, 200);
}

#[test]
fn a_prompt_that_extends_an_earlier_one_reads_only_the_new_tokens() {
    let s = Server::start(&[]);
    let first: Vec<u32> = (1..=40).collect();
    let v = s.complete(greedy(json!(first), 4));
    assert_eq!(v["usage"]["prompt_tokens_details"]["cached_tokens"], 0);
    // The state before the prompt's last token is kept, so that the same
    // prompt sent again reads one token.
    let mut second = first.clone();
    second.extend([7, 8, 9]);
    let resumed = s.complete(greedy(json!(second), 12));
    assert_eq!(resumed["usage"]["prompt_tokens"], 43);
    assert_eq!(resumed["usage"]["prompt_tokens_details"]["cached_tokens"], 39, "{resumed}");
    let again = s.complete(greedy(json!(second), 12));
    assert_eq!(again["usage"]["prompt_tokens_details"]["cached_tokens"], 42, "{again}");
    assert_eq!(text_of(&again), text_of(&resumed));
    assert_eq!(s.metric("eddy_prompt_tokens_cached_total"), (39 + 42) as f64);
    // Resuming gives exactly what reading the whole prompt gives, and what
    // `eddy run` gives.
    let fresh = Server::start(&["--max-sessions", "0"]);
    let whole = fresh.complete(greedy(json!(second), 12));
    assert_eq!(whole["usage"]["prompt_tokens_details"]["cached_tokens"], 0);
    assert_eq!(text_of(&resumed), text_of(&whole));
    let ids: Vec<String> = second.iter().map(u32::to_string).collect();
    let run = Command::new(env!("CARGO_BIN_EXE_eddy"))
        .args(["run", model().to_str().unwrap(), "--tokens", &ids.join(","), "-n", "12"])
        .output()
        .unwrap();
    let run_text = String::from_utf8(run.stdout).unwrap();
    let run_text = run_text.strip_suffix('\n').unwrap();
    if whole["choices"][0]["finish_reason"] == "length" {
        assert_eq!(text_of(&whole), run_text);
    } else {
        assert!(run_text.starts_with(&text_of(&whole)), "{run_text:?} vs {whole}");
    }
    let unrelated = s.complete(greedy(json!([9, 9, 9]), 2));
    assert_eq!(unrelated["usage"]["prompt_tokens_details"]["cached_tokens"], 0);
}

#[test]
fn the_next_turn_resumes_after_the_generated_tokens() {
    let s = Server::start_with(&fortunes(), &[]);
    let v = s.complete(greedy(json!("The meaning of life is"), 6));
    let text = text_of(&v);
    let prompt_tokens = v["usage"]["prompt_tokens"].as_u64().unwrap();
    let generated = v["usage"]["completion_tokens"].as_u64().unwrap();
    let next = s.complete(greedy(json!(format!("The meaning of life is{text} and more")), 2));
    let cached = next["usage"]["prompt_tokens_details"]["cached_tokens"].as_u64().unwrap();
    // Everything read before, the generated tokens but the last included
    // (when the text tokenizes back to the same ids, as here).
    assert_eq!(cached, prompt_tokens + generated - 1, "{v}\n{next}");
}

#[test]
fn evicted_states_spill_to_the_state_dir_and_are_resumed() {
    let dir = tmp_dir().join("spill");
    let dir_arg = dir.to_str().unwrap().to_string();
    let mut s = Server::start(&["--max-sessions", "1", "--state-dir", &dir_arg]);
    let a: Vec<u32> = (1..=20).collect();
    let b: Vec<u32> = (101..=120).collect();
    s.complete(greedy(json!(a), 1));
    s.complete(greedy(json!(b), 1));
    assert!(s.metric("eddy_state_spill_entries") >= 1.0);
    assert!(std::fs::read_dir(&dir).unwrap().count() >= 1);
    let mut longer = a.clone();
    longer.push(5);
    let v = s.complete(greedy(json!(longer), 1));
    // a's state before its last token, read back from disk.
    assert_eq!(v["usage"]["prompt_tokens_details"]["cached_tokens"], 19, "{v}");
    // A graceful stop removes the spilled files.
    let status = Command::new("kill").args(["-TERM", &s.child.id().to_string()]).status().unwrap();
    assert!(status.success());
    let t0 = Instant::now();
    let code = loop {
        if let Some(code) = s.child.try_wait().unwrap() {
            break code;
        }
        assert!(t0.elapsed() < Duration::from_secs(20), "no exit after SIGTERM");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(code.success(), "{code:?}");
    assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 0);
}

#[test]
fn sigterm_lets_a_running_generation_finish() {
    let mut s = Server::start(&[]);
    let mut body = greedy(json!([1, 2, 3]), 2000);
    body["stream"] = json!(true);
    body["ignore_eos"] = json!(true);
    let mut events = s.stream(body);
    assert!(events.next().is_some());
    let status = Command::new("kill").args(["-TERM", &s.child.id().to_string()]).status().unwrap();
    assert!(status.success());
    let rest: Vec<String> = events.collect();
    assert_eq!(rest.last().map(String::as_str), Some("data: [DONE]"));
    let code = s.child.wait().unwrap();
    assert!(code.success(), "{code:?}");
}

fn chat_body(messages: &[(&str, &str)], n: u64) -> Value {
    let messages: Vec<Value> = messages.iter().map(|(r, c)| json!({"role": r, "content": c})).collect();
    json!({"messages": messages, "max_tokens": n, "temperature": 0})
}

#[test]
fn chat_uses_the_template_streams_and_resumes_the_conversation() {
    let s = Server::start_with(&fortunes_chat(), &[]);
    let (status, v) = s.post("/v1/chat/completions", chat_body(&[("user", "Tell me a fortune.")], 12));
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["object"], "chat.completion");
    let message = &v["choices"][0]["message"];
    assert_eq!(message["role"], "assistant");
    let reply = message["content"].as_str().unwrap().to_string();
    // The prompt is the rendered template: the same text as a completion
    // gives the same reply.
    let as_text = s.complete(greedy(json!("<user> Tell me a fortune.\n<assistant>"), 12));
    assert_eq!(as_text["usage"]["prompt_tokens"], v["usage"]["prompt_tokens"]);
    assert_eq!(text_of(&as_text), reply);

    let mut body = chat_body(&[("user", "Tell me a fortune.")], 12);
    body["stream"] = json!(true);
    let resp = s.agent.post(format!("{}/v1/chat/completions", s.base)).send(body.to_string()).unwrap();
    let lines: Vec<String> = BufReader::new(resp.into_body().into_reader())
        .lines()
        .map(|l| l.unwrap())
        .filter(|l| !l.is_empty())
        .collect();
    assert_eq!(lines.last().map(String::as_str), Some("data: [DONE]"));
    let chunks: Vec<Value> =
        lines[..lines.len() - 1].iter().map(|l| serde_json::from_str(&l[6..]).unwrap()).collect();
    assert_eq!(chunks[0]["object"], "chat.completion.chunk");
    assert_eq!(chunks[0]["choices"][0]["delta"]["role"], "assistant");
    let streamed: String =
        chunks.iter().filter_map(|c| c["choices"][0]["delta"]["content"].as_str()).collect();
    assert_eq!(streamed, reply);

    // The next turn carries the reply: its prompt resumes from a saved state.
    let turn1_prompt = v["usage"]["prompt_tokens"].as_u64().unwrap();
    let turn2 = chat_body(&[("user", "Tell me a fortune."), ("assistant", &reply), ("user", "Another.")], 4);
    let (status, v2) = s.post("/v1/chat/completions", turn2);
    assert_eq!(status, 200, "{v2}");
    let cached = v2["usage"]["prompt_tokens_details"]["cached_tokens"].as_u64().unwrap();
    assert!(cached >= turn1_prompt - 1, "{v}\n{v2}");
}

#[test]
fn a_template_that_refuses_the_messages_is_a_400() {
    let s = Server::start_with(&fortunes_chat(), &[]);
    let (status, v) = s.post("/v1/chat/completions", chat_body(&[("system", "Be brief.")], 4));
    assert_eq!(status, 400, "{v}");
    let message = v["error"]["message"].as_str().unwrap();
    assert!(message.contains("the first message must be from the user"), "{message}");
}

#[test]
fn bad_startup_options_are_one_line_errors() {
    let s = Server::start(&[]);
    let port = s.base.rsplit(':').next().unwrap().to_string();
    let m = model();
    for (args, needle) in [
        (vec!["--parallel", "0"], "--parallel"),
        (vec!["--default-max-tokens", "10", "--max-tokens-limit", "5"], "--default-max-tokens"),
        (vec!["--port", port.as_str()], "cannot listen on"),
    ] {
        let o = Command::new(env!("CARGO_BIN_EXE_eddy"))
            .args(["serve", m.to_str().unwrap()])
            .args(&args)
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(1), "{args:?}: {err}");
        let last = err.trim_end().lines().last().unwrap_or("");
        assert!(last.starts_with("error: ") && last.contains(needle), "{args:?}: {err}");
        assert!(!err.contains("panicked"), "{err}");
    }
}
