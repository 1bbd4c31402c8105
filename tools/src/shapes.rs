//! Hyper-parameters of public checkpoints, as the `config.json` each family's
//! converter plans a file from ([`PUBLIC_SHAPES`]): `eddy bench
//! --random-model` builds random weights for them, `eddy memory --shape`
//! sizes their per-sequence state from the header alone (no weights).

use eddy::mamba::Mamba1Config;

mod random_shapes;
pub use random_shapes::*;

/// A public Mamba-1 checkpoint's configuration: width and depth vary, the
/// rest is what every released size shares.
pub fn mamba1_config(d_model: u32, n_layer: u32) -> Mamba1Config {
    Mamba1Config {
        vocab_size: 50280,
        d_model,
        n_layer,
        d_state: 16,
        d_conv: 4,
        d_inner: 2 * d_model,
        dt_rank: d_model.div_ceil(16),
        norm_eps: 1e-5,
        tied_embeddings: true,
        proj_bias: false,
        conv_bias: true,
    }
}
