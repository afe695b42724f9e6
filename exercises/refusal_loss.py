# Exercise stub generated from the reference by `llmlab stubs` -- fill in every body that raises
# NotImplementedError; signatures and docstrings are the spec. Check yourself with `pytest exercises/`.
"""Decoupled Refusal Training (DeRTa), token by token (notes §6.2).

Ordinary safety data put the refusal at the very start of the answer: "query -> Sorry, I can't ...".
A model trained only on that learns to refuse at position 0 and nowhere else. Once an attack has
made it start the unwanted answer (CodeAttack makes the model rebuild the request and begin working
on it), nothing in its training ever showed a refusal in the middle of a response, so it carries on.

DeRTa (Yuan et al., 2024, arXiv 2407.09121) adds two terms:

* **MLE with a harmful prefix**: the input is ``query + harmful[:k] + safe`` with ``k`` drawn
  uniformly from ``0..len(harmful)``; the loss covers only the safe response. The model learns to
  switch to the safe answer after *any* amount of unwanted text (``k = 0`` is plain refusal
  training). The prefix itself gets no loss: the model must not learn to produce it.
* **Reinforced Transition Optimization (RTO)**: on ``query + harmful``, *every* position whose next
  token belongs to the harmful response is trained to predict the refusal token (one token, e.g.
  ``Sorry``) instead. From the last query token to the second-to-last harmful token, the model
  learns "I could stop right here".

Both terms are cross-entropies over single tokens, and the reference code pools them: the total loss
over every counted token of both terms, divided by the number of those tokens (no per-term weight).

Conventions: sequences are lists of int token ids; ``labels`` use ``-100`` for "no loss here"
(``torch.nn.CrossEntropyLoss``'s ``ignore_index``); position ``t`` of the logits predicts token
``t + 1`` (the shift happens inside the losses). The kit's notebook plays this out with a harmless
stand-in: the "harmful" continuation is a model reciting a password it was told to keep secret.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

IGNORE_INDEX = -100


def harmful_prefix_example(query_ids, harmful_ids, safe_ids, k):
    """A DeRTa "MLE with harmful prefix" example: the safe answer after ``k`` harmful tokens.

    ``input_ids = query_ids + harmful_ids[:k] + safe_ids``;
    ``labels = [-100] * (len(query_ids) + k) + safe_ids``: only the safe response is learnt, never the
    query nor the harmful prefix. ``k = 0`` is a plain refusal example.

    Args:
        query_ids, harmful_ids, safe_ids: token ids (lists of int; tuples and 1-D integer tensors are
            accepted). They are not modified.
        k: the number of harmful tokens kept, ``0 <= k <= len(harmful_ids)``.

    Returns:
        ``(input_ids, labels)``: two new lists of int of the same length.

    Raises:
        TypeError: if ``k`` is not an int.
        ValueError: if ``k`` is outside ``0..len(harmful_ids)``.
    """
    # YOUR CODE HERE
    raise NotImplementedError("task refusal_loss.harmful_prefix_example: not implemented yet")


def sample_prefix_length(n, rng):
    """The harmful-prefix length ``k`` for a harmful response of ``n`` tokens: uniform on ``0..n``.

    Both ends are included: ``k = 0`` (plain refusal training) and ``k = n`` (refuse after the whole
    harmful response) each have probability ``1 / (n + 1)``. Every random draw comes from ``rng``, so
    the same seed gives the same lengths.

    Args:
        n: the harmful response's length, an int >= 0.
        rng: a ``random.Random``.

    Returns:
        int in ``0..n``.

    Raises:
        TypeError: if ``n`` is not an int.
        ValueError: if ``n < 0``.
    """
    # YOUR CODE HERE
    raise NotImplementedError("task refusal_loss.sample_prefix_length: not implemented yet")


def rto_example(query_ids, harmful_ids):
    """A Reinforced Transition Optimization example: the query followed by the whole harmful response.

    Args:
        query_ids, harmful_ids: token ids (lists of int; tuples and 1-D integer tensors are accepted).

    Returns:
        ``(input_ids, harmful_mask)``: ``input_ids = query_ids + harmful_ids`` (list of int) and
        ``harmful_mask`` (list of bool, same length), True exactly on the harmful-response positions
        (the last ``len(harmful_ids)`` ones).
    """
    # YOUR CODE HERE
    raise NotImplementedError("task refusal_loss.rto_example: not implemented yet")


def refusal_position_loss(logits, harmful_mask, refusal_token_id):
    """The RTO loss: predict the refusal token at every position whose *next* token is harmful.

    With ``logp = log_softmax(logits, dim=-1)``, the loss is the mean of
    ``-logp[b, t, refusal_token_id]`` over every pair ``(b, t)``, ``0 <= t < T - 1``, with
    ``harmful_mask[b, t + 1]`` True: the position that would produce a harmful token learns to say
    the refusal token instead. For a row from :func:`rto_example` these are the last query token
    and every harmful position but the last. ``harmful_mask[:, 0]`` plays no part (no position
    predicts token 0).

    Args:
        logits: ``(B, T, V)`` float tensor (float32 or float64).
        harmful_mask: ``(B, T)`` bool tensor (0/1 integers are accepted).
        refusal_token_id: int in ``[0, V)``.

    Returns:
        A 0-dim tensor of the logits' dtype (float64 logits keep float64 precision, within 1e-10),
        differentiable with respect to ``logits``.

    Raises:
        TypeError: if ``logits`` or ``harmful_mask`` is not a tensor.
        ValueError: if ``logits`` is not ``(B, T, V)`` or ``harmful_mask`` not ``(B, T)``, if
            ``refusal_token_id`` is outside ``[0, V)``, or when no position qualifies
            (``harmful_mask[:, 1:]`` has no True entry).
    """
    # YOUR CODE HERE
    raise NotImplementedError("task refusal_loss.refusal_position_loss: not implemented yet")


def derta_loss(logits, labels, harmful_mask, refusal_token_id):
    """The DeRTa objective on a batch mixing harmful-prefix rows and RTO rows, pooled by token count.

    Two sets of counted tokens, both shifted (``logits[:, t]`` predicts position ``t + 1``):

    * MLE: every ``(b, t)`` with ``labels[b, t + 1] != -100``; its loss is
      ``-log_softmax(logits[b, t])[labels[b, t + 1]]``;
    * RTO: every ``(b, t)`` with ``harmful_mask[b, t + 1]`` True; its loss is
      ``-log_softmax(logits[b, t])[refusal_token_id]``.

    The result is (sum of all MLE token losses + sum of all RTO token losses) / (number of MLE tokens
    + number of RTO tokens): one pooled average, as one ``CrossEntropyLoss`` over the whole batch
    would give, **not** the mean of the two terms' means. The terms are independent: a position
    counted by both (not the case for rows built by :func:`harmful_prefix_example` and
    :func:`rto_example`) adds to both.

    Args:
        logits: ``(B, T, V)`` float tensor.
        labels: ``(B, T)`` integer tensor of token ids or ``-100``, aligned with the input ids.
        harmful_mask: ``(B, T)`` bool tensor (0/1 integers are accepted).
        refusal_token_id: int in ``[0, V)``.

    Returns:
        A 0-dim tensor of the logits' dtype (float64 logits keep float64 precision, within 1e-10),
        differentiable with respect to ``logits``.

    Raises:
        TypeError: if ``logits``, ``labels`` or ``harmful_mask`` is not a tensor.
        ValueError: on wrong shapes, a ``refusal_token_id`` outside ``[0, V)``, a label other than
            ``-100`` outside ``[0, V)``, or when no token is counted.
    """
    # YOUR CODE HERE
    raise NotImplementedError("task refusal_loss.derta_loss: not implemented yet")
