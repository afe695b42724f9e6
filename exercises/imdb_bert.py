# Exercise stub generated from the reference by `llmlab stubs` -- fill in every body that raises
# NotImplementedError; signatures and docstrings are the spec. Check yourself with `pytest exercises/`.
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
    # YOUR CODE HERE
    raise NotImplementedError("task imdb_bert.clean_review: not implemented yet")


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
        # YOUR CODE HERE
        raise NotImplementedError("task imdb_bert.SentimentClassifier.__init__: not implemented yet")

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
        # YOUR CODE HERE
        raise NotImplementedError("task imdb_bert.SentimentClassifier.forward: not implemented yet")


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
    # YOUR CODE HERE
    raise NotImplementedError("task imdb_bert.train_epoch: not implemented yet")


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
    # YOUR CODE HERE
    raise NotImplementedError("task imdb_bert.evaluate: not implemented yet")

