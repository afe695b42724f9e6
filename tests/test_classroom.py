"""Grading a whole class: parallel, resumable, isolated from each other; Gradescope."""
from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import zipfile

import pytest

from llmlab.classroom import deal, find_students, grade_class, gradescope_bundle
from llmlab.grading.remote import Limits
from llmlab.grading.runner import grade
from llmlab.grading.variants import load_variants
from llmlab.paths import EXERCISES, KIT_ROOT, SOLUTIONS

pytestmark = pytest.mark.xdist_group("classroom")

TOPICS = ["attention", "causal_mask"]


def _strip(records):
    return sorted((r["topic"], r["check"], r["points"], r["status"], r["feedback"]) for r in records)


def test_students_are_dealt_to_one_session_per_worker_or_in_chunks():
    names = [f"s{i}" for i in range(7)]
    by_worker = deal(names, workers=2)
    assert by_worker == [["s0", "s2", "s4", "s6"], ["s1", "s3", "s5"]]
    chunks = deal(names, workers=2, chunk=3)
    assert len(chunks) == 3 and max(map(len, chunks)) <= 3
    for sessions in (by_worker, chunks):
        assert sorted(n for c in sessions for n in c) == names  # everyone exactly once
    assert deal(names[:1], workers=4) == [["s0"]]  # no empty session is started
    assert deal([], workers=2) == []


@pytest.fixture(scope="module")
def classroom(tmp_path_factory):
    root = tmp_path_factory.mktemp("class")
    subs = root / "submissions"
    for name in ("alice", "frank"):
        (subs / name).mkdir(parents=True)
        for t in TOPICS:
            shutil.copyfile(SOLUTIONS / f"{t}.py", subs / name / f"{t}.py")
    (subs / "bob").mkdir()
    for t in TOPICS:
        shutil.copyfile(EXERCISES / f"{t}.py", subs / "bob" / f"{t}.py")
    load_variants("causal_mask")["top_left_alignment"].write(subs / "carol")
    for f in (subs / "carol").glob("*.py"):
        if f.stem not in TOPICS:
            f.unlink()
    # dave tries to copy alice's work and then hangs
    (subs / "dave").mkdir()
    spy = (SOLUTIONS / "attention.py").read_text() + f'''

def scaled_dot_product_attention(q, k, v, mask=None, *, scale=None):
    namespace = {{}}
    exec(open({str(subs / "alice" / "attention.py")!r}).read(), namespace)
    return namespace["scaled_dot_product_attention"](q, k, v, mask, scale=scale)
'''
    (subs / "dave" / "attention.py").write_text(spy)
    (subs / "dave" / "causal_mask.py").write_text("def causal_mask(q_len, k_len=None, *, device=None):\n"
                                                  "    while True:\n        pass\n")
    # erin submits the nbgrader way: submitted/<student>/<assignment>/<notebook>
    (subs / "erin" / "attention").mkdir(parents=True)
    shutil.copyfile(KIT_ROOT / "notebooks" / "source" / "attention" / "attention.ipynb",
                    subs / "erin" / "attention" / "attention.ipynb")
    out = root / "grades"
    summary = grade_class(subs, out, topics=TOPICS, workers=2, chunk=2, limits=Limits(timeout=3), progress=False)
    return subs, out, summary


@pytest.mark.slow
def test_every_student_is_graded_and_the_gradebook_is_written(classroom):
    subs, out, summary = classroom
    assert set(summary["students"]) == {"alice", "bob", "carol", "dave", "erin", "frank"}
    rows = (out / "gradebook.csv").read_text().splitlines()
    assert rows[0] == "student,attention,causal_mask,total,max_total" and len(rows) == 7
    s = summary["students"]
    assert s["alice"]["points"] == s["alice"]["max_points"] > 0
    assert s["erin"]["points"] == s["erin"]["max_points"]  # the notebook, graded from its definitions
    assert s["bob"]["points"] == 0
    assert 0 < s["carol"]["points"] < s["carol"]["max_points"]
    for name in summary["students"]:
        data = json.loads((out / "students" / f"{name}.json").read_text())
        assert data["name"] == name and data["topics"]
    assert (out / "nbgrader_grades.csv").read_text().startswith("assignment,duedate,timestamp,student_id")


