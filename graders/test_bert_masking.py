"""Hidden graders for ``bert_masking`` (API.md §3): the MLM corruption rule and NSP pairs.

The draw order of random numbers is free, so ``mask_tokens`` is graded by what holds for every draw
(structure: labels, special positions, untouched positions, value ranges), by statistics on large
batches (rates and uniformity against exact binomial / chi-square bounds), and by reproducibility
under a seeded ``torch.Generator`` built in the worker (``sub.factory("torch_generator", seed)``).

Every statistical check uses fixed seeds, so a submission always gets the same verdict, and states
its false-alarm probability: the chance that a correct implementation (with an arbitrary draw
order) fails it. The bounds are computed from that probability, never hard-coded.
"""
from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from graders.strategies import seeds, when_reporting
from llmlab.grading.checks import (CheckFailed, check, current_topic, diagnose, expect_equal, expect_raises,
                                  expect_tensor, expect_tuple, known_mistake)
from llmlab.grading.remote import RemoteObject
from llmlab.grading.variants import load_variants

TASK_MASK = "bert_masking.mask_tokens"
TASK_NSP = "bert_masking.make_nsp_examples"
IGNORE = -100


# ---------------------------------------------------------------------------------------------
# Exact tail bounds (no scipy: torch's lgamma / gammaincc in float64)
# ---------------------------------------------------------------------------------------------
def binomial_bounds(n: int, p: float, alpha: float) -> tuple[int, int]:
    """``(lo, hi)`` with ``P(X < lo) <= alpha/2`` and ``P(X > hi) <= alpha/2`` for ``X ~ Binomial(n, p)``."""
    if n == 0 or p <= 0.0:
        return 0, 0
    if p >= 1.0:
        return n, n
    k = torch.arange(n + 1, dtype=torch.float64)
    logpmf = (math.lgamma(n + 1) - torch.lgamma(k + 1) - torch.lgamma(n - k + 1)
              + k * math.log(p) + (n - k) * math.log1p(-p))
    pmf = torch.exp(logpmf)
    below = torch.cumsum(pmf, 0)  # P(X <= k)
    above = torch.flip(torch.cumsum(torch.flip(pmf, [0]), 0), [0])  # P(X >= k)
    lo = int(torch.nonzero(below > alpha / 2)[0])  # P(X < lo) = P(X <= lo - 1) <= alpha/2
    tail = torch.cat([above[1:], torch.zeros(1, dtype=torch.float64)])  # P(X > k)
    hi = int(torch.nonzero(tail <= alpha / 2)[0])
    return lo, hi


def chi2_pvalue(stat: float, dof: int) -> float:
    """Upper tail ``P(chi2(dof) >= stat)``."""
    return float(torch.special.gammaincc(torch.tensor(dof / 2, dtype=torch.float64),
                                         torch.tensor(stat / 2, dtype=torch.float64)))


def _rate_text(count: int, n: int, p: float, lo: int, hi: int) -> str:
    return (f"{count} of {n} ({100 * count / max(n, 1):.2f}%), expected {100 * p:.2f}% "
            f"(a correct implementation gives {lo} to {hi})")


# ---------------------------------------------------------------------------------------------
# Inputs
# ---------------------------------------------------------------------------------------------
def mlm_batch(seed: int, B: int, T: int, vocab_size: int, mask_token_id: int, special_rate: float = 0.1,
              padded: bool = True, dtype=torch.long):
    """Token ids (never equal to ``mask_token_id``) and a special-tokens mask: [CLS] at 0, random
    special tokens inside, and padding (special too) after a random length."""
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(0, vocab_size - 1, (B, T), generator=g)
    ids = ids + (ids >= mask_token_id).long()  # skip the [MASK] id
    special = (torch.rand(B, T, generator=g) < special_rate).long()
    if T:
        special[:, 0] = 1
        if padded:
            lengths = torch.randint(1, T + 1, (B,), generator=g)
            special[torch.arange(T)[None, :] >= lengths[:, None]] = 1
    return ids.to(dtype), special


def _gen(sub, seed):
    return sub.factory("torch_generator", seed)


def _mask_call(sub, ids, special, seed, *, V, mask_id, **kw):
    """Call the submission's mask_tokens with a seeded generator; check the result's form."""
    out = sub.call("mask_tokens", ids, special, mask_token_id=mask_id, vocab_size=V, generator=_gen(sub, seed), **kw)
    inputs = _mask_inputs(ids, special, seed, V, mask_id, **kw)
    expect_tuple(out, 2, what="the return value (corrupted_ids, labels)", inputs=inputs)
    corrupted, labels = out
    diag = _replay(ids, special, seed, V, mask_id, kw)
    expect_tensor(corrupted, what="corrupted_ids", shape=tuple(ids.shape), dtype=torch.long, inputs=inputs,
                  diagnose_with=lambda m: diag(m)[0])
    expect_tensor(labels, what="labels", shape=tuple(ids.shape), dtype=torch.long, inputs=inputs,
                  diagnose_with=lambda m: diag(m)[1])
    return corrupted, labels


