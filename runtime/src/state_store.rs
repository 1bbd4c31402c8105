//! How a session keeps its recurrent state between steps: as f32, or with
//! the large tensors (SSM states, head matrices) coded to 8 or 4 bits per
//! value with one f32 scale per group ([`eddy_quant::StateBits`]).
//!
//! A family describes each layer's state as a short list of
//! [`StatePart`]s in its f32 layout: `Exact` words stay f32 in every
//! format (conv windows, token-shift vectors: small, and read by batched
//! prefill directly from the previous token's row), `Coded` matrices are
//! quantized along their rows. A step or chunk walks the layers in order:
//!
//! ```text
//! let mut layers = state.layers();
//! for i in 0..n_layer {
//!     let mut layer = layers.next(self.state_parts(i)); // decoded to f32
//!     for each token {
//!         ... update layer.words() (the layer's f32 layout) ...
//!         layer.end_token(); // coded parts stored; words now hold exactly
//!                            // what was stored
//!     }
//! } // dropping `layer` stores its exact parts
//! ```
//!
//! With [`StateFormat::F32`] `words()` is the state buffer itself and both
//! calls do nothing; so it is for a layer without `Coded` parts in any
//! format (its stored layout is its f32 layout: a KV cache, a convolution
//! window), which is worked on in place and never copied. Otherwise, with
//! Q8/Q4, the layer is decoded into a working area of one layer's f32
//! words (at the end of the session's scratch) and coded back after every
//! token, so a batched prefill sees after each token exactly what a step
//! would decode: prefill stays bit-identical to stepping.
//!
//! Words before the first layer that every format keeps as f32 (a hybrid's
//! token position) are a layer of one `Exact` part, taken for the whole
//! walk with [`StateLayers::take_exact`].
//!
//! # Stored layout of a layer (Q8/Q4)
//!
//! Parts follow each other in order, each a whole number of f32 words:
//! an `Exact(w)` part is `w` f32 words; a `Coded { rows, cols }` part is
//! the codes of every row, then the scales. Each row is split into groups
//! of [`STATE_GROUP`] values (the last group of a row may be shorter);
//! a row's codes take `(cols / G) * code_bytes(G) + code_bytes(cols % G)`
//! bytes, rows follow each other, the code bytes are padded with zeros to
//! a multiple of 4, then come `rows * ceil(cols / G)` f32 scales (row by
//! row, group by group).

use eddy_quant::{dequantize_state_group, requantize_state_group, StateBits};

/// Values per scale group of a coded state row (rows shorter than this
/// are one group). Chosen by measuring test perplexity on the trained
/// models (BENCHMARKS.md, "State storage").
pub const STATE_GROUP: usize = 32;

/// How a session stores its recurrent state between steps.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum StateFormat {
    /// Every value as f32 (exact; the default).
    #[default]
    F32,
    /// Large state tensors as 8-bit codes with one f32 scale per group.
    Q8,
    /// Large state tensors as 4-bit codes with one f32 scale per group.
    Q4,
}

impl StateFormat {
    /// Every format, widest first.
    pub const ALL: [StateFormat; 3] = [StateFormat::F32, StateFormat::Q8, StateFormat::Q4];

    /// The format storing `bits` bits per value (32, 8 or 4), if any.
    pub fn from_bits(bits: u32) -> Option<Self> {
        match bits {
            32 => Some(StateFormat::F32),
            8 => Some(StateFormat::Q8),
            4 => Some(StateFormat::Q4),
            _ => None,
        }
    }

    /// Bits per value of the coded parts (32 for f32).
    pub fn bits(self) -> u32 {
        match self {
            StateFormat::F32 => 32,
            StateFormat::Q8 => 8,
            StateFormat::Q4 => 4,
        }
    }

    /// Short name: `f32`, `q8`, `q4`.
    pub fn name(self) -> &'static str {
        match self {
            StateFormat::F32 => "f32",
            StateFormat::Q8 => "q8",
            StateFormat::Q4 => "q4",
        }
    }

    /// The codec of the coded parts (`None` for f32).
    pub(crate) fn codec(self) -> Option<StateBits> {
        match self {
            StateFormat::F32 => None,
            StateFormat::Q8 => Some(StateBits::Eight),
            StateFormat::Q4 => Some(StateBits::Four),
        }
    }

    /// Word 0 of a state buffer (and snapshot) in this format: `EDST`
    /// (f32, unchanged from before quantized state existed), `EDQ8`, `EDQ4`.
    pub(crate) fn magic(self) -> u32 {
        u32::from_le_bytes(match self {
            StateFormat::F32 => *b"EDST",
            StateFormat::Q8 => *b"EDQ8",
            StateFormat::Q4 => *b"EDQ4",
        })
    }

    /// The format whose state magic is `word`, if any.
    pub(crate) fn from_magic(word: u32) -> Option<Self> {
        Self::ALL.into_iter().find(|f| f.magic() == word)
    }
}

impl core::fmt::Display for StateFormat {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(self.name())
    }
}

