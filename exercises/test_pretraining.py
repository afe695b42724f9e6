"""Example tests for `pretraining` (the hidden graders check much more: transformers' own schedule at
many settings, noisy fits, the Chinchilla optimum, needles at every depth, bad arguments)."""
import math

from exercises.pretraining import (chinchilla_loss, chinchilla_optimal, compute_optimal, fit_power_law, lr_at,
                                   needle_found, needle_prompt)


def test_lr_warmup_peak_and_floor():
    s = dict(peak_lr=1e-3, warmup_steps=10, total_steps=110, min_lr=1e-4)
    assert lr_at(0, **s) == 0.0  # the warm-up starts from 0
    assert math.isclose(lr_at(5, **s), 5e-4)  # halfway up
    assert math.isclose(lr_at(10, **s), 1e-3)  # the peak, at the end of the warm-up
    assert math.isclose(lr_at(60, **s), (1e-3 + 1e-4) / 2)  # halfway down the cosine
    assert math.isclose(lr_at(110, **s), 1e-4)  # the floor at total_steps ...
    assert math.isclose(lr_at(500, **s), 1e-4)  # ... and after it


def test_power_law_fit_on_exact_points():
    compute = [1e18, 1e19, 1e20, 1e21]
    tokens = [0.29 * c ** 0.53 for c in compute]
    A, alpha = fit_power_law(compute, tokens)
    assert math.isclose(A, 0.29, rel_tol=1e-6) and math.isclose(alpha, 0.53, rel_tol=1e-6)


def test_compute_optimal_law_gives_tokens():
    params, tokens = compute_optimal(1e24, 0.29, 0.53)
    assert math.isclose(tokens, 0.29 * 1e24 ** 0.53)  # the law predicts TOKENS
    assert math.isclose(6 * params * tokens, 1e24)  # and the budget fixes the parameters


def test_chinchilla_optimum_spends_the_budget_and_beats_its_neighbours():
    C = 5.76e23  # Gopher's budget
    N, D = chinchilla_optimal(C)
    assert math.isclose(6 * N * D, C)
    assert chinchilla_loss(N, D) < chinchilla_loss(2 * N, D / 2)
    assert chinchilla_loss(N, D) < chinchilla_loss(N / 2, 2 * D)


def test_needle_prompt_by_hand():
    # 5 filler words from "a b c" repeated; depth 0.4 -> after round(0.4 * 5) = 2 of them
    prompt = needle_prompt("a b c", "KEY IS 7", "What is the key?", n_words=5, depth=0.4)
    assert prompt == "a b KEY IS 7 c a b\n\nWhat is the key?"


def test_needle_found_ignores_case_and_whitespace():
    assert needle_found("The key is\n  SEVEN hundred.", "seven hundred")
    assert not needle_found("I do not know.", "seven")


# ---- long context (issue 19)
def test_llama3_rope_frequencies_keep_fast_and_slow_down_slow_pairs():
    import torch

    from exercises.pretraining import llama3_rope_frequencies

    plain = 10000.0 ** (-torch.arange(0, 64, 2, dtype=torch.float64) / 64)
    scaled = llama3_rope_frequencies(64, 10000.0, factor=8.0, low_freq_factor=1.0, high_freq_factor=4.0,
                                     original_max_position=256).double()
    wavelength = 2 * math.pi / plain
    fast, slow = wavelength < 256 / 4, wavelength > 256 / 1
    assert torch.allclose(scaled[fast], plain[fast], rtol=1e-6)  # short wavelengths: unchanged
    assert torch.allclose(scaled[slow], plain[slow] / 8, rtol=1e-6)  # long ones: slowed down 8 times
    middle = ~fast & ~slow
    assert ((scaled[middle] < plain[middle]) & (scaled[middle] > plain[middle] / 8)).all()  # in between


def test_attention_cost_of_llama3_8b_at_8k():
    from exercises.pretraining import attention_cost

    cost = attention_cost(8192, d_model=4096, n_layers=32, n_heads=32, n_kv_heads=8, bytes_per_value=2)
    assert cost["kv_cache_bytes"] == 2**30  # 1 GiB of bfloat16 keys and values
    assert cost["flops"] == 4 * 32 * 8192**2 * 4096
    assert attention_cost(16384, d_model=4096, n_layers=32, n_heads=32, n_kv_heads=8)["flops"] == 4 * cost["flops"]