def _mask_inputs(ids, special, seed, V, mask_id, **kw):
    big = ids.numel() > 64
    base = (dict(input_ids=f"{ids.shape[0]} rows x {ids.shape[1]} tokens", special_tokens_mask=
                 f"{int(special.sum())} special positions") if big else dict(input_ids=ids, special_tokens_mask=special))
    return {**base, "mask_token_id": mask_id, "vocab_size": V, **kw,
            "generator": f"torch.Generator().manual_seed({seed})"}


def _replay(ids, special, seed, V, mask_id, kw):
    """What a module's mask_tokens returns on the same input and seed (to name a variant)."""
    return when_reporting(lambda m: m.mask_tokens(ids.clone(), special.clone(), mask_token_id=mask_id, vocab_size=V,
                                                  generator=torch.Generator().manual_seed(seed), **kw))


def _named(replay, *names: str) -> list[str]:
    """The mistakes of the variants that reproduce the submission's output exactly (``replay()``), or else
    the named ones (chosen by the failing property)."""
    return replay() or [known_mistake(n) for n in names]


def _variants_matching(stat_fn, observed: dict, tolerance: float, make_input, ref) -> list[str]:
    """Mistakes of the variants whose rates (from a fresh seeded run) agree with ``observed``.

    ``stat_fn(corrupted, labels, ids, special) -> dict`` of rates; a variant matches when every rate is
    within ``tolerance`` (absolute) of the submission's, and it is not a variant whose rates are the
    reference's (those cannot explain wrong rates). This names a mistake whatever the draw order.
    """
    def rates_of(module):
        ids, special, kw = make_input()
        got = module.mask_tokens(ids, special, generator=torch.Generator().manual_seed(12345), **kw)
        return stat_fn(got[0], got[1], ids, special)

    close = lambda a, b: all(abs(a[k] - b[k]) <= tolerance for k in b)  # noqa: E731
    correct = rates_of(ref)
    found = []
    for variant in load_variants(current_topic.get()):
        try:
            rates = rates_of(variant.module())
        except Exception:  # noqa: BLE001 - a variant that cannot run says nothing
            continue
        if close(rates, observed) and not close(rates, correct):
            found.append(variant.mistake)
    return found


# ---------------------------------------------------------------------------------------------
# mask_tokens: form and structure (hypothesis shrinks these to small inputs)
# ---------------------------------------------------------------------------------------------
@st.composite
def mlm_cases(draw, max_B=4, max_T=10, dtypes=(torch.long,)):
    """A small batch; ``input_ids`` of one of ``dtypes`` (int32 only where the output dtype is the point, so
    a submission that keeps int32 loses the dtype check alone)."""
    B, T = draw(st.integers(1, max_B)), draw(st.integers(0, max_T))
    V = draw(st.integers(6, 40))
    mask_id = draw(st.integers(0, V - 1))
    dtype = draw(st.sampled_from(list(dtypes)))
    seed = draw(seeds)
    ids, special = mlm_batch(seed, B, T, V, mask_id, special_rate=0.2, dtype=dtype)
    if draw(st.booleans()):
        special = special.bool()
    p = draw(st.sampled_from([0.15, 0.5, 0.9]))
    return ids, special, seed, V, mask_id, p


@check(TASK_MASK, points=1,
       spec=("``(corrupted_ids, labels)``, both ``torch.long`` of shape ``(B, T)``",
             "input_ids: integer tensor ``(B, T)`` of token ids (any integer dtype"))
@given(case=mlm_cases(dtypes=(torch.long, torch.int32)))
def test_mask_shapes_and_dtypes(sub, case):
    ids, special, seed, V, mask_id, p = case
    _mask_call(sub, ids, special, seed, V=V, mask_id=mask_id, mlm_probability=p)


@check(TASK_MASK, points=3,
       spec=("the original id at selected positions with ``-100`` everywhere else",
             "Positions that are not selected are never changed",
             "are never selected"))
@given(case=mlm_cases(max_B=6, max_T=16))
def test_mask_structure_of_labels_and_corruption(sub, case):
    """Holds for every draw: labels are -100 or the original id; special positions are never selected;
    positions that were not selected are unchanged; selected positions hold [MASK], a valid id or the original."""
    ids, special, seed, V, mask_id, p = case
    kw = dict(mlm_probability=p)
    corrupted, labels = _mask_call(sub, ids, special, seed, V=V, mask_id=mask_id, **kw)
    inputs = _mask_inputs(ids, special, seed, V, mask_id, **kw)
    diag = _replay(ids, special, seed, V, mask_id, kw)
    expect_valid_corruption(corrupted, labels, ids, special, V, inputs,
                            replay=lambda: diagnose(diag, (corrupted, labels)))


