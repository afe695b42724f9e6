"""Realistic buggy variants of ``pretraining``: each is a patch of the reference (see llmlab.grading.variants).

A patch keeps the reference's argument checks, so a variant fails only where its mistake shows.
"""
from llmlab.grading.variants import Variants

bugs = Variants("pretraining")

# --- lr_at ---------------------------------------------------------------------------------------
WARMUP = "return peak_lr * step / warmup_steps"
COSINE = "return min_lr + (peak_lr - min_lr) * 0.5 * (1.0 + math.cos(math.pi * progress))"
bugs.patch("warmup_starts_at_peak", "lr_at", WARMUP, "return peak_lr",
           mistake="the warm-up starts at the peak: the learning rate must climb linearly from 0 at step 0 "
                   "(peak_lr * step / warmup_steps) and reach peak_lr only at step warmup_steps")
bugs.patch("warmup_off_by_one", "lr_at", WARMUP, "return peak_lr * (step + 1) / warmup_steps",
           mistake="off by one at the warm-up boundary: the warm-up is peak_lr * step / warmup_steps (0 at step 0, "
                   "peak_lr exactly at step warmup_steps), not peak_lr * (step + 1) / warmup_steps")
bugs.patch("cosine_over_total_steps", "lr_at", "progress = (step - warmup_steps) / span if span > 0 else 0.0",
           "progress = (step - warmup_steps) / max(1, total_steps)",
           mistake="the cosine does not reach min_lr at total_steps: its progress must run over the steps after the "
                   "warm-up, (step - warmup_steps) / (total_steps - warmup_steps), not over total_steps")
bugs.patch("min_lr_as_clip", "lr_at", COSINE,
           "return max(min_lr, peak_lr * 0.5 * (1.0 + math.cos(math.pi * progress)))",
           mistake="min_lr is applied as a clip, max(min_lr, cosine decaying to 0): the cosine must be rescaled to "
                   "run from peak_lr down to min_lr, min_lr + (peak_lr - min_lr) * (1 + cos(pi * progress)) / 2")
bugs.patch("min_lr_added_on_top", "lr_at", COSINE,
           "return min_lr + peak_lr * 0.5 * (1.0 + math.cos(math.pi * progress))",
           mistake="the cosine is added on top of min_lr without rescaling (min_lr + peak_lr * cosine): the learning "
                   "rate must be exactly peak_lr at the end of the warm-up, so use min_lr + (peak_lr - min_lr) * "
                   "cosine")
bugs.patch("rises_after_total", "lr_at", """
    if step > total_steps:
        return min_lr
""", "", mistake="after total_steps the learning rate follows the cosine back up (as transformers' schedule does): "
                 "this schedule must stay at min_lr after total_steps")
bugs.patch("zero_warmup_divides_by_zero", "lr_at", "if step < warmup_steps:", "if step <= warmup_steps:",
           mistake="warmup_steps=0 divides by zero: with no warm-up there is nothing to divide, step 0 already gets "
                   "peak_lr (test step < warmup_steps before dividing)")

# --- anneal_lr -----------------------------------------------------------------------------------
bugs.patch("anneal_goes_negative", "anneal_lr", """
    if done >= 1.0:
        return 0.0
""", "", mistake="the anneal does not stop at 0: after start_step + anneal_steps the learning rate must stay 0.0, "
                 "never negative")
bugs.patch("anneal_ignores_start_step", "anneal_lr", "done = (step - start_step) / anneal_steps",
           "done = step / anneal_steps",
           mistake="the anneal ignores start_step: its progress is (step - start_step) / anneal_steps, counted from "
                   "where the anneal begins, not from step 0")

# --- fit_power_law -------------------------------------------------------------------------------
FIT = "return math.exp(y_mean - alpha * x_mean), alpha"
bugs.patch("fit_in_linear_space", "fit_power_law", FIT, """
from scipy.optimize import minimize_scalar
C, T = cs, ts

def best_A(a):  # for a fixed exponent the least-squares coefficient has a closed form
    return sum(t * c ** a for c, t in zip(C, T)) / sum(c ** (2 * a) for c in C)

def sse(a):
    return sum((best_A(a) * c ** a - t) ** 2 for c, t in zip(C, T)) / sum(t * t for t in T)

res = minimize_scalar(sse, bounds=(alpha - 0.5, alpha + 0.5), method="bounded",
                      options={"xatol": 1e-13, "maxiter": 2000})
return best_A(res.x), float(res.x)""",
           mistake="the power law is fitted to the raw values (least squares in linear space, e.g. curve_fit on A * "
                   "C**alpha), so the largest budgets dominate: fit a straight line to (log compute, log tokens)")
bugs.patch("fit_returns_alpha_A", "fit_power_law", FIT, "return alpha, math.exp(y_mean - alpha * x_mean)",
           mistake="exponent and coefficient are swapped: return (A, alpha) for tokens = A * compute**alpha")
