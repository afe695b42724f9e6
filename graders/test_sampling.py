"""Hidden graders for ``sampling`` (API.md §4): logits warpers, sampling and generation.

References are transformers' own: ``TemperatureLogitsWarper``, ``TopKLogitsWarper``,
``TopPLogitsWarper``, ``MinPLogitsWarper``, ``RepetitionPenaltyLogitsProcessor`` (called directly on
the same logits), and ``model.generate(do_sample=False)`` of tiny random Llamas (left-padded batches,
EOS, KV cache on and off).

* Filters are compared **exactly** (kept logits unchanged, removed ones ``-inf``) on hypothesis-drawn
  logits: continuous, integer-valued (many ties), with ``-inf`` entries, ``k >= V``, ``p`` in {0, 1},
  ``min_tokens_to_keep > 1``. Cases whose answer depends on float rounding or on the (unspecified)
  order of tied tokens are not drawn: a cumulative probability within 1e-5 of ``p``, a probability
  ratio within 1e-5 of ``min_p``, or tied logits on both sides of the cut.
* Sampling is checked statistically: fixed seeds (the draws are deterministic, so is the verdict),
  a chi-square goodness-of-fit test against the softmax of the filtered logits, each with a
  false-alarm probability ALPHA = 1e-6 (a correct sampler that draws in any other order fails one
  such test with probability <= 1e-6; all of them together <= 1e-5), and drawing a removed token
  fails at once.
* ``generate`` runs on a model that records its calls (``hf_llama_traced``): the cached path must
  feed the prompt once and then one token per step on a growing cache. No clock is involved; the
  speed-up itself is measured in ``benchmarks/sampling_generate_speed.py``.
"""
from __future__ import annotations

import torch
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from transformers.generation.logits_process import (MinPLogitsWarper, RepetitionPenaltyLogitsProcessor,
                                                    TemperatureLogitsWarper, TopKLogitsWarper, TopPLogitsWarper)

from graders.strategies import padded_attention_masks, randn, seeds
from graders.test_decoder_lm import _later, hf_logits, hf_model, llama_configs, llama_state, memo
from llmlab.grading.checks import (CheckFailed, check, diagnosing, expect_close, expect_equal, expect_raises,
                                  expect_tensor, greedy_tie_hint, known_mistake)

T_TEMP = "sampling.apply_temperature"
T_TOPK = "sampling.top_k_filter"
T_TOPP = "sampling.top_p_filter"
T_MINP = "sampling.min_p_filter"
T_REP = "sampling.apply_repetition_penalty"
T_SAMPLE = "sampling.sample_next_token"
T_GEN = "sampling.generate"
ALPHA = 1e-6  # false-alarm probability of each statistical test (see the module docstring)
GENERATE_EXAMPLES = 5  # each generate example runs a model loop in the worker and transformers' generate here
CALL_PATTERN_EXAMPLES = 3  # the call pattern of the loop (cache or not) shows on any input
N_DRAWS = 4000
INF = float("inf")


# ---------------------------------------------------------------------------------------------
# Logits
# ---------------------------------------------------------------------------------------------
@st.composite
def logits_batches(draw, max_batch: int = 3, max_vocab: int = 10, dtypes=(torch.float32, torch.float64)):
    """(B, V) logits: continuous, integer-valued (ties) or with -inf entries; each row keeps a finite entry."""
    B, V = draw(st.integers(1, max_batch)), draw(st.integers(1, max_vocab))
    seed = draw(seeds)
    kind = draw(st.sampled_from(["normal", "ties", "with_inf"]))
    g = torch.Generator().manual_seed(seed)
    if kind == "ties":
        x = torch.randint(-2, 3, (B, V), generator=g).double()
    else:
        x = torch.randn(B, V, generator=g, dtype=torch.float64) * draw(st.sampled_from([2.0, 0.5, 6.0]))
    if kind == "with_inf":
        gone = torch.rand(B, V, generator=g) < 0.4
        gone[torch.arange(B), torch.randint(0, V, (B,), generator=g)] = False
        x = x.masked_fill(gone, -INF)
    return x.to(draw(st.sampled_from(dtypes)))


def _sorted_rows(logits):
    """Per row: (finite logits sorted descending, their float64 probabilities in that order)."""
    for row in logits.double():
        finite = row[torch.isfinite(row)].sort(descending=True).values
        yield finite, finite.softmax(-1)


def _top_p_ambiguous(logits, p: float, keep_min: int) -> bool:
    """True when float rounding or the order of tied tokens decides what top-p keeps."""
    for values, probs in _sorted_rows(logits):
        n = len(values)
        cum = probs.cumsum(0)
        if (cum[:n - 1] - p).abs().lt(1e-5).any():
            return True
        k = min(n, max(int((cum < p).sum()) + 1, keep_min))
        if k < n and values[k - 1] == values[k]:
            return True
    return False


def _min_p_ambiguous(logits, min_p: float, keep_min: int) -> bool:
    if min_p == 0:  # nothing is below a threshold of 0
        return False
    for values, probs in _sorted_rows(logits):
        ratio = probs / probs[0]
        near = (ratio - min_p).abs().lt(1e-5) & (ratio != 1)  # the maximum (and its ties) always stays
        if near.any():
            return True
        m = keep_min
        if m < len(values) and values[m - 1] == values[m] and ratio[m] < min_p:
            return True
    return False


