"""Hidden graders for ``imdb_bert`` (API.md §11): cleaning, the classifier, and the two loops.

Real models stay in the notebook: here the encoder is a tiny random BERT built in the worker
(``sub.factory("hf_bert", TINY, None, seed)``, a few thousand weights) and rebuilt identically in the
grader, so every check runs in well under a second. The training and evaluation loops are graded on
a trusted recording classifier (``sub.factory("bert_classifier", ...)``) so that a bug in the
student's own classifier cannot cost points there; the recorder also tells in which mode and with
or without gradients each forward pass ran. Dropout is off inside the tiny encoder, so every value
is deterministic. Tolerances: logits 1e-5 absolute + 1e-4 relative; losses and weights after a few
SGD steps 1e-5 absolute + 1e-4 relative.
"""
from __future__ import annotations

import functools
import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from graders.strategies import seeds, when_reporting
from llmlab.grading import factories
from llmlab.grading.checks import (CheckFailed, check, diagnose, diagnosing, expect_close, expect_raises,
                                  expect_tensor, known_mistake, require_implemented)

TASK_CLEAN = "imdb_bert.clean_review"
TASK_INIT = "imdb_bert.SentimentClassifier.__init__"
TASK_FWD = "imdb_bert.SentimentClassifier.forward"
TASK_TRAIN = "imdb_bert.train_epoch"
TASK_EVAL = "imdb_bert.evaluate"
ATOL, RTOL = 1e-5, 1e-4

TINY = dict(vocab_size=40, hidden_size=16, num_hidden_layers=2, num_attention_heads=2, intermediate_size=32,
            max_position_embeddings=32, type_vocab_size=2, hidden_dropout_prob=0.0,
            attention_probs_dropout_prob=0.0, pad_token_id=0)
H = TINY["hidden_size"]
CLS, PAD = 1, 0


# ---------------------------------------------------------------------------------------------
# clean_review
# ---------------------------------------------------------------------------------------------
WORDS = ["Great", "movie.", "I", "loved", "it!", "<i>Bad</i>", "acting,", "10/10", "don't", "a<b", "(sigh)", "x"]
GAPS = [" ", "  ", "\t", "\n", " \n ", "<br />", "<br /><br />", " <br /> ", "<br />\n<br />", "\r\n"]


@st.composite
def reviews(draw):
    words = draw(st.lists(st.sampled_from(WORDS), min_size=1, max_size=8))
    gaps = draw(st.lists(st.sampled_from(GAPS), min_size=len(words) + 1, max_size=len(words) + 1))
    ends = draw(st.sampled_from(["none", "lead", "trail", "both"]))
    text = "".join(g + w for g, w in zip(gaps, words))
    text = text if ends in ("lead", "both") else text[len(gaps[0]):]
    return text + gaps[-1] if ends in ("trail", "both") else text


def _expect_clean(sub, ref, text):
    out = sub.call("clean_review", text)
    inputs = dict(text=text)
    if not isinstance(out, str):
        raise CheckFailed(f"clean_review should return a str, got {type(out).__name__}", inputs=inputs)
    want = ref.clean_review(text)
    # The contract does not say whether the ends are trimmed: one space left at either end is accepted.
    if out in {want, " " + want, want + " ", " " + want + " "}:
        return
    found = diagnose(when_reporting(lambda m: m.clean_review(text)), out)
    raise CheckFailed(f"clean_review returned {out!r}, expected {want!r}", inputs=inputs, diagnosis=found)


@check(TASK_CLEAN, points=2,
       spec=("Every HTML line break ``<br />`` (also written ``<br/>`` or ``<br>``, any letter case) becomes a space", "every run of whitespace characters (spaces, tabs, newlines, ...) becomes a single space", "leading and trailing whitespace is removed"))
@given(text=reviews())
def test_clean_review_line_breaks_and_whitespace(sub, ref, text):
    _expect_clean(sub, ref, text)


@check(TASK_CLEAN, points=1,
       spec=("Nothing else changes.", "if ``text`` is not a str"))