@pytest.mark.slow
def test_a_student_cannot_read_another_students_files(classroom):
    _, _, summary = classroom
    dave = summary["students"]["dave"]["topics"]
    sdpa = [c for c in dave["attention"]["checks"] if c["task"] == "attention.scaled_dot_product_attention"]
    assert sdpa and all(c["points"] == 0 for c in sdpa)
    assert any("other students' files" in c["feedback"] for c in sdpa)
    assert dave["causal_mask"]["points"] == 0 and any("no answer: " in c["feedback"].lower()
                                                      for c in dave["causal_mask"]["checks"])


@pytest.mark.slow
def test_results_equal_grading_each_student_alone(classroom):
    subs, out, _ = classroom
    for name in ("alice", "carol"):
        alone = grade({name: subs / name}, TOPICS)[name]
        together = json.loads((out / "students" / f"{name}.records.json").read_text())["records"]
        assert _strip([c for t in alone.topics.values() for c in t.checks]) == _strip(together)


@pytest.mark.slow
def test_a_second_run_grades_nobody_again(classroom):
    subs, out, _ = classroom
    again = grade_class(subs, out, topics=TOPICS, workers=2, chunk=2, limits=Limits(timeout=3), progress=False)
    assert again["graded"] == 0 and again["skipped"] == 6


@pytest.mark.slow
def test_killed_run_resumes_to_the_same_results(tmp_path):
    subs = tmp_path / "subs"
    for n in range(4):
        v = ["softmax_over_queries", "no_scaling", "mask_inverted", "nan_on_fully_masked_rows"][n]
        load_variants("attention")[v].write(subs / f"s{n}")
        for f in (subs / f"s{n}").glob("*.py"):
            if f.stem not in TOPICS:
                f.unlink()
    cmd = [sys.executable, "-m", "llmlab.cli", "grade-class", str(subs), "--topic", "attention", "--topic",
           "causal_mask", "--workers", "1", "--chunk", "1", "--quiet"]
    killed = tmp_path / "killed"
    proc = subprocess.Popen(cmd + ["--out", str(killed)], start_new_session=True, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 600
    while not list((killed / "students").glob("*.records.json")) and time.monotonic() < deadline:
        time.sleep(0.2)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    first = {f.name for f in (killed / "students").glob("*.records.json")}
    assert 1 <= len(first) < 4, first
    resumed = subprocess.run(cmd + ["--out", str(killed)], capture_output=True, text=True, timeout=900)
    assert resumed.returncode == 0, resumed.stderr
    assert f"graded {4 - len(first)} students, {len(first)} already graded" in resumed.stdout
    straight = tmp_path / "straight"
    subprocess.run(cmd + ["--out", str(straight)], check=True, capture_output=True, timeout=900)
    for n in range(4):
        a = json.loads((killed / "students" / f"s{n}.records.json").read_text())["records"]
        b = json.loads((straight / "students" / f"s{n}.records.json").read_text())["records"]
        assert _strip(a) == _strip(b)


def test_nbgrader_layout_is_accepted(tmp_path):
    (tmp_path / "submitted" / "ann" / "ps1").mkdir(parents=True)
    (tmp_path / "submitted" / "ben" / "ps1").mkdir(parents=True)
    assert list(find_students(tmp_path)) == ["ann", "ben"]


def test_gradescope_bundle_runs_its_autograder_locally(tmp_path):
    bundle = gradescope_bundle(tmp_path / "autograder.zip", TOPICS)
    root = tmp_path / "autograder"
    with zipfile.ZipFile(bundle) as z:  # Gradescope unzips the upload into /autograder/source
        names = z.namelist()
        assert {"setup.sh", "run_autograder", "pyproject.toml", "scripts/install.sh"} <= set(names)
        assert not any(n.startswith("source/") for n in names)
        z.extractall(root / "source")
    (root / "submission").mkdir()
    shutil.copyfile(SOLUTIONS / "causal_mask.py", root / "submission" / "causal_mask.py")
    run = subprocess.run(["bash", str(root / "source" / "run_autograder")],
                         env=dict(os.environ, AUTOGRADER_ROOT=str(root)), capture_output=True, text=True, timeout=900)
    results = json.loads((root / "results" / "results.json").read_text())
    by_topic = {}
    for t in results["tests"]:
        assert set(t) >= {"name", "score", "max_score", "status", "output", "visibility"}
        topic = t["name"].split(":")[0]
        by_topic.setdefault(topic, []).append(t)
    assert all(t["status"] == "passed" for t in by_topic["causal_mask"]), run.stderr[-2000:]
    assert all(t["score"] == 0 for t in by_topic["attention"])  # not submitted: zero, with a message
    assert re.search(r"no module attention\.py", by_topic["attention"][0]["output"])
