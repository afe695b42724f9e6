"""Alternative correct `bert_masking`: row by row with Python loops, as a beginner would write it.

The selection coin flips come row by row; each selected position then draws its own category with
``torch.multinomial`` and, if random, its own id. Slow but correct.
"""
import torch


def mask_tokens(input_ids, special_tokens_mask, *, mask_token_id, vocab_size, mlm_probability=0.15,
                mask_replace_prob=0.8, random_replace_prob=0.1, generator=None):
    for p in (mlm_probability, mask_replace_prob, random_replace_prob):
        if not (0.0 <= p <= 1.0):
            raise ValueError("probabilities must lie in [0, 1]")
    if mask_replace_prob + random_replace_prob > 1.0:
        raise ValueError("mask_replace_prob + random_replace_prob must be <= 1")
    if len(input_ids.shape) != 2:
        raise ValueError("input_ids must be 2-D")
    if special_tokens_mask.shape != input_ids.shape:
        raise ValueError("shapes differ")
    B, T = input_ids.shape
    corrupted = torch.empty(B, T, dtype=torch.long)
    labels = torch.full((B, T), -100, dtype=torch.long)
    weights = torch.tensor([mask_replace_prob, random_replace_prob,
                            max(0.0, 1.0 - mask_replace_prob - random_replace_prob)], dtype=torch.float64)
    for b in range(B):
        coins = torch.rand(T, generator=generator).tolist()
        row = input_ids[b].tolist()
        special = special_tokens_mask[b].tolist()
        chosen = [t for t in range(T) if not special[t] and coins[t] < mlm_probability]
        kinds = torch.multinomial(weights, len(chosen), replacement=True, generator=generator).tolist() \
            if chosen and weights.sum() > 0 else [2] * len(chosen)
        new = list(row)
        for t, kind in zip(chosen, kinds):
            labels[b, t] = row[t]
            if kind == 0:
                new[t] = mask_token_id
            elif kind == 1:
                new[t] = int(torch.randint(vocab_size, (1,), generator=generator))
        corrupted[b] = torch.tensor(new, dtype=torch.long) if T else corrupted[b]
    return corrupted, labels


def make_nsp_examples(documents, *, rng):
    if len([d for d in documents if len(d)]) < 2:
        raise ValueError("need >= 2 documents with sentences")
    examples = []
    for i in range(len(documents)):
        doc = documents[i]
        for k in range(1, len(doc)):
            a = doc[k - 1]
            if rng.randint(0, 1) == 0:
                examples.append((a, doc[k], 0))
            else:
                j = i
                while j == i or not documents[j]:
                    j = rng.randrange(len(documents))
                examples.append((a, rng.choice(documents[j]), 1))
    return examples
