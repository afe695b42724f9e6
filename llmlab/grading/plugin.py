"""The pytest plugin that turns ``graders/test_<topic>.py`` into a grading session.

Loaded by :mod:`llmlab.grading.runner` with ``-p llmlab.grading.plugin --llmlab-spec SPEC``. The spec
names the submissions; every grader test that takes the ``sub`` fixture runs once per submission.
Items are ordered submission by submission, so each submission has one live worker at a time.
Each outcome becomes a plain record (points, status, feedback for the student, and, only for the
instructor, the internal traceback when the grader itself failed).
"""
from __future__ import annotations

import importlib
import json
import sys
import time
import traceback
from pathlib import Path

import pytest

from ..paths import KIT_ROOT
from .checks import CheckFailed, current_topic
from . import remote
from .remote import Limits, LocalSubmission, Submission, SubmissionError, Unfinished

GRADING_PROFILE = "llmlab-grading"


class MissingTopic(Exception):
    """The submission has no ``<topic>.py``: each of the topic's checks fails with this message."""


def _without_local_constants() -> None:
    """Keep hypothesis from drawing constants it finds in the kit's own modules.

    hypothesis draws about one value in twenty from a pool of constants: its built-in ones, and the
    literals of every "local" module loaded in the process (here llmlab/, solutions/, graders'
    strategies and variants). Which of those are loaded depends on the topics graded and on which
    diagnoses ran for earlier submissions, so a student's examples (and, rarely, their score) would
    depend on who else was graded in the same session, and editing a number anywhere in the kit would
    move every topic's examples. Only the built-in constants are kept. (A private hook: hypothesis is
    pinned in pyproject.toml, and tests/test_determinism.py fails if the hook disappears.)"""
    from hypothesis.internal.conjecture import providers

    empty = providers.Constants()
    providers._get_local_constants = lambda: empty
    providers.CONSTANTS_CACHE.cache.clear()  # pools computed before, with the local constants in them


def _register_hypothesis_profile(max_examples: int = 25):
    from hypothesis import HealthCheck, Phase, settings

    _without_local_constants()

    # Derandomised and without an example database: the same submission gets the same score.
    settings.register_profile(GRADING_PROFILE, derandomize=True, database=None, deadline=None,
                              print_blob=False, max_examples=max_examples,
                              suppress_health_check=list(HealthCheck),
                              phases=(Phase.explicit, Phase.generate, Phase.shrink))
    settings.load_profile(GRADING_PROFILE)


class GradingSession:
    """The submissions of one grading run (``spec`` as written by :mod:`llmlab.grading.runner`), their
    live workers keyed by ``(submission, topic)``, and the check records gathered so far."""

    def __init__(self, spec: dict):
        self.spec = spec
        self.subs = {s["name"]: s for s in spec["submissions"]}
        self.order = [s["name"] for s in spec["submissions"]]
        self.limits = Limits(**spec.get("limits", {}))
        self.live: dict[tuple[str, str], object] = {}
        self.records: list[dict] = []
        self.remaining: dict[str, int] = {}

    def get(self, name: str, topic: str):
        """The live submission ``name`` for ``topic``, started on first use: a
        :class:`~llmlab.grading.remote.LocalSubmission` when trusted, else an isolated
        :class:`~llmlab.grading.remote.Submission`. Raises :class:`MissingTopic` if ``<topic>.py`` is absent."""
        key = (name, topic)
        if key not in self.live:
            info = self.subs[name]
            directory = Path(info["dir"])
            if not (directory / f"{topic}.py").exists():
                raise MissingTopic(f"no module {topic}.py in the submission: this topic scores 0")
            if info.get("trusted"):
                self.live[key] = LocalSubmission(name, topic, _import_trusted(name, directory, topic))
            else:
                self.live[key] = Submission(name, topic, str(directory), self.limits,
                                            protected=self.spec.get("protected", []))
        return self.live[key]

    def done_with(self, name: str):
        """Count one finished check of submission ``name``; after its last, close its workers and write its
        records (when the spec names a ``results_dir``)."""
        self.remaining[name] -= 1
        if self.remaining[name] == 0:
            for key in [k for k in self.live if k[0] == name]:
                self.live.pop(key).close()
            self._write_one(name)

    def _write_one(self, name: str):
        """With ``results_dir`` in the spec, each submission's records land as soon as it is graded
        (atomically), so a batch that is killed keeps everything finished so far."""
        folder = self.spec.get("results_dir")
        if not folder:
            return
        info = self.subs[name]
        data = {"name": name, "fingerprint": info.get("fingerprint", ""),
                "records": [r for r in self.records if r["submission"] == name]}
        target = Path(folder) / f"{info.get('file_stem', name)}.records.json"
        tmp = target.with_suffix(".tmp")
        tmp.write_text(json.dumps(data))
        tmp.replace(target)


