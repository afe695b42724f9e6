"""Hidden graders for ``dpo`` (API.md §6): sequence log-probs, DPO / cDPO / hinge / IPO, the reward-model
loss, preference accuracy and PPO's clipped surrogate.

Expected values come from the reference (which the kit's own tests pin to SEMANTICS.md §4.2-4.4 and
to TRL 1.16's ``DPOTrainer``), from a transformers model's own loss, or from closed-form gradients.
Tolerances: ``atol=1e-5, rtol=1e-4`` (``atol=1e-4`` where a real model's loss is re-summed), for
float32 and float64 inputs alike; only the one float64-precision check of each function asks for
``atol=1e-10, rtol=1e-9``, so computing in float32 costs that check and no other. Each check isolates
its feature: the loss-type-specific checks are the only ones that use hinge, IPO or label smoothing.
Inputs are drawn by hypothesis from sizes and seeds, so a failure shrinks to a small batch.
"""
from __future__ import annotations

import functools
import math

import torch
import torch.nn.functional as F
from hypothesis import example, given, settings
from hypothesis import strategies as st

from graders.strategies import bernoulli, float_dtypes, randn, seeds
from llmlab.grading.checks import (CheckFailed, check, describe, diagnose, diagnosing, expect_close, expect_raises,
                                  expect_tensor, expect_tuple, known_mistake, later)
from llmlab.grading.remote import SubmissionError

TASK_SEQ = "dpo.sequence_logprobs"
TASK_DPO = "dpo.dpo_loss"
TASK_RM = "dpo.reward_model_loss"
TASK_ACC = "dpo.preference_accuracy"
TASK_PPO = "dpo.ppo_clip_loss"
ATOL, RTOL = 1e-5, 1e-4
ATOL64, RTOL64 = 1e-10, 1e-9
# Examples per hypothesis check (the profile's default is 25). Every example is a round trip to the
# worker, and the topic is graded for ~40 submissions in CI, so checks whose inputs differ only in
# values (shapes, dtypes, gradients, detaching) use FEW, and the main comparisons with the reference use
# SOME. tests/test_graders.py shows that every buggy variant is still caught with these numbers.
FEW, SOME = 5, 10


def _expect_float64(out, expected, *, what, inputs, diagnose_with, mistake, own_float32=None):
    """``out`` within float64 tolerance of ``expected``; an answer right only to float32 precision names
    ``mistake`` (a computation in float32) rather than every variant that is close to float32 precision.

    A check of precision alone: an answer wrong at float32 tolerance too, that agrees with ``own_float32()``
    (the submission's own answer to the same input in float32), is a mistake in the values, which the value
    checks charge (one mistake, one loss)."""
    if own_float32 is not None and _wrong_values_kept_in_float32(out, expected, own_float32):
        return
    if isinstance(out, torch.Tensor) and out.shape == expected.shape and out.dtype == expected.dtype and \
            torch.allclose(out.detach(), expected, atol=ATOL, rtol=RTOL) and \
            not torch.allclose(out.detach(), expected, atol=ATOL64, rtol=RTOL64):
        err = (out.detach() - expected).abs().max().item()
        raise CheckFailed(f"{what} is right only to float32 precision (max abs error {err:.3g}; float64 inputs "
                          f"must keep float64 precision, within {ATOL64:g})", inputs=inputs,
                          diagnosis=[known_mistake(mistake)])
    expect_close(out, expected, what=what, atol=ATOL64, rtol=RTOL64, inputs=inputs, diagnose_with=diagnose_with)


def _wrong_values_kept_in_float32(out, expected, own_float32) -> bool:
    if not (isinstance(out, torch.Tensor) and out.shape == expected.shape and out.dtype == expected.dtype) or \
            torch.allclose(out.detach(), expected, atol=ATOL, rtol=RTOL, equal_nan=True):
        return False
    try:
        own = own_float32()
    except Exception:  # noqa: BLE001 - no float32 answer to compare with: the float64 verdict stands
        return False
    return isinstance(own, torch.Tensor) and own.shape == out.shape and \
        torch.allclose(out.detach(), own.detach().double(), atol=1e-4, rtol=1e-3, equal_nan=True)


def _rg(t: torch.Tensor) -> torch.Tensor:
    """A leaf copy that requires grad (sent to the worker with the flag set)."""
    return t.detach().clone().requires_grad_(True)


def _diagnosis(compute, actual):
    """The variants whose output matches ``actual``, computed only if this failure is the one shown."""
    return later(lambda: diagnose(compute, actual))


def _expect_own_derivative(sub, fn, args, which, grad, *, what, inputs, pick=None, **kwargs):
    """``grad`` (the gradient the submission backpropagated to ``args[which]``) must be the derivative of the
    submission's OWN function: its inner product with a fixed direction is compared with a central finite
    difference of ``fn`` called twice more. A gradient check then grades differentiability alone; the
    values of the function are graded by the value checks, so a wrong formula does not cost this check too.
    Step 1e-3 on float64 inputs: truncation error ~1e-6, and even a float32 computation rounds to ~1e-4."""
    x = args[which].detach().double()
    direction = randn(99, *x.shape, dtype=torch.float64)
    step = 1e-3

    def total(sign):
        moved = list(args)
        moved[which] = x + sign * step * direction
        out = sub.call(fn, *moved, **kwargs)
        out = out[pick] if pick is not None else out
        if not isinstance(out, torch.Tensor):
            raise CheckFailed(f"{what}: the result is {describe(out)}, not a tensor", inputs=inputs)
        return out.double().sum()

    numeric = (total(+1) - total(-1)) / (2 * step)
    analytic = (grad.double() * direction).sum()
    expect_close(analytic, numeric, what=f"{what} (the gradient along a fixed direction, compared with a finite "
                 "difference of your own function)", atol=1e-3, rtol=1e-3, inputs=inputs)


def _no_grad_reached(grad) -> bool:
    return grad is None or (isinstance(grad, torch.Tensor) and not grad.abs().gt(0).any())


def _call_grad(sub, fn, *args, what, grad_of=None, inputs=None, mistake_if_detached=None, **kwargs):
    """``sub.call_grad``; a result that is not connected to the graph becomes a verdict, not a crash."""
    try:
        return sub.call_grad(fn, *args, grad_of=grad_of, **kwargs)
    except SubmissionError as err:
        if err.kind == "raised" and ("does not require grad" in err.message or "does not have a grad_fn" in err.message):
            raise CheckFailed(f"{what} is not connected to the autograd graph: backpropagating from it fails",
                              inputs=inputs,
                              diagnosis=[known_mistake(mistake_if_detached)] if mistake_if_detached else []) from None
        raise


