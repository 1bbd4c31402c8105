#!/usr/bin/env python3
"""Seeded random Hugging Face checkpoints at real public shapes, written
shard by shard: the model never exists in memory as a whole, so a 3B shape
needs a few hundred MB of RAM (the largest tensor) and only disk.

How: the config is transformers' own class at the published shape; the model
class is instantiated on PyTorch's "meta" device, which gives every parameter's
name and shape (and so the names save_pretrained would write) without
allocating them. Then each tensor is drawn on its own, seeded by (seed, name),
and shards of at most --shard-size are written with safetensors plus a
model.safetensors.index.json, as save_pretrained does for large models.

Values: matrices, embeddings and conv kernels N(0, 0.02) (as
tools/python/peer_random_weights.py, which uses save_pretrained for small
shapes); the parameters a class initializes with meaning keep that meaning:
A_log = log(1..N) (Mamba-1 per state, Mamba-2 per head), D = 1, dt biases the
inverse softplus of a log-uniform dt in [0.001, 0.1], norm weights 1, other
biases 0.

Shapes (from each model's published config.json):
  lfm2-350m    LiquidAI/LFM2-350M: hidden 1024, 16 layers (attention at
               2,5,8,10,12,14), 16 heads / 8 KV heads, block_ff_dim 6656
               auto-adjusted to 4608, vocab 65536, tied embeddings
  lfm2-1.2b    LiquidAI/LFM2-1.2B: hidden 2048, 16 layers (same layer kinds),
               32 heads / 8 KV heads, block_ff_dim 12288 auto-adjusted to
               8192, vocab 65536, tied embeddings
  mamba-2.8b   state-spaces/mamba-2.8b-hf: d_model 2560, 64 layers, d_state 16,
               expand 2, d_conv 4, dt_rank 160, vocab 50280, tied embeddings
  mamba-130m, mamba2-130m: the peer benchmark's small shapes

No tokenizer is made (--tokenizer-from DIR copies tokenizer.json and
tokenizer_config.json from another checkpoint, e.g. the peer benchmark's).

Usage: make-random-hf.py --shape lfm2-1.2b --out DIR [--dtype f32|bf16|f16]
                         [--seed 0] [--shard-size 1GB] [--tokenizer-from DIR]
"""

import argparse
import json
import math
import os
import shutil
import zlib

import torch
from safetensors.torch import save_file

LFM2_LAYERS = ["conv", "conv", "full_attention", "conv", "conv", "full_attention", "conv", "conv",
               "full_attention", "conv", "full_attention", "conv", "full_attention", "conv",
               "full_attention", "conv"]


def make_config(shape):
    """(config, model class) at a named public shape."""
    if shape in ("mamba-130m", "mamba-2.8b"):
        from transformers import MambaConfig, MambaForCausalLM
        d, n, rank = {"mamba-130m": (768, 24, 48), "mamba-2.8b": (2560, 64, 160)}[shape]
        cfg = MambaConfig(vocab_size=50280, hidden_size=d, num_hidden_layers=n, state_size=16, expand=2,
                          conv_kernel=4, time_step_rank=rank, use_bias=False, use_conv_bias=True,
                          layer_norm_epsilon=1e-5, tie_word_embeddings=True, pad_token_id=0,
                          bos_token_id=0, eos_token_id=0)
        return cfg, MambaForCausalLM
    if shape == "mamba2-130m":
        from transformers import Mamba2Config, Mamba2ForCausalLM
        cfg = Mamba2Config(vocab_size=50288, hidden_size=768, num_hidden_layers=24, state_size=128, expand=2,
                           head_dim=64, num_heads=24, n_groups=1, conv_kernel=4, chunk_size=256,
                           use_bias=False, use_conv_bias=True, layer_norm_epsilon=1e-5,
                           tie_word_embeddings=True, pad_token_id=0, bos_token_id=0, eos_token_id=0)
        return cfg, Mamba2ForCausalLM
    if shape in ("lfm2-350m", "lfm2-1.2b"):
        from transformers import Lfm2Config, Lfm2ForCausalLM
        d, heads, ff = {"lfm2-350m": (1024, 16, 6656), "lfm2-1.2b": (2048, 32, 12288)}[shape]
        cfg = Lfm2Config(vocab_size=65536, hidden_size=d, num_hidden_layers=16, num_attention_heads=heads,
                         num_key_value_heads=8, intermediate_size=ff, block_ff_dim=ff,
                         block_auto_adjust_ff_dim=True, block_ffn_dim_multiplier=1.0, block_multiple_of=256,
                         conv_L_cache=3, conv_bias=False, layer_types=LFM2_LAYERS, norm_eps=1e-5,
                         rope_theta=1000000.0, max_position_embeddings=128000, tie_word_embeddings=True,
                         pad_token_id=0, bos_token_id=1, eos_token_id=7)
        return cfg, Lfm2ForCausalLM
    raise SystemExit(f"error: unknown shape `{shape}` (known: lfm2-350m, lfm2-1.2b, mamba-130m, "
                     "mamba2-130m, mamba-2.8b)")


