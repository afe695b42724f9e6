"""Hidden graders for ``attention`` (API.md §1): scaled dot-product and multi-head attention.

Each test takes ``sub`` (the submission, run in an isolated worker) and ``ref`` (the reference,
imported here). Cross-checks use torch's own ``scaled_dot_product_attention`` and
``nn.MultiheadAttention``. Tolerances: float32 1e-5 absolute + 1e-4 relative; float64 1e-10.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

from graders.strategies import batch_shapes, bernoulli, randn, seeds
from llmlab.grading.checks import (CheckFailed, check, expect_close, expect_float64_close, expect_raises, expect_tensor,
                                  expect_tuple, diagnose, diagnosing, known_mistake)
from llmlab.grading.compose import composed, expected_or_composed

TASK_SDPA = "attention.scaled_dot_product_attention"
TASK_INIT = "attention.MultiHeadAttention.__init__"
TASK_MHA = "attention.MultiHeadAttention.forward"
ATOL, RTOL = 1e-5, 1e-4
# One cause, one loss: a MultiHeadAttention output also passes when it equals the reference module run over the
# student's own scaled_dot_product_attention (llmlab.grading.compose), whose mistakes its own checks charge.
MHA_PARTS = ("scaled_dot_product_attention",)


@st.composite
def sdpa_cases(draw, mask_kind=None, dtype=torch.float32):
    """q, k, v (with broadcastable leading dims) and a mask of some kind.

    Every query row may attend to at least one key: the rule for a row with no allowed key has its own
    check (``test_sdpa_fully_masked_row_gives_zeros_not_nan``), so breaking it costs that point only.
    """
    batch = draw(batch_shapes)
    L, S = draw(st.integers(1, 6)), draw(st.integers(1, 6))
    E, Ev = draw(st.integers(1, 8)), draw(st.integers(1, 8))
    seed = draw(seeds)
    # keys/values may have size-1 leading dims that broadcast against the queries'
    kv_batch = tuple(1 if draw(st.booleans()) else b for b in batch)
    q = randn(seed, *batch, L, E, dtype=dtype)
    k = randn(seed + 1, *kv_batch, S, E, dtype=dtype)
    v = randn(seed + 2, *kv_batch, S, Ev, dtype=dtype)
    kind = mask_kind or draw(st.sampled_from(["none", "random", "keys", "causal"]))
    if kind == "none":
        mask = None
    elif kind == "random":  # full shape, with some rows fully masked
        mask = bernoulli(seed + 3, (*batch, L, S), 0.6)
    elif kind == "keys":  # key padding, broadcast over queries
        mask = bernoulli(seed + 3, (*batch, 1, S), 0.7)
    else:
        mask = torch.ones(L, S, dtype=torch.bool).tril(diagonal=S - L)
    if mask is not None:
        mask = mask.clone()
        mask[..., -1] |= ~mask.any(-1)  # a row with no allowed key may attend to the last key
    return q, k, v, mask


def _inputs(q, k, v, mask, **extra):
    return dict(q=q, k=k, v=v, mask=mask, **extra)


def _call_sdpa(sub, q, k, v, mask, **kw):
    out = sub.call("scaled_dot_product_attention", q, k, v, mask, **kw)
    expect_tuple(out, 2, what="the return value (output, weights)", inputs=_inputs(q, k, v, mask))
    for value, what in zip(out, ("output", "attention weights")):
        expect_tensor(value, what=what, inputs=_inputs(q, k, v, mask))  # type first: nothing else is indexable
    return out


@check(TASK_SDPA, points=1,
       spec=("``output`` of shape ``(..., L, Ev)`` and ``weights`` of shape ``(..., L, S)``",
             "The outputs have the dtype of ``q``"))
@given(case=sdpa_cases(mask_kind="none"))
def test_sdpa_shapes_and_dtypes(sub, case):
    q, k, v, mask = case
    out, weights = _call_sdpa(sub, q, k, v, mask)
    lead = torch.broadcast_shapes(q.shape[:-2], k.shape[:-2])
    inputs = _inputs(q, k, v, mask)
    expect_tensor(out, what="output", shape=(*lead, q.shape[-2], v.shape[-1]), dtype=q.dtype, inputs=inputs)
    expect_tensor(weights, what="weights", shape=(*lead, q.shape[-2], k.shape[-2]), inputs=inputs)


@check(TASK_SDPA, points=2, spec="scale: multiplies the scores; defaults to ``1 / sqrt(E)``")
@given(case=sdpa_cases(mask_kind="none"))
def test_sdpa_without_mask_matches_torch(sub, ref, case):
    q, k, v, mask = case
    out, weights = _call_sdpa(sub, q, k, v, mask)
    inputs = _inputs(q, k, v, mask)
    expect_close(weights, ref.scaled_dot_product_attention(q, k, v)[1], what="attention weights", atol=ATOL,
                 rtol=RTOL, inputs=inputs, diagnose_with=lambda m: m.scaled_dot_product_attention(q, k, v)[1])
    expect_close(out, F.scaled_dot_product_attention(q, k, v), what="output (compared with torch SDPA)", atol=ATOL,
                 rtol=RTOL, inputs=inputs, diagnose_with=lambda m: m.scaled_dot_product_attention(q, k, v)[0])


@check(TASK_SDPA, points=1,
       spec=("True = this query may attend to this key",
             "Each row of ``weights`` sums to 1 over the keys the mask allows"))
@given(case=sdpa_cases(mask_kind="random"))
def test_sdpa_weights_are_a_distribution_over_allowed_keys(sub, case):
    q, k, v, mask = case
    _, weights = _call_sdpa(sub, q, k, v, mask)
    inputs = _inputs(q, k, v, mask)
    full = torch.broadcast_shapes(q.shape[:-1] + (k.shape[-2],), mask.shape)
    expect_tensor(weights, what="weights", shape=full, inputs=inputs)
    allowed = mask.expand(full)
    diag = lambda m: m.scaled_dot_product_attention(q, k, v, mask)[1]  # noqa: E731
    if torch.isnan(weights).any():
        raise CheckFailed("weights contain NaN", inputs=inputs, diagnosis=_diag(diag, weights))
    if (weights < -1e-7).any():
        raise CheckFailed("some weights are negative", inputs=inputs, diagnosis=_diag(diag, weights))
    if (weights.abs() * (~allowed)).max() > 1e-7:
        raise CheckFailed("weights are not zero where the mask forbids attention (mask inverted, or applied "
                          "after the softmax?)", inputs=inputs, diagnosis=_diag(diag, weights))
    sums = weights.double().sum(-1)
    expect_close(sums, torch.ones_like(sums), what="the sum of each weights row over keys", atol=1e-5, rtol=0,
                 inputs=inputs, diagnose_with=lambda m: diag(m).double().sum(-1))


def _diag(compute, actual):
    return lambda: diagnose(compute, actual)  # evaluated once, for the minimal failing input


@check(TASK_SDPA, points=2,
       spec=("True = this query may attend to this key",
             "Leading dimensions of q, k, v and mask broadcast against each other"))
@given(case=sdpa_cases())
def test_sdpa_with_mask_matches_reference(sub, ref, case):
    q, k, v, mask = case
    out, weights = _call_sdpa(sub, q, k, v, mask)
    inputs = _inputs(q, k, v, mask)
    r_out, r_w = ref.scaled_dot_product_attention(q, k, v, mask)
    expect_close(weights, r_w, what="attention weights", atol=ATOL, rtol=RTOL, inputs=inputs,
                 diagnose_with=lambda m: m.scaled_dot_product_attention(q, k, v, mask)[1])
    expect_close(out, r_out, what="output", atol=ATOL, rtol=RTOL, inputs=inputs,
                 diagnose_with=lambda m: m.scaled_dot_product_attention(q, k, v, mask)[0])
    if mask is not None:  # torch's kernel also gives 0 on fully masked rows (torch >= 2.5)
        expect_close(out, F.scaled_dot_product_attention(q, k, v, attn_mask=mask), what="output (compared with "
                     "torch SDPA)", atol=ATOL, rtol=RTOL, inputs=inputs)


@check(TASK_SDPA, points=1, spec="A row whose mask allows no key has all-zero weights and a zero output (not NaN)")
@given(seed=seeds, L=st.integers(1, 4), S=st.integers(1, 5))
def test_sdpa_fully_masked_row_gives_zeros_not_nan(sub, seed, L, S):
    q, k, v = randn(seed, 1, L, 3), randn(seed + 1, 1, S, 3), randn(seed + 2, 1, S, 2)
    mask = torch.ones(1, L, S, dtype=torch.bool)
    mask[0, 0] = False  # query 0 may attend to nothing
    out, weights = _call_sdpa(sub, q, k, v, mask)
    inputs = _inputs(q, k, v, mask)
    expect_tensor(out, what="output", shape=(1, L, 2), dtype=torch.float32, inputs=inputs)
    expect_tensor(weights, what="attention weights", shape=(1, L, S), dtype=torch.float32, inputs=inputs)
    diag = lambda i: (lambda m: m.scaled_dot_product_attention(q, k, v, mask)[i])  # noqa: E731
    expect_close(weights[..., 0, :], torch.zeros(1, S), what="weights of the fully masked query row",
                 atol=0, rtol=0, inputs=inputs, diagnose_with=lambda m: diag(1)(m)[..., 0, :])
    expect_close(out[..., 0, :], torch.zeros(1, 2), what="output of the fully masked query row", atol=0, rtol=0,
                 inputs=inputs, diagnose_with=lambda m: diag(0)(m)[..., 0, :])


@check(TASK_SDPA, points=1, spec="scale: multiplies the scores; defaults to ``1 / sqrt(E)``")
@given(case=sdpa_cases(mask_kind="none"), scale=st.floats(0.05, 3.0))
def test_sdpa_custom_scale(sub, ref, case, scale):
    q, k, v, _ = case
    out, weights = _call_sdpa(sub, q, k, v, None, scale=scale)
    inputs = _inputs(q, k, v, None, scale=scale)
    expect_close(out, F.scaled_dot_product_attention(q, k, v, scale=scale), what="output with a given scale",
                 atol=ATOL, rtol=RTOL, inputs=inputs,
                 diagnose_with=lambda m: m.scaled_dot_product_attention(q, k, v, scale=scale)[0],
                 hint="the scale argument must replace 1/sqrt(E), not multiply it")


@check(TASK_SDPA, points=1, spec=("The outputs have the dtype of ``q``, computed at its precision: float64 inputs "
                                  "give float64 results accurate to about 1e-10 (no step in float32)"))
@given(case=sdpa_cases(mask_kind="none", dtype=torch.float64))
def test_sdpa_float64_precision(sub, ref, case):
    q, k, v, mask = case
    out, weights = _call_sdpa(sub, q, k, v, mask)
    r_out, r_w = ref.scaled_dot_product_attention(q, k, v, mask)
    inputs = _inputs(q, k, v, mask)
    own32 = sub.call("scaled_dot_product_attention", q.float(), k.float(), v.float(), mask)
    expect_float64_close(out, r_out, what="float64 output (dtype kept, full precision)", atol=1e-10, rtol=1e-9,
                         own_float32=own32[0] if isinstance(own32, (tuple, list)) and own32 else None,
                         inputs=inputs, diagnose_with=lambda m: m.scaled_dot_product_attention(q, k, v, mask)[0])


@check(TASK_SDPA, points=1, spec="The inputs are not modified")
def test_sdpa_does_not_modify_inputs(sub, ref):
    q, k, v = randn(1, 2, 3, 4), randn(2, 2, 5, 4), randn(3, 2, 5, 3)
    mask = bernoulli(4, (2, 3, 5), 0.5)
    inputs = _inputs(q, k, v, mask)
    out, after, _ = sub.call_echo("scaled_dot_product_attention", q, k, v, mask)
    # only a working function earns this point: returning junk also leaves the inputs alone
    expect_tuple(out, 2, what="the return value (output, weights)", inputs=inputs)
    for name, before, now in zip(("q", "k", "v", "mask"), (q, k, v, mask), after):
        if not (isinstance(now, torch.Tensor) and now.shape == before.shape and torch.equal(now, before)):
            raise CheckFailed(f"scaled_dot_product_attention changed its input {name} in place",
                              diagnosis=[known_mistake("modifies_input_in_place")])
    r_out, r_w = ref.scaled_dot_product_attention(q, k, v, mask)
    expect_close(out[0], r_out, what="output", atol=ATOL, rtol=RTOL, inputs=inputs)
    expect_close(out[1], r_w, what="attention weights", atol=ATOL, rtol=RTOL, inputs=inputs)


@check(TASK_SDPA, points=1,
       spec=("TypeError: if q, k or v is not a tensor, or mask is not a bool tensor",
             "ValueError: if a tensor has fewer than 2 dimensions, the feature sizes of q and k differ, k and v have "
             "different lengths, or the mask does not broadcast"))
def test_sdpa_rejects_bad_arguments(sub):
    q, k, v = randn(1, 3, 4), randn(2, 5, 4), randn(3, 5, 2)
    expect_raises(lambda: sub.call("scaled_dot_product_attention", q, randn(2, 5, 3), v), "ValueError",
                  what="q and k with different feature sizes (4 and 3)")
    expect_raises(lambda: sub.call("scaled_dot_product_attention", q, k, randn(3, 4, 2)), "ValueError",
                  what="k and v with different lengths (5 and 4)")
    expect_raises(lambda: sub.call("scaled_dot_product_attention", randn(1, 4), k, v), ("ValueError",),
                  what="a 1-dimensional q")
    expect_raises(lambda: sub.call("scaled_dot_product_attention", q, k, v, torch.ones(3, 7, dtype=torch.bool)),
                  ("ValueError", "RuntimeError"), what="a mask of shape (3, 7) for 3 queries and 5 keys")
    expect_raises(lambda: sub.call("scaled_dot_product_attention", q, k, v, torch.ones(3, 5)), "TypeError",
                  what="a float mask (the mask must be bool: True = may attend)")


# ---------------------------------------------------------------------------------------------
# MultiHeadAttention
# ---------------------------------------------------------------------------------------------
@st.composite
def mha_configs(draw, gqa: bool | None = None):
    n_kv = draw(st.integers(1, 3))
    group = draw(st.integers(1, 3)) if gqa is not False else 1
    if gqa and group == 1:
        group = 2
    n_heads = n_kv * group if gqa is not False else draw(st.integers(1, 4))
    if gqa is False:
        n_kv = n_heads
    head_dim = draw(st.integers(1, 4))
    return dict(d_model=n_heads * head_dim, n_heads=n_heads, n_kv_heads=n_kv, bias=draw(st.booleans()))


def _weights(cfg: dict, seed: int) -> dict:
    d, h, kv = cfg["d_model"], cfg["n_heads"], cfg["n_kv_heads"]
    hd = d // h
    shapes = {"q_proj": (h * hd, d), "k_proj": (kv * hd, d), "v_proj": (kv * hd, d), "o_proj": (d, h * hd)}
    state = {}
    for n, (name, shape) in enumerate(shapes.items()):
        state[f"{name}.weight"] = randn(seed + n, *shape) / math.sqrt(shape[1])
        if cfg["bias"]:
            state[f"{name}.bias"] = randn(seed + 10 + n, shape[0]) * 0.1
    return state


def _build(sub, cfg: dict, seed: int):
    """The student's module, with the grader's weights loaded by the spec's parameter names."""
    state = _weights(cfg, seed)
    obj = sub.new("MultiHeadAttention", cfg["d_model"], cfg["n_heads"], n_kv_heads=cfg["n_kv_heads"],
                  bias=cfg["bias"])
    have = obj.call("state_dict")
    if not isinstance(have, dict):
        raise CheckFailed(f"MultiHeadAttention.state_dict() returned {type(have).__name__}")
    shapes = {k: tuple(v.shape) for k, v in have.items() if isinstance(v, torch.Tensor)}
    want = {k: tuple(v.shape) for k, v in state.items()}
    if shapes != want:
        missing = sorted(set(want) - set(shapes))
        extra = sorted(set(shapes) - set(want))
        wrong = sorted(k for k in set(want) & set(shapes) if want[k] != shapes[k])
        parts = []
        if missing:
            parts.append(f"missing parameters {missing}")
        if extra:
            parts.append(f"unexpected parameters {extra}")
        if wrong:
            parts.append("wrong shapes " + ", ".join(f"{k}: {shapes[k]} (expected {want[k]})" for k in wrong))
        local_shapes = lambda m: {k: tuple(v.shape) for k, v in m.MultiHeadAttention(  # noqa: E731
            cfg["d_model"], cfg["n_heads"], n_kv_heads=cfg["n_kv_heads"], bias=cfg["bias"]).state_dict().items()}
        raise CheckFailed(f"MultiHeadAttention({cfg['d_model']}, {cfg['n_heads']}, n_kv_heads={cfg['n_kv_heads']}, "
                          f"bias={cfg['bias']}) has " + "; ".join(parts), diagnosis=_diag(local_shapes, shapes))
    obj.call("load_state_dict", state)
    obj.call("eval")
    return obj, state


