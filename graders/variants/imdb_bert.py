"""Realistic buggy variants of ``imdb_bert``: each is a patch of the reference (see llmlab.grading.variants)."""
from llmlab.grading.variants import Variants

bugs = Variants("imdb_bert")

# --- clean_review --------------------------------------------------------------------------------
BR = r're.sub(r"<br\s*/?>", " ", text, flags=re.IGNORECASE)'
bugs.patch("br_removed_without_space", "clean_review", BR, r're.sub(r"<br\s*/?>", "", text, flags=re.IGNORECASE)',
           mistake="<br /> is deleted instead of replaced by a space, so the words on both sides of a line break get "
                   "glued together ('end.<br />Next' must become 'end. Next')")
bugs.patch("only_spaces_collapsed", "clean_review", f'return " ".join({BR}.split())',
           f'return re.sub(" +", " ", {BR}).strip(" ")',
           mistake="only runs of spaces are collapsed: tabs, newlines and other whitespace must become one space too "
                   "(\\s+ or str.split() handle them all)")
bugs.patch("all_html_tags_removed", "clean_review", BR, 're.sub(r"<[^>]*>", " ", text)',
           mistake="every HTML-looking tag is removed: only the line breaks <br /> are replaced, the rest of the text "
                   "(including '<i>', or 'a<b and c>d') must stay as it is")

# --- SentimentClassifier -------------------------------------------------------------------------
FORWARD = "SentimentClassifier.forward"
ENCODE = "hidden = self.encoder(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state"
HEAD = "return self.classifier(self.dropout(pooled))"
bugs.patch("mean_pooling_counts_padding", FORWARD,
           "pooled = (hidden * weights).sum(dim=1) / weights.sum(dim=1).clamp(min=1.0)", "pooled = hidden.mean(dim=1)",
           mistake="mean pooling averages over every position, padding included: weight the hidden states by "
                   "attention_mask and divide by the number of real tokens")
bugs.patch("attention_mask_not_passed", FORWARD, "self.encoder(input_ids=input_ids, attention_mask=attention_mask)",
           "self.encoder(input_ids=input_ids)",
           mistake="the attention_mask is not passed to the encoder, so real tokens attend to the padding and a "
                   "review's logits change with the amount of padding in its batch")
bugs.patch("uses_pooler_output", FORWARD, ENCODE,
           "out = self.encoder(input_ids=input_ids, attention_mask=attention_mask)\nhidden = out.last_hidden_state",
           mistake="'cls' pooling uses BERT's pooler_output (an extra dense + tanh layer): take the [CLS] hidden "
                   "state itself, last_hidden_state[:, 0]")
bugs.patch("uses_pooler_output", FORWARD, "pooled = hidden[:, 0]", "pooled = out.pooler_output")
bugs.patch("cls_from_last_position", FORWARD, "pooled = hidden[:, 0]", "pooled = hidden[:, -1]",
           mistake="'cls' pooling takes the LAST position (a decoder habit): BERT's [CLS] token is at position 0")
bugs.patch("dropout_not_applied", FORWARD, HEAD, "return self.classifier(pooled)",
           mistake="the dropout layer is created but never applied: pass the pooled vector through it before the "
                   "linear layer")
bugs.patch("dropout_on_logits", FORWARD, HEAD, "return self.dropout(self.classifier(pooled))",
           mistake="dropout is applied to the logits: it belongs on the pooled vector, before the linear layer")
bugs.patch("encoder_frozen", FORWARD, ENCODE, "with torch.no_grad():\n    " + ENCODE,
           mistake="the encoder runs under torch.no_grad() (or its output is detached): fine-tuning must train the "
                   "encoder too, so its output has to stay connected to the loss")
bugs.patch("pooling_not_validated", "SentimentClassifier.__init__", """
        if pooling not in ("cls", "mean"):
            raise ValueError(f"pooling must be 'cls' or 'mean', got {pooling!r}")
""", "", mistake="an unknown pooling name is accepted (anything but 'cls' silently means mean pooling): raise "
                 "ValueError for anything other than 'cls' or 'mean'")
