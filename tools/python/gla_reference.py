#!/usr/bin/env python3
"""A gated linear attention (GLA) language model in plain PyTorch, written
here from the GLA paper (Yang et al., 2024) with the parameter names and
defaults of fla's `GLAForCausalLM` (no short conv, no feature map, output
gate with a fused swish RMSNorm, gk low-rank projection, logsigmoid / 16).
fla's kernels need GPUs, so eddy's golden test compares against this file.

`parallel_logits` computes all positions at once from the closed form
o_t = sum_{s<=t} (q_t * exp(G_t - G_s)) . k_s v_s^T (G = cumulative log gate);
`recurrent_logits` runs the state recurrence token by token. They agree.
"""
import math

import torch
import torch.nn.functional as F
from named_params import NamedParams


class GlaLM(NamedParams):
    def __init__(self, vocab, hidden, layers, heads, ffn, expand_k=0.5, rank=16, normalizer=16.0, eps=1e-6):
        super().__init__()
        self.H, self.L, self.eps, self.normalizer = heads, layers, eps, normalizer
        self.kd, self.vd = int(hidden * expand_k), hidden
        self.hk, self.hv = self.kd // heads, self.vd // heads
        p = {"model.embeddings.weight": torch.randn(vocab, hidden)}
        for i in range(layers):
            b = f"model.layers.{i}."
            p[b + "attn_norm.weight"] = 1 + 0.1 * torch.randn(hidden)
            for name, rows in (("q_proj", self.kd), ("k_proj", self.kd), ("v_proj", self.vd), ("g_proj", self.vd)):
                p[b + f"attn.{name}.weight"] = torch.randn(rows, hidden) / math.sqrt(hidden)
            p[b + "attn.gk_proj.0.weight"] = torch.randn(rank, hidden) / math.sqrt(hidden)
            p[b + "attn.gk_proj.1.weight"] = torch.randn(self.kd, rank) / math.sqrt(rank)
            p[b + "attn.gk_proj.1.bias"] = torch.randn(self.kd) + 2.0
            p[b + "attn.g_norm_swish_gate.weight"] = 1 + 0.1 * torch.randn(self.hv)
            p[b + "attn.o_proj.weight"] = torch.randn(hidden, self.vd) / math.sqrt(self.vd)
            p[b + "mlp_norm.weight"] = 1 + 0.1 * torch.randn(hidden)
            p[b + "mlp.gate_proj.weight"] = torch.randn(ffn, hidden) / math.sqrt(hidden)
            p[b + "mlp.up_proj.weight"] = torch.randn(ffn, hidden) / math.sqrt(hidden)
            p[b + "mlp.down_proj.weight"] = torch.randn(hidden, ffn) / math.sqrt(ffn)
        p["model.norm.weight"] = 1 + 0.1 * torch.randn(hidden)
        p["lm_head.weight"] = torch.randn(vocab, hidden) / math.sqrt(hidden)
        self.set_params(p)

    def rms(self, x, weight):
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps) * weight

    def projections(self, i, x):
        b = f"model.layers.{i}.attn."
        q, k, v, g = (x @ self.w(b + f"{n}.weight").t() for n in ("q_proj", "k_proj", "v_proj", "g_proj"))
        gk = (x @ self.w(b + "gk_proj.0.weight").t()) @ self.w(b + "gk_proj.1.weight").t() + self.w(b + "gk_proj.1.bias")
        gk = F.logsigmoid(gk) / self.normalizer
        T = x.shape[0]
        return (q.view(T, self.H, self.hk) * self.hk ** -0.5, k.view(T, self.H, self.hk), v.view(T, self.H, self.hv),
                g.view(T, self.H, self.hv), gk.view(T, self.H, self.hk))

    def finish(self, i, x, o, g):
        b = f"model.layers.{i}."
        o = self.rms(o, self.w(b + "attn.g_norm_swish_gate.weight")) * F.silu(g)
        x = x + o.reshape(x.shape[0], -1) @ self.w(b + "attn.o_proj.weight").t()
        h = self.rms(x, self.w(b + "mlp_norm.weight"))
        mlp = (F.silu(h @ self.w(b + "mlp.gate_proj.weight").t()) * (h @ self.w(b + "mlp.up_proj.weight").t()))
        return x + mlp @ self.w(b + "mlp.down_proj.weight").t()

    def logits(self, x):
        return self.rms(x, self.w("model.norm.weight")) @ self.w("lm_head.weight").t()

    def parallel_logits(self, ids):
        x = self.w("model.embeddings.weight")[ids]
        T = len(ids)
        mask = torch.tril(torch.ones(T, T, dtype=torch.bool))
        for i in range(self.L):
            q, k, v, g, gk = self.projections(i, self.rms(x, self.w(f"model.layers.{i}.attn_norm.weight")))
            G = gk.cumsum(0)  # [T, H, hk]
            # A[t, s, h] = sum_d q[t,h,d] k[s,h,d] exp(G[t,h,d] - G[s,h,d]) for s <= t
            decay = torch.exp((G[:, None] - G[None, :]).masked_fill(~mask[..., None, None], -math.inf))
            A = torch.einsum("thd,shd,tshd->tsh", q, k, decay)
            o = torch.einsum("tsh,she->the", A, v)
            x = self.finish(i, x, o, g)
        return self.logits(x)

    def recurrent_logits(self, ids):
        out, S = [], [torch.zeros(self.H, self.hk, self.hv, dtype=self.w("lm_head.weight").dtype) for _ in range(self.L)]
        for t in ids.tolist():
            x = self.w("model.embeddings.weight")[t][None]
            for i in range(self.L):
                q, k, v, g, gk = self.projections(i, self.rms(x, self.w(f"model.layers.{i}.attn_norm.weight")))
                S[i] = torch.exp(gk[0])[..., None] * S[i] + k[0][..., None] * v[0][:, None, :]
                o = torch.einsum("hd,hde->he", q[0], S[i])[None]
                x = self.finish(i, x, o, g)
            out.append(self.logits(x)[0])
        return torch.stack(out)
