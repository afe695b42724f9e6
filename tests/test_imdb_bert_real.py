"""End to end with the real MiniLM encoder and real reviews (slow: about a minute on 2 idle cores).

The reference classifier, fine-tuned with the reference loops for two short epochs (256 reviews, 128
tokens), must classify held-out reviews far better than chance, and its training loss must fall.
The full-size run (2,000 / 1,000 reviews, the notebook's settings) is ``scripts/imdb_bert_full.py``.
"""
from __future__ import annotations

import copy

import pytest
import torch

from solutions.imdb_bert import SentimentClassifier, clean_review, evaluate, train_epoch


def _batches(tokenizer, rows, batch_size, max_length):
    for start in range(0, len(rows), batch_size):
        part = rows[start:start + batch_size]
        enc = tokenizer([clean_review(r["text"]) for r in part], truncation=True, max_length=max_length,
                        padding=True, return_tensors="pt")
        yield {"input_ids": enc["input_ids"], "attention_mask": enc["attention_mask"],
               "labels": torch.tensor([r["label"] for r in part])}


@pytest.mark.slow
def test_reference_fine_tunes_minilm_far_above_chance():
    from llmlab.data import load_imdb
    from llmlab.models import load_minilm

    # the model and the data are installed by scripts/install.sh / shared: missing ones fail loudly
    encoder, tokenizer = load_minilm()
    train, test = load_imdb("train", 256, seed=1), load_imdb("test", 200, seed=1)
    torch.manual_seed(0)
    model = SentimentClassifier(copy.deepcopy(encoder), pooling="mean")
    # Few steps: the new head needs a large learning rate, the pre-trained encoder a small one.
    head = list(model.classifier.parameters())
    body = [p for p in model.parameters() if all(p is not h for h in head)]
    optimizer = torch.optim.AdamW([{"params": body, "lr": 2e-5}, {"params": head, "lr": 1e-2}], weight_decay=0.01)
    first = train_epoch(model, _batches(tokenizer, train, 16, 128), optimizer)
    second = train_epoch(model, _batches(tokenizer, train, 16, 128), optimizer)
    assert second < first, (first, second)
    model.eval()
    accuracy = evaluate(model, _batches(tokenizer, test, 50, 128))
    assert not model.training  # evaluate restored eval mode
    # A trial of this recipe (a head at 1e-2, the encoder at 2e-5, ~30 steps) reached 0.77; the notebook's
    # full run reaches 0.870. 200 reviews give a standard error of about 0.03: 0.65 is four of them
    # below 0.77 and five above chance (0.5).
    assert accuracy >= 0.65, accuracy
