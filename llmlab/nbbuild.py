"""Build the course notebooks (nbgrader source format) from ``notebooks/src/<name>.md``.

A notebook's source is Markdown. Prose becomes markdown cells; fenced ``python`` blocks become code
cells, and the block's info string says what kind:

* ```` ```python ```` -- an ordinary code cell (demonstrations, plots);
* ```` ```python parameters ```` -- the papermill parameters cell (sizes: reviews, steps, ...);
* ```` ```python imports TOPIC ```` -- the import lines of ``solutions/TOPIC.py``;
* ```` ```python solution TOPIC.NAME [TOPIC.NAME ...] ```` -- the definitions, copied from
  ``solutions/TOPIC.py`` with their ``### BEGIN/END SOLUTION`` regions: the reference stays the single
  source, and ``nbgrader generate_assignment`` turns them into stubs;
* ```` ```python tests tasks=TASK[,TASK] ```` -- a locked autograder cell: the block's own asserts
  are visible to students; the hidden part added here runs them, grades the notebook's definitions of
  those tasks with the kit's hidden graders (the same checks as ``llmlab grade``) and ends with the
  points earned, nbgrader's partial credit. The cell is worth the sum of those checks' points (read
  from the graders; a ``points=N`` written in the source is ignored). Each check of the notebook's
  topics counts once: a check that no test cell names is graded by a last cell the builder adds,
  so nbgrader's total and ``grade-class``'s are the same number.

The built notebooks are committed; a test fails when one is out of date.

The Chinese edition (``notebooks/zh/source/<name>/<name>.ipynb``, its own nbgrader course) is built
from the same source: ``notebooks/src/zh/<name>.md`` holds only the translated prose, one section per
markdown cell, each headed by the English cell's grade id (``<!-- md-3 -->``). Code cells, solution
regions, test cells and points all come from the English source; the one difference is a line
prepended to the first code cell that makes the autograder's feedback Chinese (``ZH_SETUP``).
"""
from __future__ import annotations

import ast
import functools
import json
import re
import subprocess
import sys
import time
from pathlib import Path

from .paths import NOTEBOOKS, SOLUTIONS

SRC = NOTEBOOKS / "src"
ZH_SRC = SRC / "zh"
LANGS = ("en", "zh")
# the feedback language is read from LLMLAB_LANG when feedback is written (in the notebook's kernel)
ZH_SETUP = 'import os; os.environ["LLMLAB_LANG"] = "zh"  # 自动评分的反馈使用中文'
_ZH_SECTION = re.compile(r"^<!--\s*(md-\d+)\s*-->[ \t]*$", re.M)
FENCE = re.compile(r"^```python(?P<info>[^\n]*)\n(?P<body>.*?)^```[ \t]*$", re.S | re.M)


def _definition(topic: str, name: str) -> str:
    source = (SOLUTIONS / f"{topic}.py").read_text()
    tree = ast.parse(source)
    lines = source.splitlines()
    for node in tree.body:
        names = [node.name] if isinstance(node, (ast.FunctionDef, ast.ClassDef)) else [
            t.id for t in getattr(node, "targets", []) if isinstance(t, ast.Name)]
        if name in names:
            start = min([node.lineno] + [d.lineno for d in getattr(node, "decorator_list", [])])
            end = node.end_lineno
            # the AST ends at the last statement: keep the indented comments after it (### END SOLUTION)
            while end < len(lines) and lines[end].startswith((" ", "\t")) and lines[end].lstrip().startswith("#"):
                end += 1
            return "\n".join(lines[start - 1:end])
    raise KeyError(f"{name} is not defined at the top level of solutions/{topic}.py")


def _imports(topic: str) -> str:
    tree = ast.parse((SOLUTIONS / f"{topic}.py").read_text())
    out = []
    for node in tree.body:
        if isinstance(node, (ast.Import, ast.ImportFrom)) and not (
                isinstance(node, ast.ImportFrom) and node.module == "__future__"):
            out.append(ast.unparse(node))
    return "\n".join(out)