def _unchanged(sub_after, before: dict, what: str, inputs: dict, variant: str | None = None):
    """The arguments as the submission left them equal the originals (no in-place change)."""
    for name, now in sub_after.items():
        old = before[name]
        if not (isinstance(now, torch.Tensor) and now.shape == old.shape and torch.equal(now, old)):
            raise CheckFailed(f"{what} changed its input {name} in place: return a new tensor", inputs=inputs,
                              diagnosis=[known_mistake(variant)] if variant else [])


# ---------------------------------------------------------------------------------------------
# apply_temperature
# ---------------------------------------------------------------------------------------------
@check(T_TEMP, points=1, spec=("``logits / temperature``, a new ``(B, V)`` tensor of the same dtype"))
@given(logits=logits_batches(), t=st.floats(0.05, 5.0))
def test_temperature_matches_transformers(sub, logits, t):
    with diagnosing(lambda m: m.apply_temperature(logits, t)):
        out, after, _ = sub.call_echo("apply_temperature", logits, t)
    inputs = dict(logits=logits, temperature=t)
    expect_close(out, TemperatureLogitsWarper(float(t))(None, logits), what="apply_temperature(logits, t) (compared "
                 "with transformers' TemperatureLogitsWarper)", atol=0, rtol=1e-6, inputs=inputs,
                 diagnose_with=lambda m: m.apply_temperature(logits, t))
    _unchanged({"logits": after[0]}, {"logits": logits}, "apply_temperature", inputs)


@check(T_TEMP, points=1, spec=("ValueError: if ``temperature <= 0``", "temperature: a number ``> 0`` (an int is fine)"))
def test_temperature_rejects_non_positive(sub):
    logits = randn(0, 2, 5)
    # a valid call first (an int temperature is fine), with the right answer: only a working function earns this
    expect_close(sub.call("apply_temperature", logits, 2), logits / 2, what="apply_temperature(logits, 2)", atol=0,
                 rtol=1e-6, inputs=dict(logits=logits, temperature=2),
                 diagnose_with=lambda m: m.apply_temperature(logits, 2))
    for t in (0.0, -1.0):
        expect_raises(lambda: sub.call("apply_temperature", logits, t), "ValueError",
                      what=f"apply_temperature(logits, {t})")


# ---------------------------------------------------------------------------------------------
# top_k_filter
# ---------------------------------------------------------------------------------------------
@check(T_TOPK, points=2,
       spec=("transformers' ``TopKLogitsWarper``",
             "``k >= V`` keeps everything",
             "kept entries unchanged, removed entries ``-inf``"))
@given(logits=logits_batches(), data=st.data())
def test_top_k_matches_transformers(sub, logits, data):
    k = data.draw(st.integers(1, logits.shape[-1] + 3), label="k")
    with diagnosing(lambda m: m.top_k_filter(logits, k)):
        out, after, _ = sub.call_echo("top_k_filter", logits, k)
    inputs = dict(logits=logits, k=k)
    expect_equal(out, TopKLogitsWarper(k)(None, logits), what=f"top_k_filter(logits, k={k}) (compared with "
                 "transformers' TopKLogitsWarper)", inputs=inputs, diagnose_with=lambda m: m.top_k_filter(logits, k))
    _unchanged({"logits": after[0]}, {"logits": logits}, "top_k_filter", inputs)


@check(T_TOPK, points=1, spec="ties at the ``k``-th value are all kept (more than ``k`` tokens can survive)")
@given(seed=seeds, extra=st.integers(0, 3))
def test_top_k_keeps_every_tie_at_the_kth_value(sub, seed, extra):
    """Values tied with the k-th largest all stay (a threshold, not k indices)."""
    g = torch.Generator().manual_seed(seed)
    ties = 2 + extra
    logits = torch.cat([torch.tensor([[3.0]]), torch.full((1, ties), 1.0), -1 - torch.rand(1, 3, generator=g)], 1)
    logits = logits[:, torch.randperm(logits.shape[1], generator=g)]
    out = sub.call("top_k_filter", logits, 2)
    expect_equal(out, TopKLogitsWarper(2)(None, logits), what=f"top_k_filter(logits, k=2) where {ties} logits tie "
                 "for the 2nd largest value", inputs=dict(logits=logits, k=2),
                 diagnose_with=lambda m: m.top_k_filter(logits, 2))


@check(T_TOPK, points=1, spec=("ValueError: if ``k < 1``", "``k >= V`` keeps everything"))
def test_top_k_rejects_k_below_one(sub):
    logits = randn(0, 2, 5)
    # a valid call first, with the right answer: only a working function earns this point
    for k in (2, 7):  # k > V keeps everything
        expect_equal(sub.call("top_k_filter", logits, k), TopKLogitsWarper(k)(None, logits),
                     what=f"top_k_filter(logits, {k})", inputs=dict(logits=logits, k=k),
                     diagnose_with=lambda m: m.top_k_filter(logits, k))
    for k in (0, -2):
        expect_raises(lambda: sub.call("top_k_filter", logits, k), "ValueError", what=f"top_k_filter(logits, {k})")


# ---------------------------------------------------------------------------------------------
# top_p_filter
# ---------------------------------------------------------------------------------------------
p_values = st.one_of(st.sampled_from([0.0, 1.0]), st.floats(0.0, 1.0))


