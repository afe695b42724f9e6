"""Hidden graders for ``imdb_local_llm`` (API.md §12): prompts, label scoring, calibration, classification.

The model is a tiny random Llama (2 layers, hidden size 16) sharing SmolLM2's vocabulary, and the
tokenizer is SmolLM2-135M-Instruct's real one (ChatML template, its default system message, right
padding by default), so a check runs in milliseconds. The weights are drawn with a standard deviation
of 0.5 (not the usual 0.02) so that next-token distributions differ clearly from position to position.

Expected scores never come from the reference: the grader renders each conversation with the
tokenizer's own chat template, runs the model on it alone (no padding, no batch) and reads the
log-softmax at the last position. A batched submission must match that to 1e-4 (float32).
``classify`` is judged against the submission's own ``build_messages`` (the wording is the student's
choice), scored the same independent way; reviews whose two scores lie within 1e-4 of each other
(a tie, decided by rounding) are not judged.
"""
from __future__ import annotations

import functools
import math

import pytest
import torch
from hypothesis import Phase, given, settings
from hypothesis import strategies as st

from graders.strategies import randn, seeds
from llmlab.grading.checks import (CheckFailed, check, describe, diagnose, diagnosing, expect_close,
                                  expect_raises, expect_tensor, known_mistake, later)
from llmlab.grading.compose import composed, try_compose

TASK_BUILD = "imdb_local_llm.build_messages"
TASK_SCORE = "imdb_local_llm.label_logprobs"
TASK_CAL = "imdb_local_llm.calibrate"
TASK_CLASSIFY = "imdb_local_llm.classify"
LABELS = ("negative", "positive")
ATOL, RTOL = 1e-4, 1e-4
TIE = 1e-4
# One cause, one loss: classify also passes when it agrees with the reference classify run over the student's
# own parts (llmlab.grading.compose), whose mistakes their own checks charge.
CLASSIFY_PARTS = ("build_messages", "label_logprobs", "calibrate")

CONFIG = dict(vocab_size=49152, hidden_size=16, intermediate_size=32, num_hidden_layers=2, num_attention_heads=2,
              num_key_value_heads=1, head_dim=8, max_position_embeddings=2048, tie_word_embeddings=True,
              rms_norm_eps=1e-6, bos_token_id=1, eos_token_id=2, pad_token_id=2)


# ---------------------------------------------------------------------------------------------
# The tiny model and the real tokenizer, on both sides
# ---------------------------------------------------------------------------------------------
@functools.lru_cache(maxsize=None)
def model_state() -> dict:
    from transformers import LlamaConfig, LlamaForCausalLM

    shapes = LlamaForCausalLM(LlamaConfig(**CONFIG)).state_dict()
    state = {}
    for n, (name, value) in enumerate(sorted(shapes.items())):
        if name == "lm_head.weight":
            continue  # tied to the embeddings
        if name.endswith("norm.weight"):
            state[name] = 1.0 + 0.1 * randn(1000 + n, *value.shape)
        elif value.is_floating_point() and value.dim() == 2:
            state[name] = 0.5 * randn(1000 + n, *value.shape)
        else:
            state[name] = value.clone()
    state["lm_head.weight"] = state["model.embed_tokens.weight"]
    return state


@functools.lru_cache(maxsize=None)
def local_model():
    from llmlab.grading.factories import hf_llama

    return hf_llama(CONFIG, model_state())


@functools.lru_cache(maxsize=None)
def local_tokenizer():
    from transformers import AutoTokenizer

    from llmlab.models import smollm2_dir

    return AutoTokenizer.from_pretrained(smollm2_dir())


@functools.lru_cache(maxsize=None)
def _tokenizer_settings() -> dict:
    tok = local_tokenizer()
    return {name: getattr(tok, name) for name in _SETTINGS}


_SETTINGS = ("padding_side", "truncation_side", "pad_token")


