"""Containment in bounded time, and a sandbox that allows instead of forbids.

The worker's file access is an allow-list (its own folder, its scratch folder, the Python
installation, the data trusted factories load): copies of the reference planted in the home folder,
the temporary folder or beside the submission stay unreadable. Failures that would repeat in every
check settle at once: an import that hangs costs one call limit for the whole topic, a function that
exhausts memory fails at once in every later check, and a topic's CPU budget ends its grading.
These tests count worker starts and read verdicts; none of them times anything.
"""
from __future__ import annotations

import os
import shutil
import tempfile
import textwrap
import uuid
from collections.abc import Iterator
from contextlib import closing, contextmanager
from pathlib import Path

import pytest

from llmlab.grading.remote import Limits, Submission, SubmissionError, Unfinished
from llmlab.grading.runner import grade
from llmlab.paths import SOLUTIONS

pytestmark = pytest.mark.xdist_group("isolation")

PROBE = '''
import os

def read(path):
    with open(path) as f:
        return f.read()

def listing(path):
    return sorted(os.listdir(path))

def write(path, text):
    with open(path, "w") as f:
        f.write(text)
    return os.path.abspath(path)

def hard_link(src, dst):
    os.link(src, dst)
    return read(dst)

def spin(seconds):
    import time
    start = time.process_time()
    while time.process_time() - start < seconds:
        pass
    return seconds

def hoard():
    chunks = []
    while True:
        chunks.append(bytearray(64 * 1024 * 1024))

def calls_hoard():
    return hoard()

def loop():
    while True:
        pass

def calls_loop():
    return loop()

def fine(x):
    return x + 1
'''


@pytest.fixture(scope="module")
def planted(tmp_path_factory):
    """Copies of the reference under $HOME, under the temporary folder and beside the submission."""
    tag = f"llmlab-planted-{uuid.uuid4().hex[:8]}"
    root = tmp_path_factory.mktemp("class")
    submission = root / "student"
    submission.mkdir()
    copies = [Path.home() / tag / "solutions", Path(tempfile.gettempdir()) / tag / "solutions",
              root / "kit-backup" / "solutions"]
    for folder in copies:
        folder.mkdir(parents=True)
        shutil.copyfile(SOLUTIONS / "attention.py", folder / "attention.py")
    yield submission, [c / "attention.py" for c in copies]
    for folder in copies:
        shutil.rmtree(folder.parent, ignore_errors=True)


@contextmanager
def probe(directory: Path, limits: Limits | None = None, code: str = PROBE) -> Iterator[Submission]:
    """The submission ``code`` (written to ``directory/probe.py``), closed when the block ends."""
    (directory / "probe.py").write_text(textwrap.dedent(code))
    with closing(Submission("student", "probe", str(directory), limits or Limits(timeout=5.0, memory_mb=512))) as sub:
        yield sub


def denied(sub: Submission, function: str, *args) -> str:
    with pytest.raises(SubmissionError) as info:
        sub.call(function, *args)
    assert "PermissionError" in info.value.message, info.value.message
    return info.value.message


def test_planted_copies_are_unreadable_and_unlistable(planted):
    submission, copies = planted
    with probe(submission) as sub:
        for copy in copies:
            assert "may read only" in denied(sub, "read", str(copy))
            denied(sub, "listing", str(copy.parent))
        for folder in (Path.home(), Path(tempfile.gettempdir()), submission.parent, Path("/")):
            denied(sub, "listing", str(folder))


def test_what_legitimate_code_needs_stays_readable(planted):
    import torch

    submission, _ = planted
    with probe(submission) as sub:
        assert "def read" in sub.call("read", str(submission / "probe.py"))  # its own folder
        assert "torch" in sub.call("read", torch.__file__)  # installed packages
        assert "shutil" in " ".join(sub.call("listing", os.path.dirname(os.__file__)))  # the standard library
        assert "Name:" in sub.call("read", "/proc/self/status")  # its own /proc entry
        denied(sub, "read", "/proc/1/environ")  # not another process's
        written = sub.call("write", "notes.txt", "scratch is writable")
        assert sub.call("read", written) == "scratch is writable"
        assert sub.call("fine", 1) == 2


def test_writes_and_links_only_inside_scratch(planted):
    submission, copies = planted
    with probe(submission) as sub:
        assert "only write inside their scratch" in denied(
            sub, "write", os.path.join(tempfile.gettempdir(), f"llmlab-escape-{uuid.uuid4().hex}"), "x")
        denied(sub, "write", str(submission / "probe.py"), "x")  # not even its own (graded) files
        denied(sub, "hard_link", str(copies[1]), "copy.py")  # a hard link would carry the content into scratch


