"""Realistic buggy variants of ``imdb_local_llm``.

Scoring variants are written out in full (they are the mistakes students make when padding a batch by
hand); the others reuse the reference (bound as a default argument, ``_ref=...``, before the name is
rebound to the variant) and make their one mistake around it.
"""
import torch

from llmlab.grading.variants import Variants
from solutions.imdb_local_llm import build_messages, calibrate, classify, label_logprobs

bugs = Variants("imdb_local_llm")


# --- build_messages -----------------------------------------------------------------------------
@bugs.bug("few_shot_roles_swapped", replaces="build_messages",
          mistake="few-shot examples are in the wrong role order: each example is a user turn (the review) "
                  "followed by an assistant turn (its label word)")
def build_roles_swapped(review, *, examples=(), _ref=build_messages):
    messages = _ref(review, examples=examples)
    head = 1 if messages[0]["role"] == "system" else 0
    for i in range(head, len(messages) - 1, 2):
        messages[i], messages[i + 1] = messages[i + 1], messages[i]
    return messages


@bugs.bug("few_shot_labels_swapped", replaces="build_messages",
          mistake="few-shot labels are swapped: label 1 is 'positive', label 0 is 'negative'")
def build_labels_swapped(review, *, examples=(), _ref=build_messages):
    return _ref(review, examples=[(text, 1 - label) for text, label in examples])


@bugs.bug("few_shot_examples_reversed", replaces="build_messages",
          mistake="few-shot examples are shown in reverse order: keep the order given")
def build_examples_reversed(review, *, examples=(), _ref=build_messages):
    return _ref(review, examples=list(examples)[::-1])


# --- label_logprobs -----------------------------------------------------------------------------
@bugs.bug("right_padding", replaces="label_logprobs",
          mistake="the batch is padded on the right and scored at the last column: for every row shorter than "
                  "the longest, that column is padding, not the last prompt token (pad on the left)")
def scores_right_padding(model, tokenizer, batch_of_messages, labels=("negative", "positive")):
    rows = [tokenizer(tokenizer.apply_chat_template(m, tokenize=False, add_generation_prompt=True),
                      add_special_tokens=False)["input_ids"] for m in batch_of_messages]
    width = max(len(r) for r in rows)
    ids = torch.full((len(rows), width), tokenizer.pad_token_id, dtype=torch.long)
    mask = torch.zeros(len(rows), width, dtype=torch.long)
    for i, r in enumerate(rows):
        ids[i, :len(r)] = torch.tensor(r)
        mask[i, :len(r)] = 1
    with torch.no_grad():
        logits = model(input_ids=ids, attention_mask=mask).logits[:, -1]
    return torch.log_softmax(logits.float(), -1)[:, [tokenizer.encode(w, add_special_tokens=False)[0] for w in labels]]


@bugs.bug("no_attention_mask", replaces="label_logprobs",
          mistake="the left-padded batch is run without its attention mask: real tokens attend to the padding "
                  "(pass attention_mask to the model)")
def scores_no_mask(model, tokenizer, batch_of_messages, labels=("negative", "positive")):
    rows = [tokenizer(tokenizer.apply_chat_template(m, tokenize=False, add_generation_prompt=True),
                      add_special_tokens=False)["input_ids"] for m in batch_of_messages]
    width = max(len(r) for r in rows)
    ids = torch.full((len(rows), width), tokenizer.pad_token_id, dtype=torch.long)
    for i, r in enumerate(rows):
        ids[i, width - len(r):] = torch.tensor(r)
    with torch.no_grad():
        logits = model(input_ids=ids).logits[:, -1]
    return torch.log_softmax(logits.float(), -1)[:, [tokenizer.encode(w, add_special_tokens=False)[0] for w in labels]]


@bugs.bug("scores_wrong_position", replaces="label_logprobs",
          mistake="the scores are read one position too early: the next-token distribution after the prompt is "
                  "the model's output at the LAST prompt position (logits[:, -1] with left padding)")
def scores_wrong_position(model, tokenizer, batch_of_messages, labels=("negative", "positive")):
    rows = [tokenizer(tokenizer.apply_chat_template(m, tokenize=False, add_generation_prompt=True),
                      add_special_tokens=False)["input_ids"] for m in batch_of_messages]
    width = max(len(r) for r in rows)
    ids = torch.full((len(rows), width), tokenizer.pad_token_id, dtype=torch.long)
    mask = torch.zeros(len(rows), width, dtype=torch.long)
    for i, r in enumerate(rows):
        ids[i, width - len(r):] = torch.tensor(r)
        mask[i, width - len(r):] = 1
    with torch.no_grad():
        logits = model(input_ids=ids, attention_mask=mask).logits[:, -2]
    return torch.log_softmax(logits.float(), -1)[:, [tokenizer.encode(w, add_special_tokens=False)[0] for w in labels]]