def expect_valid_corruption(corrupted, labels, ids, special, V, inputs, *, replay):
    """What holds for every draw: labels are -100 or the original id; special positions are never selected;
    positions that were not selected are unchanged; selected positions hold an id in [0, V).
    ``replay()`` names the variants that reproduce the output (only run on failure)."""
    original = ids.long()
    is_special = special.bool()
    labelled = labels != IGNORE

    wrong_label = labelled & (labels != original)
    if wrong_label.any():
        idx = tuple(wrong_label.nonzero()[0].tolist())
        hint = []
        if bool((labels[wrong_label] == corrupted[wrong_label]).all()):
            hint = [known_mistake("labels_after_corruption")]
        raise CheckFailed(f"labels[{idx[0]}, {idx[1]}] is {int(labels[idx])}, but a label must be either -100 or "
                          f"the ORIGINAL id at that position ({int(original[idx])})", inputs=inputs,
                          diagnosis=replay() or hint)
    if (labelled & is_special).any():
        idx = tuple((labelled & is_special).nonzero()[0].tolist())
        both = (~labelled & ~is_special & (corrupted != original)).any()
        raise CheckFailed(f"position {list(idx)} is a special token (special_tokens_mask = 1) but has a label: "
                          f"special tokens and padding must never be selected", inputs=inputs,
                          diagnosis=replay() or ([known_mistake("labels_inverted")] if both else [
                              known_mistake("labels_everywhere") if bool(labelled.all()) else
                              known_mistake("special_tokens_maskable")]))
    changed = corrupted != original
    if (changed & ~labelled).any():
        idx = tuple((changed & ~labelled).nonzero()[0].tolist())
        raise CheckFailed(f"position {list(idx)} was changed ({int(original[idx])} -> {int(corrupted[idx])}) but its "
                          "label is -100: only selected positions (the ones with a label) may be changed",
                          inputs=inputs, diagnosis=_named(replay, "labels_inverted"))
    out_of_range = labelled & ((corrupted < 0) | (corrupted >= V))
    if out_of_range.any():
        idx = tuple(out_of_range.nonzero()[0].tolist())
        raise CheckFailed(f"position {list(idx)} became id {int(corrupted[idx])}, outside [0, vocab_size = {V})",
                          inputs=inputs, diagnosis=_named(replay, "random_ids_include_vocab_size"))


@check(TASK_MASK, points=1,
       spec=("mlm_probability: probability of selecting a non-special position, in [0, 1]",
             "``B`` or ``T`` may be 0",
             "becomes ``mask_token_id`` with probability ``mask_replace_prob``"))
def test_mask_edge_probabilities_and_sizes(sub):
    """Deterministic corners: nothing selected, everything [MASK]ed, everything kept, empty rows."""
    V, mask_id = 30, 3
    ids, special = mlm_batch(7, 5, 12, V, mask_id, special_rate=0.2)
    real = ~special.bool()
    expected_labels = torch.where(real, ids, torch.full_like(ids, IGNORE))
    cases = [
        (dict(mlm_probability=0.0), ids, torch.full_like(ids, IGNORE), "mlm_probability=0: nothing is selected"),
        (dict(mlm_probability=1.0, mask_replace_prob=1.0, random_replace_prob=0.0),
         ids.masked_fill(real, mask_id), expected_labels,
         "mlm_probability=1, mask_replace_prob=1: every non-special token becomes [MASK]"),
        (dict(mlm_probability=1.0, mask_replace_prob=0.0, random_replace_prob=0.0), ids, expected_labels,
         "mlm_probability=1, mask_replace_prob=0, random_replace_prob=0: every non-special token is selected "
         "and kept unchanged"),
    ]
    for kw, want_ids, want_labels, what in cases:
        corrupted, labels = _mask_call(sub, ids, special, 11, V=V, mask_id=mask_id, **kw)
        inputs = _mask_inputs(ids, special, 11, V, mask_id, **kw)
        diag = _replay(ids, special, 11, V, mask_id, kw)
        expect_equal(corrupted, want_ids, what=f"corrupted_ids with {what}", inputs=inputs,
                     diagnose_with=lambda m: diag(m)[0])
        expect_equal(labels, want_labels, what=f"labels with {what}", inputs=inputs,
                     diagnose_with=lambda m: diag(m)[1])
    for shape in ((3, 0), (0, 4)):  # empty rows, empty batch
        empty = torch.zeros(shape, dtype=torch.long)
        _mask_call(sub, empty, empty.clone(), 1, V=V, mask_id=mask_id)
    all_special = torch.ones(2, 6, dtype=torch.long)
    corrupted, labels = _mask_call(sub, ids[:2, :6], all_special, 2, V=V, mask_id=mask_id, mlm_probability=1.0)
    expect_equal(labels, torch.full((2, 6), IGNORE), what="labels of rows made only of special tokens "
                 "(mlm_probability=1)", inputs=_mask_inputs(ids[:2, :6], all_special, 2, V, mask_id),
                 diagnose_with=lambda m: _replay(ids[:2, :6], all_special, 2, V, mask_id,
                                                 dict(mlm_probability=1.0))(m)[1])


