#!/usr/bin/env python3
"""An RWKV-7 ("Goose", x070) reference in plain PyTorch, written here from
the RWKV-7 paper and BlinkDL's published RNN-mode recurrence, with the
tensor names and shapes of BlinkDL's released checkpoints. No package
provides RWKV-7 for transformers 5 on CPU, so eddy's golden test compares
against this file.

`Rwkv7LM(...).forward(ids, state)` runs token by token (the recurrence);
`batched_forward(model, ids)` is a training-friendly version that batches
everything except the recurrence (same math, checked against `forward`).
"""
import math

import torch
import torch.nn.functional as F
from named_params import NamedParams

DECAY_SCALE = math.exp(-0.5)  # w = exp(-e^{-1/2} sigmoid(.)), in (0.545, 1)


class Rwkv7LM(NamedParams):
    def __init__(self, vocab, C, layers, head_size, ffn, lora=(16, 16, 8, 32), ln_eps=1e-5):
        super().__init__()
        self.C, self.L, self.N, self.H = C, layers, head_size, C // head_size
        self.ln_eps, self.gn_eps = ln_eps, 1e-5 * 8 * 8
        dw, da, dv, dg = lora
        p = {}
        p["emb.weight"] = torch.randn(vocab, C) * 0.5
        p["blocks.0.ln0.weight"], p["blocks.0.ln0.bias"] = torch.ones(C), torch.zeros(C)
        for i in range(layers):
            b = f"blocks.{i}."
            for ln in ("ln1", "ln2"):
                p[b + ln + ".weight"], p[b + ln + ".bias"] = torch.ones(C), torch.zeros(C)
            for name in ("x_r", "x_w", "x_k", "x_v", "x_a", "x_g"):
                p[b + "att." + name] = torch.rand(1, 1, C)
            p[b + "att.w0"] = torch.randn(1, 1, C) * 0.5 - 0.5
            p[b + "att.w1"], p[b + "att.w2"] = torch.randn(C, dw) * 0.1, torch.randn(dw, C) * 0.1
            p[b + "att.a0"] = torch.randn(1, 1, C) * 0.5
            p[b + "att.a1"], p[b + "att.a2"] = torch.randn(C, da) * 0.1, torch.randn(da, C) * 0.1
            if i > 0:
                p[b + "att.v0"] = torch.randn(1, 1, C) * 0.5 + 1.0
                p[b + "att.v1"], p[b + "att.v2"] = torch.randn(C, dv) * 0.1, torch.randn(dv, C) * 0.1
            p[b + "att.g1"], p[b + "att.g2"] = torch.randn(C, dg) * 0.1, torch.randn(dg, C) * 0.1
            p[b + "att.k_k"] = torch.rand(1, 1, C) + 0.5
            p[b + "att.k_a"] = torch.rand(1, 1, C)
            p[b + "att.r_k"] = torch.randn(self.H, head_size) * 0.3
            for name in ("receptance", "key", "value", "output"):
                p[b + f"att.{name}.weight"] = torch.randn(C, C) / math.sqrt(C)
            p[b + "att.ln_x.weight"], p[b + "att.ln_x.bias"] = torch.ones(C), torch.zeros(C)
            p[b + "ffn.x_k"] = torch.rand(1, 1, C)
            p[b + "ffn.key.weight"] = torch.randn(ffn, C) / math.sqrt(C)
            p[b + "ffn.value.weight"] = torch.randn(C, ffn) / math.sqrt(ffn)
        p["ln_out.weight"], p["ln_out.bias"] = torch.ones(C), torch.zeros(C)
        p["head.weight"] = torch.randn(vocab, C) / math.sqrt(C)
        self.set_params(p)

    def ln(self, x, name):
        return F.layer_norm(x, (self.C,), self.w(name + ".weight"), self.w(name + ".bias"), self.ln_eps)

    def time_mix(self, i, x, x_prev, v_first, S):
        """One token of layer i's time mix. x: [C]; S: [H, N, N]."""
        b, H, N = f"blocks.{i}.att.", self.H, self.N
        xx = x_prev - x
        xr, xw, xk, xv, xa, xg = (x + xx * self.w(b + n).view(-1) for n in ("x_r", "x_w", "x_k", "x_v", "x_a", "x_g"))
        r = self.w(b + "receptance.weight") @ xr
        w = torch.tanh(xw @ self.w(b + "w1")) @ self.w(b + "w2")
        k = self.w(b + "key.weight") @ xk
        v = self.w(b + "value.weight") @ xv
        a = torch.sigmoid(self.w(b + "a0").view(-1) + (xa @ self.w(b + "a1")) @ self.w(b + "a2"))
        g = torch.sigmoid(xg @ self.w(b + "g1")) @ self.w(b + "g2")
        kk = F.normalize((k * self.w(b + "k_k").view(-1)).view(H, N), dim=-1, p=2.0).view(-1)
        k = k * (1 + (a - 1) * self.w(b + "k_a").view(-1))
        if i == 0:
            v_first = v
        else:
            v = v + (v_first - v) * torch.sigmoid(self.w(b + "v0").view(-1) + (xv @ self.w(b + "v1")) @ self.w(b + "v2"))
        w = torch.exp(-DECAY_SCALE * torch.sigmoid(self.w(b + "w0").view(-1) + w))
        vk = v.view(H, N, 1) @ k.view(H, 1, N)
        ab = (-kk).view(H, N, 1) @ (kk * a).view(H, 1, N)
        S = S * w.view(H, 1, N) + S @ ab + vk
        out = (S @ r.view(H, N, 1)).view(H, N)
        out = F.group_norm(out.view(1, H * N), H, self.w(b + "ln_x.weight"), self.w(b + "ln_x.bias"), self.gn_eps)
        out = out.view(-1) + ((r * k * self.w(b + "r_k").view(-1)).view(H, N).sum(-1, keepdim=True) * v.view(H, N)).view(-1)
        return self.w(b + "output.weight") @ (out * g), v_first, S

    def channel_mix(self, i, x, x_prev):
        b = f"blocks.{i}.ffn."
        k = x + (x_prev - x) * self.w(b + "x_k").view(-1)
        k = torch.relu(self.w(b + "key.weight") @ k) ** 2
        return self.w(b + "value.weight") @ k

    def zero_state(self, dtype):
        return [(torch.zeros(self.C, dtype=dtype), torch.zeros(self.H, self.N, self.N, dtype=dtype),
                 torch.zeros(self.C, dtype=dtype)) for _ in range(self.L)]

    def forward(self, ids, state=None):
        """Token by token. ids: [T] -> logits [T, V], new state."""
        dtype = self.w("emb.weight").dtype
        state = state or self.zero_state(dtype)
        logits = []
        for t in ids.tolist():
            x = self.ln(self.w("emb.weight")[t], "blocks.0.ln0")
            v_first, new_state = None, []
            for i in range(self.L):
                att_prev, S, ffn_prev = state[i]
                xa = self.ln(x, f"blocks.{i}.ln1")
                dx, v_first, S = self.time_mix(i, xa, att_prev, v_first, S)
                x = x + dx
                xf = self.ln(x, f"blocks.{i}.ln2")
                x = x + self.channel_mix(i, xf, ffn_prev)
                new_state.append((xa, S, xf))
            state = new_state
            logits.append(self.w("head.weight") @ self.ln(x, "ln_out"))
        return torch.stack(logits), state


