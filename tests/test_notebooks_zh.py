"""The Chinese edition of the notebooks: built from the same source, nothing drifted, and it grades.

`notebooks/zh/source/<name>/<name>.ipynb` is built from `notebooks/src/<name>.md` (code, solutions,
tests, points) and `notebooks/src/zh/<name>.md` (prose only). The tests check that it is up to date,
that its code cells are the English edition's (but for the one line that makes feedback Chinese),
that every prose cell is translated and keeps the English cell's formulas, code spans and numbers,
and that nbgrader executes and autogrades it (solution: full marks; untouched release: zero).

nbgrader executes a sample of the Chinese notebooks, not all of them: their code cells are proven to be
the English edition's (which tests/test_notebooks.py executes, every one) but for the language line,
and tests/test_i18n.py proves every feedback text has its translation. What only an execution shows
(the language line reaches the graders inside nbgrader's kernel; every report line comes out in
Chinese; the points match) is shown on a notebook of numeric checks and one of text checks with a real
tokenizer. Executing all fourteen would add about 20 minutes of CI for no other failure it could find.
"""
from __future__ import annotations

import json
import re
import shutil
import time

import pytest

from llmlab import nbbuild
from llmlab.paths import NOTEBOOKS
from test_notebooks import _nbgrader, autograded  # the same nbgrader run as the English edition's

SOURCES = sorted(p.stem for p in (NOTEBOOKS / "src").glob("*.md"))
EXECUTED = ("attention", "chat-format")  # see the module docstring
CJK = re.compile(r"[\u4e00-\u9fff]")
FORMULA = re.compile(r"\$\$.+?\$\$|\$[^$\n]+\$", re.S)
BLOCK = re.compile(r"^```(?s:.*?)^```|^(?: {4}|\t).*$", re.M)  # fenced and indented code blocks
CODE = re.compile(r"`[^`]+`")  # an inline code span may wrap onto the next line
# the report lines of a test cell that must come out in Chinese in the Chinese edition
ENGLISH_ONLY = re.compile(r"hidden checks passed|points on the hidden checks|Likely mistake|A visible test failed")
# a number standing alone (`6 层`, `Llama 3`, `0.5`), not a part of a name such as SmolLM2 or T5
NUMBER = re.compile(r"(?<![\w.])\d+(?:[.,]\d+)*(?![\w])")


def _editions(name):
    return json.loads(nbbuild.render(name)), json.loads(nbbuild.render(name, "zh"))


def _nbgrader_meta(cell):
    meta = cell["metadata"].get("nbgrader", {})
    return {k: meta.get(k) for k in ("grade_id", "grade", "locked", "solution", "points")}


def anchors(text: str) -> dict[str, set[str]]:
    """What a translation must keep as it is: code blocks, formulas, inline code, numbers (in the rest)."""
    blocks = set(BLOCK.findall(text))
    rest = BLOCK.sub(" ", text)
    formulas = set(FORMULA.findall(rest))
    rest = FORMULA.sub(" ", rest)
    code = {" ".join(c.split()) for c in CODE.findall(rest)}
    numbers = set(n.replace(",", "") for n in NUMBER.findall(CODE.sub(" ", rest)))
    return {"code blocks": blocks, "formulas": formulas, "code spans": code, "numbers": numbers}


@pytest.mark.parametrize("name", SOURCES)
def test_chinese_notebook_is_built_from_its_sources(name):
    assert (nbbuild.ZH_SRC / f"{name}.md").exists(), f"notebooks/src/zh/{name}.md: not translated yet"
    path = nbbuild.output_path(name, "zh")
    assert path.exists(), f"run `llmlab notebooks {name}`"
    assert path.read_text(encoding="utf-8") == nbbuild.render(name, "zh"), \
        f"{path} is stale: run `llmlab notebooks {name}`"


@pytest.mark.parametrize("name", SOURCES)
def test_code_cells_ids_and_points_are_the_english_ones(name):
    en, zh = _editions(name)
    assert [c["cell_type"] for c in en["cells"]] == [c["cell_type"] for c in zh["cells"]]
    assert [c["id"] for c in en["cells"]] == [c["id"] for c in zh["cells"]]
    assert [_nbgrader_meta(c) for c in en["cells"]] == [_nbgrader_meta(c) for c in zh["cells"]]
    assert [c["metadata"].get("tags") for c in en["cells"]] == [c["metadata"].get("tags") for c in zh["cells"]]
    code = [(e["source"], z["source"]) for e, z in zip(en["cells"], zh["cells"]) if e["cell_type"] == "code"]
    first_en, first_zh = code[0]
    assert first_zh == nbbuild.ZH_SETUP + "\n" + first_en, "the first code cell may differ only by the language line"
    assert 'os.environ["LLMLAB_LANG"] = "zh"' in nbbuild.ZH_SETUP
    for n, (e, z) in enumerate(code[1:], 1):
        assert e == z, f"code cell {n} differs between the editions"
    assert en["metadata"] == zh["metadata"]