def test_clean_review_keeps_everything_else(sub, ref):
    for text in ["Hello, world!", "It was <i>so</i> good & cheap: 8/10 -- really.", "a<b and c>d", "",
                 "Ending with a break.<br />", "café naïve 😀"]:
        _expect_clean(sub, ref, text)
    expect_raises(lambda: sub.call("clean_review", None), "TypeError", what="clean_review(None)")
    expect_raises(lambda: sub.call("clean_review", ["a review"]), "TypeError", what="clean_review(['a review'])")


# ---------------------------------------------------------------------------------------------
# SentimentClassifier
# ---------------------------------------------------------------------------------------------
def bert_batch(seed: int, B: int, T: int, vocab: int = TINY["vocab_size"]):
    """Right-padded ids ([CLS] first, real tokens, then [PAD]) and their attention mask."""
    g = torch.Generator().manual_seed(seed)
    lengths = torch.randint(1, T + 1, (B,), generator=g)
    lengths[0] = T  # at least one full row
    mask = (torch.arange(T)[None, :] < lengths[:, None]).long()
    ids = torch.randint(2, vocab, (B, T), generator=g)
    ids[:, 0] = CLS
    ids = ids.masked_fill(mask == 0, PAD)
    return ids, mask


@st.composite
def classifier_cases(draw):
    return dict(seed=draw(seeds), B=draw(st.integers(1, 4)), T=draw(st.integers(2, 9)),
                num_labels=draw(st.integers(1, 3)))


@functools.lru_cache(maxsize=None)
def _encoder_keys() -> frozenset[str]:
    return frozenset(factories.hf_bert(TINY, seed=0).state_dict())  # the same names for every seed


@functools.lru_cache(maxsize=64)
def _frozen_encoder(seed: int):
    """The tiny encoder the worker builds for ``seed`` (grader side, only ever run in eval mode)."""
    return factories.hf_bert(TINY, seed=seed).requires_grad_(False)


def _split_state(state: dict, enc_keys: set[str]) -> tuple[dict, dict]:
    """(encoder part, everything else) of a state dict, whatever prefix the encoder sits under."""
    enc, rest = {}, {}
    for k, v in state.items():
        (enc if any(k == e or k.endswith("." + e) for e in enc_keys) else rest)[k] = v
    return enc, rest


def _build(sub, seed: int, num_labels: int = 2, dropout: float = 0.1, pooling: str = "cls", eval_mode=True):
    """The student's classifier around the tiny encoder; returns (object, head weight, head bias)."""
    encoder = sub.factory("hf_bert", TINY, None, seed)
    with diagnosing(when_reporting(lambda m: m.SentimentClassifier(factories.hf_bert(TINY, seed=seed),
                                                                   num_labels=num_labels, dropout=dropout,
                                                                   pooling=pooling))):
        obj = sub.new("SentimentClassifier", encoder, num_labels=num_labels, dropout=dropout, pooling=pooling)
    call = f"SentimentClassifier(encoder, num_labels={num_labels}, dropout={dropout}, pooling={pooling!r})"
    state = obj.call("state_dict")
    if not isinstance(state, dict):
        raise CheckFailed(f"{call}.state_dict() returned {type(state).__name__}")
    enc_keys = _encoder_keys()
    enc, rest = _split_state(state, enc_keys)
    if len(enc) < len(enc_keys):
        raise CheckFailed(f"{call}: the encoder's weights are not among the module's parameters (state_dict): store "
                          "the encoder as an attribute (a submodule), so that fine-tuning trains it too")
    weights = [(k, v) for k, v in rest.items() if isinstance(v, torch.Tensor) and tuple(v.shape) == (num_labels, H)]
    biases = [(k, v) for k, v in rest.items() if isinstance(v, torch.Tensor) and tuple(v.shape) == (num_labels,)]
    if len(weights) != 1 or len(biases) != 1 or len(rest) != 2:
        shapes = {k: tuple(v.shape) for k, v in rest.items() if isinstance(v, torch.Tensor)}
        raise CheckFailed(f"{call}: besides the encoder, expected exactly one nn.Linear({H}, {num_labels}) with a bias "
                          f"(weight ({num_labels}, {H}) and bias ({num_labels},)); found {shapes or 'nothing'}")
    if eval_mode:
        obj.call("eval")
    return obj, weights[0][1], biases[0][1]


def _hidden(seed, ids, mask):
    enc = _frozen_encoder(seed)
    with torch.no_grad():
        return enc(input_ids=ids, attention_mask=mask).last_hidden_state


