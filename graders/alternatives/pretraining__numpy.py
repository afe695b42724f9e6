"""Alternative correct `pretraining`: numpy throughout, as a student fluent in numpy would write it.

It returns numpy scalars (``np.float64``) where numpy computes them, fits with ``np.polyfit`` and
derives D from the budget line instead of from its own closed form.
"""
import math
import re

import numpy as np

CHINCHILLA = {"E": 1.69, "A": 406.4, "B": 410.7, "alpha": 0.34, "beta": 0.28}


def lr_at(step, *, peak_lr, warmup_steps, total_steps, min_lr=0.0):
    if step < 0 or peak_lr <= 0 or warmup_steps < 0 or total_steps < warmup_steps:
        raise ValueError("need step >= 0, peak_lr > 0 and 0 <= warmup_steps <= total_steps")
    if not 0 <= min_lr <= peak_lr:
        raise ValueError("min_lr must lie in [0, peak_lr]")
    if step < warmup_steps:
        return np.float64(peak_lr) * step / warmup_steps
    progress = np.clip((step - warmup_steps) / max(total_steps - warmup_steps, 1), 0.0, 1.0)
    if step > total_steps:
        progress = 1.0
    return min_lr + (peak_lr - min_lr) * (np.cos(np.pi * progress) + 1.0) / 2.0


def anneal_lr(step, *, start_step, anneal_steps, start_lr):
    if anneal_steps <= 0:
        raise ValueError("anneal_steps must be > 0")
    if start_lr < 0 or step < 0 or start_step < 0:
        raise ValueError("step, start_step and start_lr must be >= 0")
    return float(np.interp(step, [start_step, start_step + anneal_steps], [start_lr, 0.0]))


def fit_power_law(compute, tokens):
    c = np.asarray(compute, dtype=np.float64).ravel()
    t = np.asarray(tokens, dtype=np.float64).ravel()
    if c.shape != t.shape:
        raise ValueError("compute and tokens must have the same length")
    if c.size < 2:
        raise ValueError("need at least two points")
    if not (np.all(np.isfinite(c)) and np.all(np.isfinite(t)) and np.all(c > 0) and np.all(t > 0)):
        raise ValueError("every value must be finite and positive")
    if np.all(c == c[0]):
        raise ValueError("the budgets must not all be equal")
    slope, intercept = np.polyfit(np.log(c), np.log(t), 1)
    return np.exp(intercept), slope


def compute_optimal(compute, A, alpha):
    if compute <= 0 or A <= 0:
        raise ValueError("compute and A must be > 0")
    tokens = A * np.power(np.float64(compute), alpha)
    return compute / 6.0 / tokens, tokens


def chinchilla_loss(N, D):
    if N <= 0 or D <= 0:
        raise ValueError("N and D must be > 0")
    k = CHINCHILLA
    return k["E"] + k["A"] * np.float64(N) ** -k["alpha"] + k["B"] * np.float64(D) ** -k["beta"]


def chinchilla_optimal(compute):
    if compute <= 0:
        raise ValueError("compute must be > 0")
    k = CHINCHILLA
    s = k["alpha"] + k["beta"]
    log_G = (np.log(k["alpha"] * k["A"]) - np.log(k["beta"] * k["B"])) / s
    N = np.exp(log_G + k["beta"] / s * np.log(compute / 6.0))
    return N, compute / (6.0 * N)


def needle_prompt(filler, needle, question, *, n_words, depth):
    text = filler if isinstance(filler, str) else " ".join(filler)
    words = np.array(text.split(), dtype=object)
    if not 0 <= depth <= 1:
        raise ValueError("depth must lie in [0, 1]")
    if n_words < 0:
        raise ValueError("n_words must be >= 0")
    if not needle.split():
        raise ValueError("the needle needs a word")
    if n_words and words.size == 0:
        raise ValueError("the filler has no words")
    hay = list(np.resize(words, n_words)) if n_words else []
    at = int(round(depth * n_words))
    return " ".join(hay[:at] + needle.split() + hay[at:]) + "\n\n" + question


def needle_found(response, answer):
    squash = lambda s: re.sub(r"\s+", "", s).lower()  # noqa: E731
    if not squash(answer):
        raise ValueError("answer is empty")
    return squash(answer) in squash(response)


# ---- long context (issue 19): numpy arrays, a loop over the frequency pairs
def llama3_rope_frequencies(head_dim, base, *, factor, low_freq_factor, high_freq_factor, original_max_position):
    import torch

    if type(head_dim) is not int or type(original_max_position) is not int:
        raise TypeError("head_dim and original_max_position must be ints")
    if head_dim <= 0 or head_dim % 2 or original_max_position < 1 or base <= 1 or factor < 1:
        raise ValueError("bad RoPE size")
    if not 0 < low_freq_factor < high_freq_factor:
        raise ValueError("need 0 < low_freq_factor < high_freq_factor")
    out = np.empty(head_dim // 2)
    for i in range(head_dim // 2):
        f = 1.0 / base ** (2 * i / head_dim)
        turns = original_max_position * f / (2 * math.pi)  # full turns within the trained context
        if turns > high_freq_factor:
            out[i] = f
        elif turns < low_freq_factor:
            out[i] = f / factor
        else:
            s = (turns - low_freq_factor) / (high_freq_factor - low_freq_factor)
            out[i] = f / factor + s * (f - f / factor)
    return torch.from_numpy(out.astype(np.float32))


def attention_cost(seq_len, *, d_model, n_layers, n_heads, n_kv_heads, bytes_per_value=2):
    values = [seq_len, d_model, n_layers, n_heads, n_kv_heads, bytes_per_value]
    if any(type(v) is not int for v in values):
        raise TypeError("sizes must be ints")
    if seq_len < 0 or min(values[1:]) < 1 or d_model % n_heads or n_heads % n_kv_heads:
        raise ValueError("bad sizes")
    return {"flops": 4 * n_layers * seq_len * seq_len * d_model,
            "kv_cache_bytes": 2 * n_layers * seq_len * (d_model // n_heads) * n_kv_heads * bytes_per_value}
