"""Fine-tuning a pre-trained encoder to classify movie reviews (notes §2.4).

An encoder such as BERT turns a text into one vector per token. For a sentence-level task we *pool*
those vectors into one (the vector of the ``[CLS]`` token, or the mean over the real tokens), put a
small linear layer on top, and train the whole stack with cross-entropy on labelled examples.
Because the encoder already "knows" the language, a few thousand examples and one pass over them are
enough to get most of the way.

The pieces:

* :func:`clean_review` removes the HTML line breaks IMDB reviews are full of;
* :class:`SentimentClassifier` is encoder + pooling + dropout + linear head;
* :func:`train_epoch` and :func:`evaluate` are the two loops every fine-tuning script has.

A *batch* is a dict with ``input_ids`` and ``attention_mask`` (``(B, T)``, as a tokenizer returns
them with padding) and ``labels`` (``(B,)`` of class ids, 1 = positive); ``batches`` is any
iterable of such dicts (a list, a generator, a ``DataLoader``), consumed once.
"""
from __future__ import annotations

import re

import torch
import torch.nn.functional as F
from torch import nn


def clean_review(text):
    """Normalise the whitespace of a review.

    Every HTML line break ``<br />`` (also written ``<br/>`` or ``<br>``, any letter case) becomes a
    space, then every run of whitespace characters (spaces, tabs, newlines, ...) becomes a single
    space, and leading and trailing whitespace is removed. Nothing else changes.

    Example: ``"Great.<br /><br />I  loved it. "`` -> ``"Great. I loved it."``

    Args:
        text: the review (a str).

    Returns:
        The cleaned str.

    Raises:
        TypeError: if ``text`` is not a str.
    """
    ### BEGIN SOLUTION
    if not isinstance(text, str):
        raise TypeError(f"text must be a str, got {type(text).__name__}")
    return " ".join(re.sub(r"<br\s*/?>", " ", text, flags=re.IGNORECASE).split())
    ### END SOLUTION


