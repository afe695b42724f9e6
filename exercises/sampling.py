# Exercise stub generated from the reference by `llmlab stubs` -- fill in every body that raises
# NotImplementedError; signatures and docstrings are the spec. Check yourself with `pytest exercises/`.
"""Decoding: from next-token logits to text (notes §2.3).

A language model gives, at the last position, one score (logit) per vocabulary entry. Generation
turns those scores into one chosen token, appends it, and asks again. How the token is chosen
shapes the text:

* **greedy**: always the most likely token (deterministic, often repetitive);
* **temperature** ``T``: divide the logits by ``T`` before the softmax; ``T < 1`` sharpens the
  distribution towards greedy, ``T > 1`` flattens it towards uniform;
* **top-k**: keep only the ``k`` most likely tokens;
* **top-p** (nucleus): keep the smallest set of most likely tokens whose probabilities add up to at
  least ``p``; the set is small when the model is sure and large when it is not;
* **min-p**: keep the tokens at least ``min_p`` times as likely as the most likely one;
* **repetition penalty**: make every token that already occurs in the sequence less likely.

Filters set removed logits to ``-inf`` (probability exactly 0 after the softmax) and leave the others
unchanged. Everything here follows transformers' logits processors and ``generate()`` exactly, in
the same order: repetition penalty, then temperature, top-k, top-p, min-p, then one draw.

Generating token after token recomputes the whole prefix each step unless the model keeps the keys
and values of the tokens it has already seen: the **KV cache**. With it, each step feeds only the
newest token, and a left-padded batch still needs its attention mask and positions to grow by one
per step.
"""
from __future__ import annotations

import torch


def _check_logits(logits):
    if not isinstance(logits, torch.Tensor):
        raise TypeError(f"logits must be a torch.Tensor, got {type(logits).__name__}")
    if logits.dim() != 2:
        raise ValueError(f"logits must have shape (B, V), got {tuple(logits.shape)}")
    if not logits.is_floating_point():
        raise TypeError(f"logits must be a float tensor, got {logits.dtype}")


def _check_min_tokens(min_tokens_to_keep):
    if isinstance(min_tokens_to_keep, bool) or not isinstance(min_tokens_to_keep, int) or min_tokens_to_keep < 1:
        raise ValueError(f"min_tokens_to_keep must be an int >= 1, got {min_tokens_to_keep!r}")


def apply_temperature(logits, temperature):
    """Divide the logits by ``temperature``.

    Args:
        logits: ``(B, V)`` float.
        temperature: a number ``> 0`` (an int is fine).

    Returns:
        ``logits / temperature``, a new ``(B, V)`` tensor of the same dtype.

    Raises:
        ValueError: if ``temperature <= 0`` (use greedy decoding for "temperature 0").
    """
    # YOUR CODE HERE
    raise NotImplementedError("task sampling.apply_temperature: not implemented yet")


def top_k_filter(logits, k):
    """Keep the ``k`` largest logits of each row; set the others to ``-inf``.

    transformers' ``TopKLogitsWarper``: a logit is removed when it is strictly smaller than the row's
    ``k``-th largest value, so ties at the ``k``-th value are all kept (more than ``k`` tokens can
    survive); ``k >= V`` keeps everything.

    Args:
        logits: ``(B, V)`` float (may already contain ``-inf``).
        k: int ``>= 1``.

    Returns:
        A new ``(B, V)`` tensor: kept entries unchanged, removed entries ``-inf``.

    Raises:
        ValueError: if ``k < 1`` (or ``k`` is not an int).
    """
    # YOUR CODE HERE
    raise NotImplementedError("task sampling.top_k_filter: not implemented yet")


def top_p_filter(logits, p, *, min_tokens_to_keep=1):
    """Nucleus filtering: keep the smallest set of most likely tokens whose probability reaches ``p``.

    transformers' ``TopPLogitsWarper``, exactly: sort each row **ascending**, take the cumulative sum
    of the softmax probabilities, remove the tokens whose cumulative probability is ``<= 1 - p`` (the
    unlikely tail that together holds at most ``1 - p``), but always keep the ``min_tokens_to_keep``
    most likely tokens. The token that makes the kept mass cross ``p`` is kept. A set whose mass is
    exactly ``p`` is complete: no further token is added (probabilities ``[.5, .3, .15, .05]`` keep one
    token at ``p = 0.5`` and two at ``p = 0.8``, as transformers does). ``p = 1`` keeps every token of
    non-zero probability; ``p = 0`` keeps only ``min_tokens_to_keep`` tokens.

    Args:
        logits: ``(B, V)`` float (may contain ``-inf``).
        p: float in ``[0, 1]``.
        min_tokens_to_keep: int ``>= 1``.

    Returns:
        A new ``(B, V)`` tensor: kept entries unchanged, removed entries ``-inf``.

    Raises:
        ValueError: if ``p`` is outside ``[0, 1]`` or ``min_tokens_to_keep < 1``.
    """
    # YOUR CODE HERE
    raise NotImplementedError("task sampling.top_p_filter: not implemented yet")


def min_p_filter(logits, min_p, *, min_tokens_to_keep=1):
    """Keep the tokens whose probability is at least ``min_p`` times the most likely token's.

    transformers' ``MinPLogitsWarper``: with ``probs = softmax(logits)``, remove the tokens with
    ``probs < min_p * max(probs)`` (strictly smaller: a token exactly at the threshold stays), but
    always keep the ``min_tokens_to_keep`` most likely tokens. The threshold is on probabilities, not
    on logits.

    Args:
        logits: ``(B, V)`` float (may contain ``-inf``).
        min_p: float in ``[0, 1]``.
        min_tokens_to_keep: int ``>= 1``.

    Returns:
        A new ``(B, V)`` tensor: kept entries unchanged, removed entries ``-inf``.

    Raises:
        ValueError: if ``min_p`` is outside ``[0, 1]`` or ``min_tokens_to_keep < 1``.
    """
    # YOUR CODE HERE
    raise NotImplementedError("task sampling.min_p_filter: not implemented yet")


