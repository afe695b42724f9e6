"""Hidden graders for ``sft`` (API.md §16): collation, the SFT loss and the training pass.

Expected values come from the definitions and the libraries the functions imitate, never from the
reference: collation from list padding; the loss from a tiny random transformers ``LlamaForCausalLM``
called with ``labels`` (and, in float64, from a loop over trained targets); the training pass from a
trusted loop in this file that makes one SGD step per group on transformers' loss of ONE batch
holding the whole group, clipped by ``torch.nn.utils.clip_grad_norm_``. The models are built in the
worker by the ``hf_llama`` factory and identically here (same config and seed); dropout is 0, so
every value is deterministic. Right padding never changes a causal model's outputs at real
positions, so a group padded as one batch and as several micro-batches gives the same losses.
One mistake costs its points once: the checks of accumulation, the last group, the scheduler and
clipping train every token of unpadded micro-batches, so only the first training check (masked labels,
padding) depends on which tokens are trained. Tolerances: float32 ``atol=1e-5, rtol=1e-4``; float64
``atol=1e-10, rtol=1e-9``.
"""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from hypothesis import example, given, settings
from hypothesis import strategies as st

from graders.strategies import seeds
from llmlab.grading import factories
from llmlab.grading.checks import (CheckFailed, check, describe, diagnose, diagnosing, expect_close, expect_equal,
                                  expect_raises, expect_tensor, known_mistake, later, require_implemented)

TASK_COLLATE = "sft.collate_sft"
TASK_LOSS = "sft.sft_loss"
TASK_TRAIN = "sft.train_sft"
IGNORE = -100
ATOL, RTOL = 1e-5, 1e-4
TINY = dict(vocab_size=40, hidden_size=16, intermediate_size=32, num_hidden_layers=2, num_attention_heads=4,
            num_key_value_heads=2, max_position_embeddings=64, pad_token_id=0)


def make_examples(seed: int, lengths, all_trained: bool = False) -> list[dict]:
    """SFT examples of the given lengths: random ids, each token trained with probability 1/2 (every
    token with ``all_trained``), the last one always (so every example has a trained target after the
    shift when its length is >= 2)."""
    g = torch.Generator().manual_seed(seed)
    out = []
    for n in lengths:
        ids = torch.randint(1, TINY["vocab_size"], (n,), generator=g).tolist()
        trained = (torch.rand(n, generator=g) < 0.5).tolist()
        trained = [True] * n if all_trained else trained[:-1] + [True]
        out.append({"input_ids": ids, "labels": [i if t else IGNORE for i, t in zip(ids, trained)]})
    return out


def pad(examples: list[dict], pad_id: int = 0) -> dict:
    """Right padding, written here from the definition (never the reference's collate_sft)."""
    T = max(len(e["input_ids"]) for e in examples)
    rows = [(e["input_ids"], e["labels"], len(e["input_ids"])) for e in examples]
    return {"input_ids": torch.tensor([ids + [pad_id] * (T - n) for ids, _, n in rows]),
            "attention_mask": torch.tensor([[1] * n + [0] * (T - n) for _, _, n in rows]),
            "labels": torch.tensor([labs + [IGNORE] * (T - n) for _, labs, n in rows])}


example_lists = st.lists(st.integers(1, 6), min_size=1, max_size=4)


# ---------------------------------------------------------------------------------------------
# collate_sft
# ---------------------------------------------------------------------------------------------
def _collate(sub, examples, pad_id):
    inputs = dict(examples=examples, pad_id=pad_id)
    # fresh lists for every variant: one that pads its inputs in place must not change the next one's
    diag = lambda m: m.collate_sft([{k: list(v) for k, v in e.items()} for e in examples], pad_id)  # noqa: E731
    with diagnosing(diag, inputs=inputs):
        out, args_after, _ = sub.call_echo("collate_sft", examples, pad_id)
    if not isinstance(out, dict) or not {"input_ids", "attention_mask", "labels"} <= set(out):
        raise CheckFailed(f"collate_sft should return a dict with input_ids, attention_mask and labels, got "
                          f"{describe(out)}", inputs=inputs)
    B, T = len(examples), max(len(e["input_ids"]) for e in examples)
    for key in ("input_ids", "attention_mask", "labels"):
        expect_tensor(out[key], what=key, shape=(B, T), dtype=torch.long, inputs=inputs,
                      diagnose_with=lambda m, key=key: diag(m)[key])
    return out, args_after, inputs, diag


