"""How long a student or contributor waits, as ratios to ``python -c "import torch"`` (issue 20).

Every row is measured in this run, on this machine, next to the ``import torch`` baseline, so the
ratios hold across machines and loads. Goals (from the issue): warm re-grade <= 0.5x, cold
``grade --topic causal_mask`` <= 3x, cold ``grade solutions/`` <= 10x, ``pytest
exercises/test_attention.py`` <= 2x, ``pytest -m "not slow"`` under 5 minutes.

    python3 benchmarks/speed.py                 # the cheap rows (about two minutes on 2 cores)
    python3 benchmarks/speed.py --not-slow      # also `pytest -m "not slow"` (long)
    python3 benchmarks/speed.py --no-watch      # without the warm rows (before `llmlab watch` existed)
"""
from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
GOALS = {"warm": 0.5, "cold_topic": 3.0, "cold_all": 10.0, "pytest_one": 2.0}


def seconds(cmd: list[str], cwd: Path = ROOT, repeats: int = 1, env: dict | None = None) -> float:
    """Fastest wall time of ``repeats`` runs of a command (which must succeed)."""
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, env={**os.environ, **(env or {})})
        best = min(best, time.perf_counter() - start)
        if proc.returncode not in (0,):
            raise SystemExit(f"{' '.join(cmd)} failed ({proc.returncode}):\n{(proc.stdout + proc.stderr)[-2000:]}")
    return best


def solved_exercises(tmp: Path) -> Path:
    """A student's folder where every module is the reference: the public tests pass, grading gives full marks."""
    folder = tmp / "student"
    shutil.copytree(ROOT / "exercises", folder / "exercises", ignore=shutil.ignore_patterns("__pycache__"))
    for py in (ROOT / "solutions").glob("*.py"):
        if py.name != "__init__.py":
            shutil.copyfile(py, folder / "exercises" / py.name)
    return folder


def warm_regrades(folder: Path, topics: list[str]) -> dict[str, float]:
    """Seconds from a save to the printed table, per topic, with one warm session (after a first grade)."""
    from llmlab.watch import WarmSession

    out = {}
    with WarmSession() as session:
        for topic in topics:
            session.grade(folder, [topic])  # the first grade of a topic imports its graders
            best = float("inf")
            for _ in range(3):
                (folder / f"{topic}.py").touch()
                start = time.perf_counter()
                session.grade(folder, [topic])
                best = min(best, time.perf_counter() - start)
            out[topic] = best
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--not-slow", action="store_true", help='also time `pytest -m "not slow"` (long)')
    parser.add_argument("--no-watch", action="store_true", help="skip the warm re-grade rows")
    args = parser.parse_args()
    py = sys.executable
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        student = solved_exercises(Path(tmp))
        base = seconds([py, "-c", "import torch"], repeats=3)
        rows.append(("python -c 'import torch'", base, None))
        if not args.no_watch:
            for topic, s in warm_regrades(student / "exercises", ["attention", "causal_mask"]).items():
                rows.append((f"warm re-grade after a save: {topic} (+ <= 0.6 s polling)", s, GOALS["warm"]))
        rows.append(("cold llmlab grade DIR --topic causal_mask (full marks)",
                     seconds([py, "-m", "llmlab.cli", "grade", str(student / "exercises"), "--topic", "causal_mask"]),
                     GOALS["cold_topic"]))
        rows.append(("cold llmlab grade solutions/ (all topics)",
                     seconds([py, "-m", "llmlab.cli", "grade", "solutions/"]), GOALS["cold_all"]))
        # as a student runs it: in the solved folder, whose exercises/pytest.ini is the pytest root
        rows.append(("pytest exercises/test_attention.py (solved)",
                     seconds([py, "-m", "pytest", "-q", "exercises/test_attention.py"], cwd=student),
                     GOALS["pytest_one"]))
        if args.not_slow:
            start = time.perf_counter()
            subprocess.run([py, "-m", "pytest", "-q", "-m", "not slow"], cwd=ROOT)
            rows.append(('pytest -m "not slow" (the kit\'s fast loop)', time.perf_counter() - start, None))
    load = os.getloadavg()
    print(f"{os.cpu_count()} CPUs, load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")
    print(f"{'what':64} {'seconds':>8} {'ratio':>7} {'goal':>6}")
    for what, s, goal in rows:
        ok = "" if goal is None else ("ok" if s / base <= goal else "MISSED")
        print(f"{what:64} {s:8.2f} {s / base:6.2f}x {'' if goal is None else f'{goal:g}x':>6} {ok}")


if __name__ == "__main__":
    main()
