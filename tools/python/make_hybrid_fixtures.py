#!/usr/bin/env python3
"""Golden fixtures for eddy's hybrid families: RecurrentGemma (Griffin:
RG-LRU recurrent blocks + sliding-window local attention) and LFM2 (gated
short convolutions + full attention, which eddy runs with a bounded KV cache).

Same conventions as make_fixtures.py / make_family_fixtures.py: tiny random
transformers models (weights perturbed so no norm is 1 and no bias 0), saved
with save_pretrained (config.json + model.safetensors, float32) plus
tokenizer.json, and reference.safetensors with the logits of a full-sequence
forward and of token-by-token cached decode, computed in float64 and stored
as float32. Run: python3 tools/python/make_hybrid_fixtures.py

"float64" here is real: transformers casts to float32 inside a float64 model
(RMSNorm upcasts with .float()/.to(float32), RoPE angles use float32
inv_freq and float32 positions, RecurrentGemma's RG-LRU scan accumulates in
float32), so the script swaps those four functions for dtype-preserving
equivalents while it computes references (float64_exact). It also recomputes
every fixture with the plain formulas below (spec_* functions, independent of
transformers) and asserts max |spec - transformers| < 1e-9: the notes below
are checked, not recalled. Unpatched transformers differs by ~1e-6 (printed).
Sensitivity (measured by editing the spec and comparing with the stored
logits): exact-erf GELU instead of tanh GELU moves logits by 1.7e-3, exact
sqrt(48) instead of its bfloat16 value by 9.9e-3, dropping the soft cap by
5.6e-2, every other mistake tried (window or sink off by one, B/C swapped,
q/k norm after RoPE, no position-0 reset, full instead of partial RoPE,
transposed gate weights, w vs 1 + w) by > 0.3. So compare at < 1e-3.

reference.safetensors (both fixtures):
  input_ids       int32 [24]
  logits_forward  f32 [24, vocab]   one forward over all 24 tokens
  logits_decode   f32 [24, vocab]   token-by-token with transformers' cache
lfm2-tiny adds:
  lambda_logits   f32 [24, vocab]   full-attention layers masked to sinks+window
  lambda_sinks    int32 [1]  = 2     (S)
  lambda_window   int32 [1]  = 5     (W)
  and the same S and W as strings in the safetensors metadata
  ("lambda_sinks", "lambda_window").

Lambda mask (lambda_mask below), exactly: query at position i may attend to
key at position j iff j <= i and (j < S or i - j < W). So a query sees the
first S tokens and the last W tokens including itself: all i + 1 keys while
i < S + W, then S + W keys (query S + W = 7 is the first to lose one, key S). Positions are the
ORIGINAL token indices 0..23 for both RoPE and the mask: keys keep the
rotation of the position they were written at, as in a KV cache that evicts
without re-rotating. Only full_attention layers are masked; conv layers are
unchanged. Implemented as an additive float64 mask [1, 1, 24, 24] (0 or
-inf) passed to Lfm2Model as attention_mask={"full_attention": mask,
"conv": None} with SDPA. Sanity check in this script: S=2, W=22 (S+W = seq)
and S=0, W=24 reproduce logits_forward (< 1e-12). With S=2, W=5 positions
7..23 differ from logits_forward.

RecurrentGemma (recurrentgemma-tiny, RecurrentGemmaForCausalLM)
---------------------------------------------------------------
config: vocab_size 300, hidden_size 48, lru_width 64, num_hidden_layers 4,
block_types [recurrent, recurrent, attention] repeated to num_hidden_layers
(layer i is block_types[i % 3]: here r, r, a, r), num_attention_heads 4
(head_dim = hidden_size / heads = 12), num_key_value_heads 1,
attention_window_size 8 (< 24 tokens), conv1d_width 4, logits_soft_cap 30,
rms_norm_eps 1e-6, intermediate_size 96 (the MLP is intermediate_size // 2 =
48 wide!), hidden_activation gelu_pytorch_tanh, rope_parameters {rope_theta
10000, partial_rotary_factor 0.5}, tie_word_embeddings true (no
lm_head.weight in the file). This transformers writes rope_theta and
partial_rotary_factor inside rope_parameters; older config.json files have
them top-level. hidden_size 48 != lru_width 64 on purpose (so
swapped dimensions cannot pass), and sqrt(48) is not a bfloat16 number.
Tensors (L = model.layers.{i}):
  model.embed_tokens.weight [V, D]; model.final_norm.weight [D]
  L.temporal_pre_norm.weight [D], L.channel_pre_norm.weight [D]
  L.mlp_block.{gate_proj,up_proj}.{weight [F, D], bias [F]},
  L.mlp_block.down_proj.{weight [D, F], bias [D]}             (F = 48)
  recurrent layers: L.temporal_block.linear_x / linear_y.{weight [R, D],
  bias [R]}, linear_out.{weight [D, R], bias [D]}, conv_1d.weight [R, 1, 4],
  conv_1d.bias [R], rg_lru.recurrent_param [R],
  rg_lru.input_gate_weight / recurrent_gate_weight [H, R/H, R/H],
  rg_lru.input_gate_bias / recurrent_gate_bias [H, R/H]        (R = lru_width)
  attention layers: L.temporal_block.q_proj.weight [H*hd, D],
  k_proj.weight / v_proj.weight [KV*hd, D] (no bias: attention_bias false),
  o_proj.weight [D, H*hd] AND o_proj.bias [D] (o_proj always has a bias).
Forward (all in this order; x = residual stream):
  x = embed[id] * bf16(sqrt(D)). The scale is a bfloat16 buffer: sqrt(48) =
    6.9282 is used as 6.9375 (recurrentgemma-2b: sqrt(2560) -> 50.5).
  norm(v, w) = v / sqrt(mean(v^2) + eps) * (1 + w)     (Gemma's 1 + w)
  per layer: h = norm(x, temporal_pre_norm); x = x + temporal_block(h);
             x = x + mlp(norm(x, channel_pre_norm))
  mlp(h) = down(gelu_tanh(gate(h)) * up(h)), with biases;
  gelu_tanh(v) = 0.5 v (1 + tanh(sqrt(2/pi) (v + 0.044715 v^3)))
  final: logits = norm(x, final_norm) @ embed^T; logits = 30 tanh(logits / 30)
Recurrent block (t = position, 0-based):
  y = gelu_tanh(linear_y(h)); u = linear_x(h)
  u = causal depthwise conv over time: c[t] = conv_1d.bias + sum_{k=0..3}
      conv_1d.weight[:, 0, k] * u[t - 3 + k] (u before t=0 is 0; weight[..., 3]
      multiplies the current token; the decode state is the last 3 u's)
  RG-LRU, per head block b (R/H channels): g_in = sigmoid(c_b @ Wi[b] + bi[b]),
      g_a = sigmoid(c_b @ Wa[b] + ba[b]) where c_b is a ROW vector times the
      [in, out] matrix (out[o] = sum_i c[i] W[b, i, o]; not nn.Linear's W x)
  log_a = -8 * g_a * softplus(recurrent_param); a = exp(log_a)
  scale = sqrt(1 - a^2), except at position 0 where scale = 1 and a = 0 (the
      "reset" is position_ids == 0, not the start of a call)
  s[t] = a * s[t-1] + scale * (g_in * c[t]);  s[-1] = 0  (state: R floats)
  out = linear_out(s[t] * y)
Attention block: q = q_proj(h) as H heads of hd, k/v = k_proj/v_proj as KV
  heads (query head n uses kv head n // (H / KV); here all use head 0). RoPE
  on the first rot = int(hd * 0.5) = 6 dims of each q/k head only, the rest
  passes through; inside those rot dims pairs are (i, i + rot/2) ("rotate
  half", NOT interleaved): angle = pos * 10000^(-2i/rot), i < rot/2, i.e. the
  frequencies use rot, not hd, as the dimension.
  out_i = x_i cos - x_{i+rot/2} sin, out_{i+rot/2} = x_{i+rot/2} cos + x_i sin.
  scores = q.k / sqrt(hd); query t sees keys j with t - 8 < j <= t (window
  keys including itself; transformers' cache keeps window - 1 = 7 past K/V).
  o_proj(concat heads) + o_proj.bias. No soft cap on attention scores.
transformers quirks: (1) its decode crashes when lru_width != hidden_size:
  the conv state is allocated with hidden_size channels, so this script
  allocates the per-layer states itself (correct width) before decoding;
  (2) the conv and RG-LRU states live on the recurrent modules (only the
  attention K/V is in past_key_values), so each decode run resets them; (3) cached decode
  with the sliding window agrees with the full forward (max diff printed,
  ~1e-15), so logits_decode is transformers' real cached decode.

LFM2 (lfm2-tiny, Lfm2ForCausalLM)
---------------------------------
config: vocab_size 300, hidden_size 64, num_hidden_layers 4, layer_types
[conv, full_attention, conv, full_attention], num_attention_heads 4
(head_dim 16), num_key_value_heads 2, conv_L_cache 3, conv_bias false,
norm_eps 1e-5, rope_parameters {rope_theta 1e6}, tie_word_embeddings true
(no lm_head.weight in the file), intermediate_size 80 with
block_auto_adjust_ff_dim true, block_ffn_dim_multiplier 1.0,
block_multiple_of 32: the MLP width is NOT intermediate_size but
m = int(2 * 80 / 3) = 53, m = int(1.0 * m) = 53, rounded UP to a multiple of
32 = 64 (LFM2-350M: 6656 -> 4608). With block_auto_adjust_ff_dim false it is
intermediate_size itself. Best read it from feed_forward.w1.weight rows.
Tensors (L = model.layers.{i}):
  model.embed_tokens.weight [V, D]; model.embedding_norm.weight [D]: despite
    its name this is the FINAL norm (after the last layer); the embedding
    is not normalized or scaled.
  L.operator_norm.weight [D], L.ffn_norm.weight [D]
  L.feed_forward.w1 / w3.weight [F, D], w2.weight [D, F]  (no biases)
  conv layers: L.conv.in_proj.weight [3D, D], L.conv.conv.weight [D, 1, 3],
    L.conv.out_proj.weight [D, D] (biases only if conv_bias)
  attention layers: L.self_attn.q_proj.weight [H*hd, D], k_proj / v_proj
    .weight [KV*hd, D], out_proj.weight [D, H*hd] (named out_proj, not
    o_proj), q_layernorm.weight [hd], k_layernorm.weight [hd]
Forward:
  x = embed[id]
  norm(v, w) = v / sqrt(mean(v^2) + eps) * w           (plain w, not 1 + w)
  per layer: x = x + operator(norm(x, operator_norm));
             x = x + w2(silu(w1(g)) * w3(g)), g = norm(x, ffn_norm)
  final: logits = norm(x, embedding_norm) @ embed^T (no soft cap)
Conv operator: p = in_proj(h) (3D); B = p[0:D], C = p[D:2D], xv = p[2D:3D]
  (rows of in_proj in that order); bx = B * xv; z[t] = sum_{k=0..2}
  conv.weight[:, 0, k] * bx[t - 2 + k] (zero before t=0; no activation);
  out = out_proj(C * z). Decode state: the last L_cache - 1 = 2 bx vectors.
  (transformers' cache allocates L_cache = 3 columns and uses the last 2
  plus the new one; only 2 past values matter.)
Attention operator: q = q_proj(h) as H heads of hd, then q_layernorm per head
  (norm over hd, plain w, eps norm_eps); k = k_layernorm(k_proj(h) per KV
  head); v = v_proj(h). Norm BEFORE RoPE. RoPE on all hd dims, rotate-half
  pairs (i, i + hd/2), angle = pos * 1e6^(-2i/hd). Query head n uses kv head
  n // (H / KV). scores / sqrt(hd), causal softmax, out_proj.
transformers quirks: none in decode; logits_decode is its real cached decode
  (DynamicCache holds both the conv states and the K/V). Config aliases a
  converter meets in hub checkpoints (transformers maps them): block_ff_dim
  = intermediate_size, tie_embedding = tie_word_embeddings, full_attn_idxs
  (attention layer indices) when layer_types is absent, and top-level
  rope_theta instead of rope_parameters.rope_theta.

Both tokenizers are the same small byte-level BPE as the other fixtures.
"""
import os
import sys
from contextlib import contextmanager

