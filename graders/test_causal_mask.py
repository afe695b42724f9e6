"""Hidden graders for ``causal_mask`` (API.md §2): causal, padding and decoder masks.

Cross-checks: ``torch.nn.attention.bias.causal_lower_right`` for the bottom-right causal mask, and
torch SDPA run with the submitted decoder mask (its output on real tokens must not depend on padding
or on future tokens). Masks are compared exactly.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from hypothesis import given
from hypothesis import strategies as st
from torch.nn.attention.bias import causal_lower_right

from graders.strategies import padded_attention_masks, randn
from llmlab.grading.checks import CheckFailed, check, expect_equal, expect_raises, expect_tensor

TASK_CAUSAL = "causal_mask.causal_mask"
TASK_PAD = "causal_mask.padding_mask"
TASK_DEC = "causal_mask.decoder_mask"


def _torch_lower_right(q_len: int, k_len: int) -> torch.Tensor:
    """torch's own bottom-right causal mask, materialised as bool (True = may attend)."""
    if q_len == 0 or k_len == 0:
        return torch.ones(q_len, k_len, dtype=torch.bool)
    bias = causal_lower_right(q_len, k_len)
    return bias._materialize().bool() if hasattr(bias, "_materialize") else torch.ones(
        q_len, k_len, dtype=torch.bool).tril(k_len - q_len)


@check(TASK_CAUSAL, points=1,
       spec=("With ``q_len == k_len`` this is the usual lower triangle, diagonal included",
             "Bool tensor of shape ``(q_len, k_len)``"))
@given(n=st.integers(1, 12))
def test_causal_square_is_lower_triangle_with_diagonal(sub, n):
    mask = sub.call("causal_mask", n)
    expect_tensor(mask, what=f"causal_mask({n})", shape=(n, n), dtype=torch.bool, inputs=dict(q_len=n))
    expect_equal(mask, torch.ones(n, n, dtype=torch.bool).tril(), what=f"causal_mask({n})", inputs=dict(q_len=n),
                 diagnose_with=lambda m: m.causal_mask(n))


@check(TASK_CAUSAL, points=2, spec="may attend key ``j`` iff ``j <= k_len - q_len + i``")
@given(q_len=st.integers(1, 8), extra=st.integers(1, 8))
def test_causal_rectangular_is_bottom_right_aligned(sub, q_len, extra):
    k_len = q_len + extra
    mask = sub.call("causal_mask", q_len, k_len)
    inputs = dict(q_len=q_len, k_len=k_len)
    expect_tensor(mask, what=f"causal_mask({q_len}, {k_len})", shape=(q_len, k_len), dtype=torch.bool, inputs=inputs)
    expect_equal(mask, _torch_lower_right(q_len, k_len), what=f"causal_mask({q_len}, {k_len}) (compared with "
                 "torch.nn.attention.bias.causal_lower_right)", inputs=inputs,
                 diagnose_with=lambda m: m.causal_mask(q_len, k_len))


@check(TASK_CAUSAL, points=1, spec="Query ``i`` sits at absolute position ``k_len - q_len + i``")
def test_causal_single_query_with_cache_sees_every_key(sub):
    mask = sub.call("causal_mask", 1, 5)
    expect_equal(mask, torch.ones(1, 5, dtype=torch.bool), what="causal_mask(1, 5): the newest token while decoding "
                 "with a cache of 4", inputs=dict(q_len=1, k_len=5), diagnose_with=lambda m: m.causal_mask(1, 5))


@check(TASK_CAUSAL, points=1,
       spec=("q_len: number of queries (>= 0)",
             "ValueError: if a length is negative or ``k_len < q_len``"))
def test_causal_edge_sizes_and_validation(sub):
    empty = sub.call("causal_mask", 0)
    expect_tensor(empty, what="causal_mask(0)", shape=(0, 0), dtype=torch.bool)
    expect_raises(lambda: sub.call("causal_mask", 4, 3), "ValueError", what="causal_mask(4, 3) (k_len < q_len)",
                  diagnose_with=lambda m: m.causal_mask(4, 3))
    expect_raises(lambda: sub.call("causal_mask", -1), "ValueError", what="causal_mask(-1)")