# ---------------------------------------------------------------------------------------------
# sequence_logprobs
# ---------------------------------------------------------------------------------------------
@st.composite
def seq_cases(draw, dtype=None, ignore_index=-100):
    """logits (B, T, V) and labels (B, T) with a random pattern of ignored positions."""
    B, T, V = draw(st.integers(1, 3)), draw(st.integers(1, 6)), draw(st.integers(2, 7))
    seed = draw(seeds)
    dtype = dtype or draw(float_dtypes)
    scale = draw(st.sampled_from([0.5, 2.0, 8.0]))
    logits = randn(seed, B, T, V, dtype=dtype) * scale
    g = torch.Generator().manual_seed(seed + 1)
    labels = torch.randint(0, V, (B, T), generator=g)
    labels[bernoulli(seed + 2, (B, T), draw(st.sampled_from([0.0, 0.3, 0.7])))] = ignore_index
    return logits, labels


def _seq(sub, logits, labels, **kw):
    out = sub.call("sequence_logprobs", logits, labels, **kw)
    expect_tensor(out, what="sequence_logprobs(logits, labels)", shape=(logits.shape[0],), dtype=logits.dtype,
                  inputs=dict(logits=logits, labels=labels, **kw),
                  diagnose_with=lambda m: m.sequence_logprobs(logits.clone(), labels.clone(), **kw))
    return out


@check(TASK_SEQ, points=1, spec="Tensor ``(B,)`` with the dtype of ``logits``")
@settings(max_examples=FEW)
@given(case=seq_cases())
def test_sequence_logprobs_shape_and_dtype(sub, case):
    _seq(sub, *case)


@check(TASK_SEQ, points=2, spec="out[b] = sum over t in 0..T-2 with labels[b, t+1] != ignore_index of "
       "log_softmax(logits[b, t])[labels[b, t+1]]")
@settings(max_examples=SOME)
@given(case=seq_cases())
def test_sequence_logprobs_matches_reference(sub, ref, case):
    logits, labels = case
    out = _seq(sub, logits, labels)
    expect_close(out, ref.sequence_logprobs(logits, labels), what="sequence log-probs", atol=ATOL, rtol=RTOL,
                 inputs=dict(logits=logits, labels=labels),
                 diagnose_with=lambda m: m.sequence_logprobs(logits.clone(), labels.clone()))


@check(TASK_SEQ, points=1, spec="float64 logits give float64 precision (within 1e-10)")
@settings(max_examples=FEW)
@given(case=seq_cases(dtype=torch.float64))
def test_sequence_logprobs_float64_precision(sub, ref, case):
    logits, labels = case
    out = _seq(sub, logits, labels)
    _expect_float64(out, ref.sequence_logprobs(logits, labels), what="float64 sequence log-probs",
                    inputs=dict(logits=logits, labels=labels), mistake="seq_float32",
                    diagnose_with=lambda m: m.sequence_logprobs(logits.clone(), labels.clone()),
                    own_float32=lambda: sub.call("sequence_logprobs", logits.float(), labels))


@functools.lru_cache(maxsize=8)
def _tiny_llama(seed: int, vocab: int):
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(seed)
    config = LlamaConfig(vocab_size=vocab, hidden_size=8, intermediate_size=16, num_hidden_layers=2,
                         num_attention_heads=2, num_key_value_heads=1, max_position_embeddings=32)
    return LlamaForCausalLM(config).eval()


@functools.lru_cache(maxsize=64)
def _llama_case(seed: int, vocab: int, labels: tuple, ids: tuple):
    """The model's logits, and minus its own loss times the token count per row (cached: every submission
    is graded on the same derandomised examples)."""
    model = _tiny_llama(seed, vocab)
    ids, labels = torch.tensor(ids), torch.tensor(labels)
    with torch.no_grad():
        logits = model(input_ids=ids).logits
        expected = torch.zeros(ids.shape[0])
        for b in range(ids.shape[0]):
            count = int((labels[b, 1:] != -100).sum())
            if count:
                expected[b] = -model(input_ids=ids[b:b + 1], labels=labels[b:b + 1]).loss * count
    return logits, expected


@check(TASK_SEQ, points=2, spec="The labels are aligned with the input ids (the shift happens here)")
@settings(max_examples=FEW)
@given(seed=st.integers(0, 3), B=st.integers(1, 3), T=st.integers(2, 8), data=st.data())
def test_sequence_logprobs_matches_a_transformers_model_loss(sub, seed, B, T, data):
    """On a tiny random Llama, minus the model's own mean loss times the token count, row by row."""
    vocab = 13
    ids = torch.randint(0, vocab, (B, T), generator=torch.Generator().manual_seed(seed * 100 + B * 10 + T))
    labels = ids.clone()
    for b in range(B):  # a prompt, then the completion, then right padding
        prompt = data.draw(st.integers(0, T - 1), label=f"prompt length of row {b}")
        pad = data.draw(st.integers(0, T - 1 - prompt), label=f"padding of row {b}")
        labels[b, :prompt] = -100
        labels[b, T - pad:] = -100
    logits, expected = _llama_case(seed, vocab, tuple(map(tuple, labels.tolist())), tuple(map(tuple, ids.tolist())))
    logits, expected = logits.clone(), expected.clone()  # the cached tensors stay untouched
    out = _seq(sub, logits, labels)
    expect_close(out, expected, what="sequence log-probs (compared with -loss x token count of a transformers "
                 "LlamaForCausalLM)", atol=1e-4, rtol=1e-5, inputs=dict(input_ids=ids, labels=labels),
                 diagnose_with=lambda m: m.sequence_logprobs(logits.clone(), labels.clone()))


@check(TASK_SEQ, points=1, spec="ignore_index: the label value to skip.")
@settings(max_examples=FEW)
@given(case=seq_cases(dtype=torch.float32, ignore_index=-1))
def test_sequence_logprobs_honours_ignore_index(sub, ref, case):
    logits, labels = case
    out = _seq(sub, logits, labels, ignore_index=-1)
    inputs = dict(logits=logits, labels=labels, ignore_index=-1)
    expected = ref.sequence_logprobs(logits, labels, ignore_index=-1)
    # the -1 positions scored as token 0: what -100 hard-coded in place of ignore_index gives. Named directly,
    # since on a small input several other mistakes give the same numbers
    counted = ref.sequence_logprobs(logits, labels.masked_fill(labels == -1, 0))
    if not torch.allclose(expected, counted) and torch.allclose(out.detach(), counted, atol=ATOL, rtol=RTOL):
        raise CheckFailed("with ignore_index=-1, the positions labelled -1 are counted (as token 0)", inputs=inputs,
                          diagnosis=[known_mistake("seq_ignore_index_hard_coded"),
                                     known_mistake("seq_ignored_positions_counted")])
    expect_close(out, expected, what="sequence log-probs with ignore_index=-1", atol=ATOL, rtol=RTOL, inputs=inputs,
                 diagnose_with=lambda m: m.sequence_logprobs(logits.clone(), labels.clone(), ignore_index=-1))