import torch
import torch.nn.functional as F
from safetensors.torch import save_file
from transformers import DynamicCache, Lfm2Config, Lfm2ForCausalLM, RecurrentGemmaConfig, RecurrentGemmaForCausalLM
from transformers.models.lfm2 import modeling_lfm2
from transformers.models.recurrent_gemma import modeling_recurrent_gemma

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from make_fixtures import SEQ_LEN, make_tokenizer  # noqa: E402
from make_family_fixtures import fresh_dir  # noqa: E402

LAMBDA_SINKS, LAMBDA_WINDOW = 2, 5


def lambda_mask(positions, sinks, window, dtype=torch.float64):
    """Additive [1, 1, q, k] mask: query at original position i sees key at
    original position j iff j <= i and (j < sinks or i - j < window)."""
    i = positions[:, None]
    j = positions[None, :]
    visible = (j <= i) & ((j < sinks) | (i - j < window))
    mask = torch.zeros(visible.shape, dtype=dtype)
    mask.masked_fill_(~visible, float("-inf"))
    return mask[None, None]


# ---------------------------------------------------------------- float64 --


def _rg_norm(self, x):
    return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps) * (1.0 + self.weight)


def _lfm2_norm(self, x):
    return self.weight * (x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.variance_epsilon))


def _rope(self, x, position_ids):
    # inv_freq recomputed in float64 (the buffer was made in float32).
    dim = 2 * self.inv_freq.shape[0]
    theta = self.config.rope_parameters["rope_theta"]
    inv_freq = theta ** (-torch.arange(0, dim, 2, dtype=torch.float64) / dim)
    freqs = position_ids[..., None].to(torch.float64) * inv_freq
    emb = torch.cat((freqs, freqs), dim=-1)
    return emb.cos().to(x.dtype), emb.sin().to(x.dtype)


