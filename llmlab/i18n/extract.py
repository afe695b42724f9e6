"""The English feedback texts of the kit, found statically (``ast``) in the graders and variants.

A text becomes a *template*: the literal parts of an f-string kept, each ``{...}`` part replaced by
``{}`` (literal braces doubled), so ``f"evaluate returned {acc:.6g}, expected {want}"`` is the
template ``evaluate returned {}, expected {}``. Where a message is a variable or a helper's result,
the assignments in the same function and the helper's ``return`` values are followed.

Topic texts come from ``graders/test_<topic>.py`` (``CheckFailed`` messages, ``what=``, ``hint=``,
``diagnosis=`` and what they are built from) and ``graders/variants/<topic>.diff`` (each variant's
mistake).
The check titles are the grader tests' names. The catalogue (:mod:`llmlab.i18n`) must translate all of
them; ``scripts/i18n_extract.py`` lists what is missing or stale.
"""
from __future__ import annotations

import ast
import re
from pathlib import Path

from ..paths import GRADERS

KEYWORDS = {"what", "hint", "mistake", "diagnosis", "problem", "message"}
# variables that hold words for the student when an f-string message inserts them (their values are
# texts of their own); other inserted values (inputs, numbers) are copied as they are
WORDY_NAMES = KEYWORDS | {"reason", "why", "msg", "detail", "explanation", "issue", "kind", "source", "words"}
# grader helpers whose (positional) first argument is a message shown to the student
MESSAGE_CALLS = {"CheckFailed", "_fail", "fail"}
PROSE = re.compile(r"[A-Za-z]{2,}[^{}]*\s[^{}]*[A-Za-z]{2,}|[A-Za-z]{3,}")


def _escape(text: str) -> str:
    return text.replace("{", "{{").replace("}", "}}")


def literal_parts(template: str) -> str:
    """The template's literal text (placeholders removed, braces unescaped)."""
    return re.sub(r"(?<!\{)\{\}(?!\})", "", template).replace("{{", "{").replace("}}", "}")


def worth_translating(template: str) -> bool:
    """A template with words in it (not just a placeholder, a code expression or punctuation)."""
    text = literal_parts(template).strip()
    code = re.fullmatch(r"[\w.\[\]]+\([^()]*\)[\w.\[\]]*|`[^`]*`", text) or (
        re.fullmatch(r"\S+", text) and re.search(r"[_.\d()\[\]]|[a-z][A-Z]", text))
    return bool(re.search(r"[A-Za-z]{2,}", text)) and not code


