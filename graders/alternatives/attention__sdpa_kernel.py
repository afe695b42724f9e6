"""Alternative correct `attention`: torch's kernel for the output, a log-sum-exp for the weights."""
import math

import torch
import torch.nn.functional as F
from torch import nn


def scaled_dot_product_attention(q, k, v, mask=None, *, scale=None):
    for t in (q, k, v):
        if not torch.is_tensor(t):
            raise TypeError("expected tensors")
        if t.ndim < 2:
            raise ValueError("expected at least 2 dims")
    if q.size(-1) != k.size(-1):
        raise ValueError("q/k feature sizes differ")
    if k.size(-2) != v.size(-2):
        raise ValueError("k/v lengths differ")
    if mask is not None and mask.dtype != torch.bool:
        raise TypeError("mask must be bool")
    scale = scale if scale is not None else q.size(-1) ** -0.5
    scores = torch.matmul(q, k.transpose(-1, -2)) * scale
    if mask is not None:
        try:
            scores = scores.masked_fill(mask.logical_not(), -math.inf)
        except RuntimeError as exc:
            raise ValueError("mask shape") from exc
    lse = torch.logsumexp(scores, dim=-1, keepdim=True)
    weights = torch.where(torch.isinf(lse), torch.zeros_like(scores), torch.exp(scores - lse))
    return torch.matmul(weights, v), weights


class MultiHeadAttention(nn.Module):
    def __init__(self, d_model, n_heads, n_kv_heads=None, bias=False):
        super().__init__()
        kv = n_heads if n_kv_heads is None else n_kv_heads
        if d_model % n_heads != 0 or n_heads % kv != 0:
            raise ValueError("incompatible head counts")
        self.n_heads, self.n_kv_heads = n_heads, kv
        hd = d_model // n_heads
        self.q_proj = nn.Linear(d_model, n_heads * hd, bias=bias)
        self.k_proj = nn.Linear(d_model, kv * hd, bias=bias)
        self.v_proj = nn.Linear(d_model, kv * hd, bias=bias)
        self.o_proj = nn.Linear(n_heads * hd, d_model, bias=bias)

    def forward(self, x, mask=None, context=None):
        ctx = x if context is None else context
        split = lambda t, n: t.view(t.size(0), t.size(1), n, -1).permute(0, 2, 1, 3)  # noqa: E731
        q = split(self.q_proj(x), self.n_heads)
        k = split(self.k_proj(ctx), self.n_kv_heads)
        v = split(self.v_proj(ctx), self.n_kv_heads)
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, enable_gqa=self.n_heads != self.n_kv_heads)
        return self.o_proj(out.permute(0, 2, 1, 3).flatten(2))
