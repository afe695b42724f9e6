"""Example tests for `bert_masking` (the hidden graders check much more: rates and their statistics,
uniform random tokens, independence of the selection, reproducibility, argument checks)."""
import random

import torch

from exercises.bert_masking import make_nsp_examples, mask_tokens


def _batch():
    ids = torch.tensor([[101, 7592, 2088, 2003, 2307, 102, 0, 0],
                        [101, 1045, 2066, 2009, 1012, 2204, 2143, 102]])
    special = torch.tensor([[1, 0, 0, 0, 0, 1, 1, 1],
                            [1, 0, 0, 0, 0, 0, 0, 1]])
    return ids, special


def test_mask_tokens_shapes_and_labels():
    ids, special = _batch()
    corrupted, labels = mask_tokens(ids, special, mask_token_id=103, vocab_size=30522, mlm_probability=0.5,
                                    generator=torch.Generator().manual_seed(0))
    assert corrupted.shape == labels.shape == ids.shape
    assert corrupted.dtype == labels.dtype == torch.long
    selected = labels != -100
    assert torch.equal(labels[selected], ids[selected])  # the label is the ORIGINAL token
    assert torch.equal(corrupted[~selected], ids[~selected])  # unselected tokens are untouched
    assert not selected[special.bool()].any()  # [CLS], [SEP], [PAD] are never selected


def test_mask_tokens_everything_masked():
    ids, special = _batch()
    corrupted, labels = mask_tokens(ids, special, mask_token_id=103, vocab_size=30522, mlm_probability=1.0,
                                    mask_replace_prob=1.0, random_replace_prob=0.0)
    assert torch.equal(corrupted, ids.masked_fill(special == 0, 103))
    assert torch.equal(labels, ids.masked_fill(special == 1, -100))


def test_mask_tokens_same_seed_same_result_and_inputs_untouched():
    ids, special = _batch()
    before = ids.clone()
    a = mask_tokens(ids, special, mask_token_id=103, vocab_size=30522, generator=torch.Generator().manual_seed(3))
    b = mask_tokens(ids, special, mask_token_id=103, vocab_size=30522, generator=torch.Generator().manual_seed(3))
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    assert torch.equal(ids, before)


def test_mask_tokens_selection_rate_is_about_15_percent():
    ids = torch.randint(1000, 2000, (200, 100))
    special = torch.zeros_like(ids)
    _, labels = mask_tokens(ids, special, mask_token_id=103, vocab_size=30522,
                            generator=torch.Generator().manual_seed(1))
    rate = (labels != -100).float().mean().item()
    assert 0.14 < rate < 0.16  # 20,000 coin flips: 0.15 with a standard deviation of 0.0025


def test_nsp_examples_by_hand():
    docs = [["The film opens.", "It rains.", "The end."], ["A cat sleeps.", "A dog barks."]]
    examples = make_nsp_examples(docs, rng=random.Random(0))
    assert [a for a, _, _ in examples] == ["The film opens.", "It rains.", "A cat sleeps."]
    for a, b, label in examples:
        if label == 0:  # IsNext: b follows a
            assert any(doc[i:i + 2] == [a, b] for doc in docs for i in range(len(doc)))
        else:  # NotNext: b comes from the other document
            assert not any(a in doc and b in doc for doc in docs)
