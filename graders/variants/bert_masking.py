"""Realistic buggy variants of ``bert_masking`` (SEMANTICS.md §1.4 lists the classics).

Each variant is the reference with one mistake. Most keep the reference's order of random draws, so
when a student's submission makes the same mistake with the same draw order the grader names it by
replaying the variant with the same seed; the statistical checks also compare rates with each
variant's rates, which names a mistake whatever the draw order. (Each variant repeats the
reference's argument checks inline: a variant's module is the reference plus that one function.)
"""
import torch

from llmlab.grading.variants import Variants

bugs = Variants("bert_masking")


# --- mask_tokens ---------------------------------------------------------------------------
@bugs.bug("labels_inverted", replaces="mask_tokens",
          mistake="the labels are inverted: the original id belongs at the SELECTED positions and -100 everywhere "
                  "else (the loss is computed only where the model has to repair a token)")
def mask_labels_inverted(input_ids, special_tokens_mask, *, mask_token_id, vocab_size, mlm_probability=0.15,
                         mask_replace_prob=0.8, random_replace_prob=0.1, generator=None):
    if input_ids.dim() != 2 or special_tokens_mask.shape != input_ids.shape:
        raise ValueError("input_ids and special_tokens_mask must have the same shape (B, T)")
    if not all(0 <= p <= 1 for p in (mlm_probability, mask_replace_prob, random_replace_prob)) or \
            mask_replace_prob + random_replace_prob > 1:
        raise ValueError("bad probability")
    ids = input_ids.long().clone()
    prob = torch.full(ids.shape, float(mlm_probability)).masked_fill(special_tokens_mask.bool(), 0.0)
    selected = torch.bernoulli(prob, generator=generator).bool()
    labels = torch.where(selected, torch.full_like(ids, -100), ids)
    to_mask = torch.bernoulli(torch.full(ids.shape, float(mask_replace_prob)), generator=generator).bool() & selected
    out = ids.masked_fill(to_mask, mask_token_id)
    if mask_replace_prob == 1 or random_replace_prob == 0:
        return out, labels
    rest = min(1.0, random_replace_prob / (1 - mask_replace_prob))
    to_random = torch.bernoulli(torch.full(ids.shape, rest), generator=generator).bool() & selected & ~to_mask
    words = torch.randint(int(vocab_size), ids.shape, generator=generator)
    return torch.where(to_random, words, out), labels


@bugs.bug("labels_everywhere", replaces="mask_tokens",
          mistake="every position keeps its original id as label: the loss must be computed only at the selected "
                  "positions (label -100 everywhere else), or the model just learns to copy its input")
def mask_labels_everywhere(input_ids, special_tokens_mask, *, mask_token_id, vocab_size, mlm_probability=0.15,
                           mask_replace_prob=0.8, random_replace_prob=0.1, generator=None):
    if input_ids.dim() != 2 or special_tokens_mask.shape != input_ids.shape:
        raise ValueError("input_ids and special_tokens_mask must have the same shape (B, T)")
    if not all(0 <= p <= 1 for p in (mlm_probability, mask_replace_prob, random_replace_prob)) or \
            mask_replace_prob + random_replace_prob > 1:
        raise ValueError("bad probability")
    ids = input_ids.long().clone()
    prob = torch.full(ids.shape, float(mlm_probability)).masked_fill(special_tokens_mask.bool(), 0.0)
    selected = torch.bernoulli(prob, generator=generator).bool()
    labels = ids.clone()
    to_mask = torch.bernoulli(torch.full(ids.shape, float(mask_replace_prob)), generator=generator).bool() & selected
    out = ids.masked_fill(to_mask, mask_token_id)
    if mask_replace_prob == 1 or random_replace_prob == 0:
        return out, labels
    rest = min(1.0, random_replace_prob / (1 - mask_replace_prob))
    to_random = torch.bernoulli(torch.full(ids.shape, rest), generator=generator).bool() & selected & ~to_mask
    words = torch.randint(int(vocab_size), ids.shape, generator=generator)
    return torch.where(to_random, words, out), labels


