"""Realistic buggy variants of ``sampling``: each is a patch of the reference (see llmlab.grading.variants)."""
from llmlab.grading.variants import Variants

bugs = Variants("sampling")

# --- warpers -------------------------------------------------------------------------------------
bugs.patch("temperature_multiplied", "apply_temperature", "return logits / temperature", "return logits * temperature",
           mistake="the logits are multiplied by the temperature: divide them (T < 1 must sharpen the distribution, "
                   "T > 1 flatten it)")
bugs.patch("top_k_by_indices", "top_k_filter", 'return logits.masked_fill(logits < kth, float("-inf"))', """
keep = torch.topk(logits, k, dim=-1).indices
return logits.masked_fill(torch.ones_like(logits, dtype=torch.bool).scatter(-1, keep, False), float("-inf"))""",
           mistake="top-k keeps exactly k indices (torch.topk(...).indices): tokens tied with the k-th largest value "
                   "must all stay, as transformers removes only logits strictly below the k-th value")
bugs.patch("top_k_not_clipped", "top_k_filter", "k = min(k, logits.shape[-1])", "",
           mistake="k larger than the vocabulary is not handled: k >= V must keep every token (clip k to V before "
                   "torch.topk)")
KEEP_LARGEST = "remove_sorted[..., -min_tokens_to_keep:] = False"
bugs.patch("top_p_off_by_one", "top_p_filter", "descending=False", "descending=True",
           mistake="top-p drops the token that makes the kept mass cross p (sorted descending, removing where the "
                   "cumulative sum exceeds p): keep it, so the kept mass is at least p (shift the removal mask by "
                   "one)")
bugs.patch("top_p_off_by_one", "top_p_filter", "remove_sorted = cumulative <= (1 - p)",
           "remove_sorted = cumulative > p")
bugs.patch("top_p_off_by_one", "top_p_filter", KEEP_LARGEST, "remove_sorted[..., :min_tokens_to_keep] = False")
bugs.patch("top_p_ignores_min_tokens", "top_p_filter", KEEP_LARGEST, "remove_sorted[..., -1:] = False",
           mistake="min_tokens_to_keep is ignored in top-p: the min_tokens_to_keep most likely tokens always stay")
bugs.patch("min_p_from_logits", "min_p_filter", "probs = logits.softmax(dim=-1)", "probs = logits",
           mistake="the min-p threshold is taken on logits (min_p * max logit): it is on probabilities, probs < min_p "
                   "* max(probs) after a softmax")
PENALISED = "penalised = torch.where(logits < 0, logits * penalty, logits / penalty)"
PENALTY_RETURN = "return torch.where(seen, penalised, logits)"
bugs.patch("penalty_divides_negative_logits", "apply_repetition_penalty", PENALISED, "penalised = logits / penalty",
           mistake="the repetition penalty divides every logit: a negative logit divided by penalty > 1 goes UP (more "
                   "likely); multiply negative logits by the penalty and divide positive ones")
bugs.patch("penalty_per_occurrence", "apply_repetition_penalty", PENALTY_RETURN, """
counts = torch.zeros_like(logits).scatter_add(-1, input_ids.long(), torch.ones_like(input_ids, dtype=logits.dtype))
factor = penalty ** counts
return torch.where(logits < 0, logits * factor, logits / factor)""",
           mistake="the repetition penalty is applied once per occurrence (penalty ** count): transformers applies it "
                   "once per distinct token, however often it occurs")
bugs.patch("penalty_in_place", "apply_repetition_penalty", PENALTY_RETURN,
           "logits.copy_(torch.where(seen, penalised, logits))\nreturn logits",
           mistake="the repetition penalty modifies the logits in place (logits[...] = ... or scatter_): the caller's "
                   "tensor changes; work on a copy")

# --- sample_next_token ---------------------------------------------------------------------------
SAMPLE = "sample_next_token"
TEMPERATURE = "scores = apply_temperature(logits, temperature)"
PROBS = "probs = scores.softmax(dim=-1)"
DRAW = "return torch.multinomial(probs, num_samples=1, generator=generator).squeeze(-1)"
bugs.patch("filters_before_temperature", SAMPLE, TEMPERATURE, "scores = logits",
           mistake="top-k / top-p / min-p are applied before the temperature: the order is temperature first, then "
                   "the filters (top-p keeps a different set at another temperature)")