bugs.patch("pooling_not_validated", "SentimentClassifier.__init__", "self.pooling = pooling",
           'self.pooling = pooling if pooling == "cls" else "mean"')

# --- train_epoch ---------------------------------------------------------------------------------
TOTAL = "total += loss.item() * labels.shape[0]"
bugs.patch("no_zero_grad", "train_epoch", "optimizer.zero_grad()", "",
           mistake="gradients are never reset, so each step uses the sum of all earlier batches' gradients: call "
                   "optimizer.zero_grad() once per batch")
bugs.patch("zero_grad_after_backward", "train_epoch", "optimizer.zero_grad()", "",
           mistake="optimizer.zero_grad() is called between loss.backward() and optimizer.step(), which throws the "
                   "gradients away before they are used: reset them before the backward pass")
bugs.patch("zero_grad_after_backward", "train_epoch", "loss.backward()", "loss.backward()\noptimizer.zero_grad()")
bugs.patch("mean_of_batch_means", "train_epoch", """
        total += loss.item() * labels.shape[0]
        count += labels.shape[0]
""", """
        total += loss.item()
        count += 1
""", mistake="the returned loss is the mean of the batch means, which over-weights small batches: weight each "
             "batch's loss by its number of examples and divide by the total")
bugs.patch("len_of_batches", "train_epoch", TOTAL, "total += loss.item()",
           mistake="the loop divides by len(batches): `batches` may be any iterable (a generator has no len), and the "
                   "mean must be per example, not per batch")
bugs.patch("len_of_batches", "train_epoch", "return total / count", "return total / len(batches)")
bugs.patch("summed_batch_loss", "train_epoch", "model(input_ids, attention_mask), labels)",
           'model(input_ids, attention_mask), labels, reduction="sum")',
           mistake="each batch's loss is the SUM of its examples' losses (reduction='sum'): use the mean over the "
                   "batch, or the step size grows with the batch size")
bugs.patch("summed_batch_loss", "train_epoch", TOTAL, "total += loss.item()")
bugs.patch("no_train_mode", "train_epoch", "model.train()", "",
           mistake="train_epoch never calls model.train(): after an evaluation the model stays in eval mode and "
                   "trains without dropout")
bugs.patch("scheduler_once_per_epoch", "train_epoch", """
        if scheduler is not None:
            scheduler.step()
""", "", mistake="the scheduler is stepped once per epoch: a warm-up/decay schedule counts optimizer steps, so step "
                 "it after every optimizer.step()")
bugs.patch("scheduler_once_per_epoch", "train_epoch", "if count == 0:",
           "if scheduler is not None:\n    scheduler.step()\nif count == 0:")

# --- evaluate ------------------------------------------------------------------------------------
bugs.patch("evaluate_dropout_on", "evaluate", "model.eval()", "",
           mistake="evaluate leaves the model in training mode, so dropout is still on and the accuracy is noisy: "
                   "call model.eval() before the loop")
bugs.patch("evaluate_with_grad", "evaluate", "with torch.no_grad():", "with torch.enable_grad():",
           mistake="evaluate builds the autograd graph for every batch: run the loop under torch.no_grad() (or "
                   "torch.inference_mode())")
bugs.patch("evaluate_mode_not_restored", "evaluate", """
        for module, mode in modes:
            module.training = mode
""", "        pass  # the training flags are never restored",
           mistake="evaluate leaves the model in eval mode: remember model.training before the loop and restore it "
                   "afterwards (training would otherwise continue without dropout)")
bugs.patch("evaluate_mean_of_batch_accuracies", "evaluate", """
                correct += int((logits.argmax(dim=-1) == labels).sum())
                count += labels.shape[0]
""", """
                correct += (logits.argmax(dim=-1) == labels).float().mean().item()
                count += 1
""", mistake="the accuracy is the mean of the per-batch accuracies, which over-weights small batches: count correct "
             "predictions over all examples and divide by the number of examples")
