//! Like `from_bytes`, but skipping the checksum so mutations reach the
//! structural checks, the model loader and `step`.
#![no_main]

use eddy::file::AlignedBytes;
use eddy::{EddyFile, Model};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let bytes = AlignedBytes::copy_from(data);
    let Ok(file) = EddyFile::parse_without_checksum(bytes.as_slice()) else {
        return;
    };
    if let Ok(model) = Model::from_file(file) {
        eddy_fuzz::exercise(&model);
    }
});