bugs.patch("filters_before_temperature", SAMPLE, PROBS, "probs = (scores / temperature).softmax(dim=-1)")
bugs.patch("sample_takes_argmax", SAMPLE, DRAW, "return scores.argmax(dim=-1)",
           mistake="sampling takes the argmax of the filtered logits: with temperature > 0, draw from their softmax "
                   "(torch.multinomial)")
bugs.patch("sample_ignores_filters", SAMPLE, PROBS, "probs = apply_temperature(logits, temperature).softmax(dim=-1)",
           mistake="the draw uses the logits before filtering: sample from the softmax of the filtered (and "
                   "temperature-scaled) logits, so removed tokens can never be drawn")
bugs.patch("sample_one_draw_for_the_batch", SAMPLE, DRAW,
           "return torch.multinomial(probs[0], 1, generator=generator).expand(logits.shape[0]).clone()",
           mistake="one token is drawn for the whole batch (from row 0): every row needs its own draw from its own "
                   "distribution")
bugs.patch("temperature_zero_divides", SAMPLE, """
    if temperature == 0:
        return logits.argmax(dim=-1)
""", "", mistake="temperature=0 divides by zero: it means greedy decoding (the argmax), handle it before scaling")
bugs.patch("temperature_zero_divides", SAMPLE, TEMPERATURE, "scores = logits / temperature")

# --- generate ------------------------------------------------------------------------------------
bugs.patch("finished_rows_not_padded", "generate", """
            if eos_token_id is not None:
                next_tokens = torch.where(unfinished, next_tokens, torch.full_like(next_tokens, pad_token_id))
""", "", mistake="a row that produced EOS keeps generating: after its EOS a finished row gets pad_token_id "
                 "(eos_token_id when pad_token_id is None)")
bugs.patch("never_stops_early", "generate", """
                if not unfinished.any():
                    break
""", "", mistake="generation does not stop when every row has produced EOS: stop early, as transformers does")
bugs.patch("left_padding_positions_lost", "generate", "attention_mask=mask, position_ids=positions[:, -1:],",
           "attention_mask=mask,",
           mistake="position_ids are passed for the prompt but not for the new tokens: the model then numbers a new "
                   "token by its index in the padded sequence, which skips the padding of a left-padded row; pass "
                   "position_ids (the row's last position + 1) at every step")
bugs.patch("left_padding_not_masked", "generate", "model(input_ids=sequences, attention_mask=mask,",
           "model(input_ids=sequences,",
           mistake="the model is called without the attention mask: the real tokens of a left-padded row attend to "
                   "the padding before them; pass attention_mask at every call")
bugs.patch("left_padding_not_masked", "generate", "model(input_ids=sequences[:, -1:], attention_mask=mask,",
           "model(input_ids=sequences[:, -1:],")
bugs.patch("attention_mask_not_grown", "generate", "model(input_ids=sequences[:, -1:], attention_mask=mask,",
           "model(input_ids=sequences[:, -1:], attention_mask=mask[:, :T],",
           mistake="the attention mask does not grow with the generated tokens: append a 1 per step, so that it "
                   "covers the cache plus the new token")
bugs.patch("cache_never_reused", "generate", """
            if use_cache:
                cache = out.cache
""", "", mistake="the KV cache is never reused: with use_cache=True, feed only the newest token together with the "
                 "cache the previous call returned (out.cache), instead of the whole sequence again")
bugs.patch("penalty_ignores_prompt", "generate", "sequences[b][mask[b] != 0][None]", "sequences[b, T:][None]",
           mistake="the repetition penalty counts only the generated tokens: the prompt's tokens count too (as in "
                   "transformers)")


# ---- added for fairness (issue 16)
bugs.patch("top_p_adds_a_token_at_exact_mass", "top_p_filter",
           "remove_sorted = cumulative <= (1 - p)", "remove_sorted = cumulative < (1 - p)",
           mistake="top-p adds one more token when the kept mass reaches p exactly: a set whose mass is exactly p "
                   "is complete (remove the tail whose cumulative probability is <= 1 - p, as transformers does)")
