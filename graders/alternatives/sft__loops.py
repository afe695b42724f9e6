"""Alternative correct `sft`: plain Python lists and explicit per-token loops, as a first attempt would be."""
import torch


def collate_sft(examples, pad_id):
    if not examples:
        raise ValueError("no examples")
    for e in examples:
        if len(e["input_ids"]) == 0 or len(e["labels"]) != len(e["input_ids"]):
            raise ValueError("bad example")
    longest = max(len(e["input_ids"]) for e in examples)
    ids, mask, labels = [], [], []
    for e in examples:
        gap = longest - len(e["input_ids"])
        ids.append(list(e["input_ids"]) + [pad_id] * gap)
        mask.append([1] * len(e["input_ids"]) + [0] * gap)
        labels.append(list(e["labels"]) + [-100] * gap)
    return {"input_ids": torch.tensor(ids, dtype=torch.long), "attention_mask": torch.tensor(mask, dtype=torch.long),
            "labels": torch.tensor(labels, dtype=torch.long)}


def _summed(logits, labels):
    """(sum of -log p over trained targets, their number), one target at a time."""
    total, count = logits.new_zeros(()), 0
    logp = torch.log_softmax(logits, dim=-1)
    for b in range(labels.shape[0]):
        for t in range(labels.shape[1] - 1):
            target = int(labels[b, t + 1])
            if target != -100:
                total = total - logp[b, t, target]
                count += 1
    return total, count


def sft_loss(logits, labels):
    if logits.ndim != 3 or labels.ndim != 2 or tuple(labels.shape) != tuple(logits.shape[:2]):
        raise ValueError("logits must be (B, T, V) and labels (B, T)")
    total, count = _summed(logits, labels)
    if count == 0:
        raise ValueError("no trained target")
    return total / count


def train_sft(model, batches, optimizer, *, grad_accum=1, scheduler=None, max_grad_norm=None):
    if type(grad_accum) is not int or grad_accum < 1:
        raise ValueError("grad_accum must be an int >= 1")
    if max_grad_norm is not None and max_grad_norm <= 0:
        raise ValueError("max_grad_norm must be > 0")
    model.train()
    groups, current = [], []
    for batch in batches:
        current.append(batch)
        if len(current) == grad_accum:
            groups.append(current)
            current = []
    if current:
        groups.append(current)
    history = []
    for group in groups:
        for p in model.parameters():
            p.grad = None
        count = sum(int((b["labels"][:, 1:] != -100).sum()) for b in group)
        if count == 0:
            raise ValueError("no trained target in this step")
        step_total = 0.0
        for b in group:
            total, _ = _summed(model(input_ids=b["input_ids"], attention_mask=b["attention_mask"]).logits, b["labels"])
            (total / count).backward()
            step_total += float(total.detach())
        if max_grad_norm is not None:
            grads = [p.grad for p in model.parameters() if p.grad is not None]
            norm = torch.sqrt(sum((g.double() ** 2).sum() for g in grads))
            scale = max_grad_norm / (float(norm) + 1e-6)
            if scale < 1:
                for g in grads:
                    g.mul_(scale)
        optimizer.step()
        if scheduler is not None:
            scheduler.step()
        history.append(step_total / count)
    return history
