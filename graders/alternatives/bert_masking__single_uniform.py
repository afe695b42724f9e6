"""Alternative correct `bert_masking`: one uniform number per position decides the category.

Selection uses ``torch.rand < p``; a second uniform number splits the selected positions into
[MASK] / random / unchanged by intervals; random ids are drawn only for the positions that need one.
The random stream is consumed differently from the reference and from HF's collator.
"""
import torch


def mask_tokens(input_ids, special_tokens_mask, *, mask_token_id, vocab_size, mlm_probability=0.15,
                mask_replace_prob=0.8, random_replace_prob=0.1, generator=None):
    if not torch.is_tensor(input_ids) or not torch.is_tensor(special_tokens_mask):
        raise TypeError("tensors expected")
    if input_ids.ndim != 2:
        raise ValueError("input_ids must be (B, T)")
    if tuple(special_tokens_mask.shape) != tuple(input_ids.shape):
        raise ValueError("special_tokens_mask must match input_ids")
    probs = {"mlm_probability": mlm_probability, "mask_replace_prob": mask_replace_prob,
             "random_replace_prob": random_replace_prob}
    for name, value in probs.items():
        if value < 0 or value > 1:
            raise ValueError(f"{name} out of [0, 1]: {value}")
    if mask_replace_prob + random_replace_prob > 1:
        raise ValueError("mask_replace_prob + random_replace_prob > 1")
    original = input_ids.clone().long()
    u_select = torch.rand(original.shape, generator=generator)
    u_kind = torch.rand(original.shape, generator=generator)
    selected = (u_select < mlm_probability) & (special_tokens_mask == 0)
    labels = original.clone()
    labels[~selected] = -100
    corrupted = original.clone()
    as_mask = selected & (u_kind < mask_replace_prob)
    as_random = selected & (u_kind >= mask_replace_prob) & (u_kind < mask_replace_prob + random_replace_prob)
    corrupted[as_mask] = mask_token_id
    n_random = int(as_random.sum())
    if n_random:
        corrupted[as_random] = torch.randint(0, vocab_size, (n_random,), generator=generator)
    return corrupted, labels


def make_nsp_examples(documents, *, rng):
    # NotNext: uniform over all sentences of the other documents (not over documents first)
    if sum(1 for d in documents if d) < 2:
        raise ValueError("documents: need at least two non-empty documents")
    out = []
    for i, doc in enumerate(documents):
        pool = [s for j, other in enumerate(documents) if j != i for s in other]
        for k in range(len(doc) - 1):
            if rng.random() >= 0.5:
                out.append((doc[k], doc[k + 1], 0))
            else:
                out.append((doc[k], pool[rng.randrange(len(pool))], 1))
    return out
