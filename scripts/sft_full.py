"""Run `sft.ipynb` at its full (default) sizes and print what it measures (issue 19).

    python scripts/sft_full.py --out /tmp/sft-full [-p NAME=python-literal ...]

Executes the built notebook with ``nbbuild.execute`` and its default parameters (or the overrides
given), then prints the notebook's results: held-out format adherence and assistant-token loss before
and after SFT, the training time (wall and CPU, threads, load average), the all-token comparison and
a few generations before/after. The executed notebook and the results JSON stay in ``--out``.
"""
from __future__ import annotations

import json
import os

from _common import out_and_overrides  # scripts/_common.py

from llmlab import nbbuild  # noqa: E402  (on the path through _common)

NAME = "sft"


def _pct(x):
    return "n/a" if x is None else f"{x:.0%}"


def main() -> int:
    # the kit's own chat_format (a kit run has no student's); a student passes -p CHAT_FORMAT_MODULE=...
    out, params = out_and_overrides(__doc__, "sft-full", "folder for the executed notebook and results",
                                    lambda out: {"RESULTS_JSON": str(out / "sft_results.json"),
                                                 "CHAT_FORMAT_MODULE": "solutions.chat_format"})
    seconds = nbbuild.execute(NAME, out, params)
    res = json.loads((out / "sft_results.json").read_text())
    print(f"notebook executed in {seconds:.0f} s (overrides: {params}); load average now "
          f"{os.getloadavg()[0]:.1f}")
    print(f"SFT: {res['n_train']} conversations, {res['steps']} optimizer steps in {res['seconds']:.0f} s wall, "
          f"{res['cpu_seconds']:.0f} s CPU on {res['threads']} threads")
    b, a = res["before"], res["after"]
    print(f"held-out ({res['n_test']} unseen questions in unseen phrasings):")
    print(f"  format adherence   {_pct(b['format'])} -> {_pct(a['format'])}")
    print(f"  exact answer       {_pct(b['exact'])} -> {_pct(a['exact'])}")
    print(f"  names itself Pip   {_pct(b['names_pip'])} -> {_pct(a['names_pip'])}")
    print(f"  assistant loss     {res['heldout_loss'][0]:.3f} -> {res['heldout_loss'][1]:.3f}")
    print(f"  loss curve         {', '.join(f'{x:.2f}' for x in res['losses'])}")
    naive = res.get("all_tokens")
    if naive:
        print(f"all-token loss instead: held-out assistant loss {naive['heldout_assistant_loss']:.3f}, format "
              f"{_pct(naive['adherence']['format'])}, exact {_pct(naive['adherence']['exact'])} "
              f"({naive['seconds']:.0f} s)")
    for g in res["generations"]:
        print(f"Q: {g['question']}\n  before: {g['before']!r}\n  after:  {g['after']!r}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