def _meta(kind: str, grade_id: str, points: float = 0) -> dict:
    grade_id = re.sub(r"[^A-Za-z0-9_-]", "_", grade_id)  # nbgrader's allowed characters
    base = {"schema_version": 3, "grade_id": grade_id, "task": False}
    if kind == "solution":
        return {"nbgrader": {**base, "grade": False, "locked": False, "solution": True}}
    if kind == "tests":
        return {"nbgrader": {**base, "grade": True, "locked": True, "solution": False, "points": points}}
    return {"nbgrader": {**base, "grade": False, "locked": True, "solution": False}}


def _cell(cell_type: str, source: str, metadata: dict | None = None) -> dict:
    cell = {"cell_type": cell_type, "metadata": metadata or {}, "source": source.strip("\n")}
    if cell_type == "code":
        cell.update(execution_count=None, outputs=[])
    return cell


def translations(name: str) -> dict[str, str]:
    """The Chinese prose of notebook ``name``: ``{grade id of the English markdown cell: text}``."""
    path = ZH_SRC / f"{name}.md"
    if not path.exists():
        return {}
    parts = _ZH_SECTION.split(path.read_text(encoding="utf-8"))
    found: dict[str, str] = {}
    for key, text in zip(parts[1::2], parts[2::2]):
        if key in found:
            raise ValueError(f"{path}: section {key} appears twice")
        found[key] = text.strip()
    return found


def build(name: str, lang: str = "en") -> dict:
    """The notebook (as a dict) built from ``notebooks/src/<name>.md``; ``lang="zh"``: the Chinese
    edition (prose from ``notebooks/src/zh/<name>.md``, code exactly the English edition's)."""
    if lang == "zh":
        return _chinese(name, build(name))
    if lang != "en":
        raise ValueError(f"unknown language {lang!r}; one of {', '.join(LANGS)}")
    text = (SRC / f"{name}.md").read_text()
    cells: list[dict] = []
    pos = 0
    counter = {"n": 0}
    covered: dict[tuple, str] = {}  # check -> the tasks of the cell that grades it

    def gid(prefix):
        counter["n"] += 1
        return f"{prefix}-{counter['n']}"

    for m in FENCE.finditer(text):
        prose = text[pos:m.start()].strip()
        if prose:
            cells.append(_cell("markdown", prose, _meta("markdown", gid("md"))))
        pos = m.end()
        info = m.group("info").split()
        body = m.group("body")
        kind = info[0] if info else "code"
        if kind == "parameters":
            meta = _meta("code", gid("parameters"))
            meta["tags"] = ["parameters"]
            cells.append(_cell("code", body, meta))
        elif kind == "imports":
            cells.append(_cell("code", _imports(info[1]), _meta("code", gid("imports"))))
        elif kind == "solution":
            parts = []
            for ref in info[1:]:
                topic, _, obj = ref.partition(".")
                parts.append(_definition(topic, obj))
            cells.append(_cell("code", "\n\n\n".join(parts), _meta("solution", f"solution-{'-'.join(info[1:])}")))
        elif kind == "tests":
            opts = dict(o.split("=", 1) for o in info[1:])
            tasks = opts["tasks"].split(",")
            cells.append(_cell("code", _test_source(name, tasks, body),
                               _meta("tests", f"tests-{'-'.join(tasks)}", _points_of(name, tasks, covered))))
        else:
            cells.append(_cell("code", body, _meta("code", gid("code"))))
    tail = text[pos:].strip()
    if tail:
        cells.append(_cell("markdown", tail, _meta("markdown", gid("md"))))
    missed = list(dict.fromkeys(c[2] for c in _checks_of(name) if c not in covered))
    if missed:  # checks no test cell names still count, in a last cell, so both totals stay equal
        body = "# The autograder's checks of the tasks above that no earlier test cell grades."
        cells.append(_cell("code", _test_source(name, missed, body),
                           _meta("tests", "tests-remaining", _points_of(name, missed, covered))))
    return {"cells": cells, "metadata": {
        "kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"},
        "language_info": {"name": "python"}}, "nbformat": 4, "nbformat_minor": 5}