@bugs.bug("special_tokens_maskable", replaces="mask_tokens",
          mistake="special tokens ([CLS], [SEP], [PAD]) can be selected: zero their selection probability with "
                  "special_tokens_mask before drawing")
def mask_special_tokens(input_ids, special_tokens_mask, *, mask_token_id, vocab_size, mlm_probability=0.15,
                        mask_replace_prob=0.8, random_replace_prob=0.1, generator=None):
    if input_ids.dim() != 2 or special_tokens_mask.shape != input_ids.shape:
        raise ValueError("input_ids and special_tokens_mask must have the same shape (B, T)")
    if not all(0 <= p <= 1 for p in (mlm_probability, mask_replace_prob, random_replace_prob)) or \
            mask_replace_prob + random_replace_prob > 1:
        raise ValueError("bad probability")
    ids = input_ids.long().clone()
    prob = torch.full(ids.shape, float(mlm_probability))
    selected = torch.bernoulli(prob, generator=generator).bool()
    labels = torch.where(selected, ids, torch.full_like(ids, -100))
    to_mask = torch.bernoulli(torch.full(ids.shape, float(mask_replace_prob)), generator=generator).bool() & selected
    out = ids.masked_fill(to_mask, mask_token_id)
    if mask_replace_prob == 1 or random_replace_prob == 0:
        return out, labels
    rest = min(1.0, random_replace_prob / (1 - mask_replace_prob))
    to_random = torch.bernoulli(torch.full(ids.shape, rest), generator=generator).bool() & selected & ~to_mask
    words = torch.randint(int(vocab_size), ids.shape, generator=generator)
    return torch.where(to_random, words, out), labels


@bugs.bug("random_2_percent", replaces="mask_tokens",
          mistake="random tokens replace only 2% of the selected positions instead of 10%: the second coin is flipped "
                  "only for positions that did NOT become [MASK] (20% of them), so its probability must be "
                  "random_replace_prob / (1 - mask_replace_prob) = 0.5, not random_replace_prob = 0.1")
def mask_random_2_percent(input_ids, special_tokens_mask, *, mask_token_id, vocab_size, mlm_probability=0.15,
                          mask_replace_prob=0.8, random_replace_prob=0.1, generator=None):
    if input_ids.dim() != 2 or special_tokens_mask.shape != input_ids.shape:
        raise ValueError("input_ids and special_tokens_mask must have the same shape (B, T)")
    if not all(0 <= p <= 1 for p in (mlm_probability, mask_replace_prob, random_replace_prob)) or \
            mask_replace_prob + random_replace_prob > 1:
        raise ValueError("bad probability")
    ids = input_ids.long().clone()
    prob = torch.full(ids.shape, float(mlm_probability)).masked_fill(special_tokens_mask.bool(), 0.0)
    selected = torch.bernoulli(prob, generator=generator).bool()
    labels = torch.where(selected, ids, torch.full_like(ids, -100))
    to_mask = torch.bernoulli(torch.full(ids.shape, float(mask_replace_prob)), generator=generator).bool() & selected
    out = ids.masked_fill(to_mask, mask_token_id)
    if mask_replace_prob == 1 or random_replace_prob == 0:
        return out, labels
    to_random = torch.bernoulli(torch.full(ids.shape, float(random_replace_prob)),
                                generator=generator).bool() & selected & ~to_mask
    words = torch.randint(int(vocab_size), ids.shape, generator=generator)
    return torch.where(to_random, words, out), labels


@bugs.bug("random_overwrites_mask", replaces="mask_tokens",
          mistake="the random-token coin is flipped for every selected position, [MASK]ed ones included, so random "
                  "tokens overwrite some [MASK]s: choose random tokens only among the selected positions that did "
                  "not become [MASK] (`& ~masked`)")
