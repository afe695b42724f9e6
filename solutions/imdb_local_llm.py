"""A local chat model as a zero-training classifier (notes §4).

Instead of fine-tuning a classifier, ask an instruction-tuned model: "is this review positive or
negative?". Rather than letting it generate free text and parsing the answer, read its next-token
distribution right after the generation prompt and compare the log-probabilities of the label words:
one forward pass per review, no sampling, and a score for every label.

Three ideas make this work better:

* **Few-shot prompting**: earlier user/assistant turns with labelled reviews show the model the task and,
  as importantly, the exact answer format (a single lowercase word), so the label words become the
  likely next tokens.
* **Batched scoring with left padding**: conversations have different lengths. Padding on the left puts
  the last prompt token of every row in the last column, where the next-token distribution is read.
  With the attention mask (and positions counted from the first real token) each row's result equals
  scoring that conversation alone.
* **Contextual calibration** (Zhao et al. 2021, "Calibrate Before Use"): a small model prefers some label
  words whatever the input. Score a content-free input (``"N/A"`` in place of the review, same prompt),
  and subtract its log-probabilities: in probability space this divides each label's probability by
  its prior under the prompt, then renormalises.
"""
from __future__ import annotations

import torch

LABEL_WORDS = ("negative", "positive")  # index = label (1 = positive)


def build_messages(review, *, examples=()):
    """Chat messages asking whether ``review`` is ``positive`` or ``negative``.

    The conversation is: an optional system message (instructions; this one has none), then for each
    ``(text, label)`` of ``examples``, in order, a user message that contains ``text`` verbatim and an assistant message
    whose content is exactly the label word (``"positive"`` for 1, ``"negative"`` for 0), and finally a
    user message that contains ``review`` verbatim. Example user turns are worded like the final one.
    The wording is free; this one is deterministic.

    Args:
        review: the review to classify (str).
        examples: a sequence of ``(review_text, label)`` pairs, ``label`` 0 or 1 (few-shot examples).

    Returns:
        A list of ``{"role": ..., "content": ...}`` dicts, roles ``system``/``user``/``assistant``.

    Raises:
        TypeError: if ``review`` or an example text is not a str.
        ValueError: if an example is not a pair or its label is not 0 or 1.
    """
    ### BEGIN SOLUTION
    if not isinstance(review, str):
        raise TypeError(f"review must be a str, got {type(review).__name__}")

    def ask(text):
        # The review first, the question after it: SmolLM2-135M separates the classes far better this way
        # (dev reviews from the training split: 68.5% zero-shot vs 56% with a system prompt and the review
        # after a "Review:" label).
        return f"{text}\n\nWas the review above positive or negative? Answer with one word."

    messages = []
    for n, example in enumerate(examples):
        if not isinstance(example, (tuple, list)) or len(example) != 2:
            raise ValueError(f"examples[{n}] must be a (review, label) pair")
        text, label = example
        if not isinstance(text, str):
            raise TypeError(f"examples[{n}][0] must be a str, got {type(text).__name__}")
        if isinstance(label, bool) or label not in (0, 1):
            raise ValueError(f"examples[{n}] has label {label!r}; labels are 0 (negative) or 1 (positive)")
        messages.append({"role": "user", "content": ask(text)})
        messages.append({"role": "assistant", "content": LABEL_WORDS[int(label)]})
    messages.append({"role": "user", "content": ask(review)})
    return messages
    ### END SOLUTION


def label_logprobs(model, tokenizer, batch_of_messages, labels=("negative", "positive")):
    """Log-probability of each label's first token as the model's next token, for a batch of conversations.

    Each conversation is rendered with ``tokenizer.apply_chat_template(..., add_generation_prompt=True)``
    and tokenized with ``add_special_tokens=False``. The conversations are padded **on the left** with the
    tokenizer's pad token (its EOS if it has none) into one batch, and the model is run once with the
    attention mask and position ids that count from each row's first real token, without gradients.
    At the last position (the last prompt token of every row) the next-token distribution is
    ``log_softmax`` over the whole vocabulary; the result holds, for each label, the entry of its first
    token ``tokenizer.encode(label, add_special_tokens=False)[0]`` (no leading space: the answer starts a
    new line after the generation prompt). Each row equals scoring its conversation alone.

    Args:
        model: a transformers causal LM (e.g. ``LlamaForCausalLM``), in eval mode.
        tokenizer: its tokenizer, with a chat template. Not modified (its ``padding_side`` included).
        batch_of_messages: a list of B conversations (lists of message dicts).
        labels: the label words; their first tokens must differ.

    Returns:
        float32 tensor ``(B, len(labels))`` of log-probabilities (each <= 0), without gradient.

    Raises:
        ValueError: if ``labels`` is empty, a label has no tokens, or two labels share their first token.
    """
    ### BEGIN SOLUTION
    labels = tuple(labels)
    if not labels:
        raise ValueError("labels must name at least one label word")
    label_ids = []
    for label in labels:
        ids = tokenizer.encode(label, add_special_tokens=False)
        if not ids:
            raise ValueError(f"label {label!r} has no tokens")
        label_ids.append(ids[0])
    if len(set(label_ids)) != len(label_ids):
        raise ValueError(f"labels {labels} do not have distinct first tokens, so they cannot be told apart")
    batch = list(batch_of_messages)
    if not batch:
        return torch.zeros(0, len(labels))

    rows = []
    for messages in batch:
        text = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        rows.append(tokenizer(text, add_special_tokens=False)["input_ids"])
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    width = max(len(r) for r in rows)
    input_ids = torch.full((len(rows), width), pad if pad is not None else 0, dtype=torch.long)
    attention_mask = torch.zeros(len(rows), width, dtype=torch.long)
    for i, row in enumerate(rows):  # left padding: the last prompt token of every row is in the last column
        input_ids[i, width - len(row):] = torch.tensor(row, dtype=torch.long)
        attention_mask[i, width - len(row):] = 1
    position_ids = (attention_mask.cumsum(-1) - 1).clamp(min=0)  # 0 at each row's first real token
    with torch.no_grad():
        logits = model(input_ids=input_ids, attention_mask=attention_mask, position_ids=position_ids,
                       logits_to_keep=1).logits[:, -1, :]
    return torch.log_softmax(logits.float(), dim=-1)[:, label_ids]
    ### END SOLUTION


