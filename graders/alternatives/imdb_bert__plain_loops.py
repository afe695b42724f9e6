"""Alternative correct `imdb_bert`: different names, regexes, pooling arithmetic and loop bookkeeping."""
import re

import torch
from torch import nn


def clean_review(text):
    if type(text) is not str:
        raise TypeError("clean_review expects a string")
    text = re.sub(r"(?i)<br\s*/?>", " ", text)
    return re.sub(r"\s+", " ", text).strip()


class SentimentClassifier(nn.Module):
    def __init__(self, encoder, num_labels=2, dropout=0.1, pooling="cls"):
        super().__init__()
        if pooling not in {"cls", "mean"}:
            raise ValueError("pooling must be one of 'cls', 'mean'")
        if num_labels <= 0:
            raise ValueError("num_labels must be positive")
        if dropout < 0 or dropout > 1:
            raise ValueError("dropout must be in [0, 1]")
        self.bert = encoder
        self.mode = pooling
        self.drop = nn.Dropout(p=dropout)
        self.head = nn.Linear(encoder.config.hidden_size, num_labels, bias=True)

    def forward(self, input_ids, attention_mask):
        states = self.bert(input_ids, attention_mask=attention_mask)[0]  # last_hidden_state
        if self.mode == "cls":
            vec = states[:, 0, :]
        else:
            keep = attention_mask.unsqueeze(-1).bool()
            total = states.masked_fill(~keep, 0.0).sum(dim=1)
            vec = total / keep.sum(dim=1).to(states.dtype)
        return self.head(self.drop(vec))


def train_epoch(model, batches, optimizer, *, scheduler=None):
    model.train(True)
    loss_fn = nn.CrossEntropyLoss()
    running = torch.zeros((), dtype=torch.float64)
    seen = 0
    for batch in batches:
        logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"])
        loss = loss_fn(logits, batch["labels"])
        model.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        if scheduler:
            scheduler.step()
        running += loss.detach().double() * batch["labels"].numel()
        seen += batch["labels"].numel()
    if not seen:
        raise ValueError("no batches")
    return float(running / seen)


def evaluate(model, batches):
    previous = model.training
    model.eval()
    hits, seen = 0, 0
    with torch.inference_mode():
        for batch in batches:
            pred = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).argmax(dim=1)
            hits += (pred == batch["labels"]).sum().item()
            seen += batch["labels"].shape[0]
    model.train(previous)
    if not seen:
        raise ValueError("no batches")
    return hits / seen
