"""Alternative correct `imdb_local_llm`: torch's pad_sequence for the left padding, gather for the label
columns, a system prompt with instructions and a different question, and calibration with logsumexp."""
import torch
from torch.nn.utils.rnn import pad_sequence

SYSTEM = "Read the movie review the user sends and say whether its sentiment is positive or negative."


def build_messages(review, *, examples=()):
    if not isinstance(review, str):
        raise TypeError(f"review must be str, not {type(review).__name__}")
    msgs = [{"role": "system", "content": SYSTEM}]
    for pair in examples:
        try:
            text, label = pair
        except (TypeError, ValueError):
            raise ValueError("examples must be (review, label) pairs") from None
        if not isinstance(text, str):
            raise TypeError("example review must be str")
        if label not in (0, 1) or isinstance(label, bool):
            raise ValueError(f"bad label {label!r}")
        msgs.append({"role": "user", "content": f"{text}\nSentiment?"})
        msgs.append({"role": "assistant", "content": "positive" if label == 1 else "negative"})
    msgs.append({"role": "user", "content": f"{review}\nSentiment?"})
    return msgs


def label_logprobs(model, tokenizer, batch_of_messages, labels=("negative", "positive")):
    labels = list(labels)
    if len(labels) == 0:
        raise ValueError("no labels")
    encoded = [tokenizer(w, add_special_tokens=False)["input_ids"] for w in labels]
    if min(map(len, encoded)) == 0:
        raise ValueError("a label has no tokens")
    first = torch.tensor([e[0] for e in encoded])
    if len(set(first.tolist())) < len(labels):
        raise ValueError("labels share a first token")
    seqs = []
    for messages in batch_of_messages:
        text = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        seqs.append(torch.tensor(tokenizer(text, add_special_tokens=False)["input_ids"], dtype=torch.long))
    if not seqs:
        return torch.zeros((0, len(labels)), dtype=torch.float32)
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    ids = pad_sequence(seqs, batch_first=True, padding_value=pad_id, padding_side="left")
    mask = pad_sequence([torch.ones_like(s) for s in seqs], batch_first=True, padding_value=0, padding_side="left")
    positions = torch.clamp(torch.cumsum(mask, dim=1) - 1, min=0)
    with torch.no_grad():
        logits = model(input_ids=ids, attention_mask=mask, position_ids=positions).logits
    logp = torch.log_softmax(logits[:, -1].double(), dim=-1).float()
    return torch.gather(logp, 1, first.expand(len(seqs), -1))


def calibrate(logprobs, content_free_logprobs):
    if not torch.is_tensor(logprobs) or not torch.is_tensor(content_free_logprobs):
        raise TypeError("calibrate takes tensors")
    if logprobs.dim() != 2:
        raise ValueError("logprobs must be 2-D")
    B, n = logprobs.shape
    cf = content_free_logprobs
    if cf.shape not in (torch.Size([n]), torch.Size([1, n]), torch.Size([B, n])):
        raise ValueError("content_free_logprobs has the wrong shape")
    shifted = logprobs - cf.to(logprobs.dtype)
    return shifted - shifted.logsumexp(-1, keepdim=True)


def classify(model, tokenizer, reviews, *, examples=(), content_free="N/A", calibrated=True, batch_size=8):
    if type(batch_size) is not int or batch_size < 1:
        raise ValueError("batch_size must be >= 1")
    reviews = list(reviews)
    prior = None
    if calibrated:
        prior = label_logprobs(model, tokenizer, [build_messages(content_free, examples=examples)])[0]
    labels = []
    for start in range(0, len(reviews), batch_size):
        convs = [build_messages(r, examples=examples) for r in reviews[start:start + batch_size]]
        scores = label_logprobs(model, tokenizer, convs)
        if prior is not None:
            scores = calibrate(scores, prior)
        labels += [1 if row[1] > row[0] else 0 for row in scores.tolist()]
    return labels
