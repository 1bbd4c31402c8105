//! `eddy memory`: bytes of per-sequence state a model needs at given
//! context lengths, for its attention layers' cache options (full cache,
//! Lambda window) and formats. Every figure is the runtime's own state
//! size for those options (`Model::state_bytes`, or the family
//! configuration's for a named shape); nothing is allocated.

use anyhow::{Context, Result};
use eddy::file::EddyFile;
use eddy::{KvCacheOptions, KvFormat, Model, ModelSizes, StateFormat};

/// One row of the report: a cache setting and the state bytes at each
/// context length.
#[derive(Debug, Clone, PartialEq)]
pub struct MemoryRow {
    /// What the row measures, e.g. `q4, 4 sinks + 4092 window`.
    pub setting: String,
    /// State bytes per context length (same order as asked).
    pub bytes: Vec<usize>,
}

/// Per-sequence state at each of `contexts` tokens, given the default
/// cache options (`None`: no attention layers) and the state size for
/// given options: without attention one row (constant); with attention a
/// full f16 cache (window = context, the usual KV cache), then the Lambda
/// window of the default options in f16, q8 and q4 (the same at every
/// length: the cache is allocated whole).
pub fn memory_rows(
    default_kv: Option<KvCacheOptions>,
    state_bytes: impl Fn(Option<KvCacheOptions>) -> Result<usize>,
    contexts: &[u32],
) -> Result<Vec<MemoryRow>> {
    let Some(kv) = default_kv else {
        let size = state_bytes(None)?;
        let bytes = contexts.iter().map(|_| size).collect();
        return Ok(vec![MemoryRow { setting: "recurrent state (no attention)".into(), bytes }]);
    };
    let mut full = Vec::new();
    for &ctx in contexts {
        full.push(state_bytes(Some(KvCacheOptions { format: KvFormat::F16, sinks: 0, window: ctx.max(1) }))?);
    }
    let mut rows = vec![MemoryRow { setting: "f16, full cache (window = context)".into(), bytes: full }];
    for format in [KvFormat::F16, KvFormat::Q8, KvFormat::Q4] {
        let size = state_bytes(Some(KvCacheOptions { format, ..kv }))?;
        let setting = format!("{}, {} sinks + {} window", format.name(), kv.sinks, kv.window);
        rows.push(MemoryRow { setting, bytes: contexts.iter().map(|_| size).collect() });
    }
    Ok(rows)
}

/// [`memory_rows`] of a loaded model.
pub fn model_memory_rows(model: &Model<'_>, contexts: &[u32]) -> Result<Vec<MemoryRow>> {
    memory_rows(
        model.kv_cache(),
        |kv| match kv {
            None => Ok(model.state_bytes()),
            Some(kv) => Ok(model.with_kv_cache(kv)?.state_bytes()),
        },
        contexts,
    )
}

/// [`memory_rows`] of a named public shape (see [`crate::shapes`]) with the
/// recurrent state stored as `format`, sized from the header its converter
/// would write (no weights are made).
pub fn shape_memory_rows(name: &str, contexts: &[u32], format: StateFormat) -> Result<Vec<MemoryRow>> {
    let shape = crate::shapes::public_shape(name).with_context(|| {
        format!("unknown shape `{name}`; known shapes:\n{}", crate::shapes::public_shape_table())
    })?;
    let plan = shape.config().plan().with_context(|| format!("the {name} shape"))?;
    let header = crate::random::header_only(&plan)?;
    let sizes = ModelSizes::from_file(EddyFile::parse(header.as_slice())?)?;
    memory_rows(
        sizes.kv_cache(),
        |kv| match kv {
            None => Ok(sizes.state_bytes(format)?),
            Some(kv) => Ok(sizes.with_kv_cache(kv)?.state_bytes(format)?),
        },
        contexts,
    )
}