@check(TASK_SEQ, points=1, spec="The result is differentiable with respect to ``logits``")
@settings(max_examples=FEW)
@given(case=seq_cases())
def test_sequence_logprobs_gradient_reaches_the_logits(sub, case):
    logits, labels = case
    if labels.shape[1] < 2:  # nothing to predict: the gradient is zero, and a constant result is fine
        return
    labels = labels.clone()
    labels[0, -1] = 0  # at least one counted token, so the gradient is not zero
    inputs = dict(logits=logits, labels=labels)
    out, grads = _call_grad(sub, "sequence_logprobs", _rg(logits), labels, what="the result of sequence_logprobs",
                            inputs=inputs, mistake_if_detached="seq_breaks_graph")
    if not grads or grads[0] is None:
        raise CheckFailed("no gradient reaches the logits: DPO could not train a model through your "
                          "sequence_logprobs", inputs=inputs, diagnosis=[known_mistake("seq_breaks_graph")])
    _expect_own_derivative(sub, "sequence_logprobs", (logits.double(), labels), 0, grads[0], inputs=inputs,
                           what="the gradient of sum(sequence_logprobs) with respect to the logits")


@check(TASK_SEQ, points=1, spec="stays finite (and accurate) for very unlikely labels, logits hundreds apart")
@settings(max_examples=FEW)
@given(seed=seeds, B=st.integers(1, 3), T=st.integers(2, 5))
def test_sequence_logprobs_stays_finite_for_confident_models(sub, ref, seed, B, T):
    """Logits spread over hundreds: unlikely tokens have tiny probabilities, but finite log-probs."""
    V = 5
    logits = randn(seed, B, T, V) * 300.0
    labels = logits.argmin(-1)  # the least likely token everywhere
    out = _seq(sub, logits, labels)
    inputs = dict(logits=logits, labels=labels)
    diag = lambda m: m.sequence_logprobs(logits.clone(), labels.clone())  # noqa: E731
    if not torch.isfinite(out).all():
        raise CheckFailed(f"sequence_logprobs is not finite ({describe(out)}) when the labels are very unlikely "
                          "tokens", inputs=inputs, diagnosis=_diagnosis(diag, out))
    expect_close(out, ref.sequence_logprobs(logits, labels), what="sequence log-probs of very unlikely tokens",
                 atol=1e-3, rtol=1e-5, inputs=inputs, diagnose_with=diag)


@check(TASK_SEQ, points=1, spec="A row whose labels are all ``ignore_index`` (or ``T == 1``) gives 0.")
def test_sequence_logprobs_edge_cases(sub, ref):
    logits = randn(3, 2, 1, 4)
    out = _seq(sub, logits, torch.tensor([[1], [2]]))
    expect_close(out, torch.zeros(2), what="sequence_logprobs of length-1 sequences (nothing to predict)", atol=0,
                 rtol=0, inputs=dict(logits=logits, labels=torch.tensor([[1], [2]])))
    logits = randn(4, 2, 4, 3)
    labels = torch.tensor([[0, -100, -100, -100], [2, 1, -100, 0]])
    out = _seq(sub, logits, labels)
    # only the fully ignored row is this check's business (the other row's value is graded elsewhere)
    expect_close(out[:1], torch.zeros(1), what="sequence_logprobs of a fully ignored row (row 0)", atol=0, rtol=0,
                 inputs=dict(logits=logits, labels=labels),
                 diagnose_with=lambda m: m.sequence_logprobs(logits.clone(), labels.clone())[:1])


@check(TASK_SEQ, points=1, spec="``logits`` and ``labels`` are not modified.")
def test_sequence_logprobs_does_not_modify_inputs(sub):
    logits = randn(5, 2, 4, 3)
    labels = torch.tensor([[-100, -100, 1, 2], [-100, 0, 2, -100]])
    inputs = dict(logits=logits, labels=labels)
    out, after, _ = sub.call_echo("sequence_logprobs", logits, labels)
    # only a function that returns a result earns this point (the values are graded by the other checks)
    expect_tensor(out, what="sequence_logprobs(logits, labels)", shape=(2,), dtype=logits.dtype, inputs=inputs)
    for name, before, now in zip(("logits", "labels"), (logits, labels), after):
        if not (isinstance(now, torch.Tensor) and now.shape == before.shape and torch.equal(now, before)):
            raise CheckFailed(f"sequence_logprobs changed its input {name} in place", inputs=inputs,
                              diagnosis=[known_mistake("seq_modifies_labels_in_place")])


@check(TASK_SEQ, points=1, spec=(
    "if an argument is not a tensor, ``logits`` is not floating point or ``labels`` not integer",
    "if ``logits`` is not 3-D, ``labels`` not 2-D, their batch or length differ, or a counted label lies "
    "outside ``[0, V)``"))
def test_sequence_logprobs_rejects_bad_arguments(sub):
    logits, labels = randn(6, 2, 3, 4), torch.zeros(2, 3, dtype=torch.long)
    _seq(sub, logits, labels)  # valid arguments work
    expect_raises(lambda: sub.call("sequence_logprobs", logits[0], labels), "ValueError",
                  what="sequence_logprobs with 2-D logits (3, 4)")
    expect_raises(lambda: sub.call("sequence_logprobs", logits, labels[:, :2]), "ValueError",
                  what="logits (2, 3, 4) with labels (2, 2)")
    expect_raises(lambda: sub.call("sequence_logprobs", logits, labels[0]), "ValueError",
                  what="logits (2, 3, 4) with 1-D labels (3,)")
    expect_raises(lambda: sub.call("sequence_logprobs", logits, torch.tensor([[0, 4, 0], [0, 0, 0]])), "ValueError",
                  what="a label equal to the vocabulary size V=4")
    expect_raises(lambda: sub.call("sequence_logprobs", logits.tolist(), labels), "TypeError",
                  what="sequence_logprobs with logits given as a nested list")
    expect_raises(lambda: sub.call("sequence_logprobs", logits.long(), labels), "TypeError",
                  what="sequence_logprobs with integer logits")
    expect_raises(lambda: sub.call("sequence_logprobs", logits, labels.float()), "TypeError",
                  what="sequence_logprobs with float labels")


# ---------------------------------------------------------------------------------------------
# dpo_loss
# ---------------------------------------------------------------------------------------------
# SEMANTICS.md §4.2: policy (chosen, rejected) = (-10, -12), (-5, -4); reference = (-11, -11), (-6, -4.5)
VECTOR = (torch.tensor([-10.0, -5.0]), torch.tensor([-12.0, -4.0]), torch.tensor([-11.0, -6.0]),
          torch.tensor([-11.0, -4.5]))


@st.composite
def logp_cases(draw, dtype=None):
    """Four (B,) tensors of sequence log-probs (negative, of a realistic size)."""
    B = draw(st.integers(1, 5))
    seed = draw(seeds)
    dtype = dtype or draw(float_dtypes)
    scale = draw(st.sampled_from([0.5, 5.0, 40.0]))
    base = -randn(seed, B, dtype=dtype).abs() * scale - 1.0
    # the policy and the reference differ by a few nats per sequence
    pc = base + randn(seed + 1, B, dtype=dtype)
    pr = -randn(seed + 2, B, dtype=dtype).abs() * scale - 1.0
    rc = base + randn(seed + 3, B, dtype=dtype) * 0.5
    rr = pr + randn(seed + 4, B, dtype=dtype)
    return pc, pr, rc, rr