def _expected_logits(seed, ids, mask, W, b, pooling):
    h = _hidden(seed, ids, mask)
    if pooling == "cls":
        pooled = h[:, 0]
    else:
        m = mask.double().unsqueeze(-1)
        pooled = ((h.double() * m).sum(1) / m.sum(1)).float()
    return pooled @ W.T + b


def _local(m, seed, ids, mask, W, b, pooling, num_labels, dropout=0.1, train=False):
    """A module's classifier on the same encoder with the student's head weights (to name variants)."""
    model = m.SentimentClassifier(factories.hf_bert(TINY, seed=seed), num_labels=num_labels, dropout=dropout,
                                  pooling=pooling)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if tuple(p.shape) == tuple(W.shape) and not name.startswith("encoder."):
                p.copy_(W)
            elif tuple(p.shape) == tuple(b.shape) and not name.startswith("encoder."):
                p.copy_(b)
    model.train(train)
    return model(ids, mask)


def _logits(obj, ids, mask, num_labels, inputs, diagnose_with=None):
    out = obj(ids, mask)
    expect_tensor(out, what="the logits", shape=(ids.shape[0], num_labels), dtype=torch.float32, inputs=inputs,
                  diagnose_with=diagnose_with)
    return out


def _check_pooling(sub, case, pooling):
    seed, B, T, C = case["seed"], case["B"], case["T"], case["num_labels"]
    obj, W, b = _build(sub, seed, num_labels=C, pooling=pooling)
    ids, mask = bert_batch(seed + 1, B, T)
    inputs = dict(input_ids=ids, attention_mask=mask, num_labels=C, pooling=pooling)
    diag = when_reporting(lambda m: _local(m, seed, ids, mask, W, b, pooling, C))
    with diagnosing(diag):
        out = _logits(obj, ids, mask, C, inputs, diag)
    expect_close(out, _expected_logits(seed, ids, mask, W, b, pooling), what=f"the logits with pooling={pooling!r} "
                 "(eval mode)", atol=ATOL, rtol=RTOL, inputs=inputs, diagnose_with=diag)


@check(TASK_INIT, points=1,
       spec="for an unknown ``pooling``, ``num_labels < 1`` or ``dropout`` outside [0, 1]")
def test_classifier_validates_its_options(sub):
    enc = sub.factory("hf_bert", TINY, None, 0)
    try:
        expect_raises(lambda: sub.new("SentimentClassifier", enc, pooling="max"), "ValueError",
                      what="SentimentClassifier(encoder, pooling='max')")
    except CheckFailed as failed:
        if "but returned" in failed.problem:  # the unknown pooling name was accepted
            failed = CheckFailed(failed.problem, inputs=failed.inputs,
                                 diagnosis=[known_mistake("pooling_not_validated")])
        raise failed from None
    expect_raises(lambda: sub.new("SentimentClassifier", enc, num_labels=0), "ValueError",
                  what="SentimentClassifier(encoder, num_labels=0)")
    expect_raises(lambda: sub.new("SentimentClassifier", enc, dropout=1.5), "ValueError",
                  what="SentimentClassifier(encoder, dropout=1.5)")
    # only a working constructor earns this point (one that always raises would pass the lines above)
    _build(sub, 0, num_labels=3, pooling="mean")


@check(TASK_INIT, points=1,
       spec=("The head is a single ``nn.Linear(H, num_labels)`` with a bias", "The encoder is a submodule"))
@given(num_labels=st.integers(1, 4), pooling=st.sampled_from(["cls", "mean"]))
@settings(max_examples=6)
def test_classifier_has_the_encoder_and_one_linear_head(sub, num_labels, pooling):
    _build(sub, 3, num_labels=num_labels, pooling=pooling)


@check(TASK_FWD, points=2,
       spec="``\"cls\"``: the hidden state at position 0 (the ``[CLS]`` token), as is")
@given(case=classifier_cases())
@settings(max_examples=10)
def test_cls_pooling_uses_the_first_hidden_state(sub, case):
    _check_pooling(sub, case, "cls")


@check(TASK_FWD, points=2,
       spec="``\"mean\"``: the average of the hidden states over the positions whose ``attention_mask`` is 1")
