//! The one interface every model family implements, and what they share.
//!
//! A family is a module of [`crate::families`] with a loaded-model
//! type implementing [`Family`]: sizes of its state and scratch, one
//! token step, and a chunked prefill. [`Model`](crate::Model) dispatches
//! to it; [`Session`](crate::Session) owns the buffers and checks input.

use crate::linear::{ActScratch, BatchActScratch, Linear};
use crate::parallel::Workers;
use crate::schema::TensorSpec;
use crate::state_store::{StateParts, StateStore};
use eddy_kernels::Kernels;

/// Where matrix work runs: the kernel set and the workers.
#[derive(Clone, Copy)]
pub(crate) struct Compute<'k> {
    /// Kernels for matrix products.
    pub kernels: &'k Kernels,
    /// Threads to split them across (and the offload device, if any).
    pub workers: Workers<'k>,
}

/// Receives the input of every linear layer before it is multiplied, with
/// the weight tensor's canonical name (calibration statistics): one vector
/// when stepping, the chunk's rows (`rows x cols`, row-major) in a batched
/// prefill.
pub type Observer<'o> = &'o mut dyn FnMut(&str, &[f32]);

/// Hand `x`, the input of `linear`, to the observer.
#[inline]
pub(crate) fn observe_input(observe: &mut Option<Observer<'_>>, linear: &Linear<'_>, x: &[f32]) {
    if let Some(o) = observe {
        o(linear.weight.name, x);
    }
}

/// The logits a prefill chunk computes: none (a chunk before the prompt's
/// last), the last token's, or every token's (perplexity).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ChunkLogits {
    /// No logits: the head (often the largest matrix) is skipped.
    None,
    /// The chunk's last token's.
    Last,
    /// Every token's.
    All,
}

impl ChunkLogits {
    /// Rows of logits computed for a chunk of `tokens`.
    pub(crate) fn rows(self, tokens: usize) -> usize {
        match self {
            ChunkLogits::None => 0,
            ChunkLogits::Last => tokens.min(1),
            ChunkLogits::All => tokens,
        }
    }

    /// Rows of logits the scratch layout holds (as sized by
    /// `prefill_scratch_words`).
    pub(crate) fn layout_rows(self, tokens: usize) -> usize {
        if self == ChunkLogits::All {
            tokens
        } else {
            1
        }
    }
}

/// One prefill chunk's work: the tokens, the state they advance, the
/// scratch (sized by `prefill_scratch_words`) and which logits to return.
pub(crate) struct Chunk<'c, 'st, 's> {
    /// The chunk's tokens, each `< vocab_size`.
    pub tokens: &'c [u32],
    /// The state the tokens advance.
    pub state: &'c mut StateStore<'st>,
    /// Scratch, where the logits are left.
    pub scratch: &'s mut [f32],
    /// Which logits rows to compute.
    pub logits: ChunkLogits,
}

