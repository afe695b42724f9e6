"""Alternative correct `pretraining`: lean on the libraries, and minimise numerically.

``lr_at`` asks transformers' own schedule for its multiplier (and stops it from rising after the
end); the fit is ``torch.linalg.lstsq`` in float64; the Chinchilla optimum is found by root-finding on
the derivative of the loss along the budget line instead of the closed form; the haystack is built
with itertools.
"""
import itertools
import math

import torch

CHINCHILLA = {"E": 1.69, "A": 406.4, "B": 410.7, "alpha": 0.34, "beta": 0.28}


def lr_at(step, *, peak_lr, warmup_steps, total_steps, min_lr=0.0):
    from transformers import get_cosine_with_min_lr_schedule_with_warmup

    if step < 0:
        raise ValueError(f"step must be >= 0, got {step}")
    if peak_lr <= 0:
        raise ValueError(f"peak_lr must be > 0, got {peak_lr}")
    if warmup_steps < 0 or total_steps < warmup_steps:
        raise ValueError("need 0 <= warmup_steps <= total_steps")
    if min_lr < 0 or min_lr > peak_lr:
        raise ValueError("min_lr must lie in [0, peak_lr]")
    if step > total_steps:
        return float(min_lr)
    opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=peak_lr)
    sched = get_cosine_with_min_lr_schedule_with_warmup(opt, warmup_steps, total_steps, min_lr=min_lr)
    return peak_lr * sched.lr_lambdas[0](step)


def anneal_lr(step, *, start_step, anneal_steps, start_lr):
    if anneal_steps <= 0 or start_lr < 0 or step < 0 or start_step < 0:
        raise ValueError("anneal_steps must be > 0; step, start_step and start_lr >= 0")
    left = (start_step + anneal_steps - step) / anneal_steps  # 1 at the start, 0 at the end
    return start_lr * min(1.0, max(0.0, left))


def fit_power_law(compute, tokens):
    c = torch.as_tensor(compute, dtype=torch.float64).flatten()
    t = torch.as_tensor(tokens, dtype=torch.float64).flatten()
    if c.numel() != t.numel() or c.numel() < 2:
        raise ValueError("need two sequences of the same length >= 2")
    if not (torch.isfinite(c).all() and torch.isfinite(t).all() and (c > 0).all() and (t > 0).all()):
        raise ValueError("values must be finite and > 0")
    if (c == c[0]).all():
        raise ValueError("the budgets are all equal")
    x = c.log()
    X = torch.stack([torch.ones_like(x), x - x.mean()], dim=1)  # centred: well conditioned
    coef = torch.linalg.lstsq(X, t.log().unsqueeze(1), driver="gelsd").solution.squeeze(1)
    alpha = coef[1].item()
    return math.exp(coef[0].item() - alpha * x.mean().item()), alpha


def compute_optimal(compute, A, alpha):
    if not compute > 0 or not A > 0:
        raise ValueError("compute and A must be > 0")
    log_tokens = math.log(A) + alpha * math.log(compute)
    tokens = math.exp(log_tokens)
    return math.exp(math.log(compute) - math.log(6.0) - log_tokens), tokens


def chinchilla_loss(N, D):
    if not (N > 0 and D > 0):
        raise ValueError("N and D must be > 0")
    E, A, B, a, b = (CHINCHILLA[k] for k in ("E", "A", "B", "alpha", "beta"))
    return E + A * math.exp(-a * math.log(N)) + B * math.exp(-b * math.log(D))


