"""Realistic buggy variants of ``sft``: each is the reference with one edit (see ``Variants.patch``)."""
from llmlab.grading.variants import Variants

bugs = Variants("sft")

# --- collate_sft --------------------------------------------------------------------------------
bugs.patch("padding_trained", "collate_sft",
           "labels = torch.full((len(rows), T), IGNORE_INDEX, dtype=torch.long)",
           "labels = torch.full((len(rows), T), int(pad_id), dtype=torch.long)",
           mistake="padding is trained: labels on padding must be -100, not the pad id (the model would learn to "
                   "emit padding after every answer)")
bugs.patch("left_padding", "collate_sft", """\
input_ids[b, :len(ids)] = torch.tensor(ids)
attention_mask[b, :len(ids)] = 1
labels[b, :len(ids)] = torch.tensor(labs)""", """\
input_ids[b, T - len(ids):] = torch.tensor(ids)
attention_mask[b, T - len(ids):] = 1
labels[b, T - len(ids):] = torch.tensor(labs)""",
           mistake="examples are padded on the left: collate_sft pads on the right (padding after the example)")
bugs.patch("mask_on_padding", "collate_sft",
           "attention_mask = torch.zeros((len(rows), T), dtype=torch.long)",
           "attention_mask = torch.ones((len(rows), T), dtype=torch.long)",
           mistake="attention_mask is 1 on padding: it must be 0 on padding, 1 on the example's own tokens")
bugs.patch("pads_the_inputs_in_place", "collate_sft",
           "rows.append((ids, labels))",
           "rows.append((example['input_ids'], example['labels']))",
           mistake="the examples' own lists are padded in place: collate_sft must leave its inputs unchanged "
                   "(build new tensors)")
bugs.patch("pads_the_inputs_in_place", "collate_sft", """\
for b, (ids, labs) in enumerate(rows):
    input_ids[b, :len(ids)] = torch.tensor(ids)""", """\
for ids, labs in rows:
    ids += [int(pad_id)] * (T - len(ids))
    labs += [IGNORE_INDEX] * (T - len(labs))
for b, (ids, labs) in enumerate(rows):
    input_ids[b, :len(ids)] = torch.tensor(ids)""",
           mistake="the examples' own lists are padded in place: collate_sft must leave its inputs unchanged "
                   "(build new tensors)")

# --- sft_loss -------------------------------------------------------------------------------------
bugs.patch("labels_not_shifted", "sft_loss",
           "return F.cross_entropy(logits[:, :-1].flatten(0, 1), targets.flatten(), ignore_index=IGNORE_INDEX)",
           "return F.cross_entropy(logits.flatten(0, 1), labels.flatten(), ignore_index=IGNORE_INDEX)",
           mistake="labels are not shifted: the logits at position t predict token t+1, so compare logits[:, :-1] "
                   "with labels[:, 1:]")
bugs.patch("shifted_the_wrong_way", "sft_loss",
           "return F.cross_entropy(logits[:, :-1].flatten(0, 1), targets.flatten(), ignore_index=IGNORE_INDEX)",
           "return F.cross_entropy(logits[:, 1:].flatten(0, 1), labels[:, :-1].flatten(), ignore_index=IGNORE_INDEX)",
           mistake="the shift goes the wrong way: logits[:, :-1] (positions 0..T-2) predict labels[:, 1:], not "
                   "logits[:, 1:] against labels[:, :-1]")
bugs.patch("mean_over_sequences", "sft_loss", """\
if not (targets != IGNORE_INDEX).any():
    raise ValueError("labels hold no trained target (every shifted label is -100)")
return F.cross_entropy(logits[:, :-1].flatten(0, 1), targets.flatten(), ignore_index=IGNORE_INDEX)""", """\
if not (targets != IGNORE_INDEX).any():
    raise ValueError("labels hold no trained target (every shifted label is -100)")
per_token = F.cross_entropy(logits[:, :-1].transpose(1, 2), targets, ignore_index=IGNORE_INDEX, reduction="none")
counts = (targets != IGNORE_INDEX).sum(dim=1)
rows = counts > 0
return (per_token.sum(dim=1)[rows] / counts[rows]).mean()""",
           mistake="the loss is a mean over sequences (each row's mean, then the mean of rows): it is the mean over "
                   "every trained token of the batch, so long answers weigh more than short ones")