/// A loaded model of one family. Buffers passed in are sized by the
/// methods here (the session checks); tokens are `< vocab_size`.
pub(crate) trait Family<'a> {
    /// Length of the logits.
    fn vocab_size(&self) -> usize;

    /// Layers that hold state, in the order `step` opens them.
    fn state_layers(&self) -> usize;

    /// The parts of layer `layer`'s state in the family's f32 layout: its
    /// large matrices `Coded` (stored quantized in Q8/Q4), small vectors
    /// `Exact` (see [`crate::state_store`]).
    fn state_parts(&self, layer: usize) -> StateParts;

    /// f32 words of scratch a step needs; `None` on overflow.
    fn scratch_words(&self) -> Option<usize>;

    /// Where `step` leaves the logits in its scratch, in f32 words.
    fn logits_offset_words(&self) -> usize;

    /// Visit the canonical tensor list in file order.
    fn visit_schema(&self, visit: &mut dyn FnMut(TensorSpec));

    /// The selective scan this family offers an offload device (`None`:
    /// it offers none).
    fn offload_scan_shape(&self) -> Option<crate::offload::ScanShape> {
        None
    }

    /// KV cache options of the attention layers (`None`: no attention).
    fn kv_cache(&self) -> Option<crate::attention::KvCacheOptions> {
        None
    }

    /// The same model with other KV cache options; families without
    /// attention layers return themselves unchanged.
    fn with_kv_cache(
        &self,
        _options: crate::attention::KvCacheOptions,
    ) -> Result<Self, crate::error::ModelError>
    where
        Self: Sized + Copy,
    {
        Ok(*self)
    }

    /// LM-Infinite's distance limit of the attention layers (`None`: off
    /// or no attention).
    fn kv_distance_limit(&self) -> Option<u32> {
        None
    }

    /// The same model with another distance limit; families without
    /// attention layers return themselves unchanged.
    fn with_kv_distance_limit(&self, _limit: Option<u32>) -> Result<Self, crate::error::ModelError>
    where
        Self: Sized + Copy,
    {
        Ok(*self)
    }

    /// Advance the state by one token; if `want_logits`, return the logits
    /// (a slice of `scratch` at `logits_offset_words`). Open each layer's
    /// state with `state.layers()` and call `end_token` after its update.
    fn step<'s>(
        &self,
        token: u32,
        state: &mut StateStore<'_>,
        scratch: &'s mut [f32],
        want_logits: bool,
        cx: Compute<'_>,
        observe: Option<Observer<'_>>,
    ) -> &'s [f32];

    /// f32 words of scratch `prefill_chunk` needs for up to `tokens`
    /// tokens. The default (token-by-token prefill) needs the step scratch
    /// and room for the logits rows.
    fn prefill_scratch_words(&self, tokens: usize, all_logits: bool) -> Option<usize> {
        let rows = if all_logits { tokens } else { 1 };
        self.scratch_words()?.checked_add(rows.checked_mul(self.vocab_size())?)
    }

    /// Advance `chunk.state` by `chunk.tokens`; return the logits
    /// `chunk.logits` asks for (every token's, the last one's or none), row-major. Must be
    /// bit-identical to calling `step` per token. The default steps token
    /// by token; families override it to batch the matrix work (calling
    /// the layer's `end_token` after every token's recurrence, as a step
    /// does, keeps them bit-identical with quantized state).
    fn prefill_chunk<'s>(&self, chunk: Chunk<'_, '_, 's>, cx: Compute<'_>) -> &'s [f32] {
        self.step_chunk(chunk, cx, None)
    }

    /// The default prefill: [`step`](Self::step) per token (each seen by
    /// `observe`, if any), copying the logits rows the chunk asks for.
    fn step_chunk<'s>(
        &self,
        chunk: Chunk<'_, '_, 's>,
        cx: Compute<'_>,
        mut observe: Option<Observer<'_>>,
    ) -> &'s [f32] {
        let Chunk { tokens, state, scratch, logits } = chunk;
        let vocab = self.vocab_size();
        let Some(step_words) = self.scratch_words() else {
            return &[];
        };
        let (step_scratch, rows) = scratch.split_at_mut(step_words);
        let n = tokens.len();
        let first = n - logits.rows(n);
        for (i, &t) in tokens.iter().enumerate() {
            let want = i >= first;
            // Reborrowed per token (the trait object's lifetime shortened).
            let token_observe: Option<Observer<'_>> = match &mut observe {
                Some(o) => Some(&mut **o),
                None => None,
            };
            let out = self.step(t, state, step_scratch, want, cx, token_observe);
            if want {
                let row = i - first;
                rows[row * vocab..(row + 1) * vocab].copy_from_slice(&out[..vocab]);
            }
        }
        &rows[..logits.rows(n) * vocab]
    }

    /// [`prefill_chunk`](Self::prefill_chunk) handing the inputs of every
    /// linear layer to `observe` (all the chunk's rows of one product in one
    /// call, `rows x cols` row-major) before they are multiplied: the batched
    /// hook of calibration. The batched families observe the LM head's
    /// inputs without computing the logits (and return none); the default
    /// steps token by token.
    #[cfg(feature = "alloc")]
    fn prefill_chunk_observed<'s>(
        &self,
        chunk: Chunk<'_, '_, 's>,
        cx: Compute<'_>,
        observe: Observer<'_>,
    ) -> &'s [f32] {
        self.step_chunk(chunk, cx, Some(observe))
    }
}

/// Hands out consecutive pieces of a scratch buffer (a layout computed by
/// the family; the session already checked the total length).
pub(crate) struct Carver<'s> {
    rest: &'s mut [f32],
}

