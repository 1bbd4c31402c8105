//! State files: a session's complete state saved to disk
//! (`eddy run --save-state`, `eddy chat /save`) to continue it later,
//! bit-exactly, without re-reading the text that led there.
//!
//! Layout: the magic `EDDYSTATE\n`, one line of JSON ([`StateHeader`]: the
//! model's checksum, the state format, the KV cache layout, the position and
//! the snapshot's length), then the bytes of [`Session::snapshot`]. The
//! header is checked against the loading model before anything is
//! restored, so a mismatch names what differs.

use crate::chat_template::ChatMessage;
use crate::file_writer::TempOutput;
use eddy::{Model, OwnedSession, SessionError};
use serde::{Deserialize, Serialize};
use std::io::Write;
use std::path::{Path, PathBuf};

/// First bytes of every state file.
pub const MAGIC: &[u8] = b"EDDYSTATE\n";
/// Header version this code writes and reads.
pub const VERSION: u32 = 1;

/// What a state file says about the state it holds.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StateHeader {
    /// Layout version ([`VERSION`]).
    pub version: u32,
    /// The model family, for messages.
    pub architecture: String,
    /// Checksum of the `.eddy` file the state belongs to.
    pub model_checksum: u32,
    /// Bits per value of the recurrent state (32, 8 or 4).
    pub state_bits: u32,
    /// KV cache format, sinks and window of attention layers (none for
    /// purely recurrent models).
    pub kv_cache: Option<(String, u32, u32)>,
    /// Tokens consumed.
    pub position: u64,
    /// Length of the snapshot that follows.
    pub snapshot_bytes: u64,
    /// The conversation that led to the state, if `eddy chat` saved it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub chat: Option<Transcript>,
}

/// A chat's history as saved with its state, so a loaded chat renders its
/// next turn as a continuation.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Transcript {
    /// The messages so far.
    pub messages: Vec<ChatMessage>,
    /// The text the state has consumed (the rendered conversation and the
    /// last reply as generated).
    pub consumed: String,
}

impl StateHeader {
    /// The header a state of `model` at `position` would have.
    pub fn for_model(model: &Model<'_>, position: u64) -> Self {
        StateHeader {
            version: VERSION,
            architecture: model.architecture().name().to_string(),
            model_checksum: model.file().checksum(),
            state_bits: model.state_format().bits(),
            kv_cache: model.kv_cache().map(|kv| (kv.format.name().to_string(), kv.sinks, kv.window)),
            position,
            snapshot_bytes: model.state_bytes() as u64,
            chat: None,
        }
    }
}

/// Why a state file could not be saved or loaded.
#[derive(Debug, thiserror::Error)]
pub enum StateFileError {
    /// Reading or writing failed.
    #[error("cannot {action} state file {path}: {error}")]
    Io {
        /// "read" or "write".
        action: &'static str,
        /// The path.
        path: PathBuf,
        /// The cause.
        error: std::io::Error,
    },
    /// The file is not a state file (or is damaged).
    #[error("{path} is not an eddy state file ({why})")]
    NotAStateFile {
        /// The path.
        path: PathBuf,
        /// What is wrong.
        why: String,
    },
    /// The state belongs to another model file.
    #[error(
        "{path} holds the state of another model (checksum {file:#010x}, {arch}); this model's is {model:#010x}"
    )]
    OtherModel {
        /// The path.
        path: PathBuf,
        /// The state's model checksum.
        file: u32,
        /// Its architecture.
        arch: String,
        /// The loading model's checksum.
        model: u32,
    },
    /// The state was saved with other `--state-bits`.
    #[error("{path} was saved with --state-bits {file}; load it with the same (this run uses {model})")]
    StateBits {
        /// The path.
        path: PathBuf,
        /// The file's.
        file: u32,
        /// This run's.
        model: u32,
    },
    /// The state was saved with another KV cache layout.
    #[error("{path} was saved with KV cache {file}; load it with the same --kv/--kv-sinks/--kv-window (this run uses {model})")]
    KvLayout {
        /// The path.
        path: PathBuf,
        /// The file's, as `format sinks+window`.
        file: String,
        /// This run's.
        model: String,
    },
    /// The session refused the snapshot.
    #[error("{path}: {error}")]
    Restore {
        /// The path.
        path: PathBuf,
        /// The cause.
        error: SessionError,
    },
}

/// Save `session`'s state to `path` (atomically: a failed write leaves any
/// previous file in place).
pub fn save(
    path: &Path,
    session: &OwnedSession<'_, '_>,
    chat: Option<&Transcript>,
) -> Result<(), StateFileError> {
    let io = |error| StateFileError::Io { action: "write", path: path.to_path_buf(), error };
    let header =
        StateHeader { chat: chat.cloned(), ..StateHeader::for_model(session.model(), session.position()) };
    // A header of strings and numbers always serializes.
    let json = serde_json::to_string(&header).unwrap_or_default();
    let (tmp, mut file) = TempOutput::create(path).map_err(io)?;
    file.write_all(MAGIC).map_err(io)?;
    writeln!(file, "{json}").map_err(io)?;
    file.write_all(session.snapshot()).map_err(io)?;
    tmp.persist(file).map_err(io)
}

/// Load the state in `path` into `session`, after checking it belongs to
/// the session's model, state format and KV layout; the header read.
pub fn load(path: &Path, session: &mut OwnedSession<'_, '_>) -> Result<StateHeader, StateFileError> {
    let bytes = std::fs::read(path).map_err(|error| StateFileError::Io {
        action: "read",
        path: path.to_path_buf(),
        error,
    })?;
    let bad = |why: &str| StateFileError::NotAStateFile { path: path.to_path_buf(), why: why.to_string() };
    let rest = bytes.strip_prefix(MAGIC).ok_or_else(|| bad("no EDDYSTATE header"))?;
    let line_end = rest.iter().position(|&b| b == b'\n').ok_or_else(|| bad("header line not ended"))?;
    let header: StateHeader =
        serde_json::from_slice(&rest[..line_end]).map_err(|e| bad(&format!("header: {e}")))?;
    if header.version != VERSION {
        return Err(bad(&format!("version {} (this eddy reads {VERSION})", header.version)));
    }
    let snapshot = &rest[line_end + 1..];
    if snapshot.len() as u64 != header.snapshot_bytes {
        return Err(bad(&format!("{} state bytes, header says {}", snapshot.len(), header.snapshot_bytes)));
    }
    let expected = StateHeader::for_model(session.model(), header.position);
    let path = path.to_path_buf();
    if header.model_checksum != expected.model_checksum {
        let (file, arch, model) = (header.model_checksum, header.architecture, expected.model_checksum);
        return Err(StateFileError::OtherModel { path, file, arch, model });
    }
    if header.state_bits != expected.state_bits {
        return Err(StateFileError::StateBits { path, file: header.state_bits, model: expected.state_bits });
    }
    if header.kv_cache != expected.kv_cache {
        let show = |kv: &Option<(String, u32, u32)>| match kv {
            Some((f, s, w)) => format!("{f} {s}+{w}"),
            None => "none".to_string(),
        };
        return Err(StateFileError::KvLayout {
            path,
            file: show(&header.kv_cache),
            model: show(&expected.kv_cache),
        });
    }
    session.restore(snapshot).map_err(|error| StateFileError::Restore { path, error })?;
    Ok(header)
}
