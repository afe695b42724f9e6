"""Shared timing helper of the benchmark scripts."""
from __future__ import annotations

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
