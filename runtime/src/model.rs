//! A loaded model: a validated file bound to its architecture.

use crate::arch::Architecture;
use crate::attention::KvCacheOptions;
use crate::error::ModelError;
use crate::families::{map_family, with_family, Inner};
use crate::family::{Compute, Family};
use crate::file::{BlobKind, EddyFile};
use crate::parallel::Workers;
use crate::schema::TensorSpec;
use crate::state_store::{StateFormat, StateSize};
use eddy_kernels::Kernels;

/// Words at the start of the state buffer: magic (naming the state format),
/// tag (model checksum mixed with the KV cache options), and the
/// 64-bit count of tokens consumed. They make a snapshot self-describing.
pub const STATE_HEADER_WORDS: usize = 4;

/// A model used in place from borrowed bytes (mmap, flash, `include_bytes!`).
#[derive(Clone, Copy, Debug)]
pub struct Model<'a> {
    file: EddyFile<'a>,
    pub(crate) inner: Inner<'a>,
    state_format: StateFormat,
    /// State buffer words in `state_format`, header included.
    state_words: usize,
    /// Step scratch words, the state working area included.
    scratch_words: usize,
    /// Words at the end of the scratch: one layer's state as f32 (0 for f32 state).
    work_words: usize,
    kernels: &'static Kernels,
    workers: Workers<'a>,
}

impl<'a> Model<'a> {
    /// Validate `bytes` (64-byte aligned) as a `.eddy` file, including its
    /// checksum, and bind it to its architecture. Never copies or allocates.
    pub fn from_bytes(bytes: &'a [u8]) -> Result<Self, ModelError> {
        Self::from_file(EddyFile::parse(bytes)?)
    }

    /// Bind an already parsed file.
    pub fn from_file(file: EddyFile<'a>) -> Result<Self, ModelError> {
        let inner = Inner::load(file)?;
        let mut model = Model {
            file,
            inner,
            state_format: StateFormat::F32,
            state_words: 0,
            scratch_words: 0,
            work_words: 0,
            kernels: eddy_kernels::best(),
            workers: Workers::single(),
        };
        model.set_state_format(StateFormat::F32)?;
        Ok(model)
    }

    /// Store the recurrent state of sessions of this model in `format`
    /// (f32 by default): Q8/Q4 shrink [`state_bytes`](Self::state_bytes)
    /// (and snapshots) at some cost in quality (README, "Quantized
    /// state"); [`scratch_bytes`](Self::scratch_bytes) grows by one
    /// layer's f32 state. KV caches of attention layers stay as their
    /// [`KvCacheOptions`] say. Sizes overflowing memory are `SizeOverflow`.
    pub fn set_state_format(&mut self, format: StateFormat) -> Result<(), ModelError> {
        let sizes = Self::sizes(&self.inner, format)?;
        (self.state_words, self.scratch_words, self.work_words) = sizes;
        self.state_format = format;
        Ok(())
    }

    /// This model with its sessions' state stored in `format` (see
    /// [`set_state_format`](Self::set_state_format)).
    pub fn with_state_format(mut self, format: StateFormat) -> Result<Self, ModelError> {
        self.set_state_format(format)?;
        Ok(self)
    }

    /// How sessions of this model store their recurrent state.
    pub fn state_format(&self) -> StateFormat {
        self.state_format
    }

    /// Bytes of per-sequence state a session of this model would need in
    /// `format` (header included); `None` if it overflows.
    pub fn state_bytes_in(&self, format: StateFormat) -> Option<usize> {
        let size =
            with_family!(&self.inner, m => StateSize::of(format, m.state_layers(), |i| m.state_parts(i)))?;
        size.stored.checked_add(STATE_HEADER_WORDS)?.checked_mul(4)
    }

    /// State words in `format` (with the session header), scratch words
    /// (with the state working area) and working-area words of a family.
    pub(crate) fn sizes(inner: &Inner<'a>, format: StateFormat) -> Result<(usize, usize, usize), ModelError> {
        let (size, scratch) = with_family!(inner, m => (
            StateSize::of(format, m.state_layers(), |i| m.state_parts(i)),
            m.scratch_words(),
        ));
        let size = size.ok_or(ModelError::SizeOverflow)?;
        let state_words = size
            .stored
            .checked_add(STATE_HEADER_WORDS)
            .filter(|w| w.checked_mul(4).is_some())
            .ok_or(ModelError::SizeOverflow)?;
        let scratch_words = scratch
            .and_then(|w| w.checked_add(size.work))
            .filter(|w| w.checked_mul(4).is_some())
            .ok_or(ModelError::SizeOverflow)?;
        Ok((state_words, scratch_words, size.work))
    }

