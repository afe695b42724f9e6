"""Full-size run of `tokenizer.ipynb`: byte-level BPE trained on IMDB reviews at several vocabulary sizes.

Executes the notebook (built from `notebooks/src/tokenizer.md`) with papermill at full size, keeps the
executed notebook, and prints what it measured: tokens per word on held-out test reviews at each
vocabulary size (and for SmolLM2's tokenizer), training and encoding times, and how many test reviews
the student's `encode` with SmolLM2's merges tokenizes exactly as SmolLM2 does.

    python scripts/tokenizer_full.py --out /tmp/llmlab-runs/tokenizer [--train 2000] [--eval 1000] [--check 1000]
"""
from __future__ import annotations

from _common import results_parser, run_for_results  # scripts/_common.py

NAME = "tokenizer"


def main() -> None:
    parser = results_parser(__doc__, NAME)
    parser.add_argument("--train", type=int, default=2000, help="training reviews")
    parser.add_argument("--eval", type=int, default=1000, help="held-out test reviews for tokens per word")
    parser.add_argument("--vocab-sizes", type=int, nargs="+", default=[512, 1024, 2048, 4096, 8192])
    parser.add_argument("--check", type=int, default=1000, help="test reviews for the SmolLM2 cross-check")
    args = parser.parse_args()
    params = dict(N_TRAIN=args.train, N_EVAL=args.eval, VOCAB_SIZES=args.vocab_sizes, N_CHECK=args.check)
    r = run_for_results(NAME, args.out, params)["results"]
    print(f"BPE trained on {r['n_train']} reviews in {r['train_seconds']:.1f} s; tokens per word on {r['n_eval']} "
          "test reviews:")
    print(f"{'vocabulary':>12}{'tokens/word':>13}{'words/token':>13}{'encode s':>10}")
    print(f"{'256':>12}{r['bytes_tokens_per_word']:13.3f}{1 / r['bytes_tokens_per_word']:13.3f}")
    for size, tpw in r["tokens_per_word"].items():
        print(f"{size:>12}{tpw:13.3f}{1 / tpw:13.3f}{r['encode_seconds'][size]:10.2f}")
    print(f"{'SmolLM2':>12}{r['smollm2_tokens_per_word']:13.3f}{1 / r['smollm2_tokens_per_word']:13.3f}"
          f"{r['smollm2_encode_seconds']:10.2f}")
    same, total = r["smollm2_agreement"]
    print(f"encode with SmolLM2's merges: identical ids on {same} of {total} test reviews")


if __name__ == "__main__":
    main()
