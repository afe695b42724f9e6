# Exercise stub generated from the reference by `llmlab stubs` -- fill in every body that raises
# NotImplementedError; signatures and docstrings are the spec. Check yourself with `pytest exercises/`.
"""Pre-training recipes: learning-rate schedules, scaling laws and long-context checks (notes §3.1-3.2).

Llama 3 was pre-trained in three stages, and each stage needs one small piece of arithmetic:

* **Initial training.** The learning rate climbs linearly from 0 during a short warm-up (the freshly
  initialised network is fragile: its first gradients are large and noisy), then follows a half cosine
  from its peak down to a floor. For the 405B model: peak ``8e-5``, 8,000 warm-up steps, cosine down to
  ``8e-7`` over 1,200,000 steps. ``lr_at`` is that schedule; it equals transformers'
  ``get_cosine_with_min_lr_schedule_with_warmup`` up to the last step and stays at the floor after it.
* **Long context.** The context window grows from 8K to 128K tokens in six stages. A stage ends when
  the model again scores as before on short-context evaluations and solves "needle in a haystack": one
  fact hidden at some depth of a long filler text, asked about at the end. ``needle_prompt`` builds
  such a case and ``needle_found`` scores the model's answer.
* **Annealing.** On the final 40M tokens the learning rate decays linearly to 0 while the data mix is
  tilted towards the highest-quality sources. ``anneal_lr`` is that linear decay.

How big should the model be? Training costs about ``C = 6 N D`` FLOPs for ``N`` parameters and ``D``
tokens, so at a fixed budget a bigger model sees fewer tokens. Chinchilla (Hoffmann et al. 2022)
trained hundreds of models at fixed budgets (isoFLOP curves) and found that the loss-minimising size
grows as a power of the budget; their third approach fits a parametric loss
``L(N, D) = E + A / N**alpha + B / D**beta`` (``chinchilla_loss``) whose minimum on the line
``6 N D = C`` has a closed form (``chinchilla_optimal``). Llama 3 redid the experiment and fitted the
optimal number of **training tokens** (not parameters) as ``D*(C) = A * C**alpha``
(``fit_power_law``, ``compute_optimal``), then extrapolated it to its 3.8e25-FLOP budget.

Conventions: numbers in, Python floats out; a bad argument raises ``ValueError`` (``TypeError`` for a
wrong type) with a message that names it. The constants below are the papers' published values.
"""
from __future__ import annotations

import math
import numbers

# Chinchilla (arXiv 2203.15556), approach 3: L(N, D) = E + A / N**alpha + B / D**beta.
CHINCHILLA = {"E": 1.69, "A": 406.4, "B": 410.7, "alpha": 0.34, "beta": 0.28}

# Llama 3 405B (arXiv 2407.21783, §3.2.1 and §3.4). The schedule's step counts and learning rates,
# the final linear anneal (in tokens), and the scaling-law fit N*(C) = A * C**alpha, where N* is the
# optimal number of TRAINING TOKENS. The paper rounds the fit to (A, alpha) = (0.29, 0.53); its
# Figure 3 shows the unrounded 0.299 and 0.537. The paper's extrapolation: 3.8e25 FLOPs suggest a
# 402B-parameter model on 16.55T tokens; the final model has 405B parameters and saw 15.6T tokens.
LLAMA3_405B = {
    "peak_lr": 8e-5, "warmup_steps": 8_000, "total_steps": 1_200_000, "min_lr": 8e-7,
    "anneal_tokens": 40e6, "training_tokens": 15.6e12, "params": 405e9,
    "law_A": 0.29, "law_alpha": 0.53, "law_A_unrounded": 0.299, "law_alpha_unrounded": 0.537,
    "budget_flops": 3.8e25, "predicted_params": 402e9, "predicted_tokens": 16.55e12,
}


def _number(name, value, *, minimum=None, strict=False, maximum=None):
    """``value`` as a float, checked to be a finite real number in range (names the argument)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number, got {type(value).__name__}")
    value = float(value)
    if not math.isfinite(value):
        raise ValueError(f"{name} must be finite, got {value}")
    if minimum is not None and (value <= minimum if strict else value < minimum):
        raise ValueError(f"{name} must be {'>' if strict else '>='} {minimum:g}, got {value:g}")
    if maximum is not None and value > maximum:
        raise ValueError(f"{name} must be <= {maximum:g}, got {value:g}")
    return value


def _count(name, value):
    """``value`` as a non-negative int (a number of steps or words)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an int, got {type(value).__name__}")
    if value < 0:
        raise ValueError(f"{name} must be >= 0, got {value}")
    return int(value)