@given(case=classifier_cases())
@settings(max_examples=10)
def test_mean_pooling_averages_real_tokens(sub, case):
    _check_pooling(sub, case, "mean")


@check(TASK_FWD, points=2,
       spec="A row's logits do not depend on how much padding follows it.")
@given(seed=seeds, T=st.integers(2, 7), extra=st.integers(1, 5), pooling=st.sampled_from(["cls", "mean"]))
@settings(max_examples=8)
def test_logits_do_not_depend_on_padding(sub, seed, T, extra, pooling):
    """A review's logits are the same alone and in a batch where it is followed by padding."""
    obj, W, b = _build(sub, seed, pooling=pooling)
    ids, mask = bert_batch(seed + 1, 1, T)
    padded_ids = torch.cat([ids, torch.full((1, extra), PAD)], dim=1)
    padded_mask = torch.cat([mask, torch.zeros(1, extra, dtype=torch.long)], dim=1)
    inputs = dict(input_ids=padded_ids, attention_mask=padded_mask, pooling=pooling)
    alone_inputs = dict(input_ids=ids, attention_mask=mask, pooling=pooling)
    alone_diag = when_reporting(lambda m: _local(m, seed, ids, mask, W, b, pooling, 2))
    with diagnosing(alone_diag):
        alone = _logits(obj, ids, mask, 2, alone_inputs, alone_diag)
    # constant logits would not depend on padding either: they must at least depend on the review (their exact
    # values are graded by the pooling checks, so a pooling mistake does not cost this check too)
    other_ids, other_mask = bert_batch(seed + 2, 1, T)
    other = _logits(obj, other_ids, other_mask, 2, dict(input_ids=other_ids, attention_mask=other_mask))
    if torch.allclose(other, alone):
        raise CheckFailed("two different reviews got the same logits: the classifier ignores its input",
                          inputs=dict(first=ids, second=other_ids, pooling=pooling))
    diag = when_reporting(lambda m: _local(m, seed, padded_ids, padded_mask, W, b, pooling, 2))
    with diagnosing(diag):
        with_padding = _logits(obj, padded_ids, padded_mask, 2, inputs, diag)
    expect_close(with_padding, alone, what=f"the logits of a review followed by {extra} padding tokens (compared with "
                 "the same review without padding)", atol=ATOL, rtol=RTOL, inputs=inputs, diagnose_with=diag,
                 hint="padding must not change a review's logits: pass attention_mask to the encoder, and let mean "
                      "pooling average over real tokens only")


@check(TASK_FWD, points=1,
       spec="Dropout (``nn.Dropout(dropout)``) acts on the pooled vector, in training mode only.")
def test_dropout_acts_on_the_pooled_vector_in_training_mode_only(sub):
    """dropout=1.0 in training mode zeroes the pooled vector, so the logits are the head's bias; with
    dropout=0.5 two training-mode calls differ (false alarm: equal only if the two random masks over
    2 x 16 units agree, probability 2^-32) while eval-mode calls give the deterministic logits."""
    seed = 8
    ids, mask = bert_batch(9, 2, 6)
    inputs = dict(input_ids=ids, attention_mask=mask)
    obj, W, b = _build(sub, seed, dropout=1.0, eval_mode=False)
    obj.call("train")
    out = _logits(obj, ids, mask, 2, inputs)
    diag = when_reporting(lambda m: _local(m, seed, ids, mask, W, b, "cls", 2, dropout=1.0, train=True))
    expect_close(out, b.expand(2, 2), what="the logits in training mode with dropout=1.0 (all pooled features "
                 "dropped: only the head's bias is left)", atol=ATOL, rtol=RTOL, inputs=inputs, diagnose_with=diag,
                 hint=known_mistake("dropout_not_applied"))
    obj, W, b = _build(sub, seed, dropout=0.5, eval_mode=False)
    obj.call("train")
    first, second = _logits(obj, ids, mask, 2, inputs), _logits(obj, ids, mask, 2, inputs)
    if torch.equal(first, second):
        raise CheckFailed("in training mode with dropout=0.5, two calls on the same batch gave identical logits: "
                          "dropout is not active", inputs=inputs, diagnosis=[known_mistake("dropout_not_applied")])
    obj.call("eval")
    expect_close(_logits(obj, ids, mask, 2, inputs), _expected_logits(seed, ids, mask, W, b, "cls"),
                 what="the logits in eval mode with dropout=0.5 (dropout must be off)", atol=ATOL, rtol=RTOL,
                 inputs=inputs)


