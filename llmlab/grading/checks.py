"""What a grader writes: ``@check`` and the ``expect_*`` helpers.

Every helper checks type first, then shape and dtype, then values, and fails with a
:class:`CheckFailed` whose message is written for the student: what was wrong, on which (small)
input, and, when the output matches one of the topic's known buggy variants, the mistake by name.
Messages never contain grader source.
"""
from __future__ import annotations

import contextvars
import math
import os
import sys
from typing import Callable

import pytest
import torch

from .protocol import Diagnosis, compose_feedback, raised_problem
from .remote import RemoteObject, SubmissionError

current_topic: contextvars.ContextVar[str] = contextvars.ContextVar("current_topic", default="")
# While an earlier failure's diagnosis only confirms the mistakes already named, ``diagnose`` tries those
# variants first and stops there when one of them matches (the others could only be dropped by the
# intersection): a confirmation costs a few variant runs instead of all of them.
_named_first: contextvars.ContextVar[frozenset] = contextvars.ContextVar("named_first", default=frozenset())


class CheckFailed(AssertionError):
    """A check's verdict: the submission's answer is wrong (the message says how)."""

    def __init__(self, message: str, *, inputs: dict | None = None,
                 diagnosis: list[str] | Callable[[], list[str]] | None = None):
        self.problem = message
        self.inputs = inputs or {}
        # A callable diagnosis runs only when the feedback is written: hypothesis raises many failures
        # while it shrinks, and only the last (minimal) one is ever shown. It runs with the topic that
        # was current when the check failed, so ``diagnosis=lambda: diagnose(...)`` just works.
        self._diagnosis = diagnosis
        self._topic = current_topic.get()
        self._final: list[str] | None = None
        # The earlier failures of the same check at the same grader line: a mistake is named only if it
        # explains all of them (the minimal input alone often cannot tell mistakes apart). Only lazy
        # diagnoses are compared: a list computed on the spot is the grader's own, deliberate choice.
        self._lazy = callable(diagnosis)
        self._siblings = _seen_failures(self) if self._lazy else []
        super().__init__(message)

    def _own_diagnosis(self, confirming: list[str] = ()) -> list[str]:
        """This failure's diagnosis; with ``confirming``, one that may omit mistakes not in it (not kept)."""
        if not callable(self._diagnosis):
            return list(self._diagnosis or [])
        token, named = current_topic.set(self._topic), _named_first.set(frozenset(confirming))
        try:
            found = self._diagnosis()
        except Exception:  # noqa: BLE001 - a diagnosis that cannot run names nothing
            found = []
        finally:
            current_topic.reset(token)
            _named_first.reset(named)
        if not confirming:
            self._diagnosis = found
        return list(found or [])

    @property
    def diagnosis(self) -> list[str]:
        """The mistakes (variants' feedback texts) whose outputs match this failure and the earlier
        failures of the same check; ``[]`` when none does or more than ``MAX_NAMED`` do."""
        if self._final is None:
            found = self._own_diagnosis()
            for other in self._siblings:
                if not found:
                    break
                if other is not self and other._lazy:
                    theirs = other._own_diagnosis(confirming=found)
                    found = [m for m in found if m in theirs]
            self._final = found if len(found) <= MAX_NAMED else []
        return self._final

    def feedback(self) -> str:
        """The student's text: the problem, "Likely mistake: ..." when diagnosed, the failing input."""
        return compose_feedback(self.problem, self.diagnosis, [(k, describe(v)) for k, v in self.inputs.items()])


# A diagnosis naming more mistakes than this says nothing useful: none is named instead.
MAX_NAMED = 3
# How many earlier failures of one check (at one grader line) a diagnosis is confirmed on: the first
# ones hypothesis found (large, discriminating inputs) and the latest.
MAX_SIBLINGS = 6
_SEEN: dict = {"test": None, "sites": {}}


def _seen_failures(failure: CheckFailed) -> list:
    """Register ``failure`` with the earlier failures of the running check raised at the same grader line;
    returns the (shared, growing) list of them."""
    test = os.environ.get("PYTEST_CURRENT_TEST", "").rsplit(" (", 1)[0]
    if _SEEN["test"] != test:
        _SEEN["test"], _SEEN["sites"] = test, {}
    frame = sys._getframe(1)
    while frame is not None and frame.f_code.co_filename == __file__:
        frame = frame.f_back
    site = (frame.f_code.co_filename, frame.f_lineno) if frame is not None else None
    siblings = _SEEN["sites"].setdefault(site, [])
    if len(siblings) < MAX_SIBLINGS:
        siblings.append(failure)
    else:
        siblings[-1] = failure
    return siblings


