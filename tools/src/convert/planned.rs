//! A family converter's plan for a `config.json` alone, without weights:
//! what `eddy bench --random-model` builds its files from, so a random
//! model has exactly the header, tensor list and blobs `eddy convert`
//! would write for a checkpoint of that config.

use super::{eddy_name, plan_for, Checkpoint, ConvertError, Plan};
use eddy::arch::{Architecture, HParam};
use eddy::schema::TensorSpec;
use eddy::BlobKind;
use serde_json::Value;

/// The converter's plan for a config: header words, canonical tensors in
/// file order, the checkpoint layout they would be read from, and blobs.
pub struct ConfigPlan {
    plan: Plan,
}

/// Plan the file `eddy convert` would write for a checkpoint with config
/// `cfg` whose tensors named in `declared` have those shapes. Families that
/// read dimensions from tensor shapes (LFM2's MLP width, RWKV-7, GRU/LSTM
/// prefixes) find them in `declared`; nothing else is read.
pub fn plan_config(cfg: &Value, declared: &[(String, Vec<usize>)]) -> Result<ConfigPlan, ConvertError> {
    Ok(ConfigPlan { plan: plan_for(cfg, &Checkpoint::declared(declared))? })
}

impl ConfigPlan {
    /// The model family.
    pub fn architecture(&self) -> Architecture {
        self.plan.architecture
    }

    /// Header hyper-parameters in file order (the token ids included).
    pub fn hparams(&self) -> &[(HParam, u32)] {
        &self.plan.hparams
    }

    /// Canonical tensors in file order.
    pub fn specs(&self) -> &[TensorSpec] {
        &self.plan.specs
    }

    /// Blobs the converter adds (e.g. a hybrid's layer-kinds table).
    pub fn blobs(&self) -> &[(BlobKind, Vec<u8>)] {
        &self.plan.blobs
    }

    /// The plan with one more blob, e.g. a `tokenizer.json` so that a
    /// random model can be calibrated on text (`eddy quantize --calib`).
    pub fn with_blob(mut self, kind: BlobKind, data: Vec<u8>) -> Self {
        self.plan.blobs.push((kind, data));
        self
    }

    /// `(layers, width, vocabulary)` as `eddy convert` reports them.
    pub fn shape(&self) -> (u32, u32, u32) {
        self.plan.shape
    }

    /// Weights in the file: the sum of every tensor's element count.
    pub fn parameters(&self) -> u64 {
        self.plan.specs.iter().map(|s| s.rows * s.cols).sum()
    }

    /// The checkpoint name of a tensor.
    pub fn hf_name(&self, spec: &TensorSpec) -> String {
        self.plan.layout.hf_name(spec)
    }

    /// The shape the checkpoint stores a tensor with.
    pub fn hf_shape(&self, spec: &TensorSpec) -> Vec<usize> {
        self.plan.layout.hf_shape(spec)
    }

    /// Checkpoint values of a tensor as eddy stores them (the same
    /// transform `eddy convert` applies, e.g. `A = -exp(A_log)`).
    pub fn transform(&self, spec: &TensorSpec, values: Vec<f32>) -> Vec<f32> {
        self.plan.layout.transform(spec, values)
    }

    /// The canonical eddy name of a tensor.
    pub fn eddy_name(&self, spec: &TensorSpec) -> String {
        eddy_name(spec)
    }
}
