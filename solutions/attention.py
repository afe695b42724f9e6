"""Attention: the operation every transformer is built from (notes §1).

A query asks "which positions matter to me?"; it compares itself with every key, turns the scores into
weights with a softmax, and returns the weighted average of the values. Multi-head attention runs
several such comparisons in parallel on learned projections of the input, and grouped-query attention
lets several query heads share one key/value head to save memory.

Conventions used throughout the kit:
* a boolean mask is True where a query **may** attend to a key (as in
  ``torch.nn.functional.scaled_dot_product_attention``);
* a query that may attend to no key at all gets zero weights and a zero output, never NaN.
"""
from __future__ import annotations

import math

import torch
from torch import nn


def scaled_dot_product_attention(q, k, v, mask=None, *, scale=None):
    """Scaled dot-product attention, returning the output and the attention weights.

    Args:
        q: queries, shape ``(..., L, E)``.
        k: keys, shape ``(..., S, E)``.
        v: values, shape ``(..., S, Ev)``.
        mask: optional bool tensor broadcastable to ``(..., L, S)``; True = this query may attend to
            this key. Leading dimensions of q, k, v and mask broadcast against each other.
        scale: multiplies the scores; defaults to ``1 / sqrt(E)``.

    Returns:
        ``(output, weights)`` with ``output`` of shape ``(..., L, Ev)`` and ``weights`` of shape
        ``(..., L, S)``. Each row of ``weights`` sums to 1 over the keys the mask allows. A row whose
        mask allows no key has all-zero weights and a zero output (not NaN), as torch >= 2.5 SDPA.
        The outputs have the dtype of ``q``, computed at its precision: float64 inputs give float64
        results accurate to about 1e-10 (no step in float32). The inputs are not modified.

    Raises:
        TypeError: if q, k or v is not a tensor, or mask is not a bool tensor.
        ValueError: if a tensor has fewer than 2 dimensions, the feature sizes of q and k differ,
            k and v have different lengths, or the mask does not broadcast.
    """
    ### BEGIN SOLUTION
    for name, t in (("q", q), ("k", k), ("v", v)):
        if not isinstance(t, torch.Tensor):
            raise TypeError(f"{name} must be a torch.Tensor, got {type(t).__name__}")
        if t.dim() < 2:
            raise ValueError(f"{name} must have at least 2 dimensions (..., length, features), got shape {tuple(t.shape)}")
    if q.shape[-1] != k.shape[-1]:
        raise ValueError(f"q and k must have the same feature size, got {q.shape[-1]} and {k.shape[-1]}")
    if k.shape[-2] != v.shape[-2]:
        raise ValueError(f"k and v must have the same length, got {k.shape[-2]} and {v.shape[-2]}")
    if mask is not None:
        if not isinstance(mask, torch.Tensor) or mask.dtype != torch.bool:
            raise TypeError("mask must be a bool tensor (True = may attend)")
    if scale is None:
        scale = 1.0 / math.sqrt(q.shape[-1])

    scores = (q @ k.transpose(-2, -1)) * scale  # (..., L, S)
    if mask is not None:
        try:
            mask = torch.broadcast_to(mask, torch.broadcast_shapes(mask.shape, scores.shape))
        except RuntimeError:
            raise ValueError(f"mask of shape {tuple(mask.shape)} does not broadcast to the scores' shape "
                             f"{tuple(scores.shape)}") from None
        scores = scores.masked_fill(~mask, float("-inf"))
    # A fully masked row has max -inf; subtracting a finite 0 there keeps exp() at 0 instead of NaN.
    row_max = scores.amax(dim=-1, keepdim=True)
    row_max = torch.where(torch.isfinite(row_max), row_max, torch.zeros_like(row_max))
    exp = torch.exp(scores - row_max)
    total = exp.sum(dim=-1, keepdim=True)
    weights = exp / torch.where(total > 0, total, torch.ones_like(total))
    return weights @ v, weights
    ### END SOLUTION


