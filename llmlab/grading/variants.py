"""Buggy variants as code: each is the reference with one realistic mistake.

A topic's variants live in ``graders/variants/<topic>.py``::

    bugs = Variants("attention")

    @bugs.bug("softmax_over_queries", replaces="scaled_dot_product_attention",
              mistake="weights are normalised over queries, not keys: softmax over the wrong axis?")
    def sdpa_softmax_over_queries(q, k, v, mask=None, *, scale=None):
        ...

A variant's module is the reference source with the replacement function appended and bound to the
replaced name (``replaces="MultiHeadAttention.forward"`` patches a method), so the rest of the
reference calls the buggy function just as a student's module would. Variants serve twice:
the kit's tests grade each one (it must lose points), and the grader runs them on a failing input to
name the student's mistake (whose outputs match which variant's).
"""
from __future__ import annotations

import importlib
import inspect
import sys
import textwrap
import types
from dataclasses import dataclass, field
from pathlib import Path

from ..paths import GRADERS, KIT_ROOT, SOLUTIONS


@dataclass
class Variant:
    topic: str
    name: str
    mistake: str
    patches: list = field(default_factory=list)  # (target, function)
    _module: types.ModuleType | None = None

    def source(self) -> str:
        """The full module source of this variant."""
        text = (SOLUTIONS / f"{self.topic}.py").read_text()
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


class Variants:
    """The registry of one topic's buggy variants."""

    def __init__(self, topic: str):
        self.topic = topic
        self.items: dict[str, Variant] = {}

    def bug(self, name: str, *, replaces: str, mistake: str):
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