@bugs.bug("label_with_leading_space", replaces="label_logprobs",
          mistake="the label words are tokenized with a leading space (' positive'): after the generation prompt "
                  "the answer starts a new line, so use tokenizer.encode(label, add_special_tokens=False)[0] on "
                  "the label exactly as given")
def scores_leading_space(model, tokenizer, batch_of_messages, labels=("negative", "positive"), _ref=label_logprobs):
    return _ref(model, tokenizer, batch_of_messages, tuple(" " + label for label in labels))


@bugs.bug("no_generation_prompt", replaces="label_logprobs",
          mistake="the conversation is rendered without the generation prompt: the next token after '<|im_end|>' "
                  "is a new turn, not the assistant's answer (add_generation_prompt=True)")
def scores_no_generation_prompt(model, tokenizer, batch_of_messages, labels=("negative", "positive")):
    rows = [tokenizer(tokenizer.apply_chat_template(m, tokenize=False, add_generation_prompt=False),
                      add_special_tokens=False)["input_ids"] for m in batch_of_messages]
    width = max(len(r) for r in rows)
    ids = torch.full((len(rows), width), tokenizer.pad_token_id, dtype=torch.long)
    mask = torch.zeros(len(rows), width, dtype=torch.long)
    for i, r in enumerate(rows):
        ids[i, width - len(r):] = torch.tensor(r)
        mask[i, width - len(r):] = 1
    with torch.no_grad():
        logits = model(input_ids=ids, attention_mask=mask).logits[:, -1]
    return torch.log_softmax(logits.float(), -1)[:, [tokenizer.encode(w, add_special_tokens=False)[0] for w in labels]]


@bugs.bug("raw_logits_not_logprobs", replaces="label_logprobs",
          mistake="raw logits are returned: take log_softmax over the whole vocabulary first")
def scores_raw_logits(model, tokenizer, batch_of_messages, labels=("negative", "positive")):
    rows = [tokenizer(tokenizer.apply_chat_template(m, tokenize=False, add_generation_prompt=True),
                      add_special_tokens=False)["input_ids"] for m in batch_of_messages]
    width = max(len(r) for r in rows)
    ids = torch.full((len(rows), width), tokenizer.pad_token_id, dtype=torch.long)
    mask = torch.zeros(len(rows), width, dtype=torch.long)
    for i, r in enumerate(rows):
        ids[i, width - len(r):] = torch.tensor(r)
        mask[i, width - len(r):] = 1
    with torch.no_grad():
        logits = model(input_ids=ids, attention_mask=mask).logits[:, -1]
    return logits.float()[:, [tokenizer.encode(w, add_special_tokens=False)[0] for w in labels]]


@bugs.bug("normalised_over_labels_only", replaces="label_logprobs",
          mistake="the log-softmax is taken over the label tokens only: label_logprobs returns log-probabilities "
                  "over the whole vocabulary (normalising over the labels is calibrate's job)")
def scores_label_softmax(model, tokenizer, batch_of_messages, labels=("negative", "positive"), _ref=label_logprobs):
    return torch.log_softmax(_ref(model, tokenizer, batch_of_messages, labels), dim=-1)


@bugs.bug("changes_tokenizer_padding_side", replaces="label_logprobs",
          mistake="the tokenizer's padding_side is changed and not restored: functions must not change their "
                  "arguments (pad by hand, or restore the setting)")
def scores_sets_padding_side(model, tokenizer, batch_of_messages, labels=("negative", "positive")):
    tokenizer.padding_side = "left"
    texts = [tokenizer.apply_chat_template(m, tokenize=False, add_generation_prompt=True) for m in batch_of_messages]
    enc = tokenizer(texts, add_special_tokens=False, padding=True, return_tensors="pt")
    position_ids = (enc["attention_mask"].cumsum(-1) - 1).clamp(min=0)
    with torch.no_grad():
        logits = model(input_ids=enc["input_ids"], attention_mask=enc["attention_mask"],
                       position_ids=position_ids).logits[:, -1]
    return torch.log_softmax(logits.float(), -1)[:, [tokenizer.encode(w, add_special_tokens=False)[0] for w in labels]]


@bugs.bug("keeps_gradients", replaces="label_logprobs",
          mistake="the model runs with gradients enabled: wrap scoring in torch.no_grad()")
