//! GLA's gated outer product on AVX2:
//! the pass of `crate::linear_attention_pass` with eight value columns
//! per vector.

crate::linear_attention_pass::state_update!(
    /// See [`crate::GatedOuterProduct`]; bit-exact with [`crate::reference::gated_outer_product`].
    gated_outer_product(crate::GatedOuterProductArgs<'_>) = linear_attention_pass::gated_outer_product::<core::arch::x86_64::__m256>,
    feature "avx2",
    if super::avx2_available()
);
