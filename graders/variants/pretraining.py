"""Realistic buggy variants of ``pretraining`` (the mistakes SEMANTICS.md §7 and the issue list).

Each function replaces one name in the reference module and keeps the reference's argument checks,
so it fails only where the mistake shows. The graders name a mistake when a submission's answers
match a variant's.
"""
import math

from llmlab.grading.variants import Variants

bugs = Variants("pretraining")


# ---------------------------------------------------------------------------------------------
# lr_at
# ---------------------------------------------------------------------------------------------
def _schedule_args(step, peak_lr, warmup_steps, total_steps, min_lr):
    """The reference's argument checks, so that a variant raises where the reference does."""
    _number("step", step, minimum=0)  # noqa: F821 - the reference module's helpers
    _number("peak_lr", peak_lr, minimum=0, strict=True)  # noqa: F821
    _number("min_lr", min_lr, minimum=0, maximum=peak_lr)  # noqa: F821
    if _count("total_steps", total_steps) < _count("warmup_steps", warmup_steps):  # noqa: F821
        raise ValueError(f"total_steps ({total_steps}) must be >= warmup_steps ({warmup_steps})")


def _half_cosine(step, warmup_steps, total_steps):
    """The correct cosine factor, from 1 at warmup_steps to 0 at total_steps."""
    span = total_steps - warmup_steps
    progress = (step - warmup_steps) / span if span else 0.0
    return 0.5 * (1.0 + math.cos(math.pi * progress))


def _outside_cosine(step, peak_lr, warmup_steps, total_steps, min_lr):
    """Checks the arguments; the correct lr during the warm-up and after the end, None inside the cosine."""
    _schedule_args(step, peak_lr, warmup_steps, total_steps, min_lr)
    if step < warmup_steps:
        return peak_lr * step / warmup_steps
    return float(min_lr) if step > total_steps else None


def _reference_lr(step, peak_lr, warmup_steps, total_steps, min_lr):
    """The correct schedule (for the variants whose mistake lies in one phase only)."""
    lr = _outside_cosine(step, peak_lr, warmup_steps, total_steps, min_lr)
    return lr if lr is not None else min_lr + (peak_lr - min_lr) * _half_cosine(step, warmup_steps, total_steps)


@bugs.bug("warmup_starts_at_peak", replaces="lr_at",
          mistake="the warm-up starts at the peak: the learning rate must climb linearly from 0 at step 0 "
                  "(peak_lr * step / warmup_steps) and reach peak_lr only at step warmup_steps")
def lr_warmup_at_peak(step, *, peak_lr, warmup_steps, total_steps, min_lr=0.0):
    _schedule_args(step, peak_lr, warmup_steps, total_steps, min_lr)
    if step < warmup_steps:
        return float(peak_lr)
    return _reference_lr(step, peak_lr, warmup_steps, total_steps, min_lr)


@bugs.bug("warmup_off_by_one", replaces="lr_at",
          mistake="off by one at the warm-up boundary: the warm-up is peak_lr * step / warmup_steps (0 at step 0, "
                  "peak_lr exactly at step warmup_steps), not peak_lr * (step + 1) / warmup_steps")
def lr_warmup_off_by_one(step, *, peak_lr, warmup_steps, total_steps, min_lr=0.0):
    _schedule_args(step, peak_lr, warmup_steps, total_steps, min_lr)
    if step < warmup_steps:
        return peak_lr * (step + 1) / warmup_steps
    return _reference_lr(step, peak_lr, warmup_steps, total_steps, min_lr)


@bugs.bug("cosine_over_total_steps", replaces="lr_at",
          mistake="the cosine does not reach min_lr at total_steps: its progress must run over the steps after "
                  "the warm-up, (step - warmup_steps) / (total_steps - warmup_steps), not over total_steps")
def lr_cosine_over_total(step, *, peak_lr, warmup_steps, total_steps, min_lr=0.0):
    lr = _outside_cosine(step, peak_lr, warmup_steps, total_steps, min_lr)
    if lr is not None:
        return lr
    progress = (step - warmup_steps) / max(1, total_steps)
    return min_lr + (peak_lr - min_lr) * 0.5 * (1.0 + math.cos(math.pi * progress))


@bugs.bug("min_lr_as_clip", replaces="lr_at",
          mistake="min_lr is applied as a clip, max(min_lr, cosine decaying to 0): the cosine must be rescaled to "
                  "run from peak_lr down to min_lr, min_lr + (peak_lr - min_lr) * (1 + cos(pi * progress)) / 2")
def lr_min_as_clip(step, *, peak_lr, warmup_steps, total_steps, min_lr=0.0):
    lr = _outside_cosine(step, peak_lr, warmup_steps, total_steps, min_lr)
    return lr if lr is not None else max(min_lr, peak_lr * _half_cosine(step, warmup_steps, total_steps))


