"""Alternative correct `refusal_loss`: plain loops over rows and positions, as a first attempt would be."""
import torch


def harmful_prefix_example(query_ids, harmful_ids, safe_ids, k):
    if not isinstance(k, int) or isinstance(k, bool):
        raise TypeError("k must be an int")
    if k < 0 or k > len(harmful_ids):
        raise ValueError("k must be between 0 and len(harmful_ids)")
    input_ids, labels = [], []
    for t in query_ids:
        input_ids.append(int(t))
        labels.append(-100)
    for t in harmful_ids[:k]:
        input_ids.append(int(t))
        labels.append(-100)
    for t in safe_ids:
        input_ids.append(int(t))
        labels.append(int(t))
    return input_ids, labels


def sample_prefix_length(n, rng):
    if type(n) is not int:
        raise TypeError("n must be an int")
    if n < 0:
        raise ValueError("n must be >= 0")
    return min(int(rng.random() * (n + 1)), n)


def rto_example(query_ids, harmful_ids):
    ids = [int(t) for t in query_ids] + [int(t) for t in harmful_ids]
    mask = [i >= len(query_ids) for i in range(len(ids))]
    return ids, mask


def _terms(logits, labels, harmful_mask, refusal_token_id):
    losses = []
    B, T, V = logits.shape
    if not 0 <= refusal_token_id < V:
        raise ValueError("refusal_token_id out of range")
    for b in range(B):
        for t in range(T - 1):
            logp = torch.log_softmax(logits[b, t], dim=-1)
            if labels is not None and int(labels[b, t + 1]) != -100:
                target = int(labels[b, t + 1])
                if not 0 <= target < V:
                    raise ValueError("label out of range")
                losses.append(-logp[target])
            if bool(harmful_mask[b, t + 1]):
                losses.append(-logp[refusal_token_id])
    return losses


def refusal_position_loss(logits, harmful_mask, refusal_token_id):
    if not all(isinstance(t, torch.Tensor) for t in (logits, harmful_mask,)):
        raise TypeError("tensor arguments must be torch tensors")
    if logits.dim() != 3 or tuple(harmful_mask.shape) != tuple(logits.shape[:2]):
        raise ValueError("expected logits (B, T, V) and harmful_mask (B, T)")
    losses = _terms(logits, None, harmful_mask, refusal_token_id)
    if not losses:
        raise ValueError("no position is followed by a harmful token")
    return torch.stack(losses).mean()


def derta_loss(logits, labels, harmful_mask, refusal_token_id):
    if not all(isinstance(t, torch.Tensor) for t in (logits, labels, harmful_mask,)):
        raise TypeError("tensor arguments must be torch tensors")
    if logits.dim() != 3 or tuple(labels.shape) != tuple(logits.shape[:2]) or \
            tuple(harmful_mask.shape) != tuple(logits.shape[:2]):
        raise ValueError("expected logits (B, T, V), labels and harmful_mask (B, T)")
    losses = _terms(logits, labels, harmful_mask, refusal_token_id)
    if not losses:
        raise ValueError("nothing to learn: no label and no harmful position")
    return torch.stack(losses).sum() / len(losses)
