#!/usr/bin/env python3
"""Golden fixtures for eddy's other model families (GRU, LSTM, Mamba-2).

Same conventions as make_fixtures.py: tiny random models saved in the layout
`eddy convert` reads, plus the reference logits of a full-sequence forward and
of token-by-token decode with the recurrent state carried, computed in
float64 and stored as float32.

Run: python3 tools/python/make_family_fixtures.py
"""
import json
import os
import shutil
import sys

import torch
from safetensors.torch import save_file
from torch import nn
from transformers import (Mamba2Config, Mamba2ForCausalLM, Qwen3NextConfig, Qwen3NextForCausalLM, RwkvConfig,
                          RwkvForCausalLM)

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from make_fixtures import OUT, SEQ_LEN, make_tokenizer, perturb, reference_logits  # noqa: E402


class RnnLM(nn.Module):
    """eddy's GRU/LSTM layout: embed -> stacked nn.GRU/nn.LSTM -> head."""

    def __init__(self, cell, vocab, emb, hidden, layers, bias=True, head_bias=True):
        super().__init__()
        self.embed = nn.Embedding(vocab, emb)
        rnn = nn.GRU if cell == "gru" else nn.LSTM
        self.rnn = rnn(emb, hidden, layers, bias=bias, batch_first=True)
        self.head = nn.Linear(hidden, vocab, bias=head_bias)

    def forward(self, ids, state=None):
        out, state = self.rnn(self.embed(ids), state)
        return self.head(out), state


def rnn_reference(model, ids):
    model = model.double().eval()
    with torch.no_grad():
        forward = model(ids[None])[0][0]
        decode, state = [], None
        for i in range(len(ids)):
            logits, state = model(ids[None, i : i + 1], state)
            decode.append(logits[0, -1])
        decode = torch.stack(decode)
    diff = (forward - decode).abs().max().item()
    assert diff < 1e-9, diff
    return forward.float(), decode.float(), diff


def save_reference(d, ids, forward, decode):
    save_file(
        {
            "input_ids": ids.to(torch.int32),
            "logits_forward": forward.contiguous(),
            "logits_decode": decode.contiguous(),
        },
        os.path.join(d, "reference.safetensors"),
    )


def fresh_dir(name):
    d = os.path.join(OUT, name)
    shutil.rmtree(d, ignore_errors=True)
    os.makedirs(d)
    return d


def save_hf_fixture(name, model, ids, forward, decode, diff, tokenizer_vocab=None):
    """A fresh fixture directory with the checkpoint in transformers' layout,
    its reference logits and, given a vocabulary size, a tokenizer."""
    d = fresh_dir(name)
    model.float().save_pretrained(d, safe_serialization=True)
    if tokenizer_vocab is not None:
        make_tokenizer(tokenizer_vocab).save(os.path.join(d, "tokenizer.json"))
    save_reference(d, ids, forward, decode)
    print(f"{name}: {sorted(os.listdir(d))}, logits std {forward.std().item():.3f}, fwd-dec {diff:.1e}")


def perturb_each(model, g, rule):
    """`rule(name, param, noise)` on every parameter in order, without
    gradients; `noise` is a standard-normal draw from `g` shaped like the
    parameter, drawn before the rule runs."""
    with torch.no_grad():
        for n, p in model.named_parameters():
            rule(n, p, torch.randn(p.shape, generator=g))


def build_rnn(name, seed, cell, with_config, bare_names, **kw):
    torch.manual_seed(seed)
    model = RnnLM(cell, **kw).float()
    g = torch.Generator().manual_seed(seed + 1)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.3 * torch.randn(p.shape, generator=g))
    ids = torch.randint(0, kw["vocab"], (SEQ_LEN,), generator=g)
    forward, decode, diff = rnn_reference(model, ids)
    d = fresh_dir(name)
    sd = {k: v.float().contiguous() for k, v in model.state_dict().items()}
    if bare_names:
        # As in the state_dict of a plain nn.GRU/nn.LSTM.
        sd = {k.removeprefix("rnn."): v for k, v in sd.items()}
    save_file(sd, os.path.join(d, "model.safetensors"))
    if with_config:
        cfg = {
            "model_type": cell,
            "vocab_size": kw["vocab"],
            "embedding_dim": kw["emb"],
            "hidden_size": kw["hidden"],
            "num_layers": kw["layers"],
            "bias": kw.get("bias", True),
            "head_bias": kw.get("head_bias", True),
        }
        with open(os.path.join(d, "config.json"), "w") as f:
            json.dump(cfg, f, indent=2)
    save_reference(d, ids, forward, decode)
    print(f"{name}: {sorted(os.listdir(d))}, logits std {forward.std().item():.3f}")