def parameter_shapes(cfg, cls):
    """Names and shapes of the tensors save_pretrained would write, from the
    class built on the meta device (nothing allocated)."""
    with torch.device("meta"):
        model = cls(cfg)
    out = [(name, tuple(t.shape)) for name, t in model.state_dict().items()]
    if cfg.tie_word_embeddings:
        # save_pretrained stores a tied head once, as the embedding.
        out = [(n, s) for n, s in out if n != "lm_head.weight"]
    return out


def draw(name, shape, seed):
    """One tensor's values (float32), seeded by (seed, name)."""
    g = torch.Generator().manual_seed(seed * 1_000_003 + zlib.crc32(name.encode()))
    last = name.rsplit(".", 1)[-1]
    if last == "A_log":
        n = shape[-1] if len(shape) == 2 else shape[0]
        a = torch.log(torch.arange(1, n + 1, dtype=torch.float32))
        return a.expand(shape).contiguous() if len(shape) == 2 else a
    if last == "D":
        return torch.ones(shape)
    if last == "dt_bias" or name.endswith("dt_proj.bias"):
        lo, hi = math.log(1e-3), math.log(1e-1)
        dt = torch.exp(torch.rand(shape, generator=g) * (hi - lo) + lo).clamp(min=1e-4)
        return dt + torch.log(-torch.expm1(-dt))  # inverse softplus
    if "norm" in name and last == "weight":
        return torch.ones(shape)
    if last == "bias":
        return torch.zeros(shape)
    return torch.randn(shape, generator=g) * 0.02


def parse_size(text):
    units = {"KB": 1 << 10, "MB": 1 << 20, "GB": 1 << 30}
    for u, f in units.items():
        if text.upper().endswith(u):
            return int(float(text[:-2]) * f)
    return int(text)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--shape", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--dtype", choices=["f32", "bf16", "f16"], default="f32")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--shard-size", default="1GB", help="largest shard (bytes, or with KB/MB/GB)")
    ap.add_argument("--tokenizer-from", help="copy tokenizer.json (+ tokenizer_config.json) from this dir")
    a = ap.parse_args()
    dtype = {"f32": torch.float32, "bf16": torch.bfloat16, "f16": torch.float16}[a.dtype]
    width = {"f32": 4, "bf16": 2, "f16": 2}[a.dtype]
    limit = parse_size(a.shard_size)

    cfg, cls = make_config(a.shape)
    cfg.architectures = [cls.__name__]
    tensors = parameter_shapes(cfg, cls)

    # Plan the shards first (sizes are known), so their names can say "of N".
    shards, current, size = [], [], 0
    for name, shape in tensors:
        nbytes = math.prod(shape) * width
        if current and size + nbytes > limit:
            shards.append(current)
            current, size = [], 0
        current.append((name, shape))
        size += nbytes
    if current:
        shards.append(current)

    os.makedirs(a.out, exist_ok=True)
    cfg.save_pretrained(a.out)
    weight_map, total, params = {}, 0, 0
    for i, shard in enumerate(shards):
        file = (f"model-{i + 1:05d}-of-{len(shards):05d}.safetensors" if len(shards) > 1
                else "model.safetensors")
        data = {}
        for name, shape in shard:
            data[name] = draw(name, shape, a.seed).to(dtype).contiguous()
            weight_map[name] = file
            total += data[name].numel() * width
            params += data[name].numel()
        save_file(data, os.path.join(a.out, file), metadata={"format": "pt"})
        del data
        print(f"  {file}: {len(shard)} tensors", flush=True)
    if len(shards) > 1:
        with open(os.path.join(a.out, "model.safetensors.index.json"), "w") as f:
            json.dump({"metadata": {"total_size": total}, "weight_map": weight_map}, f, indent=1)
    if a.tokenizer_from:
        for t in ("tokenizer.json", "tokenizer_config.json"):
            src = os.path.join(a.tokenizer_from, t)
            if os.path.exists(src):
                shutil.copy(src, os.path.join(a.out, t))
    print(f"{a.shape}: {params / 1e6:.1f} M parameters, {total / 1e9:.2f} GB {a.dtype} in {len(shards)} "
          f"shard(s) -> {a.out}")


if __name__ == "__main__":
    main()