@check(TASK_MASK, points=1, spec="``input_ids`` and ``special_tokens_mask`` are not modified")
def test_mask_does_not_modify_inputs(sub):
    """The arguments are unchanged after the call, AND the call did its job: a well-formed, valid
    corruption with some positions selected (returning junk also leaves the inputs alone, and must not
    earn this point). Selection of none of the 100+ non-special positions at mlm_probability=0.5 has
    probability < 2^-100."""
    V, mask_id = 30, 3
    ids, special = mlm_batch(5, 6, 20, V, mask_id)
    kw = dict(mlm_probability=0.5)
    inputs = _mask_inputs(ids, special, 3, V, mask_id, **kw)
    diag = _replay(ids, special, 3, V, mask_id, kw)
    out, after, _ = sub.call_echo("mask_tokens", ids.clone(), special.clone(), mask_token_id=mask_id, vocab_size=V,
                                  generator=_gen(sub, 3), **kw)
    expect_tuple(out, 2, what="the return value (corrupted_ids, labels)", inputs=inputs)
    corrupted, labels = out
    expect_tensor(corrupted, what="corrupted_ids", shape=tuple(ids.shape), dtype=torch.long, inputs=inputs,
                  diagnose_with=lambda m: diag(m)[0])
    expect_tensor(labels, what="labels", shape=tuple(ids.shape), dtype=torch.long, inputs=inputs,
                  diagnose_with=lambda m: diag(m)[1])
    for name, before, now in (("input_ids", ids, after[0]), ("special_tokens_mask", special, after[1])):
        if not (isinstance(now, torch.Tensor) and now.shape == before.shape and torch.equal(now, before)):
            raise CheckFailed(f"mask_tokens changed its argument {name} in place", inputs=inputs,
                              diagnosis=[known_mistake("modifies_input_in_place")])
    expect_valid_corruption(corrupted, labels, ids, special, V, inputs,
                            replay=lambda: diagnose(diag, (corrupted, labels)))
    if not bool(((labels != IGNORE) & ~special.bool()).any()):
        raise CheckFailed(f"with mlm_probability=0.5 no position of {int((~special.bool()).sum())} non-special ones "
                          "was selected (every label is -100)", inputs=inputs, diagnosis=diagnose(diag, out))


@check(TASK_MASK, points=1, spec="every random number comes from it (so the same seed gives the same result)")
def test_mask_reproducible_with_a_seeded_generator(sub):
    """Same seed -> same result; another seed -> another result.

    False alarm: two independent draws on 3,000 positions agree with probability < 1e-100."""
    V, mask_id = 50, 4
    ids, special = mlm_batch(21, 30, 100, V, mask_id, special_rate=0.05, padded=False)
    first = _mask_call(sub, ids, special, 99, V=V, mask_id=mask_id)
    again = _mask_call(sub, ids, special, 99, V=V, mask_id=mask_id)
    other = _mask_call(sub, ids, special, 100, V=V, mask_id=mask_id)
    inputs = _mask_inputs(ids, special, 99, V, mask_id)
    if not (torch.equal(first[0], again[0]) and torch.equal(first[1], again[1])):
        raise CheckFailed("two calls with generators seeded alike (torch.Generator().manual_seed(99)) gave different "
                          "results: every random number must come from `generator`", inputs=inputs,
                          diagnosis=[known_mistake("ignores_generator")])
    if torch.equal(first[1], other[1]):
        raise CheckFailed("generators with different seeds (99 and 100) gave the same selection: the selection must "
                          "be random (drawn from `generator`)", inputs=inputs)


@check(TASK_MASK, points=1,
       spec="ValueError: if ``input_ids`` is not 2-dimensional, the two masks' shapes differ, a probability is "
            "outside [0, 1], ``mask_replace_prob + random_replace_prob > 1``, or ``vocab_size < 1``")
