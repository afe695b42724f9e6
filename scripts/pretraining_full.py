"""Run `llama3-pretraining.ipynb` at its full (default) sizes and print the numbers it measures.

The notebook's CI run uses the small `# ci:` sizes; this script executes the built notebook with its
default parameters (a few minutes of training, the full needle grid), keeps the executed notebook and
its figures, and prints every text output: the schedule check, the isoFLOP fit, the 402B / 16.55T table,
the training runs' validation losses and the needle-in-a-haystack success rates.

    python scripts/pretraining_full.py --out /tmp/pretraining-full
    python scripts/pretraining_full.py --out /tmp/p -p TRAIN_STEPS=1200 -p "NEEDLE_LENGTHS=[500, 4000]"
"""
from __future__ import annotations

import argparse
import ast
import base64
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from llmlab import nbbuild  # noqa: E402

NAME = "llama3-pretraining"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="pretraining-full", help="folder for the executed notebook and figures")
    parser.add_argument("-p", "--parameter", action="append", default=[],
                        help="override a parameter, NAME=python-literal (repeatable)")
    args = parser.parse_args()
    out = Path(args.out).resolve()
    params = {}
    for item in args.parameter:
        key, _, value = item.partition("=")
        params[key.strip()] = ast.literal_eval(value.strip())
    seconds = nbbuild.execute(NAME, out, params)
    print(f"executed in {seconds:.0f} s; notebook and figures in {out}")
    executed = json.loads((out / f"{NAME}.executed.ipynb").read_text())
    figure = 0
    for n, cell in enumerate(executed["cells"]):
        if cell["cell_type"] != "code":
            continue
        for output in cell.get("outputs", []):
            if output.get("output_type") == "stream" and output.get("name") == "stdout":
                text = "".join(output["text"]) if isinstance(output["text"], list) else output["text"]
                print(f"--- cell {n}\n{text.rstrip()}")
            elif "image/png" in output.get("data", {}):
                figure += 1
                (out / f"figure-{figure:02d}.png").write_bytes(base64.b64decode(output["data"]["image/png"]))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