@pytest.mark.parametrize("name", SOURCES)
def test_every_prose_cell_is_translated_and_keeps_formulas_code_and_numbers(name):
    en, zh = _editions(name)
    for e, z in zip(en["cells"], zh["cells"]):
        if e["cell_type"] != "markdown":
            continue
        key = e["metadata"]["nbgrader"]["grade_id"]
        assert z["source"].strip() and z["source"] != e["source"], f"{name} {key}: not translated"
        assert CJK.search(z["source"]), f"{name} {key}: no Chinese in the translation"
        want, got = anchors(e["source"]), anchors(z["source"])
        for what in want:
            assert want[what] == got[what], (f"{name} {key}: {what} differ from the English cell: "
                                             f"missing {sorted(want[what] - got[what])}, "
                                             f"extra {sorted(got[what] - want[what])}")


def test_a_missing_or_stray_translation_is_refused(tmp_path, monkeypatch):
    text = (nbbuild.ZH_SRC / "attention.md").read_text(encoding="utf-8")
    monkeypatch.setattr(nbbuild, "ZH_SRC", tmp_path)
    without_md4 = re.sub(r"<!-- md-4 -->.*?(?=<!-- md-)", "", text, flags=re.S)
    (tmp_path / "attention.md").write_text(without_md4, encoding="utf-8")
    with pytest.raises(ValueError, match="md-4"):
        nbbuild.build("attention", "zh")
    (tmp_path / "attention.md").write_text(text + "\n<!-- md-999 -->\n多出来的一段\n", encoding="utf-8")
    with pytest.raises(ValueError, match="md-999"):
        nbbuild.build("attention", "zh")


@pytest.fixture(scope="module")
def zh_course(tmp_path_factory):
    """One nbgrader course holding the EXECUTED Chinese notebooks (CI sizes): one release per notebook, two
    students (the solutions, the untouched releases), one autograde per student."""
    course = tmp_path_factory.mktemp("zh") / "course"
    course.mkdir()
    (course / "nbgrader_config.py").write_text(
        "c = get_config()\n"
        f"c.CourseDirectory.root = {str(course)!r}\n"
        "c.CourseDirectory.course_id = 'llmlab-zh'\n"
        "c.ExecutePreprocessor.timeout = 900\n")
    started = time.time()
    logs = {}
    for name in EXECUTED:
        (course / "source" / name).mkdir(parents=True)
        nb = nbbuild.with_ci_sizes(json.loads(nbbuild.output_path(name, "zh").read_text(encoding="utf-8")))
        (course / "source" / name / f"{name}.ipynb").write_text(json.dumps(nb, ensure_ascii=False), encoding="utf-8")
        done = _nbgrader(course, "generate_assignment", name, "--force")
        logs[name] = done.stdout + done.stderr
        release = course / "release" / name / f"{name}.ipynb"
        for student, source in (("solution", course / "source" / name / f"{name}.ipynb"), ("untouched", release)):
            if source.exists():
                (course / "submitted" / student / name).mkdir(parents=True)
                shutil.copyfile(source, course / "submitted" / student / name / f"{name}.ipynb")
    for student in ("solution", "untouched"):
        done = _nbgrader(course, "autograde", "*", "--student", student, "--create", "--force")
        logs[student] = done.stdout[-3000:] + done.stderr[-3000:]
    print(f"Chinese notebooks: {len(EXECUTED)} released and autograded twice in {time.time() - started:.0f} s")
    return course, logs


@pytest.mark.slow
@pytest.mark.xdist_group("zh_course")  # one worker builds the course (module fixture) and runs them all
@pytest.mark.parametrize("name", EXECUTED)
def test_chinese_notebook_runs_and_autogrades_with_nbgrader(name, zh_course):
    course, logs = zh_course
    released = course / "release" / name / f"{name}.ipynb"
    assert released.exists(), logs[name]
    text = released.read_text(encoding="utf-8")
    assert "### BEGIN SOLUTION" not in text and "BEGIN HIDDEN TESTS" not in text
    scores, graded, errors = autograded(course, name)
    assert not errors, "the Chinese solution notebook raised:\n" + "\n".join(errors)
    sol, untouched = scores["solution"], scores["untouched"]
    assert sol[1] > 0 and sol[0] == sol[1], f"solution notebook scored {sol}\n{logs['solution']}"
    assert untouched[0] == 0, f"untouched release scored {untouched}"
    en_points = sum(c["metadata"]["nbgrader"].get("points", 0) for c in
                    json.loads(nbbuild.output_path(name).read_text())["cells"] if "nbgrader" in c["metadata"])
    assert sol[1] == en_points, "the two editions must be worth the same points"
    # the setup line makes the test cells' feedback Chinese (llmlab.i18n): no English-only report lines
    for n, c in enumerate(graded["cells"]):
        if c["metadata"].get("nbgrader", {}).get("grade"):
            said = "".join("".join(o.get("text", "")) for o in c.get("outputs", []) if o.get("output_type") == "stream")
            assert said.strip() and CJK.search(said), f"cell {n}: the feedback is not in Chinese: {said[:500]!r}"
            assert not ENGLISH_ONLY.search(said), f"cell {n}: English feedback in the Chinese edition: {said[:500]!r}"