def test_mask_rejects_bad_arguments(sub):
    V, mask_id = 30, 3
    ids, special = mlm_batch(1, 2, 5, V, mask_id)
    # only a working function earns this point (one that always raises would pass the rest): valid
    # arguments give the exact, deterministic result of "select everything, always [MASK]"
    kw = dict(mlm_probability=1.0, mask_replace_prob=1.0, random_replace_prob=0.0)
    corrupted, labels = _mask_call(sub, ids, special, 0, V=V, mask_id=mask_id, **kw)
    real = ~special.bool()
    inputs = _mask_inputs(ids, special, 0, V, mask_id, **kw)
    diag = _replay(ids, special, 0, V, mask_id, kw)
    expect_equal(corrupted, ids.masked_fill(real, mask_id), what="corrupted_ids with mlm_probability=1, "
                 "mask_replace_prob=1", inputs=inputs, diagnose_with=lambda m: diag(m)[0])
    expect_equal(labels, torch.where(real, ids, torch.full_like(ids, IGNORE)), what="labels with "
                 "mlm_probability=1", inputs=inputs, diagnose_with=lambda m: diag(m)[1])

    def call(i=ids, s=special, **kw):
        return lambda: sub.call("mask_tokens", i, s, mask_token_id=mask_id, vocab_size=V, **kw)

    def bad_probability(what, **kw):
        try:
            expect_raises(call(**kw, generator=_gen(sub, 0)), "ValueError", what=what,
                          diagnose_with=lambda m: _replay(ids, special, 0, V, mask_id, kw)(m))
        except CheckFailed as failed:
            if not failed.diagnosis:
                failed = CheckFailed(failed.problem, inputs=failed.inputs,
                                     diagnosis=[known_mistake("no_probability_validation")])
            raise failed from None

    bad_probability("mlm_probability=1.5", mlm_probability=1.5)
    bad_probability("mlm_probability=-0.1", mlm_probability=-0.1)
    bad_probability("mask_replace_prob=1.2", mask_replace_prob=1.2, random_replace_prob=0.0)
    bad_probability("random_replace_prob=-0.1", random_replace_prob=-0.1)
    bad_probability("mask_replace_prob=0.9 with random_replace_prob=0.2 (they add up to more than 1)",
                    mask_replace_prob=0.9, random_replace_prob=0.2)
    expect_raises(call(s=special[:, :4]), "ValueError", what="a special_tokens_mask of shape (2, 4) for input_ids of "
                  "shape (2, 5)")
    expect_raises(call(i=ids[0], s=special[0]), "ValueError", what="1-dimensional input_ids of shape (5,) (it must "
                  "be a batch (B, T))")


# ---------------------------------------------------------------------------------------------
# mask_tokens: statistics (fixed seeds, exact bounds, stated false-alarm probabilities)
# ---------------------------------------------------------------------------------------------
SPLITS = [  # (mlm_probability, mask_replace_prob, random_replace_prob)
    (0.15, 0.8, 0.1),  # BERT's defaults
    (0.4, 0.5, 0.3),
    (0.3, 0.2, 0.6),
]
STAT_V, STAT_MASK = 50, 4


def _categories(corrupted, labels, ids, special):
    """Counts: non-special positions, selected, and among the selected: observed [MASK], observed
    unchanged, observed another id."""
    real = ~special.bool()
    sel = (labels != IGNORE) & real
    mask = sel & (corrupted == STAT_MASK)
    same = sel & (corrupted == ids.long())
    return dict(real=int(real.sum()), selected=int(sel.sum()), mask=int(mask.sum()), same=int(same.sum()),
                other=int((sel & ~mask & ~same).sum()))


def _rates(corrupted, labels, ids, special):
    c = _categories(corrupted, labels, ids, special)
    n = max(c["selected"], 1)
    return dict(selected=c["selected"] / max(c["real"], 1), mask=c["mask"] / n, same=c["same"] / n,
                other=c["other"] / n)


@check(TASK_MASK, points=3,
       spec=("is *selected* independently with probability ``mlm_probability``",
             "becomes ``mask_token_id`` with probability ``mask_replace_prob``",
             "with probability ``random_replace_prob``",
             "keeps its original id otherwise"))
def test_mask_selection_rate_and_replacement_split(sub, ref):
    """On 400 x 250 tokens for each of three settings: the selection rate among non-special tokens, and
    among the selected the share that shows [MASK], the original id, or another id.

    With V ids and originals never equal to [MASK], a selected token shows [MASK] with probability
    mask_p + random_p / V, its original with 1 - mask_p - random_p + random_p / V, and another id
    with random_p * (V - 2) / V. Each of the 4 counts per setting is tested against exact binomial
    bounds at 1e-7, so a correct implementation fails this check with probability < 12 x 1e-7.
    """
    alpha = 1e-7
    for n_setting, (p, pm, pr) in enumerate(SPLITS):
        kw = dict(mlm_probability=p, mask_replace_prob=pm, random_replace_prob=pr)
        ids, special = mlm_batch(1000 + n_setting, 400, 250, STAT_V, STAT_MASK, special_rate=0.1)
        corrupted, labels = _mask_call(sub, ids, special, 2000 + n_setting, V=STAT_V, mask_id=STAT_MASK, **kw)
        inputs = _mask_inputs(ids, special, 2000 + n_setting, STAT_V, STAT_MASK, **kw)
        c = _categories(corrupted, labels, ids, special)
        expected = [
            ("selected", "of the non-special positions were selected", c["real"], p),
            ("mask", "of the selected positions show [MASK]", c["selected"], pm + pr / STAT_V),
            ("same", "of the selected positions keep their original id", c["selected"],
             1 - pm - pr + pr / STAT_V),
            ("other", "of the selected positions became another (random) id", c["selected"],
             pr * (STAT_V - 2) / STAT_V),
        ]
        for key, words, n, q in expected:
            lo, hi = binomial_bounds(n, q, alpha)
            if not lo <= c[key] <= hi:
                observed = _rates(corrupted, labels, ids, special)

                def again(p=p, pm=pm, pr=pr, n_setting=n_setting):
                    i, s = mlm_batch(1000 + n_setting, 400, 250, STAT_V, STAT_MASK, special_rate=0.1)
                    return i, s, dict(mask_token_id=STAT_MASK, vocab_size=STAT_V, mlm_probability=p,
                                      mask_replace_prob=pm, random_replace_prob=pr)

                named = _variants_matching(_rates, observed, 0.02, again, ref)
                raise CheckFailed(f"with mlm_probability={p}, mask_replace_prob={pm}, random_replace_prob={pr}: "
                                  f"{_rate_text(c[key], n, q, lo, hi)} {words}", inputs=inputs, diagnosis=named)