def lr_at(step, *, peak_lr, warmup_steps, total_steps, min_lr=0.0):
    """The learning rate at optimizer step ``step``: linear warm-up, cosine decay, then a floor.

    * warm-up, ``0 <= step < warmup_steps``: ``peak_lr * step / warmup_steps`` (0 at step 0);
    * cosine, ``warmup_steps <= step <= total_steps``: with
      ``progress = (step - warmup_steps) / (total_steps - warmup_steps)`` (0 when the two are equal),
      ``min_lr + (peak_lr - min_lr) * 0.5 * (1 + cos(pi * progress))``: ``peak_lr`` at
      ``warmup_steps``, ``min_lr`` at ``total_steps``;
    * after, ``step > total_steps``: ``min_lr``.

    For ``0 <= step <= total_steps`` this is exactly transformers'
    ``get_cosine_with_min_lr_schedule_with_warmup(optimizer, warmup_steps, total_steps,
    min_lr=min_lr)`` with an optimizer whose ``lr`` is ``peak_lr`` (up to float rounding). Past
    ``total_steps`` that schedule follows the cosine back up; this one stays at ``min_lr``.
    Llama 3 405B: ``lr_at(step, peak_lr=8e-5, warmup_steps=8_000, total_steps=1_200_000, min_lr=8e-7)``.

    Args:
        step: the optimizer step, a real number >= 0 (an int in a training loop).
        peak_lr: the learning rate at the end of the warm-up, > 0.
        warmup_steps: int >= 0 (0: no warm-up, step 0 already has ``peak_lr``).
        total_steps: int >= ``warmup_steps``, the step at which the cosine reaches ``min_lr``.
        min_lr: the floor, ``0 <= min_lr <= peak_lr``.

    Returns:
        float.

    Raises:
        TypeError: if a step count is not an int, or a value is not a real number.
        ValueError: if ``step < 0``, ``peak_lr <= 0``, ``warmup_steps < 0``,
            ``total_steps < warmup_steps``, or ``min_lr`` is outside ``[0, peak_lr]``.
    """
    # YOUR CODE HERE
    raise NotImplementedError("task pretraining.lr_at: not implemented yet")


def anneal_lr(step, *, start_step, anneal_steps, start_lr):
    """Linear annealing to 0: ``start_lr`` at ``start_step``, 0 at ``start_step + anneal_steps``.

    ``start_lr * (1 - (step - start_step) / anneal_steps)`` in between; ``start_lr`` before
    ``start_step`` (the anneal has not begun) and ``0.0`` after the end (never negative). The unit is
    free: optimizer steps, or tokens seen (Llama 3 anneals over its final 40M tokens). Inside the
    anneal this equals ``torch.optim.lr_scheduler.LinearLR(optimizer, start_factor=1.0,
    end_factor=0.0, total_iters=anneal_steps)`` counted from ``start_step``.

    Args:
        step: where to evaluate, a real number >= 0.
        start_step: where the anneal begins, a real number >= 0.
        anneal_steps: its length, a real number > 0.
        start_lr: the learning rate when it begins, >= 0.

    Returns:
        float.

    Raises:
        TypeError: if an argument is not a real number.
        ValueError: if ``step`` or ``start_step`` is negative, ``anneal_steps <= 0`` or ``start_lr < 0``.
    """
    # YOUR CODE HERE
    raise NotImplementedError("task pretraining.anneal_lr: not implemented yet")


def _positive_floats(name, values):
    """A 1-D sequence (list, tuple, numpy array, tensor) of finite positive numbers, as floats."""
    if isinstance(values, (str, bytes)) or not hasattr(values, "__len__"):
        raise TypeError(f"{name} must be a sequence of numbers, got {type(values).__name__}")
    if getattr(values, "ndim", 1) != 1:
        raise ValueError(f"{name} must be one-dimensional, got shape {tuple(values.shape)}")
    out = []
    for v in values:
        if hasattr(v, "item") and not isinstance(v, numbers.Real):
            v = v.item()  # a 0-d tensor or numpy scalar
        out.append(_number(f"each value of {name}", v, minimum=0, strict=True))
    return out


def fit_power_law(compute, tokens):
    """Fit ``tokens = A * compute**alpha`` by least squares in log-log space.

    A power law is a straight line in log-log coordinates: ``log(tokens) = log(A) + alpha *
    log(compute)``. This is the ordinary least-squares line through the points
    ``(log compute_i, log tokens_i)`` (natural logs, float64), so each point counts equally whatever
    its scale, and the result does not depend on the order of the points. (Fitting
    ``A * compute**alpha`` to the raw values instead would let the largest budgets dominate.)

    Args:
        compute: 1-D sequence (list, tuple, numpy array or tensor) of budgets in FLOPs, all > 0, at
            least two of them different.
        tokens: 1-D sequence of the same length, all > 0 (e.g. the optimal tokens at each budget).

    Returns:
        ``(A, alpha)``, two floats.

    Raises:
        TypeError: if an argument is not a sequence of numbers.
        ValueError: if the lengths differ, there are fewer than 2 points, a value is not finite or
            not positive, or all budgets are equal.
    """
    # YOUR CODE HERE
    raise NotImplementedError("task pretraining.fit_power_law: not implemented yet")