/// One piece of a layer's state, in the order of the family's f32 layout.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum StatePart {
    /// f32 words kept exactly in every format.
    Exact(usize),
    /// A `rows x cols` row-major f32 matrix, coded along rows in Q8/Q4.
    Coded {
        /// Rows.
        rows: usize,
        /// Values per row.
        cols: usize,
    },
}

impl StatePart {
    /// f32 words in the family's layout.
    fn words(self) -> Option<usize> {
        match self {
            StatePart::Exact(w) => Some(w),
            StatePart::Coded { rows, cols } => rows.checked_mul(cols),
        }
    }

    /// Words stored in `format` (`None` on overflow).
    fn stored_words(self, format: StateFormat) -> Option<usize> {
        match (self, format.codec()) {
            (StatePart::Coded { rows, cols }, Some(bits)) => {
                let code_words = rows.checked_mul(row_code_bytes(bits, cols))?.div_ceil(4);
                code_words.checked_add(rows.checked_mul(cols.div_ceil(STATE_GROUP))?)
            }
            _ => self.words(),
        }
    }
}

/// Code bytes of one row of `cols` values.
fn row_code_bytes(bits: StateBits, cols: usize) -> usize {
    (cols / STATE_GROUP) * bits.code_bytes(STATE_GROUP) + bits.code_bytes(cols % STATE_GROUP)
}

/// Most parts a layer's state has.
const MAX_PARTS: usize = 4;

/// The parts of one layer's state (at most four).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct StateParts {
    parts: [StatePart; MAX_PARTS],
    len: usize,
}

impl StateParts {
    /// The layer's state is `parts`, in this order.
    pub(crate) fn new<const N: usize>(parts: [StatePart; N]) -> Self {
        const { assert!(N <= MAX_PARTS, "a layer's state has at most MAX_PARTS parts") };
        let mut all = [StatePart::Exact(0); MAX_PARTS];
        all[..N].copy_from_slice(&parts);
        StateParts { parts: all, len: N }
    }

    /// The parts in order.
    fn each(self) -> impl Iterator<Item = StatePart> {
        self.parts.into_iter().take(self.len)
    }

    /// Whether any part is coded in Q8/Q4 (otherwise the layer is stored
    /// as f32 in every format and worked on in place).
    fn has_coded(&self) -> bool {
        self.each().any(|p| matches!(p, StatePart::Coded { .. }))
    }

    /// The format the layer is actually kept in: `format`, or f32 for a
    /// layer without coded parts (the same bytes either way).
    fn effective(&self, format: StateFormat) -> StateFormat {
        if self.has_coded() {
            format
        } else {
            StateFormat::F32
        }
    }

    /// f32 words of the layer in the family's layout.
    pub(crate) fn words(&self) -> Option<usize> {
        self.each().try_fold(0usize, |acc, p| acc.checked_add(p.words()?))
    }

    /// Words the layer takes in the state buffer in `format`.
    pub(crate) fn stored_words(&self, format: StateFormat) -> Option<usize> {
        self.each().try_fold(0usize, |acc, p| acc.checked_add(p.stored_words(format)?))
    }
}

/// Sizes of a model's state in one format, in f32 words.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct StateSize {
    /// The state buffer after the session header.
    pub stored: usize,
    /// The f32 working area a step needs in scratch: the largest layer
    /// with coded parts (0 for f32 or without coded parts).
    pub work: usize,
}

impl StateSize {
    /// Sizes of `layers` layers described by `parts` (`None` on overflow).
    pub(crate) fn of(
        format: StateFormat,
        layers: usize,
        parts: impl Fn(usize) -> StateParts,
    ) -> Option<Self> {
        let mut size = StateSize { stored: 0, work: 0 };
        for i in 0..layers {
            let p = parts(i);
            size.stored = size.stored.checked_add(p.stored_words(format)?)?;
            if p.effective(format) != StateFormat::F32 {
                size.work = size.work.max(p.words()?);
            }
        }
        Some(size)
    }
}

/// A session's state body (after the header) and the working area, for
/// one step or chunk.
pub(crate) struct StateStore<'s> {
    format: StateFormat,
    body: &'s mut [f32],
    work: &'s mut [f32],
}

impl<'s> StateStore<'s> {
    /// `body` is the stored state, `work` at least one layer's f32 words
    /// (unused for f32), both sized by [`StateSize::of`] (the session checks).
    pub(crate) fn new(format: StateFormat, body: &'s mut [f32], work: &'s mut [f32]) -> Self {
        StateStore { format, body, work }
    }

    /// Walk the layers from the first.
    pub(crate) fn layers(&mut self) -> StateLayers<'_> {
        StateLayers { format: self.format, rest: &mut *self.body, work: &mut *self.work }
    }
}

/// The layers of a state, opened one after the other.
pub(crate) struct StateLayers<'c> {
    format: StateFormat,
    rest: &'c mut [f32],
    work: &'c mut [f32],
}