@check(TASK_COLLATE, points=2, spec=("followed by ``pad_id`` up to ``T``, the length of the longest example",
                                     "``attention_mask`` is 1 on the example's own tokens and 0 on padding"))
@given(seed=seeds, lengths=example_lists, pad_id=st.sampled_from([0, 2, 39]))
@example(seed=0, lengths=[3, 1], pad_id=2)
def test_collate_pads_inputs_on_the_right(sub, seed, lengths, pad_id):
    examples = make_examples(seed, lengths)
    out, _, inputs, diag = _collate(sub, examples, pad_id)
    want = pad(examples, pad_id)
    for key in ("input_ids", "attention_mask"):
        expect_equal(out[key], want[key], what=f"{key} (right padding)", inputs=inputs,
                     diagnose_with=lambda m, key=key: diag(m)[key])


@check(TASK_COLLATE, points=1, spec="followed by ``-100`` on padding (padding is never trained)")
@given(seed=seeds, lengths=example_lists, pad_id=st.sampled_from([0, 2, 39]))
@example(seed=0, lengths=[3, 1], pad_id=2)
def test_collate_never_trains_padding(sub, seed, lengths, pad_id):
    examples = make_examples(seed, lengths)
    out, _, inputs, diag = _collate(sub, examples, pad_id)
    # judged on each row's own tokens and padding, whichever side the padding went
    expect_equal(out["labels"], pad(examples, pad_id)["labels"], what="labels (each example's labels, then -100 "
                 "on padding)", inputs=inputs, diagnose_with=lambda m: diag(m)["labels"])


@check(TASK_COLLATE, points=1, spec="The examples' lists are not modified.")
def test_collate_leaves_the_examples_unchanged(sub):
    examples = make_examples(5, [4, 1, 2])
    _, args_after, inputs, _ = _collate(sub, examples, 0)
    if args_after[0] != examples:
        raise CheckFailed("collate_sft changed the examples it was given (their lists now hold padding)",
                          inputs=inputs, diagnosis=[known_mistake("pads_the_inputs_in_place")])


@check(TASK_COLLATE, points=1, spec=("if ``examples`` is empty", "an example's ``input_ids`` is empty", "its ``labels``"))
def test_collate_rejects_bad_examples(sub):
    require_implemented(sub, "collate_sft", make_examples(1, [2]), 0)
    expect_raises(lambda: sub.call("collate_sft", [], 0), "ValueError", what="collate_sft([], pad_id=0)")
    expect_raises(lambda: sub.call("collate_sft", [{"input_ids": [], "labels": []}], 0), "ValueError",
                  what="collate_sft with an example whose input_ids is empty")
    expect_raises(lambda: sub.call("collate_sft", [{"input_ids": [3, 4, 5], "labels": [3, 4]}], 0), "ValueError",
                  what="collate_sft with an example of 3 input_ids and 2 labels")


# ---------------------------------------------------------------------------------------------
# sft_loss
# ---------------------------------------------------------------------------------------------
@check(TASK_LOSS, points=3, spec=("labels shifted inside", "not per sequence: the same value as a transformers "
                                  "causal LM's ``loss``"))
@given(seed=seeds, lengths=st.lists(st.integers(2, 7), min_size=1, max_size=4))
@example(seed=3, lengths=[7, 2, 5])
@settings(max_examples=12)
def test_sft_loss_equals_the_transformers_loss(sub, seed, lengths):
    batch = pad(make_examples(seed, lengths))
    model = factories.hf_llama(TINY, None, seed % 1000)
    with torch.no_grad():
        out = model(**batch)
    logits, labels = out.logits, batch["labels"]
    inputs = dict(logits=logits, labels=labels)
    diag = lambda m: m.sft_loss(logits, labels)  # noqa: E731
    with diagnosing(diag, inputs=inputs):
        loss = sub.call("sft_loss", logits, labels)
    expect_close(loss, out.loss, what="sft_loss (compared with LlamaForCausalLM's loss for these labels)",
                 atol=ATOL, rtol=RTOL, inputs=inputs, diagnose_with=diag)