def check(task: str, points: float = 1, *, visibility: str = "visible", spec: str | tuple[str, ...] = ()):
    """Mark a grader test: the task id it grades (as in the stub's message) and its points.

    ``spec`` is the phrase (or phrases) of the task's docstring that this check enforces, word for word
    as the stub states it (whitespace aside): a test finds each one in the student's docstring, so no
    check can demand what the contract does not say.
    """
    phrases = (spec,) if isinstance(spec, str) else tuple(spec)

    def wrap(fn):
        return pytest.mark.llmlab(task=task, points=points, visibility=visibility, spec=phrases)(fn)
    return wrap


# ---------------------------------------------------------------------------------------------
# Describing values for feedback
# ---------------------------------------------------------------------------------------------
def describe(value, limit: int = 48) -> str:
    """A short readable rendering of a value for feedback: a tensor's shape and dtype (and its values
    when it has at most ``limit`` elements), short lists elementwise, other values by ``repr`` (cut)."""
    if isinstance(value, torch.Tensor):
        head = f"tensor of shape {tuple(value.shape)}, dtype {str(value.dtype).replace('torch.', '')}"
        if value.numel() <= limit:
            with torch.no_grad():
                body = torch.Tensor.tolist(value.detach().double() if value.is_floating_point() else value.detach())
            return f"{head}: {_round(body)}"
        return head
    if isinstance(value, RemoteObject):
        return f"a {value.type_name} object"
    if isinstance(value, (list, tuple)) and len(value) <= 8:
        inner = ", ".join(describe(v, limit) for v in value)
        return f"[{inner}]" if isinstance(value, list) else f"({inner})"
    text = repr(value)
    return text if len(text) <= 300 else text[:300] + "..."


def _round(x):
    if isinstance(x, list):
        return [_round(v) for v in x]
    if isinstance(x, float):
        return x if not math.isfinite(x) else round(x, 4)
    return x


def distinct(a: float, b: float, digits: int = 6) -> tuple[str, str]:
    """``a`` and ``b`` printed with the fewest significant digits (at least ``digits``) that tell them apart."""
    for d in range(digits, 18):
        sa, sb = f"{a:.{d}g}", f"{b:.{d}g}"
        if sa != sb:
            return sa, sb
    return repr(a), repr(b)


def type_name(value) -> str:
    """The type name of a value as the student wrote it (a worker's object keeps its own type's name)."""
    if isinstance(value, RemoteObject):
        return value.type_name
    return type(value).__name__


# ---------------------------------------------------------------------------------------------
# Diagnosis: which known buggy variant produces the same answer?
# ---------------------------------------------------------------------------------------------
def diagnose(compute: Callable, actual, *, atol: float = 1e-5, rtol: float = 1e-4) -> list[str]:
    """Run ``compute(module)`` on each buggy variant of the current topic; name those that match."""
    from .variants import load_variants

    topic = current_topic.get()
    if not topic:
        return []
    inputs = _closure_tensors(compute)
    saved = [t.detach().clone() for t in inputs]

    def matching(variants) -> list[str]:
        found = []
        for variant in variants:
            try:
                with torch.no_grad():
                    guess = compute(variant.module())
            except Exception:  # noqa: BLE001 - a variant that cannot run this input says nothing
                continue
            finally:
                _restore(inputs, saved)
            if _same(guess, actual, atol, rtol):
                found.append(variant.mistake)
        return found

    variants, named = list(load_variants(topic)), _named_first.get()
    if named:
        found = matching([v for v in variants if v.mistake in named])
        if found:  # the caller keeps only named mistakes: the other variants cannot change its answer
            return found
        variants = [v for v in variants if v.mistake not in named]
    return matching(variants)