def fresh_tokenizer():
    """The local tokenizer with its settings put back, for running the kit's buggy variants (one of them
    changes the tokenizer's ``padding_side``). Cheaper than a deep copy (a quarter of a second), which
    the diagnoser would make for every variant."""
    tok = local_tokenizer()
    for name, value in _tokenizer_settings().items():
        if getattr(tok, name) != value:
            setattr(tok, name, value)
    return tok


def remote(sub):
    """(model, tokenizer) built once per worker by the trusted factories (rebuilt if the worker restarted)."""
    cache = sub.__dict__.setdefault("_imdb_local_llm_objects", {})
    key = sub._generation()
    if key not in cache:
        cache.clear()
        cache[key] = (sub.factory("hf_llama", CONFIG, model_state()), sub.factory("smollm2_tokenizer"))
    return cache[key]


def remote_tokenizer(sub):
    """A tokenizer of its own for one check (a check may inspect what the submission did to it)."""
    return sub.factory("smollm2_tokenizer")


def first_tokens(labels) -> list[int]:
    return [local_tokenizer().encode(label, add_special_tokens=False)[0] for label in labels]


_SCORES: dict[tuple, torch.Tensor] = {}


def score_alone(messages, labels=LABELS) -> torch.Tensor:
    """(n_labels,) log-probs of the labels' first tokens after the generation prompt: one conversation, no
    padding, straight from the tokenizer's chat template and the model."""
    key = (repr(messages), tuple(labels))
    if key not in _SCORES:
        tok = local_tokenizer()
        text = tok.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        ids = torch.tensor([tok(text, add_special_tokens=False)["input_ids"]])
        with torch.no_grad():
            logits = local_model()(input_ids=ids).logits[0, -1].float()
        _SCORES[key] = torch.log_softmax(logits, dim=-1)[first_tokens(labels)]
    return _SCORES[key]


def scores_alone(conversations, labels=LABELS) -> torch.Tensor:
    rows = [score_alone(c, labels) for c in conversations]
    return torch.stack(rows) if rows else torch.zeros(0, len(labels))


def lazy(compute, actual, extra=()):
    """Diagnosis computed only when the feedback is written (hypothesis fails many times while shrinking).

    ``extra`` names mistakes recognised from the submission's own intermediate values: when there are any,
    they are the diagnosis (a variant run end to end on a short input often matches by chance: with one
    review and two labels, half of all variants do)."""
    return later(lambda: list(extra) or (diagnose(compute, actual) if compute is not None else []))


# ---------------------------------------------------------------------------------------------
# Strategies
# ---------------------------------------------------------------------------------------------
WORDS = ["a", "the", "film", "movie", "plot", "acting", "was", "is", "great", "awful", "boring", "brilliant",
         "not", "really", "I", "loved", "hated", "it", "and", "but", "ending", "scenes", "cast", "wonderful",
         "terrible", "fun", "slow", "10/10", "waste", "of", "time", "masterpiece", "!", "...", "café", "日本"]
reviews = st.lists(st.sampled_from(WORDS), min_size=1, max_size=14).map(" ".join)
review_lists = st.lists(reviews, min_size=1, max_size=4, unique=True)
examples_lists = st.lists(st.tuples(reviews, st.integers(0, 1)), min_size=0, max_size=2, unique_by=lambda e: e[0])
few_shot_lists = st.lists(st.tuples(reviews, st.integers(0, 1)), min_size=1, max_size=3, unique_by=lambda e: e[0])


@st.composite
def conversations(draw):
    """Chat conversations as a prompt would be: optional system, earlier turns, a final user message."""
    messages = []
    if draw(st.booleans()):
        messages.append({"role": "system", "content": draw(reviews)})
    for _ in range(draw(st.integers(0, 2))):
        messages.append({"role": "user", "content": draw(reviews)})
        messages.append({"role": "assistant", "content": draw(st.sampled_from(LABELS))})
    messages.append({"role": "user", "content": draw(reviews)})
    return messages