impl StateLayers<'_> {
    /// The next layer's state, laid out as `parts`; decoded to f32 if the
    /// format is quantized and the layer has coded parts.
    pub(crate) fn next(&mut self, parts: StateParts) -> LayerState<'_> {
        let format = parts.effective(self.format);
        let stored_words = parts.stored_words(format).unwrap_or(0);
        let rest = core::mem::take(&mut self.rest);
        let (stored, rest) = rest.split_at_mut(stored_words.min(rest.len()));
        self.rest = rest;
        let work_words = match format.codec() {
            Some(_) => parts.words().unwrap_or(0).min(self.work.len()),
            None => 0,
        };
        let mut layer = LayerState { format, parts, stored, work: &mut self.work[..work_words] };
        layer.decode();
        layer
    }
}

impl<'c> StateLayers<'c> {
    /// The next layer, whose parts must be just `[Exact(words)]`, for the
    /// rest of the walk: its stored words are its f32 words in every
    /// format, so it is handed out in place and can stay open while later
    /// layers are (a hybrid's position, read before and written after the
    /// layers).
    pub(crate) fn take_exact(&mut self, words: usize) -> &'c mut [f32] {
        let rest = core::mem::take(&mut self.rest);
        let (taken, rest) = rest.split_at_mut(words.min(rest.len()));
        self.rest = rest;
        taken
    }
}

/// One layer's state while a step or chunk runs it.
pub(crate) struct LayerState<'l> {
    format: StateFormat,
    parts: StateParts,
    stored: &'l mut [f32],
    work: &'l mut [f32],
}

/// A part with its words in the family's layout and in the stored layer.
type Span = (StatePart, core::ops::Range<usize>, core::ops::Range<usize>);

impl LayerState<'_> {
    /// The layer's state in the family's f32 layout.
    pub(crate) fn words(&mut self) -> &mut [f32] {
        match self.format {
            StateFormat::F32 => self.stored,
            _ => self.work,
        }
    }

    /// True if [`end_token`](Self::end_token) does nothing (the f32
    /// format): the layer's tokens may then be run in any grouping, e.g. a
    /// prefill that scans channel blocks over all tokens.
    pub(crate) fn codes_nothing(&self) -> bool {
        self.format.codec().is_none()
    }

    /// Call after each token's update of the coded parts: stores them and
    /// replaces them in [`words`](Self::words) by exactly the stored values.
    pub(crate) fn end_token(&mut self) {
        let Some(bits) = self.format.codec() else { return };
        for (part, work, stored) in self.spans() {
            if let StatePart::Coded { rows, cols } = part {
                let work = &mut self.work[work];
                for_each_group(bits, rows, cols, &mut self.stored[stored], |values, codes, scale| {
                    *scale = requantize_state_group(bits, &mut work[values], codes);
                });
            }
        }
    }

    /// Every part with where it lives (a fixed, short list).
    fn spans(&self) -> impl Iterator<Item = Span> {
        let (format, mut at_work, mut at_stored) = (self.format, 0usize, 0usize);
        self.parts.each().map(move |part| {
            let (words, stored) = (part.words().unwrap_or(0), part.stored_words(format).unwrap_or(0));
            let span = (part, at_work..at_work + words, at_stored..at_stored + stored);
            (at_work, at_stored) = (at_work + words, at_stored + stored);
            span
        })
    }

    /// Fill the working area from the stored state.
    fn decode(&mut self) {
        let Some(bits) = self.format.codec() else { return };
        for (part, work, stored) in self.spans() {
            let (work, stored) = (&mut self.work[work], &mut self.stored[stored]);
            match part {
                StatePart::Exact(_) => work.copy_from_slice(stored),
                StatePart::Coded { rows, cols } => {
                    for_each_group(bits, rows, cols, stored, |values, codes, scale| {
                        dequantize_state_group(bits, codes, *scale, &mut work[values]);
                    });
                }
            }
        }
    }
}

impl Drop for LayerState<'_> {
    /// Store the exact parts (`end_token` stored the coded ones).
    fn drop(&mut self) {
        if self.format == StateFormat::F32 {
            return;
        }
        for (part, work, stored) in self.spans() {
            if let StatePart::Exact(_) = part {
                self.stored[stored].copy_from_slice(&self.work[work]);
            }
        }
    }
}

/// Call `f(values, codes, scale)` for every group of a coded part stored
/// in `stored` (layout in the module docs): `values` is the range of the
/// group's values in the part's f32 layout.
fn for_each_group(
    bits: StateBits,
    rows: usize,
    cols: usize,
    stored: &mut [f32],
    mut f: impl FnMut(core::ops::Range<usize>, &mut [u8], &mut f32),
) {
    let row_bytes = row_code_bytes(bits, cols);
    let code_words = (rows * row_bytes).div_ceil(4);
    let (codes, scales) = stored.split_at_mut(code_words);
    let codes: &mut [u8] = bytemuck::cast_slice_mut(codes);
    let mut scales = scales.iter_mut();
    for (r, row_codes) in codes.chunks_exact_mut(row_bytes.max(1)).take(rows).enumerate() {
        let mut at = 0usize;
        let mut byte = 0usize;
        while at < cols {
            let len = STATE_GROUP.min(cols - at);
            let n = bits.code_bytes(len);
            let Some(scale) = scales.next() else { return };
            f(r * cols + at..r * cols + at + len, &mut row_codes[byte..byte + n], scale);
            at += len;
            byte += n;
        }
    }
}