def _local(module, cfg, state):
    m = module.MultiHeadAttention(cfg["d_model"], cfg["n_heads"], n_kv_heads=cfg["n_kv_heads"], bias=cfg["bias"])
    m.load_state_dict(state)
    return m.eval()


def _or_composed(sub, out, expected, cfg, state, *args, **kwargs):
    """``expected``, or the reference module over the student's own SDPA when ``out`` matches that instead."""
    return expected_or_composed(out, expected, lambda: _local(composed(sub, MHA_PARTS), cfg, state)(*args, **kwargs),
                                atol=ATOL, rtol=RTOL)


@check(TASK_INIT, points=1, spec="Submodules (names are part of the spec; graders load weights by these names)")
@given(cfg=mha_configs(gqa=False))
def test_mha_parameters_follow_the_spec(sub, cfg):
    _build(sub, cfg, 0)


@check(TASK_INIT, points=1,
       spec="ValueError: if ``d_model`` is not divisible by ``n_heads``, or ``n_heads`` not by ``n_kv_heads``")
def test_mha_rejects_bad_head_counts(sub):
    expect_raises(lambda: sub.new("MultiHeadAttention", 10, 4), "ValueError",
                  what="MultiHeadAttention(d_model=10, n_heads=4) (10 is not divisible by 4)")
    expect_raises(lambda: sub.new("MultiHeadAttention", 12, 4, n_kv_heads=3), "ValueError",
                  what="MultiHeadAttention(12, 4, n_kv_heads=3) (4 heads cannot be grouped into 3)")


