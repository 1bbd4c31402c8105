//! Classic recurrent networks: stacked GRU or LSTM layers between a token
//! embedding and a linear head, with PyTorch's `nn.GRU`/`nn.LSTM` gate
//! equations and gate order (GRU: r, z, n; LSTM: i, f, g, o).
//!
//! Prefill is batched layer by layer: a layer's input-to-hidden product
//! for every token of the chunk is one matrix-matrix product (weights read
//! once); only the hidden-to-hidden product is sequential.

use crate::arch::HParam;
use crate::error::ModelError;
use crate::family::{checked_total, observe_input, Carver, ChunkLogits, Compute, Family, Observer};
use crate::file::EddyFile;
use crate::linear::{ActScratch, BatchActScratch, Linear};
use crate::schema::{check_schema, dim, flag, TensorCursor, TensorKind, TensorSpec, MAX_DIM};
use crate::state_store::{StatePart, StateParts, StateStore};
use eddy_kernels::Kernels;

/// Which cell the layers use.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Cell {
    /// Gated recurrent unit (3 gates, state `h`).
    Gru,
    /// Long short-term memory (4 gates, state `h` and `c`).
    Lstm,
}

impl Cell {
    /// Gate blocks in the stacked weight matrices.
    pub fn gates(self) -> usize {
        match self {
            Cell::Gru => 3,
            Cell::Lstm => 4,
        }
    }

    /// State vectors of width `hidden` per layer.
    pub fn state_vectors(self) -> usize {
        match self {
            Cell::Gru => 1,
            Cell::Lstm => 2,
        }
    }
}

/// Hyper-parameters of a GRU/LSTM language model.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RnnConfig {
    /// GRU or LSTM.
    pub cell: Cell,
    /// Vocabulary size.
    pub vocab_size: u32,
    /// Embedding width (input of the first layer).
    pub input_dim: u32,
    /// Hidden width of every layer.
    pub hidden: u32,
    /// Number of stacked layers.
    pub n_layer: u32,
    /// Layers carry `bias_ih`/`bias_hh`.
    pub layer_bias: bool,
    /// The head carries a bias.
    pub head_bias: bool,
}

impl RnnConfig {
    /// Read and check the hyper-parameters of a file.
    pub fn from_file(file: &EddyFile<'_>, cell: Cell) -> Result<Self, ModelError> {
        Ok(RnnConfig {
            cell,
            vocab_size: dim(file, HParam::VocabSize, MAX_DIM)?,
            input_dim: dim(file, HParam::InputDim, MAX_DIM)?,
            hidden: dim(file, HParam::DModel, MAX_DIM)?,
            n_layer: dim(file, HParam::NLayer, 4096)?,
            layer_bias: flag(file, HParam::ProjBias)?,
            head_bias: flag(file, HParam::HeadBias)?,
        })
    }

    fn gate_rows(&self) -> usize {
        self.cell.gates() * self.hidden as usize
    }

    fn max_cols(&self) -> usize {
        (self.input_dim as usize).max(self.hidden as usize)
    }

    /// f32 words of state: `h` (and `c`) of every layer.
    pub fn state_words(&self) -> Option<usize> {
        (self.cell.state_vectors() * self.hidden as usize).checked_mul(self.n_layer as usize)
    }

    /// Step scratch sizes: input, gi, gh, logits, activation codes.
    fn step_sizes(&self) -> [Option<usize>; 5] {
        let g = self.gate_rows();
        [
            Some(self.max_cols()),
            Some(g),
            Some(g),
            Some(self.vocab_size as usize),
            Some(ActScratch::words(self.max_cols())),
        ]
    }

    /// Prefill scratch sizes for `n` tokens: inputs, outputs, gi rows, gh,
    /// logits rows, batch activations, single-token activations.
    fn prefill_sizes(&self, n: usize, logit_rows: usize) -> [Option<usize>; 7] {
        let (h, g, mc) = (self.hidden as usize, self.gate_rows(), self.max_cols());
        [
            n.checked_mul(mc),
            n.checked_mul(h),
            n.checked_mul(g),
            Some(g),
            logit_rows.checked_mul(self.vocab_size as usize),
            n.checked_mul(mc + 2 * mc.div_ceil(32)).map(|_| BatchActScratch::words(mc, n)),
            Some(ActScratch::words(h)),
        ]
    }
}