@check(T_TOPP, points=3,
       spec=("transformers' ``TopPLogitsWarper``, exactly",
             "but always keep the ``min_tokens_to_keep`` most likely tokens",
             "kept entries unchanged, removed entries ``-inf``"))
@given(logits=logits_batches(), p=p_values, keep_min=st.integers(1, 3))
def test_top_p_matches_transformers(sub, logits, p, keep_min):
    assume(not _top_p_ambiguous(logits, p, keep_min))
    with diagnosing(lambda m: m.top_p_filter(logits, p, min_tokens_to_keep=keep_min)):
        out, after, _ = sub.call_echo("top_p_filter", logits, p, min_tokens_to_keep=keep_min)
    inputs = dict(logits=logits, p=p, min_tokens_to_keep=keep_min)
    expect_equal(out, TopPLogitsWarper(p, min_tokens_to_keep=keep_min)(None, logits),
                 what=f"top_p_filter(logits, p={p}, min_tokens_to_keep={keep_min}) (compared with transformers' "
                 "TopPLogitsWarper)", inputs=inputs,
                 diagnose_with=lambda m: m.top_p_filter(logits, p, min_tokens_to_keep=keep_min))
    _unchanged({"logits": after[0]}, {"logits": logits}, "top_p_filter", inputs)


@check(T_TOPP, points=1, spec="The token that makes the kept mass cross ``p`` is kept")
@given(seed=seeds, crossing=st.integers(1, 3))
def test_top_p_keeps_the_token_that_crosses_p(sub, seed, crossing):
    """p sits strictly inside the mass of the `crossing`-th most likely token: that token is kept."""
    g = torch.Generator().manual_seed(seed)
    probs = torch.rand(1, 5, generator=g, dtype=torch.float64) + 0.2
    probs = (probs / probs.sum()).sort(descending=True).values
    cum = probs.cumsum(-1)
    p = float(cum[0, crossing - 1] - 0.4 * probs[0, crossing - 1])  # between the previous and this cumulative
    logits = probs.log().float()
    out = sub.call("top_p_filter", logits, p)
    expect_equal(out, TopPLogitsWarper(p)(None, logits), what=f"top_p_filter(logits, p={p:.4f}) (the smallest set "
                 f"whose mass reaches p has {crossing} token(s))", inputs=dict(logits=logits, p=p),
                 diagnose_with=lambda m: m.top_p_filter(logits, p))


@check(T_TOPP, points=1, spec="A set whose mass is exactly ``p`` is complete: no further token is added")
def test_top_p_exact_mass_boundaries(sub):
    """The boundary examples of transformers' TopPLogitsWarper: a kept mass of exactly p needs no further token.

    The probabilities are not sorted in the input; the expected result is transformers' on the same float32
    logits (the classic descending-cumsum code keeps one token more at p = 0.5 and p = 0.8)."""
    logits = torch.tensor([[0.15, 0.5, 0.05, 0.3]]).log()
    for p in (0.5, 0.8, 0.81, 0.95, 0.96):
        with diagnosing(lambda m, p=p: m.top_p_filter(logits, p)):
            out = sub.call("top_p_filter", logits, p)
        expect_equal(out, TopPLogitsWarper(p)(None, logits), what=f"top_p_filter(logits, p={p}) for probabilities "
                     "[.15, .5, .05, .3] (compared with transformers' TopPLogitsWarper)",
                     inputs=dict(logits=logits, p=p), diagnose_with=lambda m, p=p: m.top_p_filter(logits, p))


@check(T_TOPP, points=1, spec="ValueError: if ``p`` is outside ``[0, 1]`` or ``min_tokens_to_keep < 1``")
def test_top_p_rejects_bad_arguments(sub):
    logits = 2 * randn(0, 2, 5)
    # a valid call first, with the right answer: only a working function earns this point
    expect_equal(sub.call("top_p_filter", logits, 0.6), TopPLogitsWarper(0.6)(None, logits),
                 what="top_p_filter(logits, 0.6)", inputs=dict(logits=logits, p=0.6),
                 diagnose_with=lambda m: m.top_p_filter(logits, 0.6))
    for p in (-0.1, 1.5):
        expect_raises(lambda: sub.call("top_p_filter", logits, p), "ValueError", what=f"top_p_filter(logits, p={p})")
    expect_raises(lambda: sub.call("top_p_filter", logits, 0.5, min_tokens_to_keep=0), "ValueError",
                  what="top_p_filter(logits, 0.5, min_tokens_to_keep=0)")


# ---------------------------------------------------------------------------------------------
# min_p_filter
# ---------------------------------------------------------------------------------------------
@check(T_MINP, points=2,
       spec=("transformers' ``MinPLogitsWarper``",
             "(strictly smaller: a token exactly at the threshold stays)",
             "The threshold is on probabilities, not on logits"))
@given(logits=logits_batches(), min_p=p_values, keep_min=st.integers(1, 3))
def test_min_p_matches_transformers(sub, logits, min_p, keep_min):
    assume(not _min_p_ambiguous(logits, min_p, keep_min))
    with diagnosing(lambda m: m.min_p_filter(logits, min_p, min_tokens_to_keep=keep_min)):
        out, after, _ = sub.call_echo("min_p_filter", logits, min_p, min_tokens_to_keep=keep_min)
    inputs = dict(logits=logits, min_p=min_p, min_tokens_to_keep=keep_min)
    expect_equal(out, MinPLogitsWarper(min_p, min_tokens_to_keep=keep_min)(None, logits),
                 what=f"min_p_filter(logits, min_p={min_p}, min_tokens_to_keep={keep_min}) (compared with "
                 "transformers' MinPLogitsWarper)", inputs=inputs,
                 diagnose_with=lambda m: m.min_p_filter(logits, min_p, min_tokens_to_keep=keep_min))
    _unchanged({"logits": after[0]}, {"logits": logits}, "min_p_filter", inputs)