@check(TASK_MHA, points=2, spec="Without it, ``S = L`` and keys and values come from ``x``")
@given(cfg=mha_configs(gqa=False), seed=seeds, B=st.integers(1, 3), L=st.integers(1, 6))
def test_mha_self_attention_matches_torch_multihead_attention(sub, cfg, seed, B, L):
    obj, state = _build(sub, cfg, seed)
    x = randn(seed + 20, B, L, cfg["d_model"])
    out = obj(x)
    torch_mha = torch.nn.MultiheadAttention(cfg["d_model"], cfg["n_heads"], bias=cfg["bias"], batch_first=True)
    with torch.no_grad():
        torch_mha.in_proj_weight.copy_(torch.cat([state[f"{p}.weight"] for p in ("q_proj", "k_proj", "v_proj")]))
        torch_mha.out_proj.weight.copy_(state["o_proj.weight"])
        if cfg["bias"]:
            torch_mha.in_proj_bias.copy_(torch.cat([state[f"{p}.bias"] for p in ("q_proj", "k_proj", "v_proj")]))
            torch_mha.out_proj.bias.copy_(state["o_proj.bias"])
        expected = torch_mha.eval()(x, x, x, need_weights=False)[0]
    expected = _or_composed(sub, out, expected, cfg, state, x)
    expect_close(out, expected, what="output (compared with torch.nn.MultiheadAttention)", atol=ATOL, rtol=RTOL,
                 inputs=dict(config=cfg, x=x), diagnose_with=lambda m: _local(m, cfg, state)(x))


