//! Gated DeltaNet's delta rule on AVX2:
//! the pass of `crate::linear_attention_pass` with eight value columns
//! per vector.

crate::linear_attention_pass::state_update!(
    /// See [`crate::DeltaRule`]; bit-exact with [`crate::reference::delta_rule`].
    delta_rule(crate::DeltaRuleArgs<'_>) = linear_attention_pass::delta_rule::<core::arch::x86_64::__m256>,
    feature "avx2",
    if super::avx2_available()
);
