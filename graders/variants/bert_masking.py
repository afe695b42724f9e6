"""Realistic buggy variants of ``bert_masking``: each is a patch of the reference (see llmlab.grading.variants)."""
from llmlab.grading.variants import Variants

bugs = Variants("bert_masking")

# --- mask_tokens ---------------------------------------------------------------------------------
LABELS = "labels = torch.where(selected, ids, torch.full_like(ids, IGNORE_INDEX))  # taken before corruption"
REST = "rest = min(1.0, random_replace_prob / (1.0 - mask_replace_prob))"
TO_RANDOM = "to_random = torch.bernoulli(torch.full(shape, rest), generator=generator).bool() & selected & ~to_mask"
EARLY_RETURN = """
    if mask_replace_prob == 1.0 or random_replace_prob == 0.0:
        return corrupted, labels
"""
bugs.patch("labels_inverted", "mask_tokens", LABELS,
           "labels = torch.where(selected, torch.full_like(ids, IGNORE_INDEX), ids)",
           mistake="the labels are inverted: the original id belongs at the SELECTED positions and -100 everywhere "
                   "else (the loss is computed only where the model has to repair a token)")
bugs.patch("labels_everywhere", "mask_tokens", LABELS, "labels = ids.clone()",
           mistake="every position keeps its original id as label: the loss must be computed only at the selected "
                   "positions (label -100 everywhere else), or the model just learns to copy its input")
bugs.patch("special_tokens_maskable", "mask_tokens", "probability.masked_fill_(special_tokens_mask.bool(), 0.0)", "",
           mistake="special tokens ([CLS], [SEP], [PAD]) can be selected: zero their selection probability with "
                   "special_tokens_mask before drawing")
bugs.patch("random_2_percent", "mask_tokens", REST, "rest = random_replace_prob",
           mistake="random tokens replace only 2% of the selected positions instead of 10%: the second coin is "
                   "flipped only for positions that did NOT become [MASK] (20% of them), so its probability must be "
                   "random_replace_prob / (1 - mask_replace_prob) = 0.5, not random_replace_prob = 0.1")
bugs.patch("random_overwrites_mask", "mask_tokens", REST, "rest = random_replace_prob",
           mistake="the random-token coin is flipped for every selected position, [MASK]ed ones included, so random "
                   "tokens overwrite some [MASK]s: choose random tokens only among the selected positions that did "
                   "not become [MASK] (`& ~masked`)")
bugs.patch("random_overwrites_mask", "mask_tokens", "bool() & selected & ~to_mask", "bool() & selected")
bugs.patch("no_unchanged_tokens", "mask_tokens", TO_RANDOM, "to_random = selected & ~to_mask",
           mistake="every selected position that does not become [MASK] gets a random token: the remaining 1 - "
                   "mask_replace_prob - random_replace_prob of them (10% by default) must keep their original id")
bugs.patch("no_unchanged_tokens", "mask_tokens", "if mask_replace_prob == 1.0 or random_replace_prob == 0.0:",
           "if mask_replace_prob == 1.0:")
bugs.patch("random_ids_missing_last", "mask_tokens", "torch.randint(int(vocab_size),",
           "torch.randint(int(vocab_size) - 1,",
           mistake="random tokens are drawn from [0, vocab_size - 1): the last id can never be drawn (torch.randint's "
                   "upper bound is already exclusive, so pass vocab_size itself)")
bugs.patch("random_ids_include_vocab_size", "mask_tokens", "torch.randint(int(vocab_size),",
           "torch.randint(int(vocab_size) + 1,",
           mistake="random tokens are drawn from [0, vocab_size] inclusive (Python's random.randint includes its "
                   "upper bound): id vocab_size does not exist; draw from [0, vocab_size)")
bugs.patch("labels_after_corruption", "mask_tokens", LABELS, "",
           mistake="the labels are taken after the corruption (the label of a [MASK]ed position is the [MASK] id): "
                   "copy the original ids (clone) before replacing any token")
bugs.patch("labels_after_corruption", "mask_tokens", EARLY_RETURN,
           "\n    labels = torch.where(selected, corrupted, torch.full_like(ids, IGNORE_INDEX))" + EARLY_RETURN)
bugs.patch("labels_after_corruption", "mask_tokens", "corrupted = torch.where(to_random, random_ids, corrupted)",
           "corrupted = torch.where(to_random, random_ids, corrupted)\n"
           "labels = torch.where(selected, corrupted, torch.full_like(ids, IGNORE_INDEX))")
bugs.patch("modifies_input_in_place", "mask_tokens", "corrupted = ids.masked_fill(to_mask, mask_token_id)",
           "input_ids[to_mask] = mask_token_id\ncorrupted = input_ids.long()",
           mistake="input_ids is modified in place (as DataCollatorForLanguageModeling does internally): work on a "
                   "copy (input_ids.clone()) so the caller's batch stays intact")
bugs.patch("modifies_input_in_place", "mask_tokens", "corrupted = torch.where(to_random, random_ids, corrupted)",
           "input_ids[to_random] = random_ids[to_random].to(input_ids.dtype)\ncorrupted = input_ids.long()")
bugs.patch("exact_count_per_row", "mask_tokens", "selected = torch.bernoulli(probability, generator=generator).bool()",
           """
selected = torch.zeros(shape, dtype=torch.bool)
for row in range(shape[0]):
    candidates = (~special_tokens_mask[row].bool()).nonzero().flatten()
    k = int(round(mlm_probability * len(candidates)))
    selected[row, candidates[torch.randperm(len(candidates), generator=generator)[:k]]] = True""",
           mistake="each row gets exactly round(mlm_probability * n) selected positions (the original BERT script's "
                   "rule): here every position is selected by its own independent coin flip, so the count per row "
                   "varies (it is Binomial)")
