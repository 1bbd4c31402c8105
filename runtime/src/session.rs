//! Per-sequence state and the step/prefill/snapshot API.

use crate::error::SessionError;
use crate::families::with_family;
use crate::family::{Chunk, ChunkLogits, Family, Observer};
use crate::model::{Model, STATE_HEADER_WORDS};
use crate::state_store::{StateFormat, StateStore};

/// Tokens per batched chunk of [`Session::prefill`] (with `alloc`): enough
/// to read each weight matrix once for many tokens, small enough that the
/// chunk scratch stays a few activation rows per token.
#[cfg(feature = "alloc")]
pub const PREFILL_CHUNK: usize = 64;

/// One sequence being run through a model. `S` is the buffer type: borrowed
/// caller memory (`&mut [f32]`, no_std) or owned (`Vec<f32>`, `alloc`).
///
/// `step` and `prefill` never allocate.
pub struct Session<'m, 'a, S> {
    model: &'m Model<'a>,
    state: S,
    scratch: S,
}

/// A session that owns its buffers.
#[cfg(feature = "alloc")]
pub type OwnedSession<'m, 'a> = Session<'m, 'a, alloc::vec::Vec<f32>>;

fn cast_buffer<'s>(
    which: &'static str,
    bytes: &'s mut [u8],
    needed: usize,
) -> Result<&'s mut [f32], SessionError> {
    if bytes.len() < needed {
        return Err(SessionError::BufferTooSmall { which, needed, got: bytes.len() });
    }
    bytemuck::try_cast_slice_mut(&mut bytes[..needed]).map_err(|_| SessionError::BufferMisaligned { which })
}

impl<'m, 'a, 's> Session<'m, 'a, &'s mut [f32]> {
    /// A session in caller memory: `state` must hold at least
    /// [`Model::state_bytes`], `scratch` at least [`Model::scratch_bytes`],
    /// both 4-byte aligned. The state starts empty.
    pub fn new(
        model: &'m Model<'a>,
        state: &'s mut [u8],
        scratch: &'s mut [u8],
    ) -> Result<Self, SessionError> {
        let state = cast_buffer("state", state, model.state_bytes())?;
        let scratch = cast_buffer("scratch", scratch, model.scratch_bytes())?;
        let mut s = Session { model, state, scratch };
        s.reset();
        Ok(s)
    }
}

#[cfg(feature = "alloc")]
impl<'m, 'a> Session<'m, 'a, alloc::vec::Vec<f32>> {
    /// A session that allocates its buffers once, here (aborting if the
    /// allocator fails; [`try_new_owned`](Self::try_new_owned) reports it).
    pub fn new_owned(model: &'m Model<'a>) -> Self {
        let state = alloc::vec![0.0f32; model.state_bytes() / 4];
        let scratch = alloc::vec![0.0f32; model.scratch_bytes() / 4];
        let mut s = Session { model, state, scratch };
        s.reset();
        s
    }

    /// [`new_owned`](Self::new_owned), but an allocation failure is an
    /// [`SessionError::OutOfMemory`] naming the buffer and its size.
    pub fn try_new_owned(model: &'m Model<'a>) -> Result<Self, SessionError> {
        let state = zeroed_words("state", model.state_bytes())?;
        let scratch = zeroed_words("scratch", model.scratch_bytes())?;
        let mut s = Session { model, state, scratch };
        s.reset();
        Ok(s)
    }
}

/// `bytes / 4` zeroed words, allocated fallibly (`which` names the buffer
/// in the error).
#[cfg(feature = "alloc")]
fn zeroed_words(which: &'static str, bytes: usize) -> Result<alloc::vec::Vec<f32>, SessionError> {
    let words = bytes.div_ceil(4);
    let mut v = alloc::vec::Vec::new();
    v.try_reserve_exact(words).map_err(|_| SessionError::OutOfMemory { which, bytes })?;
    v.resize(words, 0.0);
    Ok(v)
}

impl<'m, 'a, S: AsRef<[f32]> + AsMut<[f32]>> Session<'m, 'a, S> {
    /// The model this session runs.
    pub fn model(&self) -> &'m Model<'a> {
        self.model
    }