@check(T_MINP, points=1, spec="ValueError: if ``min_p`` is outside ``[0, 1]`` or ``min_tokens_to_keep < 1``")
def test_min_p_rejects_bad_arguments(sub):
    logits = 2 * randn(0, 2, 5)
    # a valid call first, with the right answer: only a working function earns this point
    expect_equal(sub.call("min_p_filter", logits, 0.1), MinPLogitsWarper(0.1)(None, logits),
                 what="min_p_filter(logits, 0.1)", inputs=dict(logits=logits, min_p=0.1),
                 diagnose_with=lambda m: m.min_p_filter(logits, 0.1))
    expect_raises(lambda: sub.call("min_p_filter", logits, 1.5), "ValueError", what="min_p_filter(logits, 1.5)")
    expect_raises(lambda: sub.call("min_p_filter", logits, 0.1, min_tokens_to_keep=0), "ValueError",
                  what="min_p_filter(logits, 0.1, min_tokens_to_keep=0)")


# ---------------------------------------------------------------------------------------------
# apply_repetition_penalty
# ---------------------------------------------------------------------------------------------
@st.composite
def penalty_cases(draw):
    logits = draw(logits_batches(dtypes=(torch.float32,)))
    B, V = logits.shape
    logits = logits.masked_fill(torch.rand(B, V, generator=torch.Generator().manual_seed(draw(seeds))) < 0.15, 0.0)
    T = draw(st.integers(1, 8))
    ids = torch.randint(0, V, (B, T), generator=torch.Generator().manual_seed(draw(seeds)))  # repeats are likely
    penalty = draw(st.sampled_from([1.5, 2.0, 0.5, 1.0, 1.2]))
    return logits, ids, penalty


@check(T_REP, points=2, spec=("transformers' ``RepetitionPenaltyLogitsProcessor``", "A new ``(B, V)`` tensor"))
@given(case=penalty_cases())
def test_repetition_penalty_matches_transformers(sub, case):
    logits, ids, penalty = case
    with diagnosing(lambda m: m.apply_repetition_penalty(logits.clone(), ids, penalty)):
        out, after, _ = sub.call_echo("apply_repetition_penalty", logits, ids, penalty)
    inputs = dict(logits=logits, input_ids=ids, penalty=penalty)
    expected = RepetitionPenaltyLogitsProcessor(float(penalty))(ids, logits.clone())
    expect_close(out, expected, what=f"apply_repetition_penalty(logits, input_ids, {penalty}) (compared with "
                 "transformers' RepetitionPenaltyLogitsProcessor)", atol=0, rtol=1e-6, inputs=inputs,
                 diagnose_with=lambda m: m.apply_repetition_penalty(logits.clone(), ids, penalty))
    _unchanged({"logits": after[0], "input_ids": after[1]}, {"logits": logits, "input_ids": ids},
               "apply_repetition_penalty", inputs, variant="penalty_in_place")


@check(T_REP, points=1,
       spec=("``s / penalty`` if ``s > 0`` and ``s * penalty`` if ``s < 0`` (0 stays 0)",
             "(prompt included, however often it occurs)"))
@given(seed=seeds, penalty=st.sampled_from([2.0, 1.5, 3.0]))
def test_repetition_penalty_makes_repeated_tokens_less_likely(sub, seed, penalty):
    """A repeated token with a negative logit must go further down, once however often it occurs."""
    g = torch.Generator().manual_seed(seed)
    logits = torch.cat([1 + torch.rand(1, 2, generator=g), torch.zeros(1, 1), -1 - torch.rand(1, 2, generator=g)], 1)
    ids = torch.tensor([[0, 3, 3, 3, 2]])  # a positive logit once, a negative one three times, the zero one
    out = sub.call("apply_repetition_penalty", logits, ids, penalty)
    expected = RepetitionPenaltyLogitsProcessor(float(penalty))(ids, logits.clone())
    inputs = dict(logits=logits, input_ids=ids, penalty=penalty)
    expect_close(out, expected, what="apply_repetition_penalty on positive, zero and negative logits of repeated "
                 "tokens", atol=0, rtol=1e-6, inputs=inputs,
                 diagnose_with=lambda m: m.apply_repetition_penalty(logits.clone(), ids, penalty))


@check(T_REP, points=1, spec="ValueError: if ``penalty <= 0``")
def test_repetition_penalty_rejects_non_positive(sub):
    logits, ids = randn(0, 1, 4), torch.tensor([[1, 2]])
    # a valid call first, with the right answer: only a working function earns this point
    expect_close(sub.call("apply_repetition_penalty", logits, ids, 1.3),
                 RepetitionPenaltyLogitsProcessor(1.3)(ids, logits.clone()), what="apply_repetition_penalty(logits, "
                 "input_ids, 1.3)", atol=0, rtol=1e-6, inputs=dict(logits=logits, input_ids=ids, penalty=1.3),
                 diagnose_with=lambda m: m.apply_repetition_penalty(logits.clone(), ids, 1.3))
    for penalty in (0.0, -1.0):
        expect_raises(lambda: sub.call("apply_repetition_penalty", logits, ids, penalty), "ValueError",
                      what=f"apply_repetition_penalty(..., penalty={penalty})")