@check(TASK_PAD, points=1,
       spec=("(any integer dtype) or bool; 1/True marks a real token",
             "Bool tensor ``(B, 1, 1, S)``: True where the key is a real token"))
@given(am=padded_attention_masks(), as_bool=st.booleans())
def test_padding_mask_marks_real_keys(sub, am, as_bool):
    given_mask = am.bool() if as_bool else am
    out = sub.call("padding_mask", given_mask)
    B, S = am.shape
    inputs = dict(attention_mask=given_mask)
    expect_tensor(out, what="padding_mask(...)", shape=(B, 1, 1, S), dtype=torch.bool, inputs=inputs)
    expect_equal(out, am.bool()[:, None, None, :], what="padding_mask(...)", inputs=inputs,
                 diagnose_with=lambda m: m.padding_mask(given_mask))


@check(TASK_PAD, points=1, spec="ValueError: if ``attention_mask`` is not 2-dimensional")
def test_padding_mask_rejects_wrong_rank(sub):
    expect_raises(lambda: sub.call("padding_mask", torch.ones(2, 3, 4, dtype=torch.long)), "ValueError",
                  what="padding_mask of a (2, 3, 4) tensor")


@check(TASK_DEC, points=2, spec=("Causal AND key-padding mask", "Bool tensor ``(B, 1, S, S)``"))
@given(am=padded_attention_masks(side="right"))
def test_decoder_mask_right_padding(sub, ref, am):
    _check_decoder_mask(sub, ref, am)


@check(TASK_DEC, points=2, spec="Works with left and right padding")
@given(am=padded_attention_masks(side="left"))
def test_decoder_mask_left_padding(sub, ref, am):
    _check_decoder_mask(sub, ref, am)


def _check_decoder_mask(sub, ref, am):
    out = sub.call("decoder_mask", am)
    B, S = am.shape
    inputs = dict(attention_mask=am)
    expect_tensor(out, what="decoder_mask(...)", shape=(B, 1, S, S), dtype=torch.bool, inputs=inputs)
    expect_equal(out, ref.decoder_mask(am), what="decoder_mask(...)", inputs=inputs,
                 diagnose_with=lambda m: m.decoder_mask(am))


@check(TASK_DEC, points=2, spec="a real query attends to real keys at or before its position")
@given(am=padded_attention_masks(), seed=st.integers(0, 1000))
def test_decoder_mask_makes_attention_causal_and_blind_to_padding(sub, am, seed):
    """Behaviour, not form: with the mask, changing padding or future tokens changes no real output."""
    out = sub.call("decoder_mask", am)
    B, S = am.shape
    expect_tensor(out, what="decoder_mask(...)", shape=(B, 1, S, S), dtype=torch.bool, inputs=dict(attention_mask=am))
    x = randn(seed, B, 2, S, 4)
    attend = lambda t: F.scaled_dot_product_attention(t, t, t, attn_mask=out)  # noqa: E731
    base = attend(x)
    real = am.bool()
    noisy = x.clone()
    noisy[~real[:, None, :, None].expand_as(x)] += 100.0  # change only padding tokens
    changed = (attend(noisy) - base).abs().amax(dim=(1, 3)) > 1e-4  # (B, S)
    if (changed & real).any():
        raise CheckFailed("with your decoder mask, changing a padding token changes the output at a real token: "
                          "real tokens must never attend to padding", inputs=dict(attention_mask=am))
    for t in range(S - 1):  # change everything after position t
        future = x.clone()
        future[:, :, t + 1:] += 50.0
        moved = (attend(future) - base)[:, :, t].abs().amax(dim=(1, 2)) > 1e-4
        if (moved & real[:, t]).any():
            raise CheckFailed(f"with your decoder mask, the output at position {t} changes when later tokens change: "
                              "the mask lets a token see the future", inputs=dict(attention_mask=am))