def _torch_gqa(state, cfg, x, context=None, mask=None):
    """Grouped-query attention computed with torch SDPA (enable_gqa=True) and the same weights."""
    B, L, _ = x.shape
    src = x if context is None else context
    S, h, kv = src.shape[1], cfg["n_heads"], cfg["n_kv_heads"]
    hd = cfg["d_model"] // h
    lin = lambda t, p: F.linear(t, state[f"{p}.weight"], state.get(f"{p}.bias"))  # noqa: E731
    q = lin(x, "q_proj").view(B, L, h, hd).transpose(1, 2)
    k = lin(src, "k_proj").view(B, S, kv, hd).transpose(1, 2)
    v = lin(src, "v_proj").view(B, S, kv, hd).transpose(1, 2)
    o = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, enable_gqa=True)
    return lin(o.transpose(1, 2).reshape(B, L, h * hd), "o_proj")


@check(TASK_MHA, points=2,
       spec=("Query head ``h`` uses key/value head ``h // (n_heads // n_kv_heads)``",
             "k_proj, v_proj: ``Linear(d_model, n_kv_heads * head_dim)``"))
@given(cfg=mha_configs(gqa=True), seed=seeds, B=st.integers(1, 2), L=st.integers(1, 5))
def test_mha_grouped_query_attention_matches_torch_sdpa(sub, cfg, seed, B, L):
    obj, state = _build(sub, cfg, seed)
    x = randn(seed + 20, B, L, cfg["d_model"])
    out = obj(x)
    expected = _or_composed(sub, out, _torch_gqa(state, cfg, x), cfg, state, x)
    expect_close(out, expected, what="grouped-query output (compared with torch SDPA, enable_gqa=True)", atol=ATOL,
                 rtol=RTOL, inputs=dict(config=cfg, x=x), diagnose_with=lambda m: _local(m, cfg, state)(x))


