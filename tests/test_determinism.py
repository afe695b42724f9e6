"""A check's examples depend only on the check and on hypothesis' (pinned) version.

hypothesis also draws constants it finds in the "local" modules loaded in the process; a grading
session loads the kit's modules lazily (variants for a diagnosis, factories for a topic), so the
examples of a check would depend on what was graded before it. The grading profile keeps hypothesis'
built-in constants only (llmlab.grading.plugin._without_local_constants).
"""
from __future__ import annotations

import importlib
from importlib.metadata import version
from pathlib import Path

from hypothesis import given, settings, strategies as st

from llmlab.grading import plugin

PROBE = 918273645  # a literal no pool holds unless the probe module is read


def _draws() -> list:
    seen = []

    @settings(derandomize=True, database=None, max_examples=300)
    @given(st.integers(), st.floats(allow_nan=False), st.text(max_size=4))
    def draw(i, f, t):
        seen.append((i, f, t))

    draw()
    return seen


def test_examples_do_not_depend_on_the_modules_loaded(tmp_path, monkeypatch):
    plugin._without_local_constants()
    before = _draws()
    (tmp_path / "llmlab_constants_probe.py").write_text(f"A = {PROBE}\nB = 0.5772156649\nC = 'probe-text'\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    importlib.import_module("llmlab_constants_probe")
    after = _draws()
    assert PROBE not in {i for i, _, _ in after}, "a constant of a loaded module was drawn"
    assert after == before, "loading a module changed the examples drawn"


def test_hypothesis_is_pinned_to_the_version_the_expected_failures_were_recorded_with():
    # graders/expected_failures/*.json list what each variant fails on the examples of this version
    pyproject = (Path(__file__).resolve().parent.parent / "pyproject.toml").read_text()
    assert f'"hypothesis=={version("hypothesis")}"' in pyproject


def test_a_grading_session_computes_on_one_torch_thread_unless_told_otherwise(monkeypatch):
    # the sum order of a multi-threaded reduction depends on the thread count, hence on the machine
    from llmlab.grading.runner import session_env

    monkeypatch.setenv("OMP_NUM_THREADS", "8")
    assert session_env()["OMP_NUM_THREADS"] == session_env()["MKL_NUM_THREADS"] == "1"
    assert session_env(3)["OMP_NUM_THREADS"] == "3"
