"""Full-size run of `code-attack.ipynb`: direct vs code-encoded extraction of the guarded password.

Executes the notebook (built from `notebooks/src/code-attack.md`) with papermill at full size, keeps the
executed notebook, and prints the per-form rates it measured: leak rate, partial-leak rate, the refusal-
keyword judge's "attack success" rate, and how often that judge agrees with the leak detector.

    python scripts/code_attack_full.py --out /tmp/llmlab-runs/code-attack [--secrets 3] [--requests 6] [--max-new-tokens 96]
"""
from __future__ import annotations

from _common import results_parser, run_for_results  # scripts/_common.py

NAME = "code-attack"


def main() -> None:
    parser = results_parser(__doc__, NAME, threads=True)
    parser.add_argument("--secrets", type=int, default=3)
    parser.add_argument("--requests", type=int, default=6)
    parser.add_argument("--max-new-tokens", type=int, default=96)
    parser.add_argument("--batch-size", type=int, default=24)
    args = parser.parse_args()
    params = dict(N_SECRETS=args.secrets, N_REQUESTS=args.requests, MAX_NEW_TOKENS=args.max_new_tokens,
                  BATCH_SIZE=args.batch_size, THREADS=args.threads)
    data = run_for_results(NAME, args.out, params)["results"]
    print(f"{'form':16}{'n':>4}{'leak':>7}{'part':>7}{'kw-ASR':>8}{'agree':>7}{'ASR&~leak':>11}{'refuse&leak':>12}"
          f"{'steps':>7}")
    for form, r in data.items():
        print(f"{form:16}{r['n']:4d}{r['leak_rate']:7.3f}{r['partial_leak_rate']:7.3f}{r['keyword_success_rate']:8.3f}"
              f"{r['judge_agrees_with_leak_detector']:7.3f}{r['judge_success_without_leak']:11.3f}"
              f"{r['judge_refusal_with_leak']:12.3f}{r['replies_with_steps']:7.3f}")


if __name__ == "__main__":
    main()