bugs.patch("fit_log_base_mixed", "fit_power_law", "xs, ys = [math.log(c) for c in cs], [math.log(t) for t in ts]",
           "xs, ys = [math.log10(c) for c in cs], [math.log10(t) for t in ts]",
           mistake="the logarithm bases are mixed: a line fitted in log10 space has intercept log10(A), so A = "
                   "10**intercept (with natural logs, A = exp(intercept))")
bugs.patch("fit_two_points", "fit_power_law", "alpha = sxy / sxx", """
if xs[-1] == xs[0]:
    raise ValueError("the first and last budgets are equal")
alpha = (ys[-1] - ys[0]) / (xs[-1] - xs[0])""",
           mistake="the exponent comes from the first and last points only, so it depends on their order: fit every "
                   "point by least squares in log-log space")
bugs.patch("fit_two_points", "fit_power_law", FIT, "return math.exp(ys[0] - alpha * xs[0]), alpha")

# --- compute_optimal, chinchilla_loss, chinchilla_optimal ----------------------------------------
bugs.patch("tokens_as_params", "compute_optimal", "return compute / (6.0 * tokens), tokens",
           "return tokens, compute / (6.0 * tokens)",
           mistake="tokens are mistaken for parameters: Llama 3's law A * compute**alpha gives the optimal number of "
                   "TRAINING TOKENS, and the parameters follow as compute / (6 * tokens)")
bugs.patch("forgot_the_six", "compute_optimal", "return compute / (6.0 * tokens)", "return compute / tokens",
           mistake="the factor 6 is missing: training costs about 6 FLOPs per parameter per token, so params = "
                   "compute / (6 * tokens)")
bugs.patch("loss_exponents_swapped", "chinchilla_loss", 'c["A"] / N ** c["alpha"] + c["B"] / D ** c["beta"]',
           'c["A"] / N ** c["beta"] + c["B"] / D ** c["alpha"]',
           mistake="the exponents sit on the wrong terms: alpha = 0.34 belongs to the parameter term A / N**alpha and "
                   "beta = 0.28 to the data term B / D**beta")
CLOSED = "return G * (compute / 6.0) ** a, (compute / 6.0) ** b / G"
bugs.patch("closed_form_a_b_swapped", "chinchilla_optimal", CLOSED,
           "return G * (compute / 6.0) ** b, (compute / 6.0) ** a / G",
           mistake="a and b are swapped in the closed form: N grows as (C/6)**a with a = beta / (alpha + beta), and D "
                   "as (C/6)**b with b = alpha / (alpha + beta)")
bugs.patch("closed_form_G_inverted", "chinchilla_optimal", CLOSED,
           "return (compute / 6.0) ** a / G, G * (compute / 6.0) ** b",
           mistake="G is applied the wrong way round: N = G * (C/6)**a and D = (C/6)**b / G, with G = (alpha * A / "
                   "(beta * B))**(1 / (alpha + beta))")
bugs.patch("twenty_tokens_per_parameter", "chinchilla_optimal", CLOSED,
           "return math.sqrt(compute / 120.0), 20.0 * math.sqrt(compute / 120.0)",
           mistake="the rule of thumb of 20 tokens per parameter is not what the approach-3 law gives: minimise "
                   "chinchilla_loss on the line 6 * N * D = C (the closed form gives D/N of about 93 at Gopher's "
                   "budget)")

# --- needle_prompt, needle_found -----------------------------------------------------------------
HAYSTACK = "haystack = [words[i % len(words)] for i in range(n_words)]"
bugs.patch("needle_depth_from_end", "needle_prompt", "k = round(depth * n_words)", "k = round((1 - depth) * n_words)",
           mistake="the needle is at the wrong depth: depth counts from the START of the haystack (0 = before every "
                   "filler word, 1 = just before the question), so insert it after round(depth * n_words) filler "
                   "words")
bugs.patch("needle_counted_in_n_words", "needle_prompt", HAYSTACK,
           "n_words = max(0, n_words - len(needle_words))\n" + HAYSTACK,
           mistake="the needle's words are counted in n_words: the haystack has n_words FILLER words, and the "
                   "needle's words come on top of them")
bugs.patch("filler_not_repeated", "needle_prompt", HAYSTACK, "haystack = words[:n_words]",
           mistake="the filler is not repeated: when it has fewer than n_words words, start again from its first "
                   "word until the haystack has n_words words")
bugs.patch("filler_not_repeated", "needle_prompt", "k = round(depth * n_words)", "k = round(depth * len(haystack))")
bugs.patch("found_case_sensitive", "needle_found", 'key = "".join(answer.casefold().split())',
           'key = "".join(answer.split())',
           mistake="the comparison is case-sensitive: compare after casefold() (or lower()), so 'PARIS' contains "
                   "'Paris'")
bugs.patch("found_case_sensitive", "needle_found", "response.casefold().split()", "response.split()")
bugs.patch("found_whitespace_sensitive", "needle_found", 'return key in "".join(response.casefold().split())',
           "return answer.casefold() in response.casefold()",
           mistake="whitespace is not ignored: remove every whitespace character from both strings before looking "
                   "for the answer (line breaks, tabs and double spaces must not matter)")
