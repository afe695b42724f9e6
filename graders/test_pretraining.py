"""Hidden graders for ``pretraining`` (API.md §10): LR schedules, scaling laws, needle in a haystack.

Cross-checks, all computed here in the grader process (never in the submission's worker):

* ``lr_at``: transformers' ``get_cosine_with_min_lr_schedule_with_warmup`` on a dummy SGD optimizer
  whose ``lr`` is the peak, stepped and read after every step up to ``total_steps``; past it the
  schedule must stay at ``min_lr`` (where the library's cosine rises again).
* ``anneal_lr``: torch's ``LinearLR(start_factor=1.0, end_factor=0.0)`` stepped the same way.
* ``fit_power_law``: least squares in log-log space (the reference), invariance to the order of the
  points, and recovery of the true exponent from noisy synthetic data (a statistical check with fixed
  seeds; its false-alarm probability is stated where it is made).
* ``chinchilla_optimal``: the budget line ``6 N D = C`` and a numerical check that no nearby point of
  that line has a lower ``chinchilla_loss``.

Tolerances. Learning rates: ``|got - expected| <= 1e-6 * |expected| + 1e-7 * peak_lr`` (float32
arithmetic passes). Fits: relative 1e-6 on the exponent, 1e-5 on the coefficient (the spec asks for
float64). Closed forms (compute_optimal, chinchilla_loss): relative 1e-9; chinchilla_optimal against
the closed form: relative 1e-6 (a careful numerical minimiser passes). Needle prompts are compared
word by word (whitespace-split), and exactly in one check of the format.
"""
from __future__ import annotations

import functools
import math
import statistics
import warnings

import torch
from hypothesis import assume, example, given, settings
from hypothesis import strategies as st

from graders.strategies import randn, seeds
from llmlab.grading.checks import (CheckFailed, check, describe, diagnose, diagnosing, expect_raises, expect_tuple,
                                  known_mistake, type_name)
from llmlab.codec import Handle
from llmlab.grading.remote import RemoteObject, SubmissionError

TASK_LR = "pretraining.lr_at"
TASK_ANNEAL = "pretraining.anneal_lr"
TASK_FIT = "pretraining.fit_power_law"
TASK_OPT = "pretraining.compute_optimal"
TASK_LOSS = "pretraining.chinchilla_loss"
TASK_CHIN = "pretraining.chinchilla_optimal"
TASK_PROMPT = "pretraining.needle_prompt"
TASK_FOUND = "pretraining.needle_found"

LR_RTOL, LR_ATOL = 1e-6, 1e-7  # LR_ATOL is a fraction of the peak (or start) learning rate
FIT_RTOL_ALPHA, FIT_RTOL_A = 1e-6, 1e-5
EXACT_RTOL = 1e-9
CHIN_RTOL = 1e-6
# Each example is a few cheap calls: the cost is the round trip to the worker, paid for every submission of
# a class. Ten drawn examples per check (plus the fixed boundary cases each check adds) catch every known
# mistake and keep a topic's grading within seconds.
EXAMPLES = 10
SENSIBLE_FACTOR = 1e3  # how far from the optimum a "compute-optimal" N may be and still count as a sensible split

# Llama 3 405B (SEMANTICS.md §7.1), as the task states them.
LLAMA3 = dict(peak_lr=8e-5, warmup_steps=8_000, total_steps=1_200_000, min_lr=8e-7)


# ---------------------------------------------------------------------------------------------
# Plain numbers out of a submission
# ---------------------------------------------------------------------------------------------
def _float(value, *, what: str, inputs: dict) -> float:
    """A returned number as a float. Python int/float pass; a numpy scalar (left in the worker as a
    remote object) is converted there; a tensor or anything else fails with a plain message."""
    if type(value) in (int, float):
        return float(value)
    if isinstance(value, RemoteObject) and value.type_name.startswith(("float", "int", "uint", "longdouble")):
        converted = value.call("__float__")
        if type(converted) is float:
            return converted
    if isinstance(value, torch.Tensor):
        raise CheckFailed(f"{what} should be a Python float, got a tensor of shape {tuple(value.shape)} "
                          "(convert with float(...) or .item())", inputs=inputs)
    raise CheckFailed(f"{what} should be a float, got {type_name(value)}", inputs=inputs)


def _floats(value, n: int, *, what: str, inputs: dict) -> tuple:
    """A returned tuple of ``n`` numbers (a tuple holding numpy scalars stays in the worker: unpack it there)."""
    if isinstance(value, RemoteObject) and value.type_name in ("tuple", "list"):
        length = value.call("__len__")
        if type(length) is int and length == n:
            # RemoteObject.call answers a bare Handle for an object it cannot send: wrap it as the submission
            # proxy does for its own calls
            value = tuple(value._sub._wrap(v) if isinstance(v, Handle) else v
                          for v in (value.call("__getitem__", i) for i in range(n)))
    expect_tuple(value, n, what=what, inputs=inputs)
    return tuple(_float(v, what=f"{what}[{i}]", inputs=inputs) for i, v in enumerate(value))


def _close(got: float, expected: float, rtol: float, atol: float = 0.0) -> bool:
    return math.isclose(got, expected, rel_tol=rtol, abs_tol=atol)


def _g(x: float) -> str:
    return f"{x:.8g}"


# ---------------------------------------------------------------------------------------------
# Library references, computed here
# ---------------------------------------------------------------------------------------------
def _dummy_optimizer(lr: float) -> torch.optim.Optimizer:
    return torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=lr)


def _hf_scheduled(peak_lr: float, warmup_steps: int, total_steps: int, min_lr: float):
    """A dummy optimizer and transformers' cosine schedule with warm-up and a minimum on it."""
    from transformers import get_cosine_with_min_lr_schedule_with_warmup

    opt = _dummy_optimizer(peak_lr)
    return opt, get_cosine_with_min_lr_schedule_with_warmup(opt, warmup_steps, total_steps, min_lr=min_lr)


def _stepped_lrs(opt, sched, steps: int) -> tuple:
    """The optimizer's learning rates at steps 0..steps under the scheduler."""
    lrs = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for _ in range(steps + 1):
            lrs.append(opt.param_groups[0]["lr"])
            opt.step()
            sched.step()
    return tuple(lrs)


@functools.lru_cache(maxsize=512)
def _hf_schedule(peak_lr: float, warmup_steps: int, total_steps: int, min_lr: float) -> tuple:
    """transformers' learning rates at steps 0..total_steps, read off a dummy optimizer."""
    return _stepped_lrs(*_hf_scheduled(peak_lr, warmup_steps, total_steps, min_lr), total_steps)


def _hf_lambda_lr(step: int, peak_lr: float, warmup_steps: int, total_steps: int, min_lr: float) -> float:
    """transformers' learning rate at one (possibly huge) step: its multiplier times the optimizer's lr."""
    opt, sched = _hf_scheduled(peak_lr, warmup_steps, total_steps, min_lr)
    return opt.defaults["lr"] * sched.lr_lambdas[0](step)


@functools.lru_cache(maxsize=512)
def _torch_linear_decay(start_lr: float, anneal_steps: int) -> tuple:
    """torch's LinearLR from start_lr to 0 over anneal_steps steps: the lrs at t = 0..anneal_steps."""
    from torch.optim.lr_scheduler import LinearLR

    opt = _dummy_optimizer(start_lr)
    return _stepped_lrs(opt, LinearLR(opt, start_factor=1.0, end_factor=0.0, total_iters=anneal_steps), anneal_steps)


