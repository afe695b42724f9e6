"""Benchmark: `llmlab grade-class` vs `nbgrader autograde` on the same synthetic class.

A class of N students is made from the course notebooks: some submit the solution notebook, some the
untouched release, the rest a solution with one of the kit's buggy variants pasted into the solution
cell. Both tools grade the same notebooks with the same hidden checks (the notebooks' autograder
cells call the kit's graders), side by side, on this machine:

    python benchmarks/grade_class_vs_nbgrader.py --students 100 --workers 2 [--notebook attention]...

Notebooks run at their CI sizes (the `# ci:` parameters: small but real models), so nbgrader's time
is mostly its own per-notebook cost, not training. Prints wall time, per-student time and the ratio, and checks that both tools agree on who got full
marks and who got zero.
"""
from __future__ import annotations

import argparse
import csv
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from llmlab import topics as topic_registry  # noqa: E402
from llmlab.grading.variants import load_variants  # noqa: E402
from llmlab.nbbuild import with_ci_sizes  # noqa: E402
from llmlab.paths import NOTEBOOKS  # noqa: E402


def _variant_cells(name: str) -> list[tuple[str, str]]:
    """(target function, renamed source) of every variant of the notebook's topics that replaces a
    top-level function (these can be pasted into a solution cell)."""
    out = []
    for topic in topic_registry.topics_of_notebook(f"{name}.ipynb"):
        for v in load_variants(topic):
            out.extend(v.functions())
    return out


def make_class(course: Path, n: int, names: list[str]) -> dict[str, str]:
    """nbgrader course with source + release + submitted/<student>/<assignment>/; returns kind per student."""
    course.mkdir(parents=True, exist_ok=True)
    (course / "nbgrader_config.py").write_text(
        f"c = get_config()\nc.CourseDirectory.root = {str(course)!r}\nc.CourseDirectory.course_id = 'bench'\n"
        "c.ExecutePreprocessor.timeout = 900\n")
    for name in names:
        (course / "source" / name).mkdir(parents=True)
        nb = with_ci_sizes(json.loads((NOTEBOOKS / "source" / name / f"{name}.ipynb").read_text()))
        (course / "source" / name / f"{name}.ipynb").write_text(json.dumps(nb))
        subprocess.run([sys.executable, "-m", "nbgrader", "generate_assignment", name, "--force"], cwd=course,
                       check=True, capture_output=True)
    kinds = {}
    for i in range(n):
        student = f"student{i:03d}"
        kind = "solution" if i % 5 in (0, 1) else ("stub" if i % 5 == 2 else "variant")
        kinds[student] = kind
        for name in names:
            dest = course / "submitted" / student / name
            dest.mkdir(parents=True)
            if kind == "stub":
                shutil.copyfile(course / "release" / name / f"{name}.ipynb", dest / f"{name}.ipynb")
                continue
            nb = json.loads((course / "source" / name / f"{name}.ipynb").read_text())
            variants = _variant_cells(name)
            if kind == "variant" and variants:
                target, src = variants[i % len(variants)]
                for cell in nb["cells"]:
                    if cell.get("metadata", {}).get("nbgrader", {}).get("solution") and f"def {target}(" in cell["source"]:
                        cell["source"] += "\n\n\n" + src
            (dest / f"{name}.ipynb").write_text(json.dumps(nb))
    return kinds


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--students", type=int, default=100)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--notebook", action="append", help="only this notebook (repeatable); default: all")
    ap.add_argument("--skip-nbgrader", action="store_true")
    args = ap.parse_args()
    names = args.notebook or sorted(p.parent.name for p in (NOTEBOOKS / "source").glob("*/*.ipynb"))
    graded_topics = [t for name in names for t in topic_registry.topics_of_notebook(f"{name}.ipynb")]
    with tempfile.TemporaryDirectory() as tmp:
        course = Path(tmp) / "course"
        kinds = make_class(course, args.students, names)
        print(f"{args.students} students x notebooks {names} (topics {graded_topics})", flush=True)
        t0 = time.monotonic()
        subprocess.run([sys.executable, "-m", "llmlab.cli", "grade-class", str(course), "--out", str(course / "llmlab"),
                        "--workers", str(args.workers), "--quiet"] + [f"--topic={t}" for t in graded_topics],
                       check=True)
        t_llmlab = time.monotonic() - t0
        with open(course / "llmlab" / "gradebook.csv") as f:
            ours = {r["student"]: (float(r["total"]), float(r["max_total"])) for r in csv.DictReader(f)}
        print(f"llmlab grade-class: {t_llmlab:.1f} s for {args.students} students "
              f"({t_llmlab / args.students:.2f} s per student, {args.workers} workers)", flush=True)
        if args.skip_nbgrader:
            return
        t0 = time.monotonic()
        for name in names:  # nbgrader grades one assignment per command
            done = subprocess.run([sys.executable, "-m", "nbgrader", "autograde", name, "--create", "--force"],
                                  cwd=course, capture_output=True, text=True)
            if done.returncode:
                sys.exit(f"nbgrader autograde {name} failed:\n{done.stdout[-2000:]}{done.stderr[-2000:]}")
        t_nb = time.monotonic() - t0
        from nbgrader.api import Gradebook

        theirs = {}
        with Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gb:
            for s in kinds:
                subs = [gb.find_submission(a.name, s) for a in gb.assignments]
                theirs[s] = (sum(x.score for x in subs), sum(x.max_score for x in subs))
        print(f"nbgrader autograde: {t_nb:.1f} s for {args.students} students "
              f"({t_nb / args.students:.2f} s per student, serial)")
        print(f"ratio: llmlab is {t_nb / t_llmlab:.1f}x faster")
        agree = sum((ours[s][0] == ours[s][1]) == (theirs[s][0] == theirs[s][1]) and (ours[s][0] == 0) == (theirs[s][0] == 0)
                    for s in kinds)
        print(f"full-marks / zero verdicts agree for {agree}/{len(kinds)} students")
        for kind in ("solution", "stub", "variant"):
            members = [s for s in kinds if kinds[s] == kind]
            print(f"  {kind:8s}: llmlab mean {sum(ours[s][0] for s in members) / len(members):.1f}/{ours[members[0]][1]:g}, "
                  f"nbgrader mean {sum(theirs[s][0] for s in members) / len(members):.1f}/{theirs[members[0]][1]:g}")


if __name__ == "__main__":
    main()
