"""Run `llama3-pretraining.ipynb` at its full (default) sizes and print the numbers it measures.

The notebook's CI run uses the small `# ci:` sizes; this script executes the built notebook with its
default parameters (a few minutes of training, the full needle grid), keeps the executed notebook and
its figures, and prints every text output: the schedule check, the isoFLOP fit, the 402B / 16.55T table,
the training runs' validation losses and the needle-in-a-haystack success rates.

    python scripts/pretraining_full.py --out /tmp/pretraining-full
    python scripts/pretraining_full.py --out /tmp/p -p TRAIN_STEPS=1200 -p "NEEDLE_LENGTHS=[500, 4000]"
"""
from __future__ import annotations

from _common import out_and_overrides, save_figures  # scripts/_common.py

from llmlab import nbbuild  # noqa: E402  (on the path through _common)

NAME = "llama3-pretraining"


def main() -> int:
    out, params = out_and_overrides(__doc__, "pretraining-full", "folder for the executed notebook and figures")
    seconds = nbbuild.execute(NAME, out, params)
    print(f"executed in {seconds:.0f} s; notebook and figures in {out}")

    def print_stdout(n, output):
        if output.get("output_type") == "stream" and output.get("name") == "stdout":
            text = "".join(output["text"]) if isinstance(output["text"], list) else output["text"]
            print(f"--- cell {n}\n{text.rstrip()}")

    save_figures(out, NAME, print_stdout)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