def batched_forward(model, ids):
    """The same math as `Rwkv7LM.forward` from a zero state, batched over
    [B, T] for training: everything but the recurrence runs on whole
    sequences. Returns logits [B, T, V]."""
    m = model
    B, T = ids.shape
    H, N, C = m.H, m.N, m.C
    x = F.layer_norm(m.w("emb.weight")[ids], (C,), m.w("blocks.0.ln0.weight"), m.w("blocks.0.ln0.bias"), m.ln_eps)
    v_first = None
    for i in range(m.L):
        b = f"blocks.{i}.att."
        xa = m.ln(x, f"blocks.{i}.ln1")
        xx = F.pad(xa, (0, 0, 1, -1)) - xa  # previous token minus current
        xr, xw, xk, xv, xa_, xg = (xa + xx * m.w(b + n).view(-1) for n in ("x_r", "x_w", "x_k", "x_v", "x_a", "x_g"))
        r = xr @ m.w(b + "receptance.weight").t()
        w = torch.tanh(xw @ m.w(b + "w1")) @ m.w(b + "w2")
        k = xk @ m.w(b + "key.weight").t()
        v = xv @ m.w(b + "value.weight").t()
        a = torch.sigmoid(m.w(b + "a0").view(-1) + (xa_ @ m.w(b + "a1")) @ m.w(b + "a2"))
        g = torch.sigmoid(xg @ m.w(b + "g1")) @ m.w(b + "g2")
        kk = F.normalize((k * m.w(b + "k_k").view(-1)).view(B, T, H, N), dim=-1, p=2.0)
        k = k * (1 + (a - 1) * m.w(b + "k_a").view(-1))
        if i == 0:
            v_first = v
        else:
            v = v + (v_first - v) * torch.sigmoid(m.w(b + "v0").view(-1) + (xv @ m.w(b + "v1")) @ m.w(b + "v2"))
        w = torch.exp(-DECAY_SCALE * torch.sigmoid(m.w(b + "w0").view(-1) + w)).view(B, T, H, N)
        r4, k4, v4, a4 = (t.view(B, T, H, N) for t in (r, k, v, a))
        S = x.new_zeros(B, H, N, N)
        outs = []
        for t in range(T):
            sa = S @ (-kk[:, t]).unsqueeze(-1)  # [B, H, N, 1]
            S = S * w[:, t].unsqueeze(-2) + sa @ (kk[:, t] * a4[:, t]).unsqueeze(-2) \
                + v4[:, t].unsqueeze(-1) @ k4[:, t].unsqueeze(-2)
            outs.append((S @ r4[:, t].unsqueeze(-1)).squeeze(-1))
        out = torch.stack(outs, dim=1)  # [B, T, H, N]
        out = F.group_norm(out.reshape(B * T, H * N), H, m.w(b + "ln_x.weight"), m.w(b + "ln_x.bias"), m.gn_eps)
        out = out.view(B, T, H, N) + (r4 * k4 * m.w(b + "r_k")).sum(-1, keepdim=True) * v4
        x = x + (out.reshape(B, T, C) * g) @ m.w(b + "output.weight").t()
        xf = m.ln(x, f"blocks.{i}.ln2")
        kf = xf + (F.pad(xf, (0, 0, 1, -1)) - xf) * m.w(f"blocks.{i}.ffn.x_k").view(-1)
        kf = torch.relu(kf @ m.w(f"blocks.{i}.ffn.key.weight").t()) ** 2
        x = x + kf @ m.w(f"blocks.{i}.ffn.value.weight").t()
    return m.ln(x, "ln_out") @ m.w("head.weight").t()