batches = st.lists(conversations(), min_size=2, max_size=5).filter(
    lambda b: len({len(repr(c)) for c in b}) > 1)  # conversations of different lengths: padding matters


# ---------------------------------------------------------------------------------------------
# build_messages
# ---------------------------------------------------------------------------------------------
def _get_messages(sub, review, examples=()):
    with diagnosing(lambda m: m.build_messages(review, examples=examples)):
        out = sub.call("build_messages", review, examples=examples)
    return _expect_messages(out, review, examples)


def _expect_messages(out, review, examples):
    inputs = dict(review=review, examples=examples)
    if not isinstance(out, list) or not all(isinstance(m, dict) for m in out):
        raise CheckFailed(f"build_messages should return a list of dicts, got {describe(out)}", inputs=inputs)
    for m in out:
        if set(m) < {"role", "content"} or not isinstance(m["content"], str) or \
                m["role"] not in ("system", "user", "assistant"):
            raise CheckFailed(f"every message must be a dict with a role (system, user or assistant) and a str "
                              f"content; got {describe(m)}", inputs=inputs)
    return out


def _check_structure(out, review, examples):
    inputs = dict(review=review, examples=examples)
    diag = lambda m: m.build_messages(review, examples=examples)  # noqa: E731
    roles = [m["role"] for m in out]
    body = roles[1:] if roles[:1] == ["system"] else roles
    expected_roles = ["user", "assistant"] * len(examples) + ["user"]
    if body != expected_roles:
        hint = []
        if len(examples) and body == ["assistant", "user"] * len(examples) + ["user"]:
            hint = [known_mistake("few_shot_roles_swapped")]
        raise CheckFailed(f"the roles are {roles}; expected an optional system message, then {expected_roles} "
                          f"(each example as a user turn with the review and an assistant turn with its label, "
                          f"the review to classify last)", inputs=inputs, diagnosis=lazy(diag, out, hint))
    turns = out[len(roles) - len(body):]
    for i, (text, label) in enumerate(examples):
        user, answer = turns[2 * i], turns[2 * i + 1]
        word = LABELS[label]
        if text not in user["content"]:
            others = [j for j, (t, _) in enumerate(examples) if t in user["content"]]
            hint = [known_mistake("few_shot_examples_reversed")] if others else []
            raise CheckFailed(f"the user turn of example {i} does not contain that example's review verbatim "
                              f"({text!r}); its content is {user['content']!r}: examples come in the order given",
                              inputs=inputs, diagnosis=lazy(diag, out, hint))
        if answer["content"] != word:
            hint = [known_mistake("few_shot_labels_swapped")] if answer["content"] == LABELS[1 - label] else []
            raise CheckFailed(f"the assistant answer of example {i} (label {label}) is {answer['content']!r}; it "
                              f"must be exactly {word!r}, the label word the model is then scored on",
                              inputs=inputs, diagnosis=lazy(diag, out, hint))
    if review not in turns[-1]["content"]:
        raise CheckFailed(f"the last user message does not contain the review verbatim; it is "
                          f"{turns[-1]['content']!r}", inputs=inputs, diagnosis=lazy(diag, out))


@check(TASK_BUILD, points=1,
       spec=("an optional system message", "finally a user message that contains ``review`` verbatim", "A list of ``{\"role\": ..., \"content\": ...}`` dicts"))
@given(review=reviews)
def test_build_messages_zero_shot(sub, review):
    out = _get_messages(sub, review)
    _check_structure(out, review, ())


@check(TASK_BUILD, points=2,
       spec=("for each ``(text, label)`` of ``examples``, in order, a user message that contains ``text`` verbatim and an assistant message whose content is exactly the label word", "(``\"positive\"`` for 1, ``\"negative\"`` for 0)"))
