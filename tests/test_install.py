"""What the kit imports is what it declares: a fresh `scripts/install.sh` has everything, so no test
needs to skip for a missing package (and on CI a skip is a failure: tests/conftest.py)."""
from __future__ import annotations

import ast
import importlib.metadata as md
import re
import sys
import tomllib

from llmlab.nbbuild import FENCE
from llmlab.paths import KIT_ROOT

OWN = {"llmlab", "exercises", "solutions", "graders", "tests", "conftest", "strategies"}
# Imported only inside a try/except that has a fallback: optional on purpose.
OPTIONAL = {"datasets"}


def _imports(source: str) -> set[str]:
    try:
        tree = ast.parse(source)
    except SyntaxError:  # notebooks' `%magic` lines
        tree = ast.parse("\n".join(ln for ln in source.splitlines() if not ln.lstrip().startswith(("%", "!"))))
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names


def _used() -> dict[str, str]:
    """Top-level modules the kit, its notebooks and its tests import -> a file that imports it."""
    files = [p for d in ("llmlab", "tests", "graders", "solutions", "scripts", "benchmarks")
             for p in (KIT_ROOT / d).rglob("*.py")]
    local = {p.stem for p in files}  # benchmarks/timing.py and the like
    used = {}
    for f in files:
        for name in _imports(f.read_text()):
            if name not in local:
                used.setdefault(name, str(f.relative_to(KIT_ROOT)))
    for f in (KIT_ROOT / "notebooks" / "src").glob("*.md"):
        for m in FENCE.finditer(f.read_text()):
            for name in _imports(m.group("body")):
                used.setdefault(name, str(f.relative_to(KIT_ROOT)))
    return used


def _declared() -> set[str]:
    """Distributions pyproject.toml (dependencies, every extra) and scripts/install.sh install."""
    project = tomllib.loads((KIT_ROOT / "pyproject.toml").read_text())["project"]
    specs = list(project["dependencies"]) + [s for extra in project["optional-dependencies"].values() for s in extra]
    specs += re.findall(r"\b([A-Za-z][\w.-]*)==", (KIT_ROOT / "scripts" / "install.sh").read_text())
    return {re.split(r"[\[<>=!~ ;]", s, maxsplit=1)[0].lower().replace("_", "-") for s in specs}


def test_every_third_party_import_is_declared():
    dists = md.packages_distributions()
    declared = _declared()
    missing = []
    for module, where in sorted(_used().items()):
        if module in OWN | OPTIONAL or module in sys.stdlib_module_names or module.startswith("_"):
            continue
        providers = {d.lower().replace("_", "-") for d in dists.get(module, [])}
        if not providers & declared:
            missing.append(f"{module} (imported by {where}; from {sorted(providers) or 'no installed package'})")
    assert not missing, "imported but not declared in pyproject.toml's extras:\n" + "\n".join(missing)


def test_serve_dependencies_are_declared_where_install_sh_installs_them():
    project = tomllib.loads((KIT_ROOT / "pyproject.toml").read_text())["project"]
    extras = project["optional-dependencies"]
    installed = " ".join(extras["test"])  # install.sh installs `.[test]`
    assert "llmlab[models,notebooks,remote]" in installed.replace(" ", "")
    names = {re.split(r"[\[<>=!~ ;]", s, maxsplit=1)[0] for s in extras["remote"]}
    assert {"fastapi", "uvicorn", "openai"} <= names
