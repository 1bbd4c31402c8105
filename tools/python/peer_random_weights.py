#!/usr/bin/env python3
"""Random-weight Hugging Face checkpoints at named public shapes, for the
llama.cpp peer benchmark (scripts/peer-llama.sh).

The model is transformers' own class (MambaForCausalLM, Mamba2ForCausalLM,
Lfm2ForCausalLM) at the published shape, seeded; every matrix and embedding
is redrawn from N(0, 0.02) while the parameters the class initializes with
meaning (A_log, D, dt_bias, norms) keep the class's values. Saved with
save_pretrained (safetensors) plus a tokenizer both converters accept.

Tokenizer: the network here reaches package registries only, so no hub
tokenizer can be fetched. llama.cpp's source ships GPT-2's vocabulary and
merges in models/ggml-vocab-gpt-2.gguf; this script rebuilds GPT-2's
byte-level BPE tokenizer.json from it with the `tokenizers` library. Its
tokens for llama.cpp's check text hash to the digest convert_hf_to_gguf.py
knows as "gpt-2", so the converter takes it as is (checked below; nothing
in the converter is patched). Token ids past GPT-2's 50257 are padding in
both converters; the speed of a model does not depend on its tokenizer.

Shapes (what was used; from the published config.json of each model):
  mamba-130m   state-spaces/mamba-130m-hf: d_model 768, 24 layers, vocab 50280,
               d_state 16, expand 2, d_conv 4, dt_rank 48, tied embeddings
  mamba2-130m  state-spaces/mamba2-130m: hidden 768, 24 layers, d_state 128,
               head_dim 64 (24 heads), n_groups 1, expand 2, d_conv 4,
               chunk 256, vocab 50288 (50277 padded to 16), tied embeddings
  lfm2-350m    LiquidAI/LFM2-350M: hidden 1024, 16 layers, attention at layers
               2,5,8,10,12,14 (the rest gated short convolutions, conv_L_cache
               3, no conv bias), 16 heads / 8 KV heads (head_dim 64),
               block_ff_dim 6656 with auto-adjust (2/3, multiple of 256) ->
               SwiGLU width 4608, vocab 65536, norm_eps 1e-5, rope_theta 1e6,
               tied embeddings

Usage: peer_random_weights.py --shape mamba2-130m --out DIR --gpt2-vocab PATH.gguf [--seed 0]
"""

import argparse
import hashlib
import json
import os
import sys

import torch

LFM2_LAYERS = ["conv", "conv", "full_attention", "conv", "conv", "full_attention", "conv", "conv",
               "full_attention", "conv", "full_attention", "conv", "full_attention", "conv",
               "full_attention", "conv"]

# The digest convert_hf_to_gguf.py's get_vocab_base_pre() maps to "gpt-2"
# (openai-community/gpt2): sha256 of str(tokenizer.encode(CHKTXT)).
GPT2_CHKHSH = "3ce83efda5659b07b1ad37ca97ca5797ea4285d9b9ab0dc679e4a720c9da7454"


def make_model(shape):
    """The transformers model at a named public shape (class-initialized)."""
    if shape == "mamba-130m":
        from transformers import MambaConfig, MambaForCausalLM
        cfg = MambaConfig(vocab_size=50280, hidden_size=768, num_hidden_layers=24, state_size=16, expand=2,
                          conv_kernel=4, time_step_rank=48, use_bias=False, use_conv_bias=True,
                          layer_norm_epsilon=1e-5, tie_word_embeddings=True, pad_token_id=0,
                          bos_token_id=0, eos_token_id=0)
        return MambaForCausalLM(cfg)
    if shape == "mamba2-130m":
        from transformers import Mamba2Config, Mamba2ForCausalLM
        cfg = Mamba2Config(vocab_size=50288, hidden_size=768, num_hidden_layers=24, state_size=128, expand=2,
                           head_dim=64, num_heads=24, n_groups=1, conv_kernel=4, chunk_size=256,
                           use_bias=False, use_conv_bias=True, layer_norm_epsilon=1e-5,
                           tie_word_embeddings=True, pad_token_id=0, bos_token_id=0, eos_token_id=0)
        return Mamba2ForCausalLM(cfg)
    if shape == "lfm2-350m":
        from transformers import Lfm2Config, Lfm2ForCausalLM
        cfg = Lfm2Config(vocab_size=65536, hidden_size=1024, num_hidden_layers=16, num_attention_heads=16,
                         num_key_value_heads=8, intermediate_size=6656, block_ff_dim=6656,
                         block_auto_adjust_ff_dim=True, block_ffn_dim_multiplier=1.0, block_multiple_of=256,
                         conv_L_cache=3, conv_bias=False, layer_types=LFM2_LAYERS, norm_eps=1e-5,
                         rope_theta=1000000.0, max_position_embeddings=128000, tie_word_embeddings=True,
                         pad_token_id=0, bos_token_id=1, eos_token_id=7)
        return Lfm2ForCausalLM(cfg)
    raise SystemExit(f"error: unknown shape `{shape}` (known: mamba-130m, mamba2-130m, lfm2-350m)")