# ---------------------------------------------------------------------------------------------
# sample_next_token: statistics
# ---------------------------------------------------------------------------------------------
def chi2_critical(df: int, alpha: float) -> float:
    """The x with P(chi2_df > x) = alpha (bisection on the regularised upper incomplete gamma function)."""
    a = torch.tensor(df / 2.0, dtype=torch.float64)
    lo, hi = 0.0, 20.0 * df + 200.0
    for _ in range(200):
        mid = (lo + hi) / 2
        if float(torch.special.gammaincc(a, torch.tensor(mid / 2, dtype=torch.float64))) > alpha:
            lo = mid
        else:
            hi = mid
    return hi


def expect_draws_follow(tokens, probs: torch.Tensor, *, what: str, inputs: dict, diagnosis=None) -> None:
    """``tokens`` (N,) i.i.d. draws from ``probs`` (V,): no impossible token, and a chi-square fit at ALPHA.

    Bins whose expected count is below 5 are pooled (the usual validity rule of the chi-square test).
    """
    V = probs.shape[-1]
    if bool((tokens < 0).any() or (tokens >= V).any()):
        raise CheckFailed(f"{what}: drew ids outside [0, {V})", inputs=inputs, diagnosis=diagnosis)
    impossible = probs[tokens] == 0
    if bool(impossible.any()):
        bad = int(tokens[impossible][0])
        raise CheckFailed(f"{what}: drew token {bad}, whose probability is 0 after filtering (it was removed)",
                          inputs=inputs, diagnosis=diagnosis)
    n = tokens.numel()
    counts = torch.bincount(tokens, minlength=V).double()
    expected = probs.double() * n
    big = expected >= 5
    obs = torch.cat([counts[big], counts[~big].sum()[None]]) if (~big).any() else counts[big]
    exp = torch.cat([expected[big], expected[~big].sum()[None]]) if (~big).any() else expected[big]
    keep = exp > 0
    obs, exp = obs[keep], exp[keep]
    df = len(exp) - 1
    if df < 1:
        return
    stat = float(((obs - exp) ** 2 / exp).sum())
    limit = chi2_critical(df, ALPHA)
    if stat > limit:
        order = probs.argsort(descending=True)[:6].tolist()
        table = ", ".join(f"token {i}: {counts[i] / n:.3f} (expected {float(probs[i]):.3f})" for i in order)
        raise CheckFailed(f"{what}: the {n} draws do not follow the softmax of the filtered logits (chi-square "
                          f"{stat:.1f} > {limit:.1f}, {df} degrees of freedom, false-alarm probability {ALPHA:g}); "
                          f"observed frequencies {table}", inputs=inputs, diagnosis=diagnosis)


def hf_filtered(logits, temperature, top_k=None, top_p=None, min_p=None):
    """transformers' warper chain in the order of generate(): temperature, top-k, top-p, min-p."""
    scores = TemperatureLogitsWarper(float(temperature))(None, logits)
    if top_k is not None:
        scores = TopKLogitsWarper(top_k)(None, scores)
    if top_p is not None:
        scores = TopPLogitsWarper(top_p)(None, scores)
    if min_p is not None:
        scores = MinPLogitsWarper(min_p)(None, scores)
    return scores


# (seed of the logits, settings): each case separates the correct order of operations from a known mistake
SAMPLING_CASES = [
    (11, dict(temperature=1.0)),
    (12, dict(temperature=0.6, top_k=3)),
    (13, dict(temperature=2.0, top_p=0.6)),
    (14, dict(temperature=0.7, min_p=0.15)),
    (15, dict(temperature=1.5, top_k=5, top_p=0.9, min_p=0.05)),
]


# the model, prompt and settings of the statistical check of generate (its 6th and 7th logits are well apart)
SAMPLING_MODEL = dict(vocab_size=12, hidden_size=8, intermediate_size=8, num_hidden_layers=1, num_attention_heads=2,
                      num_key_value_heads=1, head_dim=4, rope_theta=10000.0, rms_norm_eps=1e-5,
                      tie_word_embeddings=False, attention_bias=False, max_position_embeddings=64, bos_token_id=None,
                      eos_token_id=None, pad_token_id=None)
SAMPLING_MODEL_SEED = 7
SAMPLING_PROMPT = torch.tensor([[3, 1, 4, 1, 5]])
SAMPLING_MODEL_SETTINGS = dict(temperature=0.8, top_k=6)


def _case_logits(seed: int, V: int = 8) -> torch.Tensor:
    return 1.5 * randn(seed, 1, V)


def _draws(sub, logits_row, settings, seed, n=N_DRAWS):
    batch = logits_row.expand(n, -1).contiguous()
    gen = sub.factory("torch_generator", seed)
    tokens = sub.call("sample_next_token", batch, generator=gen, **settings)
    expect_tensor(tokens, what="sample_next_token(...)", shape=(n,), dtype=torch.long,
                  inputs=dict(logits=logits_row, **settings))
    return tokens, batch