def _import_trusted(name: str, directory: Path, topic: str):
    """Import a trusted submission (reference, variant, alternative) as its own package."""
    import types

    pkg_name = f"_llmlab_trusted_{abs(hash((name, str(directory)))):x}"
    if pkg_name not in sys.modules:
        pkg = types.ModuleType(pkg_name)
        pkg.__path__ = [str(directory)]
        sys.modules[pkg_name] = pkg
    return importlib.import_module(f"{pkg_name}.{topic}")


_SESSION: GradingSession | None = None


def pytest_addoption(parser):
    """Add ``--llmlab-spec`` (the JSON file naming the submissions to grade)."""
    parser.addoption("--llmlab-spec", default=None, help="JSON file naming the submissions to grade")


def pytest_configure(config):
    """Register the ``llmlab`` marker; with ``--llmlab-spec``, load the spec, the hypothesis profile and
    the grading session, and start the workers' forkserver when a submission is untrusted."""
    global _SESSION
    config.addinivalue_line("markers", "llmlab(task, points, visibility): a graded check")
    spec_path = config.getoption("--llmlab-spec")
    if spec_path:
        if str(KIT_ROOT) not in sys.path:
            sys.path.insert(0, str(KIT_ROOT))
        spec = json.loads(Path(spec_path).read_text())
        _register_hypothesis_profile(spec.get("max_examples") or 25)
        _SESSION = GradingSession(spec)
        # Start the forkserver now: its imports (torch; the model stack only when a graded topic can use
        # it) overlap with collecting the graders, instead of delaying the first check.
        topics = {Path(str(a).split("::")[0]).stem.removeprefix("test_") for a in config.args}
        remote.PRELOAD_MODELS = remote.needs_models(topics, [s["dir"] for s in spec["submissions"]])
        if not all(s.get("trusted") for s in spec["submissions"]):
            from multiprocessing import forkserver

            remote._context()
            forkserver.ensure_running()


def pytest_generate_tests(metafunc):
    """Parametrize every test that takes ``sub`` over the session's submissions, in spec order."""
    if _SESSION is not None and "sub" in metafunc.fixturenames:
        metafunc.parametrize("sub", _SESSION.order, indirect=True, ids=_SESSION.order)


def pytest_collection_modifyitems(session, config, items):
    """Keep only the graded tests, ordered by submission then by position, and count each
    submission's checks (for :meth:`GradingSession.done_with`)."""
    if _SESSION is None:
        return
    graded = [i for i in items if hasattr(i, "callspec") and "sub" in i.callspec.params]
    rank = {name: n for n, name in enumerate(_SESSION.order)}
    position = {id(item): n for n, item in enumerate(items)}
    graded.sort(key=lambda i: (rank[i.callspec.params["sub"]], position[id(i)]))
    items[:] = graded
    for item in graded:
        name = item.callspec.params["sub"]
        _SESSION.remaining[name] = _SESSION.remaining.get(name, 0) + 1