impl<'s> Carver<'s> {
    /// Carve from `buffer`.
    pub(crate) fn new(buffer: &'s mut [f32]) -> Self {
        Carver { rest: buffer }
    }

    /// The next `n` words (fewer if the buffer is short, which the size
    /// checks rule out).
    pub(crate) fn take(&mut self, n: usize) -> &'s mut [f32] {
        let rest = core::mem::take(&mut self.rest);
        let (piece, rest) = rest.split_at_mut(n.min(rest.len()));
        self.rest = rest;
        piece
    }
}

/// `buffer` cut at the increasing word offsets `starts` (the first
/// usually 0) into `N` consecutive pieces, the last running to the end:
/// the named buffers of a family's scratch layout in one place.
pub(crate) fn split_at_starts<const N: usize>(buffer: &mut [f32], starts: [usize; N]) -> [&mut [f32]; N] {
    let mut carver = Carver::new(buffer);
    carver.take(starts.first().copied().unwrap_or(0));
    core::array::from_fn(|i| match starts.get(i + 1) {
        Some(&end) => carver.take(end.saturating_sub(starts[i])),
        None => carver.take(usize::MAX),
    })
}

/// Sum of sizes, `None` on overflow.
pub(crate) fn checked_total(sizes: &[Option<usize>]) -> Option<usize> {
    sizes.iter().try_fold(0usize, |acc, s| acc.checked_add((*s)?))
}

/// What the layers of a step or a chunk run with, passed down as one:
/// where matrix work runs, the activation scratch of the products, and the
/// calibration observer (steps only).
pub(crate) struct RunCtx<'r, 's, 'o> {
    /// Kernels and workers.
    pub cx: Compute<'r>,
    /// Activation scratch for the chunk's (or step's) products.
    pub acts: &'r mut ProductScratch<'s>,
    /// Receives the input of every product (calibration).
    pub observe: &'r mut Option<Observer<'o>>,
    /// Rows of logits the run leaves: the last tokens' (0: none).
    pub logit_rows: usize,
    /// Observe the LM head's input rows without multiplying them
    /// (calibration's batched pass, which needs no logits).
    pub head_inputs_only: bool,
}

impl RunCtx<'_, '_, '_> {
    /// `ys[t] = l(xs[t])` for the `n` rows of `xs`, which the observer
    /// sees first.
    #[inline]
    pub(crate) fn project(&mut self, l: &Linear<'_>, xs: &[f32], ys: &mut [f32], n: usize) {
        if self.observe.is_some() {
            // Exactly the `n` input rows, whatever the buffer's capacity.
            observe_input(self.observe, l, &xs[..(n * l.cols()).min(xs.len())]);
        }
        self.acts.apply(l, xs, ys, n, self.cx);
    }

    /// `ys[i] = ls[i](xs)` for matrices that all read the `n` rows of
    /// `xs`. A step quantizes `xs` once and hands every row to the workers
    /// at once ([`Linear::matvec_fused`]); a chunk (or a calibration
    /// observer) projects them one by one. Same values either way.
    pub(crate) fn project_fused<const N: usize>(
        &mut self,
        ls: [&Linear<'_>; N],
        xs: &[f32],
        ys: [&mut [f32]; N],
        n: usize,
    ) {
        if let (1, None, ProductScratch::One(scratch)) = (n, &*self.observe, &mut *self.acts) {
            Linear::matvec_fused(ls, xs, ys, scratch, self.cx.kernels, self.cx.workers);
            return;
        }
        for (l, y) in ls.into_iter().zip(ys) {
            self.project(l, xs, y, n);
        }
    }

    /// [`project`](Self::project) for the LM head: with
    /// `head_inputs_only`, the observer sees its inputs and `ys` is left
    /// as it is (the head is often the largest matrix).
    #[inline]
    pub(crate) fn project_head(&mut self, l: &Linear<'_>, xs: &[f32], ys: &mut [f32], n: usize) {
        if self.head_inputs_only {
            observe_input(self.observe, l, &xs[..(n * l.cols()).min(xs.len())]);
            return;
        }
        self.project(l, xs, ys, n);
    }
}

/// The final RMSNorm and LM head of a pre-norm residual stack.
pub(crate) struct RmsHead<'a> {
    /// RMSNorm weight.
    pub norm: &'a [f32],
    /// RMSNorm epsilon.
    pub eps: f32,
    /// The LM head.
    pub head: Linear<'a>,
}