# Checks of a feature other than a loss type use the plain sigmoid loss (no label smoothing), so a missing
# or wrong hinge / IPO / cDPO loses only the check of that loss type.
plain_dpo = st.fixed_dictionaries({"loss_type": st.just("sigmoid"), "beta": st.floats(0.01, 2.0)})


def _logp_inputs(case, **kw):
    return dict(zip(("policy_chosen_logps", "policy_rejected_logps", "ref_chosen_logps", "ref_rejected_logps"),
                    case), **kw)


def _dpo(sub, case, **kw):
    B = case[0].shape
    out = sub.call("dpo_loss", *case, **kw)
    inputs = _logp_inputs(case, **kw)
    expect_tuple(out, 3, what="the return value (losses, chosen_rewards, rejected_rewards)", inputs=inputs)
    for i, name in enumerate(("losses", "chosen_rewards", "rejected_rewards")):
        expect_tensor(out[i], what=name, shape=tuple(B), dtype=case[0].dtype, inputs=inputs,
                      diagnose_with=lambda m, i=i: m.dpo_loss(*case, **kw)[i])
    return out


def _expect_dpo(sub, ref, case, what, float64=False, **kw):
    with diagnosing(lambda m: m.dpo_loss(*case, **kw)):
        out = _dpo(sub, case, **kw)
    expected = ref.dpo_loss(*case, **kw)
    inputs = _logp_inputs(case, **kw)
    for i, name in enumerate(("losses", "chosen_rewards", "rejected_rewards")):
        if float64:
            _expect_float64(out[i], expected[i], what=f"{name} ({what})", inputs=inputs, mistake="dpo_float32",
                            diagnose_with=lambda m, i=i: m.dpo_loss(*case, **kw)[i],
                            own_float32=lambda i=i: sub.call("dpo_loss", *(t.float() for t in case), **kw)[i])
        else:
            expect_close(out[i], expected[i], what=f"{name} ({what})", atol=ATOL, rtol=RTOL, inputs=inputs,
                         diagnose_with=lambda m, i=i: m.dpo_loss(*case, **kw)[i])


@check(TASK_DPO, points=1, spec="``(losses, chosen_rewards, rejected_rewards)``, each ``(B,)`` with the inputs' dtype")
@settings(max_examples=FEW)
@given(case=logp_cases(), kw=plain_dpo)
def test_dpo_loss_returns_three_tensors_of_shape_B(sub, case, kw):
    _dpo(sub, case, **kw)


SIGMOID = ("With ``delta = (policy_chosen - ref_chosen) - (policy_rejected - ref_rejected)``",
           "``-(1 - eps) * logsigmoid(beta * delta) - eps * logsigmoid(-beta * delta)``")


@check(TASK_DPO, points=2, spec=SIGMOID)
def test_dpo_loss_sigmoid_test_vector(sub, ref):
    _expect_dpo(sub, ref, VECTOR, "sigmoid loss with the default beta=0.1, SEMANTICS.md §4.2's vector")


IGNORES_SMOOTHING = "``label_smoothing`` only affects ``\"sigmoid\"`` (hinge and ipo ignore it)"


@check(TASK_DPO, points=1, spec=('``"hinge"`` (SLiC): ``relu(1 - beta * delta)``', IGNORES_SMOOTHING))
@settings(max_examples=FEW)
@given(case=logp_cases(), beta=st.floats(0.01, 2.0), eps=st.sampled_from([0.0, 0.3]))
@example(case=VECTOR, beta=0.1, eps=0.0)  # SEMANTICS.md §4.2's vector, tried first
def test_dpo_loss_hinge(sub, ref, case, beta, eps):
    _expect_dpo(sub, ref, case, f"hinge loss, beta={beta:.3g}, label_smoothing={eps:g}", loss_type="hinge",
                beta=beta, label_smoothing=eps)


@check(TASK_DPO, points=1, spec=('``"ipo"``: ``(delta - 1 / (2 * beta)) ** 2``', IGNORES_SMOOTHING))
@settings(max_examples=FEW)
@given(case=logp_cases(), beta=st.floats(0.01, 2.0), eps=st.sampled_from([0.0, 0.3]))
@example(case=VECTOR, beta=0.1, eps=0.0)  # SEMANTICS.md §4.2's vector, tried first
def test_dpo_loss_ipo(sub, ref, case, beta, eps):
    _expect_dpo(sub, ref, case, f"IPO loss, beta={beta:.3g}, label_smoothing={eps:g}", loss_type="ipo", beta=beta,
                label_smoothing=eps)


@check(TASK_DPO, points=2, spec=SIGMOID)
@settings(max_examples=SOME)
@given(case=logp_cases(), kw=plain_dpo)
def test_dpo_loss_matches_reference_on_random_batches(sub, ref, case, kw):
    _expect_dpo(sub, ref, case, f"sigmoid loss, beta={kw['beta']:.3g}", **kw)


@check(TASK_DPO, points=1, spec=("conservative DPO when ``eps > 0``", SIGMOID[1]))
@settings(max_examples=FEW)
@given(case=logp_cases(), eps=st.floats(0.01, 0.49), beta=st.floats(0.05, 1.0))
@example(case=VECTOR, eps=0.1, beta=0.1)  # SEMANTICS.md §4.2's vector, tried first
def test_dpo_loss_conservative_label_smoothing(sub, ref, case, eps, beta):
    _expect_dpo(sub, ref, case, f"conservative DPO with label_smoothing={eps:.3g}", beta=beta, label_smoothing=eps)


@check(TASK_DPO, points=1, spec=("The rewards are the implicit rewards ``beta * (policy - ref)`` of each completion",
                                  "**detached** (``requires_grad`` False)"))
@settings(max_examples=FEW)
@given(case=logp_cases(dtype=torch.float32), beta=st.floats(0.05, 1.0))
def test_dpo_rewards_are_implicit_log_ratio_rewards_and_detached(sub, case, beta):
    pc, pr, rc, rr = case
    inputs = _logp_inputs(case, beta=beta)
    out = _dpo(sub, (_rg(pc), _rg(pr), _rg(rc), _rg(rr)), beta=beta)
    for i, name, want in ((1, "chosen_rewards", beta * (pc - rc)), (2, "rejected_rewards", beta * (pr - rr))):
        expect_close(out[i], want, what=f"{name} (beta * (policy - reference) log-probs)", atol=ATOL, rtol=RTOL,
                     inputs=inputs, diagnose_with=lambda m, i=i: m.dpo_loss(*case, beta=beta)[i])
        if out[i].requires_grad:
            raise CheckFailed(f"{name} requires grad when the log-probs do", inputs=inputs,
                              diagnosis=[known_mistake("dpo_rewards_not_detached")])
    if not out[0].requires_grad:
        raise CheckFailed("the losses do not require grad when the policy log-probs do: nothing could be trained",
                          inputs=inputs)


