"""Parallelism for the kit's own suite only.

``python3 -m pytest`` (the kit's tests: minutes of work) runs on 2 xdist workers, as CI does. A
student's ``pytest exercises/`` (seconds of work) runs in one process: starting workers would cost
more than it saves. ``-n N`` on the command line always wins, and ``-p no:xdist`` works everywhere
(nothing in the settings names an xdist option).
"""
from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent
KIT_WORKERS = 2


def only_exercises(config) -> bool:
    """Whether every path the run collects lies in ``exercises/`` (``-k``/``-m`` do not count)."""
    exercises = ROOT / "exercises"
    paths = [Path(str(a).split("::")[0]) for a in config.args]
    paths = [(p if p.is_absolute() else Path(config.invocation_params.dir) / p).resolve() for p in paths]
    return bool(paths) and all(p == exercises or exercises in p.parents for p in paths)


@pytest.hookimpl(optionalhook=True)
def pytest_configure_node(node):
    """Tell each xdist worker that tests are dealt by ``xdist_group`` (see below)."""
    node.workerinput["llmlab_loadgroup"] = node.config.option.dist == "loadgroup"


@pytest.hookimpl(wrapper=True)
def pytest_cmdline_main(config):
    # A worker re-reads the command line, not the options set below, so it would not know that
    # ``loadgroup`` deals the tests: it would then leave the group out of the test ids, the controller
    # would deal a group's tests to both workers, and each would build the module's fixture again.
    if getattr(config, "workerinput", {}).get("llmlab_loadgroup"):
        config.option.loadgroup = True
    # a wrapper runs before xdist's own hook, which turns ``numprocesses`` into worker processes
    if (config.pluginmanager.hasplugin("xdist") and config.option.numprocesses is None
            and not hasattr(config, "workerinput") and "PYTEST_XDIST_WORKER" not in os.environ
            and not only_exercises(config)):
        config.option.numprocesses = KIT_WORKERS
        if config.option.dist == "no":
            config.option.dist = "loadgroup"  # tests marked xdist_group share a worker
    workers = getattr(config.option, "numprocesses", None)
    parallel = workers in ("auto", "logical") or isinstance(workers, int) and workers > 1
    if parallel and not hasattr(config, "workerinput"):
        # Workers (and every process they start: grading sessions, notebook kernels) share the cores
        # already: one torch thread each. More threads only wait for each other's time slices.
        for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):
            os.environ.setdefault(name, "1")
    return (yield)