def test_import_hang_costs_one_limit_for_the_whole_topic(tmp_path):
    with probe(tmp_path, Limits(timeout=1.0, memory_mb=512), "while True:\n    pass\n" + PROBE) as sub:
        messages = []
        for check in range(3):
            sub.start_check()
            with pytest.raises((Unfinished, SubmissionError)) as info:
                sub.call("fine", check)
            messages.append(str(info.value))
        assert sub.starts == 1, "each check started a worker and waited for the import again"
        assert all("importing your module probe.py failed" in m and "CPU time" in m for m in messages), messages


def test_each_topic_has_its_own_call_limit_and_timeout_overrides_it(tmp_path):
    """Without ``--timeout`` a call may take the topic's own limit (small, so a hang in a class run holds a
    worker for seconds); with it, the given limit holds for every topic; a topic the registry does not
    know gets the generous default."""
    from llmlab import topics

    for t in topics.all_topics():
        assert 1.0 <= t.call_limit <= topics.DEFAULT_CALL_LIMIT, t
    assert topics.call_limit("attention") < topics.DEFAULT_CALL_LIMIT  # the reason the limits exist
    assert Limits().for_topic("attention").timeout == topics.call_limit("attention")
    assert Limits(timeout=7.0).for_topic("attention").timeout == 7.0
    assert Limits().for_topic("no_such_topic").timeout == topics.DEFAULT_CALL_LIMIT
    (tmp_path / "attention.py").write_text("while True:\n    pass\n")
    with closing(Submission("student", "attention", str(tmp_path), Limits(memory_mb=512))) as sub:
        sub.start_check()
        with pytest.raises((Unfinished, SubmissionError)) as info:
            sub.call("scaled_dot_product_attention", 1)
        assert f"more than {topics.call_limit('attention'):g} s of CPU time" in str(info.value), str(info.value)


def test_import_error_settles_the_topic_with_its_traceback(tmp_path):
    with probe(tmp_path, code=PROBE + "\nraise RuntimeError('half-finished cell')\n") as sub:
        for _ in range(2):
            sub.start_check()
            with pytest.raises(Unfinished) as info:
                sub.call("fine", 1)
        assert "raised RuntimeError: half-finished cell" in info.value.error.message
        assert "probe.py" in info.value.error.traceback
        assert sub.starts == 1


def assert_settled(sub: Submission, function: str, caller: str) -> None:
    """After ``function`` failed in a way that would repeat: no replay, no new attempt in a later check,
    a caller inside the submission fails at once too, and other functions keep working."""
    starts = sub.starts
    with pytest.raises(Unfinished):  # the rest of this check: no replay
        sub.call(function)
    sub.start_check()
    with pytest.raises(Unfinished):  # a later check that needs the same function: no new attempt
        sub.call(function)
    assert sub.starts == starts
    with pytest.raises(Unfinished) as info:  # another function that calls it fails at once too
        sub.call(caller)
    assert f"`{function}` already failed" in info.value.error.message
    assert sub.call("fine", 41) == 42, "other functions of the submission keep working"


def test_memory_bomb_is_settled_once_per_function(tmp_path):
    with probe(tmp_path, Limits(timeout=20.0, memory_mb=512)) as sub:
        with pytest.raises(SubmissionError) as info:
            sub.call("hoard")
        assert info.value.kind == "memory" and "MemoryError" in info.value.message
        assert_settled(sub, "hoard", "calls_hoard")


def test_runaway_output_fails_its_call_and_is_settled_once_per_function(tmp_path):
    """Printing is writing: more than ``file_mb`` in one call fails it (even under ``except Exception``),
    and the function is settled like one that exhausted memory; small prints stay harmless."""
    code = PROBE + '''
def shout():
    try:
        for _ in range(100):
            print("x" * 1_000_000)
    except Exception:
        return "swallowed"

def calls_shout():
    return shout()

def chatty(x):
    print("step", x)
    return x + 1
'''
    with probe(tmp_path, Limits(timeout=20.0, memory_mb=512, file_mb=16), code) as sub:
        assert sub.call("chatty", 1) == 2 and "step 1" in sub.output
        with pytest.raises(SubmissionError) as info:
            sub.call("shout")
        assert info.value.kind == "output" and "printed more than 16 MB in one call" in info.value.message
        assert_settled(sub, "shout", "calls_shout")