    /// Forget all context: zero state, position 0.
    pub fn reset(&mut self) {
        let checksum = self.model.state_tag();
        let magic = self.model.state_format().magic();
        let st = self.state.as_mut();
        st.fill(0.0);
        st[0] = f32::from_bits(magic);
        st[1] = f32::from_bits(checksum);
    }

    /// The state body and the step scratch split from its working area:
    /// what a family's step or chunk runs on.
    fn parts(&mut self) -> (StateStore<'_>, &mut [f32]) {
        let format = self.model.state_format();
        let (_, body) = self.state.as_mut().split_at_mut(STATE_HEADER_WORDS);
        let scratch = self.scratch.as_mut();
        let at = scratch.len() - self.model.state_work_words();
        let (scratch, work) = scratch.split_at_mut(at);
        (StateStore::new(format, body, work), scratch)
    }

    /// Tokens consumed since the last reset (or restored snapshot).
    pub fn position(&self) -> u64 {
        let st = self.state.as_ref();
        (st[2].to_bits() as u64) | ((st[3].to_bits() as u64) << 32)
    }

    fn set_position(&mut self, p: u64) {
        let st = self.state.as_mut();
        st[2] = f32::from_bits(p as u32);
        st[3] = f32::from_bits((p >> 32) as u32);
    }

    fn check_token(&self, token: u32) -> Result<(), SessionError> {
        let vocab = self.model.vocab_size() as u32;
        if token >= vocab {
            return Err(SessionError::TokenOutOfRange { token, vocab });
        }
        Ok(())
    }

    fn advance(&mut self, token: u32, want_logits: bool) {
        self.advance_observed(token, want_logits, None);
    }

    fn advance_observed(&mut self, token: u32, want_logits: bool, observe: Option<Observer<'_>>) {
        let pos = self.position();
        let model = self.model;
        let (mut store, scratch) = self.parts();
        match observe {
            // The observer need not be `Send`: run it on this thread.
            Some(observe) => with_family!(&model.inner, m => {
                m.step(token, &mut store, scratch, want_logits, model.compute(), Some(observe));
            }),
            None => model.compute().workers.run(|| {
                with_family!(&model.inner, m => {
                    m.step(token, &mut store, scratch, want_logits, model.compute(), None);
                })
            }),
        }
        self.set_position(pos.wrapping_add(1));
    }

    /// The logits left by the last `step`/`prefill` (zeros before any).
    pub fn logits(&self) -> &[f32] {
        let vocab = self.model.vocab_size();
        let s = self.scratch.as_ref();
        let start = self.model.logits_offset_words();
        &s[start..start + vocab]
    }

    /// Feed one token; returns the logits for the next token.
    pub fn step(&mut self, token: u32) -> Result<&[f32], SessionError> {
        self.check_token(token)?;
        self.advance(token, true);
        Ok(self.logits())
    }

    /// Like [`step`](Self::step), and hands the input vector of every
    /// linear layer to `observe` (`(weight tensor name, input)`) before it
    /// is multiplied: the hook calibration uses to collect activation
    /// statistics.
    pub fn step_observed(
        &mut self,
        token: u32,
        observe: &mut impl FnMut(&str, &[f32]),
    ) -> Result<&[f32], SessionError> {
        self.check_token(token)?;
        self.advance_observed(token, true, Some(observe));
        Ok(self.logits())
    }

    /// Feed a prompt; returns the logits after its last token. All tokens are
    /// checked before any state changes, so a bad token loses nothing.
    /// With `alloc`, the prompt runs batched ([`prefill_chunked`](Self::prefill_chunked),
    /// chunks of [`PREFILL_CHUNK`] tokens, scratch allocated once per call),
    /// bit-identical to stepping; without, token by token in the session's
    /// own scratch.
    pub fn prefill(&mut self, tokens: &[u32]) -> Result<&[f32], SessionError> {
        #[cfg(feature = "alloc")]
        self.prefill_chunked(tokens, PREFILL_CHUNK, false, |_, _| {})?;
        #[cfg(not(feature = "alloc"))]
        self.prefill_with(tokens, |_, _| {}, false)?;
        Ok(self.logits())
    }

