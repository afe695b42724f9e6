"""Masks: what makes a decoder a decoder (notes §2.3).

An encoder lets every token see every other token. A decoder predicts the next token, so position
``i`` must not see positions after it: the causal mask. Batches of sequences of different lengths
are padded, and no real token may attend to padding: the padding mask. A decoder needs both.

Masks are bool tensors, True where a query **may** attend to a key.
"""
from __future__ import annotations

import torch


def causal_mask(q_len, k_len=None, *, device=None):
    """The causal mask, aligned bottom-right (as needed when decoding with a KV cache).

    Query ``i`` sits at absolute position ``k_len - q_len + i`` and may attend key ``j`` iff
    ``j <= k_len - q_len + i``. With ``q_len == k_len`` this is the usual lower triangle, diagonal
    included. (Note: ``is_causal=True`` in torch's SDPA is aligned top-left and differs when
    ``q_len != k_len``.)

    Args:
        q_len: number of queries (>= 0).
        k_len: number of keys (>= q_len); defaults to ``q_len``.
        device: where to create the mask.

    Returns:
        Bool tensor of shape ``(q_len, k_len)``.

    Raises:
        ValueError: if a length is negative or ``k_len < q_len``.
    """
    ### BEGIN SOLUTION
    k_len = q_len if k_len is None else k_len
    for name, n in (("q_len", q_len), ("k_len", k_len)):
        if isinstance(n, bool) or not isinstance(n, int):
            raise TypeError(f"{name} must be an int, got {type(n).__name__}")
        if n < 0:
            raise ValueError(f"{name} must be >= 0, got {n}")
    if k_len < q_len:
        raise ValueError(f"k_len ({k_len}) must be >= q_len ({q_len})")
    return torch.ones(q_len, k_len, dtype=torch.bool, device=device).tril(diagonal=k_len - q_len)
    ### END SOLUTION


def padding_mask(attention_mask):
    """Key-padding mask from a tokenizer's ``attention_mask``.

    Args:
        attention_mask: ``(B, S)`` of 0/1 (any integer dtype) or bool; 1/True marks a real token.

    Returns:
        Bool tensor ``(B, 1, 1, S)``: True where the key is a real token. It broadcasts over heads and
        queries.

    Raises:
        ValueError: if ``attention_mask`` is not 2-dimensional.
    """
    ### BEGIN SOLUTION
    if not isinstance(attention_mask, torch.Tensor):
        raise TypeError("attention_mask must be a torch.Tensor")
    if attention_mask.dim() != 2:
        raise ValueError(f"attention_mask must have shape (B, S), got {tuple(attention_mask.shape)}")
    return (attention_mask != 0)[:, None, None, :]
    ### END SOLUTION


def decoder_mask(attention_mask):
    """Causal AND key-padding mask, ready to pass to attention.

    Works with left and right padding: a real query attends to real keys at or before its position.

    Args:
        attention_mask: ``(B, S)`` of 0/1 or bool.

    Returns:
        Bool tensor ``(B, 1, S, S)``.
    """
    ### BEGIN SOLUTION
    keys = padding_mask(attention_mask)  # (B, 1, 1, S)
    S = attention_mask.shape[1]
    return causal_mask(S, device=attention_mask.device)[None, None] & keys
    ### END SOLUTION
