"""Notebooks: built from their sources, executed small with real models, autograded by real nbgrader.

For each notebook, one nbgrader course is made in a temporary folder: the source notebook (with its
`# ci:` sizes applied) is released with `nbgrader generate_assignment`; the solution notebook is
submitted, and `nbgrader autograde` must give it full marks, its run executing top to bottom without
an error. For a sample of notebooks (`UNTOUCHED`) a second student submits the untouched release,
which must score zero.

Why a sample: an untouched release still runs every cell that does not need the student's code
(loading models, data, servers), a good part of the solution run's time, and what it proves does not
depend on the notebook: tests/test_graders.py proves every stub scores zero on every check of its
topic, tests/test_release.py that every release notebook's answer cells are the stubs that raise
their task's message, and the sample shows, on a numeric, a text, a training and a remote notebook,
that nbgrader's autograde of a release turns those into zero points.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from llmlab import nbbuild
from llmlab.paths import NOTEBOOKS

SOURCES = sorted(p.stem for p in (NOTEBOOKS / "src").glob("*.md"))
UNTOUCHED = ("attention", "chat-format", "sft", "imdb-remote-llm")  # see the module docstring

@pytest.mark.parametrize("name", SOURCES)
def test_notebook_is_built_from_its_source(name):
    path = nbbuild.output_path(name)
    assert path.exists(), f"run `llmlab notebooks {name}`"
    assert path.read_text() == nbbuild.render(name), f"{path} is stale: run `llmlab notebooks {name}`"


def _nbgrader(course: Path, *args: str) -> subprocess.CompletedProcess:
    """nbgrader on ``course``; its hidden test cells run each property check on 5 examples instead of 25
    (what is tested here is the notebooks and the nbgrader integration; tests/test_graders.py tests the
    checks themselves at full depth)."""
    return subprocess.run([sys.executable, "-m", "nbgrader", *args], cwd=course, capture_output=True,
                          text=True, timeout=3600, env={**os.environ, "LLMLAB_MAX_EXAMPLES": "5"})


def autograded(course: Path, name: str, students=("solution", "untouched")) -> tuple[dict, dict, list[str]]:
    """After `nbgrader autograde`: the (score, max) of each of ``students`` (solution first), the
    autograded solution notebook, and the errors its cells raised."""
    from nbgrader.api import Gradebook

    with Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gb:
        scores = {s: (gb.find_submission(name, s).score, gb.find_submission(name, s).max_score)
                  for s in students}
    graded = json.loads((course / "autograded" / "solution" / name / f"{name}.ipynb").read_text(encoding="utf-8"))
    errors = [f"cell {n}: {o.get('ename')}: {o.get('evalue', '')[:1500]}" for n, c in enumerate(graded["cells"])
              if c["cell_type"] == "code" for o in c.get("outputs", []) if o.get("output_type") == "error"]
    return scores, graded, errors


@pytest.mark.slow
@pytest.mark.parametrize("name", SOURCES)
def test_notebook_runs_and_autogrades_with_nbgrader(name, tmp_path):
    course = tmp_path / "course"
    (course / "source" / name).mkdir(parents=True)
    (course / "nbgrader_config.py").write_text(
        "c = get_config()\n"
        f"c.CourseDirectory.root = {str(course)!r}\n"
        "c.CourseDirectory.course_id = 'llmlab'\n"
        "c.ExecutePreprocessor.timeout = 900\n")
    nb = nbbuild.with_ci_sizes(json.loads(nbbuild.output_path(name).read_text()))
    (course / "source" / name / f"{name}.ipynb").write_text(json.dumps(nb))
    done = _nbgrader(course, "generate_assignment", name, "--force")
    release = course / "release" / name / f"{name}.ipynb"
    assert release.exists(), done.stdout + done.stderr
    released = release.read_text()
    assert "### BEGIN SOLUTION" not in released and "BEGIN HIDDEN TESTS" not in released
    students = {"solution": course / "source" / name / f"{name}.ipynb"}
    if name in UNTOUCHED:
        students["untouched"] = release
    for student, source in students.items():
        (course / "submitted" / student / name).mkdir(parents=True)
        shutil.copyfile(source, course / "submitted" / student / name / f"{name}.ipynb")
    done = _nbgrader(course, "autograde", name, "--create", "--force")
    scores, graded, errors = autograded(course, name, students)
    assert not errors, "the solution notebook raised:\n" + "\n".join(errors)
    sol = scores["solution"]
    assert sol[1] > 0 and sol[0] == sol[1], f"solution notebook scored {sol}\n{done.stdout[-3000:]}{done.stderr[-3000:]}"
    if name in UNTOUCHED:
        assert scores["untouched"][0] == 0, f"untouched release scored {scores['untouched']}"
