"""Grade submissions: prepare them, run the grading session, return their results.

The session runs in a separate Python process (``python -m pytest -p llmlab.grading.plugin``), so a
grading run leaves no state behind in the caller, and the caller can be a test, the CLI or a batch
job alike. Submissions themselves run in further worker processes (see :mod:`.remote`).
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

from .. import topics as topic_registry
from ..i18n import LangAction, translate_result
from ..paths import GRADERS, KIT_ROOT
from .notebook import extract_module
from .protocol import CheckRecord, ResultReader, SessionSpec, SubmissionSpec, as_record
from .remote import Limits

RESULTS_FILE = "results.jsonl"  # in the workdir: the session's results stream (see .protocol)


class GradingError(RuntimeError):
    """Grading itself could not run (not a verdict on the submission)."""


@dataclass
class TopicResult:
    """One topic's score: ``points`` of ``max_points`` and its check records (dicts are read as
    :class:`~.protocol.CheckRecord`)."""
    topic: str
    points: float = 0.0
    max_points: float = 0.0
    checks: list[CheckRecord] = field(default_factory=list)

    def __post_init__(self):
        self.checks = [as_record(c) for c in self.checks]


@dataclass
class SubmissionResult:
    """One submission's results: a :class:`TopicResult` per topic, and notes for the student.

    ``records`` are the check records as the grading session reported them, in English (``topics``'
    checks are the same records, their feedback in ``LLMLAB_LANG``'s language); they are what a results
    file keeps (``grade-class``'s ``<student>.records.json``)."""
    name: str
    topics: dict[str, TopicResult] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    records: list[CheckRecord] = field(default_factory=list)

    @property
    def points(self) -> float:
        """Points over all topics."""
        return sum(t.points for t in self.topics.values())

    @property
    def max_points(self) -> float:
        """Maximum points over all topics."""
        return sum(t.max_points for t in self.topics.values())

    def to_dict(self) -> dict:
        """Plain data: name, points, max_points, notes and each topic as a dict."""
        return {"name": self.name, "points": self.points, "max_points": self.max_points,
                "notes": self.notes, "topics": {k: asdict(v) for k, v in self.topics.items()}}


def add_limit_options(parser, *, budget_help: str | None = None) -> None:
    """The grading limits every grading command takes: ``--timeout`` and ``--memory-mb``, and, with
    ``budget_help`` (what one budget covers), ``--budget`` and ``--lang``."""
    parser.add_argument("--timeout", type=float, default=None, metavar="SECONDS",
                        help="CPU seconds one call into the submission may take "
                             "(default: each topic's own limit, as `llmlab topics` lists)")
    parser.add_argument("--memory-mb", type=int, default=3072, help="memory a submission may allocate")
    if budget_help:
        parser.add_argument("--budget", type=float, default=None, metavar="SECONDS", help=budget_help)
        parser.add_argument("--lang", choices=["en", "zh"], action=LangAction,
                            help="language of the feedback (sets LLMLAB_LANG; default: $LLMLAB_LANG, else en)")


def prepare(path: str | Path, topics: list[str], workdir: Path) -> tuple[Path, list[str]]:
    """A folder of ``<topic>.py`` modules for ``path`` (a folder, a module or a notebook).

    Returns the folder and notes for the student (what was found, what was extracted).
    """
    path = Path(path)
    notes: list[str] = []
    if not path.exists():
        raise GradingError(f"submission {path} does not exist")
    out = workdir / "modules"
    out.mkdir(parents=True, exist_ok=True)
    if path.is_dir():
        modules = [p for p in path.glob("*.py") if not p.name.startswith("test_")]
        if not modules:  # nbgrader layout: submitted/<student>/<assignment>/...
            modules = [p for p in path.glob("*/*.py") if not p.name.startswith("test_")]
        for py in modules:
            shutil.copyfile(py, out / py.name)
        notebooks = sorted(path.rglob("*.ipynb"))
    elif path.suffix == ".py":
        target = path.stem if path.stem in topics else (topics[0] if len(topics) == 1 else None)
        if target is None:
            raise GradingError(f"cannot tell which topic {path.name} is: name it <topic>.py or pass one --topic")
        shutil.copyfile(path, out / f"{target}.py")
        notebooks = []
    elif path.suffix == ".ipynb":
        notebooks = [path]
    else:
        raise GradingError(f"{path.name}: expected a folder, a .py module or an .ipynb notebook")
    for nb in notebooks:
        if ".ipynb_checkpoints" in nb.parts:
            continue
        covered = topic_registry.topics_of_notebook(nb.name)
        if not covered and path.suffix == ".ipynb" and len(topics) == 1:
            covered = topics
        for topic in covered:
            if not (out / f"{topic}.py").exists():
                try:
                    (out / f"{topic}.py").write_text(extract_module(nb))
                    notes.append(f"{topic}: graded from the definitions in {nb.name}")
                except (ValueError, OSError) as exc:
                    notes.append(f"{topic}: could not read {nb.name} ({exc})")
    return out, notes


def check_topics(topics: list[str] | None) -> list[str]:
    """``topics`` (every known topic when None or empty) as a list; raises :class:`GradingError`
    naming any unknown one."""
    available = topic_registry.topic_names()
    topics = list(topics or available)
    unknown = [t for t in topics if t not in available]
    if unknown:
        raise GradingError(f"unknown topic(s) {', '.join(unknown)}; known: {', '.join(available)}")
    return topics


def grade(submissions: dict[str, str | Path], topics: list[str] | None = None, *, trusted: bool = False,
          limits: Limits | None = None, workdir: str | Path | None = None,
          session_timeout: float | None = None, max_examples: int | None = None,
          protected: list[str | Path] = (), threads: int | None = None,
          on_result: Callable[[str, SubmissionResult], None] | None = None) -> dict[str, SubmissionResult]:
    """Grade each named submission on ``topics`` (default: every topic). Returns results by name.

    ``protected`` adds folders no worker may read (a whole class's submissions, its results).
    ``max_examples`` lowers hypothesis' examples per check (the kit's own tests of isolation use it;
    real grading keeps the profile's default). ``threads`` sets the grading session's torch threads for the
    references it computes (default 1: see :func:`session_env`).
    ``on_result(name, result)`` is called (in this thread) with each submission's result as soon as the
    session has graded it, while the others are still being graded; a session that breaks has handed over
    the submissions it finished before :class:`GradingError` is raised.
    """
    topics = check_topics(topics)
    own_tmp = workdir is None
    workdir = Path(workdir or tempfile.mkdtemp(prefix="llmlab-grade-"))
    try:
        notes = write_spec(workdir, submissions, topics, trusted=trusted, limits=limits, protected=protected,
                           max_examples=max_examples)
        results = Results(workdir, submissions, topics, notes, on_result)
        proc = subprocess.Popen([sys.executable, "-m", "pytest", *session_args(workdir, topics)], cwd=KIT_ROOT,
                                env=session_env(threads), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        output = _run_session(proc, session_timeout, results.poll)
        return results.finish(output)
    finally:
        if own_tmp:
            shutil.rmtree(workdir, ignore_errors=True)


def _run_session(proc: subprocess.Popen, timeout: float | None, poll: Callable[[], None]) -> str:
    """Wait for the session ``proc`` (``timeout`` seconds at most: then kill it and raise
    ``subprocess.TimeoutExpired``), calling ``poll`` every quarter second meanwhile; returns what it printed."""
    deadline = None if timeout is None else time.monotonic() + timeout
    try:
        while True:
            left = None if deadline is None else deadline - time.monotonic()
            try:
                out, err = proc.communicate(timeout=0.25 if left is None else max(0.0, min(0.25, left)))
                return out + err
            except subprocess.TimeoutExpired:
                if deadline is not None and time.monotonic() >= deadline:
                    raise subprocess.TimeoutExpired(proc.args, timeout) from None
                poll()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()


# The pieces of ``grade``, shared with the warm session of ``llmlab watch`` (which runs the same
# pytest arguments in a process that stays alive between gradings).

def write_spec(workdir: Path, submissions: dict[str, str | Path], topics: list[str], *, trusted: bool = False,
               limits: Limits | None = None, protected: list[str | Path] = (),
               max_examples: int | None = None) -> dict[str, list[str]]:
    """Prepare each submission under ``workdir`` and write the session's ``spec.json``; returns the notes."""
    spec_subs, notes = [], {}
    for n, (name, path) in enumerate(submissions.items()):
        directory, notes[name] = prepare(path, topics, workdir / f"s{n}")
        spec_subs.append(SubmissionSpec(name, str(directory), trusted))
    # Workers may read their own prepared folder only: not the originals, not each other's.
    protected = [str(workdir)] + [str(Path(p).resolve()) for p in [*submissions.values(), *protected]]
    SessionSpec(spec_subs, out=str(workdir / RESULTS_FILE), limits=asdict(limits or Limits()), protected=protected,
                max_examples=max_examples).write(workdir / "spec.json")
    return notes


def session_args(workdir: Path, topics: list[str]) -> list[str]:
    """pytest's arguments for the grading session of ``workdir/spec.json`` (run in ``KIT_ROOT``)."""
    files = [str(GRADERS / f"test_{t}.py") for t in topics]
    # no:unraisableexception: its clean-up runs gc.collect() five times (seconds with torch loaded) only
    # to turn unraisable exceptions into warnings, which no verdict reads
    return [*files, "-p", "_hypothesis_pytestplugin", "-p", "llmlab.grading.plugin", "--llmlab-spec",
            str(workdir / "spec.json"), "-q",
            "--no-header", "-p", "no:cacheprovider", "-p", "no:unraisableexception",
            "-c", str(Path(__file__).with_name("grading.ini")), "--rootdir", str(KIT_ROOT)]


def session_env(threads: int | None = None) -> dict[str, str]:
    """The grading session's environment: a fixed hash seed (deterministic), no bytecode files, and
    ``threads`` torch threads (default 1). The references a session computes are tiny: a second thread
    gains nothing on them, and its spinning takes CPU from the submission's worker (the session waits on
    it) and from whatever else shares the cores; on a busy machine every small operation then waits
    for a time slice (measured: a class of 11 submissions 1.5x slower with 2 threads than with 1)."""
    # plugins installed next to the kit (xdist, anyio, ...) are not loaded: a session needs hypothesis' only
    env = dict(os.environ, PYTHONDONTWRITEBYTECODE="1", PYTHONHASHSEED="0", PYTEST_DISABLE_PLUGIN_AUTOLOAD="1")
    env.update(OMP_NUM_THREADS=str(threads or 1), MKL_NUM_THREADS=str(threads or 1))
    return env


class Results:
    """The results of the session of ``workdir``, gathered as its results stream grows: each submission's
    :class:`SubmissionResult` goes to ``on_result`` once it is complete."""

    def __init__(self, workdir: Path, submissions: dict, topics: list[str], notes: dict[str, list[str]],
                 on_result: Callable[[str, SubmissionResult], None] | None = None):
        self.reader = ResultReader(workdir / RESULTS_FILE)
        self.names, self.topics, self.notes, self.on_result = list(submissions), topics, notes, on_result
        self.results: dict[str, SubmissionResult] = {}

    def poll(self) -> None:
        """Take in the submissions finished since the last call (and hand each to ``on_result``)."""
        for name, records in self.reader.read():
            if name in self.results or name not in self.notes:
                continue
            self.results[name] = result = from_records(name, self.topics, records, self.notes[name])
            if self.on_result is not None:
                self.on_result(name, result)

    def finish(self, output: str = "") -> dict[str, SubmissionResult]:
        """Every submission's result, in the order given; ``output`` (what the session printed) explains a
        session that did not finish (:class:`GradingError`)."""
        self.poll()
        if not self.reader.ended:
            raise GradingError("the grading session did not finish:\n" + output[-3000:])
        for name in self.names:  # not finished (the session was interrupted), or none of its checks ran
            if name not in self.results:
                records = self.reader.unfinished.get(name, [])
                self.results[name] = from_records(name, self.topics, records, self.notes[name])
        return {name: self.results[name] for name in self.names}


def read_results(workdir: Path, submissions: dict, topics: list[str], notes: dict[str, list[str]],
                 output: str = "") -> dict[str, SubmissionResult]:
    """The results of the finished session of ``workdir``; ``output`` (what it printed) explains a session
    that failed."""
    return Results(workdir, submissions, topics, notes).finish(output)


def from_records(name: str, topics: list[str], records: list[CheckRecord | dict],
                 notes: list[str] | None = None) -> SubmissionResult:
    """A :class:`SubmissionResult` for ``name`` from its check records: every topic of ``topics`` (0 of 0
    if no record), points summed, feedback translated to ``LLMLAB_LANG``'s language (``records`` kept
    in English)."""
    records = [as_record(r) for r in records]
    res = SubmissionResult(name, notes=list(notes or []), records=records)
    for topic in topics:
        res.topics[topic] = TopicResult(topic)
    for rec in records:
        t = res.topics.setdefault(rec.topic, TopicResult(rec.topic))
        t.checks.append(rec)
        t.points += rec.points
        t.max_points += rec.max_points
    return translate_result(res)  # records stay English; the feedback is written in LLMLAB_LANG's language
