"""The kit's own checks of `refusal_loss`: the reference against DeRTa's training code (re-implemented from
SEMANTICS.md §5.2: RTO rows get the refusal id as label on every response token, then ONE
`CrossEntropyLoss(ignore_index=-100)` over the batch), and the grader's chi-square helper against scipy."""
from __future__ import annotations

import random

import pytest
import torch
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from graders.strategies import randn, seeds
from graders.test_refusal_loss import ALPHA, brute_force_terms, chi2_sf, chi2_threshold, loss_batches
from solutions import refusal_loss as ref


def derta_repo_loss(logits, labels, harmful_mask, refusal_id):
    """`MyLlamaForCausalLM.forward` of the DeRTa repository, for rows that are either MLE rows or RTO rows:
    an RTO row's labels become the refusal id on its response tokens, then the usual shifted, pooled CE."""
    labels = labels.clone()
    rto_rows = harmful_mask.any(dim=1)
    labels[rto_rows] = torch.where(harmful_mask[rto_rows], torch.full_like(labels[rto_rows], refusal_id),
                                   torch.full_like(labels[rto_rows], -100))
    V = logits.shape[-1]
    return torch.nn.CrossEntropyLoss(ignore_index=-100)(logits[:, :-1].reshape(-1, V), labels[:, 1:].reshape(-1))


@settings(max_examples=300, deadline=None)
@given(batch=loss_batches(kinds=("mle", "rto")))
def test_derta_loss_equals_the_repository_formulation(batch):
    logits, labels, mask, refusal = batch
    _, count = brute_force_terms(logits, labels, mask, refusal)
    assume(count > 0)
    atol = 1e-10 if logits.dtype == torch.float64 else 1e-5
    torch.testing.assert_close(ref.derta_loss(logits, labels, mask, refusal),
                               derta_repo_loss(logits, labels, mask, refusal), atol=atol, rtol=1e-5)


@settings(max_examples=200, deadline=None)
@given(batch=loss_batches(kinds=("rto",)))
def test_rto_loss_is_derta_loss_without_labels(batch):
    logits, labels, mask, refusal = batch
    assume(bool(mask[:, 1:].any()))
    torch.testing.assert_close(ref.refusal_position_loss(logits, mask, refusal),
                               ref.derta_loss(logits, labels, mask, refusal))


def test_examples_feed_the_losses_end_to_end():
    """harmful_prefix_example + rto_example rows, padded into one batch, give the hand-computed pooled loss."""
    q, h, s = [1, 2], [3, 4, 5], [6, 7]
    rows = [ref.harmful_prefix_example(q, h, s, 2), ref.rto_example(q, h)]
    T = max(len(r[0]) for r in rows)
    labels = torch.tensor([rows[0][1] + [-100] * (T - len(rows[0][1])), [-100] * T])
    mask = torch.tensor([[False] * T, rows[1][1] + [False] * (T - len(rows[1][1]))])
    logits = randn(3, 2, T, 8)
    logp = torch.log_softmax(logits, -1)
    # MLE: positions 3, 4 predict the safe tokens 6, 7; RTO: positions 1, 2, 3 (the next token is harmful)
    terms = [-logp[0, 3, 6], -logp[0, 4, 7], -logp[1, 1, 0], -logp[1, 2, 0], -logp[1, 3, 0]]
    torch.testing.assert_close(ref.derta_loss(logits, labels, mask, 0), torch.stack(terms).mean())


@pytest.mark.parametrize("df", [1, 2, 3, 4, 5, 6, 9])
def test_chi_square_helper_matches_scipy(df):
    from scipy import stats  # a test extra
    for x in (0.1, 1.0, 3.0, 10.0, 30.0, 60.0):
        assert chi2_sf(x, df) == pytest.approx(stats.chi2.sf(x, df), rel=1e-9, abs=1e-15)
    assert chi2_threshold(df, ALPHA) == pytest.approx(stats.chi2.isf(ALPHA, df), rel=1e-6)


def test_uniformity_check_passes_many_seeds_of_the_reference():
    """The grader's statistic on the reference with 200 seeds other than the graded one: at a false-alarm rate
    of 1e-6 per test, not one of these should fail."""
    for seed in range(200):
        rng = random.Random(seed)
        for n in (1, 3, 6):
            draws = [ref.sample_prefix_length(n, rng) for _ in range(120 * (n + 1))]
            expected = len(draws) / (n + 1)
            stat = sum((draws.count(v) - expected) ** 2 / expected for v in range(n + 1))
            assert stat <= chi2_threshold(n, ALPHA)


@given(seed=seeds, n=st.integers(0, 20))
def test_sample_prefix_length_uses_only_rng(seed, n):
    random.seed(0)
    a = [ref.sample_prefix_length(n, random.Random(seed)) for _ in range(3)]
    random.seed(1)
    b = [ref.sample_prefix_length(n, random.Random(seed)) for _ in range(3)]
    assert a == b and all(0 <= k <= n for k in a)