bugs.patch("ignores_generator", "mask_tokens", "torch.bernoulli(probability, generator=generator)",
           "torch.bernoulli(probability)",
           mistake="the `generator` argument is ignored (random numbers come from torch's global generator): pass "
                   "generator=generator to every torch.bernoulli / torch.randint call, so a seed reproduces the result")
bugs.patch("ignores_generator", "mask_tokens", "float(mask_replace_prob)), generator=generator)",
           "float(mask_replace_prob)))")
bugs.patch("ignores_generator", "mask_tokens", "torch.full(shape, rest), generator=generator)",
           "torch.full(shape, rest))")
bugs.patch("ignores_generator", "mask_tokens", "dtype=torch.long, generator=generator)", "dtype=torch.long)")
bugs.patch("fixed_80_10_10", "mask_tokens", "float(mask_replace_prob)", "0.8",
           mistake="the 80/10/10 split is hard-coded: use the mask_replace_prob and random_replace_prob arguments "
                   "(and mlm_probability) instead of the default values")
bugs.patch("fixed_80_10_10", "mask_tokens", EARLY_RETURN, "")
bugs.patch("fixed_80_10_10", "mask_tokens", REST, "rest = 0.5")
# The mistake is the missing checks; out-of-range probabilities are clipped, as torch.bernoulli requires.
bugs.patch("no_probability_validation", "mask_tokens", """
    for name, p in (("mlm_probability", mlm_probability), ("mask_replace_prob", mask_replace_prob),
                    ("random_replace_prob", random_replace_prob)):
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"{name} must be in [0, 1], got {p}")
    if mask_replace_prob + random_replace_prob > 1.0:
        raise ValueError(f"mask_replace_prob + random_replace_prob must not exceed 1, got "
                         f"{mask_replace_prob} + {random_replace_prob}")
""", "", mistake="invalid probabilities are accepted: a probability outside [0, 1], or mask_replace_prob + "
                 "random_replace_prob > 1, must raise ValueError")
bugs.patch("no_probability_validation", "mask_tokens", "float(mlm_probability)", "min(1.0, max(0.0, mlm_probability))")
bugs.patch("no_probability_validation", "mask_tokens", "float(mask_replace_prob)",
           "min(1.0, max(0.0, mask_replace_prob))")
bugs.patch("no_probability_validation", "mask_tokens", REST,
           "rest = min(1.0, max(0.0, random_replace_prob / (1.0 - mask_replace_prob)))")

# --- make_nsp_examples ---------------------------------------------------------------------------
bugs.patch("nsp_labels_swapped", "make_nsp_examples", "examples.append((a, b, 0))", "examples.append((a, b, 1))",
           mistake="the NSP labels are swapped: as in BertForPreTraining, 0 = IsNext (b really follows a) and 1 = "
                   "NotNext (b comes from another document)")
bugs.patch("nsp_labels_swapped", "make_nsp_examples", "other[rng.randrange(len(other))], 1))",
           "other[rng.randrange(len(other))], 0))")
bugs.patch("notnext_same_document", "make_nsp_examples", """
                other = documents[rng.choice(others)]
                examples.append((a, other[rng.randrange(len(other))], 1))
""", "examples.append((a, rng.choice([s for d in documents for s in d]), 1))",
           mistake="a NotNext sentence can come from the same document as sentence a: draw it from a DIFFERENT "
                   "document (a sentence of the same document is related to a, which blurs the task)")
bugs.patch("nsp_global_random", "make_nsp_examples", "examples = []", "import random as rng\nexamples = []",
           mistake="random choices come from the global `random` module instead of the `rng` argument: use "
                   "rng.random() / rng.choice(...), so a seed reproduces the examples")
bugs.patch("nsp_both_per_pair", "make_nsp_examples", """
            if rng.random() < 0.5:
                examples.append((a, b, 0))
            else:
                other = documents[rng.choice(others)]
                examples.append((a, other[rng.randrange(len(other))], 1))
""", """
            examples.append((a, b, 0))
            other = documents[rng.choice(others)]
            examples.append((a, other[rng.randrange(len(other))], 1))
""", mistake="every adjacent pair gives both an IsNext and a NotNext example: emit ONE example per pair, IsNext or "
             "NotNext with probability 1/2 each")
bugs.patch("nsp_single_document_accepted", "make_nsp_examples", """
    if len(nonempty) < 2:
        raise ValueError(f"documents must contain at least 2 non-empty documents (NotNext pairs draw from "
                         f"another document), got {len(nonempty)}")
""", "", mistake="a single document is accepted: NotNext needs a sentence from another document, so fewer than two "
                 "documents must raise ValueError")
bugs.patch("nsp_single_document_accepted", "make_nsp_examples", "if rng.random() < 0.5:",
           "if rng.random() < 0.5 or not others:")
bugs.patch("notnext_first_sentence", "make_nsp_examples", "other[rng.randrange(len(other))]", "other[0]",
           mistake="a NotNext sentence is always the first sentence of the other document: draw a random sentence of "
                   "that document")


# ---- added for fairness (issue 16)
bugs.patch("keeps_input_dtype", "mask_tokens",
           "ids = input_ids.to(torch.long, copy=True)", "ids = input_ids.clone()",
           mistake="the input's integer dtype is kept (as DataCollatorForLanguageModeling does with int32 ids): "
                   "corrupted_ids and labels must be torch.long whatever the input dtype")
