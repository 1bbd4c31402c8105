//! A model's memory figures from its file header alone: the hyper-parameters
//! and blobs of a `.eddy` file, with or without its tensors. `eddy memory
//! --shape` sizes public checkpoints nobody downloaded this way, from the
//! header the converter would write for their `config.json`.

use crate::attention::KvCacheOptions;
use crate::error::ModelError;
use crate::families::{map_family, with_family, Inner};
use crate::family::Family;
use crate::file::EddyFile;
use crate::model::Model;
use crate::state_store::StateFormat;

/// The per-sequence sizes of a model known from its header. It cannot run:
/// its tensors are never looked at.
#[derive(Clone, Copy, Debug)]
pub struct ModelSizes<'a> {
    inner: Inner<'a>,
}

impl<'a> ModelSizes<'a> {
    /// Bind `file`'s hyper-parameters to its family (checking them and that
    /// the sizes fit in memory, as loading the model would).
    pub fn from_file(file: EddyFile<'a>) -> Result<Self, ModelError> {
        Ok(Self { inner: Inner::load_header(file)? })
    }

    /// KV cache options of the attention layers as the file sets them;
    /// `None` for models without attention.
    pub fn kv_cache(&self) -> Option<KvCacheOptions> {
        with_family!(&self.inner, m => m.kv_cache())
    }

    /// The same sizes with the attention layers caching as `options` say.
    pub fn with_kv_cache(&self, options: KvCacheOptions) -> Result<Self, ModelError> {
        Ok(Self { inner: map_family!(&self.inner, m => m.with_kv_cache(options)) })
    }

    /// Bytes of a session's state (header included) stored in `format`:
    /// what [`Model::state_bytes`] reports for the loaded model.
    pub fn state_bytes(&self, format: StateFormat) -> Result<usize, ModelError> {
        Ok(Model::sizes(&self.inner, format)?.0 * 4)
    }

    /// Bytes of step scratch with the state in `format`: what
    /// [`Model::scratch_bytes`] reports for the loaded model.
    pub fn scratch_bytes(&self, format: StateFormat) -> Result<usize, ModelError> {
        Ok(Model::sizes(&self.inner, format)?.1 * 4)
    }
}
