"""Run `encoder-decoder.ipynb` at its full (default) sizes and print what it measures (issue 18).

Trains the encoder-decoder on the number-words -> digits task, reports its held-out exact-match
accuracy and training time, then the decoder-only model of the same parameter count on the same data.
The executed notebook, its figures and a JSON of the numbers are written to ``--out``.

    python scripts/encoder_decoder_full.py --out /tmp/encoder-decoder-full
    python scripts/encoder_decoder_full.py --out /tmp/ed -p STEPS=3000 -p LR=1e-3
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

NAME = "encoder-decoder"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="encoder-decoder-full", help="folder for the executed notebook and figures")
    parser.add_argument("-p", "--parameter", action="append", default=[],
                        help="override a parameter, NAME=python-literal (repeatable)")
    args = parser.parse_args()
    out = Path(args.out).resolve()
    params = {"RESULTS_JSON": str(out / "results.json")}
    for item in args.parameter:
        key, _, value = item.partition("=")
        params[key.strip()] = ast.literal_eval(value.strip())
    seconds = nbbuild.execute(NAME, out, params)
    print(f"executed in {seconds:.0f} s; notebook and figures in {out}")
    executed = json.loads((out / f"{NAME}.executed.ipynb").read_text())
    figure = 0
    for cell in executed["cells"]:
        for output in cell.get("outputs", []) if cell["cell_type"] == "code" else []:
            if "image/png" in output.get("data", {}):
                figure += 1
                (out / f"figure-{figure:02d}.png").write_bytes(base64.b64decode(output["data"]["image/png"]))
    res = json.loads((out / "results.json").read_text())
    print(f"{res['steps']} steps of {res['batch']} numbers, {res['threads']} threads, {res['train_numbers']} training "
          f"numbers, {res['test_numbers']} held-out; load average at the end {res['load_average']:.1f}")
    for name in ("encoder-decoder", "decoder-only"):
        r = res[name]
        print(f"{name:16s} {r['parameters']:,} parameters: trained in {r['train_seconds']:.0f} s, final loss "
              f"{r['final_loss']:.4f}, held-out exact match {r['accuracy']:.1%}, greedy decoding of the held-out "
              f"set {r['decode_seconds']:.1f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
