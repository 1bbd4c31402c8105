#!/usr/bin/env python3
"""Train eddy's small test model: a Mamba-1 (HF MambaForCausalLM layout) on
the fortunes corpus (data/fortunes, see SPLIT.md).

Training uses a forward written here that is mathematically HF's Mamba-1
(checked against HF's own forward at the end) but batches everything except
the recurrence, which HF's pure-PyTorch path runs far too slowly to train on.

Run: python3 tools/python/train_tiny.py  (defaults: 22 minutes, 2 threads)
"""
import argparse
import json
import math
import os
import time

import torch
import torch.nn.functional as F
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import MambaConfig, MambaForCausalLM

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DATA = os.path.join(ROOT, "data", "fortunes")
OUT = os.path.join(ROOT, "models", "mamba-fortunes")


def read(split):
    with open(os.path.join(DATA, f"{split}.txt"), encoding="utf-8") as f:
        return f.read()


def train_tokenizer(text, vocab):
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab, initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False
    )
    tok.train_from_iterator([text], trainer=trainer)
    return tok


def rms_norm(x, w, eps):
    var = x.pow(2).mean(-1, keepdim=True)
    return w * (x * torch.rsqrt(var + eps))


def mixer(m, x, state=None):
    """HF MambaMixer math. x: [B, L, d]. state: optional (conv, ssm) carried in."""
    B, L, _ = x.shape
    di = m.intermediate_size
    xz = m.in_proj(x)
    xs, z = xz[..., :di], xz[..., di:]
    k = m.conv_kernel_size
    xs_t = xs.transpose(1, 2)
    prev = state[0] if state is not None else xs_t.new_zeros(B, di, k - 1)
    xpad = torch.cat([prev, xs_t], dim=2)
    u = F.conv1d(xpad, m.conv1d.weight, m.conv1d.bias, groups=di)
    u = F.silu(u).transpose(1, 2)  # [B, L, di]
    conv_state = xpad[:, :, -(k - 1):]
    x_dbl = m.x_proj(u)
    r, ds = m.time_step_rank, m.ssm_state_size
    dt = F.softplus(x_dbl[..., :r] @ m.dt_proj.weight.t() + m.dt_proj.bias)  # [B, L, di]
    Bm, Cm = x_dbl[..., r : r + ds], x_dbl[..., r + ds :]
    A = -torch.exp(m.A_log.float())  # [di, ds]
    dA = torch.exp(dt.unsqueeze(-1) * A)  # [B, L, di, ds]
    dBu = (dt * u).unsqueeze(-1) * Bm.unsqueeze(2)  # [B, L, di, ds]
    h = state[1] if state is not None else x.new_zeros(B, di, ds)
    hs = []
    # unbind (not dA[:, t]): its backward stacks the gradients once instead
    # of materializing a full-size zero tensor per step.
    for dA_t, dBu_t in zip(dA.unbind(1), dBu.unbind(1)):
        h = dA_t * h + dBu_t
        hs.append(h)
    H = torch.stack(hs, dim=1)  # [B, L, di, ds]
    y = torch.einsum("blds,bls->bld", H, Cm) + u * m.D
    y = y * F.silu(z)
    return m.out_proj(y), (conv_state, h)


def forward(model, ids, states=None):
    bb = model.backbone
    x = bb.embeddings(ids)
    new_states = []
    for i, layer in enumerate(bb.layers):
        h, st = mixer(layer.mixer, rms_norm(x, layer.norm.weight, layer.norm.variance_epsilon),
                      None if states is None else states[i])
        x = x + h
        new_states.append(st)
    x = rms_norm(x, bb.norm_f.weight, bb.norm_f.variance_epsilon)
    return model.lm_head(x), new_states


