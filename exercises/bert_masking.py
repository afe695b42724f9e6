# Exercise stub generated from the reference by `llmlab stubs` -- fill in every body that raises
# NotImplementedError; signatures and docstrings are the spec. Check yourself with `pytest exercises/`.
"""BERT's two pre-training tasks: masked-token prediction and next-sentence prediction (notes §2.2).

BERT is an encoder: every token sees the whole sentence, left and right. It cannot be trained by
predicting the next token (it would see the answer), so it learns by *repairing* text instead.

* **Masked language modelling (MLM).** Some positions are chosen at random (15 % by default, each
  position independently). The model must predict the original token at each chosen position. Most
  chosen positions are replaced by ``[MASK]`` (80 %), some by a random token (10 %), and the rest are
  left as they are (10 %). The random and unchanged cases matter: ``[MASK]`` never occurs when the
  model is later used on real text, so the model must also learn to doubt and to confirm tokens that
  look normal. The loss is taken only at the chosen positions; every other label is ``-100``, the
  value ``torch.nn.functional.cross_entropy`` ignores.
* **Next-sentence prediction (NSP).** Pairs of sentences ``(A, B)``: half the time ``B`` really
  follows ``A`` in its document (label 0, *IsNext*), half the time ``B`` comes from another document
  (label 1, *NotNext*). The model classifies the pair from its ``[CLS]`` vector.

The masking rule here is the one of ``transformers.DataCollatorForLanguageModeling`` (each position
is selected by its own coin flip, so the number of selected tokens per sequence varies), not the
exact-count rule of the original BERT data generator. The order in which random numbers are drawn is
free; only the distribution of the result is specified.
"""
from __future__ import annotations

import torch

IGNORE_INDEX = -100


def mask_tokens(input_ids, special_tokens_mask, *, mask_token_id, vocab_size, mlm_probability=0.15,
                mask_replace_prob=0.8, random_replace_prob=0.1, generator=None):
    """Corrupt a batch of token ids for masked language modelling; return ``(corrupted_ids, labels)``.

    Every position whose ``special_tokens_mask`` is 0 is *selected* independently with probability
    ``mlm_probability``; positions with ``special_tokens_mask`` 1 (``[CLS]``, ``[SEP]``, ``[PAD]``,
    ...) are never selected. Each selected position, independently:

    * becomes ``mask_token_id`` with probability ``mask_replace_prob``;
    * becomes a token drawn uniformly from ``[0, vocab_size)`` (every id, special ones included, may
      be drawn; the draw may equal the original id) with probability ``random_replace_prob``;
    * keeps its original id otherwise.

    Positions that are not selected are never changed.

    Args:
        input_ids: integer tensor ``(B, T)`` of token ids (any integer dtype; ``B`` or ``T`` may be 0).
        special_tokens_mask: tensor ``(B, T)`` of 0/1 (or bool); 1 = never select this position.
        mask_token_id: the id of ``[MASK]`` (an int).
        vocab_size: random replacements are drawn from ``[0, vocab_size)`` (an int >= 1).
        mlm_probability: probability of selecting a non-special position, in [0, 1].
        mask_replace_prob: probability that a selected position becomes ``[MASK]``, in [0, 1].
        random_replace_prob: probability that a selected position becomes a random token, in [0, 1].
        generator: optional ``torch.Generator``; every random number comes from it (so the same seed
            gives the same result), or from torch's global generator when it is None.

    Returns:
        ``(corrupted_ids, labels)``, both ``torch.long`` of shape ``(B, T)``: the corrupted copy of
        ``input_ids``, and the original id at selected positions with ``-100`` everywhere else.
        ``input_ids`` and ``special_tokens_mask`` are not modified.

    Raises:
        TypeError: if ``input_ids`` or ``special_tokens_mask`` is not a tensor, or ``input_ids`` is
            not an integer tensor.
        ValueError: if ``input_ids`` is not 2-dimensional, the two masks' shapes differ, a
            probability is outside [0, 1], ``mask_replace_prob + random_replace_prob > 1``, or
            ``vocab_size < 1``.
    """
    # YOUR CODE HERE
    raise NotImplementedError("task bert_masking.mask_tokens: not implemented yet")


def make_nsp_examples(documents, *, rng):
    """Sentence pairs for next-sentence prediction, one per pair of adjacent sentences.

    Documents are visited in order, and within each document the adjacent pairs ``(a, b)`` in order.
    For each pair, one draw from ``rng`` decides, with probability 1/2 each:

    * ``(a, b, 0)``: *IsNext*, ``b`` really follows ``a``;
    * ``(a, c, 1)``: *NotNext*, ``c`` is a sentence drawn at random from a **different** document
      (never from ``a``'s own document, even when that document has other sentences).

    Labels follow ``BertForPreTraining``'s ``next_sentence_label``: 0 = IsNext, 1 = NotNext.

    Args:
        documents: ``list[list[str]]``; each document is a list of sentences. A document with fewer
            than two sentences contributes no pair (but may provide NotNext sentences).
        rng: a ``random.Random``; every random choice comes from it, so the same seed gives the same
            examples.

    Returns:
        ``list[tuple[str, str, int]]``: ``(sentence_a, sentence_b, label)`` for every adjacent pair.

    Raises:
        ValueError: if fewer than two documents have at least one sentence (NotNext needs another
            document to draw from).
    """
    # YOUR CODE HERE
    raise NotImplementedError("task bert_masking.make_nsp_examples: not implemented yet")