impl<'a> RmsHead<'a> {
    /// The final norm at tensor `index` of `file`, then the LM head: the
    /// next tensor, or the embedding (tensor 0) if `tied`.
    pub(crate) fn at(file: &crate::file::EddyFile<'a>, index: u32, eps: f32, tied: bool) -> Self {
        let mut t = crate::schema::TensorCursor::at(file, index);
        let norm = t.f32();
        let head =
            if tied { crate::schema::TensorCursor::at(file, 0).linear(false) } else { t.linear(false) };
        RmsHead { norm, eps, head }
    }

    /// The logits of the last `rc.logit_rows` rows of `x` (rows of
    /// `width` values) into `logits`, their normed rows in `normed`.
    pub(crate) fn logits(
        &self,
        x: &[f32],
        width: usize,
        normed: &mut [f32],
        logits: &mut [f32],
        rc: &mut RunCtx<'_, '_, '_>,
    ) {
        let logit_rows = rc.logit_rows;
        let first = x.len() / width - logit_rows;
        crate::ops::rms_norm_rows(&x[first * width..], self.norm, self.eps, normed);
        let vocab = self.head.rows();
        rc.project_head(
            &self.head,
            &normed[..logit_rows * width],
            &mut logits[..logit_rows * vocab],
            logit_rows,
        );
    }
}

/// Activation scratch for one token's matvec or a chunk's matmat, so one
/// code path serves `step` and `prefill_chunk` with per-token identical
/// results.
pub(crate) enum ProductScratch<'s> {
    /// A single token (`Linear::matvec`).
    One(ActScratch<'s>),
    /// A chunk of tokens (`Linear::matmat`).
    Chunk(BatchActScratch<'s>),
}

impl ProductScratch<'_> {
    /// `ys[t] = l(xs[t])` for the `n` tokens of `xs`.
    pub(crate) fn apply(&mut self, l: &Linear<'_>, xs: &[f32], ys: &mut [f32], n: usize, cx: Compute<'_>) {
        match self {
            ProductScratch::One(a) => l.matvec(xs, ys, a, cx.kernels, cx.workers),
            ProductScratch::Chunk(a) => l.matmat(xs, ys, n, a, cx.kernels, cx.workers),
        }
    }

    /// f32 words for `n` tokens of up to `max_cols` inputs (`None` on
    /// overflow).
    pub(crate) fn words(max_cols: usize, n: usize) -> Option<usize> {
        if n <= 1 {
            Some(ActScratch::words(max_cols))
        } else {
            // BatchActScratch::words is unchecked; bound its largest term.
            n.checked_mul(max_cols.checked_mul(2)?).map(|_| BatchActScratch::words(max_cols, n))
        }
    }

    /// Carve for `n` tokens (as sized by [`words`](Self::words)).
    pub(crate) fn carve<'s>(carver: &mut Carver<'s>, max_cols: usize, n: usize) -> ProductScratch<'s> {
        let words = carver.take(Self::words(max_cols, n).unwrap_or(0));
        if n <= 1 {
            ProductScratch::One(ActScratch::from_words(words, max_cols))
        } else {
            ProductScratch::Chunk(BatchActScratch::from_words(words, max_cols, n))
        }
    }
}