    /// The word a session stores to tie its state to this model and its
    /// state layout: the file checksum, mixed with the KV cache options so
    /// that a snapshot of one cache layout never restores into another of
    /// the same byte length. (The state format is word 0, the magic.)
    pub(crate) fn state_tag(&self) -> u32 {
        let Some(kv) = self.kv_cache() else { return self.file.checksum() };
        let mut h = crc32fast::Hasher::new();
        for word in [kv.format.code(), kv.sinks, kv.window] {
            h.update(&word.to_le_bytes());
        }
        self.file.checksum() ^ h.finalize()
    }

    /// KV cache options of the attention layers; `None` for models
    /// without attention.
    pub fn kv_cache(&self) -> Option<KvCacheOptions> {
        with_family!(&self.inner, m => m.kv_cache())
    }

    /// The same model with the attention layers caching keys and values as
    /// `options` say (format, sinks, window); the state format is kept.
    /// This changes [`state_bytes`](Self::state_bytes), so sessions and
    /// snapshots of the old options do not fit. Models without attention
    /// layers are returned unchanged.
    pub fn with_kv_cache(&self, options: KvCacheOptions) -> Result<Self, ModelError> {
        let inner = map_family!(&self.inner, m => m.with_kv_cache(options));
        let (state_words, scratch_words, work_words) = Self::sizes(&inner, self.state_format)?;
        Ok(Model { inner, state_words, scratch_words, work_words, ..*self })
    }

    /// LM-Infinite's distance limit of the attention layers (`None`: off,
    /// the default, or a model without attention).
    pub fn kv_distance_limit(&self) -> Option<u32> {
        with_family!(&self.inner, m => m.kv_distance_limit())
    }

    /// The same model with attention scoring any key further back than
    /// `limit` tokens as if it were exactly `limit` back (LM-Infinite;
    /// set it to the trained context to stream past it; `None`: off).
    /// The cache layout and state are unchanged, so sessions and
    /// snapshots stay valid; scratch grows by a few words. A limit of 0 is
    /// `BadKvDistanceLimit`. Models without attention layers are returned
    /// unchanged.
    pub fn with_kv_distance_limit(&self, limit: Option<u32>) -> Result<Self, ModelError> {
        let inner = map_family!(&self.inner, m => m.with_kv_distance_limit(limit));
        let (state_words, scratch_words, work_words) = Self::sizes(&inner, self.state_format)?;
        Ok(Model { inner, state_words, scratch_words, work_words, ..*self })
    }