def mask_random_overwrites(input_ids, special_tokens_mask, *, mask_token_id, vocab_size, mlm_probability=0.15,
                           mask_replace_prob=0.8, random_replace_prob=0.1, generator=None):
    if input_ids.dim() != 2 or special_tokens_mask.shape != input_ids.shape:
        raise ValueError("input_ids and special_tokens_mask must have the same shape (B, T)")
    if not all(0 <= p <= 1 for p in (mlm_probability, mask_replace_prob, random_replace_prob)) or \
            mask_replace_prob + random_replace_prob > 1:
        raise ValueError("bad probability")
    ids = input_ids.long().clone()
    prob = torch.full(ids.shape, float(mlm_probability)).masked_fill(special_tokens_mask.bool(), 0.0)
    selected = torch.bernoulli(prob, generator=generator).bool()
    labels = torch.where(selected, ids, torch.full_like(ids, -100))
    to_mask = torch.bernoulli(torch.full(ids.shape, float(mask_replace_prob)), generator=generator).bool() & selected
    out = ids.masked_fill(to_mask, mask_token_id)
    to_random = torch.bernoulli(torch.full(ids.shape, float(random_replace_prob)),
                                generator=generator).bool() & selected
    words = torch.randint(int(vocab_size), ids.shape, generator=generator)
    return torch.where(to_random, words, out), labels


@bugs.bug("no_unchanged_tokens", replaces="mask_tokens",
          mistake="every selected position that does not become [MASK] gets a random token: the remaining "
                  "1 - mask_replace_prob - random_replace_prob of them (10% by default) must keep their original id")
def mask_no_unchanged(input_ids, special_tokens_mask, *, mask_token_id, vocab_size, mlm_probability=0.15,
                      mask_replace_prob=0.8, random_replace_prob=0.1, generator=None):
    if input_ids.dim() != 2 or special_tokens_mask.shape != input_ids.shape:
        raise ValueError("input_ids and special_tokens_mask must have the same shape (B, T)")
    if not all(0 <= p <= 1 for p in (mlm_probability, mask_replace_prob, random_replace_prob)) or \
            mask_replace_prob + random_replace_prob > 1:
        raise ValueError("bad probability")
    ids = input_ids.long().clone()
    prob = torch.full(ids.shape, float(mlm_probability)).masked_fill(special_tokens_mask.bool(), 0.0)
    selected = torch.bernoulli(prob, generator=generator).bool()
    labels = torch.where(selected, ids, torch.full_like(ids, -100))
    to_mask = torch.bernoulli(torch.full(ids.shape, float(mask_replace_prob)), generator=generator).bool() & selected
    out = ids.masked_fill(to_mask, mask_token_id)
    to_random = selected & ~to_mask
    words = torch.randint(int(vocab_size), ids.shape, generator=generator)
    return torch.where(to_random, words, out), labels


@bugs.bug("random_ids_missing_last", replaces="mask_tokens",
          mistake="random tokens are drawn from [0, vocab_size - 1): the last id can never be drawn (torch.randint's "
                  "upper bound is already exclusive, so pass vocab_size itself)")
def mask_missing_last(input_ids, special_tokens_mask, *, mask_token_id, vocab_size, mlm_probability=0.15,
                      mask_replace_prob=0.8, random_replace_prob=0.1, generator=None):
    if input_ids.dim() != 2 or special_tokens_mask.shape != input_ids.shape:
        raise ValueError("input_ids and special_tokens_mask must have the same shape (B, T)")
    if not all(0 <= p <= 1 for p in (mlm_probability, mask_replace_prob, random_replace_prob)) or \
            mask_replace_prob + random_replace_prob > 1:
        raise ValueError("bad probability")
    ids = input_ids.long().clone()
    prob = torch.full(ids.shape, float(mlm_probability)).masked_fill(special_tokens_mask.bool(), 0.0)
    selected = torch.bernoulli(prob, generator=generator).bool()
    labels = torch.where(selected, ids, torch.full_like(ids, -100))
    to_mask = torch.bernoulli(torch.full(ids.shape, float(mask_replace_prob)), generator=generator).bool() & selected
    out = ids.masked_fill(to_mask, mask_token_id)
    if mask_replace_prob == 1 or random_replace_prob == 0:
        return out, labels
    rest = min(1.0, random_replace_prob / (1 - mask_replace_prob))
    to_random = torch.bernoulli(torch.full(ids.shape, rest), generator=generator).bool() & selected & ~to_mask
    words = torch.randint(int(vocab_size) - 1, ids.shape, generator=generator)
    return torch.where(to_random, words, out), labels


