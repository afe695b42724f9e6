"""Every public definition of ``llmlab/`` has a docstring: module-level functions and classes, and the
public methods of public classes (public: no leading underscore). Read with ``ast``: nothing is imported."""
from __future__ import annotations

import ast

from llmlab.paths import KIT_ROOT

PACKAGE = KIT_ROOT / "llmlab"


def public_definitions(body, prefix=""):
    """``(qualified name, node)`` for each public function or class in ``body``, and, inside a public
    class, for each of its public methods and classes (recursively)."""
    for node in body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) and not node.name.startswith("_"):
            yield prefix + node.name, node
            if isinstance(node, ast.ClassDef):
                yield from public_definitions(node.body, f"{prefix}{node.name}.")


def undocumented() -> tuple[list[str], int]:
    """The ``path:line name`` of every public definition without a docstring, and how many there are in all."""
    missing, total = [], 0
    for path in sorted(PACKAGE.rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        for name, node in public_definitions(tree.body):
            total += 1
            if ast.get_docstring(node) is None:
                missing.append(f"{path.relative_to(KIT_ROOT)}:{node.lineno} {name}")
    return missing, total


def test_the_walk_finds_the_public_definitions():
    tree = ast.parse("def f(): pass\ndef _g(): pass\nclass C:\n    def m(self): pass\n    def _n(self): pass\n"
                     "class _D:\n    def m(self): pass\n")
    assert [name for name, _ in public_definitions(tree.body)] == ["f", "C", "C.m"]


def test_every_public_definition_has_a_docstring():
    missing, total = undocumented()
    assert total > 150  # the walk reached the package
    assert not missing, f"{len(missing)} of {total} public definitions have no docstring:\n" + "\n".join(missing)