def test_a_hang_is_settled_for_every_later_caller(tmp_path):
    with probe(tmp_path, Limits(timeout=1.0, memory_mb=512)) as sub:
        with pytest.raises(SubmissionError) as info:
            sub.call("loop")
        assert info.value.kind == "timeout"
        sub.start_check()
        with pytest.raises(Unfinished) as info:  # no second wait for the call limit
            sub.call("calls_loop")
        assert "`loop` already failed" in info.value.error.message
        assert "CPU time" in info.value.error.message
        assert sub.call("fine", 1) == 2


def test_budget_ends_the_topic(tmp_path):
    limits = Limits(timeout=5.0, memory_mb=512, budget=2.5, budget_wall_factor=40.0)
    with probe(tmp_path, limits) as sub:
        assert sub.call("spin", 1.0) == 1.0
        sub.start_check()
        assert sub.call("spin", 1.0) == 1.0
        sub.start_check()
        with pytest.raises(Unfinished) as info:
            sub.call("spin", 1.0)  # crosses the budget: stopped there, not at the 5 s call limit
        assert "budget of 2.5 CPU seconds" in info.value.error.message
        sub.start_check()
        with pytest.raises(Unfinished):
            sub.call("fine", 1)  # everything after it scores 0 at once
        assert sub.cpu_used < 2.5 + 1.0


SEARCH = '''
import glob, os, tempfile
for pattern in (os.path.expanduser("~") + "/*/solutions/attention.py",
                tempfile.gettempdir() + "/*/solutions/attention.py",
                os.path.dirname(os.path.dirname(os.path.abspath(__file__))) + "/*/solutions/attention.py",
                "/**/solutions/attention.py"):
    for path in glob.glob(pattern, recursive=True):
        try:
            exec(open(path).read())
            break
        except Exception:
            pass
for path in PLANTED:
    try:
        exec(open(path).read())
    except Exception:
        pass
'''

ZEROS = '''
def scaled_dot_product_attention(q, k, v, mask=None, *, scale=None):
    L, S = q.shape[-2], k.shape[-2]
    lead = torch.broadcast_shapes(q.shape[:-2], k.shape[:-2])
    return torch.zeros(*lead, L, v.shape[-1], dtype=q.dtype), torch.zeros(*lead, L, S, dtype=q.dtype)
'''


@pytest.mark.slow
def test_submission_that_searches_the_disk_for_the_reference_scores_like_its_honest_twin(planted):
    """The attack (the issue's third case): find a copy of the kit anywhere and exec it."""
    submission, copies = planted
    reference = (SOLUTIONS / "attention.py").read_text()
    twin = submission.parent / "twin"
    twin.mkdir()
    (twin / "attention.py").write_text(reference + ZEROS)
    (submission / "attention.py").write_text(reference + ZEROS + f"\nPLANTED = {[str(c) for c in copies]!r}\n" + SEARCH)
    results = grade({"attack": submission, "twin": twin}, ["attention"], limits=Limits(timeout=3.0, memory_mb=1024),
                    max_examples=4)
    got = {c["check"]: c["points"] for c in results["attack"].topics["attention"].checks}
    want = {c["check"]: c["points"] for c in results["twin"].topics["attention"].checks}
    assert got == want
    assert results["attack"].topics["attention"].points < results["attack"].topics["attention"].max_points


SLOW_BUT_CORRECT = '''
import time as _time
_reference_sdpa = scaled_dot_product_attention
def scaled_dot_product_attention(q, k, v, mask=None, *, scale=None):
    start = _time.process_time()
    while _time.process_time() - start < 0.05:
        pass
    return _reference_sdpa(q, k, v, mask, scale=scale)
'''


@pytest.mark.slow
def test_grade_budget_option_stops_the_topic(tmp_path):
    """``llmlab grade --budget``: a correct but slow submission keeps the points it earned within the
    budget, and the checks after it score 0 with a message that says why."""
    import json

    from llmlab.cli import main

    (tmp_path / "attention.py").write_text((SOLUTIONS / "attention.py").read_text() + SLOW_BUT_CORRECT)
    out = tmp_path / "results.json"
    main(["grade", str(tmp_path), "--topic", "attention", "--budget", "4", "--format", "json", "--output", str(out)])
    tests = json.loads(out.read_text())["tests"]
    stopped = [t for t in tests if "budget of 4 CPU seconds" in t.get("output", "")]
    assert stopped and all(t["score"] == 0 for t in stopped)
    assert any(t["score"] > 0 for t in tests), "checks graded within the budget keep their points"
