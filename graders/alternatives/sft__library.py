"""Alternative correct `sft`: the libraries do the work (pad_sequence, the model's own loss with
``num_items_in_batch``, clip_grad_norm_)."""
import torch
import torch.nn.functional as F
from torch.nn.utils.rnn import pad_sequence


def collate_sft(examples, pad_id):
    if len(examples) == 0:
        raise ValueError("examples is empty")
    if any(len(e["input_ids"]) == 0 or len(e["input_ids"]) != len(e["labels"]) for e in examples):
        raise ValueError("every example needs as many labels as input_ids, at least one")
    ids = [torch.tensor(e["input_ids"], dtype=torch.long) for e in examples]
    labels = [torch.tensor(e["labels"], dtype=torch.long) for e in examples]
    mask = [torch.ones_like(t) for t in ids]
    return {"input_ids": pad_sequence(ids, batch_first=True, padding_value=pad_id),
            "attention_mask": pad_sequence(mask, batch_first=True, padding_value=0),
            "labels": pad_sequence(labels, batch_first=True, padding_value=-100)}


def sft_loss(logits, labels):
    if logits.dim() != 3 or labels.shape != logits.shape[:-1]:
        raise ValueError("logits (B, T, V) and labels (B, T) expected")
    shifted = F.pad(labels, (0, 1), value=-100)[:, 1:]  # as transformers shifts: the last position has no target
    if bool((shifted == -100).all()):
        raise ValueError("labels train nothing")
    return F.cross_entropy(logits.transpose(1, 2), shifted, ignore_index=-100)


def train_sft(model, batches, optimizer, *, grad_accum=1, scheduler=None, max_grad_norm=None):
    if not isinstance(grad_accum, int) or isinstance(grad_accum, bool) or grad_accum <= 0:
        raise ValueError(f"grad_accum={grad_accum!r}")
    if not (max_grad_norm is None or max_grad_norm > 0):
        raise ValueError(f"max_grad_norm={max_grad_norm!r}")
    model.train()
    it = iter(batches)
    losses = []
    while True:
        group = [b for _, b in zip(range(grad_accum), it)]
        if not group:
            return losses
        # transformers divides the summed loss by num_items_in_batch when it is given
        n = sum(int(b["labels"][:, 1:].ne(-100).sum()) for b in group)
        if n == 0:
            raise ValueError("nothing to train in this step")
        optimizer.zero_grad(set_to_none=True)
        loss = 0.0
        for b in group:
            out = model(input_ids=b["input_ids"], attention_mask=b["attention_mask"], labels=b["labels"],
                        num_items_in_batch=torch.tensor(n))
            out.loss.backward()
            loss += out.loss.item()
        if max_grad_norm is not None:
            torch.nn.utils.clip_grad_norm_(model.parameters(), max_grad_norm)
        optimizer.step()
        if scheduler is not None:
            scheduler.step()
        losses.append(loss)