def scores_with_grad(model, tokenizer, batch_of_messages, labels=("negative", "positive")):
    rows = [tokenizer(tokenizer.apply_chat_template(m, tokenize=False, add_generation_prompt=True),
                      add_special_tokens=False)["input_ids"] for m in batch_of_messages]
    width = max([len(r) for r in rows] + [1])
    ids = torch.full((len(rows), width), tokenizer.pad_token_id, dtype=torch.long)
    mask = torch.zeros(len(rows), width, dtype=torch.long)
    for i, r in enumerate(rows):
        ids[i, width - len(r):] = torch.tensor(r)
        mask[i, width - len(r):] = 1
    with torch.enable_grad():
        logits = model(input_ids=ids, attention_mask=mask).logits[:, -1]
    return torch.log_softmax(logits.float(), -1)[:, [tokenizer.encode(w, add_special_tokens=False)[0] for w in labels]]


# --- calibrate ----------------------------------------------------------------------------------
@bugs.bug("calibrate_in_probability_space", replaces="calibrate",
          mistake="calibration subtracts probabilities: contextual calibration divides probabilities, i.e. "
                  "subtracts log-probabilities, then renormalises (log_softmax(logprobs - content_free))")
def calibrate_probs(logprobs, content_free_logprobs):
    p = logprobs.exp() - content_free_logprobs.exp()
    return torch.log(p / p.sum(-1, keepdim=True))


@bugs.bug("calibrate_not_renormalised", replaces="calibrate",
          mistake="the calibrated scores are not renormalised: apply log_softmax over the labels after "
                  "subtracting, so each row is a distribution again")
def calibrate_no_norm(logprobs, content_free_logprobs):
    return logprobs - content_free_logprobs


@bugs.bug("calibrate_adds", replaces="calibrate",
          mistake="the content-free log-probabilities are added instead of subtracted: calibration removes the "
                  "model's prior, it does not reinforce it")
def calibrate_adds(logprobs, content_free_logprobs):
    return torch.log_softmax(logprobs + content_free_logprobs, dim=-1)


@bugs.bug("calibrate_normalises_over_batch", replaces="calibrate",
          mistake="the log_softmax runs over the batch axis: normalise over the labels (dim=-1)")
def calibrate_dim0(logprobs, content_free_logprobs):
    return torch.log_softmax(logprobs - content_free_logprobs, dim=0)


# --- classify -----------------------------------------------------------------------------------
@bugs.bug("classify_content_free_without_examples", replaces="classify",
          mistake="the content-free input is scored without the few-shot examples: it must use exactly the same "
                  "prompt as the reviews, with the content-free text in place of the review")
def classify_cf_zero_shot(model, tokenizer, reviews, *, examples=(), content_free="N/A", calibrated=True,
                          batch_size=8):
    reviews = list(reviews)
    if not reviews:
        return []
    scores = label_logprobs(model, tokenizer, [build_messages(r, examples=examples) for r in reviews])
    if calibrated:
        scores = calibrate(scores, label_logprobs(model, tokenizer, [build_messages(content_free)]))
    return [int(i) for i in scores.argmax(-1)]


@bugs.bug("classify_ignores_calibrated", replaces="classify",
          mistake="calibrated=True is ignored: when calibrating, subtract the content-free input's log-probabilities "
                  "(calibrate) before the argmax")
def classify_never_calibrates(model, tokenizer, reviews, *, examples=(), content_free="N/A", calibrated=True,
                              batch_size=8, _ref=classify):
    return _ref(model, tokenizer, reviews, examples=examples, content_free=content_free, calibrated=False,
                batch_size=batch_size)


@bugs.bug("classify_labels_reversed", replaces="classify",
          mistake="the labels are reversed: column 0 is 'negative' (label 0), column 1 is 'positive' (label 1)")
def classify_reversed(model, tokenizer, reviews, *, examples=(), content_free="N/A", calibrated=True, batch_size=8,
                      _ref=classify):
    return [1 - p for p in _ref(model, tokenizer, reviews, examples=examples, content_free=content_free,
                                calibrated=calibrated, batch_size=batch_size)]


@bugs.bug("classify_ignores_content_free_argument", replaces="classify",
          mistake="the content_free argument is ignored ('N/A' is always used): score the text you are given")
def classify_fixed_na(model, tokenizer, reviews, *, examples=(), content_free="N/A", calibrated=True, batch_size=8,
                      _ref=classify):
    return _ref(model, tokenizer, reviews, examples=examples, content_free="N/A", calibrated=calibrated,
                batch_size=batch_size)