@check(TASK_FWD, points=1,
       spec="The encoder is a submodule (its weights are trained too).")
def test_a_training_step_updates_the_encoder(sub):
    """One trusted SGD step through the student's classifier must change the encoder's weights."""
    seed = 12
    obj, W, b = _build(sub, seed, dropout=0.0)
    ids, mask = bert_batch(13, 4, 7)
    labels = torch.tensor([0, 1, 1, 0])
    # only a classifier whose logits are right earns this point (any output that reaches the encoder
    # would otherwise do)
    inputs = dict(input_ids=ids, attention_mask=mask)
    diag = when_reporting(lambda m: _local(m, seed, ids, mask, W, b, "cls", 2, dropout=0.0))
    with diagnosing(diag):
        out = _logits(obj, ids, mask, 2, inputs, diag)
    expect_close(out, _expected_logits(seed, ids, mask, W, b, "cls"), what="the logits with pooling='cls' (eval "
                 "mode)", atol=ATOL, rtol=RTOL, inputs=inputs, diagnose_with=diag)
    obj.call("train")
    before, _ = _split_state(obj.call("state_dict"), _encoder_keys())
    sub.factory("cross_entropy_sgd_step", obj, ids, mask, labels, 0.5)
    after, _ = _split_state(obj.call("state_dict"), _encoder_keys())
    changed = [k for k in before if not torch.equal(before[k], after[k])]
    if not changed:
        raise CheckFailed("after a training step (cross-entropy, SGD) no weight of the encoder changed: the encoder's "
                          "output is cut off from the loss (torch.no_grad() or .detach() around the encoder?)",
                          inputs=dict(input_ids=ids, attention_mask=mask, labels=labels),
                          diagnosis=[known_mistake("encoder_frozen")])


# ---------------------------------------------------------------------------------------------
# train_epoch and evaluate, on a trusted recording classifier
# ---------------------------------------------------------------------------------------------
@st.composite
def batch_lists(draw, max_batches=4):
    seed = draw(seeds)
    sizes = draw(st.lists(st.integers(1, 5), min_size=1, max_size=max_batches))
    T = draw(st.integers(2, 6))
    batches = []
    for n, size in enumerate(sizes):
        ids, mask = bert_batch(seed + n, size, T)
        labels = torch.randint(0, 2, (size,), generator=torch.Generator().manual_seed(seed + 100 + n))
        batches.append({"input_ids": ids, "attention_mask": mask, "labels": labels})
    return seed, batches


def _model(sub, seed, mode="eval"):
    obj = sub.factory("bert_classifier", TINY, 2, seed)
    obj.call(mode)
    return obj


def _local_model(seed, mode="eval"):
    model = factories.bert_classifier(TINY, 2, seed)
    model.train(mode == "train")
    return model


def _flat(model_or_state) -> torch.Tensor:
    state = model_or_state if isinstance(model_or_state, dict) else model_or_state.state_dict()
    return torch.cat([v.detach().reshape(-1).double() for v in state.values() if v.is_floating_point()])


def _run_local(m, seed, batches, lr, scheduler=None, one_pass=False):
    """(loss, weights after) of a module's train_epoch on the trusted model, SGD(lr). Gradients are
    switched on: the diagnoser runs variants under torch.no_grad()."""
    with torch.enable_grad():
        return _run_local_with_grad(m, seed, batches, lr, scheduler, one_pass)


def _run_local_with_grad(m, seed, batches, lr, scheduler, one_pass):
    model = _local_model(seed)
    opt = torch.optim.SGD(model.parameters(), lr=lr)
    sched = None if scheduler is None else torch.optim.lr_scheduler.StepLR(opt, **scheduler)
    data = [dict(b) for b in batches]
    loss = m.train_epoch(model, (b for b in data) if one_pass else data, opt, scheduler=sched)
    return loss, _flat(model)


