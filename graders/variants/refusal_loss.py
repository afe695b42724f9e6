"""Realistic buggy variants of ``refusal_loss`` (SEMANTICS.md §5.3 lists the classics).

Each function replaces one name of the reference module; its source is appended to the reference's,
so it uses the reference's imports (``torch``, ``F``) and ``IGNORE_INDEX``.
"""
import torch
import torch.nn.functional as F

from llmlab.grading.variants import Variants

bugs = Variants("refusal_loss")
IGNORE_INDEX = -100


# --- harmful_prefix_example ---------------------------------------------------------------------
@bugs.bug("prefix_labelled", replaces="harmful_prefix_example",
          mistake="the harmful prefix carries labels: the model would learn to PRODUCE the harmful tokens; only the "
                  "safe response is learnt (-100 on the query and on harmful[:k])")
def prefix_labelled(query_ids, harmful_ids, safe_ids, k):
    if not 0 <= k <= len(harmful_ids):
        raise ValueError("k out of range")
    prefix = list(harmful_ids[:k])
    return list(query_ids) + prefix + list(safe_ids), [IGNORE_INDEX] * len(query_ids) + prefix + list(safe_ids)


@bugs.bug("query_labelled", replaces="harmful_prefix_example",
          mistake="the query carries labels: the loss belongs to the safe response only (-100 on the query and the "
                  "harmful prefix)")
def prefix_query_labelled(query_ids, harmful_ids, safe_ids, k):
    if not 0 <= k <= len(harmful_ids):
        raise ValueError("k out of range")
    ids = list(query_ids) + list(harmful_ids[:k]) + list(safe_ids)
    return ids, list(query_ids) + [IGNORE_INDEX] * k + list(safe_ids)


# --- sample_prefix_length -----------------------------------------------------------------------
@bugs.bug("prefix_never_empty", replaces="sample_prefix_length",
          mistake="the prefix length is never 0: k is uniform on 0..n INCLUDED (k = 0 is plain refusal training), "
                  "e.g. rng.randint(0, n)")
def sample_never_empty(n, rng):
    if n < 0:
        raise ValueError("n must be >= 0")
    return rng.randint(1, n) if n > 0 else 0


@bugs.bug("prefix_never_full", replaces="sample_prefix_length",
          mistake="the prefix length never reaches n: rng.randrange(n) stops at n-1; k is uniform on 0..n with n "
                  "included (rng.randint(0, n) or rng.randrange(n + 1))")
def sample_never_full(n, rng):
    if n < 0:
        raise ValueError("n must be >= 0")
    return rng.randrange(n) if n > 0 else 0


@bugs.bug("prefix_global_random", replaces="sample_prefix_length",
          mistake="the draw uses the module-level `random` instead of the `rng` argument: results cannot be "
                  "reproduced from the caller's seed")
def sample_global_random(n, rng):
    import random

    if n < 0:
        raise ValueError("n must be >= 0")
    return random.randint(0, n)


# --- rto_example --------------------------------------------------------------------------------
@bugs.bug("rto_mask_one_early", replaces="rto_example",
          mistake="the harmful mask starts one token early, on the last query token: it must be True exactly on "
                  "the harmful response's tokens (the shift to \"the position before\" happens inside the loss)")
def rto_example_early(query_ids, harmful_ids):
    ids = list(query_ids) + list(harmful_ids)
    start = max(len(query_ids) - 1, 0) if harmful_ids else len(query_ids)
    return ids, [i >= start for i in range(len(ids))]


# --- refusal_position_loss ----------------------------------------------------------------------
@bugs.bug("rto_not_shifted", replaces="refusal_position_loss",
          mistake="the RTO target is not shifted: logits[:, t] predicts token t+1, so the positions trained to say "
                  "the refusal token are those whose NEXT token is harmful (harmful_mask[:, t + 1])")
def rto_not_shifted(logits, harmful_mask, refusal_token_id):
    mask = harmful_mask.bool()
    if not mask.any():
        raise ValueError("no position qualifies")
    return -F.log_softmax(logits, dim=-1)[..., refusal_token_id][mask].mean()


@bugs.bug("rto_summed", replaces="refusal_position_loss",
          mistake="the RTO losses are summed, not averaged: the loss is the MEAN over the qualifying positions")