@bugs.bug("random_ids_include_vocab_size", replaces="mask_tokens",
          mistake="random tokens are drawn from [0, vocab_size] inclusive (Python's random.randint includes its upper "
                  "bound): id vocab_size does not exist; draw from [0, vocab_size)")
def mask_include_vocab_size(input_ids, special_tokens_mask, *, mask_token_id, vocab_size, mlm_probability=0.15,
                            mask_replace_prob=0.8, random_replace_prob=0.1, generator=None):
    if input_ids.dim() != 2 or special_tokens_mask.shape != input_ids.shape:
        raise ValueError("input_ids and special_tokens_mask must have the same shape (B, T)")
    if not all(0 <= p <= 1 for p in (mlm_probability, mask_replace_prob, random_replace_prob)) or \
            mask_replace_prob + random_replace_prob > 1:
        raise ValueError("bad probability")
    ids = input_ids.long().clone()
    prob = torch.full(ids.shape, float(mlm_probability)).masked_fill(special_tokens_mask.bool(), 0.0)
    selected = torch.bernoulli(prob, generator=generator).bool()
    labels = torch.where(selected, ids, torch.full_like(ids, -100))
    to_mask = torch.bernoulli(torch.full(ids.shape, float(mask_replace_prob)), generator=generator).bool() & selected
    out = ids.masked_fill(to_mask, mask_token_id)
    if mask_replace_prob == 1 or random_replace_prob == 0:
        return out, labels
    rest = min(1.0, random_replace_prob / (1 - mask_replace_prob))
    to_random = torch.bernoulli(torch.full(ids.shape, rest), generator=generator).bool() & selected & ~to_mask
    words = torch.randint(int(vocab_size) + 1, ids.shape, generator=generator)
    return torch.where(to_random, words, out), labels


@bugs.bug("labels_after_corruption", replaces="mask_tokens",
          mistake="the labels are taken after the corruption (the label of a [MASK]ed position is the [MASK] id): "
                  "copy the original ids (clone) before replacing any token")
def mask_labels_after(input_ids, special_tokens_mask, *, mask_token_id, vocab_size, mlm_probability=0.15,
                      mask_replace_prob=0.8, random_replace_prob=0.1, generator=None):
    if input_ids.dim() != 2 or special_tokens_mask.shape != input_ids.shape:
        raise ValueError("input_ids and special_tokens_mask must have the same shape (B, T)")
    if not all(0 <= p <= 1 for p in (mlm_probability, mask_replace_prob, random_replace_prob)) or \
            mask_replace_prob + random_replace_prob > 1:
        raise ValueError("bad probability")
    ids = input_ids.long().clone()
    prob = torch.full(ids.shape, float(mlm_probability)).masked_fill(special_tokens_mask.bool(), 0.0)
    selected = torch.bernoulli(prob, generator=generator).bool()
    to_mask = torch.bernoulli(torch.full(ids.shape, float(mask_replace_prob)), generator=generator).bool() & selected
    out = ids.masked_fill(to_mask, mask_token_id)
    if not (mask_replace_prob == 1 or random_replace_prob == 0):
        rest = min(1.0, random_replace_prob / (1 - mask_replace_prob))
        to_random = torch.bernoulli(torch.full(ids.shape, rest), generator=generator).bool() & selected & ~to_mask
        words = torch.randint(int(vocab_size), ids.shape, generator=generator)
        out = torch.where(to_random, words, out)
    labels = torch.where(selected, out, torch.full_like(ids, -100))
    return out, labels


@bugs.bug("modifies_input_in_place", replaces="mask_tokens",
          mistake="input_ids is modified in place (as DataCollatorForLanguageModeling does internally): work on a "
                  "copy (input_ids.clone()) so the caller's batch stays intact")
