"""Feedback names one mistake, shows the failing input, and prints numbers that differ.

Unit tests of :mod:`llmlab.grading.checks` (no grading session): the diagnosis is confirmed on every
earlier failure of the same check, never lists more than ``MAX_NAMED`` mistakes, a submission that raises
shows its input, close numbers are printed with enough digits, and a greedy tie gets a hint.
"""
from __future__ import annotations

import pytest
import torch

from llmlab.grading import checks
from llmlab.grading.checks import (CheckFailed, current_topic, diagnosing, distinct, expect_close, expect_float64_close,
                                   greedy_tie_hint, shows_input)
from llmlab.grading.remote import SubmissionError


def _failure(names):
    return CheckFailed("wrong", diagnosis=lambda: list(names))  # one grader line for every call


def test_a_mistake_is_named_only_if_it_explains_every_failure_of_the_check():
    failures = [_failure(["a", "b", "c"]), _failure(["c", "a"]), _failure(["a", "b"])]
    assert failures[-1].diagnosis == ["a"]
    assert "Likely mistake: a\n" in failures[-1].feedback() + "\n"


def test_more_than_max_named_mistakes_name_none():
    many = [f"m{i}" for i in range(checks.MAX_NAMED + 1)]
    assert _failure(many).diagnosis == []
    assert "Likely mistake" not in _failure(many).feedback()
    assert _failure(many[:checks.MAX_NAMED]).diagnosis == many[:checks.MAX_NAMED]


def test_failures_of_another_check_are_not_compared(monkeypatch):
    _failure(["x"])
    monkeypatch.setenv("PYTEST_CURRENT_TEST", "graders/test_other.py::test_other[s] (call)")
    assert _failure(["y"]).diagnosis == ["y"]


def test_failures_at_another_grader_line_are_not_compared():
    first = CheckFailed("wrong", diagnosis=lambda: ["x"])
    second = CheckFailed("wrong", diagnosis=lambda: ["y"])
    assert (first.diagnosis, second.diagnosis) == (["x"], ["y"])


class _Variant:
    """A stand-in buggy variant: ``module().f(x)`` computes ``fn(x)``."""

    def __init__(self, mistake, fn):
        self.mistake, self._fn = mistake, fn

    def module(self):
        return type("M", (), {"f": staticmethod(self._fn)})


def test_expect_close_diagnosis_is_confirmed_on_the_earlier_inputs(monkeypatch):
    # the code computes abs; on the minimal input x = 1 "square" gives the same, on the earlier x = -2 only
    # "neg" does: only "abs" explains both failures
    fake = [_Variant("abs", torch.abs), _Variant("square", torch.square), _Variant("neg", torch.neg)]
    monkeypatch.setattr("llmlab.grading.variants.load_variants", lambda topic: fake)
    token = current_topic.set("fake")
    try:
        seen = []
        for x in (torch.tensor([-2.0]), torch.tensor([1.0])):
            try:
                expect_close(torch.abs(x), x - 10, what="f(x)", diagnose_with=lambda m, x=x: m.f(x))
            except CheckFailed as failure:
                seen.append(failure)
        assert checks.diagnose(lambda m: m.f(torch.tensor([1.0])), torch.tensor([1.0])) == ["abs", "square"]
        assert seen[-1].diagnosis == ["abs"]
        assert "Likely mistake: abs" in seen[-1].feedback()
    finally:
        current_topic.reset(token)


def test_close_numbers_are_printed_with_digits_that_differ():
    assert distinct(1.330684, 1.3306841) == ("1.330684", "1.3306841")
    assert distinct(0.5, 0.25) == ("0.5", "0.25")
    with pytest.raises(CheckFailed) as failed:
        expect_close(torch.tensor([1.33068], dtype=torch.float64),
                     torch.tensor([1.33068 + 1.22e-7], dtype=torch.float64), what="loss", atol=1e-10, rtol=0)
    a, b = distinct(1.33068, 1.33068 + 1.22e-7)
    assert a != b and f"is {a}, expected {b}" in failed.value.problem


def _raising():
    err = SubmissionError("raised", "ZeroDivisionError: division by zero", "  File \"lr.py\", line 3")
    err.exc_type = "ZeroDivisionError"
    raise err


def test_a_submission_that_raises_shows_the_failing_input():
    with pytest.raises(CheckFailed) as failed:
        with shows_input({"total_steps": 0}):
            _raising()
    text = failed.value.feedback()
    assert "Your code raised ZeroDivisionError: division by zero" in text
    assert "total_steps = 0" in text and "lr.py" in text


