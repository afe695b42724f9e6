"""The pytest plugin that turns ``graders/test_<topic>.py`` into a grading session.

Loaded by :mod:`llmlab.grading.runner` with ``-p llmlab.grading.plugin --llmlab-spec SPEC``. The spec
(:class:`~.protocol.SessionSpec`) names the submissions; every grader test that takes the ``sub`` fixture
runs once per submission. Items are ordered submission by submission, so each submission has one live
worker at a time, and is finished when the next item is another's: its workers close and its records
are reported at once. This module only adapts pytest: what a check's exception means
(:func:`~.protocol.verdict`), what a record holds (:class:`~.protocol.CheckRecord`) and how records travel
back (:func:`~.protocol.append_result`) are the protocol's. The session lives in ``config.stash``.
"""
from __future__ import annotations

import importlib
import sys
import time
from pathlib import Path

import pytest

from ..paths import KIT_ROOT
from . import remote
from .checks import current_topic
from .protocol import (CheckRecord, MissingTopic, Outcome, SessionSpec, Verdict, append_result, end_results,
                       verdict)
from .remote import Limits, LocalSubmission, Submission

GRADING_PROFILE = "llmlab-grading"


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
    """The submissions of one grading run (a :class:`~.protocol.SessionSpec`), their live workers keyed by
    ``(submission, topic)``, and each submission's check records until it is finished and reported."""

    def __init__(self, spec: SessionSpec):
        self.spec = spec
        self.subs = {s.name: s for s in spec.submissions}
        self.order = [s.name for s in spec.submissions]
        self.limits = Limits(**spec.limits)
        self.live: dict[tuple[str, str], object] = {}
        self.records: dict[str, list[CheckRecord]] = {name: [] for name in self.order}
        self.reported: set[str] = set()

    def get(self, name: str, topic: str):
        """The live submission ``name`` for ``topic``, started on first use: a
        :class:`~llmlab.grading.remote.LocalSubmission` when trusted, else an isolated
        :class:`~llmlab.grading.remote.Submission`. Raises :class:`MissingTopic` if ``<topic>.py`` is absent."""
        key = (name, topic)
        if key not in self.live:
            info = self.subs[name]
            directory = Path(info.dir)
            if not (directory / f"{topic}.py").exists():
                raise MissingTopic(f"no module {topic}.py in the submission: this topic scores 0")
            if info.trusted:
                self.live[key] = LocalSubmission(name, topic, _import_trusted(name, directory, topic))
            else:
                self.live[key] = Submission(name, topic, str(directory), self.limits, protected=self.spec.protected)
        return self.live[key]

    def output(self, name: str, topic: str) -> str:
        """What submission ``name`` printed in its latest call for ``topic`` (``""`` without a live one)."""
        live = self.live.get((name, topic))
        return getattr(live, "output", "") if live is not None else ""

    def finish(self, name: str):
        """Submission ``name`` is graded: close its workers and report its records to the caller (once)."""
        for key in [k for k in self.live if k[0] == name]:
            self.live.pop(key).close()
        if name not in self.reported:
            self.reported.add(name)
            append_result(self.spec.out, name, self.records[name])

    def close(self):
        """The session ends: close every worker and mark the results complete, with the records of the
        submissions it did not finish (an interrupted session; one whose checks were all left out)."""
        for live in self.live.values():
            live.close()
        self.live.clear()
        end_results(self.spec.out, {name: self.records[name] for name in self.order if name not in self.reported})


def _import_trusted(name: str, directory: Path, topic: str):
    """Import a trusted submission (reference, variant, alternative) as its own package."""
    import types

    pkg_name = f"_llmlab_trusted_{abs(hash((name, str(directory)))):x}"
    if pkg_name not in sys.modules:
        pkg = types.ModuleType(pkg_name)
        pkg.__path__ = [str(directory)]
        sys.modules[pkg_name] = pkg
    return importlib.import_module(f"{pkg_name}.{topic}")


SESSION = pytest.StashKey[GradingSession]()


def _session(config) -> GradingSession | None:
    return config.stash.get(SESSION, None)


def _graded(item) -> str | None:
    """The submission a graded test item runs on (None: not a graded item)."""
    callspec = getattr(item, "callspec", None)
    return callspec.params["sub"] if callspec is not None and "sub" in callspec.params else None


def pytest_addoption(parser):
    """Add ``--llmlab-spec`` (the JSON file naming the submissions to grade)."""
    parser.addoption("--llmlab-spec", default=None, help="JSON file naming the submissions to grade")