class _Finder(ast.NodeVisitor):
    def __init__(self, tree: ast.Module):
        self.found: set[str] = set()
        self.helpers = {n.name: n for n in tree.body if isinstance(n, ast.FunctionDef)}
        self.params = {n.name: [a.arg for a in n.args.args] for n in ast.walk(tree) if isinstance(n, ast.FunctionDef)}
        self.scope: list[ast.FunctionDef] = []
        self._resolving: set[str] = set()
        self.fragments: set[str] = set()  # the parts of joined texts

    # -- templates of an expression ------------------------------------------------------------
    def templates(self, node, depth: int = 0) -> list[str]:
        if depth > 8:
            return ["{}"]
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            return [_escape(node.value)]
        if isinstance(node, ast.JoinedStr):
            out = [""]
            for part in node.values:
                if isinstance(part, ast.Constant):
                    out = [o + _escape(part.value) for o in out]
                else:
                    inner = part.value.value if isinstance(part.value, ast.Subscript) else part.value
                    helper = isinstance(inner, ast.Call) and getattr(inner.func, "id", "") in self.helpers
                    if isinstance(inner, ast.Name) and inner.id in WORDY_NAMES or helper:
                        self.fragments.update(t for t in self.templates(inner, depth + 1) if worth_translating(t))
                    out = [o + "{}" for o in out]
            return out
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
            left, right = self.templates(node.left, depth + 1), self.templates(node.right, depth + 1)
            return [a + b for a in left for b in right][:16]
        if isinstance(node, ast.IfExp):
            return self.templates(node.body, depth + 1) + self.templates(node.orelse, depth + 1)
        if isinstance(node, ast.Subscript) and isinstance(node.value, ast.Dict):  # {"a": "...", ...}[key]
            return self.templates(node.value, depth + 1)
        if isinstance(node, ast.Dict):
            return [t for v in node.values for t in self.templates(v, depth + 1)]
        if isinstance(node, (ast.List, ast.Tuple)):
            return [t for elt in node.elts for t in self.templates(elt, depth + 1)]
        if isinstance(node, ast.Name):
            return self._resolve_name(node.id, depth)
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in self.helpers:
            return self._returns(self.helpers[node.func.id], depth)
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "join" \
                and isinstance(node.func.value, ast.Constant) and node.args:
            # "; ".join(parts): each part is a text of its own (the translation splits the joined text again)
            arg = node.args[0]
            pieces = self.templates(arg.elt, depth + 1) if isinstance(arg, (ast.GeneratorExp, ast.ListComp)) \
                else self.templates(arg, depth + 1)
            self.fragments.update(p for p in pieces if worth_translating(p))
        return ["{}"]

    def _resolve_name(self, name: str, depth: int) -> list[str]:
        if not self.scope or name in self._resolving:
            return ["{}"]
        self._resolving.add(name)
        try:
            out = []
            for node in ast.walk(self.scope[-1]):
                if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == name for t in node.targets):
                    out += self.templates(node.value, depth + 1)
                elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name) and node.target.id == name \
                        and node.value is not None:
                    out += self.templates(node.value, depth + 1)
                elif isinstance(node, ast.AugAssign) and isinstance(node.target, ast.Name) and node.target.id == name:
                    out += self.templates(node.value, depth + 1)
                elif isinstance(node, (ast.For, ast.comprehension)) and isinstance(node.target, ast.Tuple):
                    out += self._unpacked(node, name, depth)
                elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) \
                        and node.func.attr in ("append", "extend") and isinstance(node.func.value, ast.Name) \
                        and node.func.value.id == name:
                    for arg in node.args:
                        out += self.templates(arg, depth + 1)
            return out or ["{}"]
        finally:
            self._resolving.discard(name)

    def _unpacked(self, loop, name: str, depth: int) -> list[str]:
        """``for kw, ..., what in cases:``: the ``what`` of each tuple in the (literal or assigned) list."""
        names = [t.id if isinstance(t, ast.Name) else None for t in loop.target.elts]
        if name not in names:
            return []
        i, seq = names.index(name), loop.iter
        if isinstance(seq, ast.Name):
            seq = next((n.value for n in ast.walk(self.scope[-1]) if isinstance(n, ast.Assign) and any(
                isinstance(t, ast.Name) and t.id == seq.id for t in n.targets)), seq)
        if not isinstance(seq, (ast.List, ast.Tuple)):
            return []
        return [t for elt in seq.elts if isinstance(elt, ast.Tuple) and len(elt.elts) > i
                for t in self.templates(elt.elts[i], depth + 1)]

    def _returns(self, fn: ast.FunctionDef, depth: int) -> list[str]:
        key = "def:" + fn.name
        if key in self._resolving:
            return ["{}"]
        self._resolving.add(key)
        self.scope.append(fn)
        try:
            out = []
            for node in ast.walk(fn):
                if isinstance(node, ast.Return) and node.value is not None:
                    out += self.templates(node.value, depth + 1)
            return out or ["{}"]
        finally:
            self.scope.pop()
            self._resolving.discard(key)

    # -- message contexts ----------------------------------------------------------------------
    def add(self, node) -> None:
        for t in self.templates(node):
            if worth_translating(t):
                self.found.add(t)
        self.found |= self.fragments
        self.fragments = set()

    def visit_FunctionDef(self, node):
        self.scope.append(node)
        self.generic_visit(node)
        self.scope.pop()

    def visit_Raise(self, node):
        # an exception a grader raises and turns into feedback (str(exc)) carries a message too
        if isinstance(node.exc, ast.Call) and node.exc.args and isinstance(node.exc.func, ast.Name) \
                and node.exc.func.id not in MESSAGE_CALLS:
            self.add(node.exc.args[0])
        self.generic_visit(node)

    def visit_Call(self, node):
        name = node.func.id if isinstance(node.func, ast.Name) else getattr(node.func, "attr", "")
        if name in MESSAGE_CALLS and node.args:
            self.add(node.args[0])
        params = self.params.get(name, [])
        if any(isinstance(a, ast.Starred) for a in node.args):
            if set(params) & WORDY_NAMES:  # helper(*case, "what it is"): positions unknown, take the prose
                for arg in node.args:
                    if isinstance(arg, (ast.Constant, ast.JoinedStr)):
                        self.add(arg)
        else:
            for arg, param in zip(node.args, params):  # helper(..., "what it is"): a positional `what`
                if param in WORDY_NAMES:
                    self.add(arg)
        for kw in node.keywords:
            if kw.arg in KEYWORDS:
                self.add(kw.value)
        self.generic_visit(node)


