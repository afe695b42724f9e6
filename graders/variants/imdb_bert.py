"""Realistic buggy variants of ``imdb_bert``: cleaning, pooling, and the training / evaluation loops.

Each is the reference with one mistake a student makes when writing a fine-tuning script by hand.
"""
import re

import torch
import torch.nn.functional as F

from llmlab.grading.variants import Variants

bugs = Variants("imdb_bert")


# --- clean_review ------------------------------------------------------------------------------
@bugs.bug("br_removed_without_space", replaces="clean_review",
          mistake="<br /> is deleted instead of replaced by a space, so the words on both sides of a line break get "
                  "glued together ('end.<br />Next' must become 'end. Next')")
def clean_glued(text):
    if not isinstance(text, str):
        raise TypeError("text must be a str")
    return " ".join(re.sub(r"<br\s*/?>", "", text, flags=re.IGNORECASE).split())


@bugs.bug("only_spaces_collapsed", replaces="clean_review",
          mistake="only runs of spaces are collapsed: tabs, newlines and other whitespace must become one space too "
                  "(\\s+ or str.split() handle them all)")
def clean_spaces_only(text):
    if not isinstance(text, str):
        raise TypeError("text must be a str")
    return re.sub(" +", " ", re.sub(r"<br\s*/?>", " ", text, flags=re.IGNORECASE)).strip(" ")


@bugs.bug("all_html_tags_removed", replaces="clean_review",
          mistake="every HTML-looking tag is removed: only the line breaks <br /> are replaced, the rest of the text "
                  "(including '<i>', or 'a<b and c>d') must stay as it is")
def clean_all_tags(text):
    if not isinstance(text, str):
        raise TypeError("text must be a str")
    return " ".join(re.sub(r"<[^>]*>", " ", text).split())


# --- SentimentClassifier -----------------------------------------------------------------------
@bugs.bug("mean_pooling_counts_padding", replaces="SentimentClassifier.forward",
          mistake="mean pooling averages over every position, padding included: weight the hidden states by "
                  "attention_mask and divide by the number of real tokens")
