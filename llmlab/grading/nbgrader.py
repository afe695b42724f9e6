"""The hidden part of a notebook's autograder cells.

``grade_cell("attention.ipynb", ["attention.scaled_dot_product_attention"], visible=...)`` grades the
notebook *file* in the kernel's working folder (where ``nbgrader autograde`` and papermill run it) with
the kit's hidden graders, in separate processes, exactly as ``llmlab grade`` / ``grade-class`` would.
The kernel's own state plays no part: a student who patches torch in the notebook patches nothing the
grader uses. The notebook is graded once per kernel; each cell then reports its own tasks.

The cell's value is the points its tasks earned, which nbgrader takes as the cell's partial credit
(its maximum is the sum of the same checks' points), so nbgrader and ``grade-class`` give every
student the same score. The cell's visible asserts run inside this call: a failing one is reported,
but it neither costs the hidden checks' points nor hides their diagnosis. Everything goes to standard
output, because nbgrader gives no credit to a cell that writes to standard error.
"""
from __future__ import annotations

import contextlib
import sys
import traceback
import os
import warnings
from pathlib import Path

from ..i18n import check_title
from ..i18n import translate as _t  # the student's language: LLMLAB_LANG, set by the setup cell

_CACHE: dict[tuple[str, float], list] = {}  # (path, mtime): its CheckRecords


def _records(path: Path) -> list:
    from .. import topics
    from .runner import grade

    key = (str(path), path.stat().st_mtime)
    if key not in _CACHE:
        names = topics.topics_of_notebook(path.name)
        # LLMLAB_MAX_EXAMPLES lowers hypothesis' examples per check: the kit's notebook tests prove the
        # nbgrader integration (full marks, zero), the graders' depth is tested on the modules
        examples = int(os.environ.get("LLMLAB_MAX_EXAMPLES") or 0) or None
        result = grade({path.stem: path}, names, max_examples=examples)[path.stem]
        _CACHE[key] = [c for t in result.topics.values() for c in t.checks]
    return _CACHE[key]


def matches(task: str, wanted: list[str]) -> bool:
    """Whether a check's ``task`` is one of ``wanted`` (or a method of a class named there)."""
    return any(task == w or task.startswith(w + ".") for w in wanted)


def _run_visible(code: str, namespace: dict) -> None:
    try:
        exec(compile(code, "<visible tests>", "exec"), namespace)
    except Exception as exc:  # noqa: BLE001 - a student's failing assert is feedback, not a crash
        frames = [f for f in traceback.extract_tb(exc.__traceback__) if f.filename == "<visible tests>"]
        where = f" (line {frames[-1].lineno} of the visible tests)" if frames else ""
        print(_t(f"A visible test failed{where}: {type(exc).__name__}: {exc}".rstrip(": ")))


def grade_cell(notebook: str, tasks: list[str], visible: str = "") -> float:
    """Run the cell's ``visible`` asserts, grade ``tasks`` with the hidden checks, return points earned."""
    namespace = sys._getframe(1).f_globals  # the notebook's globals: the visible asserts use its names
    with contextlib.redirect_stderr(sys.stdout), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if visible.strip():
            _run_visible(visible, namespace)
        path = Path(notebook).resolve()
        if not path.exists():
            print(_t(f"Cannot find {notebook} in {Path.cwd()}: keep the notebook's file name. 0 points."))
            return 0.0
        checks = [c for c in _records(path) if matches(c.task, tasks)]
    got = sum(c.points for c in checks)
    total = sum(c.max_points for c in checks)
    failed = [c for c in checks if c.status != "passed"]
    if failed:
        print(_t(f"{got:g} / {total:g} points on the hidden checks of {', '.join(tasks)}:"))
        for c in failed:
            print(_t(f"- {check_title(c.topic, c.check)} [{c.max_points:g} pt]: ")
                  + c.feedback.replace("\n", "\n    "))
    else:
        print(_t(f"All {len(checks)} hidden checks passed ({total:g} points)."))
    return float(got)
