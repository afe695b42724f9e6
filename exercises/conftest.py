"""Self-check settings. `pytest exercises/` runs the example tests against your modules here.

An unfinished function fails its tests with one line naming its task, e.g.
``NotImplementedError: task attention.scaled_dot_product_attention: not implemented yet``.
"""
from __future__ import annotations

import importlib
import os
import sys
from pathlib import Path

import pytest

_ROOT = Path(__file__).resolve().parent.parent
if str(_ROOT) not in sys.path:
    sys.path.insert(0, str(_ROOT))

# The kit's own tests point these example tests at another implementation (e.g. the reference).
_TARGET = os.environ.get("LLMLAB_SELF_CHECK_TARGET")
if _TARGET:
    for _py in Path(__file__).parent.glob("*.py"):
        if not _py.name.startswith(("test_", "conftest", "__")):
            sys.modules[f"exercises.{_py.stem}"] = importlib.import_module(f"{_TARGET}.{_py.stem}")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if call.excinfo is not None and call.excinfo.errisinstance(NotImplementedError):
        message = str(call.excinfo.value)
        if message.startswith("task "):
            report.longrepr = f"NotImplementedError: {message}"