@bugs.bug("min_lr_added_on_top", replaces="lr_at",
          mistake="the cosine is added on top of min_lr without rescaling (min_lr + peak_lr * cosine): the learning "
                  "rate must be exactly peak_lr at the end of the warm-up, so use min_lr + (peak_lr - min_lr) * cosine")
def lr_min_on_top(step, *, peak_lr, warmup_steps, total_steps, min_lr=0.0):
    lr = _outside_cosine(step, peak_lr, warmup_steps, total_steps, min_lr)
    return lr if lr is not None else min_lr + peak_lr * _half_cosine(step, warmup_steps, total_steps)


@bugs.bug("rises_after_total", replaces="lr_at",
          mistake="after total_steps the learning rate follows the cosine back up (as transformers' schedule "
                  "does): this schedule must stay at min_lr after total_steps")
def lr_rises_after_total(step, *, peak_lr, warmup_steps, total_steps, min_lr=0.0):
    _schedule_args(step, peak_lr, warmup_steps, total_steps, min_lr)
    if step < warmup_steps:
        return peak_lr * step / warmup_steps
    return min_lr + (peak_lr - min_lr) * _half_cosine(step, warmup_steps, total_steps)


@bugs.bug("zero_warmup_divides_by_zero", replaces="lr_at",
          mistake="warmup_steps=0 divides by zero: with no warm-up there is nothing to divide, step 0 already gets "
                  "peak_lr (test step < warmup_steps before dividing)")
def lr_zero_warmup(step, *, peak_lr, warmup_steps, total_steps, min_lr=0.0):
    _schedule_args(step, peak_lr, warmup_steps, total_steps, min_lr)
    if step <= warmup_steps:
        return peak_lr * step / warmup_steps
    return _reference_lr(step, peak_lr, warmup_steps, total_steps, min_lr)


# ---------------------------------------------------------------------------------------------
# anneal_lr
# ---------------------------------------------------------------------------------------------
@bugs.bug("anneal_goes_negative", replaces="anneal_lr",
          mistake="the anneal does not stop at 0: after start_step + anneal_steps the learning rate must stay 0.0, "
                  "never negative")
def anneal_negative(step, *, start_step, anneal_steps, start_lr):
    if anneal_steps <= 0 or start_lr < 0 or step < 0 or start_step < 0:
        raise ValueError("bad arguments")
    if step <= start_step:
        return float(start_lr)
    return start_lr * (1.0 - (step - start_step) / anneal_steps)


@bugs.bug("anneal_ignores_start_step", replaces="anneal_lr",
          mistake="the anneal ignores start_step: its progress is (step - start_step) / anneal_steps, counted from "
                  "where the anneal begins, not from step 0")
def anneal_from_zero(step, *, start_step, anneal_steps, start_lr):
    if anneal_steps <= 0 or start_lr < 0 or step < 0 or start_step < 0:
        raise ValueError("bad arguments")
    if step <= start_step:
        return float(start_lr)
    return start_lr * max(0.0, 1.0 - step / anneal_steps)


# ---------------------------------------------------------------------------------------------
# fit_power_law
# ---------------------------------------------------------------------------------------------
def _logs(compute, tokens):
    xs = [math.log(c) for c in _positive_floats("compute", compute)]  # noqa: F821
    ys = [math.log(t) for t in _positive_floats("tokens", tokens)]  # noqa: F821
    if len(xs) != len(ys) or len(xs) < 2 or max(xs) == min(xs):
        raise ValueError("compute and tokens must have the same length >= 2, with different budgets")
    return xs, ys


def _line(xs, ys):
    xm, ym = sum(xs) / len(xs), sum(ys) / len(ys)
    slope = sum((x - xm) * (y - ym) for x, y in zip(xs, ys)) / sum((x - xm) ** 2 for x in xs)
    return ym - slope * xm, slope


@bugs.bug("fit_in_linear_space", replaces="fit_power_law",
          mistake="the power law is fitted to the raw values (least squares in linear space, e.g. curve_fit on "
                  "A * C**alpha), so the largest budgets dominate: fit a straight line to (log compute, log tokens)")
def fit_linear_space(compute, tokens):
    from scipy.optimize import minimize_scalar

    xs, ys = _logs(compute, tokens)
    C, T = [math.exp(x) for x in xs], [math.exp(y) for y in ys]
    _, start = _line(xs, ys)

    def best_A(alpha):  # for a fixed exponent the least-squares coefficient has a closed form
        return sum(t * c ** alpha for c, t in zip(C, T)) / sum(c ** (2 * alpha) for c in C)

    def sse(alpha):
        A = best_A(alpha)
        return sum((A * c ** alpha - t) ** 2 for c, t in zip(C, T)) / sum(t * t for t in T)

    res = minimize_scalar(sse, bounds=(start - 0.5, start + 0.5), method="bounded",
                          options={"xatol": 1e-13, "maxiter": 2000})
    return best_A(res.x), float(res.x)


