//! C interface to the eddy runtime. The header, `include/eddy.h`, is
//! generated from this file by cbindgen (`scripts/gen-capi-header.sh`).
//!
//! Everything lives in caller memory: the model bytes (64-byte aligned,
//! e.g. in flash), an `eddy_model` and an `eddy_session` (opaque, fixed
//! size, declared in the header), and the state and scratch buffers sized
//! by `eddy_model_state_bytes` / `eddy_model_scratch_bytes`. Nothing is
//! allocated. Every function returns an [`EddyStatus`]; null pointers and
//! objects that were never initialized are reported, not dereferenced.
//!
//! Lifetimes are the caller's job, as in any C API: the model bytes must
//! outlive the `eddy_model`, which must outlive (and not move under) every
//! session made from it; state and scratch must outlive their session.
#![cfg_attr(not(feature = "std"), no_std)]

use core::ffi::{c_char, c_int, CStr};
use core::mem::{align_of, size_of};
use eddy::{KvCacheOptions, KvFormat, Model, ModelError, Session, SessionError, StateFormat};

/// Result of every call. Values are part of the C ABI (`eddy_status`).
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EddyStatus {
    /// Success.
    Ok = 0,
    /// A required pointer argument is NULL.
    NullPointer = 1,
    /// The model bytes are not a valid `.eddy` file (damaged, truncated,
    /// misaligned, checksum mismatch, ...).
    ModelFile = 2,
    /// The file is valid but not a model this runtime can run.
    Model = 3,
    /// A state, scratch or snapshot buffer is too small.
    BufferTooSmall = 4,
    /// A state or scratch buffer is not 4-byte aligned.
    BufferMisaligned = 5,
    /// A token id is not below the vocabulary size.
    TokenOutOfRange = 6,
    /// `eddy_session_prefill` got no tokens.
    EmptyPrompt = 7,
    /// A snapshot has the wrong length, belongs to another model or KV
    /// cache layout, or was taken with another state format.
    BadSnapshot = 8,
    /// The `eddy_model` or `eddy_session` was not initialized by a
    /// successful `eddy_model_open` / `eddy_session_init`.
    NotInitialized = 9,
    /// A model option is not valid (an unknown KV-cache format or state
    /// bit width, a KV window of 0, a Q4 cache for an odd head size, more
    /// cache slots than supported); the model is unchanged.
    BadOption = 10,
}

/// How the attention layers of hybrid models store cached keys and values
/// (`eddy_kv_format` in C; passed to `eddy_model_set_kv_cache` as an int).
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EddyKvFormat {
    /// f32: exact.
    F32 = 0,
    /// f16.
    F16 = 1,
    /// 8-bit codes with an f16 scale per 32 values.
    Q8 = 2,
    /// 4-bit codes with an f16 scale and minimum per 32 values (the
    /// default).
    Q4 = 3,
}

/// Every status with its message, in code order (also used by the tests
/// that check `include/eddy.h`).
pub const STATUS_MESSAGES: [(EddyStatus, &CStr); 11] = [
    (EddyStatus::Ok, c"ok"),
    (EddyStatus::NullPointer, c"a required pointer argument is NULL"),
    (
        EddyStatus::ModelFile,
        c"the model bytes are not a valid .eddy file (damaged, truncated, misaligned or checksum mismatch)",
    ),
    (EddyStatus::Model, c"the .eddy file is valid but not a model this runtime can run"),
    (EddyStatus::BufferTooSmall, c"a state, scratch or snapshot buffer is smaller than the model needs"),
    (EddyStatus::BufferMisaligned, c"state and scratch buffers must be 4-byte aligned"),
    (EddyStatus::TokenOutOfRange, c"a token id is not below the vocabulary size"),
    (EddyStatus::EmptyPrompt, c"prefill needs at least one token"),
    (
        EddyStatus::BadSnapshot,
        c"the snapshot does not match this model (wrong length, model or KV cache layout, or state format)",
    ),
    (EddyStatus::NotInitialized, c"the model or session was not initialized by a successful open/init call"),
    (
        EddyStatus::BadOption,
        c"a model option is not valid (KV format, state bits, KV window or cache size); the model is unchanged",
    ),
];

