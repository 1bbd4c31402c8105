#!/usr/bin/env python3
"""Golden fixture for Qwen3-Next as released (qwen3next-tiny): Gated DeltaNet
linear_attention layers, gated full_attention layers (output gate, q/k
RMSNorm, partial rotary) and sparse mixture-of-experts MLPs (top-k router
with normalized top-k probabilities, a shared expert with its sigmoid gate),
one layer with a dense MLP (mlp_only_layers).

Same conventions as make_family_fixtures.py: a tiny random
Qwen3NextForCausalLM (weights perturbed so no norm is 0 and the zero-init
router routes), saved with save_pretrained (float32), plus
reference.safetensors with the logits of one forward over all tokens and of
token-by-token decode with transformers' cache, computed in float64 (RMSNorm
and RoPE compute in float32 inside it, ~1e-6) and stored as float32.

Run: python3 tools/python/make_moe_fixtures.py
"""
import importlib.util
import os
import sys

import torch
from transformers.models.qwen3_next import modeling_qwen3_next
from transformers import DynamicCache, Qwen3NextConfig, Qwen3NextForCausalLM

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from make_family_fixtures import perturb_each, save_hf_fixture  # noqa: E402
from make_fixtures import SEQ_LEN  # noqa: E402


def float64_modeling():
    """transformers' Qwen3-Next modeling module with its float32 upcasts
    (RMSNorms, RoPE, attention softmax, the delta rule in both its chunked
    and recurrent forms) turned into float64: the same source, rewritten."""
    src = open(modeling_qwen3_next.__file__).read()
    for a, b in ((".float()", ".double()"), ("torch.float32", "torch.float64"), ("dtype=torch.float)", "dtype=torch.float64)"),
                 ("dtype=torch.float,", "dtype=torch.float64,")):
        src = src.replace(a, b)
    name = modeling_qwen3_next.__name__ + "_float64"
    spec = importlib.util.spec_from_loader(name, loader=None)
    module = importlib.util.module_from_spec(spec)
    module.__package__ = modeling_qwen3_next.__package__
    module.__file__ = modeling_qwen3_next.__file__
    sys.modules[name] = module
    exec(compile(src, modeling_qwen3_next.__file__, "exec"), module.__dict__)
    return module


def build_qwen3_next(name, seed, cfg):
    torch.manual_seed(seed)
    config = Qwen3NextConfig(**cfg)
    model = Qwen3NextForCausalLM(config).float()
    g = torch.Generator().manual_seed(seed + 1)

    def rule(n, p, noise):
        if n.endswith("A_log"):
            p.copy_(torch.log(torch.linspace(0.5, 4.0, p.numel())))
        elif "norm" in n:
            p.add_(0.1 * noise)
        elif n.endswith("mlp.gate.weight"):
            p.copy_(0.2 * noise)  # the router is zero at init
        else:
            p.add_(0.15 * noise)

    perturb_each(model, g, rule)
    ids = torch.randint(0, cfg["vocab_size"], (SEQ_LEN,), generator=g)
    exact = float64_modeling().Qwen3NextForCausalLM(config).double()
    exact.load_state_dict(model.state_dict())
    # The eager per-expert loop (the grouped matmul has no float64 kernel).
    model, exact = model.eval(), exact.eval()
    exact.set_experts_implementation("eager")
    with torch.no_grad():
        plain = model(ids[None], use_cache=False).logits[0].double()
    model = exact
    with torch.no_grad():
        forward = model(ids[None], use_cache=False).logits[0]
        cache, decode = DynamicCache(config=config), []
        for i in range(len(ids)):
            decode.append(model(ids[None, i : i + 1], past_key_values=cache, use_cache=True).logits[0, -1])
        decode = torch.stack(decode)
        # The closest top-k decision of any token in any MoE layer: the gap
        # between the k-th and (k+1)-th router logit (eddy's f32 logits
        # differ by ~1e-6, so a gap far above that routes the same).
        gaps = []
        hooks = [
            layer.mlp.gate.register_forward_hook(
                lambda m, i, o: gaps.append(
                    o[0].sort(-1, descending=True).values[:, [m.top_k - 1, m.top_k]]
                    .diff(dim=-1).abs().min().item()))
            for layer in model.model.layers if hasattr(layer.mlp, "gate") and hasattr(layer.mlp.gate, "top_k")
        ]
        model(ids[None], use_cache=False)
        for h in hooks:
            h.remove()
    diff = (forward - decode).abs().max().item()
    assert diff < 1e-9, diff
    print(f"{name}: |float64 - float32 transformers| {(forward - plain).abs().max().item():.1e}")
    print(f"{name}: smallest router logit top-k gap {min(gaps):.2e} over {len(gaps)} MoE layers")
    save_hf_fixture(name, model, ids, forward.float(), decode.float(), diff)


def main():
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    build_qwen3_next(
        "qwen3next-tiny",
        34,
        dict(vocab_size=300, hidden_size=64, num_hidden_layers=4, intermediate_size=96,
             layer_types=["linear_attention", "full_attention", "linear_attention", "full_attention"],
             linear_num_value_heads=4, linear_num_key_heads=2, linear_key_head_dim=16, linear_value_head_dim=16,
             linear_conv_kernel_dim=4, num_attention_heads=4, num_key_value_heads=2, head_dim=16,
             rope_parameters={"rope_type": "default", "rope_theta": 10000.0, "partial_rotary_factor": 0.25},
             num_experts=8, num_experts_per_tok=2, moe_intermediate_size=32, shared_expert_intermediate_size=48,
             norm_topk_prob=True, decoder_sparse_step=1, mlp_only_layers=[2], rms_norm_eps=1e-6,
             tie_word_embeddings=False),
    )


if __name__ == "__main__":
    sys.exit(main())
