"""The reference ``mask_tokens`` against the library it imitates, on MiniLM's real WordPiece vocabulary.

* Exact: with one seeded ``torch.Generator``, the reference makes the same four draws, in the same
  order and with the same shapes, as ``transformers.DataCollatorForLanguageModeling`` (5.24), so the
  corrupted ids and labels are identical bit for bit, defaults and other splits alike.
* Statistical: the collator's own output passes the bounds the hidden graders use (if the library
  failed them, the graders would be wrong, not the students).
* The graders' exact tail bounds agree with scipy (a test extra).
"""
from __future__ import annotations

import warnings

import pytest
import torch

from solutions.bert_masking import make_nsp_examples, mask_tokens

# one worker runs the whole module, so its module-scoped fixture is built once, not once per worker
pytestmark = pytest.mark.xdist_group("minilm_features")

with warnings.catch_warnings():  # the graders' @check marks are registered only in a grading session
    warnings.simplefilter("ignore", pytest.PytestUnknownMarkWarning)
    from graders.test_bert_masking import _categories, binomial_bounds, chi2_pvalue

import transformers  # noqa: E402,F401 - a `models` extra: missing, the module fails with its reason
import scipy.stats as stats  # noqa: E402 - a `test` extra


@pytest.fixture(scope="module")
def tokenizer():
    from llmlab.models import ModelNotInstalled, load_minilm

    try:
        return load_minilm()[1]
    except ModelNotInstalled as exc:  # never a skip: a missing model fails with its reason
        pytest.fail(str(exc))


@pytest.fixture(scope="module")
def features(tokenizer):
    from llmlab.data import DataNotFound, load_imdb

    try:
        texts = [r["text"] for r in load_imdb("train", 64)]
    except DataNotFound as exc:  # never a skip: missing data fails with where it was looked for
        pytest.fail(str(exc))
    enc = tokenizer(texts, truncation=True, max_length=96, return_special_tokens_mask=True)
    return [{"input_ids": i, "special_tokens_mask": s} for i, s in zip(enc["input_ids"], enc["special_tokens_mask"])]


@pytest.mark.parametrize("seed", [0, 1, 2024])
@pytest.mark.parametrize("probs", [(0.15, 0.8, 0.1), (0.3, 0.5, 0.25), (0.5, 0.0, 1.0), (0.2, 1.0, 0.0)])
def test_reference_equals_the_hf_collator_bit_for_bit(tokenizer, features, seed, probs):
    from transformers import DataCollatorForLanguageModeling

    p, pm, pr = probs
    collator = DataCollatorForLanguageModeling(tokenizer, mlm_probability=p, mask_replace_prob=pm,
                                               random_replace_prob=pr, seed=seed)
    hf = collator([dict(f) for f in features])
    padded = tokenizer.pad([dict(f) for f in features], return_tensors="pt")  # pads special_tokens_mask with 1
    ids, special = padded["input_ids"], padded["special_tokens_mask"]
    before = ids.clone()
    corrupted, labels = mask_tokens(ids, special, mask_token_id=tokenizer.mask_token_id, vocab_size=len(tokenizer),
                                    mlm_probability=p, mask_replace_prob=pm, random_replace_prob=pr,
                                    generator=torch.Generator().manual_seed(seed))
    assert torch.equal(ids, before)  # unlike the collator, the reference works on a copy
    assert torch.equal(corrupted, hf["input_ids"])
    assert torch.equal(labels, hf["labels"])


def test_the_collator_passes_the_graders_statistical_bounds(tokenizer, features):
    """400 rows of real reviews: the collator's rates lie within the graders' bounds (alpha = 1e-7)."""
    from transformers import DataCollatorForLanguageModeling

    collator = DataCollatorForLanguageModeling(tokenizer, seed=7)
    batch = collator([dict(f) for f in features * 7])
    padded = tokenizer.pad([dict(f) for f in features * 7], return_tensors="pt")
    special = padded["special_tokens_mask"]
    real = ~special.bool()
    sel = batch["labels"] != -100
    assert not (sel & ~real).any()
    lo, hi = binomial_bounds(int(real.sum()), 0.15, 1e-7)
    assert lo <= int(sel.sum()) <= hi
    # among the selected: [MASK], unchanged, other (V = the whole vocabulary, as the collator draws)
    V = len(tokenizer)
    n = int(sel.sum())
    shown_mask = int((batch["input_ids"][sel] == tokenizer.mask_token_id).sum())
    same = int((batch["input_ids"][sel] == padded["input_ids"][sel]).sum())
    for count, q in ((shown_mask, 0.8 + 0.1 / V), (same, 0.1 + 0.1 / V), (n - shown_mask - same, 0.1 * (V - 2) / V)):
        lo, hi = binomial_bounds(n, q, 1e-7)
        assert lo <= count <= hi, (count, n, q)


def test_graders_categories_agree_with_a_hand_count():
    ids = torch.tensor([[10, 11, 12, 13]])
    special = torch.tensor([[1, 0, 0, 0]])
    corrupted = torch.tensor([[10, 4, 12, 30]])  # STAT_MASK of the graders is 4
    labels = torch.tensor([[-100, 11, 12, 13]])
    assert _categories(corrupted, labels, ids, special) == dict(real=3, selected=3, mask=1, same=1, other=1)


@pytest.mark.parametrize("n,p,alpha", [(100, 0.15, 1e-3), (1000, 0.5, 1e-6), (50_000, 0.1, 1e-7), (3000, 0.02, 1e-9)])
def test_binomial_bounds_match_scipy(n, p, alpha):
    lo, hi = binomial_bounds(n, p, alpha)
    assert stats.binom.cdf(lo - 1, n, p) <= alpha / 2 < stats.binom.cdf(lo, n, p)
    assert stats.binom.sf(hi, n, p) <= alpha / 2 < stats.binom.sf(hi - 1, n, p)


@pytest.mark.parametrize("stat,dof", [(5.0, 3), (30.0, 12), (60.0, 12), (200.0, 20)])
def test_chi2_pvalue_matches_scipy(stat, dof):
    assert chi2_pvalue(stat, dof) == pytest.approx(stats.chi2.sf(stat, dof), rel=1e-9, abs=1e-300)


def test_nsp_label_convention_is_bert_for_pre_training():
    """0 = IsNext, 1 = NotNext, as the library documents ``next_sentence_label``."""
    import random

    from transformers import BertForPreTraining

    doc = " ".join((BertForPreTraining.forward.__doc__ or "").split())
    assert "0 indicates sequence B is a continuation of sequence A" in doc
    assert "1 indicates sequence B is a random sequence" in doc
    docs = [["a0", "a1", "a2", "a3"], ["b0", "b1", "b2"]]
    for a, b, label in make_nsp_examples(docs, rng=random.Random(3)):
        assert (label == 0) == any(d[i:i + 2] == [a, b] for d in docs for i in range(len(d)))
