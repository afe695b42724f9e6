"""Realistic buggy variants of ``sampling`` (SEMANTICS.md §2 lists the classics).

Each replaces one function of the reference; the rest of the reference calls it as a student's
module would. Names used without import (``apply_temperature``, ``top_k_filter``, ...,
``_check_logits``) are the reference module's own.
"""
import torch

from llmlab.grading.variants import Variants

bugs = Variants("sampling")
NEG_INF = float("-inf")


# --- warpers ------------------------------------------------------------------------------------
@bugs.bug("temperature_multiplied", replaces="apply_temperature",
          mistake="the logits are multiplied by the temperature: divide them (T < 1 must sharpen the distribution, "
                  "T > 1 flatten it)")
def temperature_multiplied(logits, temperature):
    if temperature <= 0:
        raise ValueError("temperature must be > 0")
    return logits * temperature


@bugs.bug("top_k_by_indices", replaces="top_k_filter",
          mistake="top-k keeps exactly k indices (torch.topk(...).indices): tokens tied with the k-th largest value "
                  "must all stay, as transformers removes only logits strictly below the k-th value")
def top_k_indices(logits, k):
    if k < 1:
        raise ValueError("k must be >= 1")
    keep = torch.topk(logits, min(k, logits.shape[-1]), dim=-1).indices
    mask = torch.ones_like(logits, dtype=torch.bool).scatter(-1, keep, False)
    return logits.masked_fill(mask, NEG_INF)


@bugs.bug("top_k_not_clipped", replaces="top_k_filter",
          mistake="k larger than the vocabulary is not handled: k >= V must keep every token (clip k to V before "
                  "torch.topk)")
def top_k_unclipped(logits, k):
    if k < 1:
        raise ValueError("k must be >= 1")
    kth = torch.topk(logits, k, dim=-1).values[..., -1:]
    return logits.masked_fill(logits < kth, NEG_INF)


@bugs.bug("top_p_off_by_one", replaces="top_p_filter",
          mistake="top-p drops the token that makes the kept mass cross p (sorted descending, removing where the "
                  "cumulative sum exceeds p): keep it, so the kept mass is at least p (shift the removal mask by one)")
def top_p_off_by_one(logits, p, *, min_tokens_to_keep=1):
    if not 0 <= p <= 1 or min_tokens_to_keep < 1:
        raise ValueError("bad arguments")
    sorted_logits, order = torch.sort(logits, dim=-1, descending=True)
    cumulative = sorted_logits.softmax(-1).cumsum(-1)
    remove = cumulative > p
    remove[..., :min_tokens_to_keep] = False
    return logits.masked_fill(remove.scatter(-1, order, remove), NEG_INF)


@bugs.bug("top_p_ignores_min_tokens", replaces="top_p_filter",
          mistake="min_tokens_to_keep is ignored in top-p: the min_tokens_to_keep most likely tokens always stay")
def top_p_no_min_tokens(logits, p, *, min_tokens_to_keep=1):
    if not 0 <= p <= 1 or min_tokens_to_keep < 1:
        raise ValueError("bad arguments")
    sorted_logits, order = torch.sort(logits, dim=-1)
    remove = sorted_logits.softmax(-1).cumsum(-1) <= 1 - p
    remove[..., -1:] = False
    return logits.masked_fill(remove.scatter(-1, order, remove), NEG_INF)


@bugs.bug("min_p_from_logits", replaces="min_p_filter",
          mistake="the min-p threshold is taken on logits (min_p * max logit): it is on probabilities, "
                  "probs < min_p * max(probs) after a softmax")
def min_p_logits(logits, min_p, *, min_tokens_to_keep=1):
    if not 0 <= min_p <= 1 or min_tokens_to_keep < 1:
        raise ValueError("bad arguments")
    remove = logits < min_p * logits.amax(-1, keepdim=True)
    keep = torch.topk(logits, min(min_tokens_to_keep, logits.shape[-1]), dim=-1).indices
    return logits.masked_fill(remove.scatter(-1, keep, False), NEG_INF)


@bugs.bug("penalty_divides_negative_logits", replaces="apply_repetition_penalty",
          mistake="the repetition penalty divides every logit: a negative logit divided by penalty > 1 goes UP (more "
                  "likely); multiply negative logits by the penalty and divide positive ones")
def penalty_divides(logits, input_ids, penalty):
    if penalty <= 0:
        raise ValueError("penalty must be > 0")
    seen = torch.zeros_like(logits, dtype=torch.bool).scatter(-1, input_ids, True)
    return torch.where(seen, logits / penalty, logits)


@bugs.bug("penalty_per_occurrence", replaces="apply_repetition_penalty",
          mistake="the repetition penalty is applied once per occurrence (penalty ** count): transformers applies it "
                  "once per distinct token, however often it occurs")
