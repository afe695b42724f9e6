"""Supervised fine-tuning (SFT) of a chat model on dialogue (notes §3.3.1).

A pre-trained model continues text; an assistant answers. The step between them is plain next-token
training on conversations rendered in the chat format, with one twist: only the assistant's words
are learnt. ``chat_format.build_sft_example`` already gives each token a label, ``-100`` on the
system and user turns and on every header, the token id on what the assistant says. This module
turns those examples into batches, computes the loss and runs the training pass:

* ``collate_sft`` pads a list of examples into ``(B, T)`` tensors. Padding gets label ``-100``, so it
  never counts, and ``attention_mask`` 0, so no real token looks at it.
* ``sft_loss`` is the mean cross-entropy over the trained targets. Position ``t`` of the logits
  predicts token ``t + 1``, so labels are shifted inside, exactly as transformers' causal LMs do when
  they are given ``labels``.
* ``train_sft`` makes one pass over the batches with gradient accumulation: ``grad_accum`` micro-batches
  per optimizer step, weighted so the update equals the one a single big batch would give. That
  needs the mean over *tokens* of the whole step, not the mean of the micro-batches' means (short
  answers would weigh as much as long ones) nor their sum (``grad_accum`` times too large).

Memory is what accumulation buys: a micro-batch of 2 conversations with ``grad_accum=8`` trains like
a batch of 16 at the activation memory of 2.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

IGNORE_INDEX = -100


def collate_sft(examples, pad_id):
    """Pad SFT examples on the right into one batch.

    Row ``b`` holds example ``b``'s ``input_ids`` followed by ``pad_id`` up to ``T``, the length of the
    longest example; ``attention_mask`` is 1 on the example's own tokens and 0 on padding; ``labels``
    are the example's labels followed by ``-100`` on padding (padding is never trained). The examples'
    lists are not modified.

    Args:
        examples: a non-empty list of dicts with ``input_ids`` and ``labels``, lists of int of the same
            length (at least 1), as ``build_sft_example`` returns. Other keys are ignored.
        pad_id: the token id used for padding (an int).

    Returns:
        ``{"input_ids", "attention_mask", "labels"}``: three ``(B, T)`` tensors of dtype ``torch.long``.

    Raises:
        ValueError: if ``examples`` is empty, or an example's ``input_ids`` is empty or its ``labels``
            differ in length from its ``input_ids``.
    """
    ### BEGIN SOLUTION
    if len(examples) == 0:
        raise ValueError("examples must hold at least one example")
    rows = []
    for n, example in enumerate(examples):
        ids, labels = [int(t) for t in example["input_ids"]], [int(t) for t in example["labels"]]
        if not ids:
            raise ValueError(f"examples[{n}]['input_ids'] is empty")
        if len(labels) != len(ids):
            raise ValueError(f"examples[{n}]: labels has {len(labels)} entries for {len(ids)} input_ids")
        rows.append((ids, labels))
    T = max(len(ids) for ids, _ in rows)
    input_ids = torch.full((len(rows), T), int(pad_id), dtype=torch.long)
    attention_mask = torch.zeros((len(rows), T), dtype=torch.long)
    labels = torch.full((len(rows), T), IGNORE_INDEX, dtype=torch.long)
    for b, (ids, labs) in enumerate(rows):
        input_ids[b, :len(ids)] = torch.tensor(ids)
        attention_mask[b, :len(ids)] = 1
        labels[b, :len(ids)] = torch.tensor(labs)
    return {"input_ids": input_ids, "attention_mask": attention_mask, "labels": labels}
    ### END SOLUTION


def sft_loss(logits, labels):
    """The SFT loss: mean cross-entropy over every trained target, labels shifted inside.

    Position ``t`` of ``logits`` predicts ``labels[:, t + 1]``; a target of ``-100`` is not trained.
    The mean is over trained targets (tokens) of the whole batch, not per sequence: the same value as a
    transformers causal LM's ``loss`` when it is called with these ``labels``.

    Args:
        logits: ``(B, T, V)`` float tensor (float32 or float64).
        labels: ``(B, T)`` integer tensor, aligned with the input ids, ``-100`` where nothing is learnt.

    Returns:
        A scalar tensor of the logits' dtype, differentiable with respect to ``logits``.

    Raises:
        ValueError: if ``logits`` is not 3-D, ``labels`` not 2-D, their ``(B, T)`` differ, or no target
            is trained (every shifted label is ``-100``).
    """
    ### BEGIN SOLUTION
    if logits.dim() != 3:
        raise ValueError(f"logits must be (B, T, V), got shape {tuple(logits.shape)}")
    if labels.dim() != 2 or labels.shape != logits.shape[:2]:
        raise ValueError(f"labels must be (B, T) = {tuple(logits.shape[:2])}, got {tuple(labels.shape)}")
    targets = labels[:, 1:]
    if not (targets != IGNORE_INDEX).any():
        raise ValueError("labels hold no trained target (every shifted label is -100)")
    return F.cross_entropy(logits[:, :-1].flatten(0, 1), targets.flatten(), ignore_index=IGNORE_INDEX)
    ### END SOLUTION


def train_sft(model, batches, optimizer, *, grad_accum=1, scheduler=None, max_grad_norm=None):
    """One pass of supervised fine-tuning with gradient accumulation; returns the loss of each step.

    The model is put in training mode. Batches are taken ``grad_accum`` at a time (the last group may
    be shorter); each group makes one optimizer step. For each micro-batch the logits come from
    ``model(input_ids=..., attention_mask=...).logits``, and its summed cross-entropy over trained
    targets (shifted as in ``sft_loss``) is divided by the number of trained targets of the *whole
    group* before ``backward()``: the gradient is that of the mean over every trained token of the
    group, the same update as one big batch holding the group's examples. After the group: the
    gradient norm is clipped to ``max_grad_norm`` as ``torch.nn.utils.clip_grad_norm_`` does (if
    given), then one ``optimizer.step()`` and one ``scheduler.step()`` (if given). Each group starts
    from zero gradients (``optimizer.zero_grad()`` before its first backward): no gradient from an
    earlier step, or from before the call, leaks into a step.

    Args:
        model: a causal LM (e.g. transformers' ``LlamaForCausalLM``) whose output has ``.logits``.
        batches: an iterable of dicts with ``input_ids``, ``attention_mask`` and ``labels`` ``(B, T)``
            (as ``collate_sft`` returns); iterated once. Micro-batches may differ in size and length.
        optimizer: a ``torch.optim.Optimizer`` over the parameters being trained.
        grad_accum: micro-batches per optimizer step, an int >= 1.
        scheduler: optional learning-rate scheduler, stepped once per optimizer step.
        max_grad_norm: ``None`` (no clipping) or a float > 0.

    Returns:
        A list of float, one per optimizer step: the mean loss over the step's trained tokens (the
        micro-batches' losses weighted by their trained tokens).

    Raises:
        ValueError: if ``grad_accum`` is not an int >= 1, ``max_grad_norm`` is not ``None`` or > 0, or
            a step's micro-batches hold no trained target.
    """
    ### BEGIN SOLUTION
    if isinstance(grad_accum, bool) or not isinstance(grad_accum, int) or grad_accum < 1:
        raise ValueError(f"grad_accum must be an int >= 1, got {grad_accum!r}")
    if max_grad_norm is not None and not max_grad_norm > 0:
        raise ValueError(f"max_grad_norm must be None or > 0, got {max_grad_norm!r}")
    model.train()
    device = next(model.parameters()).device
    losses, group = [], []

    def step(group):
        # the whole group's trained tokens, known before any backward: every token weighs the same
        n_trained = sum(int((b["labels"][:, 1:] != IGNORE_INDEX).sum()) for b in group)
        if n_trained == 0:
            raise ValueError("an optimizer step's micro-batches hold no trained target")
        optimizer.zero_grad()  # nothing from an earlier step (or from before the pass) leaks in
        total = 0.0
        for batch in group:
            input_ids = batch["input_ids"].to(device)
            labels = batch["labels"].to(device)
            logits = model(input_ids=input_ids, attention_mask=batch["attention_mask"].to(device)).logits
            loss_sum = F.cross_entropy(logits[:, :-1].flatten(0, 1), labels[:, 1:].flatten(),
                                       ignore_index=IGNORE_INDEX, reduction="sum")
            (loss_sum / n_trained).backward()
            total += loss_sum.item()
        if max_grad_norm is not None:
            torch.nn.utils.clip_grad_norm_(model.parameters(), max_grad_norm)
        optimizer.step()
        if scheduler is not None:
            scheduler.step()
        losses.append(total / n_trained)

    for batch in batches:
        group.append(batch)
        if len(group) == grad_accum:
            step(group)
            group = []
    if group:
        step(group)
    return losses
    ### END SOLUTION