class MultiHeadAttention(nn.Module):
    """Multi-head attention with optional grouped-query attention and cross-attention.

    ``head_dim = d_model // n_heads``. Query head ``h`` uses key/value head
    ``h // (n_heads // n_kv_heads)`` (consecutive query heads share a key/value head, as
    ``repeat_interleave`` and ``enable_gqa=True`` in torch's SDPA).

    Submodules (names are part of the spec; graders load weights by these names):
        q_proj: ``Linear(d_model, n_heads * head_dim)``
        k_proj, v_proj: ``Linear(d_model, n_kv_heads * head_dim)``
        o_proj: ``Linear(n_heads * head_dim, d_model)``
    all with ``bias=bias``.

    Raises:
        ValueError: if ``d_model`` is not divisible by ``n_heads``, or ``n_heads`` not by ``n_kv_heads``.
    """

    def __init__(self, d_model, n_heads, n_kv_heads=None, bias=False):
        super().__init__()
        ### BEGIN SOLUTION
        n_kv_heads = n_heads if n_kv_heads is None else n_kv_heads
        if n_heads < 1 or n_kv_heads < 1:
            raise ValueError("n_heads and n_kv_heads must be positive")
        if d_model % n_heads != 0:
            raise ValueError(f"d_model={d_model} is not divisible by n_heads={n_heads}")
        if n_heads % n_kv_heads != 0:
            raise ValueError(f"n_heads={n_heads} is not divisible by n_kv_heads={n_kv_heads}")
        self.d_model, self.n_heads, self.n_kv_heads = d_model, n_heads, n_kv_heads
        self.head_dim = d_model // n_heads
        self.q_proj = nn.Linear(d_model, n_heads * self.head_dim, bias=bias)
        self.k_proj = nn.Linear(d_model, n_kv_heads * self.head_dim, bias=bias)
        self.v_proj = nn.Linear(d_model, n_kv_heads * self.head_dim, bias=bias)
        self.o_proj = nn.Linear(n_heads * self.head_dim, d_model, bias=bias)
        ### END SOLUTION

    def forward(self, x, mask=None, context=None):
        """Attend from ``x`` to itself, or to ``context`` (cross-attention) when it is given.

        Args:
            x: ``(B, L, d_model)``, the sequence the queries come from.
            mask: optional bool tensor broadcastable to ``(B, n_heads, L, S)``; True = may attend.
            context: optional ``(B, S, d_model)``; keys and values come from it (as a decoder attends
                to its encoder's output). Without it, ``S = L`` and keys and values come from ``x``.

        Returns:
            ``(B, L, d_model)``.
        """
        ### BEGIN SOLUTION
        if x.dim() != 3:
            raise ValueError(f"x must have shape (B, L, d_model), got {tuple(x.shape)}")
        source = x if context is None else context
        if source.dim() != 3 or source.shape[0] != x.shape[0]:
            raise ValueError(f"context must have shape (B, S, d_model) with B={x.shape[0]}, got {tuple(source.shape)}")
        B, L, _ = x.shape
        S = source.shape[1]
        q = self.q_proj(x).view(B, L, self.n_heads, self.head_dim).transpose(1, 2)
        k = self.k_proj(source).view(B, S, self.n_kv_heads, self.head_dim).transpose(1, 2)
        v = self.v_proj(source).view(B, S, self.n_kv_heads, self.head_dim).transpose(1, 2)
        group = self.n_heads // self.n_kv_heads
        if group > 1:  # heads h*group .. h*group+group-1 share kv head h
            k = k.repeat_interleave(group, dim=1)
            v = v.repeat_interleave(group, dim=1)
        out, _ = scaled_dot_product_attention(q, k, v, mask)
        return self.o_proj(out.transpose(1, 2).reshape(B, L, self.n_heads * self.head_dim))
        ### END SOLUTION
