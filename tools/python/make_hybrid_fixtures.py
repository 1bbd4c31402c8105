#!/usr/bin/env python3
"""Golden fixtures for eddy's hybrid families (placeholder; filled in below)."""
import torch


def lambda_mask(positions, sinks, window, dtype=torch.float64):
    """Additive [1, 1, q, k] mask: query at original position i sees key at
    original position j iff j <= i and (j < sinks or i - j < window)."""
    i = positions[:, None]
    j = positions[None, :]
    visible = (j <= i) & ((j < sinks) | (i - j < window))
    mask = torch.zeros(visible.shape, dtype=dtype)
    mask.masked_fill_(~visible, float("-inf"))
    return mask[None, None]