class SentimentClassifier(nn.Module):
    """A sequence classifier: a transformers encoder, pooling, dropout and one linear layer.

    ``logits = classifier(dropout(pool(encoder(input_ids, attention_mask).last_hidden_state)))``

    Pooling turns the encoder's ``(B, T, H)`` hidden states into ``(B, H)``:

    * ``"cls"``: the hidden state at position 0 (the ``[CLS]`` token), as is (BERT's extra
      ``pooler`` layer, a dense + tanh on top of it, is not used);
    * ``"mean"``: the average of the hidden states over the positions whose ``attention_mask`` is 1
      (padding does not count).

    Dropout (``nn.Dropout(dropout)``) acts on the pooled vector, in training mode only. The head is
    a single ``nn.Linear(H, num_labels)`` with a bias, where ``H = encoder.config.hidden_size``.
    Suggested attribute names: ``encoder``, ``dropout``, ``classifier``. The encoder is a submodule
    (its weights are trained too).

    Args:
        encoder: a transformers encoder (e.g. ``BertModel``) whose output has ``last_hidden_state``.
        num_labels: number of classes (>= 1).
        dropout: dropout probability in [0, 1].
        pooling: ``"cls"`` or ``"mean"``.

    Raises:
        ValueError: for an unknown ``pooling``, ``num_labels < 1`` or ``dropout`` outside [0, 1].
    """

    def __init__(self, encoder, num_labels=2, dropout=0.1, pooling="cls"):
        super().__init__()
        ### BEGIN SOLUTION
        if pooling not in ("cls", "mean"):
            raise ValueError(f"pooling must be 'cls' or 'mean', got {pooling!r}")
        if num_labels < 1:
            raise ValueError(f"num_labels must be >= 1, got {num_labels}")
        if not 0.0 <= dropout <= 1.0:
            raise ValueError(f"dropout must be in [0, 1], got {dropout}")
        self.encoder = encoder
        self.pooling = pooling
        self.dropout = nn.Dropout(dropout)
        self.classifier = nn.Linear(encoder.config.hidden_size, num_labels)
        ### END SOLUTION

    def forward(self, input_ids, attention_mask):
        """Class logits for a padded batch.

        Args:
            input_ids: ``(B, T)`` token ids.
            attention_mask: ``(B, T)`` of 0/1, 1 = a real token. It is passed to the encoder (real
                tokens never attend to padding) and used by mean pooling.

        Returns:
            Logits ``(B, num_labels)``, in the encoder's dtype. A row's logits do not depend on how
            much padding follows it.
        """
        ### BEGIN SOLUTION
        hidden = self.encoder(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        if self.pooling == "cls":
            pooled = hidden[:, 0]
        else:
            weights = attention_mask.to(hidden.dtype).unsqueeze(-1)  # (B, T, 1)
            pooled = (hidden * weights).sum(dim=1) / weights.sum(dim=1).clamp(min=1.0)
        return self.classifier(self.dropout(pooled))
        ### END SOLUTION


def train_epoch(model, batches, optimizer, *, scheduler=None):
    """One pass over ``batches`` in training mode; returns the mean training loss per example.

    The model is put in training mode (``model.train()``). For each batch, in order: the logits
    ``model(input_ids, attention_mask)``, the cross-entropy with ``labels`` averaged over the batch,
    fresh gradients of that loss (no accumulation across batches, no clipping), one
    ``optimizer.step()``, then one ``scheduler.step()`` if a scheduler is given. The model is left in
    training mode.

    Args:
        model: an ``nn.Module`` called as ``model(input_ids, attention_mask) -> logits (B, C)``.
        batches: an iterable of dicts with ``input_ids``, ``attention_mask`` ``(B, T)`` and
            ``labels`` ``(B,)``; iterated once (it may be a generator). Batches may differ in size.
        optimizer: a ``torch.optim.Optimizer`` over the model's parameters.
        scheduler: optional learning-rate scheduler, stepped after every optimizer step.

    Returns:
        The mean loss per example (a float): the sum over batches of ``batch loss * batch size``,
        divided by the number of examples.

    Raises:
        ValueError: if ``batches`` holds no example.
    """
    ### BEGIN SOLUTION
    model.train()
    device = next(model.parameters(), torch.empty(0)).device  # where the batches must go
    total, count = 0.0, 0
    for batch in batches:
        input_ids = batch["input_ids"].to(device)
        attention_mask = batch["attention_mask"].to(device)
        labels = batch["labels"].to(device)
        optimizer.zero_grad()
        loss = F.cross_entropy(model(input_ids, attention_mask), labels)
        loss.backward()
        optimizer.step()
        if scheduler is not None:
            scheduler.step()
        total += loss.item() * labels.shape[0]
        count += labels.shape[0]
    if count == 0:
        raise ValueError("batches holds no example")
    return total / count
    ### END SOLUTION


def evaluate(model, batches):
    """Accuracy of ``model`` on ``batches``: the fraction of examples whose argmax logit is the label.

    Runs in evaluation mode (no dropout) and without building a graph (``torch.no_grad()``).
    Afterwards every submodule is back in the training/evaluation mode it was in before the call,
    also when the model raises.

    Args:
        model: an ``nn.Module`` called as ``model(input_ids, attention_mask) -> logits (B, C)``.
        batches: an iterable of batch dicts (as for :func:`train_epoch`), iterated once.

    Returns:
        Accuracy over all examples (a float in [0, 1], compared to within 1e-6); batches of
        different sizes count by their number of examples.

    Raises:
        ValueError: if ``batches`` holds no example.
    """
    ### BEGIN SOLUTION
    modes = [(m, m.training) for m in model.modules()]
    device = next(model.parameters(), torch.empty(0)).device  # where the batches must go
    correct, count = 0, 0
    model.eval()
    try:
        with torch.no_grad():
            for batch in batches:
                logits = model(batch["input_ids"].to(device), batch["attention_mask"].to(device))
                labels = batch["labels"].to(device)
                correct += int((logits.argmax(dim=-1) == labels).sum())
                count += labels.shape[0]
    finally:
        for module, mode in modes:
            module.training = mode
    if count == 0:
        raise ValueError("batches holds no example")
    return correct / count
    ### END SOLUTION