/// Visit the canonical tensor list of a GRU/LSTM model in file order.
pub fn tensor_schema(c: &RnnConfig, visit: &mut dyn FnMut(TensorSpec)) {
    use TensorKind::{Matrix, F32};
    let (v, e, h, g) = (c.vocab_size as u64, c.input_dim as u64, c.hidden as u64, c.gate_rows() as u64);
    visit(TensorSpec::global("embed.weight", v, e, Matrix));
    for i in 0..c.n_layer {
        let input = if i == 0 { e } else { h };
        visit(TensorSpec::layer("layers.{i}.weight_ih", i, g, input, Matrix));
        if c.layer_bias {
            visit(TensorSpec::layer("layers.{i}.bias_ih", i, 1, g, F32));
        }
        visit(TensorSpec::layer("layers.{i}.weight_hh", i, g, h, Matrix));
        if c.layer_bias {
            visit(TensorSpec::layer("layers.{i}.bias_hh", i, 1, g, F32));
        }
    }
    visit(TensorSpec::global("head.weight", v, h, Matrix));
    if c.head_bias {
        visit(TensorSpec::global("head.bias", 1, v, F32));
    }
}

/// A loaded, validated GRU/LSTM model.
#[derive(Clone, Copy, Debug)]
pub struct Rnn<'a> {
    /// Hyper-parameters.
    pub config: RnnConfig,
    file: EddyFile<'a>,
}

struct LayerWeights<'a> {
    ih: Linear<'a>,
    hh: Linear<'a>,
}

impl<'a> Rnn<'a> {
    /// Bind a parsed file of a GRU or LSTM model.
    pub fn load(file: EddyFile<'a>, cell: Cell) -> Result<Self, ModelError> {
        let config = RnnConfig::from_file(&file, cell)?;
        config.state_words().ok_or(ModelError::SizeOverflow)?;
        checked_total(&config.step_sizes()).ok_or(ModelError::SizeOverflow)?;
        check_schema(&file, |visit| tensor_schema(&config, visit))?;
        Ok(Rnn { config, file })
    }

    fn per_layer(&self) -> u32 {
        2 + 2 * self.config.layer_bias as u32
    }

    fn embed(&self) -> Linear<'a> {
        TensorCursor::at(&self.file, 0).linear(false)
    }

    fn layer(&self, i: u32) -> LayerWeights<'a> {
        let mut t = TensorCursor::at(&self.file, 1 + i * self.per_layer());
        let bias = self.config.layer_bias;
        LayerWeights { ih: t.linear(bias), hh: t.linear(bias) }
    }

    fn head(&self) -> Linear<'a> {
        TensorCursor::at(&self.file, 1 + self.config.n_layer * self.per_layer()).linear(self.config.head_bias)
    }

    /// Apply the cell's gate equations: `gi`/`gh` are the input and hidden
    /// products (biases included); updates `state` (`h`, then `c`).
    fn update(&self, kernels: &Kernels, gi: &[f32], gh: &[f32], state: &mut [f32]) {
        let h = self.config.hidden as usize;
        match self.config.cell {
            Cell::Gru => (kernels.gru_gates)(gi, gh, &mut state[..h]),
            Cell::Lstm => (kernels.lstm_gates)(gi, gh, &mut state[..2 * h]),
        }
    }
}