def _batches_inputs(batches):
    if sum(b["input_ids"].numel() for b in batches) <= 60:
        return dict(batches=batches)
    return dict(batches=f"{len(batches)} batches of sizes {[len(b['labels']) for b in batches]}")


def _train(sub, seed, batches, lr, *, scheduler=None, one_pass=False, mode="eval"):
    model = _model(sub, seed, mode)
    opt = sub.factory("torch_optimizer", "SGD", model, lr=lr)
    sched = None if scheduler is None else sub.factory("torch_lr_scheduler", "StepLR", opt, **scheduler)
    data = sub.factory("one_pass", batches) if one_pass else batches
    inputs = dict(_batches_inputs(batches), optimizer=f"SGD(lr={lr})",
                  **({} if scheduler is None else {"scheduler": f"StepLR({scheduler})"}),
                  **({"note": "batches given as a one-pass iterator (a generator)"} if one_pass else {}))
    diag = when_reporting(lambda m: _run_local(m, seed, batches, lr, scheduler, one_pass))
    with diagnosing(diag):
        loss = sub.call("train_epoch", model, data, opt, scheduler=sched)
    if not isinstance(loss, float):
        raise CheckFailed(f"train_epoch should return the mean loss as a float, got {type(loss).__name__}"
                          + (" (use loss.item())" if isinstance(loss, torch.Tensor) else ""), inputs=inputs)
    return model, sched, loss, inputs, diag


@check(TASK_TRAIN, points=3,
       spec=("the cross-entropy with ``labels`` averaged over the batch", "fresh gradients of that loss (no accumulation across batches, no clipping)", "the sum over batches of ``batch loss * batch size``, divided by the number of examples"))
@given(case=batch_lists(), lr=st.sampled_from([0.05, 0.5]))
@settings(max_examples=8)
def test_train_epoch_updates_like_the_reference(sub, ref, case, lr):
    """Same weights, same batches, SGD: the returned loss and the weights afterwards match the reference."""
    seed, batches = case
    model, _, loss, inputs, diag = _train(sub, seed, batches, lr)
    want_loss, want_weights = _run_local(ref, seed, batches, lr)
    weights = _flat(model.call("state_dict"))
    found = lambda: diagnose(diag, (loss, weights))  # noqa: E731
    if abs(loss - want_loss) > ATOL + RTOL * abs(want_loss):
        raise CheckFailed(f"train_epoch returned {loss:.6g}, expected the mean loss per example {want_loss:.6g} "
                          f"(tolerance {ATOL:g} + {RTOL:g} relative)", inputs=inputs, diagnosis=found())
    expect_close(weights, want_weights, what="the model's weights after train_epoch (compared with one SGD step per "
                 "batch on that batch's mean cross-entropy)", atol=ATOL, rtol=RTOL, inputs=inputs,
                 diagnose_with=lambda m: diag(m)[1])


@check(TASK_TRAIN, points=1,
       spec=("The model is put in training mode (``model.train()``).", "The model is left in training mode."))
@given(case=batch_lists())
@settings(max_examples=4)
def test_train_epoch_runs_in_training_mode_with_gradients(sub, ref, case):
    seed, batches = case
    model, _, loss, inputs, diag = _train(sub, seed, batches, 0.1, mode="eval")
    calls = model.get("calls")
    if len(calls) != len(batches):
        raise CheckFailed(f"the model was called {len(calls)} times for {len(batches)} batches: one forward pass per "
                          "batch", inputs=inputs)
    if not all(training for training, _ in calls):
        raise CheckFailed("train_epoch called the model in eval mode (the model came in eval mode): call "
                          "model.train() first, so dropout is active while training", inputs=inputs,
                          diagnosis=[known_mistake("no_train_mode")])
    if not all(grad for _, grad in calls):
        raise CheckFailed("train_epoch ran the model with gradients disabled", inputs=inputs)
    if model.get("training") is not True:
        raise CheckFailed("the model is not in training mode after train_epoch", inputs=inputs)
    # the right modes earn nothing without training: the weights must have moved and the loss be a finite
    # number (their exact values are graded by test_train_epoch_updates_like_the_reference, not twice)
    if _flat(model.call("state_dict")).equal(_flat(_local_model(seed))) or not math.isfinite(loss):
        raise CheckFailed("train_epoch left the weights unchanged (or returned a loss that is not finite): it must "
                          "take one optimizer step per batch", inputs=inputs)


