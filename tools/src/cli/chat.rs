//! `eddy chat`: a conversation on stdin/stdout with the model's chat
//! template, the state carried from turn to turn.
//!
//! Each turn renders the whole conversation with the template and feeds the
//! model only the text beyond what its state has already consumed (the
//! earlier turns and the reply as generated), so history is never read
//! twice. If the template renders history differently from what was
//! consumed (e.g. it trims replies, or a reply ended at a stop string), the
//! conversation is read again from an empty state: slower, never wrong.

use super::out::Out;
use super::run::SamplingArgs;
use crate::{load, open, PREFILL_CHUNK};
use anyhow::{bail, Context, Result};
use eddy::OwnedSession;
use eddy_cli::chat_template::{ChatMessage, ChatTemplate};
use eddy_cli::generate::{generate, StopRules};
use eddy_cli::sample::Sampler;
use eddy_cli::state_file::{self, Transcript};
use eddy_cli::text::TextCodec;
use std::io::{BufRead, IsTerminal, Write};
use std::path::{Path, PathBuf};

/// `eddy chat` arguments.
#[derive(clap::Args)]
pub(crate) struct ChatArgs {
    /// The .eddy file (needs the embedded tokenizer).
    model: PathBuf,
    /// A system message to begin the conversation with.
    #[arg(long)]
    system: Option<String>,
    #[command(flatten)]
    sampling: SamplingArgs,
}

/// One conversation: its messages and the session that has read them.
struct Conversation<'s, 'm, 'a> {
    session: &'s mut OwnedSession<'m, 'a>,
    template: &'s ChatTemplate,
    codec: &'s TextCodec,
    system: Option<String>,
    transcript: Transcript,
}

impl Conversation<'_, '_, '_> {
    /// Back to the start (only the system message, if any).
    fn reset(&mut self) {
        self.session.reset();
        self.transcript.consumed.clear();
        self.transcript.messages.clear();
        if let Some(s) = &self.system {
            self.transcript.messages.push(ChatMessage::new("system", s));
        }
    }

    /// Feed the user's message and stream the reply.
    fn turn(
        &mut self,
        user: &str,
        sampler: &mut Sampler,
        n: usize,
        rules: &StopRules,
        out: &mut Out,
    ) -> Result<()> {
        let mut messages = self.transcript.messages.clone();
        messages.push(ChatMessage::new("user", user));
        let rendered = self.template.render(&messages, true)?;
        let new_text = match rendered.strip_prefix(self.transcript.consumed.as_str()) {
            Some(rest) => rest,
            None => {
                eprintln!(
                    "note: the template renders earlier turns differently; reading the conversation again"
                );
                self.session.reset();
                &rendered
            }
        };
        let ids = self.codec.encode(new_text)?;
        if ids.is_empty() {
            bail!("the chat template added no text for this message");
        }
        let mut run = || -> Result<_> {
            self.session.prefill_chunked(&ids, PREFILL_CHUNK, false, |_, _| {})?;
            let reply =
                generate(self.session, sampler, Some(self.codec), &ids, n, rules, &mut |p| out.write(p))?;
            out.write("\n")?;
            let consumed = self.codec.decode(&reply.ids)?;
            Ok((reply, consumed))
        };
        let (reply, consumed) = match run() {
            Ok(r) => r,
            Err(e) => {
                // The state read part of the turn: the next turn starts afresh.
                self.session.reset();
                self.transcript.consumed.clear();
                return Err(e);
            }
        };
        self.transcript.consumed = rendered + &consumed;
        messages.push(ChatMessage::new("assistant", &reply.text));
        self.transcript.messages = messages;
        Ok(())
    }

    /// `/save FILE`.
    fn save(&self, path: &Path) -> Result<()> {
        state_file::save(path, self.session, Some(&self.transcript))?;
        eprintln!("saved the conversation ({} tokens) to {}", self.session.position(), path.display());
        Ok(())
    }

    /// `/load FILE`: the state and, if the file has it, the conversation.
    fn load(&mut self, path: &Path) -> Result<()> {
        let header = state_file::load(path, self.session)?;
        self.transcript = header.chat.unwrap_or(Transcript { messages: Vec::new(), consumed: String::new() });
        eprintln!("loaded a conversation of {} tokens from {}", header.position, path.display());
        Ok(())
    }
}

