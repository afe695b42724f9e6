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
