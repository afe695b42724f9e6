"""Full-size run of `refusal-training.ipynb`: p(refusal token) at each position, before and after training.

Executes the notebook (built from `notebooks/src/refusal-training.md`) with papermill at full size (several
seeds), keeps the executed notebook, and prints the mean probability of `sorry` after t forced tokens of
the unwanted reply, for the base model, plain refusal training, the harmful-prefix term alone and DeRTa,
on request phrasings seen in training and on new ones, plus what the benign questions cost.

    python scripts/refusal_training_full.py --out /tmp/llmlab-runs/refusal-training [--seeds 0 1 2] [--base-steps 600]
"""
from __future__ import annotations

from _common import results_parser, run_for_results  # scripts/_common.py

NAME = "refusal-training"


def main() -> None:
    parser = results_parser(__doc__, NAME, threads=True)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--base-steps", type=int, default=600)
    parser.add_argument("--arm-steps", type=int, default=400)
    parser.add_argument("--hidden", type=int, default=64)
    parser.add_argument("--layers", type=int, default=2)
    args = parser.parse_args()
    params = dict(BASE_STEPS=args.base_steps, ARM_STEPS=args.arm_steps, HIDDEN=args.hidden, LAYERS=args.layers,
                  SEEDS=args.seeds, THREADS=args.threads)
    data = run_for_results(NAME, args.out, params)
    positions = data["positions"]
    for which in ("seen phrasings", "new phrasings"):
        print(f"\np(sorry) after t forced tokens of the recital ({which}), mean over vaults and {len(args.seeds)} seeds")
        print(f"{'t':22}" + "".join(f"{t:>6}" for t in range(len(positions))))
        for method, curves in data["curves"].items():
            print(f"{method:22}" + "".join(f"{p:6.3f}" for p in curves[which]))
    print("\nbenign questions: exact-answer accuracy / mean p(sorry) at the start of the reply")
    for method, (accuracy, p_sorry) in data["benign_accuracy_and_p_sorry"].items():
        print(f"{method:22}{accuracy:6.3f} / {p_sorry:.4f}")


if __name__ == "__main__":
    main()
