"""Hypothesis strategies shared by every topic's graders.

Strategies draw *sizes and seeds*; tensors are then made from a seeded torch generator. Shrinking
therefore reaches small shapes quickly (the minimal failing input a student sees), and every
drawn case is reproducible from the few integers hypothesis prints.
"""
from __future__ import annotations

import pytest
import torch
from hypothesis import strategies as st

seeds = st.integers(min_value=0, max_value=2**31 - 1)
small = st.integers(min_value=1, max_value=6)
batch_shapes = st.lists(st.integers(min_value=1, max_value=3), min_size=0, max_size=2).map(tuple)
float_dtypes = st.sampled_from([torch.float32, torch.float64])


def randn(seed: int, *shape: int, dtype=torch.float32) -> torch.Tensor:
    """Standard normal values from a private generator (never touches torch's global RNG)."""
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed), dtype=torch.float64).to(dtype)


def bernoulli(seed: int, shape, p: float) -> torch.Tensor:
    """A bool tensor, True with probability ``p``, from a private generator."""
    g = torch.Generator().manual_seed(seed)
    return torch.rand(*shape, generator=g) < p


@st.composite
def padded_attention_masks(draw, max_batch: int = 4, max_len: int = 8, side: str | None = None):
    """A tokenizer-style ``attention_mask`` (B, S) of 0/1, left or right padded, >= 1 real token per row."""
    B = draw(st.integers(1, max_batch))
    S = draw(st.integers(1, max_len))
    side = side or draw(st.sampled_from(["left", "right"]))
    lengths = draw(st.lists(st.integers(1, S), min_size=B, max_size=B))
    mask = torch.zeros(B, S, dtype=torch.long)
    for b, n in enumerate(lengths):
        if side == "right":
            mask[b, :n] = 1
        else:
            mask[b, S - n:] = 1
    return mask


@pytest.fixture(autouse=True)
def one_torch_thread():
    """Imported into a kit test module, an autouse fixture: its tests run on one torch thread, as grading
    sessions and their workers do (``runner.session_env``). Tiny models gain nothing from a second
    thread, and on a busy machine threads that wait for each other make every forward pass many times
    slower. The setting is restored after."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def reporting() -> bool:
    """False while hypothesis is still searching or shrinking, True on the run it reports (and outside
    hypothesis). Naming a mistake replays every buggy variant, so it is done only when reporting."""
    from hypothesis import currently_in_test_context
    from hypothesis.control import current_build_context

    return not currently_in_test_context() or current_build_context().is_final


def when_reporting(compute):
    """``compute`` for the diagnoser, skipped (every variant "cannot run") until the reported run."""
    def run(module):
        if not reporting():
            raise LookupError("diagnosis deferred to the reported example")
        return compute(module)
    return run
