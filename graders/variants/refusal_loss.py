"""Realistic buggy variants of ``refusal_loss``: each is a patch of the reference (see llmlab.grading.variants)."""
from llmlab.grading.variants import Variants

bugs = Variants("refusal_loss")

# --- harmful_prefix_example, sample_prefix_length, rto_example -----------------------------------
LABELS = "labels = [IGNORE_INDEX] * (len(query) + k) + safe"
bugs.patch("prefix_labelled", "harmful_prefix_example", LABELS,
           "labels = [IGNORE_INDEX] * len(query) + harmful[:k] + safe",
           mistake="the harmful prefix carries labels: the model would learn to PRODUCE the harmful tokens; only the "
                   "safe response is learnt (-100 on the query and on harmful[:k])")
bugs.patch("query_labelled", "harmful_prefix_example", LABELS, "labels = query + [IGNORE_INDEX] * k + safe",
           mistake="the query carries labels: the loss belongs to the safe response only (-100 on the query and the "
                   "harmful prefix)")
DRAW = "return rng.randint(0, n)"
bugs.patch("prefix_never_empty", "sample_prefix_length", DRAW, "return rng.randint(1, n) if n > 0 else 0",
           mistake="the prefix length is never 0: k is uniform on 0..n INCLUDED (k = 0 is plain refusal training), "
                   "e.g. rng.randint(0, n)")
bugs.patch("prefix_never_full", "sample_prefix_length", DRAW, "return rng.randrange(n) if n > 0 else 0",
           mistake="the prefix length never reaches n: rng.randrange(n) stops at n-1; k is uniform on 0..n with n "
                   "included (rng.randint(0, n) or rng.randrange(n + 1))")
bugs.patch("prefix_global_random", "sample_prefix_length", DRAW, "import random\nreturn random.randint(0, n)",
           mistake="the draw uses the module-level `random` instead of the `rng` argument: results cannot be "
                   "reproduced from the caller's seed")
bugs.patch("rto_mask_one_early", "rto_example", "return query + harmful, [False] * len(query) + [True] * len(harmful)",
           """
start = max(len(query) - 1, 0) if harmful else len(query)
return query + harmful, [i >= start for i in range(len(query) + len(harmful))]""",
           mistake="the harmful mask starts one token early, on the last query token: it must be True exactly on the "
                   "harmful response's tokens (the shift to \"the position before\" happens inside the loss)")

# --- refusal_position_loss -----------------------------------------------------------------------
RTO = "refusal_position_loss"
TARGETS = "targets = harmful_mask[:, 1:].bool()"
LOGP = "logp = F.log_softmax(logits[:, :-1], dim=-1)"
bugs.patch("rto_not_shifted", RTO, TARGETS, "targets = harmful_mask.bool()",
           mistake="the RTO target is not shifted: logits[:, t] predicts token t+1, so the positions trained to say "
                   "the refusal token are those whose NEXT token is harmful (harmful_mask[:, t + 1])")
bugs.patch("rto_not_shifted", RTO, LOGP, "logp = F.log_softmax(logits, dim=-1)")
bugs.patch("rto_summed", RTO, "return -logp[targets].mean()", "return -logp[targets].sum()",
           mistake="the RTO losses are summed, not averaged: the loss is the MEAN over the qualifying positions")
bugs.patch("rto_mask_rolled", RTO, TARGETS, "targets = torch.roll(harmful_mask.bool(), shifts=-1, dims=1)",
           mistake="the mask is shifted with torch.roll, which wraps harmful_mask[:, 0] around to the last position: "
                   "shift by slicing (logits[:, :-1] with harmful_mask[:, 1:])")
bugs.patch("rto_mask_rolled", RTO, LOGP, "logp = F.log_softmax(logits, dim=-1)")

# --- derta_loss ----------------------------------------------------------------------------------
TOTAL = "return (mle.sum() + rto.sum()) / n"
bugs.patch("derta_mean_of_means", "derta_loss", TOTAL,
           "terms = [t.mean() for t in (mle, rto) if t.numel()]\nreturn sum(terms) / len(terms)",
           mistake="the MLE and RTO terms are averaged separately and then combined (mean of means): DeRTa pools "
                   "them, total loss over all counted tokens / their total number")
bugs.patch("derta_mle_not_shifted", "derta_loss", "counted = labels[:, 1:] != IGNORE_INDEX",
           "counted = labels != IGNORE_INDEX",
           mistake="the MLE term compares logits[:, t] with labels[:, t]: labels are aligned with the input ids, so "
                   "logits[:, t] must be scored against labels[:, t + 1]")
bugs.patch("derta_mle_not_shifted", "derta_loss", "targets = labels[:, 1:].masked_fill", "targets = labels.masked_fill")
bugs.patch("derta_mle_not_shifted", "derta_loss", LOGP, "logp = F.log_softmax(logits, dim=-1)")
bugs.patch("derta_mle_not_shifted", "derta_loss", "rto = -logp[..., refusal_token_id]",
           "rto = -logp[:, :-1, refusal_token_id]")
bugs.patch("derta_counts_every_position", "derta_loss", TOTAL, "return (mle.sum() + rto.sum()) / counted.numel()",
           mistake="the summed loss is divided by the number of all positions (padding and -100 included): divide by "
                   "the number of counted tokens only")
bugs.patch("derta_returns_float", "derta_loss", TOTAL, "return ((mle.sum() + rto.sum()) / n).item()",
           mistake="the loss is returned as a Python float (.item()): return the 0-dim tensor, or nothing can be "
                   "backpropagated")
