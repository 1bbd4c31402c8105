//! `eddy memory`: bytes of per-sequence state a model needs at given
//! context lengths, for its attention layers' cache options (full cache,
//! Lambda window) and formats. Every figure is the runtime's own
//! `Model::state_bytes` for those options; nothing is allocated.

use eddy::{KvCacheOptions, KvFormat, Model, ModelError};

/// One row of the report: a cache setting and the state bytes at each
/// context length.
#[derive(Debug, Clone, PartialEq)]
pub struct MemoryRow {
    /// What the row measures, e.g. `q4, 4 sinks + 4092 window`.
    pub setting: String,
    /// State bytes per context length (same order as asked).
    pub bytes: Vec<usize>,
}

/// Per-sequence state of `model` at each of `contexts` tokens: for a model
/// without attention one row (constant); with attention, a full f16 cache
/// (window = context, the usual KV cache), then the Lambda window of the
/// current options in f16, q8 and q4 (the same at every length).
pub fn memory_rows(model: &Model<'_>, contexts: &[u32]) -> Result<Vec<MemoryRow>, ModelError> {
    let Some(kv) = model.kv_cache() else {
        return Ok(vec![MemoryRow {
            setting: "recurrent state (no attention)".into(),
            bytes: contexts.iter().map(|_| model.state_bytes()).collect(),
        }]);
    };
    let mut rows = Vec::new();
    let mut full = Vec::new();
    for &ctx in contexts {
        let options = KvCacheOptions { format: KvFormat::F16, sinks: 0, window: ctx.max(1) };
        full.push(model.with_kv_cache(options)?.state_bytes());
    }
    rows.push(MemoryRow { setting: "f16, full cache (window = context)".into(), bytes: full });
    for format in [KvFormat::F16, KvFormat::Q8, KvFormat::Q4] {
        // The Lambda cache is allocated whole, whatever the context.
        let options = KvCacheOptions { format, ..kv };
        let size = model.with_kv_cache(options)?.state_bytes();
        let bytes = contexts.iter().map(|_| size).collect();
        let setting = format!("{}, {} sinks + {} window", format.name(), kv.sinks, kv.window);
        rows.push(MemoryRow { setting, bytes });
    }
    Ok(rows)
}