@contextmanager
def float64_exact():
    """Swap transformers' float32 upcasts for dtype-preserving versions."""
    rg, lf = modeling_recurrent_gemma, modeling_lfm2
    scan = rg.RecurrentGemmaRglru._rnn_scan
    saved = [
        (rg.RecurrentGemmaRMSNorm, "forward", _rg_norm),
        (lf.Lfm2RMSNorm, "forward", _lfm2_norm),
        (rg.RecurrentGemmaRotaryEmbedding, "forward", _rope),
        (lf.Lfm2RotaryEmbedding, "forward", _rope),
        (rg.RecurrentGemmaRglru, "_rnn_scan",
         lambda self, *a, **k: scan(self, *a, **dict(k, acc_dtype=torch.float64))),
    ]
    originals = [(cls, name, getattr(cls, name)) for cls, name, _ in saved]
    for cls, name, fn in saved:
        setattr(cls, name, fn)
    try:
        yield
    finally:
        for cls, name, fn in originals:
            setattr(cls, name, fn)


# ------------------------------------------------------------ spec model --


def rms(v, w, eps, one_plus):
    return v / torch.sqrt(v.pow(2).mean(-1, keepdim=True) + eps) * ((1.0 + w) if one_plus else w)


def gelu_tanh(v):
    return 0.5 * v * (1.0 + torch.tanh((2.0 / torch.pi) ** 0.5 * (v + 0.044715 * v**3)))


