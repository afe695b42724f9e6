"""`llmlab release`: the student edition is made afresh, never ships an answer, and works as shipped."""
from __future__ import annotations

import ast
import json
import os
import re
import shutil
import subprocess
import sys

import pytest

from llmlab import classroom
from llmlab.classroom import release
from llmlab.grading.runner import GradingError
from llmlab.nbbuild import FENCE
from llmlab.paths import EXERCISES, GRADERS, KIT_ROOT, NOTEBOOKS, SOLUTIONS
from llmlab.stubgen import stub_for

# one worker runs the whole module, so its module-scoped fixture is built once, not once per worker
pytestmark = pytest.mark.xdist_group("release_edition")

TASK = re.compile(r'NotImplementedError\("(task [\w.]+): not implemented yet"\)')
# Python as a student's machine has it: the kit's own editable install cannot lend a module the edition lacks
ALONE = ("import sys; sys.meta_path[:] = [f for f in sys.meta_path if 'Editable' not in repr(f)]; "
         "sys.path[:] = [p for p in sys.path if not p.startswith({kit!r})]; ")


def _llmlab_modules(source: str, package: str = "") -> set[str]:
    """The llmlab names ``source`` imports, as modules might be (``from llmlab.x import y`` -> llmlab.x and
    llmlab.x.y; relative imports resolved against ``package``): the caller keeps the kit's modules."""
    found = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.split(".")[0] == "llmlab"}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(parts + ([base] if base else []))
            if base.split(".")[0] == "llmlab":
                found |= {base} | {f"{base}.{a.name}" for a in node.names}
    return found