/// Caller-owned storage for a model (`eddy_model` in C).
#[repr(C, align(8))]
pub struct EddyModel {
    opaque: [u64; MODEL_WORDS],
}

/// Caller-owned storage for a session (`eddy_session` in C).
#[repr(C, align(8))]
pub struct EddySession {
    opaque: [u64; SESSION_WORDS],
}

/// Size of an `eddy_model` in 64-bit words (`EDDY_MODEL_STORAGE_WORDS` in C).
pub const MODEL_WORDS: usize = 64;
/// Size of an `eddy_session` in 64-bit words (`EDDY_SESSION_STORAGE_WORDS` in C).
pub const SESSION_WORDS: usize = 8;
/// Marks initialized storage in its last word.
const MODEL_MAGIC: u64 = u64::from_le_bytes(*b"EDDYMODL");
const SESSION_MAGIC: u64 = u64::from_le_bytes(*b"EDDYSESS");

type CSession = Session<'static, 'static, &'static mut [f32]>;

// The Rust objects fit in the storage before its last (magic) word.
const _: () = assert!(size_of::<Model<'static>>() <= (MODEL_WORDS - 1) * 8);
const _: () = assert!(align_of::<Model<'static>>() <= 8);
const _: () = assert!(size_of::<CSession>() <= (SESSION_WORDS - 1) * 8);
const _: () = assert!(align_of::<CSession>() <= 8);

fn model_status(e: ModelError) -> EddyStatus {
    match e {
        ModelError::File(_) => EddyStatus::ModelFile,
        _ => EddyStatus::Model,
    }
}

fn session_status(e: SessionError) -> EddyStatus {
    match e {
        // Sessions here live in caller buffers: `OutOfMemory` (owned
        // buffers only) cannot happen, and is the same kind of failure.
        SessionError::BufferTooSmall { .. } | SessionError::OutOfMemory { .. } => EddyStatus::BufferTooSmall,
        SessionError::BufferMisaligned { .. } => EddyStatus::BufferMisaligned,
        SessionError::TokenOutOfRange { .. } => EddyStatus::TokenOutOfRange,
        SessionError::EmptyPrompt => EddyStatus::EmptyPrompt,
        SessionError::BadSnapshot | SessionError::StateFormatMismatch { .. } => EddyStatus::BadSnapshot,
    }
}

/// The model in `storage`, if `eddy_model_open` initialized it.
///
/// # Safety
/// `storage` is NULL or points to a readable `eddy_model`.
unsafe fn model_ref<'m>(storage: *const EddyModel) -> Result<&'m Model<'static>, EddyStatus> {
    // SAFETY: the caller passes NULL or a valid `eddy_model`.
    let s = unsafe { storage.as_ref() }.ok_or(EddyStatus::NullPointer)?;
    if s.opaque[MODEL_WORDS - 1] != MODEL_MAGIC {
        return Err(EddyStatus::NotInitialized);
    }
    // SAFETY: the magic word is only set after a `Model` was written at the
    // start of this storage (size and alignment checked above at compile
    // time); the caller keeps the model bytes alive (API contract).
    Ok(unsafe { &*(s.opaque.as_ptr() as *const Model<'static>) })
}

/// The session in `storage`, if `eddy_session_init` initialized it.
///
/// # Safety
/// `storage` is NULL or points to a writable `eddy_session`.
unsafe fn session_mut<'s>(storage: *mut EddySession) -> Result<&'s mut CSession, EddyStatus> {
    // SAFETY: the caller passes NULL or a valid `eddy_session`.
    let s = unsafe { storage.as_mut() }.ok_or(EddyStatus::NullPointer)?;
    if s.opaque[SESSION_WORDS - 1] != SESSION_MAGIC {
        return Err(EddyStatus::NotInitialized);
    }
    // SAFETY: the magic word is only set after a session was written at
    // the start of this storage; its model and buffers are kept alive by
    // the caller (API contract).
    Ok(unsafe { &mut *(s.opaque.as_mut_ptr() as *mut CSession) })
}

/// Hand the logits to optional C out-parameters.
///
/// # Safety
/// Each pointer is NULL or writable.
unsafe fn put_logits(logits: &[f32], out: *mut *const f32, n: *mut usize) {
    // SAFETY: NULL or writable, per the caller.
    if let Some(o) = unsafe { out.as_mut() } {
        *o = logits.as_ptr();
    }
    // SAFETY: NULL or writable, per the caller.
    if let Some(o) = unsafe { n.as_mut() } {
        *o = logits.len();
    }
}

/// The status of a step or prefill, its logits put out on success.
///
/// # Safety
/// As [`put_logits`]: `out`/`n` are NULL or writable.
unsafe fn logits_status(
    result: Result<&[f32], SessionError>,
    out: *mut *const f32,
    n: *mut usize,
) -> EddyStatus {
    match result {
        Ok(l) => {
            // SAFETY: forwarded caller contract.
            unsafe { put_logits(l, out, n) };
            EddyStatus::Ok
        }
        Err(e) => session_status(e),
    }
}

/// Validate `len` bytes at `bytes` (64-byte aligned) as a `.eddy` model,
/// including its checksum, and bind it in `model`. The bytes are used in
/// place and must stay valid and unchanged while the model is used.
///
/// # Safety
/// `model` is NULL or points to writable `eddy_model` storage; `bytes` is
/// NULL or points to `len` readable bytes that outlive the model.
#[no_mangle]
pub unsafe extern "C" fn eddy_model_open(model: *mut EddyModel, bytes: *const u8, len: usize) -> EddyStatus {
    // SAFETY: NULL or writable storage, per the caller.
    let Some(storage) = (unsafe { model.as_mut() }) else { return EddyStatus::NullPointer };
    storage.opaque[MODEL_WORDS - 1] = 0;
    if bytes.is_null() {
        return EddyStatus::NullPointer;
    }
    // SAFETY: `bytes` points to `len` readable bytes that outlive the model
    // (caller contract), so they can be borrowed for 'static here.
    let data: &'static [u8] = unsafe { core::slice::from_raw_parts(bytes, len) };
    match Model::from_bytes(data) {
        Ok(m) => {
            // SAFETY: the storage is large and aligned enough for a Model
            // (compile-time checks above) and exclusively ours here.
            unsafe { (storage.opaque.as_mut_ptr() as *mut Model<'static>).write(m) };
            storage.opaque[MODEL_WORDS - 1] = MODEL_MAGIC;
            EddyStatus::Ok
        }
        Err(e) => model_status(e),
    }
}

/// The model in `storage`, mutable, if `eddy_model_open` initialized it.
///
/// # Safety
/// `storage` is NULL or points to a writable `eddy_model` that no session
/// uses.
unsafe fn model_mut<'m>(storage: *mut EddyModel) -> Result<&'m mut Model<'static>, EddyStatus> {
    // SAFETY: the caller passes NULL or a valid, unshared `eddy_model`.
    let s = unsafe { storage.as_mut() }.ok_or(EddyStatus::NullPointer)?;
    if s.opaque[MODEL_WORDS - 1] != MODEL_MAGIC {
        return Err(EddyStatus::NotInitialized);
    }
    // SAFETY: as in `model_ref`; no session borrows it (caller contract).
    Ok(unsafe { &mut *(s.opaque.as_mut_ptr() as *mut Model<'static>) })
}

/// Store the KV cache of the model's attention layers (hybrid models such
/// as LFM2 and RecurrentGemma) as `format` (an `eddy_kv_format` value),
/// keeping the first `sinks` tokens and the last `window` tokens: memory
/// stays fixed however long the stream. The default is Q4 with 4 sinks and
/// a 4092-token window (a sliding-window layer keeps its own window).
/// Models without attention layers accept any valid option unchanged.
/// Changes `eddy_model_state_bytes` and `eddy_model_scratch_bytes`: call
/// it after `eddy_model_open` and before any `eddy_session_init`, never
/// while a session of this model exists. `EDDY_STATUS_BAD_OPTION` leaves
/// the model as it was.
///
/// # Safety
/// `model` is NULL or points to an `eddy_model` no session uses.
#[no_mangle]
pub unsafe extern "C" fn eddy_model_set_kv_cache(
    model: *mut EddyModel,
    format: c_int,
    sinks: u32,
    window: u32,
) -> EddyStatus {
    // SAFETY: forwarded caller contract.
    let m = match unsafe { model_mut(model) } {
        Ok(m) => m,
        Err(status) => return status,
    };
    let format = match format {
        0 => KvFormat::F32,
        1 => KvFormat::F16,
        2 => KvFormat::Q8,
        3 => KvFormat::Q4,
        _ => return EddyStatus::BadOption,
    };
    match m.with_kv_cache(KvCacheOptions { format, sinks, window }) {
        Ok(changed) => {
            *m = changed;
            EddyStatus::Ok
        }
        Err(ModelError::BadKvCache { .. }) => EddyStatus::BadOption,
        Err(e) => model_status(e),
    }
}

/// Store the model's recurrent state with `bits` bits per value: 32 (f32,
/// exact, the default), 8 or 4 (large state tensors coded in groups of
/// 32 with an f32 scale; smaller state, slightly lower quality, see the
/// README). Changes `eddy_model_state_bytes` and
/// `eddy_model_scratch_bytes`: call it before any `eddy_session_init`,
/// never while a session of this model exists. Snapshots only restore
/// into sessions of the same format (`EDDY_STATUS_BAD_SNAPSHOT`).
///
/// # Safety
/// `model` is NULL or points to an `eddy_model` no session uses.
#[no_mangle]
pub unsafe extern "C" fn eddy_model_set_state_bits(model: *mut EddyModel, bits: c_int) -> EddyStatus {
    // SAFETY: forwarded caller contract.
    let m = match unsafe { model_mut(model) } {
        Ok(m) => m,
        Err(status) => return status,
    };
    let Some(format) = u32::try_from(bits).ok().and_then(StateFormat::from_bits) else {
        return EddyStatus::BadOption;
    };
    match m.set_state_format(format) {
        Ok(()) => EddyStatus::Ok,
        Err(e) => model_status(e),
    }
}

/// Bytes of state a session of `model` needs (also a snapshot's size);
/// 0 if `model` is NULL or not open.
///
/// # Safety
/// `model` is NULL or points to an `eddy_model`.
#[no_mangle]
pub unsafe extern "C" fn eddy_model_state_bytes(model: *const EddyModel) -> usize {
    // SAFETY: forwarded caller contract.
    unsafe { model_ref(model) }.map(|m| m.state_bytes()).unwrap_or(0)
}

/// Bytes of scratch a session of `model` needs; 0 if `model` is NULL or
/// not open.
///
/// # Safety
/// `model` is NULL or points to an `eddy_model`.
#[no_mangle]
pub unsafe extern "C" fn eddy_model_scratch_bytes(model: *const EddyModel) -> usize {
    // SAFETY: forwarded caller contract.
    unsafe { model_ref(model) }.map(|m| m.scratch_bytes()).unwrap_or(0)
}

/// Vocabulary size (number of logits); 0 if `model` is NULL or not open.
///
/// # Safety
/// `model` is NULL or points to an `eddy_model`.
#[no_mangle]
pub unsafe extern "C" fn eddy_model_vocab_size(model: *const EddyModel) -> usize {
    // SAFETY: forwarded caller contract.
    unsafe { model_ref(model) }.map(|m| m.vocab_size()).unwrap_or(0)
}

/// Write the name of the kernel set running the model's matrix products
/// (e.g. `scalar`, `dsp`, `helium`, `avx2`) to `buf` as a NUL-terminated
/// string, truncated to `len - 1` bytes; returns the name's full length
/// (like `snprintf`), 0 if `model` is NULL or not open.
///
/// # Safety
/// `model` is NULL or points to an `eddy_model`; `buf` is NULL or points
/// to `len` writable bytes.
#[no_mangle]
pub unsafe extern "C" fn eddy_model_kernels(model: *const EddyModel, buf: *mut c_char, len: usize) -> usize {
    // SAFETY: forwarded caller contract.
    let Ok(m) = (unsafe { model_ref(model) }) else { return 0 };
    let name = m.kernels().name.as_bytes();
    if !buf.is_null() && len > 0 {
        let n = name.len().min(len - 1);
        // SAFETY: `buf` has `len` writable bytes and `n + 1 <= len`.
        unsafe {
            core::ptr::copy_nonoverlapping(name.as_ptr(), buf as *mut u8, n);
            *buf.add(n) = 0;
        }
    }
    name.len()
}

/// Start a session of `model` in caller memory: `state` (at least
/// `eddy_model_state_bytes`) and `scratch` (at least
/// `eddy_model_scratch_bytes`), both 4-byte aligned. The state starts
/// empty.
///
/// # Safety
/// `session` is NULL or writable `eddy_session` storage; `model` is NULL
/// or an `eddy_model`; `state`/`scratch` are NULL or point to
/// `state_len`/`scratch_len` writable bytes, used by nothing else while
/// the session lives, that outlive the session.
#[no_mangle]
pub unsafe extern "C" fn eddy_session_init(
    session: *mut EddySession,
    model: *const EddyModel,
    state: *mut u8,
    state_len: usize,
    scratch: *mut u8,
    scratch_len: usize,
) -> EddyStatus {
    // SAFETY: NULL or writable storage, per the caller.
    let Some(storage) = (unsafe { session.as_mut() }) else { return EddyStatus::NullPointer };
    storage.opaque[SESSION_WORDS - 1] = 0;
    // SAFETY: forwarded caller contract.
    let m = match unsafe { model_ref(model) } {
        Ok(m) => m,
        Err(e) => return e,
    };
    if state.is_null() || scratch.is_null() {
        return EddyStatus::NullPointer;
    }
    // SAFETY: both point to that many writable bytes, exclusively the
    // session's, outliving it (caller contract).
    let (st, sc) = unsafe {
        (
            core::slice::from_raw_parts_mut(state, state_len),
            core::slice::from_raw_parts_mut(scratch, scratch_len),
        )
    };
    match Session::new(m, st, sc) {
        Ok(s) => {
            // SAFETY: the storage is large and aligned enough (compile-time
            // checks above) and exclusively ours here.
            unsafe { (storage.opaque.as_mut_ptr() as *mut CSession).write(s) };
            storage.opaque[SESSION_WORDS - 1] = SESSION_MAGIC;
            EddyStatus::Ok
        }
        Err(e) => session_status(e),
    }
}

/// Feed one token. On success `*logits` (if not NULL) points to the
/// `*n_logits` (if not NULL) logits for the next token, valid until the
/// next call on this session.
///
/// # Safety
/// `session` is NULL or an `eddy_session`; `logits` and `n_logits` are
/// NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn eddy_session_step(
    session: *mut EddySession,
    token: u32,
    logits: *mut *const f32,
    n_logits: *mut usize,
) -> EddyStatus {
    // SAFETY: forwarded caller contract.
    let s = match unsafe { session_mut(session) } {
        Ok(s) => s,
        Err(e) => return e,
    };
    // SAFETY: forwarded caller contract.
    unsafe { logits_status(s.step(token), logits, n_logits) }
}

/// Feed `n_tokens` prompt tokens; logits as for `eddy_session_step`, after
/// the last token. All tokens are checked first: on error nothing changed.
///
/// # Safety
/// `session` is NULL or an `eddy_session`; `tokens` is NULL or points to
/// `n_tokens` readable ids; `logits`/`n_logits` are NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn eddy_session_prefill(
    session: *mut EddySession,
    tokens: *const u32,
    n_tokens: usize,
    logits: *mut *const f32,
    n_logits: *mut usize,
) -> EddyStatus {
    // SAFETY: forwarded caller contract.
    let s = match unsafe { session_mut(session) } {
        Ok(s) => s,
        Err(e) => return e,
    };
    if n_tokens == 0 {
        return EddyStatus::EmptyPrompt;
    }
    if tokens.is_null() {
        return EddyStatus::NullPointer;
    }
    // SAFETY: `tokens` points to `n_tokens` readable ids (caller contract).
    let ids = unsafe { core::slice::from_raw_parts(tokens, n_tokens) };
    // Token by token in the session's own scratch: `Session::prefill`
    // batches through an allocated chunk scratch when eddy's `alloc`
    // feature is on (e.g. unified in a workspace build), and this API
    // allocates nothing.
    let result = s.prefill_with(ids, |_, _| {}, false).map(|()| s.logits());
    // SAFETY: forwarded caller contract.
    unsafe { logits_status(result, logits, n_logits) }
}

/// Forget all context (position 0, empty state).
///
/// # Safety
/// `session` is NULL or an `eddy_session`.
#[no_mangle]
pub unsafe extern "C" fn eddy_session_reset(session: *mut EddySession) -> EddyStatus {
    // SAFETY: forwarded caller contract.
    match unsafe { session_mut(session) } {
        Ok(s) => {
            s.reset();
            EddyStatus::Ok
        }
        Err(e) => e,
    }
}

/// Tokens consumed since init, reset or restore, in `*position`.
///
/// # Safety
/// `session` is NULL or an `eddy_session`; `position` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn eddy_session_position(session: *mut EddySession, position: *mut u64) -> EddyStatus {
    // SAFETY: forwarded caller contract.
    let s = match unsafe { session_mut(session) } {
        Ok(s) => s,
        Err(e) => return e,
    };
    // SAFETY: NULL or writable, per the caller.
    match unsafe { position.as_mut() } {
        Some(p) => {
            *p = s.position();
            EddyStatus::Ok
        }
        None => EddyStatus::NullPointer,
    }
}

/// Copy the session's complete state (`eddy_model_state_bytes` bytes) to
/// `out`, which holds `out_len` bytes, to resume later with
/// `eddy_session_restore`.
///
/// # Safety
/// `session` is NULL or an `eddy_session`; `out` is NULL or points to
/// `out_len` writable bytes.
#[no_mangle]
pub unsafe extern "C" fn eddy_session_snapshot(
    session: *mut EddySession,
    out: *mut u8,
    out_len: usize,
) -> EddyStatus {
    // SAFETY: forwarded caller contract.
    let s = match unsafe { session_mut(session) } {
        Ok(s) => s,
        Err(e) => return e,
    };
    if out.is_null() {
        return EddyStatus::NullPointer;
    }
    let snap = s.snapshot();
    if out_len < snap.len() {
        return EddyStatus::BufferTooSmall;
    }
    // SAFETY: `out` has at least `snap.len()` writable bytes (checked) and
    // cannot overlap the session's state, which the session owns.
    unsafe { core::ptr::copy_nonoverlapping(snap.as_ptr(), out, snap.len()) };
    EddyStatus::Ok
}

/// Restore a snapshot of `len` bytes taken from a session of the same
/// model. On error the session is unchanged.
///
/// # Safety
/// `session` is NULL or an `eddy_session`; `snapshot` is NULL or points to
/// `len` readable bytes.
#[no_mangle]
pub unsafe extern "C" fn eddy_session_restore(
    session: *mut EddySession,
    snapshot: *const u8,
    len: usize,
) -> EddyStatus {
    // SAFETY: forwarded caller contract.
    let s = match unsafe { session_mut(session) } {
        Ok(s) => s,
        Err(e) => return e,
    };
    if snapshot.is_null() {
        return EddyStatus::NullPointer;
    }
    // SAFETY: `snapshot` points to `len` readable bytes (caller contract).
    let snap = unsafe { core::slice::from_raw_parts(snapshot, len) };
    match s.restore(snap) {
        Ok(()) => EddyStatus::Ok,
        Err(e) => session_status(e),
    }
}

/// A static, NUL-terminated English message for a status code (also for
/// codes this library does not know).
#[no_mangle]
pub extern "C" fn eddy_status_message(status: c_int) -> *const c_char {
    STATUS_MESSAGES
        .iter()
        .find(|(s, _)| *s as c_int == status)
        .map_or(c"unknown eddy status code".as_ptr(), |(_, m)| m.as_ptr())
}

/// Without std (Cortex-M firmware linking the static library) a panic,
/// which would be a bug since the runtime does not panic on input, stops
/// in a loop a debugger can see.
#[cfg(all(not(feature = "std"), not(test)))]
#[panic_handler]
fn panic(_: &core::panic::PanicInfo) -> ! {
    loop {
        core::hint::spin_loop();
    }
}
