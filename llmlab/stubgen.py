"""Generate ``exercises/<topic>.py`` from ``solutions/<topic>.py``.

The reference is the single source. Each region between ``### BEGIN SOLUTION`` and
``### END SOLUTION`` (nbgrader's markers) becomes:

* inside a function: ``raise NotImplementedError("task <topic>.<qualname>: ...")``, so the stub
  imports, its signatures and docstrings (the spec) are intact, and every call names its task;
* at module level: the region's ``# stub:`` lines, uncommented (e.g. ``# stub: KEYWORDS = ()``), or
  nothing (a private helper the student writes themselves).
"""
from __future__ import annotations

import ast
import re
from pathlib import Path

from .paths import EXERCISES, SOLUTIONS

BEGIN = "### BEGIN SOLUTION"
END = "### END SOLUTION"
HEADER = ("# Exercise stub generated from the reference by `llmlab stubs` -- fill in every body that raises\n"
          "# NotImplementedError; signatures and docstrings are the spec. Check yourself with `pytest exercises/`.\n")


class StubError(ValueError):
    """A reference's ``### BEGIN SOLUTION``/``### END SOLUTION`` markers do not pair up."""


def _enclosing(tree: ast.AST, lineno: int) -> str | None:
    """Qualified name of the innermost function containing ``lineno``."""
    best = None

    def walk(node, prefix):
        nonlocal best
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                name = f"{prefix}{child.name}"
                if child.lineno <= lineno <= child.end_lineno:
                    if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)):
                        best = name
                    walk(child, name + ".")

    walk(tree, "")
    return best


def make_stub(source: str, topic: str) -> str:
    """The exercise stub of reference ``source``: each solution region inside a function becomes
    ``raise NotImplementedError("task <topic>.<function>: not implemented yet")``; one outside a function
    becomes its ``# stub:`` lines, uncommented. :data:`HEADER` goes first. Raises :class:`StubError`."""
    tree = ast.parse(source)
    lines = source.splitlines()
    out: list[str] = []
    i = 0
    while i < len(lines):
        line = lines[i]
        if line.strip() == BEGIN:
            indent = line[: len(line) - len(line.lstrip())]
            try:
                end = next(j for j in range(i + 1, len(lines)) if lines[j].strip() == END)
            except StopIteration:
                raise StubError(f"{topic}: line {i + 1}: {BEGIN} without {END}") from None
            region = lines[i + 1:end]
            qualname = _enclosing(tree, i + 1)
            if qualname:
                out.append(f'{indent}# YOUR CODE HERE')
                out.append(f'{indent}raise NotImplementedError("task {topic}.{qualname}: not implemented yet")')
            else:
                out += [re.sub(r"^(\s*)# stub: ?", r"\1", r) for r in region if r.strip().startswith("# stub:")]
            i = end + 1
            continue
        if line.strip() == END:
            raise StubError(f"{topic}: line {i + 1}: {END} without {BEGIN}")
        out.append(line)
        i += 1
    return HEADER + "\n".join(out) + "\n"


def stub_for(topic: str) -> str:
    """The stub of ``solutions/<topic>.py``."""
    return make_stub((SOLUTIONS / f"{topic}.py").read_text(), topic)


def write_stubs(topics: list[str], directory: Path = EXERCISES) -> list[Path]:
    """Write the stub of each topic as ``directory/<topic>.py`` where it differs; returns the paths written."""
    written = []
    for topic in topics:
        path = Path(directory) / f"{topic}.py"
        text = stub_for(topic)
        if not path.exists() or path.read_text() != text:
            path.write_text(text)
            written.append(path)
    return written
