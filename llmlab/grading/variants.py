"""Buggy variants as data: each is the reference with one realistic mistake, declared as a patch.

A topic's variants live in ``graders/variants/<topic>.diff``, one block a mistake::

    # softmax taken over the wrong axis (a comment line starts with #)
    == softmax_over_queries @ scaled_dot_product_attention: weights are normalised over queries, not keys
    - softmax(dim=-1)
    + softmax(dim=-2)

``== name @ target: mistake`` opens a variant: its name (what the kit's tests and
``graders/expected_failures`` call it), the function, method (``MultiHeadAttention.forward``) or module
constant (``REFUSAL_KEYWORDS``) it changes, and the mistake in plain words (the feedback text that names
it, one line). Then its edits: ``- old`` lines followed by ``+ new`` lines (``-`` or ``+`` alone is an
empty line). A ``-`` after ``+`` lines starts the next edit; ``@ target`` starts the next edit too (of
another target, or of the same one after an edit that only deletes). One ``-`` line is a snippet that
must occur exactly once in the target's code (its docstring, which often quotes the very line, is not
searched) and is replaced in place; ``+`` lines that replace it continue at the indentation of its line.
Several ``-`` lines are a block of whole lines, matched whatever their indentation and re-indented where
found. No ``+`` line deletes; ``+`` lines with no ``-`` line replace the whole target (for the rare mistake
that is a different algorithm rather than an edit; a comment above it says why). The edits of one target
are applied in turn to its text, so only their result has to be valid Python.

The patch is applied to the reference's source when the variants are loaded, so a variant can never
drift from the reference: every other line, the argument checks included, is the reference's. Variants
serve twice: the kit's tests grade each one (it must lose points), and the grader runs them on a
failing input to name the student's mistake (whose outputs match which variant's).
"""
from __future__ import annotations

import ast
import re
import sys
import textwrap
import types
from dataclasses import dataclass, field
from pathlib import Path

from ..paths import GRADERS, KIT_ROOT, SOLUTIONS


class PatchError(ValueError):
    """A variant's patch does not apply to the reference (the reference changed under it)."""