    /// Feed a prompt and hand the logits of every position to `on_logits`
    /// (`(position in tokens, logits)`), e.g. for perplexity. When
    /// `all_logits` is false only the last position's logits are computed.
    pub fn prefill_with(
        &mut self,
        tokens: &[u32],
        mut on_logits: impl FnMut(usize, &[f32]),
        all_logits: bool,
    ) -> Result<(), SessionError> {
        if tokens.is_empty() {
            return Err(SessionError::EmptyPrompt);
        }
        for &t in tokens {
            self.check_token(t)?;
        }
        let last = tokens.len() - 1;
        for (i, &t) in tokens.iter().enumerate() {
            let want = all_logits || i == last;
            self.advance(t, want);
            if want {
                on_logits(i, self.logits());
            }
        }
        Ok(())
    }

    /// Feed a prompt in chunks of `chunk` tokens, each chunk batched: every
    /// weight matrix is read once per chunk instead of once per token,
    /// which makes prompts several times faster than
    /// [`prefill_with`](Self::prefill_with), with bit-identical results.
    /// `chunk_scratch` must hold [`Model::prefill_scratch_bytes`]`(chunk,
    /// all_logits)` bytes, 4-byte aligned. `on_logits` gets `(position in
    /// tokens, logits)` for every token (`all_logits`) or the last one; the
    /// last logits are also left in [`logits`](Self::logits). All tokens
    /// are checked before any state changes.
    pub fn prefill_batched(
        &mut self,
        tokens: &[u32],
        chunk: usize,
        chunk_scratch: &mut [u8],
        all_logits: bool,
        mut on_logits: impl FnMut(usize, &[f32]),
    ) -> Result<(), SessionError> {
        if tokens.is_empty() {
            return Err(SessionError::EmptyPrompt);
        }
        for &t in tokens {
            self.check_token(t)?;
        }
        let chunk = chunk.max(1);
        let needed =
            self.model.prefill_scratch_bytes(chunk, all_logits).ok_or(SessionError::BufferTooSmall {
                which: "prefill scratch",
                needed: usize::MAX,
                got: chunk_scratch.len(),
            })?;
        let scratch = cast_buffer("prefill scratch", chunk_scratch, needed)?;
        let model = self.model;
        let vocab = model.vocab_size();
        let last_chunk = (tokens.len() - 1) / chunk;
        for (c, part) in tokens.chunks(chunk).enumerate() {
            let want = all_logits || c == last_chunk;
            // Chunks before the last compute no logits: the head is often
            // the largest matrix.
            let wanted = match (all_logits, want) {
                (true, _) => ChunkLogits::All,
                (false, true) => ChunkLogits::Last,
                (false, false) => ChunkLogits::None,
            };
            let pos = self.position();
            let (mut store, _) = self.parts();
            let cx = model.compute();
            let logits = cx.workers.run(|| {
                let chunk = Chunk { tokens: part, state: &mut store, scratch: &mut *scratch, logits: wanted };
                with_family!(&model.inner, m => m.prefill_chunk(chunk, cx))
            });
            self.set_position(pos.wrapping_add(part.len() as u64));
            if !want {
                continue;
            }
            let base = c * chunk;
            for (i, row) in logits.chunks_exact(vocab).enumerate() {
                let at = if all_logits { base + i } else { base + part.len() - 1 };
                on_logits(at, row);
            }
            if c == last_chunk {
                // Keep `logits()` meaningful after a batched prefill.
                if let Some(row) = logits.rchunks_exact(vocab).next() {
                    let start = model.logits_offset_words();
                    self.scratch.as_mut()[start..start + vocab].copy_from_slice(row);
                }
            }
        }
        Ok(())
    }