@check(TASK_MASK, points=2,
       spec="becomes a token drawn uniformly from ``[0, vocab_size)`` (every id, special ones included, may be "
            "drawn; the draw may equal the original id)")
def test_mask_random_tokens_are_uniform_over_the_whole_vocabulary(sub):
    """mlm_probability=1, mask_replace_prob=0, random_replace_prob=1: every non-special token is replaced
    by a uniform draw from [0, vocab_size). 40,000 draws over 13 ids.

    Each id's count is tested against exact binomial bounds at 1e-7 / 13, and the whole histogram with
    a chi-square test (12 degrees of freedom) at 1e-7: false alarm < 2e-7.
    """
    V, mask_id = 13, 5
    kw = dict(mlm_probability=1.0, mask_replace_prob=0.0, random_replace_prob=1.0)
    ids, special = mlm_batch(77, 200, 220, V, mask_id, special_rate=0.05, padded=False)
    corrupted, labels = _mask_call(sub, ids, special, 78, V=V, mask_id=mask_id, **kw)
    inputs = _mask_inputs(ids, special, 78, V, mask_id, **kw)
    diag = _replay(ids, special, 78, V, mask_id, kw)
    replay = lambda: diagnose(lambda m: diag(m)[0], corrupted)  # noqa: E731
    drawn = corrupted[~special.bool()]
    n = drawn.numel()
    bad = drawn[(drawn < 0) | (drawn >= V)]
    if bad.numel():
        raise CheckFailed(f"a random token is {int(bad[0])}, outside [0, vocab_size = {V})", inputs=inputs,
                          diagnosis=_named(replay, *(["random_ids_include_vocab_size"] if int(bad.max()) == V else [])))
    counts = torch.bincount(drawn, minlength=V)
    lo, hi = binomial_bounds(n, 1 / V, 1e-7 / V)
    for token in range(V):
        if not lo <= int(counts[token]) <= hi:
            named = _named(replay, *(["random_ids_missing_last"] if token == V - 1 and counts[token] == 0
                                     else []))
            raise CheckFailed(f"id {token} was drawn {int(counts[token])} times in {n} random replacements; a uniform "
                              f"draw from [0, {V}) gives {lo} to {hi}. Counts per id: {counts.tolist()}",
                              inputs=inputs, diagnosis=named)
    expected = n / V
    stat = float(((counts.double() - expected) ** 2 / expected).sum())
    if chi2_pvalue(stat, V - 1) < 1e-7:
        raise CheckFailed(f"the random tokens are not uniform over [0, {V}) (chi-square {stat:.1f} with {V - 1} "
                          f"degrees of freedom). Counts per id: {counts.tolist()}", inputs=inputs, diagnosis=replay())


@check(TASK_MASK, points=2, spec="is *selected* independently with probability ``mlm_probability``")
def test_mask_selection_is_independent_per_position(sub):
    """3,000 rows of 20 non-special tokens, mlm_probability=0.15: the number selected per row must follow
    Binomial(20, 0.15), as independent coin flips give (not a fixed count per row).

    The number of rows with k selected tokens is Binomial(3000, P(k)) for each k = 0..20; each is tested
    at 1e-7 / 21: false alarm < 1e-7.
    """
    T, rows, p = 20, 3000, 0.15
    V, mask_id = 50, 4
    ids, _ = mlm_batch(31, rows, T + 2, V, mask_id, padded=False)
    special = torch.zeros(rows, T + 2, dtype=torch.long)
    special[:, 0] = special[:, -1] = 1  # [CLS] ... [SEP]
    corrupted, labels = _mask_call(sub, ids, special, 32, V=V, mask_id=mask_id, mlm_probability=p)
    inputs = _mask_inputs(ids, special, 32, V, mask_id, mlm_probability=p)
    per_row = ((labels != IGNORE) & ~special.bool()).sum(dim=1)
    hist = torch.bincount(per_row, minlength=T + 1)
    k = torch.arange(T + 1, dtype=torch.float64)
    pmf = torch.exp(math.lgamma(T + 1) - torch.lgamma(k + 1) - torch.lgamma(T - k + 1)
                    + k * math.log(p) + (T - k) * math.log1p(-p))
    for j in range(T + 1):
        lo, hi = binomial_bounds(rows, float(pmf[j]), 1e-7 / (T + 1))
        if not lo <= int(hist[j]) <= hi:
            common = int(hist.max()) / rows
            named = [known_mistake("exact_count_per_row")] if common > 0.9 else []
            raise CheckFailed(f"{int(hist[j])} of {rows} rows have exactly {j} selected tokens; independent selection "
                              f"with probability {p} gives {lo} to {hi}. Rows per count: {hist.tolist()}",
                              inputs=inputs, diagnosis=named)


