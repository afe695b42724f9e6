"""Example tests for `refusal_loss` (the hidden graders check random batches, the sampling law and gradients)."""
import random

import torch
import torch.nn.functional as F

from exercises.refusal_loss import (derta_loss, harmful_prefix_example, refusal_position_loss, rto_example,
                                    sample_prefix_length)


def test_harmful_prefix_example():
    ids, labels = harmful_prefix_example([1, 2], [10, 11, 12], [7, 8], k=2)
    assert ids == [1, 2, 10, 11, 7, 8]
    assert labels == [-100, -100, -100, -100, 7, 8]  # only the safe response is learnt
    assert harmful_prefix_example([1], [10], [7], k=0) == ([1, 7], [-100, 7])


def test_sample_prefix_length_covers_both_ends():
    rng = random.Random(0)
    draws = {sample_prefix_length(3, rng) for _ in range(200)}
    assert draws == {0, 1, 2, 3}
    assert sample_prefix_length(0, rng) == 0


def test_rto_example():
    assert rto_example([5, 6], [1, 2, 3]) == ([5, 6, 1, 2, 3], [False, False, True, True, True])


def test_refusal_position_loss_is_shifted():
    logits = torch.randn(1, 4, 6)
    mask = torch.tensor([[False, True, True, False]])  # tokens 1 and 2 are harmful
    # positions 0 and 1 (the ones that would produce tokens 1 and 2) should say token 5 instead
    expected = -F.log_softmax(logits[0, :2], dim=-1)[:, 5].mean()
    torch.testing.assert_close(refusal_position_loss(logits, mask, 5), expected)


def test_derta_loss_pools_by_token_count():
    logits = torch.randn(2, 4, 6)
    labels = torch.tensor([[-100, -100, 3, 4], [-100, -100, -100, -100]])  # 2 MLE tokens in row 0
    mask = torch.tensor([[False] * 4, [False, True, True, True]])  # 3 RTO positions in row 1
    logp = F.log_softmax(logits, dim=-1)
    total = -(logp[0, 1, 3] + logp[0, 2, 4]) - logp[1, :3, 0].sum()
    torch.testing.assert_close(derta_loss(logits, labels, mask, 0), total / 5)
