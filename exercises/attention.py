# Exercise stub generated from the reference by `llmlab stubs` -- fill in every body that raises
# NotImplementedError; signatures and docstrings are the spec. Check yourself with `pytest exercises/`.
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
    # YOUR CODE HERE
    raise NotImplementedError("task attention.scaled_dot_product_attention: not implemented yet")


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
        # YOUR CODE HERE
        raise NotImplementedError("task attention.MultiHeadAttention.__init__: not implemented yet")

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
        # YOUR CODE HERE
        raise NotImplementedError("task attention.MultiHeadAttention.forward: not implemented yet")
