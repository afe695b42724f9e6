"""Full-size run of `code-attack.ipynb`: direct vs code-encoded extraction of the guarded password.

Executes the notebook (built from `notebooks/src/code-attack.md`) with papermill at full size, keeps the
executed notebook, and prints the per-form rates it measured: leak rate, partial-leak rate, the refusal-
keyword judge's "attack success" rate, and how often that judge agrees with the leak detector.

    python scripts/code_attack_full.py --out /tmp/llmlab-runs/code-attack [--secrets 3] [--requests 6] [--max-new-tokens 96]
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

NAME = "code-attack"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path(tempfile.gettempdir()) / "llmlab-runs" / NAME,
                        help="folder for the executed notebook and results.json")
    parser.add_argument("--secrets", type=int, default=3)
    parser.add_argument("--requests", type=int, default=6)
    parser.add_argument("--max-new-tokens", type=int, default=96)
    parser.add_argument("--batch-size", type=int, default=24)
    parser.add_argument("--threads", type=int, default=0, help="torch threads in the kernel (0: torch's default)")
    args = parser.parse_args()

    from llmlab import nbbuild

    results = args.out.resolve() / "results.json"
    params = dict(N_SECRETS=args.secrets, N_REQUESTS=args.requests, MAX_NEW_TOKENS=args.max_new_tokens,
                  BATCH_SIZE=args.batch_size, THREADS=args.threads, RESULTS_PATH=str(results))
    seconds = nbbuild.execute(NAME, args.out, params)
    data = json.loads(results.read_text())["results"]
    print(f"{NAME}: {params} in {seconds:.0f} s")
    print(f"{'form':16}{'n':>4}{'leak':>7}{'part':>7}{'kw-ASR':>8}{'agree':>7}{'ASR&~leak':>11}{'refuse&leak':>12}"
          f"{'steps':>7}")
    for form, r in data.items():
        print(f"{form:16}{r['n']:4d}{r['leak_rate']:7.3f}{r['partial_leak_rate']:7.3f}{r['keyword_success_rate']:8.3f}"
              f"{r['judge_agrees_with_leak_detector']:7.3f}{r['judge_success_without_leak']:11.3f}"
              f"{r['judge_refusal_with_leak']:12.3f}{r['replies_with_steps']:7.3f}")


if __name__ == "__main__":
    main()