def calibrate(logprobs, content_free_logprobs):
    """Contextual calibration: ``log_softmax(logprobs - content_free_logprobs, dim=-1)``.

    Subtracting log-probabilities divides each label's probability by its probability on the
    content-free input; the ``log_softmax`` over the label axis renormalises, so each row's
    probabilities sum to 1 again.

    Args:
        logprobs: ``(B, n_labels)`` float tensor (from ``label_logprobs``).
        content_free_logprobs: ``(n_labels,)``, ``(1, n_labels)`` or ``(B, n_labels)``, broadcast over rows.

    Returns:
        ``(B, n_labels)`` log-probabilities, dtype of ``logprobs`` (float64 keeps float64 precision,
        within 1e-10); inputs are not modified.

    Raises:
        TypeError: if an argument is not a tensor.
        ValueError: if ``logprobs`` is not 2-dimensional or the shapes do not match as above.
    """
    ### BEGIN SOLUTION
    for name, t in (("logprobs", logprobs), ("content_free_logprobs", content_free_logprobs)):
        if not isinstance(t, torch.Tensor):
            raise TypeError(f"{name} must be a torch.Tensor, got {type(t).__name__}")
    if logprobs.dim() != 2:
        raise ValueError(f"logprobs must have shape (B, n_labels), got {tuple(logprobs.shape)}")
    B, n = logprobs.shape
    cf = content_free_logprobs
    if cf.dim() == 1:
        cf = cf[None]
    if cf.dim() != 2 or cf.shape[1] != n or cf.shape[0] not in (1, B):
        raise ValueError(f"content_free_logprobs must have shape ({n},), (1, {n}) or ({B}, {n}), "
                         f"got {tuple(content_free_logprobs.shape)}")
    return torch.log_softmax(logprobs - cf.to(logprobs.dtype), dim=-1)
    ### END SOLUTION


def classify(model, tokenizer, reviews, *, examples=(), content_free="N/A", calibrated=True, batch_size=8):
    """Sentiment of each review (1 = positive, 0 = negative) from the model's label log-probabilities.

    Every review is turned into ``build_messages(review, examples=examples)`` and scored with
    ``label_logprobs`` over ``("negative", "positive")``, ``batch_size`` conversations per forward pass
    (reviews of similar length are batched together, which wastes less padding; the order of the result
    is the order of ``reviews``). When ``calibrated``, the scores go through ``calibrate`` with the scores
    of ``build_messages(content_free, examples=examples)`` (the same prompt, the content-free text in
    place of the review). The label is the argmax (ties: ``negative``).

    Returns:
        A list of ``len(reviews)`` ints, each 0 or 1.

    Raises:
        ValueError: if ``batch_size`` is not a positive int.
    """
    ### BEGIN SOLUTION
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive int, got {batch_size!r}")
    reviews = list(reviews)
    if not reviews:
        return []
    conversations = [build_messages(r, examples=examples) for r in reviews]
    order = sorted(range(len(reviews)), key=lambda i: len(reviews[i]))
    scores = torch.empty(len(reviews), len(LABEL_WORDS))
    for start in range(0, len(order), batch_size):
        chunk = order[start:start + batch_size]
        scores[chunk] = label_logprobs(model, tokenizer, [conversations[i] for i in chunk], LABEL_WORDS)
    if calibrated:
        neutral = label_logprobs(model, tokenizer, [build_messages(content_free, examples=examples)], LABEL_WORDS)
        scores = calibrate(scores, neutral)
    return [int(i) for i in scores.argmax(dim=-1)]
    ### END SOLUTION