@given(review=reviews, examples=few_shot_lists)
def test_build_messages_few_shot(sub, review, examples):
    out = _get_messages(sub, review, examples)
    _check_structure(out, review, examples)


@check(TASK_BUILD, points=1,
       spec=("if ``review`` or an example text is not a str", "if an example is not a pair or its label is not 0 or 1"))
def test_build_messages_validates_and_leaves_examples_alone(sub):
    examples = [("Loved it.", 1), ["Dull.", 0]]
    with diagnosing(lambda m: m.build_messages("Fine film.", examples=examples)):
        out, after, kwargs = sub.call_echo("build_messages", "Fine film.", examples=examples)
    if kwargs.get("examples") != examples:
        raise CheckFailed("build_messages modified the examples it was given", inputs=dict(examples=examples))
    # only a working function earns this point (one that returns junk, or always raises, leaves the
    # examples alone too)
    _check_structure(_expect_messages(out, "Fine film.", examples), "Fine film.", examples)
    expect_raises(lambda: sub.call("build_messages", "ok", examples=[("Great", 2)]), "ValueError",
                  what="an example with label 2 (labels are 0 and 1)")
    expect_raises(lambda: sub.call("build_messages", "ok", examples=[("Great", "positive")]), "ValueError",
                  what="an example whose label is the word 'positive' (labels are 0 and 1)")
    expect_raises(lambda: sub.call("build_messages", "ok", examples=[("Great",)]), "ValueError",
                  what="an example that is not a (review, label) pair")
    expect_raises(lambda: sub.call("build_messages", 42), "TypeError", what="build_messages(42)")


# ---------------------------------------------------------------------------------------------
# label_logprobs
# ---------------------------------------------------------------------------------------------
def _call_scores(sub, batch, labels=None):
    model, tok = remote(sub)
    args = (model, tok, batch) if labels is None else (model, tok, batch, labels)
    local = (lambda m: m.label_logprobs(local_model(), fresh_tokenizer(), batch)) if labels is None else (
        lambda m: m.label_logprobs(local_model(), fresh_tokenizer(), batch, labels))
    with diagnosing(local):
        out = sub.call("label_logprobs", *args)
    return out, local


@check(TASK_SCORE, points=2,
       spec=("Each conversation is rendered with ``tokenizer.apply_chat_template(..., add_generation_prompt=True)``", "``log_softmax`` over the whole vocabulary", "float32 tensor ``(B, len(labels))`` of log-probabilities"))
@given(messages=conversations())
def test_label_logprobs_one_conversation(sub, messages):
    out, local = _call_scores(sub, [messages])
    expected = scores_alone([messages])
    inputs = dict(batch_of_messages=[messages])
    expect_tensor(out, what="label_logprobs(...)", shape=(1, 2), dtype=torch.float32, inputs=inputs)
    expect_close(out, expected, what="the log-probabilities of ('negative', 'positive') as next token after the "
                 "generation prompt", atol=ATOL, rtol=RTOL, inputs=inputs, diagnose_with=local)


@check(TASK_SCORE, points=3,
       spec=("padded **on the left**", "Each row equals scoring its conversation alone."))
@given(batch=batches)
def test_label_logprobs_batch_equals_one_at_a_time(sub, batch):
    out, local = _call_scores(sub, batch)
    inputs = dict(batch_of_messages=batch)
    expect_tensor(out, what="label_logprobs(...)", shape=(len(batch), 2), dtype=torch.float32, inputs=inputs)
    expect_close(out, scores_alone(batch), what="batched scores (each row must equal scoring its conversation "
                 "alone)", atol=ATOL, rtol=RTOL, inputs=inputs, diagnose_with=local)


LABEL_SETS = [("bad", "good"), ("terrible", "mixed", "superb"), (" negative", " positive"), ("no", "yes"),
              ("Negative", "Positive")]