def forward_mean_with_padding(self, input_ids, attention_mask):
    hidden = self.encoder(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
    pooled = hidden[:, 0] if self.pooling == "cls" else hidden.mean(dim=1)
    return self.classifier(self.dropout(pooled))


@bugs.bug("attention_mask_not_passed", replaces="SentimentClassifier.forward",
          mistake="the attention_mask is not passed to the encoder, so real tokens attend to the padding and a "
                  "review's logits change with the amount of padding in its batch")
def forward_no_attention_mask(self, input_ids, attention_mask):
    hidden = self.encoder(input_ids=input_ids).last_hidden_state
    if self.pooling == "cls":
        pooled = hidden[:, 0]
    else:
        w = attention_mask.to(hidden.dtype).unsqueeze(-1)
        pooled = (hidden * w).sum(1) / w.sum(1).clamp(min=1.0)
    return self.classifier(self.dropout(pooled))


@bugs.bug("uses_pooler_output", replaces="SentimentClassifier.forward",
          mistake="'cls' pooling uses BERT's pooler_output (an extra dense + tanh layer): take the [CLS] hidden "
                  "state itself, last_hidden_state[:, 0]")
def forward_pooler_output(self, input_ids, attention_mask):
    out = self.encoder(input_ids=input_ids, attention_mask=attention_mask)
    if self.pooling == "cls":
        pooled = out.pooler_output
    else:
        w = attention_mask.to(out.last_hidden_state.dtype).unsqueeze(-1)
        pooled = (out.last_hidden_state * w).sum(1) / w.sum(1).clamp(min=1.0)
    return self.classifier(self.dropout(pooled))


@bugs.bug("cls_from_last_position", replaces="SentimentClassifier.forward",
          mistake="'cls' pooling takes the LAST position (a decoder habit): BERT's [CLS] token is at position 0")
def forward_last_position(self, input_ids, attention_mask):
    hidden = self.encoder(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
    if self.pooling == "cls":
        pooled = hidden[:, -1]
    else:
        w = attention_mask.to(hidden.dtype).unsqueeze(-1)
        pooled = (hidden * w).sum(1) / w.sum(1).clamp(min=1.0)
    return self.classifier(self.dropout(pooled))


@bugs.bug("dropout_not_applied", replaces="SentimentClassifier.forward",
          mistake="the dropout layer is created but never applied: pass the pooled vector through it before the "
                  "linear layer")
def forward_no_dropout(self, input_ids, attention_mask):
    hidden = self.encoder(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
    if self.pooling == "cls":
        pooled = hidden[:, 0]
    else:
        w = attention_mask.to(hidden.dtype).unsqueeze(-1)
        pooled = (hidden * w).sum(1) / w.sum(1).clamp(min=1.0)
    return self.classifier(pooled)


@bugs.bug("dropout_on_logits", replaces="SentimentClassifier.forward",
          mistake="dropout is applied to the logits: it belongs on the pooled vector, before the linear layer")
def forward_dropout_logits(self, input_ids, attention_mask):
    hidden = self.encoder(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
    if self.pooling == "cls":
        pooled = hidden[:, 0]
    else:
        w = attention_mask.to(hidden.dtype).unsqueeze(-1)
        pooled = (hidden * w).sum(1) / w.sum(1).clamp(min=1.0)
    return self.dropout(self.classifier(pooled))


@bugs.bug("encoder_frozen", replaces="SentimentClassifier.forward",
          mistake="the encoder runs under torch.no_grad() (or its output is detached): fine-tuning must train the "
                  "encoder too, so its output has to stay connected to the loss")
def forward_frozen(self, input_ids, attention_mask):
    with torch.no_grad():
        hidden = self.encoder(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
    if self.pooling == "cls":
        pooled = hidden[:, 0]
    else:
        w = attention_mask.to(hidden.dtype).unsqueeze(-1)
        pooled = (hidden * w).sum(1) / w.sum(1).clamp(min=1.0)
    return self.classifier(self.dropout(pooled))


@bugs.bug("pooling_not_validated", replaces="SentimentClassifier.__init__",
          mistake="an unknown pooling name is accepted (anything but 'cls' silently means mean pooling): raise "
                  "ValueError for anything other than 'cls' or 'mean'")
def init_no_validation(self, encoder, num_labels=2, dropout=0.1, pooling="cls"):
    torch.nn.Module.__init__(self)
    if num_labels < 1 or not 0.0 <= dropout <= 1.0:
        raise ValueError("bad num_labels or dropout")
    self.encoder = encoder
    self.pooling = pooling if pooling == "cls" else "mean"
    self.dropout = torch.nn.Dropout(dropout)
    self.classifier = torch.nn.Linear(encoder.config.hidden_size, num_labels)


# --- train_epoch -------------------------------------------------------------------------------
@bugs.bug("no_zero_grad", replaces="train_epoch",
          mistake="gradients are never reset, so each step uses the sum of all earlier batches' gradients: call "
                  "optimizer.zero_grad() once per batch")
def train_no_zero_grad(model, batches, optimizer, *, scheduler=None):
    model.train()
    total, count = 0.0, 0
    for batch in batches:
        loss = F.cross_entropy(model(batch["input_ids"], batch["attention_mask"]), batch["labels"])
        loss.backward()
        optimizer.step()
        if scheduler is not None:
            scheduler.step()
        total += loss.item() * len(batch["labels"])
        count += len(batch["labels"])
    return total / count


@bugs.bug("zero_grad_after_backward", replaces="train_epoch",
          mistake="optimizer.zero_grad() is called between loss.backward() and optimizer.step(), which throws the "
                  "gradients away before they are used: reset them before the backward pass")
def train_zero_grad_late(model, batches, optimizer, *, scheduler=None):
    model.train()
    total, count = 0.0, 0
    for batch in batches:
        loss = F.cross_entropy(model(batch["input_ids"], batch["attention_mask"]), batch["labels"])
        loss.backward()
        optimizer.zero_grad()
        optimizer.step()
        if scheduler is not None:
            scheduler.step()
        total += loss.item() * len(batch["labels"])
        count += len(batch["labels"])
    return total / count


@bugs.bug("mean_of_batch_means", replaces="train_epoch",
          mistake="the returned loss is the mean of the batch means, which over-weights small batches: weight each "
                  "batch's loss by its number of examples and divide by the total")
def train_mean_of_means(model, batches, optimizer, *, scheduler=None):
    model.train()
    losses = []
    for batch in batches:
        optimizer.zero_grad()
        loss = F.cross_entropy(model(batch["input_ids"], batch["attention_mask"]), batch["labels"])
        loss.backward()
        optimizer.step()
        if scheduler is not None:
            scheduler.step()
        losses.append(loss.item())
    return sum(losses) / len(losses)


@bugs.bug("len_of_batches", replaces="train_epoch",
          mistake="the loop divides by len(batches): `batches` may be any iterable (a generator has no len), and "
                  "the mean must be per example, not per batch")
def train_len(model, batches, optimizer, *, scheduler=None):
    model.train()
    total = 0.0
    for batch in batches:
        optimizer.zero_grad()
        loss = F.cross_entropy(model(batch["input_ids"], batch["attention_mask"]), batch["labels"])
        loss.backward()
        optimizer.step()
        if scheduler is not None:
            scheduler.step()
        total += loss.item()
    return total / len(batches)


@bugs.bug("summed_batch_loss", replaces="train_epoch",
          mistake="each batch's loss is the SUM of its examples' losses (reduction='sum'): use the mean over the "
                  "batch, or the step size grows with the batch size")
def train_sum_loss(model, batches, optimizer, *, scheduler=None):
    model.train()
    total, count = 0.0, 0
    for batch in batches:
        optimizer.zero_grad()
        loss = F.cross_entropy(model(batch["input_ids"], batch["attention_mask"]), batch["labels"], reduction="sum")
        loss.backward()
        optimizer.step()
        if scheduler is not None:
            scheduler.step()
        total += loss.item()
        count += len(batch["labels"])
    return total / count


@bugs.bug("no_train_mode", replaces="train_epoch",
          mistake="train_epoch never calls model.train(): after an evaluation the model stays in eval mode and trains "
                  "without dropout")
def train_no_train_mode(model, batches, optimizer, *, scheduler=None):
    total, count = 0.0, 0
    for batch in batches:
        optimizer.zero_grad()
        loss = F.cross_entropy(model(batch["input_ids"], batch["attention_mask"]), batch["labels"])
        loss.backward()
        optimizer.step()
        if scheduler is not None:
            scheduler.step()
        total += loss.item() * len(batch["labels"])
        count += len(batch["labels"])
    return total / count


@bugs.bug("scheduler_once_per_epoch", replaces="train_epoch",
          mistake="the scheduler is stepped once per epoch: a warm-up/decay schedule counts optimizer steps, so step "
                  "it after every optimizer.step()")
def train_scheduler_per_epoch(model, batches, optimizer, *, scheduler=None):
    model.train()
    total, count = 0.0, 0
    for batch in batches:
        optimizer.zero_grad()
        loss = F.cross_entropy(model(batch["input_ids"], batch["attention_mask"]), batch["labels"])
        loss.backward()
        optimizer.step()
        total += loss.item() * len(batch["labels"])
        count += len(batch["labels"])
    if scheduler is not None:
        scheduler.step()
    return total / count


# --- evaluate ----------------------------------------------------------------------------------
@bugs.bug("evaluate_dropout_on", replaces="evaluate",
          mistake="evaluate leaves the model in training mode, so dropout is still on and the accuracy is noisy: call "
                  "model.eval() before the loop")
def evaluate_dropout_on(model, batches):
    correct = count = 0
    with torch.no_grad():
        for batch in batches:
            logits = model(batch["input_ids"], batch["attention_mask"])
            correct += int((logits.argmax(-1) == batch["labels"]).sum())
            count += len(batch["labels"])
    return correct / count


@bugs.bug("evaluate_with_grad", replaces="evaluate",
          mistake="evaluate builds the autograd graph for every batch: run the loop under torch.no_grad() (or "
                  "torch.inference_mode())")
def evaluate_with_grad(model, batches):
    was = model.training
    model.eval()
    correct = count = 0
    for batch in batches:
        logits = model(batch["input_ids"], batch["attention_mask"])
        correct += int((logits.argmax(-1) == batch["labels"]).sum())
        count += len(batch["labels"])
    model.train(was)
    return correct / count


@bugs.bug("evaluate_mode_not_restored", replaces="evaluate",
          mistake="evaluate leaves the model in eval mode: remember model.training before the loop and restore it "
                  "afterwards (training would otherwise continue without dropout)")
def evaluate_not_restored(model, batches):
    model.eval()
    correct = count = 0
    with torch.no_grad():
        for batch in batches:
            logits = model(batch["input_ids"], batch["attention_mask"])
            correct += int((logits.argmax(-1) == batch["labels"]).sum())
            count += len(batch["labels"])
    return correct / count


@bugs.bug("evaluate_mean_of_batch_accuracies", replaces="evaluate",
          mistake="the accuracy is the mean of the per-batch accuracies, which over-weights small batches: count "
                  "correct predictions over all examples and divide by the number of examples")
def evaluate_batch_means(model, batches):
    was = model.training
    model.eval()
    accs = []
    with torch.no_grad():
        for batch in batches:
            logits = model(batch["input_ids"], batch["attention_mask"])
            accs.append((logits.argmax(-1) == batch["labels"]).float().mean().item())
    model.train(was)
    return sum(accs) / len(accs)
