"""On CI (`CI=true`, as `.ci/run` sets it) a skipped or xfailed test is a failure that says why."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent

CASES = '''
import pytest

def test_runs():
    pass

def test_needs_a_model_file():
    pytest.skip("no model file at /nowhere")

@pytest.mark.xfail(reason="known to be wrong")
def test_known_bug():
    assert False
'''
MODULE_SKIP = '''
import pytest
pytest.importorskip("a_package_nobody_installed")

def test_never_collected():
    pass
'''


def _pytest(folder: Path, ci: str | None) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "CI"}
    if ci is not None:
        env["CI"] = ci
    return subprocess.run([sys.executable, "-m", "pytest", "-q", "-n", "0", "-p", "no:cacheprovider", "-rA",
                           str(folder)], cwd=folder, env=env, capture_output=True, text=True, timeout=300)


def test_skips_and_xfails_fail_on_ci_only(tmp_path):
    shutil.copyfile(HERE / "conftest.py", tmp_path / "conftest.py")
    (tmp_path / "test_cases.py").write_text(CASES)
    ci = _pytest(tmp_path, "true")
    summary = ci.stdout.splitlines()[-1]
    assert ci.returncode != 0 and "1 passed" in summary and "2 failed" in summary, ci.stdout[-3000:]
    assert "no model file at /nowhere" in ci.stdout and "known to be wrong" in ci.stdout
    local = _pytest(tmp_path, None)  # on a laptop a skip stays a skip
    assert local.returncode == 0, local.stdout[-3000:]
    assert "1 skipped" in local.stdout and "1 xfailed" in local.stdout


def test_a_module_skipped_at_collection_fails_on_ci(tmp_path):
    shutil.copyfile(HERE / "conftest.py", tmp_path / "conftest.py")
    (tmp_path / "test_module_skip.py").write_text(MODULE_SKIP)
    ci = _pytest(tmp_path, "true")
    assert ci.returncode != 0 and "a_package_nobody_installed" in ci.stdout, ci.stdout[-3000:]
    local = _pytest(tmp_path, "false")
    assert "1 skipped" in local.stdout and "error" not in local.stdout.splitlines()[-1], local.stdout[-2000:]


def test_ci_script_sets_ci():
    text = (HERE.parent / ".ci" / "run").read_text()
    assert 'export CI="${CI:-true}"' in text