def _chinese(name: str, nb: dict) -> dict:
    zh = translations(name)
    prose = {c["metadata"]["nbgrader"]["grade_id"]: c for c in nb["cells"] if c["cell_type"] == "markdown"}
    missing = [k for k in prose if not zh.get(k)]
    extra = [k for k in zh if k not in prose]
    if missing or extra:
        raise ValueError(f"notebooks/src/zh/{name}.md does not match notebooks/src/{name}.md: "
                         f"untranslated cells {missing}, sections with no English cell {extra}")
    for key, cell in prose.items():
        cell["source"] = zh[key]
    first = next(c for c in nb["cells"] if c["cell_type"] == "code")
    if first["metadata"]["nbgrader"].get("solution") or first["metadata"]["nbgrader"].get("grade"):
        raise ValueError(f"{name}: the first code cell must be a locked setup cell to carry the language line")
    first["source"] = ZH_SETUP + "\n" + first["source"]
    return nb


def _test_source(name: str, tasks: list[str], body: str) -> str:
    """The test cell: visible asserts (all a student sees) wrapped in hidden lines that run them inside
    ``grade_cell``, so that the autograded cell's value is the points earned."""
    visible = body.strip("\n")
    if "'''" in visible or visible.endswith("\\"):
        raise ValueError(f"{name}: a test cell's visible part may not contain ''' or end with a backslash")
    return ("### BEGIN HIDDEN TESTS\n"
            "from llmlab.grading.nbgrader import grade_cell\n"
            f"grade_cell({name + '.ipynb'!r}, {tasks!r}, visible=r'''\n"
            "### END HIDDEN TESTS\n"
            + (visible + "\n" if visible else "")
            + "### BEGIN HIDDEN TESTS\n"
            "''')\n"
            "### END HIDDEN TESTS")


def _points_of(name: str, tasks: list[str], covered: dict) -> float:
    from .grading.nbgrader import matches

    mine = [c for c in _checks_of(name) if matches(c[2], tasks)]
    if not mine:
        raise ValueError(f"{name}: the test cell for {','.join(tasks)} grades no check of the notebook's topics")
    for c in mine:
        if c in covered:
            raise ValueError(f"{name}: check {c[0]}/{c[1]} is graded by two test cells "
                             f"({covered[c]} and {','.join(tasks)})")
        covered[c] = ",".join(tasks)
    return float(sum(c[3] for c in mine))


def _checks_of(name: str) -> list[tuple]:
    """(topic, check, task, points, node id) of every hidden check of the notebook's topics."""
    from .topics import topics_of_notebook

    wanted = set(topics_of_notebook(f"{name}.ipynb"))
    return [c for c in all_checks() if c[0] in wanted]


@functools.lru_cache(maxsize=1)
def all_checks() -> tuple[tuple, ...]:
    """(topic, check, task, points, node id) of every hidden check, collected (not run) from the graders.

    pytest collects them in a child process, so the builder's own process stays free of the graders."""
    from .paths import KIT_ROOT
    from .topics import topic_names

    done = subprocess.run([sys.executable, "-c", f"from llmlab.nbbuild import _collect; _collect({topic_names()!r})"],
                          cwd=KIT_ROOT, capture_output=True, text=True, timeout=600)
    lines = [ln for ln in done.stdout.splitlines() if ln.startswith("LLMLAB-CHECKS ")]
    if not lines:
        raise RuntimeError("could not collect the hidden checks:\n" + (done.stdout + done.stderr)[-3000:])
    return tuple(tuple(c) for c in json.loads(lines[-1][len("LLMLAB-CHECKS "):]))


