"""The hidden part of a notebook's autograder cells.

``check_tasks("attention.ipynb", ["attention.scaled_dot_product_attention"])`` grades the notebook
*file* in the kernel's working folder (where ``nbgrader autograde`` and papermill run it) with the
kit's hidden graders, in separate processes, exactly as ``llmlab grade attention.ipynb`` would. The
kernel's own state plays no part: a student who patches torch in the notebook patches nothing the
grader uses. The notebook is graded once per kernel; each cell then reports its own tasks. A failing
cell raises ``AssertionError`` with the student-facing feedback only (never grader source).
"""
from __future__ import annotations

from pathlib import Path

_CACHE: dict[tuple[str, float], dict] = {}


def _records(path: Path) -> list[dict]:
    from .. import topics
    from .runner import grade

    key = (str(path), path.stat().st_mtime)
    if key not in _CACHE:
        names = topics.topics_of_notebook(path.name)
        result = grade({path.stem: path}, names)[path.stem]
        _CACHE[key] = [c for t in result.topics.values() for c in t.checks]
    return _CACHE[key]


def _matches(task: str, wanted: list[str]) -> bool:
    return any(task == w or task.startswith(w + ".") for w in wanted)


def check_tasks(notebook: str, tasks: list[str]) -> None:
    path = Path(notebook).resolve()
    if not path.exists():
        raise AssertionError(f"cannot find {notebook} in {Path.cwd()}: keep the notebook's file name")
    checks = [c for c in _records(path) if _matches(c["task"], tasks)]
    if not checks:
        raise AssertionError(f"no graded checks found for {', '.join(tasks)}")
    failed = [c for c in checks if c["status"] != "passed"]
    got = sum(c["points"] for c in checks)
    total = sum(c["max_points"] for c in checks)
    if failed:
        lines = [f"{got:g} / {total:g} points on the hidden checks of {', '.join(tasks)}:"]
        for c in failed:
            lines.append(f"- {c['check']} [{c['max_points']:g} pt]: " + c["feedback"].replace("\n", "\n    "))
        raise AssertionError("\n".join(lines))
    print(f"All {len(checks)} hidden checks passed ({total:g} points).")