def causal_depthwise(u, weight, bias=None):
    """u [T, C], weight [C, 1, K]: c[t] = sum_k weight[:, 0, k] u[t - K + 1 + k]."""
    k = weight.shape[-1]
    padded = torch.cat([u.new_zeros(k - 1, u.shape[1]), u])
    out = sum(weight[:, 0, i] * padded[i : i + len(u)] for i in range(k))
    return out if bias is None else out + bias


def rope(x, pos, rot, theta):
    """x [T, heads, hd]: rotate-half RoPE on the first `rot` dims."""
    half = rot // 2
    inv = theta ** (-torch.arange(half, dtype=torch.float64) * 2 / rot)
    ang = pos[:, None].to(torch.float64) * inv  # [T, half]
    cos, sin = ang.cos()[:, None], ang.sin()[:, None]
    a, b, rest = x[..., :half], x[..., half:rot], x[..., rot:]
    return torch.cat([a * cos - b * sin, b * cos + a * sin, rest], dim=-1)


def attention(q, k, v, visible):
    """q [T, H, hd], k/v [T, KV, hd], visible [T, T] bool."""
    heads, kv = q.shape[1], k.shape[1]
    out = []
    for n in range(heads):
        m = n // (heads // kv)
        s = q[:, n] @ k[:, m].T / q.shape[-1] ** 0.5
        s = s.masked_fill(~visible, float("-inf"))
        out.append(torch.softmax(s, -1) @ v[:, m])
    return torch.cat(out, dim=-1)