# ---------------------------------------------------------------------------------------------
# lr_at
# ---------------------------------------------------------------------------------------------
@st.composite
def schedules(draw, max_warmup: int = 40, max_cosine: int = 150):
    peak_lr = draw(st.sampled_from([1e-3, 3e-4, 8e-5, 1.0]) | st.floats(1e-6, 1e-1))
    warmup = draw(st.integers(0, max_warmup))
    total = warmup + draw(st.integers(0, max_cosine))
    ratio = draw(st.sampled_from([0.0, 0.1, 0.01]) | st.floats(0.0, 1.0))
    return dict(peak_lr=peak_lr, warmup_steps=warmup, total_steps=total, min_lr=peak_lr * ratio)


def _schedule_text(s: dict) -> str:
    return (f"peak_lr={s['peak_lr']:g}, warmup_steps={s['warmup_steps']}, total_steps={s['total_steps']}, "
            f"min_lr={s['min_lr']:g}")


def _lr_call(sub, step, s: dict) -> float:
    return _float(sub.call("lr_at", step, **s), what=f"lr_at({step}, {_schedule_text(s)})",
                  inputs=dict(step=step, **s))


def _compare_schedule(sub, steps: list, expected: list, s: dict, source: str) -> None:
    """The submission's lr at each step must match ``expected``; on a mismatch, name the first wrong step
    and the buggy variant (if any) whose learning rates agree with the submission's at every step."""
    atol = LR_ATOL * s["peak_lr"]
    with diagnosing(lambda m: [m.lr_at(t, **s) for t in steps]):  # names a variant that raises the same way
        got = [_lr_call(sub, step, s) for step in steps]
    for step, g, e in zip(steps, got, expected):
        if not _close(g, e, LR_RTOL, atol):
            found = diagnose(lambda m: [m.lr_at(t, **s) for t in steps], got, atol=atol, rtol=LR_RTOL)
            raise CheckFailed(f"lr_at({step}, {_schedule_text(s)}) is {_g(g)}, expected {_g(e)} ({source}); "
                              f"tolerance {LR_RTOL:g} relative + {LR_ATOL:g} x peak_lr",
                              inputs=dict(step=step, **s), diagnosis=found)


