"""`pretraining` graded the way students are graded: in isolated workers, from modules and notebooks.

``tests/test_graders.py`` grades the reference, the variants and the alternatives as trusted code in one
process. These slower checks go through the real worker instead: a submission that returns numpy scalars
(the numpy alternative) must still get full marks, and a notebook with a planted mistake must lose exactly
that task's points and be told the mistake by name.
"""
from __future__ import annotations

import json
import shutil

import pytest

from llmlab import nbbuild
from llmlab.grading.runner import grade
from llmlab.grading.variants import load_variants
from llmlab.paths import GRADERS

pytestmark = pytest.mark.slow


def _failed(result):
    return [c for c in result.topics["pretraining"].checks if c["status"] != "passed"]


def test_numpy_scalars_through_the_isolated_worker_get_full_marks(tmp_path):
    folder = tmp_path / "student"
    folder.mkdir()
    shutil.copyfile(GRADERS / "alternatives" / "pretraining__numpy.py", folder / "pretraining.py")
    result = grade({"student": folder}, ["pretraining"])["student"]
    t = result.topics["pretraining"]
    assert t.max_points > 0 and t.points == t.max_points, [(c["check"], c["feedback"][:300]) for c in _failed(result)]


def test_notebook_with_an_off_by_one_warmup_loses_only_lr_at_and_is_told_why(tmp_path):
    nb = json.loads(nbbuild.output_path("llama3-pretraining").read_text())
    planted = 0
    for cell in nb["cells"]:
        if cell["cell_type"] == "code" and "def lr_at(" in cell["source"]:
            cell["source"] = cell["source"].replace("return peak_lr * step / warmup_steps",
                                                    "return peak_lr * (step + 1) / warmup_steps")
            planted += 1
    assert planted == 1
    path = tmp_path / "llama3-pretraining.ipynb"
    path.write_text(json.dumps(nb))
    result = grade({"nb": path}, ["pretraining"])["nb"]
    failed = _failed(result)
    assert failed and {c["task"] for c in failed} == {"pretraining.lr_at"}, [(c["check"], c["status"]) for c in failed]
    mistake = load_variants("pretraining")["warmup_off_by_one"].mistake
    assert any(mistake in c["feedback"] for c in failed), [c["feedback"] for c in failed]
    assert all("def " not in c["feedback"] for c in failed)  # no grader source in the feedback
