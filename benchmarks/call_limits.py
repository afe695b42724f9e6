"""Benchmark: the CPU seconds of every call into a submission, per topic, against the topic's call limit.

Grades the reference (``solutions/``) and every correct alternative (``graders/alternatives/``) as
untrusted submissions, records what each call into the worker cost (``LLMLAB_CALL_PROFILE``), and
prints per topic the slowest call of each and the limit ``llmlab.topics`` states:

    python benchmarks/call_limits.py [--topic attention ...]

A stated limit must be at least 10x the reference's slowest call and 3x the slowest alternative's (a
correct but slower student keeps full marks), and at least ``FLOOR`` seconds (start-up noise). The
script prints the smallest limit that satisfies this; a stated limit below it is marked ``RAISE``
(exit status 1). Figures are CPU seconds, so they hardly depend on the machine's load.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import sys
import tempfile
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

FLOOR = 5.0  # CPU seconds: below this, worker start-up and import jitter matter
REFERENCE_MARGIN, ALTERNATIVE_MARGIN = 10.0, 3.0


def needed_limit(reference: float, alternative: float) -> float:
    """The smallest whole number of CPU seconds that keeps every correct submission measured here safe."""
    return float(max(FLOOR, math.ceil(REFERENCE_MARGIN * reference), math.ceil(ALTERNATIVE_MARGIN * alternative)))


def submissions(topic: str, root: Path) -> dict[str, Path]:
    """The reference and each alternative of ``topic``, each a folder of every reference module (a
    topic may import another) with ``<topic>.py`` replaced by the alternative."""
    from llmlab.paths import GRADERS, SOLUTIONS

    folders = {"reference": SOLUTIONS}
    for alt in sorted((GRADERS / "alternatives").glob(f"{topic}__*.py")):
        folder = root / alt.stem
        folder.mkdir()
        for module in SOLUTIONS.glob("*.py"):
            shutil.copy(module, folder / module.name)
        shutil.copy(alt, folder / f"{topic}.py")
        folders[alt.stem] = folder
    return folders


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--topic", action="append", help="measure only this topic (repeatable); default: all")
    p.add_argument("--show", type=int, default=0, metavar="N", help="also list each topic's N slowest calls")
    args = p.parse_args(argv)
    root = Path(tempfile.mkdtemp(prefix="llmlab-call-limits-"))
    profile = root / "calls.jsonl"
    os.environ["LLMLAB_CALL_PROFILE"] = str(profile)  # read by the grading session (a subprocess)
    from llmlab import topics as registry
    from llmlab.grading.remote import Limits
    from llmlab.grading.runner import grade

    ok = True
    print(f"{'topic':16} {'reference s':>11} {'slowest call':28} {'alternative s':>13} {'needed':>7} {'stated':>7}")
    try:
        for topic in args.topic or registry.topic_names():
            profile.unlink(missing_ok=True)
            subs = submissions(topic, root)
            results = grade(subs, [topic], limits=Limits(timeout=registry.DEFAULT_CALL_LIMIT))
            slowest: dict[str, tuple[float, str]] = defaultdict(lambda: (0.0, ""))
            calls = [json.loads(line) for line in profile.read_text().splitlines()]
            for call in calls:
                slowest[call["submission"]] = max(slowest[call["submission"]],
                                                  (call["cpu"], f"{call['op']} {call['attr'] or ''}".strip()))
            lost = [n for n, r in results.items() if r.points < r.max_points]
            ref_cpu, ref_call = slowest["reference"]
            alt_cpu = max((v[0] for n, v in slowest.items() if n != "reference"), default=0.0)
            need, stated = needed_limit(ref_cpu, alt_cpu), registry.call_limit(topic)
            verdict = "ok" if stated >= need and not lost else "RAISE" if stated < need else "LOST " + ", ".join(lost)
            ok &= verdict == "ok"
            print(f"{topic:16} {ref_cpu:11.2f} {ref_call[:28]:28} {alt_cpu:13.2f} {need:7g} {stated:7g}  {verdict}",
                  flush=True)
            for call in sorted(calls, key=lambda c: -c["cpu"])[:args.show]:
                print(f"    {call['cpu']:6.2f} s CPU {call['wall']:6.2f} s wall  {call['submission']}: "
                      f"{call['op']} {call['attr'] or ''}")
            for folder in subs.values():
                if folder.parent == root:
                    shutil.rmtree(folder)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