@check(TASK_SCORE, points=1,
       spec="``tokenizer.encode(label, add_special_tokens=False)[0]``")
@given(messages=conversations(), labels=st.sampled_from(LABEL_SETS))
def test_label_logprobs_other_label_words(sub, messages, labels):
    out, local = _call_scores(sub, [messages], labels)
    inputs = dict(batch_of_messages=[messages], labels=labels)
    expect_tensor(out, what=f"label_logprobs(..., labels={labels})", shape=(1, len(labels)), inputs=inputs)
    expect_close(out, scores_alone([messages], labels), what=f"the log-probabilities of the first tokens of "
                 f"{labels} (each label encoded exactly as given)", atol=ATOL, rtol=RTOL, inputs=inputs,
                 diagnose_with=local)


@check(TASK_SCORE, points=1,
       spec=("Not modified (its ``padding_side`` included).", "without gradient"))
def test_label_logprobs_has_no_side_effects(sub):
    model, _ = remote(sub)
    tok = remote_tokenizer(sub)
    before = tok.get("padding_side")
    batch = [[{"role": "user", "content": "Great film, loved it"}], [{"role": "user", "content": "Dull"}]]
    out = sub.call("label_logprobs", model, tok, batch)
    after = tok.get("padding_side")
    if after != before:
        raise CheckFailed(f"label_logprobs changed the tokenizer's padding_side from {before!r} to {after!r}: pad "
                          "the batch yourself, or restore the setting, so the caller's tokenizer is unchanged",
                          diagnosis=[known_mistake("changes_tokenizer_padding_side")])
    expect_tensor(out, what="label_logprobs(...)", shape=(2, 2), dtype=torch.float32,
                  inputs=dict(batch_of_messages=batch))
    # only right scores earn this point (junk has no side effects either)
    expect_close(out.detach(), scores_alone(batch), what="batched scores (each row must equal scoring its "
                 "conversation alone)", atol=ATOL, rtol=RTOL, inputs=dict(batch_of_messages=batch),
                 diagnose_with=lambda m: m.label_logprobs(local_model(), fresh_tokenizer(), batch))
    if out.requires_grad:
        raise CheckFailed("the scores carry a computation graph: run the model under torch.no_grad() (scoring "
                          "1,000 reviews with gradients kept would exhaust memory)",
                          diagnosis=[known_mistake("keeps_gradients")])


@check(TASK_SCORE, points=1,
       spec=("if ``labels`` is empty, a label has no tokens, or two labels share their first token", "a list of B conversations"))
def test_label_logprobs_rejects_bad_labels_and_handles_empty_batches(sub):
    model, tok = remote(sub)
    batch = [[{"role": "user", "content": "Fine"}]]
    # only a working function earns this point (one that always raises would pass the refusals)
    out, local = _call_scores(sub, batch, ("bad", "good"))
    inputs = dict(batch_of_messages=batch, labels=("bad", "good"))
    expect_tensor(out, what="label_logprobs(..., labels=('bad', 'good'))", shape=(1, 2), dtype=torch.float32,
                  inputs=inputs)
    expect_close(out, scores_alone(batch, ("bad", "good")), what="the log-probabilities of the first tokens of "
                 "('bad', 'good')", atol=ATOL, rtol=RTOL, inputs=inputs, diagnose_with=local)
    expect_raises(lambda: sub.call("label_logprobs", model, tok, batch, ()), "ValueError", what="labels=()")
    expect_raises(lambda: sub.call("label_logprobs", model, tok, batch, ("great", "greatness")), "ValueError",
                  what="labels ('great', 'greatness'), whose first tokens are the same")
    expect_raises(lambda: sub.call("label_logprobs", model, tok, batch, ("", "good")), "ValueError",
                  what="labels ('', 'good'): the empty label has no token")
    out = sub.call("label_logprobs", model, tok, [])
    expect_tensor(out, what="label_logprobs on an empty batch", shape=(0, 2))