@check(TASK_TRAIN, points=1,
       spec="then one ``scheduler.step()`` if a scheduler is given")
def test_train_epoch_steps_the_scheduler_once_per_batch(sub, ref):
    seed, batches = 21, _fixed_batches(21, [3, 2, 4])
    scheduler = dict(step_size=1, gamma=0.5)
    model, sched, loss, inputs, diag = _train(sub, seed, batches, 0.4, scheduler=scheduler)
    steps = sched.get("last_epoch")
    if steps != len(batches):
        raise CheckFailed(f"the scheduler was stepped {steps} times for {len(batches)} batches: step it after every "
                          "optimizer step", inputs=inputs,
                          diagnosis=[known_mistake("scheduler_once_per_epoch")] if steps == 1 else [])
    want_loss, want_weights = _run_local(ref, seed, batches, 0.4, scheduler)
    expect_close(_flat(model.call("state_dict")), want_weights, what="the weights after train_epoch with a StepLR "
                 "scheduler", atol=ATOL, rtol=RTOL, inputs=inputs, diagnose_with=lambda m: diag(m)[1])


@check(TASK_TRAIN, points=1,
       spec="iterated once (it may be a generator)")
def test_train_epoch_accepts_any_iterable(sub, ref):
    """``batches`` may be a generator: iterate it once, never call len() on it."""
    seed, batches = 31, _fixed_batches(31, [2, 5, 3])
    model, _, loss, inputs, diag = _train(sub, seed, batches, 0.2, one_pass=True)
    # compared with the submission's own run on a list (its training itself is graded by the other checks)
    listed, _, want_loss, _, _ = _train(sub, seed, batches, 0.2)
    if abs(loss - want_loss) > ATOL + RTOL * abs(want_loss):
        raise CheckFailed(f"with batches given as a generator, train_epoch returned {loss:.6g}; with the same batches "
                          f"as a list, {want_loss:.6g}", inputs=inputs)
    expect_close(_flat(model.call("state_dict")), _flat(listed.call("state_dict")), what="the weights after "
                 "train_epoch on a generator of batches (compared with the same batches given as a list)", atol=ATOL,
                 rtol=RTOL, inputs=inputs)


def _fixed_batches(seed, sizes, T=6):
    out = []
    for n, size in enumerate(sizes):
        ids, mask = bert_batch(seed + n, size, T)
        labels = torch.randint(0, 2, (size,), generator=torch.Generator().manual_seed(seed + 100 + n))
        out.append({"input_ids": ids, "attention_mask": mask, "labels": labels})
    return out


def _local_accuracy_range(seed, batches) -> tuple[float, float]:
    """The accuracy of the trusted model, as a range: a row whose two top logits are within 1e-4 of each
    other (a near tie, where float rounding may pick either class) may count either way."""
    model = _local_model(seed)
    correct = ties = total = 0
    with torch.no_grad():
        for b in batches:
            logits = model(b["input_ids"], b["attention_mask"])
            top2 = logits.topk(2, dim=-1).values
            tie = (top2[:, 0] - top2[:, 1]).abs() <= 1e-4
            right = logits.argmax(-1) == b["labels"]
            correct += int((right & ~tie).sum())
            ties += int(tie.sum())
            total += len(b["labels"])
    return correct / total, (correct + ties) / total


def _eval(sub, seed, batches, mode, one_pass=False):
    model = _model(sub, seed, mode)
    data = sub.factory("one_pass", batches) if one_pass else batches
    inputs = dict(_batches_inputs(batches), model_mode=mode,
                  **({"note": "batches given as a one-pass iterator (a generator)"} if one_pass else {}))
    with diagnosing(when_reporting(lambda m: m.evaluate(_local_model(seed, mode), batches))):
        acc = sub.call("evaluate", model, data)
    if not isinstance(acc, float):
        raise CheckFailed(f"evaluate should return the accuracy as a float, got {type(acc).__name__}"
                          + (" (use .item())" if isinstance(acc, torch.Tensor) else ""), inputs=inputs)
    return model, acc, inputs


@check(TASK_EVAL, points=2,
       spec=("the fraction of examples whose argmax logit is the label", "batches of different sizes count by their number of examples", "iterated once"))
