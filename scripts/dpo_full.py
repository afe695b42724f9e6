"""Run the `dpo` notebook at full size and report its numbers (issue 7).

    python scripts/dpo_full.py [--out results.json] [--threads N] [NAME=VALUE ...]

Executes ``notebooks/source/dpo/dpo.ipynb`` with papermill and its default (full-size) parameters,
or with overrides given as ``NAME=VALUE`` (Python literals, e.g. ``DPO_STEPS=10``). The notebook
writes its measurements to a JSON file; this script prints them: the reward model's accuracy, the
toy PPO run, the held-out preference accuracy of the DPO run before and after training, the DPO wall
time, and the generations before/after. The executed notebook is written next to the JSON file.
"""
from __future__ import annotations

import argparse
import ast
import json
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOK = ROOT / "notebooks" / "source" / "dpo" / "dpo.ipynb"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=None, help="where to write the results JSON (default: a temp folder)")
    parser.add_argument("--threads", type=int, default=None, help="torch threads in the kernel (default: torch's)")
    parser.add_argument("overrides", nargs="*", help="NAME=VALUE parameter overrides")
    args = parser.parse_args(argv)

    import papermill as pm

    out = Path(args.out or Path(tempfile.mkdtemp(prefix="dpo-full-")) / "dpo_results.json").resolve()
    out.parent.mkdir(parents=True, exist_ok=True)
    params = {"RESULTS_JSON": str(out)}
    for item in args.overrides:
        name, _, value = item.partition("=")
        params[name] = ast.literal_eval(value)
    env_threads = {}
    if args.threads:
        env_threads = {"OMP_NUM_THREADS": str(args.threads), "MKL_NUM_THREADS": str(args.threads)}
    os.environ.update(env_threads)
    started = time.time()
    pm.execute_notebook(str(NOTEBOOK), str(out.with_suffix(".ipynb")), parameters=params, cwd=str(NOTEBOOK.parent),
                        kernel_name="python3", progress_bar=False)
    total = time.time() - started
    res = json.loads(out.read_text())
    dpo = res["dpo"]
    first, last = dpo["evals"][0], dpo["evals"][-1]
    print(f"notebook wall time: {total:.0f} s (overrides: {params})")
    print(f"reward model (MiniLM + head): train accuracy {res['reward_model']['train_accuracy']:.1%}, "
          f"held-out {res['reward_model']['test_accuracy']:.1%}")
    print(f"toy PPO: P(polite) {res['ppo']['p_polite_first']:.2f} -> {res['ppo']['p_polite_last']:.2f}")
    print(f"DPO: {dpo['steps']} steps x {dpo['batch_pairs']} pairs in {dpo['seconds']:.0f} s wall, "
          f"{dpo.get('cpu_seconds', float('nan')):.0f} s CPU on {dpo.get('threads', '?')} threads "
          f"(load average at the end: {os.getloadavg()[0]:.1f})")
    print(f"  held-out preference accuracy (implicit reward, ties = wrong): {first['accuracy']:.1%} -> "
          f"{last['accuracy']:.1%}")
    print(f"  held-out pairs where log pi(chosen) > log pi(rejected): {first['logp_accuracy']:.1%} -> "
          f"{last['logp_accuracy']:.1%}")
    for flaw in ("rude", "rambling"):
        key = f"logp_accuracy_{flaw}"
        if key in first:
            print(f"    {flaw}: {first[key]:.1%} -> {last[key]:.1%}")
    print(f"  held-out mean reward margin: {first['margin']:+.3f} -> {last['margin']:+.3f}")
    for g in res["generations"]:
        print(f"Q: {g['question']}\n  before: {g['before']}\n  after:  {g['after']}")
    print(f"results: {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