@check(TASK_LOSS, points=1, spec="A scalar tensor of the logits' dtype")
@given(seed=seeds, B=st.integers(1, 3), T=st.integers(2, 5), V=st.integers(2, 6))
@settings(max_examples=6)
def test_sft_loss_keeps_float64(sub, seed, B, T, V):
    g = torch.Generator().manual_seed(seed)
    logits = torch.randn(B, T, V, generator=g, dtype=torch.float64)
    labels = torch.randint(0, V, (B, T), generator=g)
    labels[torch.rand(B, T, generator=g) < 0.4] = IGNORE
    labels[0, -1] = 1
    # the definition, one target at a time
    terms = [-torch.log_softmax(logits[b, t], -1)[labels[b, t + 1]] for b in range(B) for t in range(T - 1)
             if labels[b, t + 1] != IGNORE]
    inputs = dict(logits=logits, labels=labels)
    diag = lambda m: m.sft_loss(logits, labels)  # noqa: E731
    with diagnosing(diag, inputs=inputs):
        loss = sub.call("sft_loss", logits, labels)
    expect_close(loss, torch.stack(terms).mean(), what="sft_loss on float64 logits", atol=1e-10, rtol=1e-9,
                 inputs=inputs, diagnose_with=diag)


@check(TASK_LOSS, points=1, spec=("if ``logits`` is not 3-D", "their ``(B, T)`` differ", "or no target is trained"))
def test_sft_loss_rejects_bad_arguments(sub):
    logits, labels = torch.randn(2, 4, 5), torch.tensor([[1, 2, 3, 4], [0, 1, IGNORE, 2]])
    require_implemented(sub, "sft_loss", logits, labels)
    expect_raises(lambda: sub.call("sft_loss", logits[0], labels[0]), "ValueError",
                  what="sft_loss(logits of shape (4, 5), labels of shape (4,))")
    expect_raises(lambda: sub.call("sft_loss", logits, labels[:, :3]), "ValueError",
                  what="sft_loss(logits (2, 4, 5), labels (2, 3))")
    none = torch.tensor([[1, IGNORE, IGNORE, IGNORE], [2, IGNORE, IGNORE, IGNORE]])
    expect_raises(lambda: sub.call("sft_loss", logits, none), "ValueError",
                  what="sft_loss with labels whose only trained tokens are at position 0 (nothing to predict "
                       "after the shift; the mean would be 0/0)")


# ---------------------------------------------------------------------------------------------
# train_sft
# ---------------------------------------------------------------------------------------------
def _flat(state: dict) -> torch.Tensor:
    return torch.cat([v.detach().reshape(-1).double() for v in state.values() if v.is_floating_point()])


def trusted_steps(seed, groups, lr, max_grad_norm=None):
    """The definition: per group, one SGD step on transformers' loss of ONE batch holding the group's
    examples (clipped by clip_grad_norm_). Returns (losses, weights)."""
    with torch.enable_grad():
        model = factories.hf_llama(TINY, None, seed).train()
        opt = torch.optim.SGD(model.parameters(), lr=lr)
        losses = []
        for group in groups:
            opt.zero_grad()
            loss = model(**pad([e for micro in group for e in micro])).loss
            loss.backward()
            if max_grad_norm is not None:
                torch.nn.utils.clip_grad_norm_(model.parameters(), max_grad_norm)
            opt.step()
            losses.append(loss.item())
        return losses, _flat(model.state_dict())


def _run_module(m, seed, micro, lr, grad_accum, max_grad_norm=None, scheduler=None):
    """A module's train_sft on the same model and batches (for naming a mistake). Gradients are switched
    on: the diagnoser runs variants under torch.no_grad()."""
    with torch.enable_grad():
        model = factories.hf_llama(TINY, None, seed)
        opt = torch.optim.SGD(model.parameters(), lr=lr)
        sched = None if scheduler is None else torch.optim.lr_scheduler.StepLR(opt, **scheduler)
        losses = m.train_sft(model, [pad(b) for b in micro], opt, grad_accum=grad_accum, scheduler=sched,
                             max_grad_norm=max_grad_norm)
        return losses, _flat(model.state_dict())