@bugs.bug("fit_returns_alpha_A", replaces="fit_power_law",
          mistake="exponent and coefficient are swapped: return (A, alpha) for tokens = A * compute**alpha")
def fit_swapped(compute, tokens):
    intercept, slope = _line(*_logs(compute, tokens))
    return slope, math.exp(intercept)


@bugs.bug("fit_log_base_mixed", replaces="fit_power_law",
          mistake="the logarithm bases are mixed: a line fitted in log10 space has intercept log10(A), so "
                  "A = 10**intercept (with natural logs, A = exp(intercept))")
def fit_log_base(compute, tokens):
    xs, ys = _logs(compute, tokens)
    intercept, slope = _line([x / math.log(10) for x in xs], [y / math.log(10) for y in ys])
    return math.exp(intercept), slope


@bugs.bug("fit_two_points", replaces="fit_power_law",
          mistake="the exponent comes from the first and last points only, so it depends on their order: fit every "
                  "point by least squares in log-log space")
def fit_two_points(compute, tokens):
    xs, ys = _logs(compute, tokens)
    if xs[-1] == xs[0]:
        raise ValueError("the first and last budgets are equal")
    slope = (ys[-1] - ys[0]) / (xs[-1] - xs[0])
    return math.exp(ys[0] - slope * xs[0]), slope


# ---------------------------------------------------------------------------------------------
# compute_optimal
# ---------------------------------------------------------------------------------------------
@bugs.bug("tokens_as_params", replaces="compute_optimal",
          mistake="tokens are mistaken for parameters: Llama 3's law A * compute**alpha gives the optimal number of "
                  "TRAINING TOKENS, and the parameters follow as compute / (6 * tokens)")
def optimal_tokens_as_params(compute, A, alpha):
    if compute <= 0 or A <= 0:
        raise ValueError("compute and A must be > 0")
    params = A * compute ** alpha
    return params, compute / (6.0 * params)


@bugs.bug("forgot_the_six", replaces="compute_optimal",
          mistake="the factor 6 is missing: training costs about 6 FLOPs per parameter per token, so "
                  "params = compute / (6 * tokens)")
def optimal_no_six(compute, A, alpha):
    if compute <= 0 or A <= 0:
        raise ValueError("compute and A must be > 0")
    tokens = A * compute ** alpha
    return compute / tokens, tokens


# ---------------------------------------------------------------------------------------------
# chinchilla_loss / chinchilla_optimal
# ---------------------------------------------------------------------------------------------
@bugs.bug("loss_exponents_swapped", replaces="chinchilla_loss",
          mistake="the exponents sit on the wrong terms: alpha = 0.34 belongs to the parameter term A / N**alpha and "
                  "beta = 0.28 to the data term B / D**beta")
def loss_swapped(N, D):
    if N <= 0 or D <= 0:
        raise ValueError("N and D must be > 0")
    c = CHINCHILLA  # noqa: F821
    return c["E"] + c["A"] / N ** c["beta"] + c["B"] / D ** c["alpha"]


def _chinchilla_constants():
    c = CHINCHILLA  # noqa: F821
    total = c["alpha"] + c["beta"]
    G = (c["alpha"] * c["A"] / (c["beta"] * c["B"])) ** (1.0 / total)
    return c["beta"] / total, c["alpha"] / total, G


@bugs.bug("closed_form_a_b_swapped", replaces="chinchilla_optimal",
          mistake="a and b are swapped in the closed form: N grows as (C/6)**a with a = beta / (alpha + beta), and D "
                  "as (C/6)**b with b = alpha / (alpha + beta)")
def optimal_ab_swapped(compute):
    if compute <= 0:
        raise ValueError("compute must be > 0")
    a, b, G = _chinchilla_constants()
    return G * (compute / 6.0) ** b, (compute / 6.0) ** a / G


@bugs.bug("closed_form_G_inverted", replaces="chinchilla_optimal",
          mistake="G is applied the wrong way round: N = G * (C/6)**a and D = (C/6)**b / G, with "
                  "G = (alpha * A / (beta * B))**(1 / (alpha + beta))")
def optimal_G_inverted(compute):
    if compute <= 0:
        raise ValueError("compute must be > 0")
    a, b, G = _chinchilla_constants()
    return (compute / 6.0) ** a / G, G * (compute / 6.0) ** b


@bugs.bug("twenty_tokens_per_parameter", replaces="chinchilla_optimal",
          mistake="the rule of thumb of 20 tokens per parameter is not what the approach-3 law gives: minimise "
                  "chinchilla_loss on the line 6 * N * D = C (the closed form gives D/N of about 93 at Gopher's budget)")
