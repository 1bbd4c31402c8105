#!/usr/bin/env python3
"""Golden fixtures for eddy's Mamba-1 tests.

Builds tiny random-init `transformers.MambaForCausalLM` models, saves them in
the Hugging Face layout (config.json, safetensors, tokenizer.json) and the
reference logits of a full-sequence forward and of token-by-token decode with
the cache, computed in float64 and stored as float32.

Deterministic: fixed seeds, one thread. Run: python3 tools/python/make_fixtures.py
"""
import json
import os
import shutil
import sys

import torch
from safetensors.torch import save_file
from tokenizers import Tokenizer, models, pre_tokenizers, decoders, trainers
from transformers import MambaConfig, MambaForCausalLM

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
OUT = os.path.join(ROOT, "tests", "fixtures")
SEQ_LEN = 24

# A small English text for the tokenizer: this repository's design page if
# present, else a built-in paragraph (the tokenizer only has to be valid).
TOKENIZER_TEXT = [
    "eddy runs quantized recurrent language models on small machines: "
    "microcontrollers, edge boxes and FPGA boards. Recurrent models keep a "
    "fixed-size state instead of a growing cache, which is what a device with "
    "kilobytes of memory needs for long streams of text. Hello world! " * 4
]


def make_tokenizer(vocab_size):
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    design = os.path.join(ROOT, "..", "shared", "DESIGN.md")
    texts = TOKENIZER_TEXT
    if os.path.exists(design):
        with open(design, encoding="utf-8") as f:
            texts = texts + [f.read()]
    tok.train_from_iterator(texts, trainer=trainer)
    assert tok.get_vocab_size() <= vocab_size, tok.get_vocab_size()
    return tok


def perturb(model, seed):
    """Make every parameter non-trivial so logits vary across tokens."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            noise = torch.randn(p.shape, generator=g, dtype=p.dtype)
            if name.endswith("A_log"):
                p.add_(0.1 * noise)
            elif "norm" in name:
                p.copy_(1.0 + 0.1 * noise)
            elif name.endswith("dt_proj.bias"):
                p.add_(0.2 * noise)
            elif name.endswith(".D"):
                p.copy_(1.0 + 0.3 * noise)
            else:
                p.add_(0.15 * noise)


def round_to(model, dtype):
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(p.to(dtype).to(p.dtype))


def reference_logits(model, ids, cache_arg="cache_params", tol=1e-4):
    """Full forward vs token-by-token decode in f64, the recurrent state passed
    back in as the `cache_arg` keyword (and read from the output attribute of
    that name); the two must agree within `tol`."""
    model = model.double().eval()
    with torch.no_grad():
        forward = model(ids[None], use_cache=False).logits[0]
        decode = []
        cache = None
        for i in range(len(ids)):
            out = model(ids[None, i : i + 1], use_cache=True, **{cache_arg: cache})
            cache = getattr(out, cache_arg)
            decode.append(out.logits[0, -1])
        decode = torch.stack(decode)
    diff = (forward - decode).abs().max().item()
    assert diff < tol, f"forward vs decode differ by {diff}"
    return forward.float(), decode.float(), diff


def build(name, seed, cfg, storage=torch.float32, shard=None):
    torch.manual_seed(seed)
    config = MambaConfig(**cfg)
    model = MambaForCausalLM(config).float()
    perturb(model, seed + 1)
    if storage != torch.float32:
        round_to(model, storage)
    g = torch.Generator().manual_seed(seed + 2)
    ids = torch.randint(0, cfg["vocab_size"], (SEQ_LEN,), generator=g)
    forward, decode, diff = reference_logits(model, ids)

    d = os.path.join(OUT, name)
    shutil.rmtree(d, ignore_errors=True)
    os.makedirs(d)
    save_model = model.float().to(storage)
    kwargs = {"safe_serialization": True}
    if shard:
        kwargs["max_shard_size"] = shard
    save_model.save_pretrained(d, **kwargs)
    make_tokenizer(cfg["vocab_size"]).save(os.path.join(d, "tokenizer.json"))
    save_file(
        {
            "input_ids": ids.to(torch.int32),
            "logits_forward": forward.contiguous(),
            "logits_decode": decode.contiguous(),
        },
        os.path.join(d, "reference.safetensors"),
    )
    files = sorted(os.listdir(d))
    print(f"{name}: files {files}")
    print(f"  logits std {forward.std().item():.3f}, max |forward - decode| {diff:.2e}")
    for n, p in model.state_dict().items():
        print(f"  {n} {list(p.shape)}")


def main():
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    base = dict(
        hidden_size=64,
        state_size=16,
        num_hidden_layers=2,
        expand=2,
        conv_kernel=4,
        time_step_rank="auto",
        use_bias=False,
        use_conv_bias=True,
        layer_norm_epsilon=1e-5,
        tie_word_embeddings=True,
        vocab_size=300,
    )
    build("mamba-tiny-tied", 1, base)
    untied = dict(base, vocab_size=320, hidden_size=48, state_size=8, num_hidden_layers=3,
                  time_step_rank=6, tie_word_embeddings=False, use_bias=True)
    build("mamba-tiny-untied", 2, untied, shard="60KB")
    build("mamba-tiny-f16", 3, base, storage=torch.float16)
    build("mamba-tiny-bf16", 4, base, storage=torch.bfloat16)


if __name__ == "__main__":
    sys.exit(main())