def _train(sub, seed, micro, lr, grad_accum, max_grad_norm=None, scheduler=None):
    """Runs the submission's train_sft in the worker; returns (losses, weights, scheduler, inputs, diag)."""
    model = sub.factory("hf_llama", TINY, None, seed)
    opt = sub.factory("torch_optimizer", "SGD", model, lr=lr)
    sched = None if scheduler is None else sub.factory("torch_lr_scheduler", "StepLR", opt, **scheduler)
    inputs = dict(micro_batches=[pad(b) for b in micro] if len(micro) <= 3 else
                  f"{len(micro)} micro-batches of {[len(b) for b in micro]} examples",
                  model=f"a tiny random LlamaForCausalLM (seed {seed})", optimizer=f"SGD(lr={lr})",
                  grad_accum=grad_accum, max_grad_norm=max_grad_norm,
                  **({} if scheduler is None else {"scheduler": f"StepLR({scheduler})"}))
    diag = lambda m: _run_module(m, seed, micro, lr, grad_accum, max_grad_norm, scheduler)  # noqa: E731
    with diagnosing(diag, inputs=inputs):
        losses = sub.call("train_sft", model, [pad(b) for b in micro], opt, grad_accum=grad_accum,
                          scheduler=sched, max_grad_norm=max_grad_norm)
    if not isinstance(losses, list) or not all(isinstance(x, float) for x in losses):
        raise CheckFailed(f"train_sft should return a list of float (one loss per optimizer step), got "
                          f"{describe(losses)}", inputs=inputs)
    return losses, _flat(model.call("state_dict")), sched, inputs, diag


def _expect_like(losses, weights, want, inputs, diag, what):
    want_losses, want_weights = want
    found = later(lambda: diagnose(diag, (losses, weights)))
    if len(losses) != len(want_losses):
        raise CheckFailed(f"train_sft returned {len(losses)} losses, expected one per optimizer step: "
                          f"{len(want_losses)}", inputs=inputs, diagnosis=found)
    expect_close(torch.tensor(losses, dtype=torch.float64), torch.tensor(want_losses, dtype=torch.float64),
                 what=f"the losses train_sft returned ({what})", atol=ATOL, rtol=RTOL, inputs=inputs,
                 diagnose_with=lambda m: torch.tensor(diag(m)[0], dtype=torch.float64))
    expect_close(weights, want_weights, what=f"the model's weights after train_sft ({what})", atol=ATOL, rtol=RTOL,
                 inputs=inputs, diagnose_with=lambda m: diag(m)[1])


@st.composite
def micro_batches(draw, max_batches=4, isolated=False):
    """(seed, micro-batches of examples). ``isolated``: every token trained and one length per micro-batch
    (no padding), so a mistake in WHICH tokens are trained cannot cost these checks' points too; the
    micro-batches still differ in trained tokens (sizes and lengths differ)."""
    seed = draw(seeds)
    sizes = draw(st.lists(st.integers(1, 3), min_size=1, max_size=max_batches))
    lengths = [[draw(st.integers(2, 7))] * n if isolated else draw(st.lists(st.integers(2, 7), min_size=n, max_size=n))
               for n in sizes]
    examples = make_examples(seed, [n for row in lengths for n in row], all_trained=isolated)
    micro, at = [], 0
    for n in sizes:
        micro.append(examples[at:at + n])
        at += n
    return seed % 1000, micro


@check(TASK_TRAIN, points=3, spec=("Each group starts from zero gradients",
                                   "the mean loss over the step's trained tokens"))
@given(case=micro_batches(), lr=st.sampled_from([0.5, 2.0]))
@settings(max_examples=6)
def test_train_sft_one_step_per_batch(sub, case, lr):
    """grad_accum=1: one SGD step per batch on that batch's SFT loss, fresh gradients each time."""
    seed, micro = case
    losses, weights, _, inputs, diag = _train(sub, seed, micro, lr, 1)
    _expect_like(losses, weights, trusted_steps(seed, [[b] for b in micro], lr), inputs, diag,
                 "grad_accum=1: one SGD step per batch")


