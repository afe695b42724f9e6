"""`llmlab release --lang zh`: the Chinese student edition has the same exercises, Chinese notebooks and
README, and ships no answer; `grade-class --lang zh` asks for Chinese feedback."""
from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys

import pytest

from llmlab import classroom, nbbuild
from llmlab.classroom import release
from llmlab.grading.runner import GradingError

CJK = re.compile(r"[\u4e00-\u9fff]")
TASK = re.compile(r'NotImplementedError\("(task [\w.]+): not implemented yet"\)')


def _files(root):
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_chinese_edition_has_the_same_exercises_a_chinese_readme_and_the_glossary(tmp_path):
    en = release(tmp_path / "en", notebooks=False)
    zh = release(tmp_path / "zh", notebooks=False, lang="zh")
    assert _files(en / "exercises") == _files(zh / "exercises")
    assert _files(en / "llmlab") == _files(zh / "llmlab")
    readme = (zh / "README.md").read_text(encoding="utf-8")
    assert CJK.search(readme) and "pytest" in readme and "GLOSSARY.md" in readme
    assert "词元" in (zh / "GLOSSARY.md").read_text(encoding="utf-8")
    assert not (en / "GLOSSARY.md").exists() and not CJK.search((en / "README.md").read_text())


def test_an_unknown_language_is_refused(tmp_path):
    with pytest.raises(GradingError, match="language"):
        release(tmp_path / "fr", notebooks=False, lang="fr")
    assert not (tmp_path / "fr").exists()
    run = subprocess.run([sys.executable, "-m", "llmlab.cli", "release", str(tmp_path / "fr"), "--lang", "fr",
                          "--no-notebooks"], capture_output=True, text=True, timeout=300)
    assert run.returncode == 2 and "--lang" in run.stderr


def test_release_lang_zh_from_the_command_line(tmp_path):
    out = tmp_path / "student"
    run = subprocess.run([sys.executable, "-m", "llmlab.cli", "release", str(out), "--lang", "zh", "--no-notebooks"],
                         capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    assert CJK.search((out / "README.md").read_text(encoding="utf-8"))


def test_grade_class_lang_sets_the_feedback_language(monkeypatch):
    monkeypatch.setenv("LLMLAB_LANG", "en")  # restored after the test
    parser = argparse.ArgumentParser()
    classroom.add_parser(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["grade-class", "submissions", "--lang", "zh"])
    assert args.lang == "zh" and os.environ["LLMLAB_LANG"] == "zh"


@pytest.mark.slow
def test_chinese_release_notebooks_are_chinese_stubs_without_answers(tmp_path):
    out = release(tmp_path / "student", lang="zh")
    shipped = sorted(p.name for p in (out / "notebooks").glob("*.ipynb"))
    assert shipped == sorted(p.name for p in (nbbuild.course_dir("zh") / "source").glob("*/*.ipynb"))
    assert shipped == sorted(p.name for p in (nbbuild.course_dir("en") / "source").glob("*/*.ipynb"))
    stubs = "".join(f.read_text() for f in (out / "exercises").glob("*.py"))
    for name in shipped:
        text = (out / "notebooks" / name).read_text(encoding="utf-8")
        assert "### BEGIN SOLUTION" not in text and "BEGIN HIDDEN TESTS" not in text, name
        cells = [{**c, "source": "".join(c["source"])} for c in json.loads(text)["cells"]]  # nbgrader: lines
        prose = [c["source"] for c in cells if c["cell_type"] == "markdown"]
        assert prose and all(CJK.search(p) for p in prose), f"{name}: a prose cell is not Chinese"
        code = [c["source"] for c in cells if c["cell_type"] == "code"]
        assert code[0].startswith(nbbuild.ZH_SETUP), f"{name}: the feedback-language line is missing"
        solution = "\n".join(c["source"] for c in cells if c["metadata"].get("nbgrader", {}).get("solution"))
        in_notebook = set(TASK.findall(solution))
        assert in_notebook and in_notebook <= set(TASK.findall(stubs)), name