    /// The kernel set running this model's matrix products (chosen once at
    /// load: the best this CPU supports).
    pub fn kernels(&self) -> &'static Kernels {
        self.kernels
    }

    /// Use another kernel set (e.g. `eddy_kernels::SCALAR` to compare).
    /// Every set computes bit-identical results.
    pub fn set_kernels(&mut self, kernels: &'static Kernels) {
        self.kernels = kernels;
    }

    /// Where matrix work runs (one thread unless set otherwise).
    pub fn workers(&self) -> Workers<'a> {
        self.workers
    }

    /// Split matrix work across `workers` (e.g. `Workers::threads(2)?`).
    /// Results are bit-identical for any thread count. An offload device
    /// already set stays set unless `workers` brings its own.
    pub fn set_workers(&mut self, workers: Workers<'a>) {
        self.workers = match (self.workers.offload(), workers.offload()) {
            (Some(dev), None) => workers.with_offload(dev),
            _ => workers,
        };
    }

    /// Offer every integer matrix product (and the scan, if the device has
    /// one) to `device` first; what it declines runs on the CPU. Keeps the
    /// thread setting.
    pub fn set_offload(&mut self, device: &'a dyn crate::offload::Offload) {
        self.workers = self.workers.with_offload(device);
    }

    /// Bytes of extra scratch a batched prefill of chunks of up to `tokens`
    /// tokens needs (see `Session::prefill_batched`); with `all_logits`
    /// the logits of every token are kept, else only the last one's.
    /// `None` if the size overflows.
    pub fn prefill_scratch_bytes(&self, tokens: usize, all_logits: bool) -> Option<usize> {
        let words = with_family!(&self.inner, m => m.prefill_scratch_words(tokens.max(1), all_logits))?;
        words.checked_mul(4)
    }

    /// The underlying file.
    pub fn file(&self) -> &EddyFile<'a> {
        &self.file
    }

    /// The model family.
    pub fn architecture(&self) -> Architecture {
        self.file.architecture()
    }

    /// Vocabulary size (length of the logits).
    pub fn vocab_size(&self) -> usize {
        with_family!(&self.inner, m => m.vocab_size())
    }

    /// The selective scan the model offers an offload device with a scan
    /// unit (see [`Offload::scan`](crate::offload::Offload::scan)); `None`
    /// for families that offer none.
    pub fn offload_scan_shape(&self) -> Option<crate::offload::ScanShape> {
        with_family!(&self.inner, m => m.offload_scan_shape())
    }

    /// Visit the model's canonical tensor list in file order (what each
    /// tensor is: a matrix any format may store, or an f32 parameter).
    pub fn visit_schema(&self, mut visit: impl FnMut(TensorSpec)) {
        with_family!(&self.inner, m => m.visit_schema(&mut visit))
    }

    /// The kernels and workers, as the families take them.
    pub(crate) fn compute(&self) -> Compute<'a> {
        Compute { kernels: self.kernels, workers: self.workers }
    }

    /// Bytes of per-sequence state a session needs (constant for any
    /// sequence length) in this model's [`state_format`](Self::state_format).
    /// This is also the size of a snapshot.
    pub fn state_bytes(&self) -> usize {
        self.state_words * 4
    }

    /// Bytes of scratch a session needs for `step`/`prefill`.
    pub fn scratch_bytes(&self) -> usize {
        self.scratch_words * 4
    }

    /// Words at the end of the step scratch where one layer's state is
    /// worked on as f32 (0 for f32 state).
    pub(crate) fn state_work_words(&self) -> usize {
        self.work_words
    }

    /// Where the logits live in the scratch buffer, in f32 words.
    pub(crate) fn logits_offset_words(&self) -> usize {
        with_family!(&self.inner, m => m.logits_offset_words())
    }

    /// The embedded Hugging Face `tokenizer.json`, if the file has one.
    pub fn tokenizer_json(&self) -> Option<&'a [u8]> {
        self.file.blob(BlobKind::TokenizerJson)
    }

    /// The chat template and special tokens stored at conversion (JSON), if
    /// the file has them; files converted before they were stored have none.
    pub fn chat_template_json(&self) -> Option<&'a [u8]> {
        self.file.blob(BlobKind::ChatTemplate)
    }
}

/// Failure to open a model from a path.
#[cfg(feature = "std")]
#[derive(Debug)]
pub enum OpenError {
    /// The file could not be opened or mapped.
    Io {
        /// The path.
        path: std::path::PathBuf,
        /// The cause.
        error: std::io::Error,
    },
    /// The file's contents are not a usable model.
    Model(ModelError),
}

#[cfg(feature = "std")]
impl core::fmt::Display for OpenError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            OpenError::Io { path, error } => write!(f, "cannot read {}: {error}", path.display()),
            OpenError::Model(e) => write!(f, "{e}"),
        }
    }
}

#[cfg(feature = "std")]
impl std::error::Error for OpenError {}

/// A model file memory-mapped from disk (read-only, page aligned).
#[cfg(feature = "std")]
pub struct MappedModel {
    map: memmap2::Mmap,
}

#[cfg(feature = "std")]
impl MappedModel {
    /// Map `path` and validate it completely (including the checksum).
    pub fn open(path: impl AsRef<std::path::Path>) -> Result<Self, OpenError> {
        let path = path.as_ref();
        let io = |error| OpenError::Io { path: path.to_path_buf(), error };
        // Opening a FIFO for reading would block until a writer comes; a
        // directory or device is never a model.
        if std::fs::metadata(path).is_ok_and(|m| !m.is_file()) {
            let error = std::io::Error::new(std::io::ErrorKind::InvalidInput, "not a regular file");
            return Err(io(error));
        }
        let file = std::fs::File::open(path).map_err(io)?;
        // SAFETY: the map is read-only; eddy's own tools never modify a model
        // file in place (they write a new file and rename it).
        let map = unsafe { memmap2::Mmap::map(&file) }.map_err(io)?;
        Model::from_bytes(&map).map_err(OpenError::Model)?;
        Ok(MappedModel { map })
    }

    /// The model, borrowed from the map (structure re-validated, checksum
    /// already verified by `open`).
    pub fn model(&self) -> Result<Model<'_>, ModelError> {
        Model::from_file(EddyFile::parse_without_checksum(&self.map)?)
    }

    /// The raw file bytes.
    pub fn bytes(&self) -> &[u8] {
        &self.map
    }
}
