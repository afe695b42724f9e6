"""Realistic buggy variants of ``imdb_local_llm``: each is a patch of the reference (see llmlab.grading.variants)."""
from llmlab.grading.variants import Variants

bugs = Variants("imdb_local_llm")

# --- build_messages ------------------------------------------------------------------------------
bugs.patch("few_shot_roles_swapped", "build_messages", """
        messages.append({"role": "user", "content": ask(text)})
        messages.append({"role": "assistant", "content": LABEL_WORDS[int(label)]})
""", """
        messages.append({"role": "assistant", "content": LABEL_WORDS[int(label)]})
        messages.append({"role": "user", "content": ask(text)})
""", mistake="few-shot examples are in the wrong role order: each example is a user turn (the review) followed by an "
             "assistant turn (its label word)")
bugs.patch("few_shot_labels_swapped", "build_messages", "LABEL_WORDS[int(label)]", "LABEL_WORDS[1 - int(label)]",
           mistake="few-shot labels are swapped: label 1 is 'positive', label 0 is 'negative'")
bugs.patch("few_shot_examples_reversed", "build_messages", "enumerate(examples)", "enumerate(list(examples)[::-1])",
           mistake="few-shot examples are shown in reverse order: keep the order given")

# --- label_logprobs ------------------------------------------------------------------------------
SCORES = "label_logprobs"
LOGPROBS = "return torch.log_softmax(logits.float(), dim=-1)[:, label_ids]"
bugs.patch("right_padding", SCORES, "input_ids[i, width - len(row):]", "input_ids[i, :len(row)]",
           mistake="the batch is padded on the right and scored at the last column: for every row shorter than the "
                   "longest, that column is padding, not the last prompt token (pad on the left)")
bugs.patch("right_padding", SCORES, "attention_mask[i, width - len(row):] = 1", "attention_mask[i, :len(row)] = 1")
bugs.patch("no_attention_mask", SCORES, "model(input_ids=input_ids, attention_mask=attention_mask,",
           "model(input_ids=input_ids,",
           mistake="the left-padded batch is run without its attention mask: real tokens attend to the padding (pass "
                   "attention_mask to the model)")
bugs.patch("scores_wrong_position", SCORES, "logits_to_keep=1).logits[:, -1, :]", "logits_to_keep=2).logits[:, -2, :]",
           mistake="the scores are read one position too early: the next-token distribution after the prompt is the "
                   "model's output at the LAST prompt position (logits[:, -1] with left padding)")
bugs.patch("label_with_leading_space", SCORES, "tokenizer.encode(label,", 'tokenizer.encode(" " + label,',
           mistake="the label words are tokenized with a leading space (' positive'): after the generation prompt "
                   "the answer starts a new line, so use tokenizer.encode(label, add_special_tokens=False)[0] on the "
                   "label exactly as given")
bugs.patch("no_generation_prompt", SCORES, "add_generation_prompt=True", "add_generation_prompt=False",
           mistake="the conversation is rendered without the generation prompt: the next token after '<|im_end|>' is "
                   "a new turn, not the assistant's answer (add_generation_prompt=True)")
bugs.patch("raw_logits_not_logprobs", SCORES, LOGPROBS, "return logits.float()[:, label_ids]",
           mistake="raw logits are returned: take log_softmax over the whole vocabulary first")
bugs.patch("normalised_over_labels_only", SCORES, LOGPROBS,
           "return torch.log_softmax(logits.float()[:, label_ids], dim=-1)",
           mistake="the log-softmax is taken over the label tokens only: label_logprobs returns log-probabilities "
                   "over the whole vocabulary (normalising over the labels is calibrate's job)")
bugs.patch("changes_tokenizer_padding_side", SCORES, "batch = list(batch_of_messages)",
           'tokenizer.padding_side = "left"\nbatch = list(batch_of_messages)',
           mistake="the tokenizer's padding_side is changed and not restored: functions must not change their "
                   "arguments (pad by hand, or restore the setting)")
bugs.patch("keeps_gradients", SCORES, "with torch.no_grad():", "with torch.enable_grad():",
           mistake="the model runs with gradients enabled: wrap scoring in torch.no_grad()")

# --- calibrate -----------------------------------------------------------------------------------
CALIBRATED = "return torch.log_softmax(logprobs - cf.to(logprobs.dtype), dim=-1)"
bugs.patch("calibrate_in_probability_space", "calibrate", CALIBRATED,
           "p = logprobs.exp() - cf.to(logprobs.dtype).exp()\nreturn torch.log(p / p.sum(-1, keepdim=True))",
           mistake="calibration subtracts probabilities: contextual calibration divides probabilities, i.e. "
                   "subtracts log-probabilities, then renormalises (log_softmax(logprobs - content_free))")
bugs.patch("calibrate_not_renormalised", "calibrate", CALIBRATED, "return logprobs - cf.to(logprobs.dtype)",
           mistake="the calibrated scores are not renormalised: apply log_softmax over the labels after subtracting, "
                   "so each row is a distribution again")
bugs.patch("calibrate_adds", "calibrate", CALIBRATED,
           "return torch.log_softmax(logprobs + cf.to(logprobs.dtype), dim=-1)",
           mistake="the content-free log-probabilities are added instead of subtracted: calibration removes the "
                   "model's prior, it does not reinforce it")
bugs.patch("calibrate_normalises_over_batch", "calibrate", CALIBRATED,
           "return torch.log_softmax(logprobs - cf.to(logprobs.dtype), dim=0)",
           mistake="the log_softmax runs over the batch axis: normalise over the labels (dim=-1)")

# --- classify ------------------------------------------------------------------------------------
NEUTRAL = "build_messages(content_free, examples=examples)"
bugs.patch("classify_content_free_without_examples", "classify", NEUTRAL, "build_messages(content_free)",
           mistake="the content-free input is scored without the few-shot examples: it must use exactly the same "
                   "prompt as the reviews, with the content-free text in place of the review")
bugs.patch("classify_ignores_calibrated", "classify", """
    if calibrated:
        neutral = label_logprobs(model, tokenizer, [build_messages(content_free, examples=examples)], LABEL_WORDS)
        scores = calibrate(scores, neutral)
""", "", mistake="calibrated=True is ignored: when calibrating, subtract the content-free input's log-probabilities "
                 "(calibrate) before the argmax")
bugs.patch("classify_labels_reversed", "classify", "return [int(i) for i", "return [1 - int(i) for i",
           mistake="the labels are reversed: column 0 is 'negative' (label 0), column 1 is 'positive' (label 1)")
bugs.patch("classify_ignores_content_free_argument", "classify", NEUTRAL, 'build_messages("N/A", examples=examples)',
           mistake="the content_free argument is ignored ('N/A' is always used): score the text you are given")