impl<'a> Family<'a> for Rnn<'a> {
    fn vocab_size(&self) -> usize {
        self.config.vocab_size as usize
    }

    fn state_layers(&self) -> usize {
        self.config.n_layer as usize
    }

    /// `h` (and `c` for LSTM), one row each: the whole state is coded.
    fn state_parts(&self, _layer: usize) -> StateParts {
        let rows = self.config.cell.state_vectors();
        StateParts::new([StatePart::Coded { rows, cols: self.config.hidden as usize }])
    }

    fn scratch_words(&self) -> Option<usize> {
        checked_total(&self.config.step_sizes())
    }

    fn logits_offset_words(&self) -> usize {
        let s = self.config.step_sizes();
        s[..3].iter().map(|v| v.unwrap_or(0)).sum()
    }

    fn visit_schema(&self, visit: &mut dyn FnMut(TensorSpec)) {
        tensor_schema(&self.config, visit)
    }

    fn step<'s>(
        &self,
        token: u32,
        state: &mut StateStore<'_>,
        scratch: &'s mut [f32],
        want_logits: bool,
        cx: Compute<'_>,
        mut observe: Option<Observer<'_>>,
    ) -> &'s [f32] {
        let c = &self.config;
        let (e, h) = (c.input_dim as usize, c.hidden as usize);
        let sizes = c.step_sizes().map(|s| s.unwrap_or(0));
        let mut carve = Carver::new(scratch);
        let input = carve.take(sizes[0]);
        let gi = carve.take(sizes[1]);
        let gh = carve.take(sizes[2]);
        let logits = carve.take(sizes[3]);
        let act = &mut ActScratch::from_words(carve.take(sizes[4]), c.max_cols());

        self.embed().row(token as usize, &mut input[..e]);
        let mut width = e;
        let mut layers = state.layers();
        for i in 0..c.n_layer {
            let w = self.layer(i);
            let mut layer = layers.next(self.state_parts(i as usize));
            let layer_state = layer.words();
            observe_input(&mut observe, &w.ih, &input[..width]);
            w.ih.matvec(&input[..width], gi, act, cx.kernels, cx.workers);
            observe_input(&mut observe, &w.hh, &layer_state[..h]);
            w.hh.matvec(&layer_state[..h], gh, act, cx.kernels, cx.workers);
            self.update(cx.kernels, gi, gh, layer_state);
            // The next layer gets the exact new `h`; only the carried state is coded.
            input[..h].copy_from_slice(&layer_state[..h]);
            layer.end_token();
            width = h;
        }
        if want_logits {
            let head = self.head();
            observe_input(&mut observe, &head, &input[..h]);
            head.matvec(&input[..h], logits, act, cx.kernels, cx.workers);
        }
        logits
    }

    fn prefill_scratch_words(&self, tokens: usize, all_logits: bool) -> Option<usize> {
        let rows = if all_logits { tokens } else { 1 };
        checked_total(&self.config.prefill_sizes(tokens, rows))
    }

    fn prefill_chunk<'s>(
        &self,
        tokens: &[u32],
        state: &mut StateStore<'_>,
        scratch: &'s mut [f32],
        wanted: ChunkLogits,
        cx: Compute<'_>,
    ) -> &'s [f32] {
        let c = &self.config;
        let n = tokens.len();
        let (e, h, mc) = (c.input_dim as usize, c.hidden as usize, c.max_cols());
        let logit_rows = wanted.rows(n);
        let sizes = c.prefill_sizes(n, wanted.layout_rows(n)).map(|s| s.unwrap_or(0));
        let mut carve = Carver::new(scratch);
        let inputs = carve.take(sizes[0]);
        let outputs = carve.take(sizes[1]);
        let gi = carve.take(sizes[2]);
        let gh = carve.take(sizes[3]);
        let logits = carve.take(sizes[4]);
        let batch_act = &mut BatchActScratch::from_words(carve.take(sizes[5]), mc, n);
        let act = &mut ActScratch::from_words(carve.take(sizes[6]), h);
        let g = c.gate_rows();

        for (&token, row) in tokens.iter().zip(inputs.chunks_exact_mut(e)) {
            self.embed().row(token as usize, row);
        }
        let mut width = e;
        let mut layers = state.layers();
        for i in 0..c.n_layer {
            let w = self.layer(i);
            let mut layer = layers.next(self.state_parts(i as usize));
            // Every token's input product at once; then the recurrence.
            w.ih.matmat(&inputs[..n * width], &mut gi[..n * g], n, batch_act, cx.kernels, cx.workers);
            for (t, out) in outputs.chunks_exact_mut(h).enumerate() {
                let layer_state = layer.words();
                w.hh.matvec(&layer_state[..h], gh, act, cx.kernels, cx.workers);
                self.update(cx.kernels, &gi[t * g..(t + 1) * g], gh, layer_state);
                out.copy_from_slice(&layer_state[..h]);
                layer.end_token();
            }
            inputs[..n * h].copy_from_slice(&outputs[..n * h]);
            width = h;
        }
        let first = n - logit_rows;
        self.head().matmat(
            &inputs[first * h..n * h],
            &mut logits[..logit_rows * c.vocab_size as usize],
            logit_rows,
            batch_act,
            cx.kernels,
            cx.workers,
        );
        logits
    }
}
