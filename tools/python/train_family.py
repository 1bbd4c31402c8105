#!/usr/bin/env python3
"""Train a small model of another family (GRU, LSTM or Mamba-2) on the same
fortunes text, split and tokenizer as models/mamba-fortunes, for the quality
table (which family survives 2-bit weights best).

Saves the layout `eddy convert` reads to models/<family>-fortunes/ (weights
rounded to float16) with a TRAINING.md record. Test perplexity is measured
with `eddy eval` on the converted model (golden-tested against PyTorch), the
same procedure as for the Mamba-1 model.

Run: python3 tools/python/train_family.py --family gru --steps 409
"""
import argparse
import json
import math
import os
import shutil
import sys
import time

import torch
import torch.nn.functional as F
from safetensors.torch import save_file
from tokenizers import Tokenizer
from transformers import Mamba2Config, Mamba2ForCausalLM

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from make_family_fixtures import RnnLM  # noqa: E402
from rwkv7_reference import Rwkv7LM, batched_forward  # noqa: E402
from train_tiny import ROOT, read  # noqa: E402

TOKENIZER = os.path.join(ROOT, "models", "mamba-fortunes", "tokenizer.json")


def build(args, vocab):
    if args.family == "rwkv7":
        model = Rwkv7LM(vocab, args.d_model, args.layers, args.head_dim, 2 * args.d_model, lora=(32, 32, 16, 64))
        return model, None
    if args.family in ("gru", "lstm"):
        cfg = {"model_type": args.family, "vocab_size": vocab, "embedding_dim": args.d_model,
               "hidden_size": args.hidden, "num_layers": args.layers, "bias": True, "head_bias": True}
        model = RnnLM(args.family, vocab, args.d_model, args.hidden, args.layers)
        return model, cfg
    cfg = Mamba2Config(vocab_size=vocab, hidden_size=args.d_model, state_size=args.d_state,
                       num_heads=2 * args.d_model // args.head_dim, head_dim=args.head_dim, expand=2,
                       n_groups=1, num_hidden_layers=args.layers, conv_kernel=4, use_bias=False,
                       use_conv_bias=True, layer_norm_epsilon=1e-5, tie_word_embeddings=True,
                       chunk_size=64, bos_token_id=0, eos_token_id=0, pad_token_id=0)
    return Mamba2ForCausalLM(cfg).float(), cfg