def compute_optimal(compute, A, alpha):
    """Compute-optimal split of a budget under Llama 3's law for the optimal number of tokens.

    ``tokens = A * compute**alpha`` (the law gives TOKENS, not parameters), and the parameters follow
    from ``compute = 6 * params * tokens``: ``params = compute / (6 * tokens)``.
    With ``(A, alpha) = (0.29, 0.53)`` and 3.8e25 FLOPs this gives about 10.5T tokens, not the
    paper's 16.55T: see ``LLAMA3_405B`` and the notebook.

    Args:
        compute: the budget in FLOPs, > 0.
        A: the coefficient, > 0.
        alpha: the exponent, a real number.

    Returns:
        ``(params, tokens)``, two floats.

    Raises:
        TypeError: if an argument is not a real number.
        ValueError: if ``compute <= 0`` or ``A <= 0``.
    """
    # YOUR CODE HERE
    raise NotImplementedError("task pretraining.compute_optimal: not implemented yet")


def chinchilla_loss(N, D):
    """Chinchilla's fitted loss (approach 3) for ``N`` parameters trained on ``D`` tokens.

    ``L(N, D) = E + A / N**alpha + B / D**beta`` with the constants of ``CHINCHILLA``:
    ``E = 1.69`` (the entropy of text, out of reach), ``A = 406.4, alpha = 0.34`` (what a finite
    model costs), ``B = 410.7, beta = 0.28`` (what finite data costs). E.g. Chinchilla itself (70B
    parameters, 1.4T tokens) is about 1.937, Gopher (280B, 300B) about 1.993.

    Args:
        N: number of parameters, > 0.
        D: number of training tokens, > 0.

    Returns:
        float, the predicted loss (nats per token).

    Raises:
        TypeError: if an argument is not a real number.
        ValueError: if ``N <= 0`` or ``D <= 0``.
    """
    # YOUR CODE HERE
    raise NotImplementedError("task pretraining.chinchilla_loss: not implemented yet")


def chinchilla_optimal(compute):
    """The ``(N, D)`` that minimise ``chinchilla_loss`` under the budget ``6 * N * D = compute``.

    Closed form (Chinchilla, appendix D.2): with ``a = beta / (alpha + beta)``,
    ``b = alpha / (alpha + beta)`` and ``G = (alpha * A / (beta * B)) ** (1 / (alpha + beta))``,
    ``N = G * (compute / 6) ** a`` and ``D = (compute / 6) ** b / G``. With the rounded constants
    ``a ~ 0.452``, ``b ~ 0.548``: parameters and tokens grow almost equally with the budget, and
    the ratio ``D / N`` is not a constant 20 (that rule of thumb comes from the paper's other
    approaches).

    Args:
        compute: the budget in FLOPs, > 0.

    Returns:
        ``(N, D)``, two floats with ``6 * N * D == compute`` (up to rounding).

    Raises:
        TypeError: if ``compute`` is not a real number.
        ValueError: if ``compute <= 0``.
    """
    # YOUR CODE HERE
    raise NotImplementedError("task pretraining.chinchilla_optimal: not implemented yet")


def needle_prompt(filler, needle, question, *, n_words, depth):
    """A needle-in-a-haystack prompt: ``n_words`` of filler with the needle hidden at ``depth``.

    The filler's words (its whitespace-separated pieces; a list of sentences is read in order) are
    repeated from the start as often as needed and cut to exactly ``n_words`` words. The needle's
    words go in after the first ``k = round(depth * n_words)`` of them (Python's ``round``): depth 0
    puts the needle first, depth 1 last. The result is::

        " ".join(filler_words[:k] + needle_words + filler_words[k:]) + "\\n\\n" + question

    so it has ``n_words + len(needle.split())`` words before the question, single spaces between
    them (the filler's own line breaks are not kept), then a blank line and the question unchanged.

    Args:
        filler: a text (str) or a list/tuple of sentences (str).
        needle: the fact to hide, a str with at least one word.
        question: the question asked after the haystack (str).
        n_words: number of filler words, int >= 0.
        depth: where the needle goes, a real number in ``[0, 1]``.

    Returns:
        str.

    Raises:
        TypeError: if ``filler`` is neither a str nor a list/tuple of str, ``needle`` or
            ``question`` is not a str, ``n_words`` is not an int or ``depth`` not a real number.
        ValueError: if ``n_words < 0``, ``depth`` is outside ``[0, 1]``, the needle has no word, or
            the filler has no word while ``n_words > 0``.
    """
    # YOUR CODE HERE
    raise NotImplementedError("task pretraining.needle_prompt: not implemented yet")


