//! Any bytes through the full loader (checksum included): must return an
//! error or a model that runs, never panic or read out of bounds.
#![no_main]

use eddy::file::AlignedBytes;
use eddy::Model;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let bytes = AlignedBytes::copy_from(data);
    if let Ok(model) = Model::from_bytes(bytes.as_slice()) {
        eddy_fuzz::exercise(&model);
    }
});