# ---------------------------------------------------------------------------------------------
# calibrate
# ---------------------------------------------------------------------------------------------
@st.composite
def calibration_cases(draw, dtype=None):
    B, n = draw(st.integers(1, 5)), draw(st.integers(2, 4))
    seed = draw(seeds)
    dtype = dtype or draw(st.sampled_from([torch.float32, torch.float64]))
    # realistic inputs: log-probabilities of a few label tokens out of a large vocabulary
    logprobs = (torch.log_softmax(3 * randn(seed, B, 50, dtype=torch.float64), -1)[:, :n]).to(dtype)
    cf_full = (torch.log_softmax(3 * randn(seed + 1, 1, 50, dtype=torch.float64), -1)[:, :n]).to(dtype)
    shape = draw(st.sampled_from(["(n,)", "(1, n)", "(B, n)"]))
    cf = cf_full[0] if shape == "(n,)" else cf_full if shape == "(1, n)" else (
        torch.log_softmax(3 * randn(seed + 2, B, 50, dtype=torch.float64), -1)[:, :n]).to(dtype)
    return logprobs, cf


@check(TASK_CAL, points=2,
       spec=("``log_softmax(logprobs - content_free_logprobs, dim=-1)``", "``(n_labels,)``, ``(1, n_labels)`` or ``(B, n_labels)``, broadcast over rows", "dtype of ``logprobs``"))
@given(case=calibration_cases())
def test_calibrate_is_contextual_calibration(sub, case):
    logprobs, cf = case
    out = sub.call("calibrate", logprobs, cf)
    inputs = dict(logprobs=logprobs, content_free_logprobs=cf)
    expected = torch.log_softmax(logprobs.double() - cf.double(), dim=-1).to(logprobs.dtype)
    tol = 1e-5  # float32 precision whatever the dtype: float64 precision has its own check
    expect_tensor(out, what="calibrate(...)", shape=tuple(logprobs.shape), dtype=logprobs.dtype, inputs=inputs)
    expect_close(out, expected, what="calibrated log-probabilities (log_softmax over labels of logprobs - "
                 "content_free_logprobs)", atol=tol, rtol=tol, inputs=inputs,
                 diagnose_with=lambda m: m.calibrate(logprobs, cf))


@check(TASK_CAL, points=1,
       spec="so each row's probabilities sum to 1 again")
@given(case=calibration_cases(dtype=torch.float64))
def test_calibrate_gives_distributions_that_remove_the_prior(sub, case):
    logprobs, cf = case
    out = sub.call("calibrate", logprobs, cf)
    inputs = dict(logprobs=logprobs, content_free_logprobs=cf)
    expect_tensor(out, what="calibrate(...)", shape=tuple(logprobs.shape), inputs=inputs)
    diag = lambda m: m.calibrate(logprobs, cf)  # noqa: E731
    # the properties below also hold for junk (e.g. always uniform): the values must be right first
    expected = torch.log_softmax(logprobs - cf, dim=-1)
    expect_close(out, expected, what="calibrated log-probabilities (log_softmax over labels of logprobs - "
                 "content_free_logprobs)", atol=1e-5, rtol=1e-5, inputs=inputs, diagnose_with=diag)
    expect_close(out.double().exp().sum(-1), torch.ones(logprobs.shape[0], dtype=torch.float64),
                 what="the sum over labels of exp(calibrated)", atol=1e-5, rtol=0, inputs=inputs,
                 diagnose_with=lambda m: diag(m).double().exp().sum(-1))
    like_cf = cf.expand_as(logprobs).clone()
    same = sub.call("calibrate", like_cf, cf)
    expect_close(same, torch.full_like(logprobs, -math.log(logprobs.shape[1])),
                 what="calibrate(c, c): an input that looks exactly like the content-free one gets uniform "
                 "probabilities", atol=1e-5, rtol=0, inputs=dict(logprobs=like_cf, content_free_logprobs=cf),
                 diagnose_with=lambda m: m.calibrate(like_cf, cf))