def _closure_tensors(fn, depth: int = 4) -> list[torch.Tensor]:
    """The tensors a diagnosis closure computes from (its captured variables and defaults, nested closures
    included): a variant that modifies its inputs in place must not change them for the next variant."""
    found, seen = [], set()

    def walk(obj, depth):
        if id(obj) in seen or depth < 0:
            return
        seen.add(id(obj))
        if isinstance(obj, torch.Tensor):
            found.append(obj)
        elif isinstance(obj, (list, tuple)):
            for item in obj:
                walk(item, depth - 1)
        elif isinstance(obj, dict):
            for item in obj.values():
                walk(item, depth - 1)
        elif callable(obj) and hasattr(obj, "__code__"):
            for cell in obj.__closure__ or ():
                try:
                    walk(cell.cell_contents, depth - 1)
                except ValueError:  # an empty cell
                    pass
            for item in obj.__defaults__ or ():
                walk(item, depth - 1)
    walk(fn, depth)
    return found


def _restore(tensors, saved) -> None:
    with torch.no_grad():
        for t, s in zip(tensors, saved):
            if t.shape == s.shape and not torch.equal(t, s):
                t.copy_(s)


def later(compute: Callable) -> Callable:
    """``compute`` wrapped to run later (e.g. when feedback is written) under the topic current now."""
    topic = current_topic.get()

    def run():
        token = current_topic.set(topic)
        try:
            return compute()
        finally:
            current_topic.reset(token)
    return run


def require_implemented(sub, function: str, *args) -> None:
    """Call ``function`` on valid arguments first: an unfinished function then fails as "Not implemented
    yet" rather than as "raised the wrong exception" in a check of bad arguments."""
    sub.call(function, *args)


def known_mistake(name: str) -> str:
    """The description of the current topic's buggy variant ``name`` (for checks that detect a mistake
    by a property rather than by comparing outputs, e.g. an input modified in place)."""
    from .variants import load_variants

    return load_variants(current_topic.get())[name].mistake


def _same(a, b, atol, rtol) -> bool:
    if isinstance(a, torch.Tensor) and isinstance(b, torch.Tensor):
        if a.shape != b.shape or a.dtype != b.dtype:  # a dtype mistake is explained only by the same dtype
            return False
        if a.dtype == torch.bool or b.dtype == torch.bool or not a.is_floating_point():
            return bool(torch.equal(a.to(b.dtype) if a.dtype != b.dtype else a, b))
        return bool(torch.allclose(a.detach().double(), b.detach().double(), atol=atol, rtol=rtol, equal_nan=True))
    if isinstance(a, (tuple, list)) and isinstance(b, (tuple, list)):
        return len(a) == len(b) and all(_same(x, y, atol, rtol) for x, y in zip(a, b))
    if isinstance(a, torch.Tensor) or isinstance(b, torch.Tensor):
        return False  # a tensor never "matches" a plain number
    if isinstance(a, float) or isinstance(b, float):
        try:
            return math.isclose(float(a), float(b), rel_tol=rtol, abs_tol=atol)
        except (TypeError, ValueError):
            return False
    return type(a) is type(b) and a == b


# ---------------------------------------------------------------------------------------------
# Expectations
# ---------------------------------------------------------------------------------------------
def expect_tensor(value, *, what: str, shape=None, dtype=None, inputs: dict | None = None,
                  diagnose_with: Callable | None = None) -> torch.Tensor:
    """``value`` is a tensor of the given shape (tuple, ``None`` entries free) and dtype."""
    if not isinstance(value, torch.Tensor):
        _fail(f"{what} should be a torch.Tensor, got {type_name(value)}", value, inputs, diagnose_with, "")
    if shape is not None:
        ok = len(value.shape) == len(shape) and all(s is None or s == v for s, v in zip(shape, value.shape))
        if not ok:
            want = "(" + ", ".join("*" if s is None else str(s) for s in shape) + ")"
            _fail(f"{what} has shape {tuple(value.shape)}, expected {want}", value, inputs, diagnose_with, "")
    if dtype is not None and value.dtype != dtype:
        _fail(f"{what} has dtype {value.dtype}, expected {dtype}", value, inputs, diagnose_with, "")
    return value


def expect_tuple(value, n: int, *, what: str, inputs: dict | None = None):
    """Raise ``CheckFailed`` unless ``value`` is a tuple (or list) of ``n`` values."""
    if not isinstance(value, (tuple, list)) or isinstance(value, RemoteObject):
        raise CheckFailed(f"{what} should be a tuple of {n} values, got {type_name(value)}", inputs=inputs)
    if len(value) != n:
        raise CheckFailed(f"{what} should be a tuple of {n} values, got {len(value)} values", inputs=inputs)
    return value


