//! A session of one of the seed models driven by fuzzed state format, KV
//! cache options, tokens, chunk size and snapshot bytes (see
//! `eddy_fuzz::drive_session`).
#![no_main]

use libfuzzer_sys::fuzz_target;

/// Every family's seed model (`corpus/from_bytes/seed-*.eddy`).
const MODELS: &[&[u8]] = &[
    include_bytes!("../corpus/from_bytes/seed-conv1.eddy"),
    include_bytes!("../corpus/from_bytes/seed-gated-deltanet.eddy"),
    include_bytes!("../corpus/from_bytes/seed-gla.eddy"),
    include_bytes!("../corpus/from_bytes/seed-gru.eddy"),
    include_bytes!("../corpus/from_bytes/seed-lfm2.eddy"),
    include_bytes!("../corpus/from_bytes/seed-lstm.eddy"),
    include_bytes!("../corpus/from_bytes/seed-mamba2.eddy"),
    include_bytes!("../corpus/from_bytes/seed-mini-f16.eddy"),
    include_bytes!("../corpus/from_bytes/seed-mini-f32.eddy"),
    include_bytes!("../corpus/from_bytes/seed-quantized.eddy"),
    include_bytes!("../corpus/from_bytes/seed-recurrent-gemma.eddy"),
    include_bytes!("../corpus/from_bytes/seed-rwkv4.eddy"),
    include_bytes!("../corpus/from_bytes/seed-rwkv7.eddy"),
    include_bytes!("../corpus/from_bytes/seed-tied-bias-blobs.eddy"),
];

fuzz_target!(|data: &[u8]| eddy_fuzz::drive_session(MODELS, data));