def spec_recurrentgemma(sd, cfg, ids):
    """RecurrentGemma forward from the formulas in the docstring."""
    t_len, eps, heads, kv = len(ids), cfg.rms_norm_eps, cfg.num_attention_heads, cfg.num_key_value_heads
    hd = cfg.hidden_size // heads
    lin = lambda v, p, bias=True: v @ sd[p + ".weight"].T + (sd[p + ".bias"] if bias else 0)
    scale = torch.tensor(cfg.hidden_size**0.5, dtype=torch.bfloat16).double()
    x = sd["model.embed_tokens.weight"][ids] * scale
    pos = torch.arange(t_len)
    for i in range(cfg.num_hidden_layers):
        p = f"model.layers.{i}."
        h = rms(x, sd[p + "temporal_pre_norm.weight"], eps, True)
        tb = p + "temporal_block."
        if cfg.block_types[i % len(cfg.block_types)] == "recurrent":
            y = gelu_tanh(lin(h, tb + "linear_y"))
            c = causal_depthwise(lin(h, tb + "linear_x"), sd[tb + "conv_1d.weight"], sd[tb + "conv_1d.bias"])
            cb = c.view(t_len, heads, -1)
            g_in = torch.sigmoid(torch.einsum("thi,hio->tho", cb, sd[tb + "rg_lru.input_gate_weight"])
                                 + sd[tb + "rg_lru.input_gate_bias"]).reshape(t_len, -1)
            g_a = torch.sigmoid(torch.einsum("thi,hio->tho", cb, sd[tb + "rg_lru.recurrent_gate_weight"])
                                + sd[tb + "rg_lru.recurrent_gate_bias"]).reshape(t_len, -1)
            a = torch.exp(-8.0 * g_a * F.softplus(sd[tb + "rg_lru.recurrent_param"]))
            s, outs = torch.zeros(c.shape[1], dtype=torch.float64), []
            for t in range(t_len):
                at, sc = (a[t], torch.sqrt(1 - a[t] ** 2)) if t > 0 else (0.0, 1.0)
                s = at * s + sc * (g_in[t] * c[t])
                outs.append(s)
            out = lin(torch.stack(outs) * y, tb + "linear_out")
        else:
            rot = int(hd * cfg.rope_parameters["partial_rotary_factor"])
            theta = cfg.rope_parameters["rope_theta"]
            q = rope(lin(h, tb + "q_proj", False).view(t_len, heads, hd), pos, rot, theta)
            k = rope(lin(h, tb + "k_proj", False).view(t_len, kv, hd), pos, rot, theta)
            v = lin(h, tb + "v_proj", False).view(t_len, kv, hd)
            visible = (pos[None] <= pos[:, None]) & (pos[:, None] - pos[None] < cfg.attention_window_size)
            out = lin(attention(q, k, v, visible), tb + "o_proj")
        x = x + out
        g = rms(x, sd[p + "channel_pre_norm.weight"], eps, True)
        mb = p + "mlp_block."
        x = x + lin(gelu_tanh(lin(g, mb + "gate_proj")) * lin(g, mb + "up_proj"), mb + "down_proj")
    logits = rms(x, sd["model.final_norm.weight"], eps, True) @ sd["model.embed_tokens.weight"].T
    return torch.tanh(logits / cfg.logits_soft_cap) * cfg.logits_soft_cap


def spec_lfm2(sd, cfg, ids, sinks=0, window=None):
    """LFM2 forward from the formulas in the docstring (optional lambda mask)."""
    t_len, eps, heads, kv = len(ids), cfg.norm_eps, cfg.num_attention_heads, cfg.num_key_value_heads
    d = cfg.hidden_size
    hd = d // heads
    lin = lambda v, p: v @ sd[p + ".weight"].T
    x = sd["model.embed_tokens.weight"][ids]
    pos = torch.arange(t_len)
    visible = pos[None] <= pos[:, None]
    if window is not None:
        visible &= (pos[None] < sinks) | (pos[:, None] - pos[None] < window)
    theta = cfg.rope_parameters["rope_theta"]
    for i, kind in enumerate(cfg.layer_types):
        p = f"model.layers.{i}."
        h = rms(x, sd[p + "operator_norm.weight"], eps, False)
        if kind == "conv":
            bcx = lin(h, p + "conv.in_proj")
            b, c, xv = bcx[:, :d], bcx[:, d : 2 * d], bcx[:, 2 * d :]
            z = causal_depthwise(b * xv, sd[p + "conv.conv.weight"])
            out = lin(c * z, p + "conv.out_proj")
        else:
            a = p + "self_attn."
            q = rms(lin(h, a + "q_proj").view(t_len, heads, hd), sd[a + "q_layernorm.weight"], eps, False)
            k = rms(lin(h, a + "k_proj").view(t_len, kv, hd), sd[a + "k_layernorm.weight"], eps, False)
            v = lin(h, a + "v_proj").view(t_len, kv, hd)
            out = lin(attention(rope(q, pos, hd, theta), rope(k, pos, hd, theta), v, visible), a + "out_proj")
        x = x + out
        g = rms(x, sd[p + "ffn_norm.weight"], eps, False)
        ff = p + "feed_forward."
        x = x + lin(F.silu(lin(g, ff + "w1")) * lin(g, ff + "w3"), ff + "w2")
    return rms(x, sd["model.embedding_norm.weight"], eps, False) @ sd["model.embed_tokens.weight"].T


