//! `eddy convert` on arbitrary GGUF bytes: the header reader, the
//! architecture mapping, the tokenizer rebuild, dequantization and the
//! `.eddy` writer must return an error or a file, never panic.
#![no_main]

use eddy_cli::convert::gguf::{convert_bytes_into, GgufWeights};
use eddy_cli::convert::WeightDtype;
use libfuzzer_sys::fuzz_target;
use std::io::Cursor;

fuzz_target!(|data: &[u8]| {
    for weights in [GgufWeights::Keep, GgufWeights::Dequantize] {
        if let Ok((out, _)) = convert_bytes_into(data, WeightDtype::F32, weights, Cursor::new(Vec::new())) {
            // What the converter wrote must load.
            let bytes = eddy::file::AlignedBytes::copy_from(&out.into_inner());
            assert!(eddy::Model::from_bytes(bytes.as_slice()).is_ok());
        }
    }
});
