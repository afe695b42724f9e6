"""Turn a student's notebook into a module the grader can import.

Only definitions are taken: top-level imports, functions, classes and constant assignments from the
code cells. Demonstration cells (training loops, plots, prints) never run while grading, so the
result does not depend on cell order, on execution state, or on cells the student deleted or
duplicated. When a name is defined twice, a definition in an nbgrader solution cell wins over one
elsewhere, and a later one over an earlier one.
"""
from __future__ import annotations

import ast
import json
from pathlib import Path

_KEEP = (ast.Import, ast.ImportFrom, ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)


def _is_constant(node: ast.AST) -> bool:
    """A literal, or a container / arithmetic of literals (``KEYWORDS = ("a", "b")``, ``EPS = 1e-6``)."""
    if isinstance(node, ast.Constant):
        return True
    if isinstance(node, (ast.Tuple, ast.List, ast.Set)):
        return all(_is_constant(e) for e in node.elts)
    if isinstance(node, ast.Dict):
        return all(k is not None and _is_constant(k) and _is_constant(v) for k, v in zip(node.keys, node.values))
    if isinstance(node, ast.UnaryOp):
        return _is_constant(node.operand)
    if isinstance(node, ast.BinOp):
        return _is_constant(node.left) and _is_constant(node.right)
    return False


def _names(node: ast.AST) -> list[str]:
    if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
        return [node.name]
    if isinstance(node, (ast.Assign, ast.AnnAssign)):
        targets = node.targets if isinstance(node, ast.Assign) else [node.target]
        return [t.id for t in targets if isinstance(t, ast.Name)]
    return []


def _cell_source(cell) -> str:
    src = cell.get("source", "")
    if isinstance(src, list):
        src = "".join(src)
    # IPython magics and shell escapes are not Python: blank them, keep line numbers
    return "\n".join("" if line.lstrip().startswith(("%", "!")) else line for line in src.splitlines())


def extract_module(notebook: str | Path) -> str:
    """The module source made of the notebook's definitions."""
    nb = json.loads(Path(notebook).read_text(encoding="utf-8"))
    imports: list[str] = []
    defined: dict[str, tuple[int, int, str]] = {}  # name -> (is_solution, order, source)
    order = 0
    for cell in nb.get("cells", []):
        if cell.get("cell_type") != "code":
            continue
        source = _cell_source(cell)
        try:
            tree = ast.parse(source)
        except SyntaxError:
            continue  # a cell that does not parse cannot define anything
        is_solution = int(bool(cell.get("metadata", {}).get("nbgrader", {}).get("solution")))
        for node in tree.body:
            keep = isinstance(node, _KEEP) or (
                isinstance(node, (ast.Assign, ast.AnnAssign)) and node.value is not None and _is_constant(node.value)
                and _names(node))
            if not keep:
                continue
            text = ast.get_source_segment(source, node)
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) and node.decorator_list:
                start = min(d.lineno for d in node.decorator_list)
                text = "\n".join(source.splitlines()[start - 1:node.end_lineno])
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                if text not in imports:
                    imports.append(text)
                continue
            order += 1
            for name in _names(node):
                if name not in defined or defined[name][0] <= is_solution:
                    defined[name] = (is_solution, order, text)
    body = sorted({v for v in defined.values()}, key=lambda v: v[1])
    imports.sort(key=lambda line: not line.startswith("from __future__"))  # must come first
    header = f'"""Definitions extracted from {Path(notebook).name} for grading."""\n'
    return header + "\n".join(imports) + "\n\n\n" + "\n\n\n".join(v[2] for v in body) + "\n"