@check(TASK_DPO, points=2, spec="``d loss_i / d policy_chosen_logps[i] = -beta * sigmoid(-beta * delta_i)``")
@settings(max_examples=FEW)
@given(case=logp_cases(), beta=st.floats(0.01, 2.0))
def test_dpo_sigmoid_gradient_matches_the_analytic_form(sub, case, beta):
    """d loss_i / d policy_chosen_i = -beta * sigmoid(-beta * delta_i) = -d loss_i / d policy_rejected_i."""
    pc, pr, rc, rr = case
    inputs = _logp_inputs(case, beta=beta)
    out, grads = _call_grad(sub, "dpo_loss", _rg(pc), _rg(pr), rc, rr, beta=beta, grad_of=0, inputs=inputs,
                            what="the losses of dpo_loss")
    delta = (pc - rc) - (pr - rr)
    want = -beta * torch.sigmoid(-beta * delta)
    atol, rtol = ATOL, RTOL

    def local_grad(m, which):
        with torch.enable_grad():
            leaves = [_rg(pc), _rg(pr)]
            m.dpo_loss(leaves[0], leaves[1], rc.clone(), rr.clone(), beta=beta)[0].sum().backward()
            return leaves[which].grad

    for which, name, expected in ((0, "policy_chosen_logps", want), (1, "policy_rejected_logps", -want)):
        if grads[which] is None:
            raise CheckFailed(f"no gradient reaches {name}", inputs=inputs)
        expect_close(grads[which], expected, what=f"d loss / d {name} (should be "
                     f"{'-' if which == 0 else '+'}beta * sigmoid(-beta * delta))", atol=atol, rtol=rtol,
                     inputs=inputs, diagnose_with=lambda m, which=which: local_grad(m, which))


@check(TASK_DPO, points=1, spec="no gradient reaches ``ref_chosen_logps`` or ``ref_rejected_logps``, even when "
       "they require grad")
@settings(max_examples=FEW)
@given(case=logp_cases(dtype=torch.float32), kw=plain_dpo)
def test_dpo_no_gradient_reaches_the_reference(sub, case, kw):
    inputs = _logp_inputs(case, **kw)
    out, grads = _call_grad(sub, "dpo_loss", *(_rg(t) for t in case), grad_of=0, inputs=inputs,
                            what="the losses of dpo_loss", **kw)
    # only a loss that trains the policy earns this point: a constant also sends no gradient to the reference
    # (the loss values are graded by the value checks)
    expect_tuple(out, 3, what="the return value (losses, chosen_rewards, rejected_rewards)", inputs=inputs)
    expect_tensor(out[0], what="losses", shape=tuple(case[0].shape), dtype=case[0].dtype, inputs=inputs,
                  diagnose_with=lambda m: m.dpo_loss(*case, **kw)[0])
    if _no_grad_reached(grads[0]) and _no_grad_reached(grads[1]):
        raise CheckFailed("no gradient reaches the policy log-probs: the losses could not train the policy",
                          inputs=inputs)
    for name, grad in zip(("ref_chosen_logps", "ref_rejected_logps"), grads[2:]):
        if not _no_grad_reached(grad):
            raise CheckFailed(f"a gradient reaches {name} (the reference model is frozen)", inputs=inputs,
                              diagnosis=[known_mistake("dpo_reference_not_detached")])


@check(TASK_DPO, points=2, spec="The loss stays finite, with finite gradients, for ``|beta * delta|`` up to at least 1e4")
@settings(max_examples=8)
@given(z=st.sampled_from([-1e4, -3e3, -100.0, 100.0, 3e3, 1e4]), beta=st.sampled_from([0.1, 0.5, 1.0]),
       smoothing=st.sampled_from([0.0, 0.2]))
def test_dpo_loss_is_stable_for_huge_margins(sub, ref, z, beta, smoothing):
    """|beta * delta| up to 1e4 (float32): finite losses and finite gradients. Hinge and IPO cannot overflow
    here; with label smoothing only finiteness is checked (its values belong to the cDPO check)."""
    kw = dict(beta=beta, label_smoothing=smoothing)
    delta = z / beta
    case = (torch.tensor([-20.0 + delta, -20.0]), torch.tensor([-20.0, -20.0 + delta]), torch.tensor([-20.0, -20.0]),
            torch.tensor([-20.0, -20.0]))
    inputs = _logp_inputs(case, **kw)
    out = _dpo(sub, case, **kw)
    diag = lambda m: m.dpo_loss(*case, **kw)[0]  # noqa: E731
    if not torch.isfinite(out[0]).all():
        raise CheckFailed(f"the losses are not finite ({describe(out[0])}) for beta*delta = +-{abs(z):g}",
                          inputs=inputs, diagnosis=_diagnosis(diag, out[0]))
    if not smoothing:
        expect_close(out[0], ref.dpo_loss(*case, **kw)[0], what=f"losses for beta*delta = +-{abs(z):g}", atol=1e-3,
                     rtol=1e-5, inputs=inputs, diagnose_with=diag)
    _, grads = _call_grad(sub, "dpo_loss", _rg(case[0]), _rg(case[1]), case[2], case[3], grad_of=0, inputs=inputs,
                          what="the losses of dpo_loss", **kw)

    def local_grad(m):
        with torch.enable_grad():
            leaf = _rg(case[0])
            m.dpo_loss(leaf, case[1].clone(), case[2].clone(), case[3].clone(), **kw)[0].sum().backward()
            return leaf.grad

    if grads[0] is None or not torch.isfinite(grads[0]).all():
        raise CheckFailed(f"the gradient of the losses is not finite ({describe(grads[0])}) for beta*delta = "
                          f"+-{abs(z):g}", inputs=inputs, diagnosis=_diagnosis(local_grad, grads[0]))


@check(TASK_DPO, points=1, spec="float64 inputs keep float64 precision, within 1e-10")
@settings(max_examples=FEW)
@given(case=logp_cases(dtype=torch.float64), kw=plain_dpo)
def test_dpo_loss_float64_precision(sub, ref, case, kw):
    _expect_dpo(sub, ref, case, "float64, sigmoid loss", float64=True, **kw)


@check(TASK_DPO, points=1, spec=("if a log-prob argument is not a tensor",
                                 "if the four tensors do not have the same shape, ``beta <= 0``, ``label_smoothing`` "
                                 "is outside ``[0, 0.5)`` or ``loss_type`` is unknown"))
