"""Alternative correct `attention`: einsum, float64 internally, explicit per-group loop for GQA."""
import math

import torch
from torch import nn


def scaled_dot_product_attention(q, k, v, mask=None, *, scale=None):
    if not all(isinstance(t, torch.Tensor) for t in (q, k, v)):
        raise TypeError("q, k, v must be tensors")
    if min(q.dim(), k.dim(), v.dim()) < 2:
        raise ValueError("q, k, v need at least 2 dims")
    if q.shape[-1] != k.shape[-1] or k.shape[-2] != v.shape[-2]:
        raise ValueError("shape mismatch between q, k, v")
    if mask is not None and (not isinstance(mask, torch.Tensor) or mask.dtype is not torch.bool):
        raise TypeError("mask must be bool")
    s = 1 / math.sqrt(q.shape[-1]) if scale is None else scale
    scores = torch.einsum("...le,...se->...ls", q.double(), k.double()) * s
    if mask is not None:
        try:
            allowed = mask.expand(torch.broadcast_shapes(mask.shape, scores.shape))
        except RuntimeError as exc:
            raise ValueError("mask does not broadcast") from exc
        scores = scores.masked_fill(~allowed, -math.inf)
    weights = torch.nan_to_num(torch.softmax(scores, dim=-1), nan=0.0)
    out = torch.einsum("...ls,...sv->...lv", weights, v.double())
    return out.to(q.dtype), weights.to(q.dtype)


class MultiHeadAttention(nn.Module):
    def __init__(self, d_model, n_heads, n_kv_heads=None, bias=False):
        super().__init__()
        n_kv_heads = n_kv_heads or n_heads
        if d_model % n_heads or n_heads % n_kv_heads:
            raise ValueError("d_model must divide by n_heads and n_heads by n_kv_heads")
        self.h, self.kv, self.hd = n_heads, n_kv_heads, d_model // n_heads
        self.q_proj = nn.Linear(d_model, n_heads * self.hd, bias=bias)
        self.k_proj = nn.Linear(d_model, n_kv_heads * self.hd, bias=bias)
        self.v_proj = nn.Linear(d_model, n_kv_heads * self.hd, bias=bias)
        self.o_proj = nn.Linear(n_heads * self.hd, d_model, bias=bias)

    def forward(self, x, mask=None, context=None):
        src = x if context is None else context
        B, L, _ = x.shape
        q = self.q_proj(x).unflatten(-1, (self.h, self.hd))
        k = self.k_proj(src).unflatten(-1, (self.kv, self.hd))
        v = self.v_proj(src).unflatten(-1, (self.kv, self.hd))
        g = self.h // self.kv
        heads = []
        for h in range(self.h):
            m = None if mask is None else mask.expand(B, self.h, L, src.shape[1])[:, h]
            o, _ = scaled_dot_product_attention(q[:, :, h], k[:, :, h // g], v[:, :, h // g], m)
            heads.append(o)
        return self.o_proj(torch.cat(heads, dim=-1))