# --------------------------------------------------------------- builders --


def perturb(model, seed, one_plus_norms):
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            noise = torch.randn(p.shape, generator=g, dtype=p.dtype)
            if "norm" in name:
                p.copy_((0.0 if one_plus_norms else 1.0) + 0.15 * noise)
            elif name.endswith("recurrent_param"):
                p.add_(0.3 * noise)
            elif name.endswith("bias"):
                p.copy_(0.1 * noise)
            else:
                p.add_(0.15 * noise)


def save_fixture(name, model, vocab, tensors, metadata=None):
    d = fresh_dir(name)
    model.float().save_pretrained(d, safe_serialization=True)
    make_tokenizer(vocab).save(os.path.join(d, "tokenizer.json"))
    tensors = {k: v.contiguous() for k, v in tensors.items()}
    save_file(tensors, os.path.join(d, "reference.safetensors"), metadata=metadata)
    sizes = {f: os.path.getsize(os.path.join(d, f)) for f in sorted(os.listdir(d))}
    print(f"{name}: {sizes}")


def rg_decode(model, ids):
    """Token-by-token cached decode. The recurrent blocks keep their state on
    the module; transformers allocates the conv state with hidden_size
    channels (wrong when lru_width differs), so allocate it here."""
    cfg = model.config
    for layer in model.model.layers:
        block = layer.temporal_block
        if hasattr(block, "rg_lru"):
            block.conv1d_state = torch.zeros(1, cfg.lru_width, cfg.conv1d_width - 1, dtype=torch.float64)
            block.rg_lru.recurrent_states = torch.zeros(1, cfg.lru_width, dtype=torch.float64)
    cache, out = DynamicCache(config=cfg), []
    for i in range(len(ids)):
        out.append(model(ids[None, i : i + 1], past_key_values=cache, use_cache=True).logits[0, -1])
    return torch.stack(out)


def perturbed_model(seed, config_class, model_class, cfg, one_plus_norms):
    """A random `cfg` model, perturbed, in float64 eval mode: (config, model,
    input ids, state dict). Seeds: `seed` for the init, +1 the perturbation,
    +2 the ids."""
    torch.manual_seed(seed)
    config = config_class(**cfg)
    model = model_class(config).float()
    perturb(model, seed + 1, one_plus_norms=one_plus_norms)
    g = torch.Generator().manual_seed(seed + 2)
    ids = torch.randint(0, cfg["vocab_size"], (SEQ_LEN,), generator=g)
    model = model.double().eval()
    sd = {k: v for k, v in model.state_dict().items()}
    return config, model, ids, sd


def build_recurrentgemma(name, seed, cfg):
    config, model, ids, sd = perturbed_model(
        seed, RecurrentGemmaConfig, RecurrentGemmaForCausalLM, cfg, one_plus_norms=True)
    with torch.no_grad():
        plain = model(ids[None], use_cache=False).logits[0]
        with float64_exact():
            forward = model(ids[None], use_cache=False).logits[0]
            decode = rg_decode(model, ids)
        spec = spec_recurrentgemma(sd, config, ids)
        wide = RecurrentGemmaConfig(**dict(cfg, attention_window_size=SEQ_LEN))
        unwindowed = spec_recurrentgemma(sd, wide, ids)
    check(name, forward, decode, spec, plain)
    w = cfg["attention_window_size"]
    print(f"  window {w} vs none: max diff at positions < {w}: "
          f"{(forward[:w] - unwindowed[:w]).abs().max().item():.1e}, after: "
          f"{(forward[w:] - unwindowed[w:]).abs().max().item():.2f}; "
          f"max |logit| {forward.abs().max().item():.1f} (cap {cfg['logits_soft_cap']})")
    save_fixture(name, model, cfg["vocab_size"], {
        "input_ids": ids.to(torch.int32), "logits_forward": forward.float(), "logits_decode": decode.float()})