def expect_close(actual, expected: torch.Tensor, *, what: str, atol: float = 1e-5, rtol: float = 1e-4,
                 inputs: dict | None = None, diagnose_with: Callable | None = None, hint: str = "") -> None:
    """Tensors of the same shape and dtype whose values agree to ``atol + rtol*|expected|``."""
    expect_tensor(actual, what=what, shape=tuple(expected.shape), dtype=expected.dtype, inputs=inputs,
                  diagnose_with=diagnose_with)
    a, e = actual.detach().double(), expected.detach().double()
    if torch.isnan(a).any() and not torch.isnan(e).any():
        where = torch.isnan(a).nonzero()[0].tolist()
        _fail(f"{what} contains NaN (first at index {where})", actual, inputs, diagnose_with, hint)
    if torch.allclose(a, e, atol=atol, rtol=rtol, equal_nan=True):
        return
    both_finite = torch.isfinite(a) & torch.isfinite(e)
    diff = (a - e).abs().where(both_finite, torch.zeros_like(a))
    bad = ~torch.isclose(a, e, atol=atol, rtol=rtol, equal_nan=True)
    idx = bad.nonzero()[0].tolist()
    shown, wanted = distinct(a[tuple(idx)].item(), e[tuple(idx)].item())
    # a variant explains the answer only as closely as the check demands (a float64 check: to 1e-10)
    tol = (max(min(atol, 1e-5), 1e-12), min(rtol, 1e-4))
    _fail(f"{what} is wrong at {int(bad.sum())} of {bad.numel()} entries: e.g. index {idx} is "
          f"{shown}, expected {wanted} "
          f"(max abs error {diff.max().item():.3g}, tolerance atol={atol:g}, rtol={rtol:g})",
          actual, inputs, diagnose_with, hint, tol)


def expect_float64_close(actual, expected: torch.Tensor, *, what: str, own_float32=None, atol: float = 1e-10,
                         rtol: float = 1e-9, inputs: dict | None = None, diagnose_with: Callable | None = None,
                         hint: str = "") -> None:
    """A check of float64 *precision* alone: ``actual`` is float64 and agrees with ``expected`` to ``atol``/``rtol``.

    An answer that is wrong at float32 tolerance too is a mistake in the values, which the value checks
    charge: it passes here when it agrees with ``own_float32``, the submission's answer to the same input
    in float32 (so one mistake costs its points once, and a float64-only difference is still caught).
    """
    expect_tensor(actual, what=what, shape=tuple(expected.shape), dtype=torch.float64, inputs=inputs,
                  diagnose_with=diagnose_with)
    a, e = actual.detach(), expected.detach().double()
    if (own_float32 is not None and not torch.allclose(a, e, atol=1e-5, rtol=1e-4, equal_nan=True)
            and isinstance(own_float32, torch.Tensor) and own_float32.shape == a.shape
            and torch.allclose(a, own_float32.detach().double(), atol=1e-4, rtol=1e-3, equal_nan=True)):
        return
    expect_close(actual, expected, what=what, atol=atol, rtol=rtol, inputs=inputs, diagnose_with=diagnose_with,
                 hint=hint)


def expect_equal(actual, expected, *, what: str, inputs: dict | None = None,
                 diagnose_with: Callable | None = None, hint: str = "") -> None:
    """Exact equality: tensors (same shape, dtype and values) or plain values."""
    if isinstance(expected, torch.Tensor):
        expect_tensor(actual, what=what, shape=tuple(expected.shape), dtype=expected.dtype, inputs=inputs,
                      diagnose_with=diagnose_with)
        if torch.equal(actual, expected):
            return
        bad = (actual != expected)
        idx = bad.nonzero()[0].tolist()
        _fail(f"{what} differs at {int(bad.sum())} of {bad.numel()} entries: e.g. index {idx} is "
              f"{actual[tuple(idx)].item()}, expected {expected[tuple(idx)].item()}",
              actual, inputs, diagnose_with, hint)
    elif type(actual) is not type(expected) or actual != expected:
        _fail(f"{what} is {describe(actual)}, expected {describe(expected)}", actual, inputs, diagnose_with, hint)