@dataclass
class Variant:
    """A buggy variant of a topic's reference: its ``name``, the ``mistake`` it makes, and its ``edits``
    (``(target, old, new)``: ``old`` replaced by ``new`` in ``target``; ``old=None`` replaces all of it)."""
    topic: str
    name: str
    mistake: str
    edits: list = field(default_factory=list)
    _module: types.ModuleType | None = None

    def source(self) -> str:
        """The full module source of this variant."""
        text = (SOLUTIONS / f"{self.topic}.py").read_text()
        by_target: dict[str, list] = {}
        for target, old, new in self.edits:
            by_target.setdefault(target, []).append((old, new))
        for target, edits in by_target.items():
            text = apply_edits(text, target, edits, where=f"variant {self.topic}:{self.name}")
        return text

    def functions(self) -> list[tuple[str, str]]:
        """(name, source) of each top-level function (or module constant) this variant changes, as it
        reads in the variant: what a student would have pasted into a notebook cell."""
        tops = [t for t in dict.fromkeys(t for t, *_ in self.edits) if "." not in t]
        if not tops:
            return []
        src = self.source()
        out = []
        for target in tops:
            start, end = _span(src, target)
            lines = [line for line in src.splitlines()[start:end]  # as a student writes it: no markers
                     if line.strip() not in ("### BEGIN SOLUTION", "### END SOLUTION")]
            out.append((target, "\n".join(lines) + "\n"))
        return out

    def module(self) -> types.ModuleType:
        """The variant, imported in this process (trusted code) as part of the ``solutions`` package."""
        if self._module is None:
            name = f"solutions._variant_{self.topic}_{self.name}"
            mod = types.ModuleType(name)
            mod.__package__ = "solutions"
            mod.__file__ = f"<variant {self.topic}:{self.name}>"
            sys.modules[name] = mod
            exec(compile(self.source(), mod.__file__, "exec"), mod.__dict__)
            self._module = mod
        return self._module

    def write(self, directory: Path) -> Path:
        """A submission folder: every reference module, with this topic's replaced by the variant."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        for ref in SOLUTIONS.glob("*.py"):
            if ref.name != "__init__.py":
                (directory / ref.name).write_text(ref.read_text())
        (directory / f"{self.topic}.py").write_text(self.source())
        return directory


def _defines(node: ast.AST, name: str) -> bool:
    """Whether ``node`` defines ``name``: a function, a class, or an assignment (a module constant)."""
    if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
        return node.name == name
    targets = node.targets if isinstance(node, ast.Assign) else [getattr(node, "target", None)]
    return any(isinstance(t, ast.Name) and t.id == name for t in targets)


def _span(source: str, qualname: str) -> tuple[int, int]:
    """0-based [start, end) line span of the function, method or constant ``qualname`` (decorators included)."""
    body = ast.parse(source).body
    node = None
    for part in qualname.split("."):
        node = next((n for n in body if _defines(n, part)), None)
        if node is None:
            raise PatchError(f"no {qualname!r} in the reference")
        body = getattr(node, "body", [])
    first = min([node.lineno] + [d.lineno for d in getattr(node, "decorator_list", [])])
    return first - 1, node.end_lineno


def apply_edit(source: str, target: str, old: str, new: str, *, where: str = "patch") -> str:
    """``source`` with ``old`` replaced by ``new`` inside ``target``; ``old`` must occur exactly once there."""
    return apply_edits(source, target, [(old, new)], where=where)


def apply_edits(source: str, target: str, edits: list[tuple[str, str]], *, where: str = "patch") -> str:
    """``source`` with each ``(old, new)`` of ``edits`` applied in turn inside ``target``.

    The function is located once, so the edits in between need not leave valid Python (an edit may
    change a line that opens a block another edit closes); only the result must parse. ``old=None``
    replaces the whole target (decorators included) by ``new``, at the target's indentation.
    """
    start, end = _span(source, target)
    lines = source.splitlines(keepends=True)
    body = "".join(lines[start:end])
    doc = _docstring(body)
    for old, new in edits:
        if old is None:
            indent = body[:len(body) - len(body.lstrip(" "))]
            body = "".join((indent + line if line.strip() else "") + "\n"
                           for line in textwrap.dedent(new.strip("\n")).splitlines())
        elif "\n" not in old.strip("\n"):
            # a snippet is looked for in the code: the docstring often quotes the very line to change
            hits = list(_find_all(body, old))
            if doc and (skip := body.find(doc)) >= 0:
                hits = [i for i in hits if not skip <= i < skip + len(doc)]
            if len(hits) != 1:
                raise PatchError(f"{where}: {old!r} occurs {len(hits)} times in the code of {target} "
                                 "(must be exactly once)")
            if "\n" in new.strip("\n"):
                # a snippet that becomes several lines: continue at the indentation of its line
                line_start = body.rfind("\n", 0, hits[0]) + 1
                line = body[line_start:]
                indent = line[:len(line) - len(line.lstrip())]
                new = textwrap.dedent(new.strip("\n")).replace("\n", "\n" + indent)
            first, last = hits[0], hits[0] + len(old)
            line_start, line_end = body.rfind("\n", 0, first) + 1, body.find("\n", last)
            line_end = len(body) if line_end < 0 else line_end + 1
            if not new and not (body[line_start:first] + body[last:line_end]).strip():
                first, last = line_start, line_end  # deleting a whole line: no blank line is left
            body = body[:first] + new + body[last:]
        else:
            body = _replace_block(body, old, new, target, where)
    return "".join(lines[:start]) + body + "".join(lines[end:])


def _docstring(function_source: str) -> str:
    """The source text of a function's docstring (quotes included), or "" when it has none."""
    node = ast.parse(textwrap.dedent(function_source)).body[0]
    first = node.body[0] if getattr(node, "body", None) else None
    if not (isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant)
            and isinstance(first.value.value, str)):
        return ""
    lines = function_source.splitlines(keepends=True)[first.lineno - 1:first.end_lineno]
    text = "".join(lines).strip()
    return text if text in function_source else ""


def _find_all(text: str, snippet: str):
    """Start offsets of every occurrence of ``snippet`` in ``text``."""
    i = text.find(snippet)
    while i >= 0:
        yield i
        i = text.find(snippet, i + 1)


