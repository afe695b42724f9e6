"""Alternative correct `imdb_local_llm`: another prompt wording (no system message), the tokenizer's own left
padding (its setting restored afterwards), default position ids (RoPE depends only on relative positions), and
calibration written in probability space as a division."""
import torch

WORDS = ["negative", "positive"]


def build_messages(review, *, examples=()):
    if type(review) is not str:
        raise TypeError("review must be a string")

    def turn(text):
        return {"role": "user", "content": "Decide if this IMDB review is positive or negative. Reply with a single "
                                           "lowercase word.\n\n\"\"\"\n" + text + "\n\"\"\""}

    out = []
    for example in list(examples):
        if len(example) != 2:
            raise ValueError("each example must be (review, label)")
        text, label = example
        if type(text) is not str:
            raise TypeError("example reviews must be strings")
        if label is True or label is False or label not in (0, 1):
            raise ValueError("example labels must be 0 or 1")
        out += [turn(text), {"role": "assistant", "content": WORDS[label]}]
    return out + [turn(review)]


def label_logprobs(model, tokenizer, batch_of_messages, labels=("negative", "positive")):
    firsts = [tokenizer.encode(word, add_special_tokens=False) for word in labels]
    if not labels or any(len(f) == 0 for f in firsts):
        raise ValueError("every label needs at least one token")
    firsts = [f[0] for f in firsts]
    if len(firsts) != len(set(firsts)):
        raise ValueError("two labels start with the same token")
    texts = [tokenizer.apply_chat_template(list(m), tokenize=False, add_generation_prompt=True)
             for m in batch_of_messages]
    if not texts:
        return torch.empty(0, len(labels))
    saved, saved_pad = tokenizer.padding_side, tokenizer.pad_token
    try:
        tokenizer.padding_side = "left"
        if tokenizer.pad_token is None:
            tokenizer.pad_token = tokenizer.eos_token
        batch = tokenizer(texts, add_special_tokens=False, padding=True, return_tensors="pt")
    finally:
        tokenizer.padding_side = saved
        if saved_pad is None:
            tokenizer.pad_token = None
    with torch.inference_mode():
        out = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"])
        last = out.logits[:, -1, :].to(torch.float32)
        logp = last - torch.logsumexp(last, dim=-1, keepdim=True)
    return logp[:, firsts].clone()


def calibrate(logprobs, content_free_logprobs):
    if not isinstance(logprobs, torch.Tensor) or not isinstance(content_free_logprobs, torch.Tensor):
        raise TypeError("tensors expected")
    if logprobs.ndim != 2:
        raise ValueError("logprobs must be (B, n_labels)")
    prior = content_free_logprobs.reshape(-1, content_free_logprobs.shape[-1])
    if prior.shape[-1] != logprobs.shape[-1] or prior.shape[0] not in (1, logprobs.shape[0]) or \
            content_free_logprobs.ndim > 2:
        raise ValueError("content_free_logprobs does not match logprobs")
    # p(label | x) / p(label | N/A), renormalised -- done stably in log space
    ratio = logprobs - prior.to(logprobs.dtype)
    return ratio - torch.logsumexp(ratio, dim=-1, keepdim=True)


def classify(model, tokenizer, reviews, *, examples=(), content_free="N/A", calibrated=True, batch_size=8):
    if not isinstance(batch_size, int) or isinstance(batch_size, bool) or batch_size <= 0:
        raise ValueError("batch_size must be a positive integer")
    reviews = list(reviews)
    parts = []
    for i in range(0, len(reviews), batch_size):
        chunk = [build_messages(r, examples=examples) for r in reviews[i:i + batch_size]]
        parts.append(label_logprobs(model, tokenizer, chunk))
    if not parts:
        return []
    scores = torch.cat(parts)
    if calibrated:
        scores = calibrate(scores, label_logprobs(model, tokenizer, [build_messages(content_free, examples=examples)]))
    return scores.argmax(dim=1).tolist()