/// Declares a family's per-token row buffers: the struct `$name<'s>`, each
/// field a `&'s mut [f32]` of `n` rows, and `$name::carve(carver, sizes)`,
/// which takes the fields in declaration order, sized by `sizes` in the
/// same order.
macro_rules! scratch_rows {
    ($(#[$doc:meta])* $name:ident { $($field:ident),+ $(,)? }) => {
        $(#[$doc])*
        struct $name<'s> {
            $($field: &'s mut [f32],)+
        }

        impl<'s> $name<'s> {
            /// Take every buffer from `carver`, sized by `sizes` in field order.
            fn carve(carver: &mut $crate::family::Carver<'s>, sizes: &[usize]) -> Self {
                let mut sizes = sizes.iter().copied();
                $name { $($field: carver.take(sizes.next().unwrap_or(0)),)+ }
            }
        }
    };
}
pub(crate) use scratch_rows;

/// Defines the model struct (the doc comments before `$ty` are its own:
/// the config and the file, the same in every family) and implements
/// [`Family`] for a family whose step and prefill are one layer-major
/// routine over per-token rows (a step is a chunk of one token), and its
/// `load` and `embed`. The invoking module provides:
/// `$config::from_file`, `config.sizes(n, logit_rows)` (row buffer sizes in
/// carve order, the logits at `logits_slot`, the activations last),
/// `config.state_words()`, `Rows::carve(&mut Carver, &sizes)` (a struct
/// with a `logits` field, see [`scratch_rows!`]), `max_cols(&self)`,
/// `run(&self, tokens, state, rows, &mut RunCtx)` (state walked
/// as [`crate::state_store`] says), `layer_parts(&self, layer)`,
/// `config.n_layer`, `config.vocab_size` and `tensor_schema`. Hybrids
/// (`hybrid`) also provide `config.cache()`, `config.kv` and
/// `config.layer_kinds`: their position words are a state layer before the
/// model's layers. Families whose files may or may not have attention
/// layers (`optional_attention`) provide `config.state_layers()`,
/// `config.kv_cache()` and `config.with_kv_cache(options)` instead.
macro_rules! layer_major_family {
    (@state_layers $self:ident) => {
        $self.config.n_layer as usize
    };
    (@state_layers $self:ident, hybrid) => {
        $self.config.n_layer as usize + 1
    };
    (@state_layers $self:ident, optional_attention) => {
        $self.config.state_layers()
    };
    (@kv) => {};
    (@kv optional_attention) => {
        fn kv_cache(&self) -> Option<$crate::attention::KvCacheOptions> {
            self.config.kv_cache()
        }

        fn with_kv_cache(
            &self,
            options: $crate::attention::KvCacheOptions,
        ) -> Result<Self, $crate::error::ModelError> {
            let config = self.config.with_kv_cache(options)?;
            Self::check_sizes(&config)?;
            Ok(Self { config, file: self.file })
        }
    };
    (@kv hybrid) => {
        fn kv_cache(&self) -> Option<$crate::attention::KvCacheOptions> {
            self.config.layer_kinds.contains(&1).then_some(self.config.kv)
        }

        fn with_kv_cache(
            &self,
            options: $crate::attention::KvCacheOptions,
        ) -> Result<Self, $crate::error::ModelError> {
            let mut config = self.config;
            config.kv = options;
            config.cache()?;
            Self::check_sizes(&config)?;
            Ok(Self { config, file: self.file })
        }

        fn kv_distance_limit(&self) -> Option<u32> {
            self.config.kv_distance_limit
        }

        fn with_kv_distance_limit(&self, limit: Option<u32>) -> Result<Self, $crate::error::ModelError> {
            let mut config = self.config;
            config.kv_distance_limit = limit;
            config.cache()?;
            Self::check_sizes(&config)?;
            Ok(Self { config, file: self.file })
        }
    };
    ($(#[$doc:meta])* $ty:ident, config = $config:ty, logits_slot = $slot:expr $(, $hybrid:ident)?) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug)]
        pub struct $ty<'a> {
            /// Hyper-parameters.
            pub config: $config,
            file: $crate::file::EddyFile<'a>,
        }

        impl<'a> $ty<'a> {
            /// Bind a parsed file: check hyper-parameters and every tensor.
            pub fn load(file: $crate::file::EddyFile<'a>) -> Result<Self, $crate::error::ModelError> {
                let model = Self::load_header(file)?;
                $crate::schema::check_schema(&file, |visit| tensor_schema(&model.config, visit))?;
                Ok(model)
            }

            /// Bind a file's hyper-parameters and blobs only, its tensors
            /// unchecked: for sizes ([`crate::ModelSizes`]), never to run.
            pub(crate) fn load_header(
                file: $crate::file::EddyFile<'a>,
            ) -> Result<Self, $crate::error::ModelError> {
                let config = <$config>::from_file(&file)?;
                Self::check_sizes(&config)?;
                Ok(Self { config, file })
            }

            /// State and scratch sizes of `config` fit in memory.
            fn check_sizes(config: &$config) -> Result<(), $crate::error::ModelError> {
                config.state_words().ok_or($crate::error::ModelError::SizeOverflow)?;
                $crate::family::checked_total(&config.sizes(1, 1))
                    .ok_or($crate::error::ModelError::SizeOverflow)?;
                Ok(())
            }

            /// The embedding (tensor 0).
            fn embed(&self) -> $crate::linear::Linear<'a> {
                $crate::schema::TensorCursor::at(&self.file, 0).linear(false)
            }

            /// Carve the rows for `cap` tokens with room for `alloc_rows`
            /// logits rows, run `tokens`, return `logit_rows` logits rows
            /// (none with `head_inputs_only`: the head's inputs are only
            /// observed).
            #[allow(clippy::too_many_arguments)] // the Family arguments, passed through
            fn run_rows<'s>(
                &self,
                tokens: &[u32],
                state: &mut $crate::state_store::StateStore<'_>,
                scratch: &'s mut [f32],
                cap: usize,
                alloc_rows: usize,
                (logit_rows, head_inputs_only): (usize, bool),
                cx: $crate::family::Compute<'_>,
                observe: &mut Option<$crate::family::Observer<'_>>,
            ) -> &'s [f32] {
                let sizes = self.config.sizes(cap, alloc_rows).map(|s| s.unwrap_or(0));
                let mut carver = $crate::family::Carver::new(scratch);
                let mut rows = Rows::carve(&mut carver, &sizes);
                let mut acts = $crate::family::ProductScratch::carve(&mut carver, self.max_cols(), cap);
                let mut rc =
                    $crate::family::RunCtx { cx, acts: &mut acts, observe, logit_rows, head_inputs_only };
                self.run(tokens, state, &mut rows, &mut rc);
                let Rows { logits, .. } = rows;
                let returned = if head_inputs_only { 0 } else { logit_rows };
                &logits[..returned * self.config.vocab_size as usize]
            }
        }

        impl<'a> $crate::family::Family<'a> for $ty<'a> {
            fn vocab_size(&self) -> usize {
                self.config.vocab_size as usize
            }

            fn state_layers(&self) -> usize {
                $crate::family::layer_major_family!(@state_layers self $(, $hybrid)?)
            }

            fn state_parts(&self, layer: usize) -> $crate::state_store::StateParts {
                self.layer_parts(layer)
            }

            fn scratch_words(&self) -> Option<usize> {
                $crate::family::checked_total(&self.config.sizes(1, 1))
            }

            fn logits_offset_words(&self) -> usize {
                self.config.sizes(1, 1)[..$slot].iter().map(|s| s.unwrap_or(0)).sum()
            }

            fn visit_schema(&self, visit: &mut dyn FnMut($crate::schema::TensorSpec)) {
                tensor_schema(&self.config, visit)
            }

            $crate::family::layer_major_family!(@kv $($hybrid)?);

            fn step<'s>(
                &self,
                token: u32,
                state: &mut $crate::state_store::StateStore<'_>,
                scratch: &'s mut [f32],
                want_logits: bool,
                cx: $crate::family::Compute<'_>,
                mut observe: Option<$crate::family::Observer<'_>>,
            ) -> &'s [f32] {
                self.run_rows(&[token], state, scratch, 1, 1, (want_logits as usize, false), cx, &mut observe)
            }

            fn prefill_scratch_words(&self, tokens: usize, all_logits: bool) -> Option<usize> {
                let rows = if all_logits { tokens } else { 1 };
                $crate::family::checked_total(&self.config.sizes(tokens.max(2), rows))
            }

            fn prefill_chunk<'s>(
                &self,
                chunk: $crate::family::Chunk<'_, '_, 's>,
                cx: $crate::family::Compute<'_>,
            ) -> &'s [f32] {
                let $crate::family::Chunk { tokens, state, scratch, logits } = chunk;
                let n = tokens.len();
                let rows = logits.layout_rows(n);
                self.run_rows(tokens, state, scratch, n.max(2), rows, (logits.rows(n), false), cx, &mut None)
            }

            #[cfg(feature = "alloc")]
            fn prefill_chunk_observed<'s>(
                &self,
                chunk: $crate::family::Chunk<'_, '_, 's>,
                cx: $crate::family::Compute<'_>,
                observe: $crate::family::Observer<'_>,
            ) -> &'s [f32] {
                let $crate::family::Chunk { tokens, state, scratch, logits } = chunk;
                let n = tokens.len();
                let rows = logits.layout_rows(n);
                let mut observe = Some(observe);
                self.run_rows(tokens, state, scratch, n.max(2), rows, (logits.rows(n), true), cx, &mut observe)
            }
        }
    };
}
pub(crate) use layer_major_family;

