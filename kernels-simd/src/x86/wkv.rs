//! RWKV-4's WKV on AVX2: the pass of `crate::wkv_pass` with
//! eight channels per vector.

crate::linear_attention_pass::state_update!(
    /// See [`crate::Wkv`]; bit-exact with [`crate::reference::wkv`].
    wkv(crate::WkvArgs<'_>) = wkv_pass::wkv::<core::arch::x86_64::__m256>,
    feature "avx2",
    if super::avx2_available()
);