def penalty_per_occurrence(logits, input_ids, penalty):
    if penalty <= 0:
        raise ValueError("penalty must be > 0")
    out = logits.clone()
    for b in range(input_ids.shape[0]):
        for t in input_ids[b].tolist():
            out[b, t] = out[b, t] * penalty if out[b, t] < 0 else out[b, t] / penalty
    return out


@bugs.bug("penalty_in_place", replaces="apply_repetition_penalty",
          mistake="the repetition penalty modifies the logits in place (logits[...] = ... or scatter_): the caller's "
                  "tensor changes; work on a copy")
def penalty_in_place(logits, input_ids, penalty):
    if penalty <= 0:
        raise ValueError("penalty must be > 0")
    score = logits.gather(-1, input_ids)
    logits.scatter_(-1, input_ids, torch.where(score < 0, score * penalty, score / penalty))
    return logits


# --- sample_next_token --------------------------------------------------------------------------
def _filtered(logits, temperature, top_k, top_p, min_p):
    scores = apply_temperature(logits, temperature)  # noqa: F821 - the reference's own
    if top_k is not None:
        scores = top_k_filter(scores, top_k)  # noqa: F821
    if top_p is not None:
        scores = top_p_filter(scores, top_p)  # noqa: F821
    if min_p is not None:
        scores = min_p_filter(scores, min_p)  # noqa: F821
    return scores


@bugs.bug("filters_before_temperature", replaces="sample_next_token",
          mistake="top-k / top-p / min-p are applied before the temperature: the order is temperature first, then "
                  "the filters (top-p keeps a different set at another temperature)")
def sample_filters_first(logits, *, temperature=1.0, top_k=None, top_p=None, min_p=None, generator=None):
    if temperature == 0:
        return logits.argmax(-1)
    scores = _filtered(logits, 1.0, top_k, top_p, min_p) / temperature
    return torch.multinomial(scores.softmax(-1), 1, generator=generator).squeeze(-1)


@bugs.bug("sample_takes_argmax", replaces="sample_next_token",
          mistake="sampling takes the argmax of the filtered logits: with temperature > 0, draw from their softmax "
                  "(torch.multinomial)")
def sample_argmax(logits, *, temperature=1.0, top_k=None, top_p=None, min_p=None, generator=None):
    if temperature == 0:
        return logits.argmax(-1)
    return _filtered(logits, temperature, top_k, top_p, min_p).argmax(-1)


@bugs.bug("sample_ignores_filters", replaces="sample_next_token",
          mistake="the draw uses the logits before filtering: sample from the softmax of the filtered (and "
                  "temperature-scaled) logits, so removed tokens can never be drawn")
def sample_unfiltered(logits, *, temperature=1.0, top_k=None, top_p=None, min_p=None, generator=None):
    if temperature == 0:
        return logits.argmax(-1)
    _filtered(logits, temperature, top_k, top_p, min_p)
    return torch.multinomial((logits / temperature).softmax(-1), 1, generator=generator).squeeze(-1)


@bugs.bug("sample_one_draw_for_the_batch", replaces="sample_next_token",
          mistake="one token is drawn for the whole batch (from row 0): every row needs its own draw from its own "
                  "distribution")
def sample_one_draw(logits, *, temperature=1.0, top_k=None, top_p=None, min_p=None, generator=None):
    if temperature == 0:
        return logits.argmax(-1)
    probs = _filtered(logits, temperature, top_k, top_p, min_p).softmax(-1)
    token = torch.multinomial(probs[0], 1, generator=generator)
    return token.expand(logits.shape[0]).clone()


@bugs.bug("temperature_zero_divides", replaces="sample_next_token",
          mistake="temperature=0 divides by zero: it means greedy decoding (the argmax), handle it before scaling")
def sample_zero_divides(logits, *, temperature=1.0, top_k=None, top_p=None, min_p=None, generator=None):
    scores = logits / temperature
    if top_k is not None:
        scores = top_k_filter(scores, top_k)  # noqa: F821
    if top_p is not None:
        scores = top_p_filter(scores, top_p)  # noqa: F821
    if min_p is not None:
        scores = min_p_filter(scores, min_p)  # noqa: F821
    return torch.multinomial(scores.softmax(-1), 1, generator=generator).squeeze(-1)