def test_a_solved_exercise_in_the_working_tree_is_not_shipped(tmp_path, monkeypatch):
    tried = tmp_path / "exercises"  # an instructor solved attention in their exercises/ folder
    shutil.copytree(EXERCISES, tried, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copyfile(SOLUTIONS / "attention.py", tried / "attention.py")
    monkeypatch.setattr(classroom, "EXERCISES", tried)
    out = release(tmp_path / "student", notebooks=False)
    shipped = (out / "exercises" / "attention.py").read_text()
    assert shipped == stub_for("attention")
    assert "### BEGIN SOLUTION" not in shipped and (out / "exercises" / "test_attention.py").exists()


def test_a_non_empty_folder_is_refused_unless_forced(tmp_path):
    out = tmp_path / "student"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    with pytest.raises(GradingError, match="--force"):
        release(out, notebooks=False)
    assert (out / "notes.txt").read_text() == "mine"
    run = subprocess.run([sys.executable, "-m", "llmlab.cli", "release", str(out), "--no-notebooks"],
                         capture_output=True, text=True, timeout=300)
    assert run.returncode == 2 and "--force" in run.stderr and (out / "notes.txt").exists()
    release(out, notebooks=False, force=True)
    assert not (out / "notes.txt").exists() and (out / "exercises" / "attention.py").exists()


@pytest.fixture(scope="module")
def edition(tmp_path_factory):
    return release(tmp_path_factory.mktemp("release") / "student")


@pytest.mark.slow
def test_release_notebooks_raise_the_same_task_messages_as_the_stubs(edition):
    assert "pytest" in (edition / "README.md").read_text()
    notebooks = sorted((edition / "notebooks").glob("*.ipynb"))
    assert notebooks
    for nb in notebooks:
        cells = json.loads(nb.read_text())["cells"]
        solution = "\n".join(c["source"] for c in cells if c["metadata"].get("nbgrader", {}).get("solution"))
        assert "raise NotImplementedError()" not in solution, f"{nb.name} keeps nbgrader's anonymous stub"
        in_notebook = set(TASK.findall(solution))
        stubs = "".join(f.read_text() for f in (edition / "exercises").glob("*.py"))
        assert in_notebook and in_notebook <= set(TASK.findall(stubs)), nb.name


@pytest.mark.slow
def test_shipped_public_tests_run_in_the_shipped_edition(edition, tmp_path):
    alone = tmp_path / "student"  # a fresh copy, away from the kit
    shutil.copytree(edition, alone)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHONPATH", "LLMLAB_"))}
    env["COLUMNS"] = "1000"  # the short summary keeps each failure's whole message
    code = ALONE.format(kit=str(KIT_ROOT)) + ("import pytest; sys.exit(pytest.main(['-q', '-p', 'no:cacheprovider', "
                                              "'-n', '0', '-rf']))")
    run = subprocess.run([sys.executable, "-c", code], cwd=alone, env=env, capture_output=True, text=True, timeout=1200)
    failed = [ln for ln in run.stdout.splitlines() if ln.startswith("FAILED")]
    assert failed, run.stdout[-3000:] + run.stderr[-2000:]
    assert "error" not in run.stdout.splitlines()[-1], run.stdout[-3000:]
    others = [ln for ln in failed if "not implemented yet" not in ln]
    assert not others, "\n".join(others[:10])


@pytest.mark.slow
def test_every_llmlab_module_the_edition_imports_is_shipped(edition):
    """The notebooks' and tests' imports, and the shipped modules' own, resolve inside the edition alone."""
    sources = [(f.read_text(encoding="utf-8"), "") for f in (edition / "exercises").glob("*.py")]
    for nb in (edition / "notebooks").rglob("*.ipynb"):
        for c in json.loads(nb.read_text(encoding="utf-8"))["cells"]:
            if c["cell_type"] == "code":
                text = "".join(c["source"]) if isinstance(c["source"], list) else c["source"]
                code = "\n".join(ln for ln in text.splitlines() if not ln.lstrip().startswith(("%", "!")))
                sources.append((code, ""))
    for f in (edition / "llmlab").rglob("*.py"):
        module = ".".join(f.relative_to(edition).with_suffix("").parts)
        package = module.removesuffix(".__init__") if f.name == "__init__.py" else module.rpartition(".")[0]
        sources.append((f.read_text(encoding="utf-8"), package + ".x"))
    kit = {".".join(p.relative_to(KIT_ROOT).with_suffix("").parts).removesuffix(".__init__")
           for p in (KIT_ROOT / "llmlab").rglob("*.py")}
    needed = kit & set().union(*(_llmlab_modules(src, pkg) for src, pkg in sources))
    assert {"llmlab.serve", "llmlab.models", "llmlab.data"} <= needed  # the scan sees what is there
    shipped = {".".join(f.relative_to(edition).with_suffix("").parts).removesuffix(".__init__")
               for f in (edition / "llmlab").rglob("*.py")}
    assert not needed - shipped, f"the edition imports modules it does not ship: {sorted(needed - shipped)}"
    code = ALONE.format(kit=str(KIT_ROOT)) + f"import importlib; [importlib.import_module(m) for m in {sorted(needed)}]"
    run = subprocess.run([sys.executable, "-c", code], cwd=edition, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-3000:]


@pytest.mark.slow
def test_release_contains_no_solution_or_hidden_grader_code(edition):
    assert (edition / "exercises" / "attention.py").exists() and (edition / "exercises" / "test_attention.py").exists()
    assert not (edition / "solutions").exists() and not (edition / "graders").exists()
    assert (edition / "notebooks" / "attention.ipynb").exists()
    secrets = _secret_lines()
    leaks = []
    for f in edition.rglob("*"):
        if f.is_file():
            text = f.read_text(errors="ignore")
            if f.suffix == ".ipynb":  # compare the cells' source text, not its JSON escaping
                text = "\n".join("".join(c["source"]) for c in json.loads(text)["cells"])
            found = [s for s in secrets if s in text]
            leaks += [f"{f.relative_to(edition)}: {s}" for s in found[:3]]
    assert not leaks, "\n".join(leaks[:20])


def _secret_lines() -> set[str]:
    """Distinctive lines of the reference solutions' bodies and of the hidden graders."""
    lines = set()
    for f in SOLUTIONS.glob("*.py"):
        inside = False
        for line in f.read_text().splitlines():
            s = line.strip()
            if s == "### BEGIN SOLUTION":
                inside = True
            elif s == "### END SOLUTION":
                inside = False
            elif inside and len(s) >= 24 and not s.startswith(("#", '"""')):
                lines.add(s)
    for f in GRADERS.rglob("*.py"):
        for line in f.read_text().splitlines():
            s = line.strip()
            if len(s) >= 30 and not s.startswith(("#", "import ", "from ", '"""')):
                lines.add(s)
    # signatures and docstrings are public (alternatives and variants repeat them), and so is what the
    # course's spec publishes (e.g. the refusal keyword list, which a notebook hands out)
    public_files = [*EXERCISES.glob("*.py"), *(KIT_ROOT.parent / "shared" / "spec").glob("*.md")]
    public = "\n".join(f.read_text() for f in public_files)
    # the notebooks' teaching cells (plain ``python`` blocks of their sources) are published on purpose
    public += "\n".join(m.group("body") for f in (NOTEBOOKS / "src").glob("*.md")
                        for m in FENCE.finditer(f.read_text()) if not m.group("info").strip())

    def published(line: str) -> bool:
        if line in public:
            return True
        # a line of string literals is public when each of them is (a list laid out on other lines)
        return line[0] in "'\"" and all(p.strip() in public for p in line.split(",") if p.strip())
    return {s for s in lines if not published(s)}