def test_diagnosing_without_inputs_keeps_the_error():
    with pytest.raises(SubmissionError) as raised:
        with diagnosing(lambda m: None):
            _raising()
    assert raised.value.diagnosis is not None  # the mistakes are found when the feedback is written


def test_greedy_tie_gets_a_hint():
    logits = torch.tensor([[2.0, 2.0, 1.0], [0.0, 1.0, 3.0]])
    assert "tie" in greedy_tie_hint(logits, torch.tensor([1, 2]))
    assert "[0, 1]" in greedy_tie_hint(logits, torch.tensor([1, 2]))
    assert greedy_tie_hint(logits, torch.tensor([0, 2])) == ""  # the argmax: nothing to explain
    assert greedy_tie_hint(logits, torch.tensor([2, 2])) == ""  # not a tie: a plain mistake


def test_float64_precision_is_judged_apart_from_the_values():
    expected = torch.tensor([1.0, 2.0], dtype=torch.float64) / 3
    rounded = expected.float().double()  # a float32 step on the way: off by ~1e-8
    with pytest.raises(CheckFailed):
        expect_float64_close(rounded, expected, what="y", own_float32=expected.float())
    wrong = expected + 1  # a mistake in the values, the same in float32: other checks charge it
    expect_float64_close(wrong, expected, what="y", own_float32=wrong.float())
    with pytest.raises(CheckFailed):  # ... but not when float64 alone is off
        expect_float64_close(wrong, expected, what="y", own_float32=expected.float())
    with pytest.raises(CheckFailed, match="dtype"):
        expect_float64_close(expected.float(), expected, what="y", own_float32=expected.float())


def test_a_diagnosis_computed_on_the_spot_is_left_as_it_is():
    first = [_failure(["x"]) for _ in range(2)][0]
    eager = [CheckFailed("wrong", diagnosis=names) for names in (["y"], ["x", "z"])]
    assert eager[-1].diagnosis == ["x", "z"] and first.diagnosis == ["x"]


def test_a_variant_that_modifies_its_input_does_not_spoil_the_next(monkeypatch):
    fake = [_Variant("in place", lambda x: x.mul_(2)), _Variant("abs", torch.abs)]
    monkeypatch.setattr("llmlab.grading.variants.load_variants", lambda topic: fake)
    token = current_topic.set("fake")
    try:
        x = torch.tensor([-1.0, 2.0])
        assert checks.diagnose(lambda m: m.f(x), torch.tensor([1.0, 2.0])) == ["abs"]
        assert x.tolist() == [-1.0, 2.0]
    finally:
        current_topic.reset(token)


def test_an_earlier_failure_confirms_the_named_mistakes_without_running_every_variant(monkeypatch):
    # the minimal input x = 1 matches "abs" and "square"; confirming on the earlier x = -2 needs only those
    # two variants (it names "abs"), and on x = 3, which neither explains, all of them (only "shift" does)
    runs = []

    def counted(name, fn):
        return _Variant(name, lambda x: runs.append(name) or fn(x))

    fake = [counted("abs", torch.abs), counted("square", torch.square), counted("neg", torch.neg),
            counted("shift", lambda x: x + 2)]
    monkeypatch.setattr("llmlab.grading.variants.load_variants", lambda topic: fake)
    token = current_topic.set("fake")
    try:
        def failures(*earlier):
            seen = []
            for x in (*earlier, torch.tensor([1.0])):
                try:
                    expect_close(torch.abs(x) if x.item() != 3 else x + 2, x - 10, what="f(x)",
                                 diagnose_with=lambda m, x=x: m.f(x))
                except CheckFailed as failure:
                    seen.append(failure)
            return seen

        last = failures(torch.tensor([-2.0]))[-1]
        assert last.diagnosis == ["abs"]
        assert runs == ["abs", "square", "neg", "shift", "abs", "square"]  # 4 on the minimal input, then 2
        runs.clear()
        monkeypatch.setenv("PYTEST_CURRENT_TEST", "graders/test_fake.py::test_cube[s] (call)")
        last = failures(torch.tensor([3.0]))[-1]
        assert last.diagnosis == []  # "shift" explains x = 3 but not x = 1: nothing explains both
        assert runs[4:] == ["abs", "square", "neg", "shift"]
    finally:
        current_topic.reset(token)
