"""Alternative correct `refusal_loss`: both terms as summed cross-entropies over shifted target tensors."""
import torch
import torch.nn.functional as F


def harmful_prefix_example(query_ids, harmful_ids, safe_ids, k):
    if type(k) is not int:
        raise TypeError(f"k: expected int, got {type(k).__name__}")
    if k not in range(len(harmful_ids) + 1):
        raise ValueError(f"k={k} is not in 0..{len(harmful_ids)}")
    ids = [*query_ids, *harmful_ids[:k], *safe_ids]
    n_hidden = len(query_ids) + k
    return [int(t) for t in ids], [-100 if i < n_hidden else int(t) for i, t in enumerate(ids)]


def sample_prefix_length(n, rng):
    if type(n) is not int:
        raise TypeError("n must be an int")
    if n < 0:
        raise ValueError(f"n={n} < 0")
    return rng.randrange(n + 1)


def rto_example(query_ids, harmful_ids):
    return [int(t) for t in [*query_ids, *harmful_ids]], [False] * len(query_ids) + [True] * len(harmful_ids)


def _rto_targets(harmful_mask, refusal_token_id):
    """Targets aligned with logits[:, :-1]: the refusal id where the next token is harmful, else -100."""
    nxt = harmful_mask[:, 1:].to(torch.bool)
    return torch.where(nxt, torch.full_like(nxt, refusal_token_id, dtype=torch.long),
                       torch.full_like(nxt, -100, dtype=torch.long))


def _summed_ce(logits, targets):
    V = logits.shape[-1]
    flat = targets.reshape(-1)
    return F.cross_entropy(logits[:, :-1].reshape(-1, V), flat, ignore_index=-100, reduction="sum"), \
        int((flat != -100).sum())


def refusal_position_loss(logits, harmful_mask, refusal_token_id):
    if not all(isinstance(t, torch.Tensor) for t in (logits, harmful_mask,)):
        raise TypeError("tensor arguments must be torch tensors")
    if logits.ndim != 3 or harmful_mask.shape != logits.shape[:2]:
        raise ValueError("bad shapes")
    if refusal_token_id not in range(logits.shape[-1]):
        raise ValueError("refusal_token_id out of range")
    total, n = _summed_ce(logits, _rto_targets(harmful_mask, refusal_token_id))
    if n == 0:
        raise ValueError("harmful_mask selects no position")
    return total / n


def derta_loss(logits, labels, harmful_mask, refusal_token_id):
    if not all(isinstance(t, torch.Tensor) for t in (logits, labels, harmful_mask,)):
        raise TypeError("tensor arguments must be torch tensors")
    if logits.ndim != 3 or labels.shape != logits.shape[:2] or harmful_mask.shape != logits.shape[:2]:
        raise ValueError("bad shapes")
    V = logits.shape[-1]
    if refusal_token_id not in range(V):
        raise ValueError("refusal_token_id out of range")
    nxt = labels[:, 1:].long()
    if ((nxt != -100) & ((nxt < 0) | (nxt >= V))).any():
        raise ValueError("labels out of range")
    mle, n_mle = _summed_ce(logits, nxt)
    rto, n_rto = _summed_ce(logits, _rto_targets(harmful_mask, refusal_token_id))
    if n_mle + n_rto == 0:
        raise ValueError("no token to learn from")
    return (mle + rto) / (n_mle + n_rto)
