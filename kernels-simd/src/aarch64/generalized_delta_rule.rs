//! RWKV-7's generalized delta rule on NEON: the pass of
//! `crate::linear_attention_pass` with eight value rows per vector (8 x 8
//! blocks of the state, transposed).

crate::linear_attention_pass::state_update!(
    /// See [`crate::GeneralizedDeltaRule`]; bit-exact with [`crate::reference::generalized_delta_rule`].
    generalized_delta_rule(crate::GeneralizedDeltaRuleArgs<'_>) = linear_attention_pass::generalized_delta_rule::<super::kv::Lanes>,
    feature "neon",
    if true
);