def needle_found(response, answer):
    """Whether the model's ``response`` contains ``answer``, ignoring case and whitespace.

    Both strings are compared after ``str.casefold()`` and with every whitespace character removed,
    so ``"The code is  48 12."`` contains ``"4812"`` and ``"PARIS"`` contains ``"paris"``.

    Args:
        response: the model's text.
        answer: the expected answer, with at least one non-whitespace character.

    Returns:
        bool.

    Raises:
        TypeError: if an argument is not a str.
        ValueError: if ``answer`` is empty or only whitespace (everything would contain it).
    """
    # YOUR CODE HERE
    raise NotImplementedError("task pretraining.needle_found: not implemented yet")


# ---------------------------------------------------------------------------------------------
# Long context (notes §3.2.2): stretching RoPE, and what a long input costs
# ---------------------------------------------------------------------------------------------
import torch  # noqa: E402 - only the long-context part works with tensors


def llama3_rope_frequencies(head_dim, base, *, factor, low_freq_factor, high_freq_factor, original_max_position):
    """The rotary inverse frequencies of Llama 3.1's long-context scaling (``rope_type="llama3"``).

    Plain RoPE rotates pair ``i`` of each head by ``position * inv_freq[i]`` with
    ``inv_freq[i] = base ** (-2 * i / head_dim)``, ``i = 0 .. head_dim // 2 - 1``; its wavelength is
    ``2 * pi / inv_freq[i]`` positions. With ``L = original_max_position`` (the context the model was
    trained on), each frequency is rescaled by its wavelength:

    * wavelength ``< L / high_freq_factor`` (fast pairs, which see many full turns in training): kept;
    * wavelength ``> L / low_freq_factor`` (slow pairs, never a full turn in training): divided by
      ``factor``, so longer inputs reuse the angles seen in training;
    * in between, a smooth mix: ``(1 - s) * inv_freq / factor + s * inv_freq`` with
      ``s = (L / wavelength - low_freq_factor) / (high_freq_factor - low_freq_factor)``.

    The same values as transformers' ``rope_type="llama3"`` initialisation (to float32 precision).

    Args:
        head_dim: the size of one attention head, a positive even int.
        base: RoPE's base (``rope_theta``), a number > 1.
        factor: how much the slow frequencies are slowed down, a number >= 1 (Llama 3.1: 8).
        low_freq_factor, high_freq_factor: numbers with ``0 < low_freq_factor < high_freq_factor``
            (Llama 3.1: 1 and 4).
        original_max_position: the trained context length ``L``, an int >= 1 (Llama 3.1: 8192).

    Returns:
        A float32 tensor of shape ``(head_dim // 2,)``.

    Raises:
        TypeError: if ``head_dim`` or ``original_max_position`` is not an int.
        ValueError: if ``head_dim`` is not positive and even, ``base <= 1``, ``factor < 1``, or the
            frequency factors are not ``0 < low_freq_factor < high_freq_factor``, or
            ``original_max_position < 1``.
    """
    # YOUR CODE HERE
    raise NotImplementedError("task pretraining.llama3_rope_frequencies: not implemented yet")


def attention_cost(seq_len, *, d_model, n_layers, n_heads, n_kv_heads, bytes_per_value=2):
    """What attention over ``seq_len`` tokens costs a decoder: the quadratic FLOPs and the KV cache.

    With ``head_dim = d_model // n_heads``, each layer and each query head computes the scores
    ``Q @ K^T`` (a ``seq_len x seq_len`` matrix, each entry a dot product of length ``head_dim``) and
    the output ``weights @ V`` (the same size of product). A multiply-add counts as 2 FLOPs and the
    full square is counted (as plain attention computes it, masked half included), so
    ``flops = n_layers * n_heads * 2 * (2 * seq_len**2 * head_dim) = 4 * n_layers * seq_len**2 * d_model``.
    The projections and the MLP (linear in ``seq_len``) are not counted. The KV cache keeps one key
    and one value vector per token, layer and *key-value* head (grouped-query attention shares them):
    ``kv_cache_bytes = 2 * n_layers * n_kv_heads * head_dim * seq_len * bytes_per_value``.

    Args:
        seq_len: tokens in the input, an int >= 0.
        d_model, n_layers, n_heads, n_kv_heads: the model's sizes, ints >= 1, ``d_model`` divisible by
            ``n_heads`` and ``n_heads`` by ``n_kv_heads``.
        bytes_per_value: bytes per cached number, an int >= 1 (2 for bfloat16, 4 for float32).

    Returns:
        ``{"flops": int, "kv_cache_bytes": int}``.

    Raises:
        TypeError: if an argument is not an int.
        ValueError: if a size is out of range or does not divide as stated.
    """
    # YOUR CODE HERE
    raise NotImplementedError("task pretraining.attention_cost: not implemented yet")