def test_dpo_loss_rejects_bad_arguments(sub):
    case = VECTOR
    _dpo(sub, case)  # valid arguments work
    call = lambda **kw: (lambda: sub.call("dpo_loss", *case, **kw))  # noqa: E731
    for kw, what in ((dict(beta=0.0), "beta=0"), (dict(beta=-0.1), "beta=-0.1"),
                     (dict(label_smoothing=0.5), "label_smoothing=0.5"),
                     (dict(label_smoothing=-0.1), "label_smoothing=-0.1"),
                     (dict(loss_type="robust"), "loss_type='robust' (not one of sigmoid, hinge, ipo)"),
                     (dict(loss_type="Sigmoid"), "loss_type='Sigmoid'")):
        expect_raises(call(**kw), "ValueError", what=f"dpo_loss with {what}",
                      diagnose_with=lambda m, kw=kw: m.dpo_loss(*case, **kw))
    expect_raises(lambda: sub.call("dpo_loss", case[0], case[1], case[2], torch.zeros(3)), "ValueError",
                  what="dpo_loss with ref_rejected_logps of shape (3,) and the others (2,)")
    expect_raises(lambda: sub.call("dpo_loss", case[0], case[1], case[2], [-11.0, -4.5]), "TypeError",
                  what="dpo_loss with ref_rejected_logps given as a list")


# ---------------------------------------------------------------------------------------------
# reward_model_loss
# ---------------------------------------------------------------------------------------------
@st.composite
def reward_cases(draw, dtype=None):
    B = draw(st.integers(1, 6))
    seed = draw(seeds)
    dtype = dtype or draw(float_dtypes)
    scale = draw(st.sampled_from([0.3, 2.0, 10.0]))
    return randn(seed, B, dtype=dtype) * scale, randn(seed + 1, B, dtype=dtype) * scale


# SEMANTICS.md §4.3: r_c = [1, 0.2], r_r = [0.5, 0.7]
RM_VECTOR = (torch.tensor([1.0, 0.2]), torch.tensor([0.5, 0.7]))
margins = st.one_of(st.none(), st.sampled_from([0.0, 0.5, 2.0, -1.0]), st.just("per-pair"))


def _margin(kind, case):
    if kind == "per-pair":
        return randn(7, *case[0].shape, dtype=case[0].dtype).abs()
    return kind


def _rm(sub, chosen, rejected, **kw):
    out = sub.call("reward_model_loss", chosen, rejected, **kw)
    expect_tensor(out, what="reward_model_loss(...) (a 0-dimensional tensor)", shape=(), dtype=chosen.dtype,
                  inputs=dict(chosen_rewards=chosen, rejected_rewards=rejected, **kw),
                  diagnose_with=lambda m: m.reward_model_loss(chosen, rejected, **kw))
    return out


def _expect_rm(sub, ref, chosen, rejected, what, float64=False, **kw):
    out = _rm(sub, chosen, rejected, **kw)
    expected = ref.reward_model_loss(chosen, rejected, **kw)
    inputs = dict(chosen_rewards=chosen, rejected_rewards=rejected, **kw)
    diag = lambda m: m.reward_model_loss(chosen, rejected, **kw)  # noqa: E731
    if float64:
        _expect_float64(out, expected, what=what, inputs=inputs, diagnose_with=diag, mistake="rm_float32",
                        own_float32=lambda: sub.call("reward_model_loss", chosen.float(), rejected.float(),
                                                     **{k: v.float() if isinstance(v, torch.Tensor) else v
                                                        for k, v in kw.items()}))
    else:
        expect_close(out, expected, what=what, atol=ATOL, rtol=RTOL, inputs=inputs, diagnose_with=diag)


@check(TASK_RM, points=1, spec="A 0-dimensional tensor (the mean over the batch) with the rewards' dtype")
@settings(max_examples=FEW)
@given(case=reward_cases())
def test_reward_model_loss_is_a_scalar(sub, case):
    _rm(sub, *case)


@check(TASK_RM, points=2, spec="``mean(-logsigmoid(chosen_rewards - rejected_rewards - margin))``")
@settings(max_examples=SOME)
@given(case=reward_cases())
@example(case=RM_VECTOR)  # SEMANTICS.md §4.3's vector, tried first
def test_reward_model_loss_matches_reference(sub, ref, case):
    what = "SEMANTICS.md §4.3's vector" if case is RM_VECTOR else "Bradley-Terry, mean over the batch"
    _expect_rm(sub, ref, *case, f"reward-model loss ({what})")


@check(TASK_RM, points=1, spec=("margin: ``None``, a number, or a tensor ``(B,)`` (one margin per pair)",
                                "where a pair with a ``margin`` must win by that much"))
@settings(max_examples=FEW)
@given(case=reward_cases(), kind=margins)
@example(case=RM_VECTOR, kind=0.5)  # SEMANTICS.md §4.3's vector with margin=0.5, tried first
def test_reward_model_loss_with_margin(sub, ref, case, kind):
    margin = _margin(kind, case)
    where = ", SEMANTICS.md §4.3's vector" if case is RM_VECTOR else ""
    _expect_rm(sub, ref, *case, f"reward-model loss with margin={describe(margin)}{where}", margin=margin)


@check(TASK_RM, points=1, spec="differentiable with respect to both reward tensors")
@settings(max_examples=FEW)
@given(case=reward_cases(dtype=torch.float32), kind=margins)
def test_reward_model_loss_gradient(sub, case, kind):
    """Gradients reach both reward tensors and are the derivative of the loss (its value has its own checks)."""
    chosen, rejected = case
    margin = _margin(kind, case)
    inputs = dict(chosen_rewards=chosen, rejected_rewards=rejected, margin=margin)
    _, grads = _call_grad(sub, "reward_model_loss", _rg(chosen), _rg(rejected), margin=margin, inputs=inputs,
                          what="reward_model_loss")
    m = margin.double() if isinstance(margin, torch.Tensor) else margin
    for which, name in ((0, "chosen_rewards"), (1, "rejected_rewards")):
        if grads[which] is None:
            raise CheckFailed(f"no gradient reaches {name}", inputs=inputs)
        _expect_own_derivative(sub, "reward_model_loss", (chosen.double(), rejected.double()), which, grads[which],
                               what=f"d loss / d {name}", inputs=inputs, margin=m)


@check(TASK_RM, points=1, spec="Stable for large reward differences.")
@given(gap=st.sampled_from([-1e4, -500.0, 500.0, 1e4]))
def test_reward_model_loss_is_stable_for_huge_gaps(sub, ref, gap):
    chosen, rejected = torch.tensor([gap, 0.0]), torch.tensor([0.0, 1.0])
    out = _rm(sub, chosen, rejected)
    inputs = dict(chosen_rewards=chosen, rejected_rewards=rejected)
    diag = lambda m: m.reward_model_loss(chosen, rejected)  # noqa: E731
    if not torch.isfinite(out):
        raise CheckFailed(f"the loss is not finite ({describe(out)}) when the rewards differ by {abs(gap):g}",
                          inputs=inputs, diagnosis=_diagnosis(diag, out))
    expect_close(out, ref.reward_model_loss(chosen, rejected), what=f"loss for a reward gap of {gap:g}", atol=1e-3,
                 rtol=1e-5, inputs=inputs, diagnose_with=diag)