def _collect(topics: list[str]) -> None:
    import pytest

    from .grading.plugin import topic_of
    from .paths import GRADERS, KIT_ROOT

    found = []

    class Collector:
        def pytest_collection_finish(self, session):
            for item in session.items:
                marker = item.get_closest_marker("llmlab")
                if marker is not None and "sub" in getattr(item, "fixturenames", ()):
                    found.append([topic_of(item), item.originalname.removeprefix("test_"),
                                  marker.kwargs.get("task", ""), float(marker.kwargs.get("points", 1)), item.nodeid])

    pytest.main([*(str(GRADERS / f"test_{t}.py") for t in topics), "--collect-only", "-q", "-p",
                 "llmlab.grading.plugin", "-p", "no:cacheprovider", "-c", str(KIT_ROOT / "llmlab" / "grading" /
                 "grading.ini"), "--rootdir", str(KIT_ROOT)], plugins=[Collector()])
    print("LLMLAB-CHECKS " + json.dumps(found))


def course_dir(lang: str = "en") -> Path:
    """The nbgrader course of an edition: ``notebooks/`` (English) or ``notebooks/zh/``."""
    return NOTEBOOKS if lang == "en" else NOTEBOOKS / lang


def output_path(name: str, lang: str = "en") -> Path:
    """Where nbgrader expects the source notebook: ``notebooks/source/<name>/<name>.ipynb`` (English),
    ``notebooks/zh/source/<name>/<name>.ipynb`` (Chinese)."""
    return course_dir(lang) / "source" / name / f"{name}.ipynb"


def render(name: str, lang: str = "en") -> str:
    """Notebook ``name`` in language ``lang`` as ``.ipynb`` JSON text, with stable cell ids
    (``<name>-<n>``)."""
    nb = build(name, lang)
    for n, cell in enumerate(nb["cells"]):
        cell["id"] = f"{name}-{n}"
    return json.dumps(nb, indent=1, ensure_ascii=False) + "\n"


def execute(name: str, out: Path, parameters: dict) -> float:
    """Run notebook ``name`` with papermill inside folder ``out`` and return the wall seconds it took.

    The notebook is written there as ``<name>.ipynb`` (its hidden test cells grade the file of that name
    in the working folder) and executed to ``<name>.executed.ipynb`` with ``parameters`` injected.
    """
    import papermill

    out = Path(out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    source = out / f"{name}.ipynb"
    source.write_text(render(name))
    started = time.time()
    papermill.execute_notebook(str(source), str(out / f"{name}.executed.ipynb"), parameters=parameters,
                               cwd=str(out), kernel_name="python3", progress_bar=False)
    return time.time() - started


def build_all(names: list[str] | None = None, langs: tuple[str, ...] = LANGS) -> list[Path]:
    """Build both editions of each notebook (or of ``names``); the paths written (changed ones only)."""
    written = []
    for src in sorted(SRC.glob("*.md")):
        if names and src.stem not in names:
            continue
        for lang in langs:
            if lang == "zh" and not (ZH_SRC / src.name).exists():
                continue  # not translated yet (tests/test_notebooks_zh.py says which)
            path = output_path(src.stem, lang)
            text = render(src.stem, lang)
            if not path.exists() or path.read_text(encoding="utf-8") != text:
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_text(text, encoding="utf-8")
                written.append(path)
    return written


_CI_LINE = re.compile(r"^#\s*ci:\s*(\w+)\s*=\s*(.+)$")


def ci_parameters(nb: dict) -> dict[str, str]:
    """The ``# ci: NAME = value`` overrides written in a notebook's parameters cell."""
    for cell in nb["cells"]:
        if "parameters" in cell.get("metadata", {}).get("tags", []):
            src = cell["source"] if isinstance(cell["source"], str) else "".join(cell["source"])
            return {m.group(1): m.group(2).strip() for m in map(_CI_LINE.match, src.splitlines()) if m}
    return {}


def with_ci_sizes(nb: dict) -> dict:
    """The notebook with its CI sizes appended to the parameters cell (what papermill would inject):
    small but real runs for CI and benchmarks."""
    overrides = ci_parameters(nb)
    for cell in nb["cells"]:
        if "parameters" in cell.get("metadata", {}).get("tags", []) and overrides:
            src = cell["source"] if isinstance(cell["source"], str) else "".join(cell["source"])
            cell["source"] = src + "\n# CI sizes\n" + "\n".join(f"{k} = {v}" for k, v in overrides.items())
    return nb