def stream_nll(model, ids, chunk=512):
    """Mean NLL of tokens 1..N-1 over one stream, state carried across chunks."""
    total, count, states = 0.0, 0, None
    with torch.no_grad():
        for s in range(0, len(ids) - 1, chunk):
            inp = ids[s : min(s + chunk, len(ids) - 1)][None]
            tgt = ids[s + 1 : s + 1 + inp.shape[1]][None]
            logits, states = forward(model, inp, states)
            total += F.cross_entropy(logits[0].float(), tgt[0], reduction="sum").item()
            count += tgt.shape[1]
    return total / count, count


def warmup_cosine_lr(base, step, warmup, frac):
    """Linear warm-up over `warmup` steps, then cosine decay to a tenth at `frac` = 1."""
    return base * min(1.0, (step + 1) / warmup) * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * frac)))


def train_step(model, opt, lr, train_ids, args, g, vocab, logits_fn):
    """One clipped optimiser step at `lr` on `args.batch` random windows of
    `args.seq + 1` tokens drawn with `g`; returns (loss, input tokens seen)."""
    for pg in opt.param_groups:
        pg["lr"] = lr
    starts = torch.randint(0, len(train_ids) - args.seq - 1, (args.batch,), generator=g)
    batch = torch.stack([train_ids[s : s + args.seq + 1] for s in starts])
    logits = logits_fn(batch[:, :-1])
    loss = F.cross_entropy(logits.reshape(-1, vocab), batch[:, 1:].reshape(-1))
    opt.zero_grad()
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
    opt.step()
    return loss, batch[:, :-1].numel()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--minutes", type=float, default=22)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--layers", type=int, default=4)
    ap.add_argument("--d-model", type=int, default=256)
    ap.add_argument("--vocab", type=int, default=1024)
    ap.add_argument("--seq", type=int, default=128)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--lr", type=float, default=2e-3)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    # exp(dt * A) underflows to subnormals, which are ~100x slower on x86.
    torch.set_flush_denormal(True)
    torch.manual_seed(args.seed)
    os.makedirs(OUT, exist_ok=True)

    train_text, valid_text, test_text = read("train"), read("valid"), read("test")
    tok = train_tokenizer(train_text, args.vocab)
    tok.save(os.path.join(OUT, "tokenizer.json"))
    enc = lambda t: torch.tensor(tok.encode(t).ids, dtype=torch.long)
    train_ids, valid_ids, test_ids = enc(train_text), enc(valid_text), enc(test_text)
    print(f"tokens: train {len(train_ids)}, valid {len(valid_ids)}, test {len(test_ids)}", flush=True)

    cfg = MambaConfig(vocab_size=args.vocab, hidden_size=args.d_model, state_size=16,
                      num_hidden_layers=args.layers, expand=2, conv_kernel=4, time_step_rank="auto",
                      use_bias=False, use_conv_bias=True, tie_word_embeddings=True,
                      layer_norm_epsilon=1e-5, bos_token_id=0, eos_token_id=0, pad_token_id=0)
    model = MambaForCausalLM(cfg).float()
    n_params = sum(p.numel() for p in model.parameters())
    print(f"parameters: {n_params}", flush=True)
    opt = torch.optim.AdamW(model.parameters(), lr=args.lr, betas=(0.9, 0.95), weight_decay=0.1)
    budget = args.minutes * 60
    t0 = time.time()
    step, seen = 0, 0
    g = torch.Generator().manual_seed(args.seed)
    warmup = 50
    log = []
    while True:
        elapsed = time.time() - t0
        if elapsed > budget:
            break
        lr = warmup_cosine_lr(args.lr, step, warmup, elapsed / budget)
        loss, tokens = train_step(model, opt, lr, train_ids, args, g, args.vocab, lambda x: forward(model, x)[0])
        step += 1
        seen += tokens
        if step % 25 == 0:
            print(f"step {step} t={elapsed:.0f}s lr={lr:.2e} loss={loss.item():.4f}", flush=True)
        if step % 300 == 0:
            v, _ = stream_nll(model, valid_ids[:8192])
            log.append((step, v))
            print(f"  valid nll {v:.4f} ppl {math.exp(v):.2f}", flush=True)
    train_time = time.time() - t0

    # Round to f16 (what is saved) and evaluate that.
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(p.half().float())
    model.eval()
    valid_nll, _ = stream_nll(model, valid_ids)
    test_nll, test_count = stream_nll(model, test_ids)

    # Check the training forward against HF's own forward.
    batch = valid_ids[: 257][None]
    with torch.no_grad():
        mine, _ = forward(model, batch[:, :-1])
        mine_loss = F.cross_entropy(mine[0], batch[0, 1:]).item()
        hf_loss = F.cross_entropy(model(batch[:, :-1], use_cache=False).logits[0], batch[0, 1:]).item()
    rel = abs(mine_loss - hf_loss) / hf_loss
    print(f"check: my forward loss {mine_loss:.6f}, HF forward loss {hf_loss:.6f}, rel diff {rel:.2e}")
    assert rel < 1e-4, "training forward disagrees with HF"

    model.half().save_pretrained(OUT, safe_serialization=True)
    model.float()
    prompt = "The meaning of life is"
    ids = torch.tensor([tok.encode(prompt).ids])
    with torch.no_grad():
        greedy = model.generate(ids, max_new_tokens=200, do_sample=False)
        torch.manual_seed(0)
        sampled = model.generate(ids, max_new_tokens=200, do_sample=True, temperature=0.8, top_k=0)
    greedy_text = tok.decode(greedy[0].tolist())
    sampled_text = tok.decode(sampled[0].tolist())
    result = {
        "test_tokens": test_count + 1,
        "test_ppl": round(math.exp(test_nll), 6),
        "valid_ppl": round(math.exp(valid_nll), 6),
    }
    with open(os.path.join(OUT, "eval.json"), "w") as f:
        json.dump(result, f, indent=1)
    cmd = "python3 tools/python/train_tiny.py " + " ".join(
        f"--{k.replace('_', '-')} {v}" for k, v in vars(args).items())
    md = [
        "# mamba-fortunes: training record",
        "",
        f"Command: `{cmd}`",
        "",
        f"- architecture: MambaForCausalLM, d_model {args.d_model}, {args.layers} layers, d_state 16, "
        f"expand 2, d_conv 4, vocab {args.vocab} (byte-level BPE trained on train.txt), tied head",
        f"- parameters: {n_params}",
        f"- training: {step} steps of {args.batch}x{args.seq} tokens ({seen} tokens) in {train_time/60:.1f} min "
        f"on {args.threads} CPU thread(s), AdamW lr {args.lr} warmup {warmup} + cosine",
        f"- validation curve (step, nll on the first 8192 valid tokens): {log}",
        f"- weights saved as float16; numbers below use the f16-rounded weights in float32",
        f"- valid ppl: {math.exp(valid_nll):.6g}",
        f"- test ppl: {math.exp(test_nll):.6g} over {test_count} predicted tokens",
        f"- check: training forward loss {mine_loss:.6f} vs HF forward {hf_loss:.6f} (rel {rel:.1e})",
        "",
        "Test perplexity procedure (eddy's `eddy eval --ppl data/fortunes/test.txt` does the same):",
        "tokenize the whole of test.txt as one sequence (no special tokens), run it as one stream with",
        "the recurrent state carried across chunks of 512 tokens, score tokens 1..N-1 from their",
        "prefixes, ppl = exp(mean NLL).",
        "",
        "## Samples (prompt \"The meaning of life is\", 200 tokens)",
        "",
        "Greedy:",
        "",
        "```",
        greedy_text,
        "```",
        "",
        "Temperature 0.8, seed 0:",
        "",
        "```",
        sampled_text,
        "```",
    ]
    with open(os.path.join(OUT, "TRAINING.md"), "w") as f:
        f.write("\n".join(md) + "\n")
    print(json.dumps(result))
    print(greedy_text)


if __name__ == "__main__":
    main()
