//! RWKV-4's WKV on NEON: the pass of `crate::wkv_pass` with
//! eight channels per vector.

crate::linear_attention_pass::state_update!(
    /// See [`crate::Wkv`]; bit-exact with [`crate::reference::wkv`].
    wkv(crate::WkvArgs<'_>) = wkv_pass::wkv::<super::kv::Lanes>,
    feature "neon",
    if true
);