@check(TASK_CAL, points=1,
       spec=("inputs are not modified", "if an argument is not a tensor", "if ``logprobs`` is not 2-dimensional or the shapes do not match as above"))
def test_calibrate_validates_and_leaves_inputs_alone(sub):
    logprobs = torch.log_softmax(randn(5, 3, 2), -1)
    cf = torch.log_softmax(randn(6, 2), -1)
    with diagnosing(lambda m: m.calibrate(logprobs.clone(), cf.clone())):
        out, after, _ = sub.call_echo("calibrate", logprobs, cf)
    inputs = dict(logprobs=logprobs, content_free_logprobs=cf)
    if not (isinstance(after[0], torch.Tensor) and torch.equal(after[0], logprobs) and torch.equal(after[1], cf)):
        raise CheckFailed("calibrate modified its inputs in place", inputs=inputs,
                          diagnosis=lambda: diagnose(lambda m: m.calibrate(logprobs.clone(), cf.clone()), out))
    # only right values earn this point (junk leaves the inputs alone too)
    expect_close(out, torch.log_softmax(logprobs - cf, dim=-1), what="calibrated log-probabilities", atol=1e-5,
                 rtol=1e-5, inputs=inputs, diagnose_with=lambda m: m.calibrate(logprobs.clone(), cf.clone()))
    expect_raises(lambda: sub.call("calibrate", logprobs, torch.zeros(3)), ("ValueError", "RuntimeError"),
                  what="content_free_logprobs of shape (3,) for 2 labels")
    expect_raises(lambda: sub.call("calibrate", logprobs[0], cf), "ValueError", what="a 1-dimensional logprobs")
    expect_raises(lambda: sub.call("calibrate", logprobs.tolist(), cf), "TypeError", what="logprobs given as a list")


@check(TASK_CAL, points=1, spec="float64 keeps float64 precision, within 1e-10")
@given(case=calibration_cases(dtype=torch.float64))
def test_calibrate_float64_precision(sub, case):
    logprobs, cf = case
    out = sub.call("calibrate", logprobs, cf)
    inputs = dict(logprobs=logprobs, content_free_logprobs=cf)
    expect_tensor(out, what="calibrate(...)", shape=tuple(logprobs.shape), dtype=torch.float64, inputs=inputs)
    expect_close(out, torch.log_softmax(logprobs - cf, dim=-1), what="float64 calibrated log-probabilities",
                 atol=1e-10, rtol=1e-10, inputs=inputs, diagnose_with=lambda m: m.calibrate(logprobs, cf))


# ---------------------------------------------------------------------------------------------
# classify
# ---------------------------------------------------------------------------------------------
def _expected_predictions(sub, texts, examples, content_free, calibrated):
    """Predictions from the submission's own prompts, scored independently; plus what known mistakes give."""
    convs = [_get_messages(sub, r, examples) for r in texts]
    raw = scores_alone(convs)
    neutral = scores_alone([_get_messages(sub, content_free, examples)])
    neutral_zero_shot = scores_alone([_get_messages(sub, content_free, ())])
    neutral_na = scores_alone([_get_messages(sub, "N/A", examples)])
    final = torch.log_softmax(raw - neutral, -1) if calibrated else raw
    margin = (final[:, 1] - final[:, 0]).abs()
    argmax = lambda s: [int(i) for i in s.argmax(-1)]  # noqa: E731
    mistakes = {
        "classify_ignores_calibrated": argmax(raw),
        "classify_content_free_without_examples": argmax(torch.log_softmax(raw - neutral_zero_shot, -1)),
        "classify_labels_reversed": [1 - p for p in argmax(final)],
        "classify_ignores_content_free_argument": argmax(torch.log_softmax(raw - neutral_na, -1)),
    }
    return argmax(final), margin, mistakes


