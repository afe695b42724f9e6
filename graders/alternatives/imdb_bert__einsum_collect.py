"""Alternative correct `imdb_bert`: a character scan instead of regexes, einsum mean pooling, losses
weighted at the end, predictions collected and scored at the end, per-submodule mode restore."""
import torch
import torch.nn.functional as F
from torch import nn


def clean_review(text):
    if not isinstance(text, str):
        raise TypeError(f"expected str, got {type(text).__name__}")
    lowered = text.lower()
    i, out = 0, []
    while i < len(text):
        matched = next((t for t in ("<br />", "<br/>", "<br>") if lowered.startswith(t, i)), None)
        if matched:
            out.append(" ")
            i += len(matched)
        else:
            out.append(text[i])
            i += 1
    return " ".join("".join(out).split())


class SentimentClassifier(nn.Module):
    def __init__(self, encoder, num_labels=2, dropout=0.1, pooling="cls"):
        super().__init__()
        options = ("cls", "mean")
        if pooling not in options:
            raise ValueError(f"unknown pooling {pooling!r}; choose from {options}")
        if not isinstance(num_labels, int) or num_labels < 1:
            raise ValueError("num_labels must be an int >= 1")
        if not (0.0 <= float(dropout) <= 1.0):
            raise ValueError("dropout must lie in [0, 1]")
        self.encoder = encoder
        self.pooling = pooling
        self.dropout = nn.Dropout(dropout)
        self.classifier = nn.Linear(encoder.config.hidden_size, num_labels)

    def forward(self, input_ids, attention_mask):
        h = self.encoder(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        if self.pooling == "mean":
            m = attention_mask.to(h.dtype)
            pooled = torch.einsum("bth,bt->bh", h, m) / m.sum(dim=1, keepdim=True)
        else:
            pooled = h.select(1, 0)
        return self.classifier(self.dropout(pooled))


def train_epoch(model, batches, optimizer, *, scheduler=None):
    model.train()
    losses, sizes = [], []
    for batch in batches:
        optimizer.zero_grad()
        logits = model(batch["input_ids"], batch["attention_mask"])
        loss = F.cross_entropy(logits, batch["labels"], reduction="mean")
        loss.backward()
        optimizer.step()
        if scheduler is not None:
            scheduler.step()
        losses.append(loss.item())
        sizes.append(len(batch["labels"]))
    if not sizes:
        raise ValueError("batches is empty")
    return sum(l * n for l, n in zip(losses, sizes)) / sum(sizes)


@torch.no_grad()
def evaluate(model, batches):
    flags = {name: m.training for name, m in model.named_modules()}
    model.eval()
    preds, gold = [], []
    try:
        for batch in batches:
            preds.append(model(batch["input_ids"], batch["attention_mask"]).argmax(-1))
            gold.append(batch["labels"])
    finally:
        for name, m in model.named_modules():
            m.training = flags[name]
    if not gold:
        raise ValueError("batches is empty")
    return (torch.cat(preds) == torch.cat(gold)).double().mean().item()
