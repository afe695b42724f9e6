"""Example tests for `imdb_bert` (the hidden graders also check the logits' values, padding, dropout,
that the encoder trains, and the loops' updates, modes and bookkeeping)."""
import torch
from transformers import BertConfig, BertModel

from exercises.imdb_bert import SentimentClassifier, clean_review, evaluate, train_epoch


def _tiny_encoder():
    torch.manual_seed(0)
    config = BertConfig(vocab_size=30, hidden_size=8, num_hidden_layers=1, num_attention_heads=2,
                        intermediate_size=16, max_position_embeddings=16, hidden_dropout_prob=0.0,
                        attention_probs_dropout_prob=0.0)
    return BertModel(config).eval()


def _batch():
    ids = torch.tensor([[1, 5, 6, 7, 2], [1, 8, 2, 0, 0]])
    return {"input_ids": ids, "attention_mask": (ids != 0).long(), "labels": torch.tensor([1, 0])}


def test_clean_review():
    assert clean_review("Great.<br /><br />I  loved\tit. ") == "Great. I loved it."
    assert clean_review("No change here.") == "No change here."


def test_classifier_output_shape():
    model = SentimentClassifier(_tiny_encoder(), num_labels=3, pooling="mean").eval()
    batch = _batch()
    assert model(batch["input_ids"], batch["attention_mask"]).shape == (2, 3)


def test_classifier_ignores_padding():
    model = SentimentClassifier(_tiny_encoder(), pooling="mean").eval()
    batch = _batch()
    together = model(batch["input_ids"], batch["attention_mask"])
    alone = model(batch["input_ids"][1:, :3], batch["attention_mask"][1:, :3])
    torch.testing.assert_close(together[1:], alone, atol=1e-5, rtol=1e-4)


def test_train_then_evaluate():
    model = SentimentClassifier(_tiny_encoder(), dropout=0.0)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    loss = train_epoch(model, [_batch(), _batch()], optimizer)
    assert isinstance(loss, float) and loss > 0
    assert model.training
    accuracy = evaluate(model, [_batch()])
    assert isinstance(accuracy, float) and 0.0 <= accuracy <= 1.0
    assert model.training  # evaluate restores the previous mode