@given(case=batch_lists(max_batches=5), one_pass=st.booleans())
@settings(max_examples=8)
def test_evaluate_accuracy_over_all_examples(sub, case, one_pass):
    seed, batches = case
    _, acc, inputs = _eval(sub, seed, batches, "eval", one_pass)
    lo, hi = _local_accuracy_range(seed, batches)
    if not lo - 1e-6 <= acc <= hi + 1e-6:  # float32 rounding of an exact ratio is not a mistake
        want = f"{lo:.6g}" if lo == hi else f"{lo:.6g} to {hi:.6g}"
        found = diagnose(when_reporting(lambda m: m.evaluate(_local_model(seed), batches)), acc)
        raise CheckFailed(f"evaluate returned {acc:.6g}, expected {want} (correct predictions / all examples)",
                          inputs=inputs, diagnosis=found)


@check(TASK_EVAL, points=2,
       spec=("Runs in evaluation mode (no dropout) and without building a graph (``torch.no_grad()``).", "Afterwards every submodule is back in the training/evaluation mode it was in before the call"))
@given(case=batch_lists(), mode=st.sampled_from(["train", "eval"]))
@settings(max_examples=4)
def test_evaluate_runs_in_eval_mode_without_gradients_and_restores_the_mode(sub, case, mode):
    seed, batches = case
    model, acc, inputs = _eval(sub, seed, batches, mode)
    calls = model.get("calls")
    if len(calls) != len(batches):
        raise CheckFailed(f"the model was called {len(calls)} times for {len(batches)} batches: one forward pass per "
                          "batch", inputs=inputs)
    if any(training for training, _ in calls):
        raise CheckFailed("evaluate called the model in training mode: call model.eval() first (dropout must be "
                          "off while evaluating)", inputs=inputs, diagnosis=[known_mistake("evaluate_dropout_on")])
    if any(grad for _, grad in calls):
        raise CheckFailed("evaluate ran the model with gradients enabled: wrap the loop in torch.no_grad() (it "
                          "saves memory and time)", inputs=inputs, diagnosis=[known_mistake("evaluate_with_grad")])
    after = model.call("modes")  # the training flag of the model and of each of its submodules
    if not all(flag == (mode == "train") for flag in after):
        raise CheckFailed(f"the model came in {mode} mode and left evaluate in "
                          f"{'training' if after[0] else 'eval'} mode (or with some submodules switched): restore "
                          "its previous mode", inputs=inputs, diagnosis=[known_mistake("evaluate_mode_not_restored")])
    # the right modes earn nothing without an accuracy: a float in [0, 1], the same whatever mode the model came
    # in (its exact value is graded by test_evaluate_accuracy_over_all_examples, not twice)
    _, in_eval, _ = _eval(sub, seed, batches, "eval")
    if not 0.0 <= acc <= 1.0 or acc != in_eval:
        raise CheckFailed(f"evaluate returned {acc:.6g} for a model in {mode} mode and {in_eval:.6g} for the same model "
                          "in eval mode: it must be an accuracy in [0, 1] computed in eval mode", inputs=inputs)


@check(TASK_TRAIN, points=1, spec="if ``batches`` holds no example")
def test_train_epoch_rejects_no_example(sub):
    model = _model(sub, 41, "eval")
    opt = sub.factory("torch_optimizer", "SGD", model, lr=0.1)
    require_implemented(sub, "train_epoch", model, _fixed_batches(41, [2]), opt)
    expect_raises(lambda: sub.call("train_epoch", model, [], opt), "ValueError", what="train_epoch(model, [], "
                  "optimizer) (a mean over no example)", diagnose_with=lambda m: m.train_epoch(_local_model(41), [], None))


@check(TASK_EVAL, points=1, spec="if ``batches`` holds no example")
def test_evaluate_rejects_no_example(sub):
    model = _model(sub, 42, "eval")
    require_implemented(sub, "evaluate", model, _fixed_batches(42, [2]))
    expect_raises(lambda: sub.call("evaluate", model, []), "ValueError", what="evaluate(model, []) (an accuracy over "
                  "no example)", diagnose_with=lambda m: m.evaluate(_local_model(42), []))