def greedy_tie_hint(logits: torch.Tensor, chosen) -> str:
    """A hint for a greedy choice that differs from ``argmax`` only by breaking a tie at the maximum."""
    if not isinstance(chosen, torch.Tensor) or chosen.shape != logits.shape[:-1] or chosen.dtype != torch.long:
        return ""
    best = logits.max(-1).values
    picked = logits.gather(-1, chosen.clamp(0, logits.shape[-1] - 1).unsqueeze(-1)).squeeze(-1)
    wrong = (chosen != logits.argmax(-1)) & (picked == best)
    if not wrong.any():
        return ""
    row = wrong.nonzero()[0].tolist()
    tied = (logits[tuple(row)] == best[tuple(row)]).nonzero().flatten().tolist()
    return (f"the logits tie at their maximum (row {row}: tokens {tied}); greedy decoding takes the lowest id "
            f"among equal maxima, as torch.argmax does (torch.topk or sorting may return another)")


def _fail(problem, actual, inputs, diagnose_with, hint, tol=(1e-5, 1e-4)):
    topic = current_topic.get()

    def later():
        token = current_topic.set(topic)
        try:
            found = diagnose(diagnose_with, actual, atol=tol[0], rtol=tol[1]) if diagnose_with is not None else []
        finally:
            current_topic.reset(token)
        return found or ([hint] if hint else [])

    raise CheckFailed(problem, inputs=inputs, diagnosis=later)


def expect_raises(call: Callable, exc_type: str | tuple, *, what: str, inputs: dict | None = None,
                  diagnose_with: Callable | None = None) -> None:
    """``call()`` must raise in the submission with an exception of (one of) the named type(s)."""
    names = (exc_type,) if isinstance(exc_type, str) else tuple(exc_type)
    try:
        result = call()
    except SubmissionError as err:
        if err.kind != "raised":
            raise  # a hang or a crash is reported as such (an unfinished stub never reaches here)
        if err.exc_type in names:
            return
        raise CheckFailed(f"{what} should raise {' or '.join(names)}, but raised {err.message}",
                          inputs=inputs) from None
    _fail(f"{what} should raise {' or '.join(names)}, but returned {describe(result)}", result, inputs,
          diagnose_with, "")


class diagnosing:
    """Context manager: if the submission raises inside, name the variants that raise the same way.

    ``with diagnosing(lambda m: m.f(x)): sub.call("f", x)`` -- a variant "matches" when it raises an
    exception of the same type with the same message on the same input. With ``inputs={...}`` the
    failure becomes a :class:`CheckFailed` that also shows the input the code raised on (a property
    check's input is otherwise invisible to the student); ``compute`` may then be ``None``.
    """

    def __init__(self, compute: Callable | None = None, *, inputs: dict | None = None):
        self.compute = compute
        self.inputs = inputs

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        if isinstance(exc, SubmissionError) and exc.kind == "raised" and exc.diagnosis is None:
            topic, compute = current_topic.get(), self.compute

            def later():
                if compute is None:
                    return []
                token = current_topic.set(topic)
                try:
                    return diagnose_exception(compute, exc)
                finally:
                    current_topic.reset(token)

            if self.inputs is not None:
                raise CheckFailed(raised_problem(exc.message, exc.traceback), inputs=self.inputs,
                                  diagnosis=later) from None
            exc.diagnosis = Diagnosis(later)  # runs once, when the feedback is written
        return False


def shows_input(inputs: dict) -> diagnosing:
    """``with shows_input({...}): sub.call(...)``: if the code raises, the feedback shows that input."""
    return diagnosing(None, inputs=inputs)


def diagnose_exception(compute: Callable, err: SubmissionError) -> list[str]:
    """The mistakes of the current topic's variants that raise exactly ``err`` (type and message) when
    ``compute(variant_module)`` runs; ``[]`` when none or more than ``MAX_NAMED`` do."""
    from .variants import load_variants

    topic = current_topic.get()
    found = []
    for variant in load_variants(topic) if topic else []:
        try:
            with torch.no_grad():
                compute(variant.module())
        except Exception as exc:  # noqa: BLE001
            if f"{type(exc).__name__}: {str(exc)[:2000]}" == err.message:
                found.append(variant.mistake)
    return found if len(found) <= MAX_NAMED else []
