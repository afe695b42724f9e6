"""Benchmark: hostile submissions are graded in bounded time (issue 15).

Every attack of ``tests/test_isolation.py`` (including the issue's three: a module-level infinite loop,
a function that allocates 64 MB chunks until ``MemoryError``, a disk search for another copy of the
kit) is graded on ``attention`` next to its honest twin, with the real limits (``llmlab grade``'s
defaults unless given). Each grading session is timed from outside (wall clock: session start-up,
worker start-ups and all checks):

    python benchmarks/containment.py [--timeout 20] [--attacks NAME ...] [--class-size 20] [--hostile 4]

Goal: every attack within 2x its twin's wall time + one call limit; a class of ``--class-size``
students of whom ``--hostile`` are hostile (the issue's three, then the function-level infinite loop)
within 1.5x the same class with those students replaced by their honest twins (``grade-class``,
``--workers 2``). Figures depend on the machine's load: run it on an idle machine.
"""
from __future__ import annotations

import argparse
import importlib.util
import shutil
import sys
import tempfile
import textwrap
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from llmlab.classroom import grade_class  # noqa: E402
from llmlab.grading.remote import Limits  # noqa: E402
from llmlab.grading.runner import grade  # noqa: E402
from llmlab.paths import SOLUTIONS  # noqa: E402

CLASS_HOSTILE = ["import_hang", "memory_chunks", "search_disk_for_a_copy", "infinite_loop"]


def attacks() -> dict[str, tuple[str, str]]:
    """The attacks and their twins, from the isolation tests (one list of attacks in the kit)."""
    spec = importlib.util.spec_from_file_location("_isolation", ROOT / "tests" / "test_isolation.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.ATTACKS


def write(folder: Path, appended: str) -> Path:
    folder.mkdir(parents=True)
    (folder / "attention.py").write_text((SOLUTIONS / "attention.py").read_text() + "\n\n# ---- appended\n"
                                         + textwrap.dedent(appended))
    return folder


def timed_grade(folder: Path, limits: Limits) -> tuple[float, float, float]:
    start = time.monotonic()
    result = grade({folder.name: folder}, ["attention"], limits=limits)[folder.name]
    return time.monotonic() - start, result.points, result.max_points


def per_attack(root: Path, chosen: list[str], limits: Limits) -> bool:
    table, twins, ok = attacks(), {}, True
    print(f"{'attack':28} {'score':>7} {'twin':>7} {'wall s':>8} {'twin s':>8} {'bound s':>8}  within")
    for name in chosen:
        attack, twin = table[name]
        if twin not in twins:
            twins[twin] = timed_grade(write(root / f"twin{len(twins)}", twin), limits)
        seconds, points, top = timed_grade(write(root / name, attack), limits)
        twin_seconds, twin_points, _ = twins[twin]
        bound = 2 * twin_seconds + limits.for_topic("attention").timeout
        ok &= seconds <= bound
        print(f"{name:28} {points:>3g}/{top:<3g} {twin_points:>3g}/{top:<3g} {seconds:8.1f} {twin_seconds:8.1f} "
              f"{bound:8.1f}  {'yes' if seconds <= bound else 'NO'}", flush=True)
    return ok


def whole_class(root: Path, size: int, hostile: int, limits: Limits) -> bool:
    table = attacks()
    times = {}
    for kind in ("honest", "hostile"):
        folder = root / f"class-{kind}"
        for i in range(size):
            appended = ""
            if i < hostile:
                attack, twin = table[CLASS_HOSTILE[i % len(CLASS_HOSTILE)]]
                appended = attack if kind == "hostile" else twin
            write(folder / f"student{i:02d}", appended)
        start = time.monotonic()
        grade_class(folder, root / f"grades-{kind}", topics=["attention"], workers=2, limits=limits, progress=False)
        times[kind] = time.monotonic() - start
        print(f"class of {size}, {hostile if kind == 'hostile' else 0} hostile: {times[kind]:.1f} s", flush=True)
    ratio = times["hostile"] / times["honest"]
    print(f"ratio {ratio:.2f} (goal <= 1.5): {'yes' if ratio <= 1.5 else 'NO'}")
    return ratio <= 1.5


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--timeout", type=float, default=None,
                   help="CPU seconds one call may take (default: the topic's own)")
    p.add_argument("--attacks", nargs="*", default=None, help="default: all; none: skip this part")
    p.add_argument("--class-size", type=int, default=20, help="0: skip the class run")
    p.add_argument("--hostile", type=int, default=4)
    args = p.parse_args(argv)
    limits = Limits(timeout=args.timeout)
    root = Path(tempfile.mkdtemp(prefix="llmlab-containment-"))
    try:
        ok = True
        chosen = sorted(attacks()) if args.attacks is None else args.attacks
        if chosen:
            ok &= per_attack(root, chosen, limits)
        if args.class_size:
            ok &= whole_class(root, args.class_size, args.hostile, limits)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
