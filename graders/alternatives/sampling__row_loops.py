"""A correct ``sampling`` written row by row, with Gumbel-max draws.

* Every filter works on one row at a time with plain Python lists of (logit, id) pairs;
* the draw is the Gumbel-max trick: ``argmax(logits + Gumbel noise)`` follows the softmax exactly
  (noise from the generator's uniform numbers);
* ``generate`` passes the cache under its transformers 4.x name ``past_key_values`` (still accepted by
  transformers 5) and updates the mask and positions at the top of each step.
"""
from __future__ import annotations

import torch

NEG = float("-inf")


def _rows(logits):
    if not isinstance(logits, torch.Tensor) or logits.dim() != 2:
        raise ValueError("logits must be (B, V)")
    return logits.tolist()


def _back(rows, like):
    return torch.tensor(rows, dtype=like.dtype, device=like.device).reshape(like.shape)


def apply_temperature(logits, temperature):
    if not temperature > 0:
        raise ValueError("temperature must be positive")
    return torch.div(logits, temperature)


def top_k_filter(logits, k):
    if type(k) is not int or k <= 0:
        raise ValueError("k must be a positive int")
    out = []
    for row in _rows(logits):
        kth = sorted(row, reverse=True)[min(k, len(row)) - 1]
        out.append([v if v >= kth else NEG for v in row])
    return _back(out, logits)


def _softmax(row):
    probs = torch.tensor(row, dtype=torch.float64).softmax(-1)
    return probs.tolist()


def _check_keep_args(name, value, min_tokens_to_keep):
    """The argument checks top-p and min-p share: every problem found goes into one ValueError."""
    problems = []
    if not 0 <= value <= 1:
        problems.append(f"{name} must be within [0, 1]")
    if type(min_tokens_to_keep) is not int or min_tokens_to_keep < 1:
        problems.append("min_tokens_to_keep must be an int >= 1")
    if problems:
        raise ValueError("; ".join(problems))


def top_p_filter(logits, p, *, min_tokens_to_keep=1):
    _check_keep_args("p", p, min_tokens_to_keep)
    out = []
    for row in _rows(logits):
        probs = _softmax(row)
        order = sorted(range(len(row)), key=lambda i: -row[i])
        kept, mass = set(), 0.0
        for rank, i in enumerate(order):
            if rank < min_tokens_to_keep or (mass < p and probs[i] > 0) or (p == 1 and probs[i] > 0):
                kept.add(i)
            mass += probs[i]
        out.append([v if i in kept else NEG for i, v in enumerate(row)])
    return _back(out, logits)


def min_p_filter(logits, min_p, *, min_tokens_to_keep=1):
    _check_keep_args("min_p", min_p, min_tokens_to_keep)
    rows = _rows(logits)
    kept_rows = []
    for row, probs in zip(rows, map(_softmax, rows)):
        threshold = min_p * max(probs)
        favourites = sorted(range(len(row)), key=lambda i: -probs[i])[:min_tokens_to_keep]
        kept_rows.append([v if probs[i] >= threshold or i in favourites else NEG for i, v in enumerate(row)])
    return _back(kept_rows, logits)


def apply_repetition_penalty(logits, input_ids, penalty):
    if not penalty > 0:
        raise ValueError("penalty must be positive")
    if input_ids.dim() != 2 or input_ids.shape[0] != logits.shape[0]:
        raise ValueError("input_ids must be (B, T)")
    out = logits.clone()
    for b, ids in enumerate(input_ids.tolist()):
        for i in set(ids):
            v = out[b, i]
            out[b, i] = v / penalty if v > 0 else v * penalty
    return out


def sample_next_token(logits, *, temperature=1.0, top_k=None, top_p=None, min_p=None, generator=None):
    if temperature < 0:
        raise ValueError("temperature must be >= 0")
    if temperature == 0:
        return logits.argmax(dim=1)
    scores = apply_temperature(logits, temperature)
    scores = scores if top_k is None else top_k_filter(scores, top_k)
    scores = scores if top_p is None else top_p_filter(scores, top_p)
    scores = scores if min_p is None else min_p_filter(scores, min_p)
    u = torch.rand(scores.shape, generator=generator, dtype=torch.float64).clamp(1e-300, 1.0)
    gumbel = -torch.log(-torch.log(u))
    return (scores.double().log_softmax(-1) + gumbel).argmax(dim=1)


def generate(model, input_ids, *, max_new_tokens, attention_mask=None, eos_token_id=None, pad_token_id=None,
             temperature=0.0, top_k=None, top_p=None, min_p=None, repetition_penalty=1.0, generator=None,
             use_cache=True):
    if input_ids.dim() != 2 or input_ids.shape[1] < 1:
        raise ValueError("input_ids must be (B, T) with T >= 1")
    if max_new_tokens < 0:
        raise ValueError("max_new_tokens must be >= 0")
    fill = eos_token_id if pad_token_id is None else pad_token_id
    tokens = input_ids
    mask = torch.ones_like(input_ids) if attention_mask is None else attention_mask.long()
    prompt_real = mask.bool()
    finished = [False] * input_ids.shape[0]
    past = None
    for _ in range(max_new_tokens):
        positions = torch.where(mask.bool(), mask.cumsum(1) - 1, torch.zeros_like(mask))
        with torch.no_grad():
            if past is not None:
                out = model(input_ids=tokens[:, -1:], attention_mask=mask, position_ids=positions[:, -1:],
                            past_key_values=past, use_cache=True)
            else:
                out = model(input_ids=tokens, attention_mask=mask, position_ids=positions, use_cache=use_cache)
        if use_cache:
            past = out.cache
        scores = out.logits[:, -1].float()
        if repetition_penalty != 1.0:
            real = torch.cat([prompt_real, torch.ones(tokens.shape[0], tokens.shape[1] - prompt_real.shape[1],
                                                      dtype=torch.bool)], 1)
            scores = torch.cat([apply_repetition_penalty(scores[b:b + 1], tokens[b:b + 1, real[b]], repetition_penalty)
                                for b in range(tokens.shape[0])])
        picked = sample_next_token(scores, temperature=temperature, top_k=top_k, top_p=top_p, min_p=min_p,
                                   generator=generator).tolist()
        for b in range(len(picked)):
            if finished[b]:
                picked[b] = fill
            elif eos_token_id is not None and picked[b] == eos_token_id:
                finished[b] = True
        tokens = torch.cat([tokens, torch.tensor(picked)[:, None]], 1)
        mask = torch.cat([mask, torch.ones_like(mask[:, :1])], 1)
        if eos_token_id is not None and all(finished):
            break
    return tokens