def randomize(model, seed):
    """N(0, 0.02) for every matrix/embedding/conv kernel; keep the class's
    initialization of A_log, D, dt_bias, norm weights and biases."""
    g = torch.Generator().manual_seed(seed)
    keep = ("A_log", "dt_bias", ".D", "norm", "bias")
    with torch.no_grad():
        for name, p in model.named_parameters():
            if p.dim() < 2 or any(k in name for k in keep):
                continue
            p.copy_(torch.randn(p.shape, generator=g) * 0.02)


def gpt2_tokenizer(vocab_gguf):
    """GPT-2's byte-level BPE, rebuilt from llama.cpp's models/ggml-vocab-gpt-2.gguf."""
    from gguf import GGUFReader
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors
    r = GGUFReader(vocab_gguf)

    def strings(key):
        f = r.fields[key]
        return [bytes(f.parts[i]).decode("utf-8") for i in f.data]

    tokens = strings("tokenizer.ggml.tokens")
    merges = [tuple(m.split(" ", 1)) for m in strings("tokenizer.ggml.merges")]
    vocab = {t: i for i, t in enumerate(tokens)}
    tok = Tokenizer(models.BPE(vocab=vocab, merges=merges, fuse_unk=False))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, trim_offsets=True, use_regex=True)
    tok.post_processor = processors.ByteLevel(trim_offsets=False)
    tok.decoder = decoders.ByteLevel()
    from tokenizers import AddedToken
    tok.add_special_tokens([AddedToken("<|endoftext|>", special=True, normalized=False)])
    return tok


def check_hash(out_dir):
    """The converter's pre-tokenizer check, run here so a mismatch fails early."""
    sys.path.insert(0, "")
    from transformers import AutoTokenizer
    chktxt = ('\n \n\n \n\n\n \t \t\t \t\n  \n   \n    \n     \n🚀 (normal) 😶\u200d🌫️ (multiple emojis '
              'concatenated) ✅ 🦙🦙 3 33 333 3333 33333 333333 3333333 33333333 3.3 3..3 3...3 '
              'កាន់តែពិសេសអាច😁 ?我想在apple工作1314151天～ ------======= нещо на Български '
              '\'\'\'\'\'\'```````""""......!!!!!!?????? I\'ve been \'told he\'s there, \'RE you sure? '
              '\'M not sure I\'ll make it, \'D you like some tea? We\'Ve a\'lL')
    t = AutoTokenizer.from_pretrained(out_dir)
    h = hashlib.sha256(str(t.encode(chktxt)).encode()).hexdigest()
    return h


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--shape", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--gpt2-vocab", required=True, help="llama.cpp's models/ggml-vocab-gpt-2.gguf")
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()
    torch.manual_seed(a.seed)
    model = make_model(a.shape).float()
    randomize(model, a.seed + 1)
    os.makedirs(a.out, exist_ok=True)
    model.save_pretrained(a.out, safe_serialization=True)
    gpt2_tokenizer(a.gpt2_vocab).save(os.path.join(a.out, "tokenizer.json"))
    with open(os.path.join(a.out, "tokenizer_config.json"), "w") as f:
        json.dump({"tokenizer_class": "PreTrainedTokenizerFast", "model_max_length": 1 << 20,
                   "eos_token": "<|endoftext|>", "bos_token": "<|endoftext|>", "unk_token": "<|endoftext|>",
                   "add_bos_token": False, "add_prefix_space": False}, f, indent=1)
    h = check_hash(a.out)
    if h != GPT2_CHKHSH:
        raise SystemExit(f"error: rebuilt GPT-2 tokenizer hashes to {h}, not the converter's gpt-2 digest "
                         f"{GPT2_CHKHSH}; convert_hf_to_gguf.py would refuse it")
    n = sum(p.numel() for p in model.parameters())
    print(f"{a.shape}: {n / 1e6:.1f} M parameters -> {a.out} (tokenizer: GPT-2 from llama.cpp's vocab, "
          f"pre-tokenizer hash = converter's gpt-2)")


if __name__ == "__main__":
    main()