@check(TASK_RM, points=1, spec=(
    "if a reward is not a tensor",
    "if the two reward tensors have different shapes, the batch is empty, or a margin tensor has another shape"))
def test_reward_model_loss_rejects_bad_arguments(sub):
    _rm(sub, torch.zeros(3), torch.zeros(3))  # valid arguments work
    expect_raises(lambda: sub.call("reward_model_loss", torch.zeros(3), torch.zeros(2)), "ValueError",
                  what="reward_model_loss with 3 chosen and 2 rejected rewards")
    expect_raises(lambda: sub.call("reward_model_loss", torch.zeros(0), torch.zeros(0)), "ValueError",
                  what="reward_model_loss of an empty batch")
    expect_raises(lambda: sub.call("reward_model_loss", torch.zeros(3), torch.zeros(3), margin=torch.zeros(2)),
                  "ValueError", what="reward_model_loss with 3 pairs and a margin tensor of shape (2,)")
    expect_raises(lambda: sub.call("reward_model_loss", [1.0, 2.0], torch.zeros(2)), "TypeError",
                  what="reward_model_loss with chosen_rewards given as a list")


@check(TASK_RM, points=1, spec="float64 rewards keep float64 precision, within 1e-10")
@settings(max_examples=FEW)
@given(case=reward_cases(dtype=torch.float64))
def test_reward_model_loss_float64_precision(sub, ref, case):
    _expect_rm(sub, ref, *case, "float64 reward-model loss", float64=True)


# ---------------------------------------------------------------------------------------------
# preference_accuracy
# ---------------------------------------------------------------------------------------------
@st.composite
def tied_rewards(draw):
    """Small integer-valued rewards, so ties are frequent."""
    B = draw(st.integers(1, 8))
    values = st.integers(-2, 2)
    chosen = torch.tensor(draw(st.lists(values, min_size=B, max_size=B)), dtype=torch.float32)
    rejected = torch.tensor(draw(st.lists(values, min_size=B, max_size=B)), dtype=torch.float32)
    return chosen * 0.5, rejected * 0.5


def _expect_accuracy(sub, ref, chosen, rejected, what, strict_type=False):
    """The accuracy's value; its type (a Python float) only where ``strict_type`` (the check of that promise),
    so a 0-d tensor result costs one check, not every one."""
    out = sub.call("preference_accuracy", chosen, rejected)
    inputs = dict(chosen_rewards=chosen, rejected_rewards=rejected)
    diag = lambda m: m.preference_accuracy(chosen, rejected)  # noqa: E731
    if not strict_type and isinstance(out, torch.Tensor) and out.numel() == 1 and out.is_floating_point():
        out = out.item()
    if type(out) is not float:
        raise CheckFailed(f"preference_accuracy returned {describe(out)}: it should return a Python float",
                          inputs=inputs, diagnosis=_diagnosis(diag, out))
    want = ref.preference_accuracy(chosen, rejected)
    if not math.isclose(out, want, abs_tol=1e-6, rel_tol=0):
        raise CheckFailed(f"{what} is {out:.6g}, expected {want:.6g} (tolerance 1e-6)", inputs=inputs,
                          diagnosis=_diagnosis(diag, out))


@check(TASK_ACC, points=1, spec=("A Python ``float`` in ``[0, 1]``",
                                 "Fraction of pairs whose chosen answer scores strictly higher than the rejected one"))
@settings(max_examples=FEW)
@given(case=reward_cases())
def test_preference_accuracy_returns_a_float(sub, ref, case):
    _expect_accuracy(sub, ref, *case, "the accuracy", strict_type=True)


@check(TASK_ACC, points=2, spec="A tie counts as wrong")
@settings(max_examples=SOME)
@given(case=tied_rewards())
def test_preference_accuracy_with_ties(sub, ref, case):
    _expect_accuracy(sub, ref, *case, "the accuracy (ties count as wrong)")


@check(TASK_ACC, points=1, spec="every implicit reward is 0, and the accuracy is 0, not 1")
@settings(max_examples=FEW)
@given(B=st.integers(1, 6), seed=seeds)
def test_preference_accuracy_is_zero_before_training(sub, ref, B, seed):
    """At DPO's first step the policy is the reference: every implicit reward is exactly 0."""
    zeros = torch.zeros(B)
    _expect_accuracy(sub, ref, zeros, zeros.clone(), "the accuracy of all-zero rewards")
    chosen = randn(seed, B)
    _expect_accuracy(sub, ref, chosen, chosen.clone(), "the accuracy when every pair is tied")


@check(TASK_ACC, points=1, spec=("if an argument is not a tensor", "if the shapes differ or the batch is empty"))
def test_preference_accuracy_rejects_bad_arguments(sub, ref):
    _expect_accuracy(sub, ref, torch.ones(3), torch.zeros(3), "the accuracy")  # valid arguments work
    expect_raises(lambda: sub.call("preference_accuracy", torch.zeros(3), torch.zeros(2)), "ValueError",
                  what="preference_accuracy with 3 chosen and 2 rejected rewards")
    expect_raises(lambda: sub.call("preference_accuracy", torch.zeros(0), torch.zeros(0)), "ValueError",
                  what="preference_accuracy of an empty batch")
    expect_raises(lambda: sub.call("preference_accuracy", [1.0, 0.0], torch.zeros(2)), "TypeError",
                  what="preference_accuracy with chosen_rewards given as a list")


# ---------------------------------------------------------------------------------------------
# ppo_clip_loss
# ---------------------------------------------------------------------------------------------
@st.composite
def ppo_cases(draw, dtype=None, masked=False, per_sequence=False):
    B, T = draw(st.integers(1, 3)), draw(st.integers(1, 6))
    seed = draw(seeds)
    dtype = dtype or draw(float_dtypes)
    old = -randn(seed, B, T, dtype=dtype).abs() * 2 - 0.1
    new = old + randn(seed + 1, B, T, dtype=dtype) * draw(st.sampled_from([0.1, 0.4, 1.0]))
    adv = randn(seed + 2, B, 1 if per_sequence else T, dtype=dtype)
    kw = dict(clip_eps=draw(st.sampled_from([0.1, 0.2, 0.3]) | st.floats(0.02, 0.9)))
    if masked:
        mask = bernoulli(seed + 3, (B, T), 0.6)
        mask.view(-1)[draw(st.integers(0, B * T - 1))] = True  # at least one position counts
        if draw(st.booleans()):
            mask = mask.long()  # a tokenizer-style 0/1 mask
        kw["mask"] = mask
    return new, old, adv, kw


PPO_FORMULA = "loss = -mean( min(r * A, clip(r, 1 - clip_eps, 1 + clip_eps) * A) )"