def chinchilla_optimal(compute):
    """Minimise L(N, C / (6 N)) over u = log N: the derivative in u is increasing, so bisect its root."""
    if not compute > 0:
        raise ValueError("compute must be > 0")
    A, B, a, b = (CHINCHILLA[k] for k in ("A", "B", "alpha", "beta"))
    log_budget = math.log(compute / 6.0)

    def slope(u):  # d/du [A e^{-a u} + B e^{-b (log_budget - u)}]
        return -a * A * math.exp(-a * u) + b * B * math.exp(-b * (log_budget - u))

    lo, hi = -50.0, log_budget + 50.0
    for _ in range(200):
        mid = (lo + hi) / 2
        if slope(mid) > 0:
            hi = mid
        else:
            lo = mid
    N = math.exp((lo + hi) / 2)
    return N, compute / (6.0 * N)


def needle_prompt(filler, needle, question, *, n_words, depth):
    sentences = [filler] if isinstance(filler, str) else list(filler)
    words = [w for s in sentences for w in s.split()]
    if n_words < 0 or not 0.0 <= depth <= 1.0:
        raise ValueError("need n_words >= 0 and 0 <= depth <= 1")
    if not needle.strip():
        raise ValueError("needle is empty")
    if n_words > 0 and not words:
        raise ValueError("filler is empty")
    hay = list(itertools.islice(itertools.cycle(words), n_words))
    hay[round(depth * n_words):round(depth * n_words)] = needle.split()
    return " ".join(hay) + "\n\n" + question


def needle_found(response, answer):
    a = "".join(ch for ch in answer.casefold() if not ch.isspace())
    if not a:
        raise ValueError("answer has no visible character")
    return a in "".join(ch for ch in response.casefold() if not ch.isspace())


# ---- long context (issue 19): transformers' own initialisation, and counting with torch shapes
def llama3_rope_frequencies(head_dim, base, *, factor, low_freq_factor, high_freq_factor, original_max_position):
    import warnings

    from transformers import LlamaConfig
    from transformers.modeling_rope_utils import ROPE_INIT_FUNCTIONS

    if not isinstance(head_dim, int) or not isinstance(original_max_position, int):
        raise TypeError("head_dim and original_max_position must be ints")
    if head_dim < 2 or head_dim % 2 or base <= 1 or factor < 1 or original_max_position < 1 \
            or not 0 < low_freq_factor < high_freq_factor:
        raise ValueError("invalid llama3 RoPE parameters")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        config = LlamaConfig(hidden_size=head_dim, num_attention_heads=1, head_dim=head_dim,
                             max_position_embeddings=int(original_max_position * factor) + 1,
                             rope_parameters={"rope_type": "llama3", "rope_theta": float(base), "factor": float(factor),
                                              "low_freq_factor": float(low_freq_factor),
                                              "high_freq_factor": float(high_freq_factor),
                                              "original_max_position_embeddings": original_max_position})
        return ROPE_INIT_FUNCTIONS["llama3"](config, "cpu")[0].float()


def attention_cost(seq_len, *, d_model, n_layers, n_heads, n_kv_heads, bytes_per_value=2):
    for name, v in dict(seq_len=seq_len, d_model=d_model, n_layers=n_layers, n_heads=n_heads, n_kv_heads=n_kv_heads,
                        bytes_per_value=bytes_per_value).items():
        if isinstance(v, bool) or not isinstance(v, int):
            raise TypeError(f"{name} must be an int")
        if v < (0 if name == "seq_len" else 1):
            raise ValueError(f"{name} out of range")
    if d_model % n_heads or n_heads % n_kv_heads:
        raise ValueError("d_model % n_heads and n_heads % n_kv_heads must be 0")
    head_dim = d_model // n_heads
    q = torch.Size([n_heads, seq_len, head_dim])
    scores = torch.Size([n_heads, seq_len, seq_len])
    matmul_flops = 2 * q.numel() * seq_len  # each score is a head_dim-long dot product
    value_flops = 2 * scores.numel() * head_dim  # each output entry sums seq_len products
    cache = torch.Size([2, n_kv_heads, seq_len, head_dim]).numel() * bytes_per_value
    return {"flops": n_layers * (matmul_flops + value_flops), "kv_cache_bytes": n_layers * cache}