@check(TASK_MASK, points=1,
       spec=("positions with ``special_tokens_mask`` 1 (``[CLS]``, ``[SEP]``, ``[PAD]``, ...) are never selected",
             "special_tokens_mask: tensor ``(B, T)`` of 0/1 (or bool)"))
def test_mask_never_selects_special_or_padding_tokens(sub):
    """Half the positions special (padding included), mlm_probability=0.9, with 0/1 and with bool masks."""
    V, mask_id = 40, 2
    ids, special = mlm_batch(55, 100, 60, V, mask_id, special_rate=0.5)
    for given_mask in (special, special.bool()):
        corrupted, labels = _mask_call(sub, ids, given_mask, 56, V=V, mask_id=mask_id, mlm_probability=0.9)
        inputs = _mask_inputs(ids, given_mask, 56, V, mask_id, mlm_probability=0.9)
        s = special.bool()
        touched = s & ((labels != IGNORE) | (corrupted != ids))
        if touched.any():
            idx = touched.nonzero()[0].tolist()
            raise CheckFailed(f"special position {idx} (special_tokens_mask given as {given_mask.dtype}) was selected "
                              "or changed", inputs=inputs, diagnosis=[known_mistake("special_tokens_maskable")])
        if int(((labels != IGNORE) & ~s).sum()) == 0:
            raise CheckFailed("with mlm_probability=0.9 no non-special position was selected", inputs=inputs)


# ---------------------------------------------------------------------------------------------
# make_nsp_examples
# ---------------------------------------------------------------------------------------------
def corpus(sizes: list[int]) -> list[list[str]]:
    """Documents of unique sentences ``"d{i} s{j}."``, so each sentence names its document."""
    return [[f"d{i} s{j}." for j in range(n)] for i, n in enumerate(sizes)]


def _doc_of(sentence: str) -> int:
    return int(sentence.split()[0][1:])


def _nsp_call(sub, docs, seed):
    out = sub.call("make_nsp_examples", docs, rng=sub.factory("python_random", seed))
    inputs = dict(documents=docs if sum(map(len, docs)) <= 40 else f"{len(docs)} documents, "
                  f"{sum(map(len, docs))} sentences", rng=f"random.Random({seed})")
    if not isinstance(out, list) or isinstance(out, RemoteObject):
        raise CheckFailed(f"make_nsp_examples should return a list, got {type(out).__name__}", inputs=inputs)
    for item in out:
        ok = isinstance(item, tuple) and len(item) == 3 and isinstance(item[0], str) and isinstance(item[1], str) \
            and type(item[2]) is int
        if not ok:
            raise CheckFailed(f"each example should be a tuple (sentence_a: str, sentence_b: str, label: int), got "
                              f"{item!r}", inputs=inputs)
    return out, inputs


def _nsp_replay(docs, seed):
    import random

    return when_reporting(lambda m: m.make_nsp_examples(docs, rng=random.Random(seed)))


@check(TASK_NSP, points=3,
       spec=("Documents are visited in order, and within each document the adjacent pairs ``(a, b)`` in order",
             "Labels follow ``BertForPreTraining``'s ``next_sentence_label``: 0 = IsNext, 1 = NotNext",
             "A document with fewer than two sentences contributes no pair"))
@given(sizes=st.lists(st.integers(1, 6), min_size=2, max_size=5), seed=seeds)
def test_nsp_examples_follow_the_documents(sub, sizes, seed):
    expect_valid_nsp(sub, corpus(sizes), seed)


def expect_valid_nsp(sub, docs, seed):
    """One example per adjacent pair, in order, each a true IsNext or a NotNext from another document."""
    out, inputs = _nsp_call(sub, docs, seed)
    replay = lambda: diagnose(_nsp_replay(docs, seed), out)  # noqa: E731
    pairs = [(doc[i], doc[i + 1]) for doc in docs for i in range(len(doc) - 1)]
    if len(out) != len(pairs):
        raise CheckFailed(f"{len(out)} examples for {len(pairs)} pairs of adjacent sentences: expected one example "
                          "per pair", inputs=inputs,
                          diagnosis=_named(replay, *(["nsp_both_per_pair"] if len(out) == 2 * len(pairs) else [])))
    for (a, b, label), (first, following) in zip(out, pairs):
        if a != first:
            raise CheckFailed(f"an example starts with {a!r} where {first!r} was expected: one example per adjacent "
                              "pair, documents in order and pairs in order", inputs=inputs, diagnosis=replay())
        if label not in (0, 1):
            raise CheckFailed(f"label {label} for ({a!r}, {b!r}): labels are 0 (IsNext) or 1 (NotNext)", inputs=inputs)
        if label == 0 and b != following:
            swapped = _doc_of(b) != _doc_of(a)
            raise CheckFailed(f"({a!r}, {b!r}) has label 0 (IsNext), but the sentence after {a!r} is {following!r}",
                              inputs=inputs, diagnosis=_named(replay, *(["nsp_labels_swapped"] if swapped else [])))
        if label == 1 and _doc_of(b) == _doc_of(a):
            raise CheckFailed(f"({a!r}, {b!r}) has label 1 (NotNext), but {b!r} comes from the same document as "
                              f"{a!r}", inputs=inputs,
                              diagnosis=_named(replay, *(["nsp_labels_swapped"] if b == following else
                                                         ["notnext_same_document"])))
        if label == 1 and not any(b in doc for doc in docs):
            raise CheckFailed(f"({a!r}, {b!r}): {b!r} is not a sentence of the documents", inputs=inputs)