@check(TASK_TRAIN, points=3, spec="the same update as one big batch holding the group's examples")
@given(case=micro_batches(isolated=True).filter(lambda c: len(c[1]) >= 2), lr=st.sampled_from([0.5, 2.0]))
@example(case=(7, [make_examples(7, [7], True), make_examples(8, [2, 2, 2], True)]), lr=2.0)  # one long, three short
@settings(max_examples=6)
def test_train_sft_accumulation_equals_one_big_batch(sub, case, lr):
    """All micro-batches in one group: the weights after the step equal one SGD step on one big batch."""
    seed, micro = case
    losses, weights, _, inputs, diag = _train(sub, seed, micro, lr, len(micro))
    _expect_like(losses, weights, trusted_steps(seed, [micro], lr), inputs, diag,
                 f"grad_accum={len(micro)}: one step on the {len(micro)} micro-batches as one big batch")


@check(TASK_TRAIN, points=1, spec="the last group may be shorter")
def test_train_sft_steps_on_a_short_last_group(sub):
    seed, micro = 11, [make_examples(11, [3, 3], True), make_examples(12, [4], True), make_examples(13, [6, 6], True)]
    losses, weights, _, inputs, diag = _train(sub, seed, micro, 1.0, 2)
    _expect_like(losses, weights, trusted_steps(seed, [micro[:2], micro[2:]], 1.0), inputs, diag,
                 "3 micro-batches, grad_accum=2: two steps, the second on the last micro-batch alone")


@check(TASK_TRAIN, points=1, spec="one ``scheduler.step()`` (if given)")
def test_train_sft_steps_the_scheduler_once_per_optimizer_step(sub):
    seed, micro = 21, [make_examples(21 + n, [n + 2] * 2, True) for n in range(4)]
    scheduler = dict(step_size=1, gamma=0.5)
    losses, weights, sched, inputs, diag = _train(sub, seed, micro, 1.0, 2, scheduler=scheduler)
    steps = sched.get("last_epoch")
    if steps != 2:
        raise CheckFailed(f"the scheduler was stepped {steps} times for 2 optimizer steps (4 micro-batches, "
                          "grad_accum=2): step it once per optimizer step", inputs=inputs,
                          diagnosis=[known_mistake("scheduler_every_micro_batch")] if steps == 4 else [])


@check(TASK_TRAIN, points=2, spec="as ``torch.nn.utils.clip_grad_norm_`` does")
@given(seed=seeds, max_grad_norm=st.sampled_from([0.01, 0.1]))
@example(seed=3, max_grad_norm=0.01)
@settings(max_examples=4)
def test_train_sft_clips_the_accumulated_gradient_norm(sub, seed, max_grad_norm):
    seed %= 1000
    micro = [make_examples(seed, [5, 5], True), make_examples(seed + 1, [6], True)]
    losses, weights, _, inputs, diag = _train(sub, seed, micro, 1.0, 2, max_grad_norm=max_grad_norm)
    _expect_like(losses, weights, trusted_steps(seed, [micro], 1.0, max_grad_norm), inputs, diag,
                 f"one step, grad_accum=2, gradient norm clipped to {max_grad_norm}")


@check(TASK_TRAIN, points=1, spec=("if ``grad_accum`` is not an int >= 1", "``max_grad_norm`` is not ``None`` or > 0"))
def test_train_sft_rejects_bad_arguments(sub):
    micro = [pad(make_examples(1, [3]))]

    def call(**kw):
        model = sub.factory("hf_llama", TINY, None, 0)
        opt = sub.factory("torch_optimizer", "SGD", model, lr=0.1)
        return sub.call("train_sft", model, micro, opt, **kw)

    require_implemented(sub, "train_sft", sub.factory("hf_llama", TINY, None, 0),
                        micro, sub.factory("torch_optimizer", "SGD", sub.factory("hf_llama", TINY, None, 0), lr=0.1))
    for kw in (dict(grad_accum=0), dict(grad_accum=1.5), dict(max_grad_norm=0.0), dict(max_grad_norm=-1.0)):
        args = ", ".join(f"{k}={v!r}" for k, v in kw.items())
        expect_raises(lambda: call(**kw), "ValueError", what=f"train_sft(model, batches, optimizer, {args})")
