//! Fuzz seeds of every family: tiny random models (the converter's own
//! plan, f16 matrices), small enough for a fuzzer to mutate. The committed
//! seeds in `fuzz/corpus/<target>/seed-<family>.eddy` must keep loading;
//! after a format change regenerate them with
//! `EDDY_WRITE_FUZZ_SEEDS=1 cargo test -p eddy-cli --test fuzz_seeds`.

use eddy::Model;
use eddy_cli::convert::WeightDtype;
use eddy_cli::random::{build, Storage};
use eddy_cli::shapes::*;

/// Targets whose corpus starts from whole model files.
const TARGETS: [&str; 2] = ["from_bytes", "from_bytes_nochecksum"];

/// The smallest shape of each family its converter accepts.
fn tiny_shapes() -> Vec<(&'static str, ShapeConfig)> {
    let deltanet = DeltaNetDims {
        vocab: 32,
        d_model: 16,
        n_layer: 1,
        n_k_heads: 1,
        n_v_heads: 2,
        head_dim: 8,
        d_ffn: 16,
    };
    let griffin = GriffinDims {
        vocab: 32,
        d_model: 16,
        n_layer: 3,
        n_heads: 2,
        n_kv_heads: 1,
        intermediate_size: 32,
        window: 4,
    };
    vec![
        ("mamba2", mamba2_shape(32, 32, 1, 4)),
        ("lfm2", lfm2_shape(32, 16, 2, 2, 1, 16, &[1])),
        ("rwkv7", rwkv7_shape(32, 64, 1, 32, [4, 4, 4, 4])),
        ("rwkv4", rwkv4_shape(32, 16, 1)),
        ("gla", gla_shape(32, 16, 1, 2, 16)),
        ("gated-deltanet", gated_deltanet_shape(deltanet)),
        ("recurrent-gemma", recurrent_gemma_shape(griffin)),
        ("gru", rnn_shape("gru", 32, 8, 8, 1)),
        ("lstm", rnn_shape("lstm", 32, 8, 8, 1)),
    ]
}

#[test]
fn every_family_has_a_small_valid_fuzz_seed() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/corpus");
    let write = std::env::var_os("EDDY_WRITE_FUZZ_SEEDS").is_some();
    for (family, shape) in tiny_shapes() {
        let plan = shape.plan().unwrap_or_else(|e| panic!("{family}: {e}"));
        let model = build(&plan, &Storage::Converted(WeightDtype::F16), 7).unwrap();
        let bytes = model.bytes.as_slice();
        assert!(bytes.len() < 64 * 1024, "{family}: {} bytes", bytes.len());
        Model::from_bytes(bytes).unwrap_or_else(|e| panic!("{family}: {e}"));
        for target in TARGETS {
            let path = root.join(target).join(format!("seed-{family}.eddy"));
            if write {
                std::fs::create_dir_all(path.parent().unwrap()).unwrap();
                std::fs::write(&path, bytes).unwrap();
            }
            let committed = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            let aligned = eddy::file::AlignedBytes::copy_from(&committed);
            assert!(Model::from_bytes(aligned.as_slice()).is_ok(), "{} no longer loads", path.display());
        }
    }
}