def _local_draws(module, batch, settings, seed):
    return module.sample_next_token(batch, generator=torch.Generator().manual_seed(seed), **settings)


@check(T_SAMPLE, points=1,
       spec="``temperature == 0``: greedy, the argmax of each row (the lowest id among equal maxima), and the "
            "filters are not used")
@given(logits=logits_batches(dtypes=(torch.float32,)))
def test_sample_greedy_at_temperature_zero(sub, logits):
    """temperature=0 is the argmax (lowest id among equal maxima); the filters play no part."""
    inputs = dict(logits=logits, temperature=0.0, top_k=1, top_p=0.5)
    with diagnosing(lambda m: m.sample_next_token(logits, temperature=0.0, top_k=1, top_p=0.5)):
        out = sub.call("sample_next_token", logits, temperature=0.0, top_k=1, top_p=0.5)
    expect_equal(out, logits.argmax(-1), what="sample_next_token(logits, temperature=0) (greedy)", inputs=inputs,
                 diagnose_with=lambda m: m.sample_next_token(logits, temperature=0.0, top_k=1, top_p=0.5),
                 hint=greedy_tie_hint(logits, out))


@check(T_SAMPLE, points=1, spec="The same seed gives the same tokens")
def test_sample_same_seed_same_tokens(sub):
    row = _case_logits(21)
    logits = row.expand(N_DRAWS, -1).contiguous()
    runs = []
    for _ in range(2):
        gen = sub.factory("torch_generator", 5)
        runs.append(sub.call("sample_next_token", logits, temperature=1.0, generator=gen))
    expect_tensor(runs[0], what="sample_next_token(...)", shape=(N_DRAWS,), dtype=torch.long)
    expect_equal(runs[1], runs[0], what="a second run with a fresh generator of the same seed",
                 inputs=dict(logits=row), hint="draw with the given generator (torch.multinomial(probs, 1, "
                 "generator=generator)), not with torch's global one")
    # a constant answer is reproducible too: only real draws from the softmax earn this point
    run = lambda m: _local_draws(m, logits, dict(temperature=1.0), 5)  # noqa: E731
    expect_draws_follow(runs[0], row[0].softmax(-1), what="sample_next_token(logits, temperature=1.0)",
                        inputs=dict(logits=row, temperature=1.0), diagnosis=_later(run, runs[0]))


@check(T_SAMPLE, points=2,
       spec=("Choose one next token per row",
             "draw one token from the softmax of the result with ``torch.multinomial``"))