def _check_classify(sub, texts, examples, content_free, calibrated, batch_size=None):
    model, tok = remote(sub)
    kw = dict(examples=examples, content_free=content_free, calibrated=calibrated)
    if batch_size is not None:
        kw["batch_size"] = batch_size
    inputs = dict(reviews=texts, **kw)
    local = lambda m: m.classify(local_model(), fresh_tokenizer(), texts, **kw)  # noqa: E731
    with diagnosing(local):
        out = sub.call("classify", model, tok, texts, **kw)
    if not isinstance(out, list) or len(out) != len(texts) or not all(type(p) is int and p in (0, 1) for p in out):
        raise CheckFailed(f"classify should return a list of {len(texts)} ints (0 or 1), got {describe(out)}",
                          inputs=inputs)
    expected, margin, mistakes = _expected_predictions(sub, texts, examples, content_free, calibrated)
    judged = [i for i in range(len(texts)) if margin[i] > TIE]
    wrong = [i for i in judged if out[i] != expected[i]]
    if wrong and out == try_compose(lambda: composed(sub, CLASSIFY_PARTS).classify(model, tok, texts, **kw)):
        return  # right over the student's own (wrong) scoring or calibration, which their checks charge
    if wrong:
        names = [known_mistake(name) for name, guess in mistakes.items()
                 if guess != expected and all(out[i] == guess[i] for i in judged)]
        raise CheckFailed(f"classify returned {out}, expected {expected} (argmax of the "
                          f"{'calibrated ' if calibrated else ''}label log-probabilities of your build_messages "
                          f"prompts; 1 = positive)", inputs=inputs, diagnosis=lazy(local, out, names))


# classify is the costliest check (several model calls per example) and every scoring mistake also fails
# it: fewer examples, and no shrinking (the inputs are a few short reviews already; the scoring itself
# is checked, with shrinking, above), keep a whole class's grading fast
CLASSIFY_SETTINGS = settings(max_examples=10, phases=[Phase.explicit, Phase.reuse, Phase.generate])


@check(TASK_CLASSIFY, points=2,
       spec=("scored with ``label_logprobs`` over ``(\"negative\", \"positive\")``", "The label is the argmax", "A list of ``len(reviews)`` ints, each 0 or 1."))
@given(texts=review_lists, examples=examples_lists)
@CLASSIFY_SETTINGS
def test_classify_uncalibrated(sub, texts, examples):
    _check_classify(sub, texts, examples, "N/A", calibrated=False)


@check(TASK_CLASSIFY, points=3,
       spec="When ``calibrated``, the scores go through ``calibrate`` with the scores of ``build_messages(content_free, examples=examples)``")
@given(texts=review_lists, examples=examples_lists, content_free=st.sampled_from(["N/A", "", "[MASK]", "nothing"]))
@CLASSIFY_SETTINGS
def test_classify_calibrated(sub, texts, examples, content_free):
    _check_classify(sub, texts, examples, content_free, calibrated=True)


@check(TASK_CLASSIFY, points=1,
       spec=("the order of the result is the order of ``reviews``", "if ``batch_size`` is not a positive int"))
def test_classify_batch_size_and_order(sub):
    texts = ["great fun", "a boring waste of time and money", "loved it", "not good", "the plot was slow but the "
             "cast was wonderful", "awful", "10/10"]
    examples = [("brilliant acting", 1), ("terrible film", 0)]
    for batch_size in (1, 3, 16):
        _check_classify(sub, texts, examples, "N/A", True, batch_size=batch_size)
    model, tok = remote(sub)
    expect_raises(lambda: sub.call("classify", model, tok, texts, batch_size=0), "ValueError", what="batch_size=0")
    out = sub.call("classify", model, tok, [])
    if out != []:
        raise CheckFailed(f"classify of no reviews should return [], got {describe(out)}")

