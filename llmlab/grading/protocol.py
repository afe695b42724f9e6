"""The grading protocol: what the caller, the grading session and the graders tell each other.

Everything that crosses the boundary between the caller (``llmlab grade``, ``grade-class``, ``watch``,
nbgrader's ``grade_cell``: process 1) and the grading session (pytest with :mod:`.plugin`: process 2) is
defined here, and nowhere else:

* :class:`SessionSpec` (with :class:`SubmissionSpec`): what to grade, written by :mod:`.runner` to
  ``<workdir>/spec.json`` and read by the plugin;
* :class:`CheckRecord`: one check's result. The plugin streams each finished submission's records back,
  one JSON line per submission (:func:`append_result`, then :func:`end_results`), to the spec's ``out``
  file; the runner reads them as they arrive (:class:`ResultReader`) and hands each submission's result
  to its caller at once;
* :class:`Outcome`: how a check ended (passed, failed, not implemented, missing, error, over budget),
  and the ``status`` string each outcome is reported as (``passed``, ``failed``, ``error``);
* the verdict (:func:`verdict`): a check's exception turned into its outcome, the student's feedback
  and the instructor's internal detail; "not implemented" is recognised by :func:`unfinished` alone;
* the feedback's composition (:func:`compose_feedback`: the one place that writes "Likely mistake: ..."),
  and :class:`Diagnosis`, the lazily computed mistakes a failure matches.

This module imports nothing heavy (no torch, no pytest): the runner and the worker proxy use it too.
"""
from __future__ import annotations

import enum
import json
import os
import traceback as _traceback
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Callable, Iterable

# ---------------------------------------------------------------------------------------------
# Outcomes
# ---------------------------------------------------------------------------------------------


class Outcome(enum.Enum):
    """How a check ended. Only :attr:`status` (``passed``, ``failed`` or ``error``) is reported: every
    outcome but ``PASSED`` and ``ERROR`` is a failed check that scores 0."""

    PASSED = "passed"
    FAILED = "failed"  # a wrong answer, or the code raised, hung, crashed, printed too much
    NOT_IMPLEMENTED = "not implemented"  # an unfinished stub: NotImplementedError("task <topic>.<f>: ...")
    MISSING = "missing"  # the module (``<topic>.py``) or the function the check needs is not there
    ERROR = "error"  # the grader itself failed: not a verdict on the submission (detail for the staff)
    OVER_BUDGET = "over budget"  # the topic's budget of CPU seconds ran out before this check

    @property
    def status(self) -> str:
        """The status a record and every report show: ``passed``, ``error``, else ``failed``."""
        if self in (Outcome.PASSED, Outcome.ERROR):
            return self.value
        return "failed"


# The name of the worker's exception for a function the submission does not define (as it crosses).
MISSING_DEFINITION = "MissingDefinition"


def unfinished(exc_type: str, message: str) -> Outcome | None:
    """Whether an exception the submission raised (its type's name and ``"<Type>: <text>"`` message, as
    they cross from the worker) means the function is not there yet: ``Outcome.NOT_IMPLEMENTED`` for a
    stub's ``NotImplementedError("task <topic>.<function>: ...")``, ``Outcome.MISSING`` for a function
    the module lacks, None for a genuine exception. The one place that recognises an unfinished stub."""
    if exc_type == MISSING_DEFINITION:
        return Outcome.MISSING
    if exc_type == "NotImplementedError" and ": task " in message:
        return Outcome.NOT_IMPLEMENTED
    return None


class MissingTopic(Exception):
    """The submission has no ``<topic>.py``: each of the topic's checks fails with this message."""


# ---------------------------------------------------------------------------------------------
# Feedback and diagnosis
# ---------------------------------------------------------------------------------------------
LIKELY_MISTAKE = "Likely mistake: "
SMALLEST_INPUT = "Smallest failing input found:"
INTERNAL_ERROR = "The grader could not check this (an internal error, reported to the instructor)."