def logits_of(model, family, ids):
    if family == "rwkv7":
        return batched_forward(model, ids)
    if family in ("gru", "lstm"):
        return model(ids)[0]
    return model(ids, use_cache=False).logits


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--family", choices=["gru", "lstm", "mamba2", "rwkv7"], required=True)
    ap.add_argument("--minutes", type=float, default=12, help="time budget (ignored with --steps)")
    ap.add_argument("--steps", type=int, default=0,
                    help="train exactly this many steps (409 = the Mamba-1 model's token budget)")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--layers", type=int, default=None)
    ap.add_argument("--d-model", type=int, default=256)
    ap.add_argument("--hidden", type=int, default=384, help="GRU/LSTM hidden width")
    ap.add_argument("--head-dim", type=int, default=32, help="Mamba-2 / RWKV-7 head width")
    ap.add_argument("--d-state", type=int, default=32, help="Mamba-2 state per head channel")
    ap.add_argument("--seq", type=int, default=128)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--lr", type=float, default=2e-3)
    args = ap.parse_args()
    if args.layers is None:
        args.layers = {"gru": 2, "lstm": 2, "mamba2": 4, "rwkv7": 3}[args.family]
    torch.set_num_threads(args.threads)
    torch.set_flush_denormal(True)
    torch.manual_seed(args.seed)
    out = os.path.join(ROOT, "models", f"{args.family}-fortunes")
    os.makedirs(out, exist_ok=True)

    tok = Tokenizer.from_file(TOKENIZER)
    vocab = tok.get_vocab_size()
    enc = lambda t: torch.tensor(tok.encode(t).ids, dtype=torch.long)
    train_ids, valid_ids = enc(read("train")), enc(read("valid"))
    model, cfg = build(args, vocab)
    n_params = sum(p.numel() for p in model.parameters())
    print(f"{args.family}: {n_params} parameters", flush=True)
    opt = torch.optim.AdamW(model.parameters(), lr=args.lr, betas=(0.9, 0.95), weight_decay=0.1)
    g = torch.Generator().manual_seed(args.seed)
    valid_starts = torch.arange(0, min(len(valid_ids) - args.seq - 1, 16 * 512), 512)
    valid_batch = torch.stack([valid_ids[s : s + args.seq + 1] for s in valid_starts])

    def valid_nll():
        model.eval()
        with torch.no_grad():
            lg = logits_of(model, args.family, valid_batch[:, :-1])
            v = F.cross_entropy(lg.reshape(-1, vocab), valid_batch[:, 1:].reshape(-1)).item()
        model.train()
        return v

    budget, t0, step, seen, log, warmup = args.minutes * 60, time.time(), 0, 0, [], 50
    model.train()
    while (step < args.steps) if args.steps else (time.time() - t0 < budget):
        frac = step / args.steps if args.steps else (time.time() - t0) / budget
        lr = args.lr * min(1.0, (step + 1) / warmup) * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * frac)))
        for pg in opt.param_groups:
            pg["lr"] = lr
        starts = torch.randint(0, len(train_ids) - args.seq - 1, (args.batch,), generator=g)
        batch = torch.stack([train_ids[s : s + args.seq + 1] for s in starts])
        lg = logits_of(model, args.family, batch[:, :-1])
        loss = F.cross_entropy(lg.reshape(-1, vocab), batch[:, 1:].reshape(-1))
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        step += 1
        seen += batch[:, :-1].numel()
        if step % 25 == 0:
            print(f"step {step} t={time.time() - t0:.0f}s lr={lr:.2e} loss={loss.item():.4f}", flush=True)
        if step % 200 == 0:
            log.append((step, round(valid_nll(), 4)))
            print(f"  valid nll {log[-1][1]}", flush=True)
    train_time = time.time() - t0
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(p.half().float())
    final_valid = valid_nll()

    for f in os.listdir(out):
        if f.endswith(".safetensors"):
            os.remove(os.path.join(out, f))
    if args.family == "rwkv7":
        save_file({k: v.half().contiguous() for k, v in model.state_dict_blinkdl().items()},
                  os.path.join(out, "model.safetensors"))
    elif args.family in ("gru", "lstm"):
        save_file({k: v.half().contiguous() for k, v in model.state_dict().items()},
                  os.path.join(out, "model.safetensors"))
        with open(os.path.join(out, "config.json"), "w") as f:
            json.dump(cfg, f, indent=2)
    else:
        model.half().save_pretrained(out, safe_serialization=True)
    shutil.copy(TOKENIZER, os.path.join(out, "tokenizer.json"))
    cmd = "python3 tools/python/train_family.py " + " ".join(
        f"--{k.replace('_', '-')} {v}" for k, v in vars(args).items())
    md = [
        f"# {args.family}-fortunes: training record",
        "",
        f"Command: `{cmd}`",
        "",
        f"- family: {args.family}, {args.layers} layers, width {args.d_model}"
        + {"mamba2": f", head_dim {args.head_dim}, d_state {args.d_state}, expand 2, 1 group, tied head",
           "rwkv7": f", head size {args.head_dim}, ffn {2 * args.d_model}, LoRA ranks 32/32/16/64, untied head",
           }.get(args.family, f", hidden {args.hidden}"),
        f"- tokenizer: models/mamba-fortunes/tokenizer.json (same ids as the Mamba-1 model)",
        f"- parameters: {n_params}",
        f"- training: {step} steps of {args.batch}x{args.seq} tokens ({seen} tokens) in {train_time / 60:.1f} min "
        f"on {args.threads} CPU thread(s), AdamW lr {args.lr} warmup {warmup} + cosine",
        f"- validation curve (step, mean nll of 16 windows of {args.seq} valid tokens): {log}",
        f"- final (f16-rounded weights) valid window nll: {final_valid:.4f}",
        "- test perplexity: measured with `eddy eval --ppl data/fortunes/test.txt` (README quality table)",
    ]
    with open(os.path.join(out, "TRAINING.md"), "w") as f:
        f.write("\n".join(md) + "\n")
    print(f"done: {step} steps, valid nll {final_valid:.4f}")


if __name__ == "__main__":
    main()
