"""Hidden graders for ``refusal_loss`` (API.md §7): DeRTa's examples, prefix sampling and losses.

Expected values are computed here from the definitions, never from a single library call:
the examples by list concatenation; the RTO loss by a brute-force loop over every (row, position)
with a per-position ``log_softmax``; the DeRTa loss by an explicit sum over counted tokens divided by
their count, and, for rows with MLE labels only, by ``torch.nn.functional.cross_entropy`` with
``ignore_index=-100`` (the library the MLE term imitates). Tolerances: ``atol=1e-5, rtol=1e-5`` for
float32 and float64 logits alike, except in the one float64-precision check of each loss
(``atol=1e-10, rtol=1e-9``), so computing in float32 costs that check only; gradients ``atol=1e-6``.

``sample_prefix_length`` is checked statistically with a fixed seed (``python_random`` factory), by a
chi-square test whose false-alarm probability is stated next to it; the verdict is deterministic.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from hypothesis import assume, example, given
from hypothesis import strategies as st

from graders.strategies import randn, seeds
from llmlab.grading.checks import (CheckFailed, check, describe, diagnose, diagnosing, expect_close,
                                  expect_equal, expect_raises, expect_tensor, known_mistake, later,
                                  require_implemented, type_name)
from llmlab.grading.remote import SubmissionError

TASK_PREFIX = "refusal_loss.harmful_prefix_example"
TASK_SAMPLE = "refusal_loss.sample_prefix_length"
TASK_RTO_EXAMPLE = "refusal_loss.rto_example"
TASK_RTO = "refusal_loss.refusal_position_loss"
TASK_DERTA = "refusal_loss.derta_loss"
IGNORE = -100


def _tol(dtype):
    """Value checks accept float32 precision whatever the dtype: float64 precision has its own check."""
    return 1e-5, 1e-5


TOL64 = (1e-10, 1e-9)


# ---------------------------------------------------------------------------------------------
# Examples
# ---------------------------------------------------------------------------------------------
token_lists = st.lists(st.integers(0, 50_000), max_size=5)


def _expect_int_list(value, what, inputs, diagnose_with):
    if not isinstance(value, list) or not all(type(v) is int for v in value):
        found = later(lambda: diagnose(diagnose_with, value))
        kind = type_name(value) if not isinstance(value, list) else "a list holding " + ", ".join(
            sorted({type_name(v) for v in value if type(v) is not int}))
        raise CheckFailed(f"{what} should be a list of int, got {kind}", inputs=inputs, diagnosis=found)


@st.composite
def prefix_cases(draw):
    query, harmful, safe = draw(token_lists), draw(token_lists), draw(token_lists)
    return query, harmful, safe, draw(st.integers(0, len(harmful)))


@check(TASK_PREFIX, points=2, spec=("``input_ids = query_ids + harmful_ids[:k] + safe_ids``",
                                    "``labels = [-100] * (len(query_ids) + k) + safe_ids``",
                                    "two new lists of int of the same length", "They are not modified."))
@given(case=prefix_cases())
@example(case=([1, 2], [10, 11, 12], [7, 8], 2))
@example(case=([1, 2], [10, 11, 12], [7, 8], 0))
@example(case=([1, 2], [10, 11, 12], [7, 8], 3))
def test_harmful_prefix_example_matches_the_definition(sub, case):
    query, harmful, safe, k = case
    inputs = dict(query_ids=query, harmful_ids=harmful, safe_ids=safe, k=k)
    out, args_after, _ = sub.call_echo("harmful_prefix_example", query, harmful, safe, k)
    diag = lambda m: m.harmful_prefix_example(list(query), list(harmful), list(safe), k)  # noqa: E731
    if not isinstance(out, tuple) or len(out) != 2:
        raise CheckFailed(f"harmful_prefix_example should return a tuple (input_ids, labels), got {describe(out)}",
                          inputs=inputs)
    input_ids, labels = out
    _expect_int_list(input_ids, "input_ids", inputs, lambda m: diag(m)[0])
    _expect_int_list(labels, "labels", inputs, lambda m: diag(m)[1])
    expect_equal(input_ids, query + harmful[:k] + safe, what="input_ids (query + harmful[:k] + safe)",
                 inputs=inputs, diagnose_with=lambda m: diag(m)[0])
    expect_equal(labels, [IGNORE] * (len(query) + k) + safe, what="labels (-100 on the query and the harmful "
                 "prefix, the ids on the safe response)", inputs=inputs, diagnose_with=lambda m: diag(m)[1])
    if list(args_after[:3]) != [query, harmful, safe]:
        raise CheckFailed("harmful_prefix_example changed one of its input lists", inputs=inputs)


@check(TASK_PREFIX, points=1, spec="tuples and 1-D integer tensors are accepted")
def test_harmful_prefix_example_accepts_tuples_and_tensors(sub):
    query, harmful, safe = (1, 2), torch.tensor([10, 11, 12]), torch.tensor([7, 8])
    inputs = dict(query_ids=query, harmful_ids=harmful, safe_ids=safe, k=2)
    out = sub.call("harmful_prefix_example", query, harmful, safe, 2)
    expect_equal(out, ([1, 2, 10, 11, 7, 8], [IGNORE] * 4 + [7, 8]), what="harmful_prefix_example of a tuple and "
                 "two tensors (input_ids, labels)", inputs=inputs)


@check(TASK_PREFIX, points=1, spec=("if ``k`` is not an int", "if ``k`` is outside ``0..len(harmful_ids)``"))
def test_harmful_prefix_example_rejects_k_out_of_range(sub):
    q, h, s = [1, 2], [3, 4, 5], [6]
    require_implemented(sub, "harmful_prefix_example", q, h, s, 1)
    expect_raises(lambda: sub.call("harmful_prefix_example", q, h, s, 4), "ValueError",
                  what="harmful_prefix_example(query, harmful (3 tokens), safe, k=4)")
    expect_raises(lambda: sub.call("harmful_prefix_example", q, h, s, -1), "ValueError",
                  what="harmful_prefix_example(query, harmful, safe, k=-1) (a negative k would silently drop "
                       "tokens from the end of the harmful response)")
    expect_raises(lambda: sub.call("harmful_prefix_example", q, h, s, 1.0), "TypeError",
                  what="harmful_prefix_example(query, harmful, safe, k=1.0)")


# -- sample_prefix_length --------------------------------------------------------------------
def chi2_sf(x: float, df: int) -> float:
    """P(X >= x) for X ~ chi-square with ``df`` degrees of freedom (closed forms for integer df)."""
    y = x / 2.0
    if df % 2 == 0:  # Q(m, y) = exp(-y) * sum_{i<m} y^i / i!
        term, total = 1.0, 1.0
        for i in range(1, df // 2):
            term *= y / i
            total += term
        return math.exp(-y) * total
    # Q(m + 1/2, y) = erfc(sqrt(y)) + exp(-y) * sum_{i<m} y^(i+1/2) / Gamma(i + 3/2)
    total = math.erfc(math.sqrt(y))
    for i in range(df // 2):
        total += math.exp(-y + (i + 0.5) * math.log(y) - math.lgamma(i + 1.5)) if y > 0 else 0.0
    return total


def chi2_threshold(df: int, alpha: float) -> float:
    """The x with P(chi-square_df >= x) = alpha (bisection on the survival function)."""
    lo, hi = 0.0, 10.0 * df + 200.0
    for _ in range(200):
        mid = (lo + hi) / 2
        if chi2_sf(mid, df) > alpha:
            lo = mid
        else:
            hi = mid
    return hi


# Each n below is tested with its own chi-square at false-alarm probability ALPHA = 1e-6, so a correct
# submission fails with probability below 3e-6 over all of them (the extra "value never drawn" rule adds
# less than 1e-50: (n/(n+1))**(120*(n+1)) for the n tested). The seed being fixed, a given submission's
# verdict never changes between runs.
ALPHA = 1e-6
SAMPLE_SEED = 20240709
DRAWS_PER_VALUE = 120


def _draw_lengths(sub, n: int, count: int, seed: int) -> list:
    rng = sub.factory("python_random", seed)
    return [sub.call("sample_prefix_length", n, rng) for _ in range(count)]


@check(TASK_SAMPLE, points=2, spec=("uniform on ``0..n``", "Both ends are included"))
def test_sample_prefix_length_is_uniform_on_0_to_n(sub):
    for n in (1, 3, 6):
        draws = _draw_lengths(sub, n, DRAWS_PER_VALUE * (n + 1), SAMPLE_SEED + n)
        inputs = dict(n=n, rng=f"random.Random({SAMPLE_SEED + n})", calls=len(draws))
        wrong = [d for d in draws if type(d) is not int or not 0 <= d <= n]
        if wrong:
            raise CheckFailed(f"sample_prefix_length(n={n}, rng) must return an int in 0..{n}, got "
                              f"{describe(wrong[0])}", inputs=inputs)
        counts = [draws.count(v) for v in range(n + 1)]
        hints = []
        if counts[0] == 0:
            hints.append(known_mistake("prefix_never_empty"))
        if counts[n] == 0:
            hints.append(known_mistake("prefix_never_full"))
        expected = len(draws) / (n + 1)
        stat = sum((c - expected) ** 2 / expected for c in counts)
        limit = chi2_threshold(n, ALPHA)
        if stat > limit or hints:
            raise CheckFailed(f"over {len(draws)} draws with n={n}, the values 0..{n} came {counts} times; a uniform "
                              f"draw on 0..{n} (both ends included) gives about {expected:.0f} each (chi-square "
                              f"{stat:.1f} > {limit:.1f}, the limit for a false alarm rate of {ALPHA:g})",
                              inputs=inputs, diagnosis=hints)


@check(TASK_SAMPLE, points=1, spec=("Every random draw comes from ``rng``, so the same seed gives the same lengths",
                                    "if ``n`` is not an int", "if ``n < 0``"))
def test_sample_prefix_length_draws_from_rng(sub):
    first = _draw_lengths(sub, 9, 40, SAMPLE_SEED)
    second = _draw_lengths(sub, 9, 40, SAMPLE_SEED)
    if first != second:
        raise CheckFailed("two random.Random generators with the same seed gave different lengths: every random "
                          "draw must come from the `rng` argument", inputs=dict(n=9, seed=SAMPLE_SEED),
                          diagnosis=[known_mistake("prefix_global_random")])
    zero = _draw_lengths(sub, 0, 5, SAMPLE_SEED)
    expect_equal(zero, [0] * 5, what="sample_prefix_length(0, rng) (the only possible length is 0)",
                 inputs=dict(n=0))
    expect_raises(lambda: sub.call("sample_prefix_length", -1, sub.factory("python_random", 0)), "ValueError",
                  what="sample_prefix_length(-1, rng)")
    expect_raises(lambda: sub.call("sample_prefix_length", 3.0, sub.factory("python_random", 0)), "TypeError",
                  what="sample_prefix_length(3.0, rng)")


# -- rto_example -----------------------------------------------------------------------------
@check(TASK_RTO_EXAMPLE, points=1, spec=("``input_ids = query_ids + harmful_ids`` (list of int)",
                                         "True exactly on the harmful-response positions"))
@given(query=token_lists, harmful=token_lists)
@example(query=[5, 6, 7], harmful=[1, 2])
def test_rto_example_marks_exactly_the_harmful_positions(sub, query, harmful):
    inputs = dict(query_ids=query, harmful_ids=harmful)
    out = sub.call("rto_example", query, harmful)
    diag = lambda m: m.rto_example(list(query), list(harmful))  # noqa: E731
    if not isinstance(out, tuple) or len(out) != 2:
        raise CheckFailed(f"rto_example should return a tuple (input_ids, harmful_mask), got {describe(out)}",
                          inputs=inputs)
    input_ids, mask = out
    _expect_int_list(input_ids, "input_ids", inputs, lambda m: diag(m)[0])
    expect_equal(input_ids, query + harmful, what="input_ids (query + harmful)", inputs=inputs,
                 diagnose_with=lambda m: diag(m)[0])
    if not isinstance(mask, list) or not all(type(v) is bool for v in mask):
        raise CheckFailed(f"harmful_mask should be a list of bool, got {describe(mask)}", inputs=inputs,
                          diagnosis=later(lambda: diagnose(lambda m: diag(m)[1], mask)))
    expect_equal(mask, [False] * len(query) + [True] * len(harmful), what="harmful_mask (True exactly on the "
                 "harmful response's positions)", inputs=inputs, diagnose_with=lambda m: diag(m)[1])


@check(TASK_RTO_EXAMPLE, points=1, spec="tuples and 1-D integer tensors are accepted")
def test_rto_example_accepts_tuples_and_tensors(sub):
    query, harmful = (5, 6), torch.tensor([1, 2])
    out = sub.call("rto_example", query, harmful)
    expect_equal(out, ([5, 6, 1, 2], [False, False, True, True]), what="rto_example of a tuple and a tensor "
                 "(input_ids, harmful_mask)", inputs=dict(query_ids=query, harmful_ids=harmful))


# ---------------------------------------------------------------------------------------------
# Losses
# ---------------------------------------------------------------------------------------------
def brute_force_terms(logits, labels, mask, refusal):
    """(total loss, count) of the MLE and RTO tokens, one (row, position) at a time, in float64."""
    B, T, _ = logits.shape
    total = torch.zeros((), dtype=torch.float64)
    count = 0
    for b in range(B):
        for t in range(T - 1):
            logp = torch.log_softmax(logits[b, t].double(), dim=-1)
            if labels is not None and int(labels[b, t + 1]) != IGNORE:
                total = total - logp[int(labels[b, t + 1])]
                count += 1
            if mask is not None and bool(mask[b, t + 1]):
                total = total - logp[refusal]
                count += 1
    return total, count


@st.composite
def loss_batches(draw, kinds=("mle", "rto"), dtype=None):
    """A padded batch of DeRTa rows: ``mle`` rows from harmful_prefix_example (labels on the safe part),
    ``rto`` rows from rto_example (mask on the harmful part), ``both`` rows with independent labels and
    mask, and padding (-100 / False). Returns logits, labels, mask, refusal id."""
    B = draw(st.integers(1, 4))
    V = draw(st.integers(2, 7))
    seed = draw(seeds)
    refusal = draw(st.integers(0, V - 1))
    ids = st.integers(0, V - 1)
    rows = []
    for _ in range(B):
        kind = draw(st.sampled_from(kinds))
        query = draw(st.lists(ids, max_size=3))
        harmful = draw(st.lists(ids, min_size=1, max_size=4))
        safe = draw(st.lists(ids, min_size=1, max_size=3))
        if kind == "mle":
            k = draw(st.integers(0, len(harmful)))
            tokens = query + harmful[:k] + safe
            labels = [IGNORE] * (len(query) + k) + safe
            mask = [False] * len(tokens)
        elif kind == "rto":
            tokens = query + harmful
            labels = [IGNORE] * len(tokens)
            mask = [False] * len(query) + [True] * len(harmful)
        else:
            tokens = query + harmful
            labels = [t if draw(st.booleans()) else IGNORE for t in tokens]
            mask = [draw(st.booleans()) for _ in tokens]
        rows.append((labels, mask))
    T = max(len(r[0]) for r in rows) + draw(st.integers(0, 2))
    labels = torch.full((B, T), IGNORE, dtype=torch.long)
    mask = torch.zeros(B, T, dtype=torch.bool)
    for b, (lab, msk) in enumerate(rows):
        labels[b, :len(lab)] = torch.tensor(lab, dtype=torch.long)
        mask[b, :len(msk)] = torch.tensor(msk, dtype=torch.bool)
    dtype = dtype or draw(st.sampled_from([torch.float32, torch.float64]))
    logits = randn(seed, B, T, V, dtype=dtype) * draw(st.sampled_from([0.5, 2.0, 6.0]))
    return logits, labels, mask, refusal


def _floats_only(compute):
    """``compute`` for the diagnoser, keeping only answers that are Python floats (a tensor of the same value
    must not match a float)."""
    def run(module):
        value = compute(module)
        return value if isinstance(value, float) else None
    return run


def _scalar(value, what, dtype, inputs, diagnose_with, strict=True):
    """A 0-dim tensor of ``dtype``. Not ``strict`` (the value checks), a Python float is read as one, so returning
    ``.item()`` costs only the check that needs a tensor (the gradient check)."""
    if isinstance(value, float) and not strict:
        return torch.tensor(value, dtype=dtype)
    if isinstance(value, float):
        raise CheckFailed(f"{what} returned a Python float: return the 0-dim tensor itself (no .item()), so that "
                          "training can backpropagate through it", inputs=inputs,
                          diagnosis=later(lambda: diagnose(_floats_only(diagnose_with), value)))
    expect_tensor(value, what=what, shape=(), dtype=dtype, inputs=inputs, diagnose_with=diagnose_with)
    return value


# -- refusal_position_loss -------------------------------------------------------------------
def _rto_call(sub, logits, mask, refusal):
    inputs = dict(logits=logits, harmful_mask=mask, refusal_token_id=refusal)
    diag = lambda m: m.refusal_position_loss(logits, mask, refusal)  # noqa: E731
    with diagnosing(diag):
        got = sub.call("refusal_position_loss", logits, mask, refusal)
    got = _scalar(got, "refusal_position_loss(...)", logits.dtype, inputs, diag, strict=False)
    return got, inputs, diag


@check(TASK_RTO, points=3, spec=("the loss is the mean of ``-logp[b, t, refusal_token_id]`` over every pair "
                                 "``(b, t)``, ``0 <= t < T - 1``, with ``harmful_mask[b, t + 1]`` True",
                                 "A 0-dim tensor of the logits' dtype"))
@given(batch=loss_batches(kinds=("rto",)))
def test_refusal_position_loss_matches_brute_force(sub, batch):
    logits, _, mask, refusal = batch
    total, count = brute_force_terms(logits, None, mask, refusal)
    assume(count > 0)
    got, inputs, diag = _rto_call(sub, logits, mask, refusal)
    atol, rtol = _tol(logits.dtype)
    expect_close(got, (total / count).to(logits.dtype), what="the RTO loss (mean over every position t whose next "
                 "token t+1 is harmful of -log p(refusal | tokens <= t))", atol=atol, rtol=rtol, inputs=inputs,
                 diagnose_with=diag)


@check(TASK_RTO, points=1, spec="``harmful_mask[:, 0]`` plays no part")
def test_refusal_position_loss_ignores_the_mask_at_position_0(sub):
    # an RTO row with an empty query: token 0 is harmful, but no position predicts it
    logits = randn(7, 2, 4, 5)
    mask = torch.tensor([[True, True, True, False], [False, False, True, True]])
    total, count = brute_force_terms(logits, None, mask, 3)
    got, inputs, diag = _rto_call(sub, logits, mask, 3)
    expect_close(got, (total / count).float(), what="the RTO loss when harmful_mask[:, 0] is True", atol=1e-5,
                 rtol=1e-5, inputs=inputs, diagnose_with=diag)


@check(TASK_RTO, points=1, spec="when no position qualifies (``harmful_mask[:, 1:]`` has no True entry)")
def test_refusal_position_loss_needs_a_qualifying_position(sub):
    logits = randn(3, 2, 3, 4)
    none = torch.zeros(2, 3, dtype=torch.bool)
    first_only = none.clone()
    first_only[:, 0] = True
    require_implemented(sub, "refusal_position_loss", logits, ~none, 1)
    expect_raises(lambda: sub.call("refusal_position_loss", logits, none, 1), "ValueError",
                  what="refusal_position_loss with an all-False harmful_mask (a mean over no position)",
                  diagnose_with=lambda m: m.refusal_position_loss(logits, none, 1))
    expect_raises(lambda: sub.call("refusal_position_loss", logits, first_only, 1), "ValueError",
                  what="refusal_position_loss when only harmful_mask[:, 0] is True (no position predicts token 0)",
                  diagnose_with=lambda m: m.refusal_position_loss(logits, first_only, 1))


@check(TASK_RTO, points=1, spec="float64 logits keep float64 precision, within 1e-10")
@given(batch=loss_batches(kinds=("rto",), dtype=torch.float64))
def test_refusal_position_loss_float64_precision(sub, batch):
    logits, _, mask, refusal = batch
    total, count = brute_force_terms(logits, None, mask, refusal)
    assume(count > 0)
    got, inputs, diag = _rto_call(sub, logits, mask, refusal)
    expect_close(got, total / count, what="the float64 RTO loss", atol=TOL64[0], rtol=TOL64[1], inputs=inputs,
                 diagnose_with=diag)


@check(TASK_RTO, points=1, spec=("harmful_mask: ``(B, T)`` bool tensor (0/1 integers are accepted)",
                                 "if ``logits`` or ``harmful_mask`` is not a tensor",
                                 "if ``logits`` is not ``(B, T, V)`` or ``harmful_mask`` not ``(B, T)``, if "
                                 "``refusal_token_id`` is outside ``[0, V)``"))
def test_refusal_position_loss_argument_types_and_shapes(sub):
    logits = randn(11, 2, 3, 4)
    mask = torch.tensor([[0, 1, 1], [0, 0, 1]])
    total, count = brute_force_terms(logits, None, mask.bool(), 2)
    got, inputs, diag = _rto_call(sub, logits, mask, 2)
    expect_close(got, (total / count).float(), what="the RTO loss with a 0/1 integer harmful_mask", atol=1e-5,
                 rtol=1e-5, inputs=inputs, diagnose_with=diag)
    bad = ((lambda: sub.call("refusal_position_loss", logits.tolist(), mask, 2), "TypeError", "logits as a list"),
           (lambda: sub.call("refusal_position_loss", logits, mask.tolist(), 2), "TypeError", "harmful_mask as a list"),
           (lambda: sub.call("refusal_position_loss", logits[0], mask[0], 2), "ValueError", "2-D logits"),
           (lambda: sub.call("refusal_position_loss", logits, mask[:, :2], 2), "ValueError",
            "logits (2, 3, 4) with harmful_mask (2, 2)"),
           (lambda: sub.call("refusal_position_loss", logits, mask, 4), "ValueError", "refusal_token_id=4 with V=4"),
           (lambda: sub.call("refusal_position_loss", logits, mask, -1), "ValueError", "refusal_token_id=-1"))
    for call, kind, what in bad:
        expect_raises(call, kind, what=f"refusal_position_loss with {what}")


def _expect_own_derivative(sub, fn, logits, rest, grad, inputs, diag):
    """``grad`` must be the derivative of the submission's OWN loss (the loss values have their own checks, so a
    wrong formula does not cost a gradient check too): along a fixed direction, against a central finite
    difference (step 1e-3 on float64 logits: truncation error ~1e-6; a float32 computation rounds to ~1e-4)."""
    direction, step = randn(99, *logits.shape, dtype=torch.float64), 1e-3
    moved = [_scalar(sub.call(fn, logits.double() + sign * step * direction, *rest), f"{fn}(...)", torch.float64,
                     inputs, diag, strict=False) for sign in (1, -1)]
    expect_close((grad.double() * direction).sum(), (moved[0] - moved[1]) / (2 * step), what=f"the gradient of {fn} "
                 f"along a fixed direction (compared with a finite difference of your own {fn})", atol=1e-3,
                 rtol=1e-3, inputs=inputs)


@check(TASK_RTO, points=1, spec="differentiable with respect to ``logits``")
@given(batch=loss_batches(kinds=("rto",), dtype=torch.float64))
def test_refusal_position_loss_gradient(sub, batch):
    logits, _, mask, refusal = batch
    assume(bool(mask[:, 1:].any()))
    inputs = dict(logits=logits, harmful_mask=mask, refusal_token_id=refusal)
    diag = lambda m: m.refusal_position_loss(logits, mask, refusal)  # noqa: E731
    try:
        out, grads = sub.call_grad("refusal_position_loss", logits.detach().clone().requires_grad_(True), mask,
                                   refusal)
    except SubmissionError as err:
        if err.kind == "raised" and ("expected a tensor to differentiate" in err.message or "grad" in err.message):
            raise CheckFailed("refusal_position_loss's result is not a tensor connected to the logits: training cannot "
                              f"backpropagate through it ({err.message})", inputs=inputs) from None
        raise
    _scalar(out, "refusal_position_loss(...)", torch.float64, inputs, diag)
    grad = grads[0] if grads else None
    if not isinstance(grad, torch.Tensor):
        raise CheckFailed("no gradient reached the logits through refusal_position_loss", inputs=inputs)
    _expect_own_derivative(sub, "refusal_position_loss", logits, (mask, refusal), grad, inputs, diag)


# -- derta_loss ------------------------------------------------------------------------------
def _derta_call(sub, logits, labels, mask, refusal):
    inputs = dict(logits=logits, labels=labels, harmful_mask=mask, refusal_token_id=refusal)
    diag = lambda m: m.derta_loss(logits, labels, mask, refusal)  # noqa: E731
    with diagnosing(diag):
        got = sub.call("derta_loss", logits, labels, mask, refusal)
    got = _scalar(got, "derta_loss(...)", logits.dtype, inputs, diag, strict=False)
    return got, inputs, diag


@check(TASK_DERTA, points=3, spec=("(sum of all MLE token losses + sum of all RTO token losses) / (number of MLE "
                                   "tokens + number of RTO tokens)", "The terms are independent",
                                   "A 0-dim tensor of the logits' dtype"))
@given(batch=loss_batches(kinds=("mle", "rto", "both")))
def test_derta_loss_pools_both_terms_by_token_count(sub, batch):
    logits, labels, mask, refusal = batch
    total, count = brute_force_terms(logits, labels, mask, refusal)
    assume(count > 0)
    got, inputs, diag = _derta_call(sub, logits, labels, mask, refusal)
    atol, rtol = _tol(logits.dtype)
    expect_close(got, (total / count).to(logits.dtype), what="the DeRTa loss (sum of every counted MLE and RTO "
                 "token loss / number of counted tokens)", atol=atol, rtol=rtol, inputs=inputs, diagnose_with=diag)


@check(TASK_DERTA, points=1, spec="MLE: every ``(b, t)`` with ``labels[b, t + 1] != -100``")
@given(batch=loss_batches(kinds=("mle",)))
def test_derta_loss_without_rto_is_shifted_cross_entropy(sub, batch):
    logits, labels, mask, refusal = batch
    assume(bool((labels[:, 1:] != IGNORE).any()))
    got, inputs, diag = _derta_call(sub, logits, labels, mask, refusal)
    V = logits.shape[-1]
    expected = F.cross_entropy(logits[:, :-1].reshape(-1, V), labels[:, 1:].reshape(-1), ignore_index=IGNORE)
    atol, rtol = _tol(logits.dtype)
    expect_close(got, expected, what="derta_loss on rows without harmful_mask (compared with F.cross_entropy of "
                 "logits[:, :-1] against labels[:, 1:], ignore_index=-100)", atol=atol, rtol=rtol, inputs=inputs,
                 diagnose_with=diag)


@check(TASK_DERTA, points=1, spec="RTO: every ``(b, t)`` with ``harmful_mask[b, t + 1]`` True")
@given(batch=loss_batches(kinds=("rto",)))
def test_derta_loss_without_labels_is_the_rto_loss(sub, batch):
    logits, labels, mask, refusal = batch
    total, count = brute_force_terms(logits, None, mask, refusal)
    assume(count > 0)
    got, inputs, diag = _derta_call(sub, logits, labels, mask, refusal)
    atol, rtol = _tol(logits.dtype)
    expect_close(got, (total / count).to(logits.dtype), what="derta_loss on RTO rows only (all labels -100)",
                 atol=atol, rtol=rtol, inputs=inputs, diagnose_with=diag)


@check(TASK_DERTA, points=1, spec="differentiable with respect to ``logits``")
@given(batch=loss_batches(kinds=("mle", "rto"), dtype=torch.float64))
def test_derta_loss_gradient(sub, batch):
    logits, labels, mask, refusal = batch
    _, count = brute_force_terms(logits, labels, mask, refusal)
    assume(count > 0)
    leaf = logits.detach().clone().requires_grad_(True)
    inputs = dict(logits=logits, labels=labels, harmful_mask=mask, refusal_token_id=refusal)
    diag = lambda m: m.derta_loss(logits, labels, mask, refusal)  # noqa: E731
    try:
        out, grads = sub.call_grad("derta_loss", leaf, labels, mask, refusal)
    except SubmissionError as err:
        if err.kind == "raised" and "expected a tensor to differentiate" in err.message:
            value = sub.call("derta_loss", logits, labels, mask, refusal)
            raise CheckFailed("derta_loss does not return a tensor, so training cannot backpropagate through it",
                              inputs=inputs, diagnosis=later(lambda: diagnose(_floats_only(diag), value))) from None
        if err.kind == "raised" and "grad" in err.message:
            raise CheckFailed("derta_loss's result is not connected to the logits: backpropagating from it fails "
                              f"({err.message})", inputs=inputs) from None
        raise
    _scalar(out, "derta_loss(...)", torch.float64, inputs, diag)
    grad = grads[0] if grads else None
    if not isinstance(grad, torch.Tensor):
        raise CheckFailed("no gradient reached the logits through derta_loss", inputs=inputs)
    _expect_own_derivative(sub, "derta_loss", logits, (labels, mask, refusal), grad, inputs, diag)


@check(TASK_DERTA, points=1, spec="when no token is counted")
def test_derta_loss_needs_a_counted_token(sub):
    logits = randn(5, 2, 3, 4)
    labels = torch.full((2, 3), IGNORE)
    labels[:, 0] = 2  # position 0 is never predicted
    mask = torch.zeros(2, 3, dtype=torch.bool)
    mask[:, 0] = True
    require_implemented(sub, "derta_loss", logits, labels, ~mask, 1)
    expect_raises(lambda: sub.call("derta_loss", logits, labels, mask, 1), "ValueError",
                  what="derta_loss with no counted token (only position 0 is labelled or harmful)",
                  diagnose_with=lambda m: m.derta_loss(logits, labels, mask, 1))


@check(TASK_DERTA, points=1, spec="float64 logits keep float64 precision, within 1e-10")
@given(batch=loss_batches(kinds=("mle", "rto", "both"), dtype=torch.float64))
def test_derta_loss_float64_precision(sub, batch):
    logits, labels, mask, refusal = batch
    total, count = brute_force_terms(logits, labels, mask, refusal)
    assume(count > 0)
    got, inputs, diag = _derta_call(sub, logits, labels, mask, refusal)
    expect_close(got, total / count, what="the float64 DeRTa loss", atol=TOL64[0], rtol=TOL64[1], inputs=inputs,
                 diagnose_with=diag)


@check(TASK_DERTA, points=1, spec=("harmful_mask: ``(B, T)`` bool tensor (0/1 integers are accepted)",
                                   "if ``logits``, ``labels`` or ``harmful_mask`` is not a tensor",
                                   "on wrong shapes, a ``refusal_token_id`` outside ``[0, V)``, a label other than "
                                   "``-100`` outside ``[0, V)``"))
def test_derta_loss_argument_types_and_shapes(sub):
    logits = randn(12, 2, 3, 4)
    labels = torch.tensor([[IGNORE, 1, 2], [IGNORE, IGNORE, IGNORE]])
    mask = torch.tensor([[0, 0, 0], [0, 1, 1]])
    total, count = brute_force_terms(logits, labels, mask.bool(), 3)
    got, inputs, diag = _derta_call(sub, logits, labels, mask, 3)
    expect_close(got, (total / count).float(), what="the DeRTa loss with a 0/1 integer harmful_mask", atol=1e-5,
                 rtol=1e-5, inputs=inputs, diagnose_with=diag)
    bad = ((lambda: sub.call("derta_loss", logits, labels.tolist(), mask, 3), "TypeError", "labels as a list"),
           (lambda: sub.call("derta_loss", logits, labels[:, :2], mask, 3), "ValueError",
            "logits (2, 3, 4) with labels (2, 2)"),
           (lambda: sub.call("derta_loss", logits, labels, mask[:1], 3), "ValueError",
            "logits (2, 3, 4) with harmful_mask (1, 3)"),
           (lambda: sub.call("derta_loss", logits, labels, mask, 4), "ValueError", "refusal_token_id=4 with V=4"),
           (lambda: sub.call("derta_loss", logits, labels.masked_fill(labels == 2, 4), mask, 3), "ValueError",
            "a label equal to V=4"))
    for call, kind, what in bad:
        expect_raises(call, kind, what=f"derta_loss with {what}")
