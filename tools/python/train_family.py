#!/usr/bin/env python3
"""Train a small model of another family (GRU, LSTM, Mamba-2, RWKV-7 or the
LFM2 conv/attention hybrid) on the same fortunes text, split and tokenizer as
models/mamba-fortunes, for the quality table (which family survives 2-bit
weights best).

Saves the layout `eddy convert` reads to models/<family>-fortunes/ (or models/<--name>/; weights
rounded to float16) with a TRAINING.md record. Test perplexity is measured
with `eddy eval` on the converted model (golden-tested against PyTorch), the
same procedure as for the Mamba-1 model. LFM2 has full-attention layers, so a
single 56k-token stream is not how it can run; its TRAINING.md records
PyTorch perplexities of the f16-rounded weights instead (see lfm2_eval).

Run: python3 tools/python/train_family.py --family gru --steps 409
     python3 tools/python/train_family.py --family lfm2 --steps 409 --seq 256 --batch 8
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
from transformers import Lfm2Config, Lfm2ForCausalLM, Mamba2Config, Mamba2ForCausalLM

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from make_family_fixtures import RnnLM  # noqa: E402
from make_hybrid_fixtures import lambda_mask  # noqa: E402
from rwkv7_reference import Rwkv7LM, batched_forward  # noqa: E402
from train_tiny import ROOT, read, train_step, warmup_cosine_lr  # noqa: E402

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
    if args.family == "lfm2":
        attn = [int(i) for i in args.attn_layers.split(",")]
        cfg = Lfm2Config(vocab_size=vocab, hidden_size=args.d_model, intermediate_size=args.ffn,
                         block_auto_adjust_ff_dim=False, num_hidden_layers=args.layers,
                         num_attention_heads=args.heads, num_key_value_heads=args.kv_heads,
                         layer_types=["full_attention" if i in attn else "conv" for i in range(args.layers)],
                         conv_L_cache=3, conv_bias=False, norm_eps=1e-5, tie_word_embeddings=True,
                         max_position_embeddings=4096, rope_parameters={"rope_type": "default", "rope_theta": 1e6},
                         pad_token_id=None, bos_token_id=0, eos_token_id=0)
        return Lfm2ForCausalLM(cfg).float(), cfg
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


def lfm2_window_nll(model, ids, seq, batch=8):
    """Mean NLL over non-overlapping windows of `seq` predicted tokens, each
    window a fresh context starting at position 0 (how the model was trained)."""
    total, count = 0.0, 0
    starts = list(range(0, len(ids) - 1, seq))
    for k in range(0, len(starts), batch):
        for s0 in starts[k : k + batch]:
            w = ids[s0 : s0 + seq + 1]
            lg = model(w[None, :-1], use_cache=False).logits[0]
            total += F.cross_entropy(lg, w[1:], reduction="sum").item()
            count += len(w) - 1
    return total / count, count


def lfm2_lambda_logits(model, ids, positions, sinks, window):
    """Logits of `ids` at original `positions` when full-attention layers see
    only the sinks and the window (make_hybrid_fixtures.lambda_mask)."""
    mask = lambda_mask(positions, sinks, window, dtype=next(model.parameters()).dtype)
    return model(ids[None], position_ids=positions[None], attention_mask={"full_attention": mask, "conv": None},
                 use_cache=False).logits[0]


def lfm2_lambda_stream(model, ids, sinks, window, chunk=512):
    """Yields (a, logits of positions a..b-1) for the whole text as one stream,
    as a runtime with a KV cache of the `sinks` first tokens plus the last
    `window` tokens (original RoPE positions) computes it. A position's logits
    depend on at most `reach` earlier tokens besides the sinks (conv: L_cache-1
    per layer, attention: window-1 per layer), so each chunk is computed
    exactly from the sinks plus `reach` + 1 tokens of left context."""
    cfg = model.config
    reach = sum(window - 1 if t == "full_attention" else cfg.conv_L_cache - 1 for t in cfg.layer_types)
    for a in range(0, len(ids), chunk):
        b = min(a + chunk, len(ids))
        c = a - reach - 1
        if c <= sinks:
            positions = torch.arange(0, b)
        else:
            positions = torch.cat([torch.arange(0, sinks), torch.arange(c, b)])
        yield a, lfm2_lambda_logits(model, ids[positions], positions, sinks, window)[-(b - a) :]


def lfm2_lambda_stream_nll(model, ids, sinks, window):
    """Mean NLL of tokens 1..N-1 scored by lfm2_lambda_stream."""
    total = 0.0
    for a, lg in lfm2_lambda_stream(model, ids[:-1], sinks, window):
        total += F.cross_entropy(lg, ids[a + 1 : a + 1 + len(lg)], reduction="sum").item()
    return total / (len(ids) - 1), len(ids) - 1


def lfm2_eval(model, splits, seq, log):
    """PyTorch perplexities of the LFM2 model; returns TRAINING.md lines."""
    model.eval()
    lines = []
    with torch.no_grad():
        # The chunked stream must equal one lambda-masked forward over the prefix.
        ids = splits["test"][:1500]
        whole = lfm2_lambda_logits(model, ids, torch.arange(len(ids)), 4, 64)
        streamed = torch.cat([lg for _, lg in lfm2_lambda_stream(model, ids, 4, 64, chunk=256)])
        diff = (whole - streamed).abs().max().item()
        assert diff < 1e-3 * whole.abs().max().item(), diff
        log(f"lambda stream check (S=4, W=64, 1500 tokens): max |one forward - chunked| {diff:.1e}, "
            f"max |logit| {whole.abs().max().item():.1f}")
        for split in ("train", "valid", "test"):
            ids = splits[split]
            if split == "train":
                ids = ids[: len(splits["test"])]
            t0 = time.time()
            nll, n = lfm2_window_nll(model, ids, seq)
            line = f"- {split}: windows of {seq}: nll {nll:.4f} ppl {math.exp(nll):.3f} over {n} tokens"
            for sinks, window in ((4, seq), (0, seq)):
                snll, _ = lfm2_lambda_stream_nll(model, ids, sinks, window)
                line += f"; stream S={sinks} W={window}: nll {snll:.4f} ppl {math.exp(snll):.3f}"
            log(line + f" ({time.time() - t0:.0f}s)")
            lines.append(line)
    model.train()
    return lines


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--family", choices=["gru", "lstm", "mamba2", "rwkv7", "lfm2"], required=True)
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
    ap.add_argument("--ffn", type=int, default=256, help="LFM2 SwiGLU width")
    ap.add_argument("--heads", type=int, default=4, help="LFM2 attention heads")
    ap.add_argument("--kv-heads", type=int, default=2, help="LFM2 key/value heads")
    ap.add_argument("--attn-layers", default="2,5", help="LFM2 full-attention layer indices")
    ap.add_argument("--seq", type=int, default=128)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--name", default=None, help="model folder under models/ (default FAMILY-fortunes)")
    args = ap.parse_args()
    if args.name is None:
        args.name = f"{args.family}-fortunes"
    if args.layers is None:
        args.layers = {"gru": 2, "lstm": 2, "mamba2": 4, "rwkv7": 3, "lfm2": 6}[args.family]
    torch.set_num_threads(args.threads)
    torch.set_flush_denormal(True)
    torch.manual_seed(args.seed)
    out = os.path.join(ROOT, "models", args.name)
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

    budget, t0, step, seen, log, warmup, recent = args.minutes * 60, time.time(), 0, 0, [], 50, []
    model.train()
    while (step < args.steps) if args.steps else (time.time() - t0 < budget):
        frac = step / args.steps if args.steps else (time.time() - t0) / budget
        lr = warmup_cosine_lr(args.lr, step, warmup, frac)
        loss, tokens = train_step(
            model, opt, lr, train_ids, args, g, vocab, lambda x: logits_of(model, args.family, x)
        )
        step += 1
        seen += tokens
        recent.append(loss.item())
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
    eval_lines = []
    if args.family == "lfm2":
        splits = {"train": train_ids, "valid": valid_ids, "test": enc(read("test"))}
        eval_lines = lfm2_eval(model, splits, args.seq, lambda m: print(m, flush=True))

    for f in os.listdir(out):
        if f.endswith(".safetensors"):
            os.remove(os.path.join(out, f))
    if args.family == "rwkv7":
        save_file({k: v.half().contiguous() for k, v in model.checkpoint_state_dict().items()},
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
        f"# {args.name}: training record",
        "",
        f"Command: `{cmd}`",
        "",
        f"- family: {args.family}, {args.layers} layers, width {args.d_model}"
        + {"mamba2": f", head_dim {args.head_dim}, d_state {args.d_state}, expand 2, 1 group, tied head",
           "rwkv7": f", head size {args.head_dim}, ffn {2 * args.d_model}, LoRA ranks 32/32/16/64, untied head",
           "lfm2": f", layer_types {getattr(cfg, 'layer_types', None)}, heads {args.heads}, kv heads "
                   f"{args.kv_heads}, SwiGLU {args.ffn}, conv L_cache 3, RoPE theta 1e6, tied head",
           }.get(args.family, f", hidden {args.hidden}"),
        f"- tokenizer: models/mamba-fortunes/tokenizer.json (same ids as the Mamba-1 model)",
        f"- parameters: {n_params}",
        f"- training: {step} steps of {args.batch}x{args.seq} tokens ({seen} tokens) in {train_time / 60:.1f} min "
        f"on {args.threads} CPU thread(s), AdamW lr {args.lr} warmup {warmup} + cosine",
        f"- validation curve (step, mean nll of 16 windows of {args.seq} valid tokens): {log}",
        f"- mean training loss of the last 25 steps: {sum(recent[-25:]) / len(recent[-25:]):.4f}",
        f"- final (f16-rounded weights) valid window nll: {final_valid:.4f}",
    ]
    if eval_lines:
        md += [
            "",
            "PyTorch perplexities of the f16-rounded weights (float32 compute; train = its first "
            "len(test) tokens):",
            "",
            *eval_lines,
            "",
            f"\"windows of {args.seq}\": non-overlapping windows, each a fresh context from position 0 (as trained). "
            "\"stream S W\": the whole split as one stream scoring tokens 1..N-1, full-attention layers seeing "
            "the first S tokens plus the last W (itself included) at their original RoPE positions, conv "
            "state carried: what a runtime with a bounded KV cache computes (train_family.lfm2_lambda_stream_nll).",
        ]
    else:
        md.append("- test perplexity: measured with `eddy eval --ppl data/fortunes/test.txt` (README quality table)")
    with open(os.path.join(out, "TRAINING.md"), "w") as f:
        f.write("\n".join(md) + "\n")
    print(f"done: {step} steps, valid nll {final_valid:.4f}")


if __name__ == "__main__":
    main()