def topic_of(item) -> str:
    """The topic of a test item: its file name without ``test_`` (``test_attention.py`` -> ``attention``)."""
    return Path(str(item.fspath)).stem.removeprefix("test_")


@pytest.fixture
def sub(request):
    """Fixture: the submission under test for this item's topic (``request.param`` names it), its check
    state reset. Raises :class:`MissingTopic` when it lacks the topic's module."""
    topic = topic_of(request.node)
    current_topic.set(topic)
    submission = _SESSION.get(request.param, topic)
    submission.start_check()
    return submission


@pytest.fixture
def ref(request):
    """The reference solution of the topic under test (imported here, never in a worker)."""
    return importlib.import_module(f"solutions.{topic_of(request.node)}")


def _find(exc):
    """The verdict-bearing exception inside ``exc`` (hypothesis may wrap it in a group)."""
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


def feedback_for(exc) -> tuple[str, str, str]:
    """(status, feedback for the student, internal detail for the instructor)."""
    found = _find(exc)
    if isinstance(found, CheckFailed):
        return "failed", found.feedback(), ""
    if isinstance(found, MissingTopic):
        return "failed", str(found), ""
    if isinstance(found, SubmissionError):
        if found.kind == "raised" and found.exc_type == "MissingDefinition":
            return "failed", found.message.split(": ", 1)[-1] + ": this check scores 0", ""
        if found.kind == "raised" and found.exc_type == "NotImplementedError" and ": task " in found.message:
            return "failed", f"Not implemented yet ({found.message.split(': ', 1)[-1]})", ""
        if found.kind == "raised":
            text = f"Your code raised {found.message}"
            if found.traceback.strip():
                text += "\n" + found.traceback.rstrip()
            later = getattr(found, "diagnose_later", None)
            diagnosis = later() if later else []
            if diagnosis:
                text += "\nLikely mistake: " + " / ".join(diagnosis)
            return "failed", text, ""
        return "failed", found.message[0].upper() + found.message[1:], ""
    detail = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
    return "error", "The grader could not check this (an internal error, reported to the instructor).", detail


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """Turn each graded test's setup and call reports into one check record (status, points,
    feedback, printed output, seconds); at teardown, tell the session the check is done."""
    outcome = yield
    if _SESSION is None or not hasattr(item, "callspec") or "sub" not in item.callspec.params:
        return
    report = outcome.get_result()
    name = item.callspec.params["sub"]
    marker = item.get_closest_marker("llmlab")
    meta = marker.kwargs if marker else {}
    if report.when == "setup" and report.passed:
        item._llmlab_start = time.monotonic()
        return
    if report.when == "teardown":
        _SESSION.done_with(name)
        return
    if report.when == "setup" or report.when == "call":
        if report.passed:
            status, text, internal = "passed", "", ""
        else:
            status, text, internal = feedback_for(call.excinfo.value) if call.excinfo else ("error", "", "")
        live = _SESSION.live.get((name, topic_of(item)))
        printed = getattr(live, "output", "") if live is not None else ""
        points = float(meta.get("points", 1))
        _SESSION.records.append({
            "submission": name, "topic": topic_of(item), "check": item.originalname.removeprefix("test_"),
            "task": meta.get("task", ""), "max_points": points,
            "points": points if status == "passed" else 0.0, "status": status, "feedback": text,
            "printed": printed if status != "passed" else "", "internal": internal,
            "visibility": meta.get("visibility", "visible"),
            "seconds": round(time.monotonic() - getattr(item, "_llmlab_start", time.monotonic()), 3),
        })


def pytest_sessionfinish(session, exitstatus):
    """Close the live workers and write every record to the spec's ``out`` file, if any."""
    if _SESSION is None:
        return
    for live in _SESSION.live.values():
        live.close()
    out = _SESSION.spec.get("out")
    if out:
        Path(out).write_text(json.dumps({"records": _SESSION.records}, indent=1))