/// Activation of the gate branch of a [`GatedMlp`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum GateActivation {
    /// SiLU: SwiGLU (Qwen3-Next, fla GLA, LFM2).
    Silu,
    /// GELU, tanh approximation: GeGLU (RecurrentGemma).
    GeluTanh,
}

/// The gated MLP block after a mixer: for `n` rows,
/// `x += down(act(gate(h)) * up(h))` with `h = rmsnorm(x)`.
pub(crate) struct GatedMlp<'a> {
    /// RMSNorm weight before the MLP.
    pub norm: &'a [f32],
    /// Gate projection.
    pub gate: Linear<'a>,
    /// Up projection.
    pub up: Linear<'a>,
    /// Down projection.
    pub down: Linear<'a>,
    /// Activation of the gate branch.
    pub act: GateActivation,
}

/// Row buffers [`GatedMlp::add_to`] works in, each at least `n` rows long.
pub(crate) struct MlpRows<'r> {
    /// The residual stream the block adds to, `n * d_model`.
    pub x: &'r mut [f32],
    /// Normed input, `n * d_model`.
    pub normed: &'r mut [f32],
    /// Gate activations, `n * d_ffn` (overwritten by the product).
    pub gate: &'r mut [f32],
    /// Up activations, `n * d_ffn`.
    pub up: &'r mut [f32],
    /// Down-projection output, `n * d_model`.
    pub out: &'r mut [f32],
}