/// The next message of the chat input: one line; or several, when a line
/// ends with `\` (the line break is kept) or when a line holding only
/// `"""` opens a block that the next such line closes. `continued` is
/// called before each continuation line is read (to prompt for it).
/// `None` at the end of input.
fn read_message(
    lines: &mut impl Iterator<Item = std::io::Result<String>>,
    mut continued: impl FnMut(),
) -> Option<std::io::Result<String>> {
    let mut next = || lines.next().map(|l| l.map(|l| l.trim_end_matches('\r').to_string()));
    let first = match next()? {
        Ok(l) => l,
        Err(e) => return Some(Err(e)),
    };
    let mut message = String::new();
    if first.trim() == "\"\"\"" {
        loop {
            continued();
            match next() {
                None => break,
                Some(Err(e)) => return Some(Err(e)),
                Some(Ok(l)) if l.trim() == "\"\"\"" => break,
                Some(Ok(l)) => {
                    if !message.is_empty() {
                        message.push('\n');
                    }
                    message.push_str(&l);
                }
            }
        }
        return Some(Ok(message));
    }
    let mut line = first;
    while let Some(head) = line.strip_suffix('\\') {
        message.push_str(head);
        message.push('\n');
        continued();
        line = match next() {
            None => return Some(Ok(message)),
            Some(Err(e)) => return Some(Err(e)),
            Some(Ok(l)) => l,
        };
    }
    message.push_str(&line);
    Some(Ok(message))
}

/// Run the chat loop until end of input.
pub(crate) fn cmd_chat(args: ChatArgs) -> Result<()> {
    args.sampling.check()?;
    let mapped = open(&args.model)?;
    let model = load(&mapped)?;
    let json = model
        .tokenizer_json()
        .with_context(|| format!("{} has no embedded tokenizer; chat needs one", args.model.display()))?;
    let codec = TextCodec::from_json(json)?;
    let template = ChatTemplate::from_model(&model)?;
    if template.is_default() {
        eprintln!("note: {} has no chat template; using a plain `role:` transcript", args.model.display());
    }
    let mut session = eddy_cli::validate::new_session(&model)?;
    let mut chat = Conversation {
        session: &mut session,
        template: &template,
        codec: &codec,
        system: args.system.clone(),
        transcript: Transcript { messages: Vec::new(), consumed: String::new() },
    };
    chat.reset();
    let mut sampler = args.sampling.sampler();
    let rules = args.sampling.stop_rules(&template);
    let interactive = std::io::stdin().is_terminal();
    if interactive {
        eprintln!("commands: /reset, /save FILE, /load FILE; end with Ctrl-D");
    }
    let mut out = Out::stdout();
    let mut lines = std::io::stdin().lock().lines();
    loop {
        if interactive {
            eprint!("> ");
            std::io::stderr().flush()?;
        }
        let continued = || {
            if interactive {
                eprint!(". ");
                let _ = std::io::stderr().flush();
            }
        };
        let Some(message) = read_message(&mut lines, continued) else { break };
        let message = message.context("cannot read stdin as UTF-8 text")?;
        let line = message.as_str();
        let result = match line.split_once(' ').unwrap_or((line, "")) {
            ("/reset", _) => {
                chat.reset();
                Ok(())
            }
            ("/save", f) if !f.trim().is_empty() => chat.save(Path::new(f.trim())),
            ("/load", f) if !f.trim().is_empty() => chat.load(Path::new(f.trim())),
            (cmd, _) if cmd.starts_with('/') => {
                Err(anyhow::anyhow!("unknown command `{line}`; use /reset, /save FILE or /load FILE"))
            }
            _ if line.trim().is_empty() => Ok(()),
            _ => chat.turn(line, &mut sampler, args.sampling.n_tokens, &rules, &mut out),
        };
        // A bad command or file loses nothing: say so and read on.
        if let Err(e) = result {
            if super::out::is_broken_pipe(&e) {
                return Err(e);
            }
            eprintln!("error: {e:#}");
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::read_message;

    fn messages(input: &str) -> Vec<String> {
        let mut lines = input.lines().map(|l| Ok(l.to_string()));
        let mut out = Vec::new();
        while let Some(m) = read_message(&mut lines, || {}) {
            out.push(m.unwrap());
        }
        out
    }

    #[test]
    fn one_line_is_one_message() {
        assert_eq!(messages("hello\r\n/reset\n"), ["hello", "/reset"]);
    }

    #[test]
    fn a_trailing_backslash_continues_the_message() {
        assert_eq!(messages("a \\\nb\\\nc\nd\n"), ["a \nb\nc", "d"]);
        assert_eq!(messages("end \\\n"), ["end \n"]);
    }

    #[test]
    fn triple_quotes_enclose_a_block() {
        assert_eq!(messages("\"\"\"\nx \\\n\ny\n\"\"\"\nz\n"), ["x \\\n\ny", "z"]);
        assert_eq!(messages("\"\"\"\nunclosed\n"), ["unclosed"]);
    }
}