def mask_in_place(input_ids, special_tokens_mask, *, mask_token_id, vocab_size, mlm_probability=0.15,
                  mask_replace_prob=0.8, random_replace_prob=0.1, generator=None):
    if input_ids.dim() != 2 or special_tokens_mask.shape != input_ids.shape:
        raise ValueError("input_ids and special_tokens_mask must have the same shape (B, T)")
    if not all(0 <= p <= 1 for p in (mlm_probability, mask_replace_prob, random_replace_prob)) or \
            mask_replace_prob + random_replace_prob > 1:
        raise ValueError("bad probability")
    labels = input_ids.long().clone()
    prob = torch.full(labels.shape, float(mlm_probability)).masked_fill(special_tokens_mask.bool(), 0.0)
    selected = torch.bernoulli(prob, generator=generator).bool()
    labels[~selected] = -100
    to_mask = torch.bernoulli(torch.full(labels.shape, float(mask_replace_prob)),
                              generator=generator).bool() & selected
    input_ids[to_mask] = mask_token_id
    if not (mask_replace_prob == 1 or random_replace_prob == 0):
        rest = min(1.0, random_replace_prob / (1 - mask_replace_prob))
        to_random = torch.bernoulli(torch.full(labels.shape, rest), generator=generator).bool() & selected & ~to_mask
        words = torch.randint(int(vocab_size), labels.shape, generator=generator)
        input_ids[to_random] = words[to_random].to(input_ids.dtype)
    return input_ids.long(), labels


@bugs.bug("exact_count_per_row", replaces="mask_tokens",
          mistake="each row gets exactly round(mlm_probability * n) selected positions (the original BERT script's "
                  "rule): here every position is selected by its own independent coin flip, so the count per row "
                  "varies (it is Binomial)")
def mask_exact_count(input_ids, special_tokens_mask, *, mask_token_id, vocab_size, mlm_probability=0.15,
                     mask_replace_prob=0.8, random_replace_prob=0.1, generator=None):
    if input_ids.dim() != 2 or special_tokens_mask.shape != input_ids.shape:
        raise ValueError("input_ids and special_tokens_mask must have the same shape (B, T)")
    if not all(0 <= p <= 1 for p in (mlm_probability, mask_replace_prob, random_replace_prob)) or \
            mask_replace_prob + random_replace_prob > 1:
        raise ValueError("bad probability")
    ids = input_ids.long().clone()
    selected = torch.zeros(ids.shape, dtype=torch.bool)
    for b in range(ids.shape[0]):
        candidates = (~special_tokens_mask[b].bool()).nonzero().flatten()
        k = int(round(mlm_probability * len(candidates)))
        pick = candidates[torch.randperm(len(candidates), generator=generator)[:k]]
        selected[b, pick] = True
    labels = torch.where(selected, ids, torch.full_like(ids, -100))
    to_mask = torch.bernoulli(torch.full(ids.shape, float(mask_replace_prob)), generator=generator).bool() & selected
    out = ids.masked_fill(to_mask, mask_token_id)
    if mask_replace_prob == 1 or random_replace_prob == 0:
        return out, labels
    rest = min(1.0, random_replace_prob / (1 - mask_replace_prob))
    to_random = torch.bernoulli(torch.full(ids.shape, rest), generator=generator).bool() & selected & ~to_mask
    words = torch.randint(int(vocab_size), ids.shape, generator=generator)
    return torch.where(to_random, words, out), labels


@bugs.bug("ignores_generator", replaces="mask_tokens",
          mistake="the `generator` argument is ignored (random numbers come from torch's global generator): pass "
                  "generator=generator to every torch.bernoulli / torch.randint call, so a seed reproduces the result")
def mask_ignores_generator(input_ids, special_tokens_mask, *, mask_token_id, vocab_size, mlm_probability=0.15,
                           mask_replace_prob=0.8, random_replace_prob=0.1, generator=None):
    if input_ids.dim() != 2 or special_tokens_mask.shape != input_ids.shape:
        raise ValueError("input_ids and special_tokens_mask must have the same shape (B, T)")
    if not all(0 <= p <= 1 for p in (mlm_probability, mask_replace_prob, random_replace_prob)) or \
            mask_replace_prob + random_replace_prob > 1:
        raise ValueError("bad probability")
    ids = input_ids.long().clone()
    prob = torch.full(ids.shape, float(mlm_probability)).masked_fill(special_tokens_mask.bool(), 0.0)
    selected = torch.bernoulli(prob).bool()
    labels = torch.where(selected, ids, torch.full_like(ids, -100))
    to_mask = torch.bernoulli(torch.full(ids.shape, float(mask_replace_prob))).bool() & selected
    out = ids.masked_fill(to_mask, mask_token_id)
    if mask_replace_prob == 1 or random_replace_prob == 0:
        return out, labels
    rest = min(1.0, random_replace_prob / (1 - mask_replace_prob))
    to_random = torch.bernoulli(torch.full(ids.shape, rest)).bool() & selected & ~to_mask
    words = torch.randint(int(vocab_size), ids.shape)
    return torch.where(to_random, words, out), labels