class Diagnosis:
    """The mistakes (the known buggy variants' texts) that a failure matches, found lazily: ``compute``
    (a callable returning a list, or a list) runs at most once, when :attr:`mistakes` is first read, that
    is when the feedback is written (hypothesis raises many failures while it shrinks; only the last is
    shown)."""

    def __init__(self, compute: Callable[[], list[str]] | list[str] | None = None):
        self._compute = compute
        self._found: list[str] | None = None

    @property
    def mistakes(self) -> list[str]:
        """The mistakes' texts (``[]`` when none matches)."""
        if self._found is None:
            compute = self._compute
            self._found = list((compute() if callable(compute) else compute) or [])
        return self._found


def likely_mistake(mistakes: Iterable[str]) -> str:
    """The line that names a diagnosis: ``Likely mistake: a / b``."""
    return LIKELY_MISTAKE + " / ".join(mistakes)


def compose_feedback(problem: str, mistakes: Iterable[str] = (), inputs: Iterable[tuple[str, str]] = ()) -> str:
    """The student's text of a failed check: the problem, then ``Likely mistake: ...`` when ``mistakes``
    names any, then the smallest failing input (``inputs``: (name, description) pairs), one per line."""
    lines = [problem]
    mistakes = list(mistakes)
    if mistakes:
        lines.append(likely_mistake(mistakes))
    inputs = list(inputs)
    if inputs:
        lines.append(SMALLEST_INPUT)
        lines += [f"  {name} = {text}" for name, text in inputs]
    return "\n".join(lines)


def raised_problem(message: str, traceback: str = "") -> str:
    """The problem of a check whose call raised in the submission: ``Your code raised <Type>: <text>``
    and the student-only traceback, if any."""
    text = f"Your code raised {message}"
    if traceback.strip():
        text += "\n" + traceback.rstrip()
    return text


@dataclass
class Verdict:
    """A check's end: its :class:`Outcome`, the student's ``feedback`` and, for the instructor only, the
    ``internal`` detail (the grader's traceback when the grader itself failed)."""
    outcome: Outcome
    feedback: str = ""
    internal: str = ""


def _find(exc):
    """The verdict-bearing exception inside ``exc`` (hypothesis may wrap it in a group)."""
    from .checks import CheckFailed
    from .remote import SubmissionError, Unfinished

    if isinstance(exc, (CheckFailed, SubmissionError, MissingTopic)):
        return exc
    if isinstance(exc, Unfinished):
        return exc.error
    for inner in getattr(exc, "exceptions", ()) or ():
        found = _find(inner)
        if found is not None:
            return found
    cause = exc.__cause__ or exc.__context__
    if cause is not None and cause is not exc:
        return _find(cause)
    return None


def verdict(exc: BaseException | None) -> Verdict:
    """The verdict on a check that raised ``exc`` (None: it failed without an exception, an error).

    A :class:`~.checks.CheckFailed` is a wrong answer (its own feedback); :class:`MissingTopic` and a
    missing function are ``MISSING``; an unfinished stub is ``NOT_IMPLEMENTED``; the submission's own
    exception is ``Your code raised ...`` with its traceback and diagnosis; a hang, crash or exhausted
    budget says so; anything else is the grader's own failure (``ERROR``)."""
    from .checks import CheckFailed
    from .remote import SubmissionError

    if exc is None:
        return Verdict(Outcome.ERROR)
    found = _find(exc)
    if isinstance(found, CheckFailed):
        return Verdict(Outcome.FAILED, found.feedback())
    if isinstance(found, MissingTopic):
        return Verdict(Outcome.MISSING, str(found))
    if isinstance(found, SubmissionError):
        if found.kind == "raised":
            kind = unfinished(found.exc_type, found.message)
            text = found.message.split(": ", 1)[-1]
            if kind is Outcome.MISSING:
                return Verdict(kind, text + ": this check scores 0")
            if kind is Outcome.NOT_IMPLEMENTED:
                return Verdict(kind, f"Not implemented yet ({text})")
            mistakes = found.diagnosis.mistakes if found.diagnosis is not None else []
            return Verdict(Outcome.FAILED, compose_feedback(raised_problem(found.message, found.traceback), mistakes))
        outcome = Outcome.OVER_BUDGET if found.kind == "budget" else Outcome.FAILED
        return Verdict(outcome, found.message[0].upper() + found.message[1:])
    detail = "".join(_traceback.format_exception(type(exc), exc, exc.__traceback__))
    return Verdict(Outcome.ERROR, INTERNAL_ERROR, detail)