def _boundary_steps(lo: int, hi: int, extra: list) -> list:
    """Steps in [lo, hi]: both ends, their neighbours, and a few drawn ones, in order."""
    picks = {lo, lo + 1, hi - 1, hi} | {lo + (hi - lo) * f // 4 for f in (1, 2, 3)} | set(extra)
    return sorted(t for t in picks if lo <= t <= hi)


@check(TASK_LR, points=1,
       spec="warm-up, ``0 <= step < warmup_steps``: ``peak_lr * step / warmup_steps`` (0 at step 0)")
@settings(max_examples=EXAMPLES)
@given(s=schedules(), picks=st.lists(st.floats(0, 1), max_size=3))
def test_lr_warmup_climbs_linearly_from_zero(sub, s, picks):
    w = s["warmup_steps"]
    assume(w > 0)
    steps = _boundary_steps(0, w, [round(p * w) for p in picks])
    lib = _hf_schedule(s["peak_lr"], w, s["total_steps"], s["min_lr"])
    _compare_schedule(sub, steps, [lib[t] for t in steps], s,
                      "transformers' get_cosine_with_min_lr_schedule_with_warmup gives this during the warm-up")


@check(TASK_LR, points=2,
       spec=("``min_lr + (peak_lr - min_lr) * 0.5 * (1 + cos(pi * progress))``", "For ``0 <= step <= total_steps`` this is exactly transformers'"))
@settings(max_examples=EXAMPLES)
@given(s=schedules(), picks=st.lists(st.floats(0, 1), max_size=4))
def test_lr_cosine_matches_transformers_up_to_total_steps(sub, s, picks):
    w, T = s["warmup_steps"], s["total_steps"]
    steps = _boundary_steps(w, T, [w + round(p * (T - w)) for p in picks])
    lib = _hf_schedule(s["peak_lr"], w, T, s["min_lr"])
    _compare_schedule(sub, steps, [lib[t] for t in steps], s,
                      "transformers' get_cosine_with_min_lr_schedule_with_warmup gives this")


@check(TASK_LR, points=1,
       spec="after, ``step > total_steps``: ``min_lr``.")
@settings(max_examples=EXAMPLES)
@given(s=schedules(), after=st.lists(st.integers(1, 400), min_size=1, max_size=4))
def test_lr_stays_at_min_lr_after_total_steps(sub, s, after):
    T = s["total_steps"]
    steps = sorted({T + a for a in after} | {T + 1})
    _compare_schedule(sub, steps, [s["min_lr"]] * len(steps), s,
                      "after total_steps the schedule stays at min_lr, where transformers' cosine rises again")


@check(TASK_LR, points=1,
       spec=("(0 when the two are equal)", "0: no warm-up, step 0 already has ``peak_lr``"))
def test_lr_edge_cases_no_warmup_no_cosine_flat(sub):
    cases = [
        (dict(peak_lr=1e-3, warmup_steps=0, total_steps=10, min_lr=1e-4), "no warm-up: step 0 already has peak_lr"),
        (dict(peak_lr=1e-3, warmup_steps=0, total_steps=0, min_lr=0.0), "no warm-up and no cosine"),
        (dict(peak_lr=2e-4, warmup_steps=6, total_steps=6, min_lr=2e-5), "warm-up only: total_steps == warmup_steps"),
        (dict(peak_lr=5e-4, warmup_steps=4, total_steps=12, min_lr=5e-4), "min_lr == peak_lr: flat after warm-up"),
    ]
    for s, label in cases:
        T = s["total_steps"]
        steps = list(range(T + 3))
        lib = _hf_schedule(s["peak_lr"], s["warmup_steps"], T, s["min_lr"])
        expected = [lib[t] if t <= T else s["min_lr"] for t in steps]
        try:
            _compare_schedule(sub, steps, expected, s, f"{label}; transformers' schedule up to total_steps, then "
                              "min_lr")
        except SubmissionError as err:
            if err.kind == "raised" and err.exc_type == "ZeroDivisionError":
                raise CheckFailed(f"lr_at raised {err.message} ({label})", inputs=s,
                                  diagnosis=[known_mistake("zero_warmup_divides_by_zero")]) from None
            raise


@check(TASK_LR, points=1,
       spec="Llama 3 405B: ``lr_at(step, peak_lr=8e-5, warmup_steps=8_000, total_steps=1_200_000, min_lr=8e-7)``")
def test_lr_llama3_405b_recipe(sub):
    s = LLAMA3
    steps = [0, 1, 4_000, 7_999, 8_000, 8_001, 100_000, 604_000, 1_000_000, 1_199_999, 1_200_000, 1_200_001,
             1_500_000, 2_000_000]
    expected = [_hf_lambda_lr(t, **s) if t <= s["total_steps"] else s["min_lr"] for t in steps]
    _compare_schedule(sub, steps, expected, s, "Llama 3 405B: peak 8e-5, 8,000 warm-up steps, cosine to 8e-7 at "
                      "step 1,200,000 as transformers' schedule computes it, min_lr after")


@check(TASK_LR, points=1,
       spec=("if ``step < 0``, ``peak_lr <= 0``, ``warmup_steps < 0``, ``total_steps < warmup_steps``, or ``min_lr`` is outside ``[0, peak_lr]``"))
def test_lr_rejects_bad_arguments(sub):
    good = dict(peak_lr=1e-3, warmup_steps=10, total_steps=100, min_lr=1e-4)
    # valid arguments first: only a function that works earns this point (its values have their own checks)
    _float(sub.call("lr_at", 40, **good), what="lr_at(40, ...)", inputs=dict(step=40, **good))
    for step, change, label in [(-1, {}, "a negative step"),
                                (3, dict(peak_lr=0.0), "peak_lr=0"),
                                (3, dict(warmup_steps=-5), "a negative warmup_steps"),
                                (3, dict(total_steps=5), "total_steps (5) < warmup_steps (10)"),
                                (3, dict(min_lr=2e-3), "min_lr > peak_lr"),
                                (3, dict(min_lr=-1e-4), "a negative min_lr")]:
        args = dict(good, **change)
        expect_raises(lambda: sub.call("lr_at", step, **args), "ValueError", what=f"lr_at with {label}",
                      inputs=dict(step=step, **args))


# ---------------------------------------------------------------------------------------------
# anneal_lr
# ---------------------------------------------------------------------------------------------
def _anneal_text(a: dict) -> str:
    return f"start_step={a['start_step']:g}, anneal_steps={a['anneal_steps']:g}, start_lr={a['start_lr']:g}"


def _compare_anneal(sub, steps: list, expected: list, a: dict, source: str) -> None:
    atol = LR_ATOL * a["start_lr"]
    got = [_float(sub.call("anneal_lr", t, **a), what=f"anneal_lr({t:g}, {_anneal_text(a)})",
                  inputs=dict(step=t, **a)) for t in steps]
    for t, g, e in zip(steps, got, expected):
        if not _close(g, e, LR_RTOL, atol):
            found = diagnose(lambda m: [m.anneal_lr(x, **a) for x in steps], got, atol=atol, rtol=LR_RTOL)
            if not found and g < 0:
                found = [known_mistake("anneal_goes_negative")]
            raise CheckFailed(f"anneal_lr({t:g}, {_anneal_text(a)}) is {_g(g)}, expected {_g(e)} ({source}); "
                              f"tolerance {LR_RTOL:g} relative + {LR_ATOL:g} x start_lr",
                              inputs=dict(step=t, **a), diagnosis=found)


@st.composite
def anneals(draw):
    return dict(start_step=draw(st.integers(0, 500)), anneal_steps=draw(st.integers(1, 120)),
                start_lr=draw(st.sampled_from([8e-7, 1e-3, 1.0]) | st.floats(1e-7, 1e-2)))


@check(TASK_ANNEAL, points=2,
       spec="``start_lr * (1 - (step - start_step) / anneal_steps)`` in between")
@settings(max_examples=EXAMPLES)
@given(a=anneals(), picks=st.lists(st.floats(0, 1), max_size=3))
def test_anneal_is_linear_to_zero_like_torch_linearlr(sub, a, picks):
    s0, n = a["start_step"], a["anneal_steps"]
    steps = _boundary_steps(s0, s0 + n, [s0 + round(p * n) for p in picks])
    lib = _torch_linear_decay(a["start_lr"], n)
    _compare_anneal(sub, steps, [lib[t - s0] for t in steps], a,
                    "torch's LinearLR(start_factor=1.0, end_factor=0.0) counted from start_step gives this")


@check(TASK_ANNEAL, points=1,
       spec="``start_lr`` before ``start_step`` (the anneal has not begun) and ``0.0`` after the end (never negative)")
@settings(max_examples=EXAMPLES)
@given(a=anneals(), before=st.integers(1, 500), after=st.integers(1, 500))
def test_anneal_holds_before_and_stays_zero_after(sub, a, before, after):
    s0, n = a["start_step"], a["anneal_steps"]
    steps = sorted({max(0, s0 - before), s0 + n + 1, s0 + n + after})
    expected = [a["start_lr"] if t <= s0 else 0.0 for t in steps]
    _compare_anneal(sub, steps, expected, a, "start_lr before start_step, 0.0 after start_step + anneal_steps")


@check(TASK_ANNEAL, points=1,
       spec="The unit is free: optimizer steps, or tokens seen")
def test_anneal_in_tokens_llama3_final_40m(sub, ref):
    total, anneal = 15.6e12, 40e6  # the unit is tokens: Llama 3 anneals over its final 40M tokens
    a = dict(start_step=total - anneal, anneal_steps=anneal, start_lr=8e-7)
    steps = [0.0, total - anneal, total - 0.75 * anneal, total - 0.5 * anneal, total - 0.25 * anneal, total,
             total + 1e9]
    _compare_anneal(sub, steps, [ref.anneal_lr(t, **a) for t in steps], a,
                    "a linear anneal over the final 40M of 15.6T tokens, starting at 8e-7 (float step counts)")


@check(TASK_ANNEAL, points=1,
       spec=("if ``step`` or ``start_step`` is negative, ``anneal_steps <= 0`` or ``start_lr < 0``"))
def test_anneal_rejects_bad_arguments(sub):
    good = dict(start_step=100, anneal_steps=50, start_lr=1e-4)
    # valid arguments first: only a function that works earns this point (its values have their own checks)
    _float(sub.call("anneal_lr", 120, **good), what="anneal_lr(120, ...)", inputs=dict(step=120, **good))
    for step, change, label in [(120, dict(anneal_steps=0), "anneal_steps=0"),
                                (120, dict(anneal_steps=-10), "a negative anneal_steps"),
                                (120, dict(start_lr=-1e-4), "a negative start_lr"),
                                (-1, {}, "a negative step")]:
        args = dict(good, **change)
        expect_raises(lambda: sub.call("anneal_lr", step, **args), "ValueError", what=f"anneal_lr with {label}",
                      inputs=dict(step=step, **args))


# ---------------------------------------------------------------------------------------------
# fit_power_law
# ---------------------------------------------------------------------------------------------
Z_1E6 = statistics.NormalDist().inv_cdf(1 - 0.5e-6)  # two-sided: P(|N(0,1)| > Z) = 1e-6


@st.composite
def power_laws(draw, noise: bool):
    """Budgets log-spaced over 1e17..1e24 FLOPs (as in scaling-law studies) and tokens = A * C**alpha,
    times lognormal noise of a drawn sigma when ``noise``."""
    n = draw(st.integers(3, 12) if noise else st.integers(2, 8))
    lo = draw(st.floats(17.0, 20.0))
    span = draw(st.floats(1.0, 4.0))
    A = draw(st.floats(0.01, 10.0))
    alpha = draw(st.floats(0.2, 0.9))
    xs = [(lo + span * i / (n - 1)) * math.log(10) for i in range(n)]
    sigma = draw(st.floats(0.02, 0.5)) if noise else 0.0
    eps = randn(draw(seeds), n, dtype=torch.float64).tolist() if noise else [0.0] * n
    ys = [math.log(A) + alpha * x + sigma * e for x, e in zip(xs, eps)]
    return dict(compute=[math.exp(x) for x in xs], tokens=[math.exp(y) for y in ys], A=A, alpha=alpha,
                sigma=sigma)


def _fit_call(sub, compute, tokens):
    inputs = dict(compute=compute, tokens=tokens)
    return _floats(sub.call("fit_power_law", compute, tokens), 2, what="the return value (A, alpha)",
                   inputs=inputs), inputs


def _expect_fit(got, want, inputs, what, diagnose_with):
    (A, alpha), (wA, walpha) = got, want
    if _close(alpha, walpha, FIT_RTOL_ALPHA) and _close(A, wA, FIT_RTOL_A):
        return
    found = diagnose(diagnose_with, [A, alpha], atol=0.0, rtol=1e-4)
    raise CheckFailed(f"{what}: got (A, alpha) = ({_g(A)}, {_g(alpha)}), expected ({_g(wA)}, {_g(walpha)}) "
                      f"(tolerance: relative {FIT_RTOL_A:g} on A, {FIT_RTOL_ALPHA:g} on alpha)",
                      inputs=inputs, diagnosis=found)


@check(TASK_FIT, points=1,
       spec="Fit ``tokens = A * compute**alpha`` by least squares in log-log space.")
@settings(max_examples=EXAMPLES)
@given(law=power_laws(noise=False))
def test_fit_recovers_an_exact_power_law(sub, law):
    got, inputs = _fit_call(sub, law["compute"], law["tokens"])
    _expect_fit(got, (law["A"], law["alpha"]), inputs, f"points exactly on tokens = {law['A']:.6g} * compute**"
                f"{law['alpha']:.6g}", lambda m: list(m.fit_power_law(law["compute"], law["tokens"])))


@check(TASK_FIT, points=2,
       spec="the ordinary least-squares line through the points ``(log compute_i, log tokens_i)`` (natural logs, float64)")
@settings(max_examples=EXAMPLES)
@given(law=power_laws(noise=True))
def test_fit_is_least_squares_in_log_log_space(sub, ref, law):
    got, inputs = _fit_call(sub, law["compute"], law["tokens"])
    _expect_fit(got, ref.fit_power_law(law["compute"], law["tokens"]), inputs,
                "the least-squares line through (log compute, log tokens) of noisy points",
                lambda m: list(m.fit_power_law(law["compute"], law["tokens"])))


@check(TASK_FIT, points=1,
       spec="Fit ``tokens = A * compute**alpha`` by least squares in log-log space.")
@settings(max_examples=EXAMPLES)
@given(law=power_laws(noise=True))
def test_fit_recovers_known_exponent_from_noisy_data(sub, law):
    """Statistics: with Gaussian noise of sd sigma on log(tokens), the least-squares slope is normal with
    sd sigma / sqrt(Sxx) and the intercept normal with sd sigma * sqrt(1/n + mean(x)**2 / Sxx). Both must
    lie within Z_1E6 sd of the truth: a correct fit fails with probability <= 2e-6 per example (<= 2e-5 for
    the 10 examples of a run, and the seeds are fixed, so the verdict is deterministic)."""
    (A, alpha), inputs = _fit_call(sub, law["compute"], law["tokens"])
    xs = [math.log(c) for c in law["compute"]]
    n, mean = len(xs), sum(xs) / len(xs)
    sxx = sum((x - mean) ** 2 for x in xs)
    sd_alpha = law["sigma"] / math.sqrt(sxx)
    sd_log_A = law["sigma"] * math.sqrt(1 / n + mean ** 2 / sxx)
    bad_alpha = not abs(alpha - law["alpha"]) <= Z_1E6 * sd_alpha
    bad_A = not (A > 0 and abs(math.log(A) - math.log(law["A"])) <= Z_1E6 * sd_log_A)
    if bad_alpha or bad_A:
        found = diagnose(lambda m: list(m.fit_power_law(law["compute"], law["tokens"])), [A, alpha], atol=0.0,
                         rtol=1e-4)
        raise CheckFailed(f"the data were drawn from tokens = {law['A']:.6g} * compute**{law['alpha']:.6g} with "
                          f"noise of sd {law['sigma']:.3g} on log(tokens); your fit (A, alpha) = ({_g(A)}, {_g(alpha)}) "
                          f"is further from the truth than a least-squares fit can be (alpha within +-"
                          f"{Z_1E6 * sd_alpha:.3g}, log A within +-{Z_1E6 * sd_log_A:.3g}, except with probability "
                          "2e-6)", inputs=inputs, diagnosis=found)


@check(TASK_FIT, points=1,
       spec="the result does not depend on the order of the points")
@settings(max_examples=EXAMPLES)
@given(law=power_laws(noise=True), seed=seeds)
def test_fit_does_not_depend_on_the_order_of_points(sub, ref, law, seed):
    order = torch.randperm(len(law["compute"]), generator=torch.Generator().manual_seed(seed)).tolist()
    assume(order != sorted(order))
    compute, tokens = [law["compute"][i] for i in order], [law["tokens"][i] for i in order]
    first, first_inputs = _fit_call(sub, law["compute"], law["tokens"])
    # only a working fit earns this point (a constant answer does not depend on the order either)
    _expect_fit(first, ref.fit_power_law(law["compute"], law["tokens"]), first_inputs,
                "the least-squares line through (log compute, log tokens) of noisy points",
                lambda m: list(m.fit_power_law(law["compute"], law["tokens"])))
    second, inputs = _fit_call(sub, compute, tokens)
    if _close(first[0], second[0], 1e-9) and _close(first[1], second[1], 1e-9):
        return
    found = diagnose(lambda m: list(m.fit_power_law(compute, tokens)), list(second), atol=0.0, rtol=1e-6)
    raise CheckFailed(f"the same points in another order give another fit: (A, alpha) = ({_g(first[0])}, "
                      f"{_g(first[1])}) in the original order, ({_g(second[0])}, {_g(second[1])}) in this one",
                      inputs=dict(inputs, original_compute=law["compute"], original_tokens=law["tokens"]),
                      diagnosis=found or [known_mistake("fit_two_points")])


@check(TASK_FIT, points=1,
       spec="1-D sequence (list, tuple, numpy array or tensor)")
@settings(max_examples=EXAMPLES)
@given(law=power_laws(noise=True))
def test_fit_accepts_tensors(sub, ref, law):
    compute = torch.tensor(law["compute"], dtype=torch.float64)
    tokens = torch.tensor(law["tokens"], dtype=torch.float64)
    inputs = dict(compute=compute, tokens=tokens)
    got = _floats(sub.call("fit_power_law", compute, tokens), 2, what="the return value (A, alpha) for float64 "
                  "tensors", inputs=inputs)
    _expect_fit(got, ref.fit_power_law(law["compute"], law["tokens"]), inputs, "with 1-D float64 tensors as input",
                lambda m: list(m.fit_power_law(compute, tokens)))


@check(TASK_FIT, points=1,
       spec=("if the lengths differ, there are fewer than 2 points, a value is not finite or not positive, or all budgets are equal"))
def test_fit_rejects_bad_input(sub):
    cases = [([1e18, 1e19, 1e20], [1e9, 1e10], "compute and tokens of different lengths"),
             ([1e18], [1e9], "a single point"),
             ([1e18, -1e19, 1e20], [1e9, 1e10, 1e11], "a negative budget"),
             ([1e18, 1e19, 1e20], [1e9, 0.0, 1e11], "zero tokens"),
             ([1e19, 1e19, 1e19], [1e9, 2e9, 3e9], "all budgets equal (no slope to fit)")]
    # valid arguments first: only a function that works earns this point (its values have their own checks)
    _fit_call(sub, [1e18, 1e20], [1e9, 1e10])
    for compute, tokens, label in cases:
        expect_raises(lambda: sub.call("fit_power_law", compute, tokens), "ValueError",
                      what=f"fit_power_law with {label}", inputs=dict(compute=compute, tokens=tokens))


# ---------------------------------------------------------------------------------------------
# compute_optimal
# ---------------------------------------------------------------------------------------------
def _expect_pair(got, want, *, what, names, rtol, inputs, diagnose_with):
    for g, w, name in zip(got, want, names):
        if not _close(g, w, rtol):
            found = diagnose(diagnose_with, list(got), atol=0.0, rtol=max(rtol, 1e-9))
            raise CheckFailed(f"{what}: {name} is {_g(g)}, expected {_g(w)} (relative tolerance {rtol:g}); "
                              f"you returned ({_g(got[0])}, {_g(got[1])})", inputs=inputs, diagnosis=found)


@check(TASK_OPT, points=2,
       spec=("``tokens = A * compute**alpha`` (the law gives TOKENS, not parameters)", "``params = compute / (6 * tokens)``"))
@settings(max_examples=EXAMPLES)
@given(exponent=st.floats(18.0, 27.0), A=st.floats(0.05, 5.0), alpha=st.floats(0.3, 0.7))
def test_compute_optimal_splits_the_budget(sub, ref, exponent, A, alpha):
    compute = 10.0 ** exponent
    inputs = dict(compute=compute, A=A, alpha=alpha)
    got = _floats(sub.call("compute_optimal", compute, A, alpha), 2, what="the return value (params, tokens)",
                  inputs=inputs)
    diag = lambda m: list(m.compute_optimal(compute, A, alpha))  # noqa: E731
    _expect_pair(got, ref.compute_optimal(compute, A, alpha), what=f"compute_optimal({compute:.4g}, A={A:.4g}, "
                 f"alpha={alpha:.4g})", names=("params", "tokens"), rtol=EXACT_RTOL, inputs=inputs,
                 diagnose_with=diag)
    params, tokens = got
    if not _close(6 * params * tokens, compute, EXACT_RTOL):
        raise CheckFailed(f"6 * params * tokens = {6 * params * tokens:.6g} is not the budget {compute:.6g}",
                          inputs=inputs, diagnosis=diagnose(diag, list(got), atol=0.0, rtol=1e-9))


@check(TASK_OPT, points=1,
       spec="With ``(A, alpha) = (0.29, 0.53)`` and 3.8e25 FLOPs this gives about 10.5T tokens")
def test_compute_optimal_llama3_budget(sub, ref):
    for A, alpha in ((0.29, 0.53), (0.299, 0.537)):
        inputs = dict(compute=3.8e25, A=A, alpha=alpha)
        got = _floats(sub.call("compute_optimal", 3.8e25, A, alpha), 2, what="the return value (params, tokens)",
                      inputs=inputs)
        want = ref.compute_optimal(3.8e25, A, alpha)
        _expect_pair(got, want, what=f"Llama 3's law with (A, alpha) = ({A}, {alpha}) at 3.8e25 FLOPs should give "
                     f"about {want[1] / 1e12:.3g}T tokens and {want[0] / 1e9:.3g}B parameters",
                     names=("params", "tokens"), rtol=EXACT_RTOL, inputs=inputs,
                     diagnose_with=lambda m: list(m.compute_optimal(3.8e25, A, alpha)))


@check(TASK_OPT, points=1,
       spec=("if ``compute <= 0`` or ``A <= 0``"))
def test_compute_optimal_rejects_bad_input(sub, ref):
    inputs = dict(compute=1e20, A=0.29, alpha=0.53)
    # valid arguments first: only a function that works earns this point (its values have their own checks)
    _floats(sub.call("compute_optimal", 1e20, 0.29, 0.53), 2, what="compute_optimal(1e20, 0.29, 0.53)",
            inputs=inputs)
    for args, label in (((0.0, 0.29, 0.53), "compute=0"), ((-1e20, 0.29, 0.53), "a negative compute"),
                        ((1e20, 0.0, 0.53), "A=0")):
        expect_raises(lambda: sub.call("compute_optimal", *args), "ValueError", what=f"compute_optimal with {label}",
                      inputs=dict(compute=args[0], A=args[1], alpha=args[2]))


# ---------------------------------------------------------------------------------------------
# chinchilla_loss
# ---------------------------------------------------------------------------------------------
def _loss_call(sub, N, D) -> float:
    return _float(sub.call("chinchilla_loss", N, D), what=f"chinchilla_loss({N:.4g}, {D:.4g})", inputs=dict(N=N, D=D))


def _expect_loss(sub, ref, N, D, label=""):
    got, want = _loss_call(sub, N, D), ref.chinchilla_loss(N, D)
    if not _close(got, want, EXACT_RTOL):
        found = diagnose(lambda m: m.chinchilla_loss(N, D), got, atol=0.0, rtol=1e-9)
        raise CheckFailed(f"chinchilla_loss({N:.4g}, {D:.4g}){label} is {_g(got)}, expected {_g(want)} "
                          f"(relative tolerance {EXACT_RTOL:g})", inputs=dict(N=N, D=D), diagnosis=found)


@check(TASK_LOSS, points=1,
       spec="``L(N, D) = E + A / N**alpha + B / D**beta`` with the constants of ``CHINCHILLA``")
@settings(max_examples=EXAMPLES)
@given(logN=st.floats(6.0, 13.0), logD=st.floats(8.0, 14.0))
def test_chinchilla_loss_matches_the_fitted_law(sub, ref, logN, logD):
    _expect_loss(sub, ref, 10.0 ** logN, 10.0 ** logD)


@check(TASK_LOSS, points=1,
       spec="Chinchilla itself (70B parameters, 1.4T tokens) is about 1.937, Gopher (280B, 300B) about 1.993")
def test_chinchilla_loss_of_chinchilla_and_gopher(sub, ref):
    _expect_loss(sub, ref, 70e9, 1.4e12, " (Chinchilla: 70B parameters, 1.4T tokens)")
    _expect_loss(sub, ref, 280e9, 300e9, " (Gopher: 280B parameters, 300B tokens)")


@check(TASK_LOSS, points=1,
       spec=("if ``N <= 0`` or ``D <= 0``"))
def test_chinchilla_loss_rejects_bad_input(sub, ref):
    # valid arguments first: only a function that works earns this point (its values have their own checks)
    _loss_call(sub, 1e9, 1e10)
    for N, D in ((0.0, 1e9), (1e9, -1.0)):
        expect_raises(lambda: sub.call("chinchilla_loss", N, D), "ValueError", what=f"chinchilla_loss({N}, {D})",
                      inputs=dict(N=N, D=D))


# ---------------------------------------------------------------------------------------------
# chinchilla_optimal
# ---------------------------------------------------------------------------------------------
budgets = st.floats(18.0, 27.0).map(lambda e: 10.0 ** e)


def on_budgets(test):
    """The examples of a chinchilla_optimal check: ``EXAMPLES`` drawn budgets, Chinchilla's own among them."""
    return settings(max_examples=EXAMPLES)(given(compute=budgets)(example(compute=5.76e23)(test)))


def _chin_call(sub, compute):
    inputs = dict(compute=compute)
    return _floats(sub.call("chinchilla_optimal", compute), 2, what="the return value (N, D)", inputs=inputs), inputs


@check(TASK_CHIN, points=1,
       spec="two floats with ``6 * N * D == compute`` (up to rounding)")
@on_budgets
def test_chinchilla_optimal_spends_exactly_the_budget(sub, ref, compute):
    (N, D), inputs = _chin_call(sub, compute)
    if not (N > 0 and D > 0 and _close(6 * N * D, compute, EXACT_RTOL)):
        found = diagnose(lambda m: list(m.chinchilla_optimal(compute)), [N, D], atol=0.0, rtol=1e-9)
        raise CheckFailed(f"chinchilla_optimal({compute:.4g}) = ({_g(N)}, {_g(D)}) is not on the budget line: "
                          f"6 * N * D = {6 * N * D:.6g}, expected {compute:.6g} (relative tolerance {EXACT_RTOL:g})",
                          inputs=inputs, diagnosis=found)
    # Any split spends the budget (N = C / 6, D = 1 too): only a sensible one earns this point. The bound is
    # loose on purpose (a power-law split with slightly wrong exponents stays within it up to 1e27 FLOPs).
    N_opt, _ = ref.chinchilla_optimal(compute)
    if not SENSIBLE_FACTOR ** -1 <= N / N_opt <= SENSIBLE_FACTOR:
        found = diagnose(lambda m: list(m.chinchilla_optimal(compute)), [N, D], atol=0.0, rtol=1e-9)
        raise CheckFailed(f"chinchilla_optimal({compute:.4g}) = ({_g(N)}, {_g(D)}) spends the budget, but N is more "
                          f"than {SENSIBLE_FACTOR:g} times away from the loss-minimising model size: not a "
                          "compute-optimal split", inputs=inputs, diagnosis=found)


@check(TASK_CHIN, points=2,
       spec="The ``(N, D)`` that minimise ``chinchilla_loss`` under the budget ``6 * N * D = compute``.")
@on_budgets
def test_chinchilla_optimal_minimises_the_loss_on_the_budget_line(sub, ref, compute):
    """Numerically: moving along the line 6 N D = C (N * k, D / k) never lowers chinchilla_loss."""
    (N, D), inputs = _chin_call(sub, compute)
    if not (N > 0 and D > 0):
        raise CheckFailed(f"chinchilla_optimal({compute:.4g}) = ({_g(N)}, {_g(D)}): both must be positive",
                          inputs=inputs)
    # An answer a little off the line is judged (here) by its projection onto the line: being off the line
    # is the other check's business.
    scale = math.sqrt(compute / (6 * N * D))
    Nl, Dl = N * scale, D * scale
    base = ref.chinchilla_loss(Nl, Dl)
    for k in (0.1, 0.5, 0.9, 0.99, 0.999, 1.001, 1.01, 1.1, 2.0, 10.0):
        other = ref.chinchilla_loss(Nl * k, Dl / k)
        if other < base - 1e-12:
            found = diagnose(lambda m: list(m.chinchilla_optimal(compute)), [N, D], atol=0.0, rtol=1e-6)
            raise CheckFailed(f"chinchilla_optimal({compute:.4g}) = ({_g(N)}, {_g(D)}) is not the minimum on the "
                              f"budget line: N = {_g(Nl * k)}, D = {_g(Dl / k)} spends the same compute and reaches "
                              f"a lower loss ({other:.9f} < {base:.9f})", inputs=inputs, diagnosis=found)


@check(TASK_CHIN, points=1,
       spec="``N = G * (compute / 6) ** a`` and ``D = (compute / 6) ** b / G``")
@on_budgets
def test_chinchilla_optimal_matches_the_closed_form(sub, ref, compute):
    (N, D), inputs = _chin_call(sub, compute)
    _expect_pair((N, D), ref.chinchilla_optimal(compute), what=f"chinchilla_optimal({compute:.4g})",
                 names=("N", "D"), rtol=CHIN_RTOL, inputs=inputs,
                 diagnose_with=lambda m: list(m.chinchilla_optimal(compute)))


@check(TASK_CHIN, points=1,
       spec="if ``compute <= 0``")
def test_chinchilla_optimal_rejects_bad_input(sub, ref):
    # valid arguments first: only a function that works earns this point (its values have their own checks)
    _chin_call(sub, 1e20)
    for compute in (0.0, -5.76e23):
        expect_raises(lambda: sub.call("chinchilla_optimal", compute), "ValueError",
                      what=f"chinchilla_optimal({compute})", inputs=dict(compute=compute))


# ---------------------------------------------------------------------------------------------
# needle_prompt
# ---------------------------------------------------------------------------------------------
FILLER_WORDS = ["the", "grass", "is", "green", "and", "river", "runs", "past", "an", "old", "mill", "we", "walked",
                "home.", "slowly,"]
NEEDLE_WORDS = ["MAGIC", "NUMBER", "IS", "4812.", "PELICAN", "KEY-7"]  # never in the filler: easy to find
QUESTIONS = ["What is the magic number?", "Which bird was mentioned?", "Answer: what is the key?"]


@st.composite
def needle_cases(draw, max_words: int = 40, kind: str | None = None):
    words = draw(st.lists(st.sampled_from(FILLER_WORDS), min_size=1, max_size=12))
    kind = kind or draw(st.sampled_from(["text", "sentences"]))
    if kind == "text":
        seps = draw(st.lists(st.sampled_from([" ", " ", "  ", "\n", "\t", " \n "]), min_size=len(words),
                             max_size=len(words)))
        filler = "".join(w + s for w, s in zip(words, seps))
        if draw(st.booleans()):
            filler = "\n " + filler
    else:
        cuts = sorted(set(draw(st.lists(st.integers(1, len(words)), max_size=4))) | {len(words)})
        filler, start = [], 0
        for cut in cuts:
            filler.append(" ".join(words[start:cut]))
            start = cut
    needle = " ".join(draw(st.lists(st.sampled_from(NEEDLE_WORDS), min_size=1, max_size=4)))
    question = draw(st.sampled_from(QUESTIONS))
    n_words = draw(st.integers(0, max_words))
    depth = draw(st.sampled_from([0.0, 0.25, 0.5, 0.75, 1.0]) | st.floats(0.0, 1.0))
    frac = depth * n_words - math.floor(depth * n_words)
    assume(abs(frac - 0.5) > 1e-9)  # no exact .5: any rounding of a tie would then be defensible
    return dict(filler=filler, needle=needle, question=question, n_words=n_words, depth=depth), words


def _expected_haystack(case, words):
    """The filler words repeated to n_words, and after how many of them the needle goes."""
    return [words[i % len(words)] for i in range(case["n_words"])], round(case["depth"] * case["n_words"])


def _needle_starts(body, needle):
    """Where the needle's words start, each time they appear together and in order."""
    return [i for i in range(len(body) - len(needle) + 1) if body[i:i + len(needle)] == needle]


def _prompt_words(sub, case):
    """The submission's prompt split into words, with the trailing question removed."""
    args = (case["filler"], case["needle"], case["question"])
    kw = dict(n_words=case["n_words"], depth=case["depth"])
    prompt = sub.call("needle_prompt", *args, **kw)
    if not isinstance(prompt, str):
        raise CheckFailed(f"needle_prompt should return a str, got {type_name(prompt)}", inputs=case)
    words, q = prompt.split(), case["question"].split()
    if words[len(words) - len(q):] != q:
        raise CheckFailed(f"the prompt must end with the question {case['question']!r}; it ends with "
                          f"{' '.join(words[-len(q):])!r}", inputs=case)
    return words[:len(words) - len(q)]


def _diagnose_prompt(case, body):
    """Variants whose prompt has the same words before the question as the submission's."""
    n_q = len(case["question"].split())

    def words_before_question(m):
        words = m.needle_prompt(case["filler"], case["needle"], case["question"], n_words=case["n_words"],
                                depth=case["depth"]).split()
        return words[:len(words) - n_q]

    return diagnose(words_before_question, body)


@check(TASK_PROMPT, points=1,
       spec="so it has ``n_words + len(needle.split())`` words before the question")
@settings(max_examples=EXAMPLES)
@given(data=needle_cases())
def test_needle_prompt_has_the_requested_length(sub, data):
    case, words = data
    body = _prompt_words(sub, case)
    m = len(case["needle"].split())
    if len(body) != case["n_words"] + m:
        raise CheckFailed(f"the haystack has {len(body)} words before the question, expected n_words + the "
                          f"needle's {m} words = {case['n_words'] + m}", inputs=case,
                          diagnosis=_diagnose_prompt(case, body))
    # the right count of arbitrary words does not earn this point: they must be the filler's and the needle's
    hay, _ = _expected_haystack(case, words)
    if sorted(body) != sorted(hay + case["needle"].split()):
        raise CheckFailed("the words before the question should be the first n_words words of the repeated filler "
                          "plus the needle's words; other words are there", inputs=case,
                          diagnosis=_diagnose_prompt(case, body))


@check(TASK_PROMPT, points=2,
       spec="The needle's words go in after the first ``k = round(depth * n_words)`` of them (Python's ``round``)")
@settings(max_examples=EXAMPLES)
@given(data=needle_cases())
def test_needle_prompt_puts_the_needle_at_the_requested_depth(sub, data):
    case, words = data
    body = _prompt_words(sub, case)
    _, k = _expected_haystack(case, words)
    needle = case["needle"].split()
    starts = _needle_starts(body, needle)
    if not starts:
        raise CheckFailed(f"the needle's words {needle} do not appear together, in order, in the prompt",
                          inputs=case, diagnosis=_diagnose_prompt(case, body))
    if starts[0] != k:
        raise CheckFailed(f"the needle comes after {starts[0]} filler words, expected after round(depth * n_words) = "
                          f"round({case['depth']:.6g} * {case['n_words']}) = {k}", inputs=case,
                          diagnosis=_diagnose_prompt(case, body))


@check(TASK_PROMPT, points=1,
       spec=("repeated from the start as often as needed and cut to exactly ``n_words`` words", "a list of sentences is read in order"))
@settings(max_examples=EXAMPLES)
@given(data=needle_cases())
def test_needle_prompt_repeats_the_filler_in_order(sub, data):
    case, words = data
    body = _prompt_words(sub, case)
    hay, _ = _expected_haystack(case, words)
    needle = case["needle"].split()
    starts = _needle_starts(body, needle)
    rest = body[:starts[0]] + body[starts[0] + len(needle):] if starts else body
    if rest != hay:
        at = next((i for i, (a, b) in enumerate(zip(rest, hay)) if a != b), min(len(rest), len(hay)))
        raise CheckFailed(f"apart from the needle, the haystack should be the filler's words repeated in order until "
                          f"there are n_words of them; it differs at filler word {at} (got "
                          f"{rest[at] if at < len(rest) else 'nothing'!r}, expected "
                          f"{hay[at] if at < len(hay) else 'nothing'!r})", inputs=case,
                          diagnosis=_diagnose_prompt(case, body))


@check(TASK_PROMPT, points=1,
       spec=("single spaces between them (the filler's own line breaks are not kept)", "then a blank line and the question unchanged"))
@settings(max_examples=EXAMPLES)
@given(data=needle_cases(max_words=12))
def test_needle_prompt_exact_text(sub, ref, data):
    case, _ = data
    kw = dict(n_words=case["n_words"], depth=case["depth"])
    got = sub.call("needle_prompt", case["filler"], case["needle"], case["question"], **kw)
    want = ref.needle_prompt(case["filler"], case["needle"], case["question"], **kw)
    if got != want:
        raise CheckFailed(f"needle_prompt returned {describe(got)}, expected {want!r} (words joined by single spaces, "
                          "then a blank line, then the question)", inputs=case,
                          diagnosis=diagnose(lambda m: m.needle_prompt(case["filler"], case["needle"],
                                                                       case["question"], **kw), got))


@check(TASK_PROMPT, points=1,
       spec=("if ``n_words < 0``, ``depth`` is outside ``[0, 1]``, the needle has no word, or the filler has no word while ``n_words > 0``"))
def test_needle_prompt_rejects_bad_input(sub, ref):
    ok = dict(filler="a b c", needle="KEY", question="Q?", n_words=5, depth=0.4)
    # valid arguments first: only a function that works earns this point (its values have their own checks)
    got = sub.call("needle_prompt", ok["filler"], ok["needle"], ok["question"], n_words=5, depth=0.4)
    if not isinstance(got, str):
        raise CheckFailed(f"needle_prompt returned {describe(got)}, expected a str", inputs=ok)
    for change, label in ((dict(depth=1.5), "depth=1.5"), (dict(depth=-0.1), "depth=-0.1"),
                          (dict(n_words=-1), "n_words=-1"), (dict(needle="   "), "a needle with no word"),
                          (dict(filler=""), "an empty filler and n_words=5")):
        args = dict(ok, **change)
        expect_raises(lambda: sub.call("needle_prompt", args["filler"], args["needle"], args["question"],
                                       n_words=args["n_words"], depth=args["depth"]), "ValueError",
                      what=f"needle_prompt with {label}", inputs=args)


# ---------------------------------------------------------------------------------------------
# needle_found
# ---------------------------------------------------------------------------------------------
ANSWER_WORDS = ["4812", "blue", "Pelican", "San", "Francisco", "x7", "Dolores"]


@st.composite
def disguised_answers(draw):
    """An answer, and the same answer with its letters' case changed and whitespace added or removed."""
    answer = " ".join(draw(st.lists(st.sampled_from(ANSWER_WORDS), min_size=1, max_size=3)))
    out = []
    for ch in answer:
        if ch == " ":
            out.append(draw(st.sampled_from([" ", "  ", "\n", "\t", ""])))
        else:
            out.append(ch.upper() if draw(st.booleans()) else ch.lower())
            if draw(st.integers(0, 9)) == 0:
                out.append(draw(st.sampled_from([" ", "\n"])))
    return answer, "".join(out)


def _found_call(sub, response, answer):
    inputs = dict(response=response, answer=answer)
    got = sub.call("needle_found", response, answer)
    if type(got) is not bool:
        raise CheckFailed(f"needle_found should return a bool, got {type_name(got)}", inputs=inputs)
    return got, inputs


def _expect_found(sub, ref, response, answer, why):
    got, inputs = _found_call(sub, response, answer)
    want = ref.needle_found(response, answer)
    if got != want:
        raise CheckFailed(f"needle_found({response!r}, {answer!r}) is {got}, expected {want} ({why})", inputs=inputs,
                          diagnosis=diagnose(lambda m: m.needle_found(response, answer), got))


@check(TASK_FOUND, points=1,
       spec="Both strings are compared after ``str.casefold()`` and with every whitespace character removed")
@settings(max_examples=EXAMPLES)
@given(pair=disguised_answers(), prefix=st.sampled_from(["", "The answer is ", "I think it is\n", "**"]),
       suffix=st.sampled_from(["", ".", " for sure.", "**\n"]))
def test_needle_found_ignores_case_and_whitespace(sub, ref, pair, prefix, suffix):
    answer, disguised = pair
    _expect_found(sub, ref, prefix + disguised + suffix, answer,
                  "the answer is there, up to letter case and whitespace")


@check(TASK_FOUND, points=1,
       spec="Whether the model's ``response`` contains ``answer``")
@settings(max_examples=EXAMPLES)
@given(answer=st.lists(st.sampled_from(ANSWER_WORDS), min_size=1, max_size=2).map(" ".join),
       other=st.lists(st.sampled_from(["the", "magic", "number", "is", "unknown", "bird", "7"]), min_size=1,
                      max_size=6).map(" ".join))
def test_needle_found_looks_for_the_answer_inside_the_response(sub, ref, answer, other):
    _expect_found(sub, ref, f"Sure! {other}: {answer}.", answer, "a response contains the answer inside a sentence")
    _expect_found(sub, ref, other, answer, "the answer is not in the response")


@check(TASK_FOUND, points=1,
       spec="if ``answer`` is empty or only whitespace")
def test_needle_found_rejects_an_empty_answer(sub, ref):
    # valid arguments first: only a function that works earns this point (its values have their own checks)
    _found_call(sub, "The ANSWER is\n48 12.", "4812")
    for answer in ("", "  \n"):
        expect_raises(lambda: sub.call("needle_found", "any response", answer), "ValueError",
                      what=f"needle_found with answer={answer!r} (every response contains it)",
                      inputs=dict(response="any response", answer=answer))


# ---------------------------------------------------------------------------------------------
# Long context (API.md §10b, issue 19): Llama 3.1's RoPE scaling and the cost of attention.
# Expected frequencies come from transformers' own ``rope_type="llama3"`` initialisation, computed here;
# attention costs from the closed forms in the docstring. Frequencies: relative 1e-5 (transformers
# computes in float32); costs: exact integers.
# ---------------------------------------------------------------------------------------------
from llmlab.grading.checks import expect_close, expect_equal, expect_tensor  # noqa: E402

TASK_ROPE = "pretraining.llama3_rope_frequencies"
TASK_COST = "pretraining.attention_cost"


def transformers_llama3_frequencies(head_dim, base, factor, low, high, L):
    from transformers import LlamaConfig
    from transformers.modeling_rope_utils import ROPE_INIT_FUNCTIONS

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        config = LlamaConfig(hidden_size=head_dim * 2, num_attention_heads=2, head_dim=head_dim,
                             max_position_embeddings=int(L * factor) + 1,
                             rope_parameters=dict(rope_type="llama3", rope_theta=float(base), factor=float(factor),
                                                  low_freq_factor=float(low), high_freq_factor=float(high),
                                                  original_max_position_embeddings=L))
        inv_freq, _ = ROPE_INIT_FUNCTIONS["llama3"](config, "cpu")
    return inv_freq


@st.composite
def rope_settings(draw):
    low = draw(st.sampled_from([0.5, 1.0, 2.0]))
    return dict(head_dim=2 * draw(st.integers(1, 64)), base=draw(st.sampled_from([100.0, 10000.0, 500000.0])),
                factor=draw(st.sampled_from([1.0, 2.0, 8.0, 32.0])), low_freq_factor=low,
                high_freq_factor=low + draw(st.sampled_from([0.5, 1.0, 3.0])),
                original_max_position=draw(st.sampled_from([16, 256, 2048, 8192])))


def _rope_call(sub, kw):
    head_dim = kw["head_dim"]
    args = {k: v for k, v in kw.items() if k not in ("head_dim", "base")}
    diag = lambda m: m.llama3_rope_frequencies(head_dim, kw["base"], **args)  # noqa: E731
    with diagnosing(diag, inputs=kw):
        got = sub.call("llama3_rope_frequencies", head_dim, kw["base"], **args)
    expect_tensor(got, what="llama3_rope_frequencies", shape=(head_dim // 2,), dtype=torch.float32, inputs=kw,
                  diagnose_with=diag)
    return got, diag


LLAMA31 = dict(head_dim=128, base=500000.0, factor=8.0, low_freq_factor=1.0, high_freq_factor=4.0,
               original_max_position=8192)


@check(TASK_ROPE, points=3, spec=("each frequency is rescaled by its wavelength",
                                  "The same values as transformers' ``rope_type=\"llama3\"`` initialisation"))
@given(kw=rope_settings())
@example(kw=LLAMA31)
@settings(max_examples=15)
def test_llama3_rope_frequencies_equal_transformers(sub, kw):
    got, diag = _rope_call(sub, kw)
    want = transformers_llama3_frequencies(kw["head_dim"], kw["base"], kw["factor"], kw["low_freq_factor"],
                                           kw["high_freq_factor"], kw["original_max_position"])
    expect_close(got, want, what="llama3_rope_frequencies (compared with transformers' rope_type='llama3')",
                 atol=0.0, rtol=1e-5, inputs=kw, diagnose_with=diag)


@check(TASK_ROPE, points=1, spec="``inv_freq[i] = base ** (-2 * i / head_dim)``")
@given(head_dim=st.integers(1, 64).map(lambda n: 2 * n), base=st.sampled_from([10.0, 10000.0, 500000.0]))
@settings(max_examples=8)
def test_llama3_rope_frequencies_without_scaling_are_plain_rope(sub, head_dim, base):
    """factor = 1 scales nothing: the plain RoPE frequencies come back, whatever the wavelengths."""
    kw = dict(head_dim=head_dim, base=base, factor=1.0, low_freq_factor=1.0, high_freq_factor=4.0,
              original_max_position=64)
    got, diag = _rope_call(sub, kw)
    want = (base ** (-torch.arange(0, head_dim, 2, dtype=torch.float64) / head_dim)).float()
    expect_close(got, want, what="llama3_rope_frequencies with factor=1 (plain RoPE)", atol=0.0, rtol=1e-5,
                 inputs=kw, diagnose_with=diag)


@check(TASK_ROPE, points=1, spec=("if ``head_dim`` is not positive and even", "``factor < 1``",
                                  "``0 < low_freq_factor < high_freq_factor``"))
def test_llama3_rope_frequencies_rejects_bad_arguments(sub):
    # valid arguments first: an unfinished function fails as "not implemented", not on the errors
    sub.call("llama3_rope_frequencies", 8, 10000.0, factor=8.0, low_freq_factor=1.0, high_freq_factor=4.0,
             original_max_position=64)
    for change in (dict(head_dim=7), dict(head_dim=0), dict(factor=0.5), dict(low_freq_factor=4.0),
                   dict(low_freq_factor=0.0), dict(base=1.0), dict(original_max_position=0)):
        kw = dict(dict(head_dim=8, base=10000.0, factor=8.0, low_freq_factor=1.0, high_freq_factor=4.0,
                       original_max_position=64), **change)
        head_dim, base = kw.pop("head_dim"), kw.pop("base")
        expect_raises(lambda: sub.call("llama3_rope_frequencies", head_dim, base, **kw), "ValueError",
                      what=f"llama3_rope_frequencies with {change}")


@st.composite
def model_sizes(draw):
    n_kv = draw(st.integers(1, 4))
    n_heads = n_kv * draw(st.integers(1, 4))
    return dict(seq_len=draw(st.integers(0, 5000)), d_model=n_heads * draw(st.integers(1, 64)),
                n_layers=draw(st.integers(1, 40)), n_heads=n_heads, n_kv_heads=n_kv,
                bytes_per_value=draw(st.sampled_from([1, 2, 4])))


SMOLLM2 = dict(seq_len=8192, d_model=576, n_layers=30, n_heads=9, n_kv_heads=3, bytes_per_value=4)


def _cost(sub, kw):
    seq_len = kw["seq_len"]
    rest = {k: v for k, v in kw.items() if k != "seq_len"}
    diag = lambda m: m.attention_cost(seq_len, **rest)  # noqa: E731
    with diagnosing(diag, inputs=kw):
        got = sub.call("attention_cost", seq_len, **rest)
    if not isinstance(got, dict) or set(got) != {"flops", "kv_cache_bytes"} or \
            not all(type(v) is int for v in got.values()):
        raise CheckFailed(f"attention_cost should return {{'flops': int, 'kv_cache_bytes': int}}, got {describe(got)}",
                          inputs=kw)
    return got, diag


@check(TASK_COST, points=2, spec="``flops = n_layers * n_heads * 2 * (2 * seq_len**2 * head_dim)")
@given(kw=model_sizes())
@example(kw=SMOLLM2)
@settings(max_examples=10)
def test_attention_cost_counts_both_products(sub, kw):
    got, diag = _cost(sub, kw)
    want = 4 * kw["n_layers"] * kw["seq_len"] ** 2 * kw["d_model"]
    expect_equal(got["flops"], want, what="flops (scores and weighted values, 2 FLOPs per multiply-add, every "
                 "layer and query head)", inputs=kw, diagnose_with=lambda m: diag(m)["flops"])


@check(TASK_COST, points=2, spec="``kv_cache_bytes = 2 * n_layers * n_kv_heads * head_dim * seq_len * bytes_per_value``")
@given(kw=model_sizes())
@example(kw=SMOLLM2)
@settings(max_examples=10)
def test_attention_cost_kv_cache(sub, kw):
    got, diag = _cost(sub, kw)
    head_dim = kw["d_model"] // kw["n_heads"]
    want = 2 * kw["n_layers"] * kw["n_kv_heads"] * head_dim * kw["seq_len"] * kw["bytes_per_value"]
    expect_equal(got["kv_cache_bytes"], want, what="kv_cache_bytes (a key and a value per token, layer and "
                 "key-value head)", inputs=kw, diagnose_with=lambda m: diag(m)["kv_cache_bytes"])


@check(TASK_COST, points=1, spec=("if a size is out of range or does not divide as stated",))
def test_attention_cost_rejects_bad_sizes(sub):
    sub.call("attention_cost", 16, d_model=64, n_layers=2, n_heads=4, n_kv_heads=2)  # valid arguments first
    base = dict(d_model=64, n_layers=2, n_heads=4, n_kv_heads=2)
    for change in (dict(d_model=66), dict(n_kv_heads=3), dict(n_layers=0), dict(n_heads=0), dict(bytes_per_value=0)):
        kw = dict(base, **change)
        expect_raises(lambda: sub.call("attention_cost", 16, **kw), "ValueError", what=f"attention_cost(16, {kw})")
    expect_raises(lambda: sub.call("attention_cost", -1, **base), "ValueError", what="attention_cost(seq_len=-1)")