@bugs.bug("fixed_80_10_10", replaces="mask_tokens",
          mistake="the 80/10/10 split is hard-coded: use the mask_replace_prob and random_replace_prob arguments "
                  "(and mlm_probability) instead of the default values")
def mask_fixed_split(input_ids, special_tokens_mask, *, mask_token_id, vocab_size, mlm_probability=0.15,
                     mask_replace_prob=0.8, random_replace_prob=0.1, generator=None):
    if input_ids.dim() != 2 or special_tokens_mask.shape != input_ids.shape:
        raise ValueError("input_ids and special_tokens_mask must have the same shape (B, T)")
    if not all(0 <= p <= 1 for p in (mlm_probability, mask_replace_prob, random_replace_prob)) or \
            mask_replace_prob + random_replace_prob > 1:
        raise ValueError("bad probability")
    ids = input_ids.long().clone()
    prob = torch.full(ids.shape, float(mlm_probability)).masked_fill(special_tokens_mask.bool(), 0.0)
    selected = torch.bernoulli(prob, generator=generator).bool()
    labels = torch.where(selected, ids, torch.full_like(ids, -100))
    to_mask = torch.bernoulli(torch.full(ids.shape, 0.8), generator=generator).bool() & selected
    out = ids.masked_fill(to_mask, mask_token_id)
    to_random = torch.bernoulli(torch.full(ids.shape, 0.5), generator=generator).bool() & selected & ~to_mask
    words = torch.randint(int(vocab_size), ids.shape, generator=generator)
    return torch.where(to_random, words, out), labels


@bugs.bug("no_probability_validation", replaces="mask_tokens",
          mistake="invalid probabilities are accepted: a probability outside [0, 1], or mask_replace_prob + "
                  "random_replace_prob > 1, must raise ValueError")
def mask_no_validation(input_ids, special_tokens_mask, *, mask_token_id, vocab_size, mlm_probability=0.15,
                       mask_replace_prob=0.8, random_replace_prob=0.1, generator=None):
    if input_ids.dim() != 2 or special_tokens_mask.shape != input_ids.shape:
        raise ValueError("input_ids and special_tokens_mask must have the same shape (B, T)")
    ids = input_ids.long().clone()
    clamp = lambda p: min(1.0, max(0.0, float(p)))  # noqa: E731
    prob = torch.full(ids.shape, clamp(mlm_probability)).masked_fill(special_tokens_mask.bool(), 0.0)
    selected = torch.bernoulli(prob, generator=generator).bool()
    labels = torch.where(selected, ids, torch.full_like(ids, -100))
    to_mask = torch.bernoulli(torch.full(ids.shape, clamp(mask_replace_prob)),
                              generator=generator).bool() & selected
    out = ids.masked_fill(to_mask, mask_token_id)
    if mask_replace_prob >= 1 or random_replace_prob <= 0:
        return out, labels
    rest = clamp(random_replace_prob / (1 - mask_replace_prob))
    to_random = torch.bernoulli(torch.full(ids.shape, rest), generator=generator).bool() & selected & ~to_mask
    words = torch.randint(int(vocab_size), ids.shape, generator=generator)
    return torch.where(to_random, words, out), labels


# --- make_nsp_examples ---------------------------------------------------------------------
@bugs.bug("nsp_labels_swapped", replaces="make_nsp_examples",
          mistake="the NSP labels are swapped: as in BertForPreTraining, 0 = IsNext (b really follows a) and "
                  "1 = NotNext (b comes from another document)")