def optimal_twenty(compute):
    if compute <= 0:
        raise ValueError("compute must be > 0")
    N = math.sqrt(compute / 120.0)
    return N, 20.0 * N


# ---------------------------------------------------------------------------------------------
# needle_prompt / needle_found
# ---------------------------------------------------------------------------------------------
def _needle_parts(filler, needle, question, n_words, depth):
    """The reference's argument checks; returns the filler's words and the needle's words."""
    if isinstance(filler, str):
        words = filler.split()
    elif isinstance(filler, (list, tuple)) and all(isinstance(s, str) for s in filler):
        words = [w for s in filler for w in s.split()]
    else:
        raise TypeError("filler must be a str or a list of str")
    if not isinstance(needle, str) or not isinstance(question, str):
        raise TypeError("needle and question must be str")
    _count("n_words", n_words)  # noqa: F821 - the reference module's helpers
    _number("depth", depth, minimum=0, maximum=1)  # noqa: F821
    if not needle.split() or (n_words > 0 and not words):
        raise ValueError("the needle and the filler need words")
    return words, needle.split()


@bugs.bug("needle_depth_from_end", replaces="needle_prompt",
          mistake="the needle is at the wrong depth: depth counts from the START of the haystack (0 = before every "
                  "filler word, 1 = just before the question), so insert it after round(depth * n_words) filler words")
def needle_from_end(filler, needle, question, *, n_words, depth):
    words, needle_words = _needle_parts(filler, needle, question, n_words, depth)
    hay = [words[i % len(words)] for i in range(n_words)]
    k = round((1 - depth) * n_words)
    return " ".join(hay[:k] + needle_words + hay[k:]) + "\n\n" + question


@bugs.bug("needle_counted_in_n_words", replaces="needle_prompt",
          mistake="the needle's words are counted in n_words: the haystack has n_words FILLER words, and the needle's "
                  "words come on top of them")
def needle_in_count(filler, needle, question, *, n_words, depth):
    words, needle_words = _needle_parts(filler, needle, question, n_words, depth)
    n = max(0, n_words - len(needle_words))
    hay = [words[i % len(words)] for i in range(n)]
    k = round(depth * n)
    return " ".join(hay[:k] + needle_words + hay[k:]) + "\n\n" + question


@bugs.bug("filler_not_repeated", replaces="needle_prompt",
          mistake="the filler is not repeated: when it has fewer than n_words words, start again from its first word "
                  "until the haystack has n_words words")
def needle_no_repeat(filler, needle, question, *, n_words, depth):
    words, needle_words = _needle_parts(filler, needle, question, n_words, depth)
    hay = words[:n_words]
    k = round(depth * len(hay))
    return " ".join(hay[:k] + needle_words + hay[k:]) + "\n\n" + question


@bugs.bug("found_case_sensitive", replaces="needle_found",
          mistake="the comparison is case-sensitive: compare after casefold() (or lower()), so 'PARIS' contains "
                  "'Paris'")
def found_case(response, answer):
    if not answer.strip():
        raise ValueError("answer must not be empty")
    return "".join(answer.split()) in "".join(response.split())


@bugs.bug("found_whitespace_sensitive", replaces="needle_found",
          mistake="whitespace is not ignored: remove every whitespace character from both strings before looking "
                  "for the answer (line breaks, tabs and double spaces must not matter)")
def found_whitespace(response, answer):
    if not answer.strip():
        raise ValueError("answer must not be empty")
    return answer.casefold() in response.casefold()


# ---------------------------------------------------------------------------------------------
# Shared helpers travel with the variants that use them (a variant's module is the reference plus
# the functions registered for it).
# ---------------------------------------------------------------------------------------------
def _attach(helper, users):
    for variant in bugs:
        if any(fn is not None and fn.__name__ in users for _, fn in variant.patches):
            variant.patches.insert(0, (helper.__name__, helper))


_LR_VARIANTS = {"lr_warmup_at_peak", "lr_warmup_off_by_one", "lr_cosine_over_total", "lr_min_as_clip",
                "lr_min_on_top", "lr_rises_after_total", "lr_zero_warmup"}
for _helper in (_schedule_args, _half_cosine, _outside_cosine, _reference_lr):
    _attach(_helper, _LR_VARIANTS)
_attach(_logs, {"fit_linear_space", "fit_swapped", "fit_log_base", "fit_two_points"})
_attach(_line, {"fit_linear_space", "fit_swapped", "fit_log_base"})
_attach(_chinchilla_constants, {"optimal_ab_swapped", "optimal_G_inverted"})
_attach(_needle_parts, {"needle_from_end", "needle_in_count", "needle_no_repeat"})