def pytest_configure(config):
    """Register the ``llmlab`` marker; with ``--llmlab-spec``, load the spec, the hypothesis profile and
    the grading session, and start the workers' forkserver when a submission is untrusted."""
    config.addinivalue_line("markers", "llmlab(task, points, visibility): a graded check")
    spec_path = config.getoption("--llmlab-spec")
    if spec_path:
        if str(KIT_ROOT) not in sys.path:
            sys.path.insert(0, str(KIT_ROOT))
        spec = SessionSpec.read(spec_path)
        _register_hypothesis_profile(spec.max_examples or 25)
        config.stash[SESSION] = GradingSession(spec)
        # Start the forkserver now: its imports (torch; the model stack only when a graded topic can use
        # it) overlap with collecting the graders, instead of delaying the first check.
        topics = {Path(str(a).split("::")[0]).stem.removeprefix("test_") for a in config.args}
        remote.PRELOAD_MODELS = remote.needs_models(topics, [s.dir for s in spec.submissions])
        if not all(s.trusted for s in spec.submissions):
            from multiprocessing import forkserver

            remote._context()
            forkserver.ensure_running()


def pytest_generate_tests(metafunc):
    """Parametrize every test that takes ``sub`` over the session's submissions, in spec order."""
    session = _session(metafunc.config)
    if session is not None and "sub" in metafunc.fixturenames:
        metafunc.parametrize("sub", session.order, indirect=True, ids=session.order)


def pytest_collection_modifyitems(session, config, items):
    """Keep only the graded tests, ordered by submission then by position (so each submission's checks
    run together, and it is finished when the next item is another submission's)."""
    grading = _session(config)
    if grading is None:
        return
    graded = [i for i in items if _graded(i) is not None]
    rank = {name: n for n, name in enumerate(grading.order)}
    position = {id(item): n for n, item in enumerate(items)}
    graded.sort(key=lambda i: (rank[_graded(i)], position[id(i)]))
    items[:] = graded


def topic_of(item) -> str:
    """The topic of a test item: its file name without ``test_`` (``test_attention.py`` -> ``attention``)."""
    return Path(str(item.fspath)).stem.removeprefix("test_")


@pytest.fixture
def sub(request):
    """Fixture: the submission under test for this item's topic (``request.param`` names it), its check
    state reset. Raises :class:`MissingTopic` when it lacks the topic's module."""
    topic = topic_of(request.node)
    current_topic.set(topic)
    submission = request.config.stash[SESSION].get(request.param, topic)
    submission.start_check()
    return submission


@pytest.fixture
def ref(request):
    """The reference solution of the topic under test (imported here, never in a worker)."""
    return importlib.import_module(f"solutions.{topic_of(request.node)}")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """Turn a graded test's failed setup, or its call, into one check record (the verdict of
    :func:`~.protocol.verdict`, points, printed output, seconds)."""
    outcome = yield
    grading = _session(item.config)
    name = _graded(item)
    if grading is None or name is None or call.when == "teardown":
        return
    report = outcome.get_result()
    if call.when == "setup" and report.passed:
        item._llmlab_start = time.monotonic()
        return
    if report.passed:
        result = Verdict(Outcome.PASSED)
    else:
        result = verdict(call.excinfo.value if call.excinfo else None)
    marker = item.get_closest_marker("llmlab")
    meta = marker.kwargs if marker else {}
    topic = topic_of(item)
    grading.records[name].append(CheckRecord.graded(
        submission=name, topic=topic, check=item.originalname.removeprefix("test_"), task=meta.get("task", ""),
        points=float(meta.get("points", 1)), visibility=meta.get("visibility", "visible"), verdict=result,
        printed=grading.output(name, topic),
        seconds=round(time.monotonic() - getattr(item, "_llmlab_start", time.monotonic()), 3)))


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item, nextitem):
    """After a graded item's teardown: when the next item belongs to another submission (or there is
    none), this submission is finished (its workers closed, its records reported)."""
    yield
    grading = _session(item.config)
    name = _graded(item)
    if grading is not None and name is not None and (nextitem is None or _graded(nextitem) != name):
        grading.finish(name)


def pytest_sessionfinish(session, exitstatus):
    """Close the live workers, report what is left and mark the results complete."""
    grading = _session(session.config)
    if grading is not None:
        grading.close()