def build_mamba2(name, seed, cfg):
    torch.manual_seed(seed)
    model = Mamba2ForCausalLM(Mamba2Config(**cfg)).float()
    perturb(model, seed + 1)
    with torch.no_grad():
        for n, p in model.named_parameters():
            if n.endswith("dt_bias"):
                p.copy_(torch.linspace(-2.0, 0.5, p.numel()))
    g = torch.Generator().manual_seed(seed + 2)
    ids = torch.randint(0, cfg["vocab_size"], (SEQ_LEN,), generator=g)
    forward, decode, diff = reference_logits(model, ids)
    save_hf_fixture(name, model, ids, forward, decode, diff, tokenizer_vocab=cfg["vocab_size"])


def build_rwkv(name, seed, cfg):
    torch.manual_seed(seed)
    model = RwkvForCausalLM(RwkvConfig(**cfg)).float()
    g = torch.Generator().manual_seed(seed + 1)

    def rule(n, p, noise):
        if "time_mix" in n:
            p.copy_(torch.rand(p.shape, generator=g))
        elif "ln" in n and n.endswith("weight"):
            p.copy_(1.0 + 0.1 * noise)
        elif "time_" in n:
            p.add_(0.3 * noise)
        else:
            p.add_(0.15 * noise)

    perturb_each(model, g, rule)
    ids = torch.randint(0, cfg["vocab_size"], (SEQ_LEN,), generator=g)
    # RWKV passes its recurrent state as `state`.
    forward, decode, diff = reference_logits(model, ids, cache_arg="state", tol=1e-6)
    save_hf_fixture(name, model, ids, forward, decode, diff)


def build_gated_deltanet(name, seed, cfg):
    torch.manual_seed(seed)
    model = Qwen3NextForCausalLM(Qwen3NextConfig(**cfg)).float()
    g = torch.Generator().manual_seed(seed + 1)

    def rule(n, p, noise):
        if n.endswith("A_log"):
            p.copy_(torch.log(torch.linspace(0.5, 4.0, p.numel())))
        elif "norm" in n:
            p.add_(0.1 * noise)
        else:
            p.add_(0.15 * noise)

    perturb_each(model, g, rule)
    ids = torch.randint(0, cfg["vocab_size"], (SEQ_LEN,), generator=g)
    # transformers' cache cannot hold only linear-attention layers (its
    # get_seq_length needs an attention layer), so "decode" is the last
    # logits of a forward over each prefix: the same causal quantity.
    model = model.double().eval()
    with torch.no_grad():
        forward = model(ids[None], use_cache=False).logits[0]
        decode = torch.stack([model(ids[None, : i + 1], use_cache=False).logits[0, -1] for i in range(len(ids))])
    diff = (forward - decode).abs().max().item()
    assert diff < 1e-6, diff
    forward, decode = forward.float(), decode.float()
    save_hf_fixture(name, model, ids, forward, decode, diff)