@check(TASK_MHA, points=2, spec="keys and values come from it")
@given(cfg=mha_configs(gqa=False), seed=seeds, B=st.integers(1, 2), L=st.integers(1, 4), S=st.integers(1, 6))
def test_mha_cross_attention_uses_context_for_keys_and_values(sub, cfg, seed, B, L, S):
    obj, state = _build(sub, cfg, seed)
    x = randn(seed + 20, B, L, cfg["d_model"])
    context = randn(seed + 21, B, S, cfg["d_model"])
    with diagnosing(lambda m: _local(m, cfg, state)(x, context=context)):
        out = obj(x, context=context)
    expected = _or_composed(sub, out, _torch_gqa(state, cfg, x, context), cfg, state, x, context=context)
    expect_close(out, expected, what="cross-attention output (queries from x, keys and "
                 "values from context)", atol=ATOL, rtol=RTOL, inputs=dict(config=cfg, x=x, context=context),
                 diagnose_with=lambda m: _local(m, cfg, state)(x, context=context))


@check(TASK_MHA, points=2, spec="mask: optional bool tensor broadcastable to ``(B, n_heads, L, S)``; True = may attend")
@given(cfg=mha_configs(gqa=False), seed=seeds, B=st.integers(1, 3), L=st.integers(1, 6))
def test_mha_respects_padding_and_causal_masks(sub, cfg, seed, B, L):
    obj, state = _build(sub, cfg, seed)
    x = randn(seed + 20, B, L, cfg["d_model"])
    keys = bernoulli(seed + 22, (B, 1, 1, L), 0.75)
    keys[..., 0] = True
    mask = keys & torch.ones(L, L, dtype=torch.bool).tril()
    out = obj(x, mask=mask)
    expected = _or_composed(sub, out, _torch_gqa(state, cfg, x, mask=mask), cfg, state, x, mask=mask)
    expect_close(out, expected, what="masked self-attention output", atol=ATOL,
                 rtol=RTOL, inputs=dict(config=cfg, x=x, mask=mask),
                 diagnose_with=lambda m: _local(m, cfg, state)(x, mask=mask))