    /// [`prefill_batched`](Self::prefill_batched) with a scratch buffer
    /// allocated for this call (once per prompt, not per token).
    #[cfg(feature = "alloc")]
    pub fn prefill_chunked(
        &mut self,
        tokens: &[u32],
        chunk: usize,
        all_logits: bool,
        on_logits: impl FnMut(usize, &[f32]),
    ) -> Result<(), SessionError> {
        let chunk = chunk.clamp(1, tokens.len().max(1));
        let bytes = self
            .model
            .prefill_scratch_bytes(chunk, all_logits)
            .ok_or(SessionError::BufferTooSmall { which: "prefill scratch", needed: usize::MAX, got: 0 })?;
        let mut scratch = zeroed_words("prefill scratch", bytes)?;
        self.prefill_batched(tokens, chunk, bytemuck::cast_slice_mut(&mut scratch), all_logits, on_logits)
    }

    /// Feed `tokens` in batched chunks of `chunk` tokens (as
    /// [`prefill_chunked`](Self::prefill_chunked); the LM head's inputs of
    /// every position are observed, the logits not computed), handing the inputs of
    /// every linear layer to `observe` (`(weight tensor name, rows)`, the
    /// rows of one chunk at a time, `rows x cols` row-major) before they are
    /// multiplied: calibration statistics at prefill speed. Families
    /// without a batched prefill step token by token (one row per call).
    /// `on_chunk(tokens done)` is called after each chunk.
    #[cfg(feature = "alloc")]
    pub fn prefill_observed(
        &mut self,
        tokens: &[u32],
        chunk: usize,
        observe: &mut impl FnMut(&str, &[f32]),
        mut on_chunk: impl FnMut(usize),
    ) -> Result<(), SessionError> {
        if tokens.is_empty() {
            return Err(SessionError::EmptyPrompt);
        }
        for &t in tokens {
            self.check_token(t)?;
        }
        let chunk = chunk.clamp(1, tokens.len());
        let bytes = self.model.prefill_scratch_bytes(chunk, true).ok_or(SessionError::BufferTooSmall {
            which: "prefill scratch",
            needed: usize::MAX,
            got: 0,
        })?;
        let mut scratch = zeroed_words("prefill scratch", bytes)?;
        let model = self.model;
        let mut done = 0;
        for part in tokens.chunks(chunk) {
            let pos = self.position();
            let (mut store, _) = self.parts();
            let chunk =
                Chunk { tokens: part, state: &mut store, scratch: &mut scratch, logits: ChunkLogits::All };
            // The observer need not be `Send`: run the chunk on this thread
            // (its products still split across the workers).
            with_family!(&model.inner, m => m.prefill_chunk_observed(chunk, model.compute(), observe));
            self.set_position(pos.wrapping_add(part.len() as u64));
            done += part.len();
            on_chunk(done);
        }
        Ok(())
    }

    /// The complete state as bytes (length [`Model::state_bytes`]): save it
    /// to resume this sequence later with [`restore`](Self::restore).
    pub fn snapshot(&self) -> &[u8] {
        bytemuck::cast_slice(self.state.as_ref())
    }

    /// Restore a snapshot taken from a session of the same model with the
    /// same state format. On error the current state is left unchanged.
    pub fn restore(&mut self, snapshot: &[u8]) -> Result<(), SessionError> {
        let session = self.model.state_format();
        let st = self.state.as_mut();
        let word = |i: usize| {
            let mut b = [0u8; 4];
            b.copy_from_slice(snapshot.get(i * 4..i * 4 + 4)?);
            Some(u32::from_le_bytes(b))
        };
        // The magic names the state format: say so when only that differs.
        match word(0).and_then(StateFormat::from_magic) {
            Some(snapshot) if snapshot != session => {
                return Err(SessionError::StateFormatMismatch { snapshot, session })
            }
            Some(_) => {}
            None => return Err(SessionError::BadSnapshot),
        }
        if snapshot.len() != st.len() * 4 || word(1) != Some(self.model.state_tag()) {
            return Err(SessionError::BadSnapshot);
        }
        let word = |i: usize| word(i).unwrap_or(0);
        for (i, w) in st.iter_mut().enumerate() {
            *w = f32::from_bits(word(i));
        }
        Ok(())
    }
}