def test_sample_draws_from_each_rows_softmax(sub):
    """Plain sampling, a batch whose rows alternate between two distributions: each row its own draw."""
    a, b = _case_logits(SAMPLING_CASES[0][0]), _case_logits(99)
    batch = torch.cat([a, b]).repeat(N_DRAWS // 2, 1)
    gen = sub.factory("torch_generator", 1)
    inputs = dict(logits_of_even_rows=a, logits_of_odd_rows=b, rows=batch.shape[0])
    run = lambda m: m.sample_next_token(batch, generator=torch.Generator().manual_seed(1))  # noqa: E731
    with diagnosing(run):
        tokens = sub.call("sample_next_token", batch, generator=gen)
    expect_tensor(tokens, what="sample_next_token(logits (B, V))", shape=(batch.shape[0],), dtype=torch.long,
                  inputs=inputs)
    diagnosis = _later(run, tokens)
    expect_draws_follow(tokens[0::2], a[0].softmax(-1), what="the even rows", inputs=inputs, diagnosis=diagnosis)
    expect_draws_follow(tokens[1::2], b[0].softmax(-1), what="the odd rows", inputs=inputs, diagnosis=diagnosis)


@check(T_SAMPLE, points=3, spec="divide by the temperature, then top-k, then top-p, then min-p (each only when given)")
def test_sample_applies_temperature_then_top_k_top_p_min_p(sub):
    for n, (seed, settings) in enumerate(SAMPLING_CASES[1:]):
        row = _case_logits(seed)
        inputs = dict(logits=row, **settings)
        run = lambda m, row=row, settings=settings, n=n: _local_draws(  # noqa: E731
            m, row.expand(N_DRAWS, -1), settings, 100 + n)
        with diagnosing(run):
            tokens, _ = _draws(sub, row, settings, 100 + n)
        probs = hf_filtered(row, **settings)[0].softmax(-1)
        expect_draws_follow(tokens, probs, what=f"sample_next_token(logits, {', '.join(f'{k}={v}' for k, v in settings.items())})",
                            inputs=inputs, diagnosis=_later(run, tokens))


# ---------------------------------------------------------------------------------------------
# generate
# ---------------------------------------------------------------------------------------------
@st.composite
def decoding_cases(draw, side="left", max_new=6):
    config = draw(llama_configs(max_vocab=24))
    config["vocab_size"] = max(config["vocab_size"], 8)
    seed = draw(seeds)
    am = draw(padded_attention_masks(max_batch=3, max_len=5, side=side))
    ids = torch.randint(1, config["vocab_size"], tuple(am.shape), generator=torch.Generator().manual_seed(seed))
    ids = ids.masked_fill(am == 0, 0)  # a tokenizer puts its pad id (here 0) on padding
    return config, llama_state(config, seed), ids, am, draw(st.integers(1, max_new))


@memo
def _hf_generate(config, state, ids, am, n, **kw):
    """transformers' greedy generation, and the smallest gap between the best two scores of any step."""
    model = hf_model(config, state)
    eos = kw.pop("eos_token_id", None)
    pad = kw.pop("pad_token_id", None)
    model.generation_config.eos_token_id = eos
    model.generation_config.pad_token_id = eos if pad is None else pad
    with torch.no_grad():
        out = model.generate(ids, attention_mask=am, max_new_tokens=n, do_sample=False, eos_token_id=eos,
                             pad_token_id=eos if pad is None else pad, output_scores=True,
                             return_dict_in_generate=True, **kw)
    gap = min(float((s.topk(2).values[:, 0] - s.topk(2).values[:, 1]).min()) for s in out.scores)
    return out.sequences, gap


def _local_generate(module, config, state, ids, **kw):
    return module.generate(hf_model(config, state), ids, **kw)


def _generate(sub, config, state, ids, **kw):
    """The student's generate on a traced model in the worker; returns (tokens, the model's call log)."""
    model = sub.factory("hf_llama_traced", config, state)
    with diagnosing(lambda m: _local_generate(m, config, state, ids, **kw)):
        out = sub.call("generate", model, ids, **kw)
    return out, model


def _expect_tokens(out, expected, *, what, inputs, compute):
    expect_tensor(out, what=what, shape=(expected.shape[0], None), dtype=torch.long, inputs=inputs,
                  diagnose_with=compute)
    expect_equal(out, expected, what=what + " (compared with transformers' model.generate(do_sample=False))",
                 inputs=inputs, diagnose_with=compute)


@check(T_GEN, points=3,
       spec=("With ``temperature=0`` equal to ``model.generate(input_ids, attention_mask=..., do_sample=False,",
             "so a padded row gives the tokens it would give alone"))
@settings(max_examples=GENERATE_EXAMPLES)
@given(case=decoding_cases(), use_cache=st.booleans())
def test_generate_greedy_matches_transformers(sub, case, use_cache):
    config, state, ids, am, n = case
    kw = dict(max_new_tokens=n, attention_mask=am, use_cache=use_cache)
    out, _ = _generate(sub, config, state, ids, **kw)  # first: an unfinished stub fails (and shrinks) at no cost
    expected, gap = _hf_generate(config, state, ids, am, n, use_cache=use_cache)
    assume(gap > 1e-3)  # no near-tie: any correct loop picks the same tokens
    _expect_tokens(out, expected, what=f"greedy generate(..., use_cache={use_cache}) of a left-padded batch",
                   inputs=dict(config=config, input_ids=ids, **kw),
                   compute=lambda m: _local_generate(m, config, state, ids, **kw))


@check(T_GEN, points=2,
       spec=("its later positions hold ``pad_token_id``; generation stops early once every row is finished",
             "pad_token_id: int written after a row's EOS; ``None``: ``eos_token_id``"))
@settings(max_examples=GENERATE_EXAMPLES)
@given(case=decoding_cases(max_new=7), data=st.data())
def test_generate_stops_at_eos_and_pads_finished_rows(sub, case, data):
    config, state, ids, am, _ = case
    free, _ = _hf_generate(config, state, ids, am, 3)
    T = ids.shape[1]
    eos = int(free[0, T + data.draw(st.integers(0, 2), label="eos_step")])  # row 0 stops early for sure
    pad = data.draw(st.sampled_from([None, 0]), label="pad_token_id")
    expected, gap = _hf_generate(config, state, ids, am, 7, eos_token_id=eos, pad_token_id=pad)
    assume(gap > 1e-3)
    kw = dict(max_new_tokens=7, attention_mask=am, eos_token_id=eos, pad_token_id=pad)
    out, _ = _generate(sub, config, state, ids, **kw)
    _expect_tokens(out, expected, what=f"generate with eos_token_id={eos}, pad_token_id={pad}",
                   inputs=dict(config=config, input_ids=ids, **kw),
                   compute=lambda m: _local_generate(m, config, state, ids, **kw))


@check(T_GEN, points=2, spec="each later call feeds only the newest token together with that cache")
@settings(max_examples=CALL_PATTERN_EXAMPLES)
@given(case=decoding_cases())
def test_generate_reuses_the_kv_cache(sub, case):
    config, state, ids, am, n = case
    n = max(n, 3)
    kw = dict(max_new_tokens=n, attention_mask=am, use_cache=True)
    out, model = _generate(sub, config, state, ids, **kw)
    expected, gap = _hf_generate(config, state, ids, am, n, use_cache=True)
    assume(gap > 1e-3)
    inputs = dict(config=config, input_ids=ids, **kw)
    _expect_tokens(out, expected, what="greedy generate(..., use_cache=True)", inputs=inputs,
                   compute=lambda m: _local_generate(m, config, state, ids, **kw))
    calls = model.get("llmlab_calls")
    B, T = ids.shape
    want = [[B, T, 0]] + [[B, 1, T + i] for i in range(n)]
    if not calls or calls != want[:len(calls)] or len(calls) < n:
        shown = "; ".join(f"call {i}: {c[1]} new token(s) per row on a cache of {c[2]}" for i, c in
                          enumerate(calls[:5]))
        raise CheckFailed("with use_cache=True the model must process the prompt once, then only the newest token "
                          f"per step together with the cache it returned (expected {T} tokens on an empty cache, then "
                          f"1 token on a cache of {T}, {T + 1}, ...); the calls were: {shown or 'none'}",
                          inputs=inputs, diagnosis=[known_mistake("cache_never_reused")])


@check(T_GEN, points=1, spec="With ``use_cache=False`` every step recomputes the whole sequence")
@settings(max_examples=CALL_PATTERN_EXAMPLES)
@given(case=decoding_cases())
def test_generate_without_cache_recomputes_the_sequence(sub, case):
    config, state, ids, am, n = case
    kw = dict(max_new_tokens=n, attention_mask=am, use_cache=False)
    out, model = _generate(sub, config, state, ids, **kw)
    expected, gap = _hf_generate(config, state, ids, am, n, use_cache=False)
    assume(gap > 1e-3)
    inputs = dict(config=config, input_ids=ids, **kw)
    # only the right tokens earn this point (a loop that calls the model and returns junk does not)
    _expect_tokens(out, expected, what="greedy generate(..., use_cache=False)", inputs=inputs,
                   compute=lambda m: _local_generate(m, config, state, ids, **kw))
    calls = model.get("llmlab_calls")
    B, T = ids.shape
    if not calls or any(c != [B, T + i, 0] for i, c in enumerate(calls)):
        raise CheckFailed("with use_cache=False every step must run the model on the whole sequence so far, without "
                          f"a cache (the calls were {calls[:5]}, as [rows, tokens, cached tokens])",
                          inputs=dict(config=config, input_ids=ids, **kw))


@check(T_GEN, points=1,
       spec="apply the repetition penalty (when ``!= 1``) with every id of the sequence so far except those at "
            "padding positions")
@settings(max_examples=GENERATE_EXAMPLES)
@given(case=decoding_cases(), penalty=st.sampled_from([1.5, 2.0, 0.7]))
def test_generate_repetition_penalty_matches_transformers(sub, case, penalty):
    config, state, ids, am, n = case
    kw = dict(max_new_tokens=n, attention_mask=am, repetition_penalty=penalty)
    out, _ = _generate(sub, config, state, ids, **kw)
    expected, gap = _hf_generate(config, state, ids, am, n, repetition_penalty=penalty)
    assume(gap > 1e-3)
    _expect_tokens(out, expected, what=f"greedy generate with repetition_penalty={penalty}",
                   inputs=dict(config=config, input_ids=ids, **kw),
                   compute=lambda m: _local_generate(m, config, state, ids, **kw))


@check(T_GEN, points=2, spec="then choose the next token with ``sample_next_token``")
def test_generate_samples_from_the_filtered_model_distribution(sub):
    """One new token for 4000 copies of one prompt: the draws follow the model's filtered next-token softmax."""
    config, prompt, settings = SAMPLING_MODEL, SAMPLING_PROMPT, SAMPLING_MODEL_SETTINGS
    state = llama_state(config, SAMPLING_MODEL_SEED)
    logits = hf_logits(config, state, prompt)[:, -1].float()
    probs = hf_filtered(logits, **settings)[0].softmax(-1)
    batch = prompt.expand(N_DRAWS, -1).contiguous()
    model = sub.factory("hf_llama_traced", config, state)
    gen = sub.factory("torch_generator", 3)
    run = lambda m: m.generate(hf_model(config, state), batch, max_new_tokens=1,  # noqa: E731
                               generator=torch.Generator().manual_seed(3), **settings)
    with diagnosing(run):
        out = sub.call("generate", model, batch, max_new_tokens=1, generator=gen, **settings)
    inputs = dict(config=config, prompt=prompt, max_new_tokens=1, **settings)
    expect_tensor(out, what="generate(...)", shape=(N_DRAWS, prompt.shape[1] + 1), dtype=torch.long, inputs=inputs)
    expect_draws_follow(out[:, -1], probs, what="the sampled next tokens", inputs=inputs,
                        diagnosis=_later(run, out))


@check(T_GEN, points=1,
       spec="ValueError: if ``input_ids`` is not ``(B, T)`` with ``T >= 1``, ``attention_mask`` has another shape, "
            "``max_new_tokens < 0``, or a sampling argument is invalid")
def test_generate_rejects_bad_arguments(sub):
    config = dict(vocab_size=8, hidden_size=8, intermediate_size=4, num_hidden_layers=1, num_attention_heads=2,
                  num_key_value_heads=2, head_dim=4, max_position_embeddings=64)
    model = sub.factory("hf_llama_traced", config, llama_state(config, 0))
    ids = torch.tensor([[1, 2, 3]])
    # a valid call first, with the right tokens: only a working function earns this point
    expected, _ = _hf_generate(config, llama_state(config, 0), ids, torch.ones_like(ids), 2)
    _expect_tokens(sub.call("generate", model, ids, max_new_tokens=2), expected, what="greedy generate(model, "
                   "input_ids, max_new_tokens=2)", inputs=dict(config=config, input_ids=ids, max_new_tokens=2),
                   compute=lambda m: _local_generate(m, config, llama_state(config, 0), ids, max_new_tokens=2))
    expect_raises(lambda: sub.call("generate", model, ids, max_new_tokens=-1), "ValueError",
                  what="generate(..., max_new_tokens=-1)")
    expect_raises(lambda: sub.call("generate", model, torch.tensor([1, 2, 3]), max_new_tokens=1), "ValueError",
                  what="generate with 1-dimensional input_ids (expected (B, T))")