def lfm2_lambda(model, ids, sinks, window):
    pos = torch.arange(len(ids))
    mask = {"full_attention": lambda_mask(pos, sinks, window), "conv": None}
    return model(ids[None], attention_mask=mask, position_ids=pos[None], use_cache=False).logits[0]


def build_lfm2(name, seed, cfg):
    config, model, ids, sd = perturbed_model(seed, Lfm2Config, Lfm2ForCausalLM, cfg, one_plus_norms=False)
    s, w = LAMBDA_SINKS, LAMBDA_WINDOW
    with torch.no_grad():
        plain = model(ids[None], use_cache=False).logits[0]
        with float64_exact():
            forward = model(ids[None], use_cache=False).logits[0]
            cache, decode = DynamicCache(config=config), []
            for i in range(len(ids)):
                decode.append(model(ids[None, i : i + 1], past_key_values=cache, use_cache=True).logits[0, -1])
            decode = torch.stack(decode)
            lam = lfm2_lambda(model, ids, s, w)
            for s_all, w_all in ((s, SEQ_LEN - s), (0, SEQ_LEN)):
                same = (lfm2_lambda(model, ids, s_all, w_all) - forward).abs().max().item()
                assert same < 1e-12, (s_all, w_all, same)
        spec = spec_lfm2(sd, config, ids)
        spec_lam = spec_lfm2(sd, config, ids, s, w)
    check(name, forward, decode, spec, plain)
    lam_diff = (lam - spec_lam).abs().max().item()
    assert lam_diff < 1e-9, lam_diff
    per_pos = (lam - forward).abs().amax(-1)
    first = s + w  # first query with a key between the sinks and the window
    assert per_pos[:first].max().item() < 1e-12 and per_pos[first:].min().item() > 1e-6, per_pos
    print(f"  lambda S={s} W={w}: |lambda - spec| {lam_diff:.1e}; |lambda - forward| 0 before position {first}, "
          f"then min {per_pos[first:].min().item():.1e} max {per_pos.max().item():.2f}; "
          f"S+W >= seq reproduces forward")
    save_fixture(name, model, cfg["vocab_size"], {
        "input_ids": ids.to(torch.int32), "logits_forward": forward.float(), "logits_decode": decode.float(),
        "lambda_logits": lam.float(), "lambda_sinks": torch.tensor([s], dtype=torch.int32),
        "lambda_window": torch.tensor([w], dtype=torch.int32)},
        metadata={"lambda_sinks": str(s), "lambda_window": str(w)})


def check(name, forward, decode, spec, plain):
    fd = (forward - decode).abs().max().item()
    fs = (forward - spec).abs().max().item()
    fp = (forward - plain).abs().max().item()
    assert fd < 1e-9 and fs < 1e-9, (fd, fs)
    print(f"{name}: logits std {forward.std().item():.3f}; max |forward - decode| {fd:.1e}, "
          f"|forward - spec| {fs:.1e}, |float64-exact - unpatched transformers| {fp:.1e}")


def main():
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    build_recurrentgemma(
        "recurrentgemma-tiny",
        21,
        dict(vocab_size=300, hidden_size=48, lru_width=64, intermediate_size=96, num_hidden_layers=4,
             block_types=["recurrent", "recurrent", "attention"], num_attention_heads=4, num_key_value_heads=1,
             attention_window_size=8, conv1d_width=4, logits_soft_cap=30.0, rms_norm_eps=1e-6,
             rope_parameters={"rope_type": "default", "rope_theta": 10000.0, "partial_rotary_factor": 0.5},
             tie_word_embeddings=True),
    )
    build_lfm2(
        "lfm2-tiny",
        22,
        dict(vocab_size=300, hidden_size=64, num_hidden_layers=4,
             layer_types=["conv", "full_attention", "conv", "full_attention"], num_attention_heads=4,
             num_key_value_heads=2, conv_L_cache=3, conv_bias=False, norm_eps=1e-5, intermediate_size=80,
             block_auto_adjust_ff_dim=True, block_ffn_dim_multiplier=1.0, block_multiple_of=32,
             rope_parameters={"rope_type": "default", "rope_theta": 1e6}, max_position_embeddings=256,
             tie_word_embeddings=True),
    )


if __name__ == "__main__":
    sys.exit(main())