# ---------------------------------------------------------------------------------------------
# The check record
# ---------------------------------------------------------------------------------------------
@dataclass
class CheckRecord:
    """One check's result, as the grading session reports it (feedback in English; the runner's results
    may carry a translated copy). Its dict (:meth:`to_dict`, the fields in this order) is what the
    results files hold (``grade-class``'s ``<student>.records.json``, ``<student>.json``).

    ``record["feedback"]`` and ``record.get("printed", "")`` read a field too, as the records did when
    they were plain dicts."""
    submission: str
    topic: str
    check: str
    task: str = ""
    max_points: float = 0.0
    points: float = 0.0
    status: str = "failed"  # Outcome.status: passed, failed or error
    feedback: str = ""  # for the student
    printed: str = ""  # what the submission printed in the check (kept only when it did not pass)
    internal: str = ""  # for the instructor: the grader's own traceback (status error)
    visibility: str = "visible"
    seconds: float = 0.0

    @classmethod
    def graded(cls, *, submission: str, topic: str, check: str, task: str, points: float, visibility: str,
               verdict: Verdict, printed: str, seconds: float) -> "CheckRecord":
        """The record of a check worth ``points`` that ended with ``verdict``: full points when it passed,
        else 0 and what the submission printed."""
        passed = verdict.outcome is Outcome.PASSED
        return cls(submission=submission, topic=topic, check=check, task=task, max_points=points,
                   points=points if passed else 0.0, status=verdict.outcome.status, feedback=verdict.feedback,
                   printed="" if passed else printed, internal=verdict.internal, visibility=visibility,
                   seconds=seconds)

    def to_dict(self) -> dict:
        """Plain data for JSON: every field, in order."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "CheckRecord":
        """The record of :meth:`to_dict`'s dict (an unknown key is ignored)."""
        return cls(**{f.name: data[f.name] for f in fields(cls) if f.name in data})

    def __getitem__(self, key: str):
        if key not in _RECORD_FIELDS:
            raise KeyError(key)
        return getattr(self, key)

    def get(self, key: str, default=None):
        """The field ``key``, or ``default`` when there is no such field (dict-style reading)."""
        return getattr(self, key) if key in _RECORD_FIELDS else default


_RECORD_FIELDS = frozenset(f.name for f in fields(CheckRecord))


def as_record(record: CheckRecord | dict) -> CheckRecord:
    """``record`` as a :class:`CheckRecord` (a dict is read with :meth:`CheckRecord.from_dict`)."""
    return record if isinstance(record, CheckRecord) else CheckRecord.from_dict(record)


# ---------------------------------------------------------------------------------------------
# The session spec (process 1 -> 2)
# ---------------------------------------------------------------------------------------------
@dataclass
class SubmissionSpec:
    """One submission of a session: its ``name``, the prepared folder ``dir`` of ``<topic>.py`` modules,
    and whether it is ``trusted`` (the kit's own code: run in the session, no worker, no limits)."""
    name: str
    dir: str
    trusted: bool = False

    def to_dict(self) -> dict:
        """Plain data for JSON."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "SubmissionSpec":
        """The submission of :meth:`to_dict`'s dict."""
        return cls(name=data["name"], dir=data["dir"], trusted=bool(data.get("trusted", False)))


