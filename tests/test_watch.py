"""``llmlab watch``: one warm grading session, one re-grade per save, the scores of a cold ``grade``,
and the same containment. Driven through ``watch(..., stop=...)``: no test sleeps for long."""
from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import threading
import time

import pytest

from llmlab.grading.remote import Limits, needs_models
from llmlab.grading.runner import grade
from llmlab.grading.variants import load_variants
from llmlab.paths import SOLUTIONS
from llmlab.watch import WarmSession, topics_of, watch

pytestmark = pytest.mark.xdist_group("isolation")

LIMITS = Limits(timeout=2.0, memory_mb=1024)  # a hang at import costs 2 CPU seconds, not 20


@pytest.fixture(scope="module")
def session():
    with WarmSession(LIMITS) as s:
        yield s


def verdicts(result) -> list[tuple]:
    return [(c["topic"], c["check"], c["points"], c["status"], c["feedback"])
            for t in result.topics.values() for c in t.checks]


def only(results):
    (result,) = results.values()
    return result


def test_a_burst_of_writes_is_one_regrade(session, tmp_path):
    shutil.copyfile(SOLUTIONS / "causal_mask.py", tmp_path / "causal_mask.py")
    (tmp_path / "test_causal_mask.py").write_text("# public tests: not graded, never a reason to re-grade\n")
    reports, polls = [], [0]
    text = (SOLUTIONS / "causal_mask.py").read_text()

    def burst():  # an editor that writes the file in several pieces, 50 ms apart
        for n in range(5):
            (tmp_path / "causal_mask.py").write_text(text + f"\n# save {n}\n")
            time.sleep(0.05)

    def stop():
        polls[0] += 1
        if polls[0] == 2:
            (tmp_path / "test_causal_mask.py").write_text("# edited\n")
            threading.Thread(target=burst).start()
        return polls[0] > 8

    count = watch(tmp_path, ["causal_mask"], session=session, interval=0.05, settle=0.3, stop=stop,
                  show=reports.append)
    assert count == 2, reports  # the first grading, then one for the whole burst
    assert len(reports) == 2 and all("causal_mask" in r and "13 / 13" in r for r in reports), reports


def test_changed_files_name_their_topics(tmp_path):
    chosen = ["attention", "causal_mask", "sampling"]
    assert topics_of([tmp_path / "causal_mask.py"], chosen) == ["causal_mask"]
    assert topics_of([tmp_path / "attention.ipynb"], chosen) == ["attention", "causal_mask"]
    assert topics_of([tmp_path / "notes.py", tmp_path / "tokenizer.py"], chosen) == []


def test_only_topics_that_can_use_models_preload_them(tmp_path):
    assert not needs_models(["attention", "causal_mask"])
    assert needs_models(["sampling"])  # its graders build tiny transformers models
    (tmp_path / "causal_mask.py").write_text("import transformers\n")  # a student's own import counts too
    assert needs_models(["causal_mask"], [tmp_path])


def test_warm_score_equals_cold(session, tmp_path):
    # a buggy module, so that failing checks and their feedback (with the diagnosis) are compared too
    load_variants("causal_mask")["decoder_or_instead_of_and"].write(tmp_path / "student")
    folder = tmp_path / "student"
    cold = only(grade({"student": folder}, ["causal_mask"], limits=LIMITS))
    assert 0 < cold.points < cold.max_points
    first = only(session.grade(folder, ["causal_mask"]))
    session.grade(folder, ["attention"])  # another topic in between leaves nothing behind
    again = only(session.grade(folder, ["causal_mask"]))
    assert verdicts(first) == verdicts(cold)
    assert verdicts(again) == verdicts(cold)


def test_hostile_saves_are_contained(session, tmp_path):
    reference = (SOLUTIONS / "causal_mask.py").read_text()
    module = tmp_path / "causal_mask.py"

    # code at the end of the module runs at import, after its ``from __future__`` line
    module.write_text(reference + f"\nopen({str(SOLUTIONS / 'causal_mask.py')!r}).read()\n")
    peek = only(session.grade(tmp_path, ["causal_mask"]))
    assert peek.points == 0
    assert all("may not read the reference solutions" in c["feedback"] for c in peek.topics["causal_mask"].checks)

    module.write_text(reference + "\nwhile True:\n    pass\n")
    hang = only(session.grade(tmp_path, ["causal_mask"]))
    assert hang.points == 0
    assert all("CPU time" in c["feedback"] for c in hang.topics["causal_mask"].checks)

    module.write_text(reference)  # the session survives both, and grades the fixed module in full
    fixed = only(session.grade(tmp_path, ["causal_mask"]))
    assert fixed.points == fixed.max_points > 0


def test_ctrl_c_stops_watch_and_its_session(tmp_path):
    shutil.copyfile(SOLUTIONS / "causal_mask.py", tmp_path / "causal_mask.py")
    # its own process group, which gets the interrupt as a terminal's foreground group would
    # and Ctrl-C's default action, as a terminal's foreground job has: an ignored SIGINT is inherited through
    # exec, and Python then keeps ignoring it (something earlier in this test process, a kernel or a
    # forkserver helper, may have left SIGINT ignored here)
    inherited = signal.getsignal(signal.SIGINT)
    proc = subprocess.Popen([sys.executable, "-m", "llmlab.cli", "watch", str(tmp_path)], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, start_new_session=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    guard = threading.Timer(300, proc.kill)  # never hang the suite
    guard.start()
    try:
        lines = []
        for line in proc.stdout:  # the first report, then the interrupt
            lines.append(line)
            if "watching" in line:
                break
        os.killpg(proc.pid, signal.SIGINT)
        lines += proc.stdout.readlines()
        assert proc.wait() == 0, f"(SIGINT in the test process: {inherited})\n" + "".join(lines)
    finally:
        guard.cancel()
    assert "13 / 13" in "".join(lines) and lines[-1].strip() == "llmlab watch: stopped", "".join(lines)
    assert "Traceback" not in "".join(lines)
    for _ in range(50):  # the session and its forkserver end with it
        try:
            os.killpg(proc.pid, 0)
        except ProcessLookupError:
            break
        time.sleep(0.1)
    else:
        pytest.fail("processes of the watch's group are still running after Ctrl-C")