# --- generate -----------------------------------------------------------------------------------
def _loop(model, input_ids, *, max_new_tokens, attention_mask=None, eos_token_id=None, pad_token_id=None,
          temperature=0.0, top_k=None, top_p=None, min_p=None, repetition_penalty=1.0, generator=None,
          use_cache=True, bug=""):
    """The reference loop with one named mistake switched on."""
    B, T = input_ids.shape
    mask = torch.ones_like(input_ids) if attention_mask is None else attention_mask.long()
    pad = eos_token_id if pad_token_id is None else pad_token_id
    positions = (mask.cumsum(-1) - 1).masked_fill(mask == 0, 0)
    seqs, unfinished, cache = input_ids, torch.ones(B, dtype=torch.bool), None
    with torch.no_grad():
        for _ in range(max_new_tokens):
            given = {} if bug == "no_mask" else {"attention_mask": mask if bug != "mask" else mask[:, :T]}
            if cache is None or bug == "no_cache_reuse":
                given = {"attention_mask": mask} if bug == "mask" else given
                out = model(input_ids=seqs, position_ids=positions, use_cache=use_cache, **given)
            else:
                if bug != "positions":
                    given["position_ids"] = positions[:, -1:]
                out = model(input_ids=seqs[:, -1:], cache=cache, use_cache=True, **given)
            cache = out.cache if use_cache else None
            logits = out.logits[:, -1].float()
            if repetition_penalty != 1.0:
                rows = []
                for b in range(B):
                    seen = seqs[b, T:] if bug == "penalty_new_only" else seqs[b][mask[b] != 0]
                    rows.append(apply_repetition_penalty(logits[b:b + 1], seen[None], repetition_penalty)  # noqa: F821
                                if seen.numel() else logits[b:b + 1])
                logits = torch.cat(rows)
            nxt = sample_next_token(logits, temperature=temperature, top_k=top_k, top_p=top_p,  # noqa: F821
                                    min_p=min_p, generator=generator)
            if eos_token_id is not None and bug != "no_padding":
                nxt = torch.where(unfinished, nxt, torch.full_like(nxt, pad))
            seqs = torch.cat([seqs, nxt[:, None]], -1)
            mask = torch.cat([mask, mask.new_ones(B, 1)], -1)
            positions = torch.cat([positions, positions[:, -1:] + 1], -1)
            if eos_token_id is not None:
                unfinished &= nxt != eos_token_id
                if not unfinished.any() and bug != "no_stop":
                    break
    return seqs


@bugs.bug("finished_rows_not_padded", replaces="generate",
          mistake="a row that produced EOS keeps generating: after its EOS a finished row gets pad_token_id "
                  "(eos_token_id when pad_token_id is None)")
def generate_no_padding(model, input_ids, **kw):
    return _loop(model, input_ids, bug="no_padding", **kw)


@bugs.bug("never_stops_early", replaces="generate",
          mistake="generation does not stop when every row has produced EOS: stop early, as transformers does")
def generate_no_stop(model, input_ids, **kw):
    return _loop(model, input_ids, bug="no_stop", **kw)


@bugs.bug("left_padding_positions_lost", replaces="generate",
          mistake="position_ids are passed for the prompt but not for the new tokens: the model then numbers a new "
                  "token by its index in the padded sequence, which skips the padding of a left-padded row; pass "
                  "position_ids (the row's last position + 1) at every step")
def generate_positions(model, input_ids, **kw):
    return _loop(model, input_ids, bug="positions", **kw)


@bugs.bug("left_padding_not_masked", replaces="generate",
          mistake="the model is called without the attention mask: the real tokens of a left-padded row attend to the "
                  "padding before them; pass attention_mask at every call")
def generate_no_mask(model, input_ids, **kw):
    return _loop(model, input_ids, bug="no_mask", **kw)


@bugs.bug("attention_mask_not_grown", replaces="generate",
          mistake="the attention mask does not grow with the generated tokens: append a 1 per step, so that it "
                  "covers the cache plus the new token")
def generate_mask_fixed(model, input_ids, **kw):
    return _loop(model, input_ids, bug="mask", **kw)


@bugs.bug("cache_never_reused", replaces="generate",
          mistake="the KV cache is never reused: with use_cache=True, feed only the newest token together with the "
                  "cache the previous call returned (out.cache), instead of the whole sequence again")
def generate_no_cache_reuse(model, input_ids, **kw):
    return _loop(model, input_ids, bug="no_cache_reuse", **kw)


@bugs.bug("penalty_ignores_prompt", replaces="generate",
          mistake="the repetition penalty counts only the generated tokens: the prompt's tokens count too (as in "
                  "transformers)")
def generate_penalty_new_only(model, input_ids, **kw):
    return _loop(model, input_ids, bug="penalty_new_only", **kw)


# A variant's module holds only the code registered with it: helpers travel with the variants using them.
for _variant, _needs in {
    "filters_before_temperature": [_filtered], "sample_takes_argmax": [_filtered], "sample_ignores_filters": [_filtered],
    "sample_one_draw_for_the_batch": [_filtered], "finished_rows_not_padded": [_loop], "never_stops_early": [_loop],
    "left_padding_positions_lost": [_loop], "left_padding_not_masked": [_loop], "attention_mask_not_grown": [_loop], "cache_never_reused": [_loop],
    "penalty_ignores_prompt": [_loop],
}.items():
    for _fn in _needs:
        bugs.bug(_variant, replaces=_fn.__name__, mistake="")(_fn)
