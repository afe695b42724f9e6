"""Shared fixtures of the kit's own tests, and the CI rule: on CI nothing may be skipped.

With ``CI`` set (GitHub Actions and most CI systems set ``CI=true``), a test that skips or xfails
(a missing dependency, model or data file) is reported as a failure with its reason: a green CI run
means every test ran and passed.
"""
from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


def on_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


def _fail_on_ci(report) -> None:
    """Turn a skipped (or xfailed) report into a failure that says why."""
    if not on_ci():
        return
    if getattr(report, "wasxfail", None) is not None or report.skipped:
        if report.skipped and isinstance(report.longrepr, tuple):
            reason = report.longrepr[2]
        else:
            reason = getattr(report, "wasxfail", "") or str(report.longrepr)
        what = "xfailed" if getattr(report, "wasxfail", None) is not None else "skipped"
        report.outcome = "failed"
        report.longrepr = f"{what} on CI (CI={os.environ.get('CI')}), which must run every test: {reason}"
        if hasattr(report, "wasxfail"):
            del report.wasxfail


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    _fail_on_ci(outcome.get_result())


@pytest.hookimpl(hookwrapper=True)
def pytest_make_collect_report(collector):
    # a module-level importorskip skips the whole file at collection time
    outcome = yield
    _fail_on_ci(outcome.get_result())


@pytest.fixture(scope="session")
def kit_root() -> Path:
    return ROOT


def pytest_collection_modifyitems(config, items):
    # Longest first. xdist hands tests to its workers in collection order, and a run lasts until its
    # last test ends: a 3-minute notebook run collected last would run alone at the end while the
    # other worker idles. Modules holding slow end-to-end tests (and the grader sweeps) start at once;
    # the many short tests fill the gaps. Whole modules move, never single tests: a module-scoped
    # fixture is torn down when the run leaves its module, so splitting a module would build it again.
    # (The sort is stable and the same on every worker, as xdist needs.)
    first = {item.path for item in items if item.get_closest_marker("slow") or item.path.name == "test_graders.py"}
    items.sort(key=lambda item: item.path not in first)