# --- train_sft ------------------------------------------------------------------------------------
bugs.patch("loss_on_all_tokens", "train_sft",
           'labels = batch["labels"].to(device)',
           'labels = batch["input_ids"].to(device)',
           mistake="the loss is computed on every token (input_ids as labels): only the tokens whose label is not "
                   "-100 (the assistant's answers) are trained")
bugs.patch("accumulation_sums", "train_sft",
           "(loss_sum / n_trained).backward()",
           "(loss_sum / int((labels[:, 1:] != IGNORE_INDEX).sum())).backward()",
           mistake="accumulated micro-batch losses are summed, not averaged: each micro-batch's mean loss is "
                   "backpropagated as is, so the update is about grad_accum times too large")
bugs.patch("mean_of_micro_batch_means", "train_sft",
           "(loss_sum / n_trained).backward()",
           "(loss_sum / int((labels[:, 1:] != IGNORE_INDEX).sum()) / len(group)).backward()",
           mistake="accumulation averages the micro-batches' mean losses: every trained token of the step must weigh "
                   "the same (divide each summed loss by the step's total trained tokens)")
bugs.patch("step_every_micro_batch", "train_sft", """\
    (loss_sum / n_trained).backward()
    total += loss_sum.item()""", """\
    (loss_sum / n_trained).backward()
    total += loss_sum.item()
    optimizer.step()
    optimizer.zero_grad()""",
           mistake="the optimizer steps after every micro-batch: with gradient accumulation it steps once per "
                   "grad_accum micro-batches")
bugs.patch("gradients_never_zeroed", "train_sft",
           "optimizer.zero_grad()  # nothing from an earlier step (or from before the pass) leaks in",
           "pass",
           mistake="gradients are never zeroed: each step's gradient still holds every earlier step's (call "
                   "optimizer.zero_grad() before a step's first backward)")
bugs.patch("clip_by_value", "train_sft",
           "torch.nn.utils.clip_grad_norm_(model.parameters(), max_grad_norm)",
           "torch.nn.utils.clip_grad_value_(model.parameters(), max_grad_norm)",
           mistake="gradients are clipped element by element (clip_grad_value_): max_grad_norm bounds the total norm "
                   "of all gradients (clip_grad_norm_), which keeps their direction")
bugs.patch("clip_every_micro_batch", "train_sft", """\
    (loss_sum / n_trained).backward()
    total += loss_sum.item()""", """\
    (loss_sum / n_trained).backward()
    total += loss_sum.item()
    if max_grad_norm is not None:
        torch.nn.utils.clip_grad_norm_(model.parameters(), max_grad_norm)""",
           mistake="the gradient is clipped after every micro-batch: clip once, on the accumulated gradient, just "
                   "before the optimizer step")
bugs.patch("last_group_dropped", "train_sft", """\
if group:
    step(group)""", "pass",
           mistake="the last, shorter group of micro-batches is dropped: it still makes an optimizer step")
bugs.patch("scheduler_every_micro_batch", "train_sft", """\
    (loss_sum / n_trained).backward()
    total += loss_sum.item()""", """\
    (loss_sum / n_trained).backward()
    total += loss_sum.item()
    if scheduler is not None:
        scheduler.step()""",
           mistake="the scheduler is stepped for every micro-batch: step it once per optimizer step")
bugs.patch("scheduler_every_micro_batch", "train_sft", """\
if scheduler is not None:
    scheduler.step()
losses.append(total / n_trained)""", "losses.append(total / n_trained)",
           mistake="the scheduler is stepped for every micro-batch: step it once per optimizer step")
bugs.patch("loss_of_last_micro_batch", "train_sft",
           "losses.append(total / n_trained)",
           "losses.append(loss_sum.item() / int((labels[:, 1:] != IGNORE_INDEX).sum()))",
           mistake="the reported loss is the last micro-batch's: each step's loss is the mean over all its "
                   "micro-batches' trained tokens")
