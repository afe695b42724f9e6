"""Run `encoder-decoder.ipynb` at its full (default) sizes and print what it measures (issue 18).

Trains the encoder-decoder on the number-words -> digits task, reports its held-out exact-match
accuracy and training time, then the decoder-only model of the same parameter count on the same data.
The executed notebook, its figures and a JSON of the numbers are written to ``--out``.

    python scripts/encoder_decoder_full.py --out /tmp/encoder-decoder-full
    python scripts/encoder_decoder_full.py --out /tmp/ed -p STEPS=3000 -p LR=1e-3
"""
from __future__ import annotations

import json

from _common import out_and_overrides, save_figures  # scripts/_common.py

from llmlab import nbbuild  # noqa: E402  (on the path through _common)

NAME = "encoder-decoder"


def main() -> int:
    out, params = out_and_overrides(__doc__, "encoder-decoder-full", "folder for the executed notebook and figures",
                                    lambda out: {"RESULTS_JSON": str(out / "results.json")})
    seconds = nbbuild.execute(NAME, out, params)
    print(f"executed in {seconds:.0f} s; notebook and figures in {out}")
    save_figures(out, NAME)
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
