"""`llmlab grade` as an instructor and a student use it: formats, partial submissions, notebooks."""
from __future__ import annotations

import json
import shutil
import subprocess
import sys
from xml.etree import ElementTree

import pytest

from llmlab.grading.notebook import extract_module
from llmlab.grading.runner import grade
from llmlab.paths import EXERCISES, KIT_ROOT, SOLUTIONS

# one worker runs the whole module, so its module-scoped fixture is built once, not once per worker
pytestmark = pytest.mark.xdist_group("cli_reference")

TOPICS = ["attention", "causal_mask"]


def llmlab(*args, cwd=KIT_ROOT):
    return subprocess.run([sys.executable, "-m", "llmlab.cli", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=900)


@pytest.fixture(scope="module")
def reference_json():
    run = llmlab("grade", str(SOLUTIONS), *sum((["--topic", t] for t in TOPICS), []), "--format", "json")
    assert run.returncode == 0, run.stderr
    return json.loads(run.stdout)


def test_json_is_a_gradescope_results_document(reference_json):
    doc = reference_json
    assert doc["score"] == doc["max_score"] > 0
    assert doc["tests"] and all(set(t) >= {"name", "score", "max_score", "status", "output", "visibility"}
                                for t in doc["tests"])
    assert sum(t["max_score"] for t in doc["tests"]) == doc["max_score"]
    assert {t["status"] for t in doc["tests"]} == {"passed"}


def test_grading_is_deterministic(reference_json, tmp_path):
    bug = tmp_path / "sub"
    from llmlab.grading.variants import load_variants

    load_variants("attention")["softmax_over_queries"].write(bug)
    first = grade({"s": bug}, TOPICS)["s"]
    second = grade({"s": bug}, TOPICS)["s"]
    strip = lambda r: [(c["check"], c["points"], c["feedback"]) for t in r.topics.values() for c in t.checks]  # noqa
    assert strip(first) == strip(second)
    assert first.points < first.max_points


def test_table_and_junit_formats(tmp_path):
    run = llmlab("grade", str(EXERCISES), "--topic", "causal_mask")
    assert run.returncode == 0  # failing checks are a verdict, not an error
    assert "causal_mask" in run.stdout and "0 / " in run.stdout and "Not implemented yet" in run.stdout
    out = tmp_path / "report.xml"
    run = llmlab("grade", str(EXERCISES), "--topic", "causal_mask", "--format", "junit", "--output", str(out))
    assert run.returncode == 0
    root = ElementTree.parse(out).getroot()
    cases = list(root.iter("testcase"))
    assert cases and all(c.find("failure") is not None for c in cases)


def test_missing_topic_scores_zero_and_keeps_the_rest(tmp_path):
    shutil.copyfile(SOLUTIONS / "causal_mask.py", tmp_path / "causal_mask.py")
    res = grade({"partial": tmp_path}, TOPICS)["partial"]
    att, cm = res.topics["attention"], res.topics["causal_mask"]
    assert att.points == 0 and att.checks and all("no module attention.py" in c["feedback"] for c in att.checks)
    assert cm.points == cm.max_points > 0


def test_single_module_grades_its_own_topic():
    run = llmlab("grade", str(SOLUTIONS / "causal_mask.py"), "--format", "json")
    doc = json.loads(run.stdout)
    assert doc["score"] == doc["max_score"] > 0
    assert all(t["name"].startswith("causal_mask") for t in doc["tests"])


def test_unusable_submission_path_is_an_error():
    run = llmlab("grade", "/nonexistent/submission")
    assert run.returncode == 2 and "does not exist" in run.stderr


def _notebook(cells):
    return {"cells": [{"cell_type": "code", "metadata": meta, "source": src, "outputs": [], "execution_count": None}
                      for src, meta in cells], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}


def test_notebook_grading_ignores_order_duplicates_and_demo_cells(tmp_path):
    sol = {"nbgrader": {"solution": True, "grade": False, "grade_id": "x", "locked": False, "schema_version": 3}}
    causal = (SOLUTIONS / "causal_mask.py").read_text()
    cells = [
        ("import torch\nprint('demo'); x = torch.randn(10**3)", {}),  # demo code never runs
        ("%matplotlib inline\nwhile True: pass", {}),  # nor does this
        ("def causal_mask(q_len, k_len=None, *, device=None):\n    raise RuntimeError('old draft')", {}),
        (causal, sol),  # the solution cell wins over the draft, wherever it is
        ("def padding_mask(attention_mask):\n    return None", {}),  # a later non-solution duplicate loses
    ]
    nb = tmp_path / "attention.ipynb"
    nb.write_text(json.dumps(_notebook(cells)))
    source = extract_module(nb)
    assert "old draft" not in source and "while True" not in source and "print('demo')" not in source
    res = grade({"nb": nb}, TOPICS)["nb"]
    cm = res.topics["causal_mask"]
    assert cm.points == cm.max_points, [c["feedback"] for c in cm.checks if c["points"] == 0]
    att = res.topics["attention"]
    assert att.points == 0
    assert any("does not define `scaled_dot_product_attention`" in c["feedback"] for c in att.checks)


def test_a_folder_is_graded_on_the_topics_it_holds(tmp_path):
    from llmlab.classroom import submission_topics

    assert submission_topics(tmp_path) == []
    (tmp_path / "causal_mask.py").write_text("")
    assert submission_topics(tmp_path) == ["causal_mask"]
    (tmp_path / "ps1").mkdir()
    (tmp_path / "ps1" / "attention.ipynb").write_text("{}")
    assert submission_topics(tmp_path) == ["attention", "causal_mask"]


def test_bad_input_gets_one_clear_line_then_the_score_table(tmp_path):
    from llmlab.grading import report

    (tmp_path / "empty").mkdir()
    (tmp_path / "syntax").mkdir()
    (tmp_path / "syntax" / "causal_mask.py").write_text("def causal_mask(:\n")
    (tmp_path / "notjson").mkdir()
    (tmp_path / "notjson" / "attention.ipynb").write_text("this is not a notebook")
    results = grade({n: tmp_path / n for n in ("empty", "syntax", "notjson")}, TOPICS)
    empty, syntax, notjson = (report.table({n: results[n]}) for n in ("empty", "syntax", "notjson"))
    assert len(empty.splitlines()) <= 8 and "found no <topic>.py module and no course notebook" in empty
    assert syntax.count("SyntaxError") == 1, syntax
    assert notjson.count("could not read attention.ipynb") == 1 and "no module" not in notjson, notjson
    for text in (empty, syntax, notjson):
        assert text.index("TOTAL") > max(text.find("found no"), text.find("SyntaxError"), text.find("could not read"))


def test_progress_in_a_log_is_one_line_per_step_not_a_redrawn_bar():
    import io

    from llmlab.classroom import Progress

    log = io.StringIO()  # not a terminal
    bar = Progress(200, stream=log)
    for done in range(201):
        bar.update(done)
        bar.update(done)  # the watcher redraws every second, often with no change
    bar.close()
    lines = log.getvalue().splitlines()
    assert "\r" not in log.getvalue() and 20 <= len(lines) <= 22, lines[:5]
    assert lines[-1].startswith("200/200 students graded")
    small = io.StringIO()
    bar = Progress(3, stream=small)
    for done in range(4):
        bar.update(done)
    assert len(small.getvalue().splitlines()) == 4  # a small class: one line per student