def nsp_labels_swapped(documents, *, rng):
    nonempty = [i for i, d in enumerate(documents) if d]
    if len(nonempty) < 2:
        raise ValueError("need at least 2 documents")
    out = []
    for i, doc in enumerate(documents):
        others = [j for j in nonempty if j != i]
        for a, b in zip(doc[:-1], doc[1:]):
            if rng.random() < 0.5:
                out.append((a, b, 1))
            else:
                other = documents[rng.choice(others)]
                out.append((a, other[rng.randrange(len(other))], 0))
    return out


@bugs.bug("notnext_same_document", replaces="make_nsp_examples",
          mistake="a NotNext sentence can come from the same document as sentence a: draw it from a DIFFERENT "
                  "document (a sentence of the same document is related to a, which blurs the task)")
def nsp_same_document(documents, *, rng):
    nonempty = [i for i, d in enumerate(documents) if d]
    if len(nonempty) < 2:
        raise ValueError("need at least 2 documents")
    every = [s for doc in documents for s in doc]
    out = []
    for doc in documents:
        for a, b in zip(doc[:-1], doc[1:]):
            if rng.random() < 0.5:
                out.append((a, b, 0))
            else:
                out.append((a, rng.choice(every), 1))
    return out


@bugs.bug("nsp_global_random", replaces="make_nsp_examples",
          mistake="random choices come from the global `random` module instead of the `rng` argument: use "
                  "rng.random() / rng.choice(...), so a seed reproduces the examples")
def nsp_global_random(documents, *, rng):
    import random  # the module-level generator, shared by the whole process

    nonempty = [i for i, d in enumerate(documents) if d]
    if len(nonempty) < 2:
        raise ValueError("need at least 2 documents")
    out = []
    for i, doc in enumerate(documents):
        others = [j for j in nonempty if j != i]
        for a, b in zip(doc[:-1], doc[1:]):
            if random.random() < 0.5:
                out.append((a, b, 0))
            else:
                other = documents[random.choice(others)]
                out.append((a, other[random.randrange(len(other))], 1))
    return out


@bugs.bug("nsp_both_per_pair", replaces="make_nsp_examples",
          mistake="every adjacent pair gives both an IsNext and a NotNext example: emit ONE example per pair, IsNext "
                  "or NotNext with probability 1/2 each")
def nsp_both(documents, *, rng):
    nonempty = [i for i, d in enumerate(documents) if d]
    if len(nonempty) < 2:
        raise ValueError("need at least 2 documents")
    out = []
    for i, doc in enumerate(documents):
        others = [j for j in nonempty if j != i]
        for a, b in zip(doc[:-1], doc[1:]):
            out.append((a, b, 0))
            other = documents[rng.choice(others)]
            out.append((a, other[rng.randrange(len(other))], 1))
    return out


@bugs.bug("nsp_single_document_accepted", replaces="make_nsp_examples",
          mistake="a single document is accepted: NotNext needs a sentence from another document, so fewer than two "
                  "documents must raise ValueError")
def nsp_single_document(documents, *, rng):
    nonempty = [i for i, d in enumerate(documents) if d]
    out = []
    for i, doc in enumerate(documents):
        others = [j for j in nonempty if j != i]
        for a, b in zip(doc[:-1], doc[1:]):
            if rng.random() < 0.5 or not others:
                out.append((a, b, 0))
            else:
                other = documents[rng.choice(others)]
                out.append((a, other[rng.randrange(len(other))], 1))
    return out


@bugs.bug("notnext_first_sentence", replaces="make_nsp_examples",
          mistake="a NotNext sentence is always the first sentence of the other document: draw a random sentence "
                  "of that document")
def nsp_first_sentence(documents, *, rng):
    nonempty = [i for i, d in enumerate(documents) if d]
    if len(nonempty) < 2:
        raise ValueError("need at least 2 documents")
    out = []
    for i, doc in enumerate(documents):
        others = [j for j in nonempty if j != i]
        for a, b in zip(doc[:-1], doc[1:]):
            if rng.random() < 0.5:
                out.append((a, b, 0))
            else:
                out.append((a, documents[rng.choice(others)][0], 1))
    return out