@check(TASK_NSP, points=2,
       spec=("with probability 1/2 each",
             "``c`` is a sentence drawn at random from a **different** document"))
def test_nsp_half_notnext_drawn_at_random_from_other_documents(sub):
    """10 documents of 120 sentences (1,190 pairs).

    * NotNext share: Binomial(1190, 1/2), exact bounds at 1e-7.
    * NotNext sentences of document 0 (about 60, from 9 other documents of 120 sentences): with any
      uniform choice of document or of sentence, they come from at least 3 documents and at least
      20 distinct sentences, except with probability < 36 (2/9)^40 + C(1080, 19) (19/1080)^40 < 1e-9
      (union bounds, for at least 40 NotNext pairs, itself certain except with probability < 1e-3).
    """
    docs = corpus([120] * 10)
    out, inputs = _nsp_call(sub, docs, 4242)
    replay = lambda: diagnose(_nsp_replay(docs, 4242), out)  # noqa: E731
    n = len(out)
    expected_n = sum(len(d) - 1 for d in docs)
    if n != expected_n:
        raise CheckFailed(f"{n} examples for {expected_n} pairs of adjacent sentences", inputs=inputs,
                          diagnosis=_named(replay, *(["nsp_both_per_pair"] if n == 2 * expected_n else [])))
    not_next = [(a, b) for a, b, label in out if label == 1]
    lo, hi = binomial_bounds(n, 0.5, 1e-7)
    if not lo <= len(not_next) <= hi:
        raise CheckFailed(f"NotNext examples: {_rate_text(len(not_next), n, 0.5, lo, hi)}", inputs=inputs,
                          diagnosis=replay())
    own = [(a, b) for a, b in not_next if _doc_of(a) == _doc_of(b)]
    if own:
        raise CheckFailed(f"{len(own)} NotNext examples take sentence b from the same document as sentence a, e.g. "
                          f"{own[0]}", inputs=inputs, diagnosis=_named(replay, "notnext_same_document"))
    from_doc0 = [b for a, b in not_next if _doc_of(a) == 0]
    sources, distinct = {_doc_of(b) for b in from_doc0}, set(from_doc0)
    if len(from_doc0) >= 40 and (len(sources) < 3 or len(distinct) < 20):
        raise CheckFailed(f"the {len(from_doc0)} NotNext sentences paired with document 0 are {len(distinct)} distinct "
                          f"sentences from {len(sources)} documents: they must be drawn at random from the other "
                          "documents' sentences", inputs=inputs,
                          diagnosis=_named(replay, *(["notnext_first_sentence"] if len(distinct) < 20 else [])))


@check(TASK_NSP, points=1, spec="every random choice comes from it, so the same seed gives the same examples")
def test_nsp_reproducible_with_rng(sub):
    """Same seed -> same examples; the other seed -> other examples (false alarm: two independent runs
    over 95 pairs agree with probability < 2^-95)."""
    docs = corpus([20, 30, 25, 24])
    first, inputs = _nsp_call(sub, docs, 5)
    again, _ = _nsp_call(sub, docs, 5)
    other, _ = _nsp_call(sub, docs, 6)
    if first != again:
        raise CheckFailed("two calls with random.Random(5) gave different examples: every random choice must come "
                          "from `rng`", inputs=inputs, diagnosis=[known_mistake("nsp_global_random")])
    if first == other:
        raise CheckFailed("random.Random(5) and random.Random(6) gave the same examples: the choices must be random",
                          inputs=inputs)


@check(TASK_NSP, points=1, spec="ValueError: if fewer than two documents have at least one sentence")
def test_nsp_needs_two_documents(sub):
    expect_valid_nsp(sub, corpus([4, 3, 2]), 17)  # only a working function earns this point
    for docs in ([["s0.", "s1.", "s2.", "s3.", "s4.", "s5."]], []):
        for seed in (0, 1, 2):
            expect_raises(lambda: sub.call("make_nsp_examples", docs, rng=sub.factory("python_random", seed)),
                          "ValueError", what=f"make_nsp_examples({docs!r}) (NotNext needs a second document)",
                          diagnose_with=_nsp_replay(docs, seed))
    out, inputs = _nsp_call(sub, [["only one sentence."], ["another one."]], 0)
    expect_equal(out, [], what="the examples of two one-sentence documents (no adjacent pair)", inputs=inputs)