impl GatedMlp<'_> {
    /// Add the block's output for `n` rows of `rows.x` to `rows.x`.
    pub(crate) fn add_to(&self, rows: MlpRows<'_>, n: usize, eps: f32, rc: &mut RunCtx<'_, '_, '_>) {
        let (dm, f) = (self.down.rows(), n * self.gate.rows());
        let (m, x) = (n * dm, rows.x);
        crate::ops::rms_norm_rows(&x[..m], self.norm, eps, rows.normed);
        let normed = &rows.normed[..m];
        let (act, silu_mul) = (self.act, rc.cx.kernels.silu_mul);
        let gate_rows = |gate: &mut [f32], up: &mut [f32]| match act {
            GateActivation::Silu => silu_mul(gate, up),
            GateActivation::GeluTanh => {
                for (g, u) in gate.iter_mut().zip(&*up) {
                    *g = crate::ops::gelu_tanh(*g) * *u;
                }
            }
        };
        let workers = rc.cx.workers;
        // A step's gate and up share one quantized input and one hand-off,
        // with the gating on each worker's rows (identical results).
        if let (1, None, ProductScratch::One(scratch)) = (n, &*rc.observe, &mut *rc.acts) {
            let ys = [&mut rows.gate[..f], &mut rows.up[..f]];
            let finish = |[gate, up]: [&mut [f32]; 2]| gate_rows(gate, up);
            Linear::matvec_fused_then(
                [&self.gate, &self.up],
                normed,
                ys,
                scratch,
                (rc.cx.kernels, workers),
                finish,
            );
            rc.project(&self.down, &rows.gate[..f], &mut rows.out[..m], n);
            crate::ops::add_assign(&mut x[..m], &rows.out[..m]);
            return;
        }
        rc.project(&self.gate, normed, &mut rows.gate[..f], n);
        rc.project(&self.up, normed, &mut rows.up[..f], n);
        if n > 1 && workers.count() > 1 {
            // Element-wise, so any split gives the same values; a chunk's
            // gating is ~8% of a one-thread LFM2 prefill, left serial it
            // bounds what the second thread can give.
            let part = f.div_ceil(workers.count());
            workers.for_chunk_pairs(&mut rows.gate[..f], part, &mut rows.up[..f], part, |_, g, u| {
                gate_rows(g, u)
            });
        } else {
            gate_rows(&mut rows.gate[..f], &mut rows.up[..f]);
        }
        rc.project(&self.down, &rows.gate[..f], &mut rows.out[..m], n);
        crate::ops::add_assign(&mut x[..m], &rows.out[..m]);
    }
}