def _replace_block(body: str, old: str, new: str, target: str, where: str) -> str:
    """Replace a block of whole lines, matched whatever its indentation, re-indented where found."""
    want = textwrap.dedent(old.strip("\n")).splitlines()
    have = body.splitlines(keepends=True)
    hits = []
    for i in range(len(have) - len(want) + 1):
        indent = have[i][:len(have[i]) - len(have[i].lstrip())]
        if all(h.rstrip("\n").rstrip() == ((indent + w) if w else "").rstrip()
               for h, w in zip(have[i:i + len(want)], want)):
            hits.append((i, indent))
    if len(hits) != 1:
        raise PatchError(f"{where}: the block starting {want[0].strip()!r} occurs {len(hits)} times in "
                         f"{target} (must be exactly once)")
    i, indent = hits[0]
    repl = "".join((indent + line if line.strip() else "") + "\n"
                   for line in textwrap.dedent(new.strip("\n")).splitlines()) if new.strip() else ""
    return "".join(have[:i]) + repl + "".join(have[i + len(want):])


class Variants:
    """The registry of one topic's buggy variants."""

    def __init__(self, topic: str):
        self.topic = topic
        self.items: dict[str, Variant] = {}

    def patch(self, name: str, target: str, old: str | None, new: str, *, mistake: str | None = None) -> None:
        """Variant ``name``: the reference with ``old`` replaced by ``new`` inside ``target`` (``old=None``:
        the whole target replaced by ``new``).

        ``mistake`` (the feedback text naming the mistake) is required on the first edit of a variant.
        """
        if name not in self.items:
            if not mistake:
                raise ValueError(f"variant {name!r}: the first patch must state its mistake")
            self.items[name] = Variant(self.topic, name, mistake)
        self.items[name].edits.append((target, old, new))

    def __iter__(self):
        return iter(self.items.values())

    def __len__(self):
        return len(self.items)

    def __getitem__(self, name):
        return self.items[name]


def parse_variants(text: str, topic: str, *, where: str = "variants") -> Variants:
    """The variants declared in ``text`` (the format of ``graders/variants/<topic>.diff``, see above)."""
    bugs = Variants(topic)
    name = target = mistake = None
    old: list[str] = []
    new: list[str] = []

    def flush():
        nonlocal old, new, mistake
        if old or new:
            bugs.patch(name, target, "\n".join(old) if old else None, "\n".join(new), mistake=mistake)
            mistake = None  # stated once, on the variant's first edit
        old, new = [], []

    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip() or line.startswith("#"):
            continue
        if header := re.fullmatch(r"== (\w+) @ ([\w.]+): (.+)", line):
            flush()
            if name and name not in bugs.items:
                raise PatchError(f"{where}: variant {name!r} has no edit")
            name, target, mistake = header.groups()
            if name in bugs.items:
                raise PatchError(f"{where}:{number}: variant {name!r} is declared twice")
        elif line.startswith("@ ") and name:
            flush()
            target = line[2:].strip()
        elif line[:1] in "-+" and line[1:2] in ("", " ") and name:
            if line[0] == "-" and new:
                flush()
            (old if line[0] == "-" else new).append(line[2:])
        else:
            raise PatchError(f"{where}:{number}: expected '== name @ target: mistake', '@ target', '- old' "
                             f"or '+ new', got {line[:60]!r}")
    flush()
    if name and name not in bugs.items:
        raise PatchError(f"{where}: variant {name!r} has no edit")
    return bugs


_CACHE: dict[str, Variants] = {}


def variants_file(topic: str) -> Path:
    """Where ``topic``'s buggy variants are declared."""
    return GRADERS / "variants" / f"{topic}.diff"


def load_variants(topic: str) -> Variants:
    """The variants of ``topic`` (an empty registry when the topic has none)."""
    if topic not in _CACHE:
        path = variants_file(topic)
        _CACHE[topic] = (parse_variants(path.read_text(), topic, where=str(path.relative_to(KIT_ROOT)))
                         if path.exists() else Variants(topic))
    return _CACHE[topic]


def alternatives(topic: str) -> list[Path]:
    """Alternative correct implementations of ``topic`` (full modules) that must get full marks."""
    return sorted((GRADERS / "alternatives").glob(f"{topic}__*.py"))


def write_alternative(path: Path, directory: Path) -> Path:
    """A submission folder: every reference module, with one topic replaced by an alternative."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    for ref in SOLUTIONS.glob("*.py"):
        if ref.name != "__init__.py":
            (directory / ref.name).write_text(ref.read_text())
    topic = Path(path).stem.split("__")[0]
    (directory / f"{topic}.py").write_text(Path(path).read_text())
    return directory
