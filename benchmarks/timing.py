"""Shared helpers of the benchmark scripts: the common command line and the timing."""
from __future__ import annotations

import argparse
import time

import torch


def best_seconds(fn, repeats: int):
    """(fastest wall time of ``repeats`` runs of ``fn()`` without gradients, the last run's result)."""
    best, out = float("inf"), None
    for _ in range(repeats):
        start = time.perf_counter()
        with torch.no_grad():
            out = fn()
        best = min(best, time.perf_counter() - start)
    return best, out



def smollm2_benchmark(doc: str, new_tokens: int, long_option: tuple[str, int, str]):
    """The common start of the SmolLM2 speed benchmarks: parse ``--new-tokens`` (default ``new_tokens``),
    the long prompt's size ``long_option`` = (flag, default, help), ``--repeats`` and ``--threads`` (applied
    to torch here, 0 leaves torch's default), then load SmolLM2-135M-Instruct.
    Returns (args, model, tokenizer)."""
    parser = argparse.ArgumentParser(description=doc.splitlines()[0])
    parser.add_argument("--new-tokens", type=int, default=new_tokens)
    flag, default, help_text = long_option
    parser.add_argument(flag, type=int, default=default, help=help_text)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    from llmlab.models import load_smollm2

    model, tokenizer = load_smollm2()
    return args, model, tokenizer