def apply_repetition_penalty(logits, input_ids, penalty):
    """Make the tokens that already occur in ``input_ids`` less likely (CTRL's repetition penalty).

    transformers' ``RepetitionPenaltyLogitsProcessor``: for every **distinct** id in row ``b`` of
    ``input_ids`` (prompt included, however often it occurs), the logit ``s`` of that id becomes
    ``s / penalty`` if ``s > 0`` and ``s * penalty`` if ``s < 0`` (0 stays 0). Dividing a negative logit
    would *raise* it, which is why the sign matters. ``penalty > 1`` discourages repetition,
    ``penalty < 1`` encourages it, ``1`` changes nothing.

    Args:
        logits: ``(B, V)`` float.
        input_ids: ``(B, T)`` long, ids in ``[0, V)``.
        penalty: float ``> 0``.

    Returns:
        A new ``(B, V)`` tensor.

    Raises:
        ValueError: if ``penalty <= 0`` or ``input_ids`` is not ``(B, T)`` for the logits' ``B``.
    """
    # YOUR CODE HERE
    raise NotImplementedError("task sampling.apply_repetition_penalty: not implemented yet")


def sample_next_token(logits, *, temperature=1.0, top_k=None, top_p=None, min_p=None, generator=None):
    """Choose one next token per row.

    ``temperature == 0``: greedy, the argmax of each row (the lowest id among equal maxima), and the
    filters are not used. Otherwise, in the order of transformers' ``generate()``: divide by the
    temperature, then top-k, then top-p, then min-p (each only when given), then draw one token from
    the softmax of the result with ``torch.multinomial``.

    Args:
        logits: ``(B, V)`` float.
        temperature: ``>= 0``.
        top_k: int ``>= 1`` or ``None`` (off).
        top_p: float in ``[0, 1]`` or ``None`` (off).
        min_p: float in ``[0, 1]`` or ``None`` (off).
        generator: a ``torch.Generator`` for the draw (``None``: torch's global generator). The same
            seed gives the same tokens.

    Returns:
        ``(B,)`` long tensor of token ids; a removed token (``-inf`` after filtering) is never chosen.

    Raises:
        ValueError: if ``temperature < 0``, or for an argument a filter rejects.
    """
    # YOUR CODE HERE
    raise NotImplementedError("task sampling.sample_next_token: not implemented yet")


def generate(model, input_ids, *, max_new_tokens, attention_mask=None, eos_token_id=None, pad_token_id=None,
             temperature=0.0, top_k=None, top_p=None, min_p=None, repetition_penalty=1.0, generator=None,
             use_cache=True):
    """Generate up to ``max_new_tokens`` tokens after each row of ``input_ids`` with a transformers causal LM.

    Each step: run ``model`` (without gradients), take the logits of the last position (as float32),
    apply the repetition penalty (when ``!= 1``) with every id of the sequence so far except those at
    padding positions (as transformers does for left padding), then choose the next token with
    ``sample_next_token``. A row that produced ``eos_token_id`` is finished: its later
    positions hold ``pad_token_id``; generation stops early once every row is finished.

    Padding: rows may be **left**-padded (``attention_mask`` 0 on the left, as for batched
    generation). Every model call gets the attention mask (grown by one 1 per generated token) and the
    positions ``attention_mask.cumsum(-1) - 1`` (padding at position 0), so a padded row gives the
    tokens it would give alone.

    KV cache: with ``use_cache=True`` the first call processes the whole prompt and returns the keys
    and values of every layer (``out.cache`` in transformers 5; ``past_key_values`` in 4.x); each
    later call feeds only the newest token together with that cache. With ``use_cache=False`` every
    step recomputes the whole sequence. Both give the same tokens.

    Args:
        model: a transformers causal LM (e.g. ``LlamaForCausalLM``), called as ``model(input_ids=...,
            attention_mask=..., position_ids=..., cache=..., use_cache=...)``.
        input_ids: ``(B, T)`` long, ``T >= 1``.
        max_new_tokens: int ``>= 0``.
        attention_mask: ``(B, T)`` of 0/1; ``None``: all ones.
        eos_token_id: int, or ``None`` (never stop early).
        pad_token_id: int written after a row's EOS; ``None``: ``eos_token_id``.
        temperature, top_k, top_p, min_p, generator: as in ``sample_next_token`` (``temperature=0``:
            greedy).
        repetition_penalty: float ``> 0``; 1.0 means none.
        use_cache: keep a KV cache between steps.

    Returns:
        ``(B, T + n)`` long: the prompt followed by ``n <= max_new_tokens`` new tokens. With
        ``temperature=0`` equal to ``model.generate(input_ids, attention_mask=..., do_sample=False,
        max_new_tokens=..., eos_token_id=..., pad_token_id=..., repetition_penalty=...,
        use_cache=...)``.

    Raises:
        ValueError: if ``input_ids`` is not ``(B, T)`` with ``T >= 1``, ``attention_mask`` has another
            shape, ``max_new_tokens < 0``, or a sampling argument is invalid.
    """
    # YOUR CODE HERE
    raise NotImplementedError("task sampling.generate: not implemented yet")