@dataclass
class SessionSpec:
    """What one grading session grades: the ``submissions`` in order, where their results go (``out``),
    the workers' ``limits`` (``asdict`` of :class:`~.remote.Limits`), the folders no worker may read
    (``protected``) and hypothesis' examples per check (``max_examples``; None: the profile's)."""
    submissions: list[SubmissionSpec]
    out: str
    limits: dict = field(default_factory=dict)
    protected: list[str] = field(default_factory=list)
    max_examples: int | None = None

    def to_dict(self) -> dict:
        """Plain data for JSON."""
        return {"submissions": [s.to_dict() for s in self.submissions], "out": self.out, "limits": self.limits,
                "protected": self.protected, "max_examples": self.max_examples}

    @classmethod
    def from_dict(cls, data: dict) -> "SessionSpec":
        """The spec of :meth:`to_dict`'s dict."""
        return cls(submissions=[SubmissionSpec.from_dict(s) for s in data["submissions"]], out=data.get("out", ""),
                   limits=dict(data.get("limits") or {}), protected=list(data.get("protected") or []),
                   max_examples=data.get("max_examples"))

    def write(self, path: str | Path) -> None:
        """Write the spec as JSON to ``path``."""
        Path(path).write_text(json.dumps(self.to_dict()))

    @classmethod
    def read(cls, path: str | Path) -> "SessionSpec":
        """The spec written to ``path`` by :meth:`write`."""
        return cls.from_dict(json.loads(Path(path).read_text()))


# ---------------------------------------------------------------------------------------------
# The results stream (process 2 -> 1)
# ---------------------------------------------------------------------------------------------
def _append_line(path: str | Path, data: dict) -> None:
    line = (json.dumps(data) + "\n").encode()
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    try:
        os.write(fd, line)  # one write: a reader sees the whole line or none of it
    finally:
        os.close(fd)


def append_result(path: str | Path, submission: str, records: list[CheckRecord]) -> None:
    """Report one finished submission: a line ``{"submission": name, "records": [...]}`` at the end of
    ``path``."""
    _append_line(path, {"submission": submission, "records": [r.to_dict() for r in records]})


def end_results(path: str | Path, unfinished: dict[str, list[CheckRecord]] | None = None) -> None:
    """Mark the session's results complete: the line ``{"end": true, "unfinished": {name: [...]}}``, with the
    records of the submissions the session did not finish (it was interrupted; or it ran none of their
    checks). A stream without it comes from a session that did not finish."""
    _append_line(path, {"end": True, "unfinished": {name: [r.to_dict() for r in records]
                                                    for name, records in (unfinished or {}).items()}})


class ResultReader:
    """Reads the results stream at ``path`` while the session writes it: each :meth:`read` returns the
    submissions finished since the last one, as ``(name, records)``. Once the end mark is read, :attr:`ended`
    is true and :attr:`unfinished` holds the records of the submissions the session did not finish."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.offset = 0
        self.ended = False
        self.unfinished: dict[str, list[CheckRecord]] = {}

    def read(self) -> list[tuple[str, list[CheckRecord]]]:
        """The submissions whose line is complete and not yet read; sets :attr:`ended` at the end mark."""
        try:
            with open(self.path, "rb") as f:
                f.seek(self.offset)
                data = f.read()
        except FileNotFoundError:
            return []
        complete = data[:data.rfind(b"\n") + 1]
        self.offset += len(complete)
        found = []
        for line in complete.decode().splitlines():
            item = json.loads(line)
            if item.get("end"):
                self.ended = True
                self.unfinished = {name: [CheckRecord.from_dict(r) for r in records]
                                   for name, records in item.get("unfinished", {}).items()}
            else:
                found.append((item["submission"], [CheckRecord.from_dict(r) for r in item["records"]]))
        return found
