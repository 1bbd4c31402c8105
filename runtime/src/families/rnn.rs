//! Classic recurrent networks: stacked GRU or LSTM layers between a token
//! embedding and a linear head, with PyTorch's `nn.GRU`/`nn.LSTM` gate
//! equations and gate order (GRU: r, z, n; LSTM: i, f, g, o).
//!
//! Prefill is batched layer by layer: a layer's input-to-hidden product
//! for every token of the chunk is one matrix-matrix product (weights read
//! once); only the hidden-to-hidden product is sequential.

use crate::arch::{Architecture, HParam};
use crate::error::{FileError, ModelError};
use crate::family::{layer_major_family, observe_input, scratch_rows, ProductScratch, RunCtx};
use crate::file::EddyFile;
use crate::linear::{ActScratch, Linear};
use crate::schema::{dim, flag, TensorCursor, TensorKind, TensorSpec, MAX_DIM};
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
    /// Read and check the hyper-parameters of a file; its architecture
    /// (GRU or LSTM) names the cell.
    pub fn from_file(file: &EddyFile<'_>) -> Result<Self, ModelError> {
        let cell = match file.architecture() {
            Architecture::Gru => Cell::Gru,
            Architecture::Lstm => Cell::Lstm,
            other => return Err(ModelError::File(FileError::UnknownArchitecture(other.code()))),
        };
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

    /// Scratch sizes for `n` tokens (1 for a step): inputs, outputs, gi
    /// rows, gh, logits rows, the hidden product's activations (one token
    /// at a time), the chunk's activations.
    fn sizes(&self, n: usize, logit_rows: usize) -> [Option<usize>; 7] {
        let (h, g, mc) = (self.hidden as usize, self.gate_rows(), self.max_cols());
        [
            n.checked_mul(mc),
            n.checked_mul(h),
            n.checked_mul(g),
            Some(g),
            logit_rows.checked_mul(self.vocab_size as usize),
            Some(ActScratch::words(h)),
            ProductScratch::words(mc, n),
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

struct LayerWeights<'a> {
    ih: Linear<'a>,
    hh: Linear<'a>,
}

scratch_rows! {
    /// Per-token vectors of a chunk, `n` rows each (1 for a step); `gh` and
    /// `hh_act` serve one token at a time.
    Rows { inputs, outputs, gi, gh, logits, hh_act }
}

impl<'a> Rnn<'a> {
    /// Widest input of any matrix (activation scratch).
    fn max_cols(&self) -> usize {
        self.config.max_cols()
    }

    /// `h` (and `c` for LSTM), one row each: the whole state is coded.
    fn layer_parts(&self, _layer: usize) -> StateParts {
        let rows = self.config.cell.state_vectors();
        StateParts::new([StatePart::Coded { rows, cols: self.config.hidden as usize }])
    }

    fn per_layer(&self) -> u32 {
        2 + 2 * self.config.layer_bias as u32
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

    /// Run `tokens` through all layers, layer by layer (a step is a chunk
    /// of one): every token's input product at once, then the recurrence
    /// token by token. Leaves the logits of the last `logit_rows` tokens.
    fn run(&self, tokens: &[u32], state: &mut StateStore<'_>, r: &mut Rows<'_>, rc: &mut RunCtx<'_, '_, '_>) {
        let c = &self.config;
        let n = tokens.len();
        let (e, h, g) = (c.input_dim as usize, c.hidden as usize, c.gate_rows());
        // One token at a time, so the hidden product is a matvec in a chunk too.
        let mut hh_act = ProductScratch::One(ActScratch::from_words(r.hh_act, h));
        self.embed().rows_into(tokens, r.inputs);
        let mut width = e;
        let mut layers = state.layers();
        for i in 0..c.n_layer {
            let w = self.layer(i);
            let mut layer = layers.next(self.layer_parts(i as usize));
            rc.project(&w.ih, &r.inputs[..n * width], &mut r.gi[..n * g], n);
            for (gi, out) in r.gi[..n * g].chunks_exact(g).zip(r.outputs.chunks_exact_mut(h)) {
                let layer_state = layer.words();
                observe_input(rc.observe, &w.hh, &layer_state[..h]);
                hh_act.apply(&w.hh, &layer_state[..h], r.gh, 1, rc.cx);
                self.update(rc.cx.kernels, gi, r.gh, layer_state);
                // The next layer gets the exact new `h`; only the carried state is coded.
                out.copy_from_slice(&layer_state[..h]);
                layer.end_token();
            }
            r.inputs[..n * h].copy_from_slice(&r.outputs[..n * h]);
            width = h;
        }
        let rows = rc.logit_rows;
        if rows == 0 {
            return;
        }
        let logits = &mut r.logits[..rows * c.vocab_size as usize];
        rc.project_head(&self.head(), &r.inputs[(n - rows) * h..n * h], logits, rows);
    }
}

layer_major_family!(
    /// A loaded, validated GRU/LSTM model.
    Rnn,
    config = RnnConfig,
    logits_slot = 4
);