def _ppo_inputs(new, old, adv, kw):
    return dict(logp_new=new, logp_old=old, advantages=adv, **kw)


def _ppo(sub, new, old, adv, kw):
    out = sub.call("ppo_clip_loss", new, old, adv, **kw)
    expect_tensor(out, what="ppo_clip_loss(...) (a 0-dimensional tensor)", shape=(), dtype=new.dtype,
                  inputs=_ppo_inputs(new, old, adv, kw), diagnose_with=lambda m: m.ppo_clip_loss(new, old, adv, **kw))
    return out


def _expect_ppo(sub, ref, new, old, adv, kw, what, float64=False):
    out = _ppo(sub, new, old, adv, kw)
    expected = ref.ppo_clip_loss(new, old, adv, **kw)
    inputs, diag = _ppo_inputs(new, old, adv, kw), lambda m: m.ppo_clip_loss(new, old, adv, **kw)
    if float64:
        _expect_float64(out, expected, what=what, inputs=inputs, diagnose_with=diag, mistake="ppo_float32",
                        own_float32=lambda: sub.call("ppo_clip_loss", new.float(), old.float(), adv.float(), **kw))
    else:
        expect_close(out, expected, what=what, atol=ATOL, rtol=RTOL, inputs=inputs, diagnose_with=diag)


@check(TASK_PPO, points=1, spec="A 0-dimensional tensor with ``logp_new``'s dtype")
@settings(max_examples=FEW)
@given(case=ppo_cases())
def test_ppo_clip_loss_is_a_scalar(sub, case):
    _ppo(sub, *case)


@check(TASK_PPO, points=2, spec=(PPO_FORMULA, "clip_eps: the clip range"))
def test_ppo_clip_loss_test_vectors(sub, ref):
    # SEMANTICS.md §4.4 (eps=0.2): ratios [0.5, 0.9, 1.1, 1.5] with A=+1; ratios [0.5, 1.5] with A=-1
    for ratios, a in (([0.5, 0.9, 1.1, 1.5], 1.0), ([0.5, 1.5], -1.0)):
        r = torch.tensor(ratios)
        new, old, adv = r.log(), torch.zeros_like(r), torch.full_like(r, a)
        _expect_ppo(sub, ref, new, old, adv, {}, f"PPO loss for ratios {ratios} with advantage {a:+g} (default "
                    "clip_eps=0.2)")


@check(TASK_PPO, points=2, spec=PPO_FORMULA)
@settings(max_examples=SOME)
@given(case=ppo_cases())
def test_ppo_clip_loss_matches_reference(sub, ref, case):
    _expect_ppo(sub, ref, *case, "PPO clipped loss")


@check(TASK_PPO, points=2, spec=("The mean runs over the positions where ``mask`` is True",
                                  "a bool / 0-1 tensor of ``logp_new``'s shape"))
@settings(max_examples=FEW)
@given(case=ppo_cases(masked=True))
def test_ppo_clip_loss_mean_over_mask(sub, ref, case):
    _expect_ppo(sub, ref, *case, "PPO clipped loss averaged over the masked positions")


@check(TASK_PPO, points=1, spec="or broadcastable to it (e.g. ``(B, 1)``: one advantage per sequence)")
@settings(max_examples=FEW)
@given(case=ppo_cases(per_sequence=True))
def test_ppo_clip_loss_one_advantage_per_sequence(sub, ref, case):
    _expect_ppo(sub, ref, *case, "PPO clipped loss with advantages of shape (B, 1)")


@check(TASK_PPO, points=2, spec=("differentiable with respect to ``logp_new``",
                                  "``logp_old`` and ``advantages`` are constants"))
@settings(max_examples=FEW)
@given(case=ppo_cases())
def test_ppo_clip_loss_gradients(sub, case):
    """The gradient reaches logp_new only, and is the derivative of the loss (0 where the ratio is clipped).
    No mask: the mask has its own check; the loss values have theirs."""
    new, old, adv, kw = case
    inputs = _ppo_inputs(new, old, adv, kw)
    _, grads = _call_grad(sub, "ppo_clip_loss", _rg(new), _rg(old), _rg(adv), inputs=inputs,
                          what="the PPO loss", **kw)
    if grads[0] is None:
        raise CheckFailed("no gradient reaches logp_new", inputs=inputs)
    _expect_own_derivative(sub, "ppo_clip_loss", (new.double(), old.double(), adv.double()), 0, grads[0],
                           what="d loss / d logp_new", inputs=inputs, **kw)
    for name, grad in zip(("logp_old", "advantages"), grads[1:]):
        if not _no_grad_reached(grad):
            raise CheckFailed(f"a gradient reaches {name}: it must be treated as a constant", inputs=inputs,
                              diagnosis=[known_mistake("ppo_advantages_not_detached")])


@check(TASK_PPO, points=1, spec=(
    "if a tensor argument is not a tensor",
    "if ``logp_old`` or ``mask`` does not have ``logp_new``'s shape, ``advantages`` does not broadcast to it, "
    "``clip_eps`` is outside ``(0, 1)``, or the mask selects no position"))
def test_ppo_clip_loss_rejects_bad_arguments(sub):
    new, old, adv = randn(1, 2, 3), randn(2, 2, 3), randn(3, 2, 3)
    _ppo(sub, new, old, adv, {})  # valid arguments work
    for eps in (0.0, 1.0, -0.2):
        expect_raises(lambda eps=eps: sub.call("ppo_clip_loss", new, old, adv, clip_eps=eps), "ValueError",
                      what=f"ppo_clip_loss with clip_eps={eps:g}")
    expect_raises(lambda: sub.call("ppo_clip_loss", new, old[:, :2], adv), "ValueError",
                  what="logp_new (2, 3) with logp_old (2, 2)")
    expect_raises(lambda: sub.call("ppo_clip_loss", new, old, adv, mask=torch.ones(3, 2, dtype=torch.bool)),
                  "ValueError", what="a mask of shape (3, 2) for log-probs of shape (2, 3)")
    expect_raises(lambda: sub.call("ppo_clip_loss", new, old, adv, mask=torch.zeros(2, 3, dtype=torch.bool)),
                  "ValueError", what="a mask that selects no position")
    expect_raises(lambda: sub.call("ppo_clip_loss", new, old, randn(4, 3, 3)), "ValueError",
                  what="advantages of shape (3, 3) for log-probs of shape (2, 3)")
    expect_raises(lambda: sub.call("ppo_clip_loss", new, old.tolist(), adv), "TypeError",
                  what="ppo_clip_loss with logp_old given as a nested list")


@check(TASK_PPO, points=1, spec="float64 keeps float64 precision, within 1e-10")
@settings(max_examples=FEW)
@given(case=ppo_cases(dtype=torch.float64))
def test_ppo_clip_loss_float64_precision(sub, ref, case):
    _expect_ppo(sub, ref, *case, "float64 PPO clipped loss", float64=True)