def rto_summed(logits, harmful_mask, refusal_token_id):
    targets = harmful_mask[:, 1:].bool()
    if not targets.any():
        raise ValueError("no position qualifies")
    return -F.log_softmax(logits[:, :-1], dim=-1)[..., refusal_token_id][targets].sum()


@bugs.bug("rto_mask_rolled", replaces="refusal_position_loss",
          mistake="the mask is shifted with torch.roll, which wraps harmful_mask[:, 0] around to the last position: "
                  "shift by slicing (logits[:, :-1] with harmful_mask[:, 1:])")
def rto_rolled(logits, harmful_mask, refusal_token_id):
    targets = torch.roll(harmful_mask.bool(), shifts=-1, dims=1)
    if not targets.any():
        raise ValueError("no position qualifies")
    return -F.log_softmax(logits, dim=-1)[..., refusal_token_id][targets].mean()


# --- derta_loss ---------------------------------------------------------------------------------
@bugs.bug("derta_mean_of_means", replaces="derta_loss",
          mistake="the MLE and RTO terms are averaged separately and then combined (mean of means): DeRTa pools "
                  "them, total loss over all counted tokens / their total number")
def derta_mean_of_means(logits, labels, harmful_mask, refusal_token_id):
    V = logits.shape[-1]
    logp = F.log_softmax(logits[:, :-1], dim=-1)
    counted = labels[:, 1:] != IGNORE_INDEX
    rto = harmful_mask[:, 1:].bool()
    terms = []
    if counted.any():
        terms.append(F.cross_entropy(logits[:, :-1].reshape(-1, V), labels[:, 1:].reshape(-1),
                                     ignore_index=IGNORE_INDEX))
    if rto.any():
        terms.append(-logp[..., refusal_token_id][rto].mean())
    if not terms:
        raise ValueError("no token is counted")
    return sum(terms) / len(terms)


@bugs.bug("derta_mle_not_shifted", replaces="derta_loss",
          mistake="the MLE term compares logits[:, t] with labels[:, t]: labels are aligned with the input ids, so "
                  "logits[:, t] must be scored against labels[:, t + 1]")
def derta_mle_not_shifted(logits, labels, harmful_mask, refusal_token_id):
    logp = F.log_softmax(logits, dim=-1)
    counted = labels != IGNORE_INDEX
    mle = -logp.gather(-1, labels.masked_fill(~counted, 0).unsqueeze(-1)).squeeze(-1)[counted]
    rto = -logp[:, :-1, refusal_token_id][harmful_mask[:, 1:].bool()]
    n = mle.numel() + rto.numel()
    if n == 0:
        raise ValueError("no token is counted")
    return (mle.sum() + rto.sum()) / n


@bugs.bug("derta_counts_every_position", replaces="derta_loss",
          mistake="the summed loss is divided by the number of all positions (padding and -100 included): divide by "
                  "the number of counted tokens only")
def derta_every_position(logits, labels, harmful_mask, refusal_token_id):
    logp = F.log_softmax(logits[:, :-1], dim=-1)
    counted = labels[:, 1:] != IGNORE_INDEX
    mle = -logp.gather(-1, labels[:, 1:].masked_fill(~counted, 0).unsqueeze(-1)).squeeze(-1)[counted]
    rto = -logp[..., refusal_token_id][harmful_mask[:, 1:].bool()]
    if mle.numel() + rto.numel() == 0:
        raise ValueError("no token is counted")
    return (mle.sum() + rto.sum()) / counted.numel()


@bugs.bug("derta_returns_float", replaces="derta_loss",
          mistake="the loss is returned as a Python float (.item()): return the 0-dim tensor, or nothing can be "
                  "backpropagated")
def derta_float(logits, labels, harmful_mask, refusal_token_id):
    logp = F.log_softmax(logits[:, :-1], dim=-1)
    counted = labels[:, 1:] != IGNORE_INDEX
    mle = -logp.gather(-1, labels[:, 1:].masked_fill(~counted, 0).unsqueeze(-1)).squeeze(-1)[counted]
    rto = -logp[..., refusal_token_id][harmful_mask[:, 1:].bool()]
    n = mle.numel() + rto.numel()
    if n == 0:
        raise ValueError("no token is counted")
    return ((mle.sum() + rto.sum()) / n).item()