def templates_in(path: Path) -> set[str]:
    """The feedback templates found in the grader or variant file ``path`` (see the module docstring),
    the names of its named cases included."""
    tree = ast.parse(path.read_text())
    finder = _Finder(tree)
    finder.visit(tree)
    return finder.found | case_names(tree)


def case_names(tree: ast.Module) -> set[str]:
    """The names of a grader's named cases (``SPEC_CASES = {"(a) a single user message": ...}``): the
    feedback names the case that failed."""
    found = set()
    for node in tree.body:
        if isinstance(node, ast.Assign) and isinstance(node.value, ast.Dict) and any(
                isinstance(t, ast.Name) and t.id.endswith("CASES") for t in node.targets):
            found |= {_escape(k.value) for k in node.value.keys
                      if isinstance(k, ast.Constant) and isinstance(k.value, str) and worth_translating(k.value)}
    return found


def check_names(topic: str) -> list[str]:
    """The names of a topic's graded checks, as the report shows them (``test_`` removed)."""
    tree = ast.parse((GRADERS / f"test_{topic}.py").read_text())
    names = []
    for node in tree.body:
        if isinstance(node, ast.FunctionDef) and node.name.startswith("test_") and any(
                isinstance(d, ast.Call) and getattr(d.func, "id", "") == "check" for d in node.decorator_list):
            names.append(node.name.removeprefix("test_"))
    return names


def topic_templates(topic: str) -> set[str]:
    """Every feedback template of ``topic``: its graders' messages and its variants' mistakes."""
    from ..grading.variants import load_variants  # the grading package is loaded only when asked for
    found = templates_in(GRADERS / f"test_{topic}.py")
    return found | {_escape(v.mistake) for v in load_variants(topic) if worth_translating(_escape(v.mistake))}


KIT_SOURCES = ("llmlab/grading/checks.py", "llmlab/grading/plugin.py", "llmlab/grading/protocol.py",
               "llmlab/grading/remote.py",
               "llmlab/grading/worker.py", "llmlab/grading/report.py", "llmlab/grading/runner.py",
               "llmlab/grading/nbgrader.py", "llmlab/stubgen.py")


def kit_literals() -> str:
    """Every string literal of the kit's own feedback code (the f-strings' literal parts included)."""
    from ..paths import KIT_ROOT

    chunks = []
    for rel in KIT_SOURCES:
        for node in ast.walk(ast.parse((KIT_ROOT / rel).read_text())):
            if isinstance(node, ast.Constant) and isinstance(node.value, str):
                chunks.append(node.value)
    return "\x00".join(chunks)


def stale_kit_entries(entries) -> list[str]:
    """Kit templates whose literal parts no longer occur in the kit's code (an exception's type name in
    front, ``PermissionError: ...``, is the worker's addition)."""
    source = kit_literals()
    stale = []
    for template in entries:
        body = re.sub(r"^[A-Z]\w*Error: ", "", template)
        parts = [p.replace("{{", "{").replace("}}", "}").strip() for p in re.split(r"(?<!\{)\{\d*\}(?!\})", body)]
        if not all(p in source for p in parts if p):
            stale.append(template)
    return stale


def audit(topic: str, catalogue: dict) -> dict[str, list[str]]:
    """What ``catalogue`` (a topic's ``{"checks": ..., "texts": ...}``) lacks and holds in vain."""
    texts, checks = topic_templates(topic), set(check_names(topic))
    have_texts, have_checks = catalogue.get("texts", {}), catalogue.get("checks", {})
    return {
        "missing texts": sorted(t for t in texts if not have_texts.get(t)),
        "stale texts": sorted(t for t in have_texts if t not in texts),
        "missing checks": sorted(c for c in checks if not have_checks.get(c)),
        "stale checks": sorted(c for c in have_checks if c not in checks),
    }