def build_rwkv7(name, seed, **kw):
    """BlinkDL-layout safetensors (no config.json: eddy infers the shapes)."""
    from rwkv7_reference import Rwkv7LM

    torch.manual_seed(seed)
    model = Rwkv7LM(**kw).double()
    g = torch.Generator().manual_seed(seed + 1)
    ids = torch.randint(0, kw["vocab"], (SEQ_LEN,), generator=g)
    with torch.no_grad():
        forward, _ = model(ids)
        # Decode in two halves with the state carried: the same recurrence.
        a, state = model(ids[: SEQ_LEN // 2])
        b, _ = model(ids[SEQ_LEN // 2 :], state)
        decode = torch.cat([a, b])
    d = fresh_dir(name)
    save_file({k: v.float().contiguous() for k, v in model.checkpoint_state_dict().items()},
              os.path.join(d, "model.safetensors"))
    save_reference(d, ids, forward.float(), decode.float())
    print(f"{name}: {sorted(os.listdir(d))}, logits std {forward.std().item():.3f}")


def build_gla(name, seed, vocab, hidden, layers, heads, ffn):
    """fla GLAForCausalLM layout + config.json; reference from gla_reference.py."""
    from gla_reference import GlaLM

    torch.manual_seed(seed)
    model = GlaLM(vocab, hidden, layers, heads, ffn).double()
    g = torch.Generator().manual_seed(seed + 1)
    ids = torch.randint(0, vocab, (SEQ_LEN,), generator=g)
    with torch.no_grad():
        forward, decode = model.parallel_logits(ids), model.recurrent_logits(ids)
    diff = (forward - decode).abs().max().item()
    assert diff < 1e-9, diff
    d = fresh_dir(name)
    save_file({k: v.float().contiguous() for k, v in model.checkpoint_state_dict().items()},
              os.path.join(d, "model.safetensors"))
    cfg = {"architectures": ["GLAForCausalLM"], "model_type": "gla", "vocab_size": vocab, "hidden_size": hidden,
           "expand_k": 0.5, "expand_v": 1, "num_heads": heads, "num_kv_heads": None, "intermediate_size": ffn,
           "num_hidden_layers": layers, "norm_eps": 1e-6, "use_short_conv": False, "feature_map": None,
           "use_output_gate": True, "fuse_norm": True, "hidden_act": "swish", "gate_logit_normalizer": 16,
           "gate_low_rank_dim": 16, "clamp_min": None, "tie_word_embeddings": False}
    with open(os.path.join(d, "config.json"), "w") as f:
        json.dump(cfg, f, indent=2)
    save_reference(d, ids, forward.float(), decode.float())
    print(f"{name}: {sorted(os.listdir(d))}, logits std {forward.std().item():.3f}, parallel-recurrent {diff:.1e}")


def main():
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    build_rnn("gru-tiny", 11, "gru", True, False, vocab=300, emb=32, hidden=64, layers=2)
    build_rnn("lstm-tiny", 12, "lstm", False, True, vocab=300, emb=64, hidden=32, layers=2, head_bias=False)
    build_rwkv(
        "rwkv4-tiny",
        14,
        dict(vocab_size=300, hidden_size=64, num_hidden_layers=2, intermediate_size=128, context_length=64,
             rescale_every=0, tie_word_embeddings=False, layer_norm_epsilon=1e-5),
    )
    build_gla("gla-tiny", 17, vocab=300, hidden=64, layers=2, heads=2, ffn=128)
    build_rwkv7("rwkv7-tiny", 16, vocab=300, C=64, layers=2, head_size=16, ffn=128, lora=(32, 32, 32, 32))
    build_gated_deltanet(
        "gated-deltanet-tiny",
        15,
        dict(vocab_size=300, hidden_size=64, num_hidden_layers=2, intermediate_size=128,
             linear_num_value_heads=4, linear_num_key_heads=2, linear_key_head_dim=16, linear_value_head_dim=16,
             linear_conv_kernel_dim=4, layer_types=["linear_attention"] * 2, num_experts=0,
             num_attention_heads=4, num_key_value_heads=2, head_dim=16, rms_norm_eps=1e-6,
             tie_word_embeddings=False),
    )
    build_mamba2(
        "mamba2-tiny",
        13,
        dict(
            vocab_size=300,
            hidden_size=64,
            state_size=16,
            num_heads=8,
            head_dim=16,
            expand=2,
            n_groups=2,
            num_hidden_layers=2,
            conv_kernel=4,
            use_bias=False,
            use_conv_bias=True,
            layer_norm_epsilon=1e-5,
            tie_word_embeddings=False,
            chunk_size=8,
        ),
    )


if __name__ == "__main__":
    sys.exit(main())
