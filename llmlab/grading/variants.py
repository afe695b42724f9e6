"""Buggy variants as code: each is the reference with one realistic mistake.

A topic's variants live in ``graders/variants/<topic>.py``. The usual form is a *patch* of the
reference: the function it changes, the snippet it replaces and the snippet it puts instead::

    bugs = Variants("attention")

    bugs.patch("softmax_over_queries", "scaled_dot_product_attention",
               "softmax(dim=-1)", "softmax(dim=-2)",
               mistake="weights are normalised over queries, not keys: softmax over the wrong axis?")

The target is a function, a method (``MultiHeadAttention.forward``) or a module constant
(``REFUSAL_KEYWORDS``). A one-line snippet must occur exactly once in the target's code (its docstring,
which often quotes the very line, is not searched); a replacement of several lines continues at the
indentation of the line it lands in. A snippet of several lines is matched line by line whatever its
indentation and re-indented where it is found. Several ``patch`` calls with one name make one variant
with several edits (one mistake that touches several places); the edits of one target are applied in
turn to its text, so only their result has to be valid Python. The patch is applied to the
reference's source when the variants are loaded, so a variant can never drift from the reference:
every other line, the argument checks included, is the reference's.

For the rare mistake that is a different algorithm rather than an edit, a whole replacement function
is still possible (say why in a comment above it)::

    @bugs.bug("name", replaces="function_name", mistake="...")
    def buggy(...): ...

Variants serve twice: the kit's tests grade each one (it must lose points), and the grader runs them
on a failing input to name the student's mistake (whose outputs match which variant's).
"""
from __future__ import annotations

import ast
import importlib
import inspect
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
    """A buggy variant of a topic's reference: its ``name``, the ``mistake`` it makes, and how it
    differs (``edits``: snippets replaced in the reference; ``patches``: whole functions replaced)."""
    topic: str
    name: str
    mistake: str
    patches: list = field(default_factory=list)  # (target, function): whole replacements
    edits: list = field(default_factory=list)  # (target, old, new): snippets replaced in the reference
    _module: types.ModuleType | None = None

    def source(self) -> str:
        """The full module source of this variant."""
        text = (SOLUTIONS / f"{self.topic}.py").read_text()
        by_target: dict[str, list] = {}
        for target, old, new in self.edits:
            by_target.setdefault(target, []).append((old, new))
        for target, edits in by_target.items():
            text = apply_edits(text, target, edits, where=f"variant {self.topic}:{self.name}")
        if not self.patches:
            return text
        parts = [text, f"\n\n# ---- buggy variant {self.name}: {self.mistake}\n"]
        for target, fn in self.patches:
            src = textwrap.dedent(inspect.getsource(fn))
            lines = src.splitlines()
            while lines and lines[0].lstrip().startswith("@"):
                # drop the registration decorator (it may span several lines)
                depth = 0
                while True:
                    line = lines.pop(0)
                    depth += line.count("(") - line.count(")")
                    if depth <= 0:
                        break
            parts.append("\n".join(lines) + "\n")
            parts.append(f"{target} = {fn.__name__}\n")
        return "\n".join(parts)

    def functions(self) -> list[tuple[str, str]]:
        """(name, source) of each top-level function (or module constant) this variant changes, as it
        reads in the variant (named as the reference names it): what a student would have pasted into a
        notebook cell."""
        targets = [t for t, *_ in self.edits] + [t for t, _ in self.patches]
        tops = [t for t in dict.fromkeys(targets) if "." not in t]
        if not tops:
            return []
        src = self.source()
        out = []
        for target in tops:
            if any(t == target for t, _ in self.patches):
                fn = next(f for t, f in self.patches if t == target)
                text = textwrap.dedent(inspect.getsource(fn))
                text = text[text.index("def "):]
                out.append((target, text.replace(f"def {fn.__name__}(", f"def {target}(", 1)))
            else:
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
    change a line that opens a block another edit closes); only the result must parse.
    """
    start, end = _span(source, target)
    lines = source.splitlines(keepends=True)
    body = "".join(lines[start:end])
    doc = _docstring(body)
    for old, new in edits:
        if "\n" not in old.strip("\n"):
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

    def patch(self, name: str, target: str, old: str, new: str, *, mistake: str | None = None) -> None:
        """Variant ``name``: the reference with ``old`` replaced by ``new`` inside ``target``.

        ``mistake`` (the feedback text naming the mistake) is required on the first edit of a variant.
        """
        if name not in self.items:
            if not mistake:
                raise ValueError(f"variant {name!r}: the first patch must state its mistake")
            self.items[name] = Variant(self.topic, name, mistake)
        self.items[name].edits.append((target, old, new))

    def bug(self, name: str, *, replaces: str, mistake: str):
        """Decorator: variant ``name`` replaces the reference's ``replaces`` by the decorated function."""
        def register(fn):
            variant = self.items.setdefault(name, Variant(self.topic, name, mistake))
            variant.patches.append((replaces, fn))
            return fn
        return register

    def __iter__(self):
        return iter(self.items.values())

    def __len__(self):
        return len(self.items)

    def __getitem__(self, name):
        return self.items[name]


_CACHE: dict[str, Variants] = {}


def load_variants(topic: str) -> Variants:
    """The variants of ``topic`` (an empty registry when the topic has none)."""
    if topic not in _CACHE:
        if str(KIT_ROOT) not in sys.path:
            sys.path.insert(0, str(KIT_ROOT))
        path = GRADERS / "variants" / f"{topic}.py"
        if not path.exists():
            _CACHE[topic] = Variants(topic)
        else:
            mod = importlib.import_module(f"graders.variants.{topic}")
            _CACHE[topic] = mod.bugs
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
