"""Stubs are generated from the reference, keep its spec, and fail politely."""
from __future__ import annotations

import ast
import os
import subprocess
import sys

import pytest

from llmlab import topics
from llmlab.paths import EXERCISES, SOLUTIONS
from llmlab.stubgen import StubError, make_stub, stub_for

TOPICS = topics.topic_names()


@pytest.mark.parametrize("topic", TOPICS)
def test_committed_stub_is_up_to_date(topic):
    assert (EXERCISES / f"{topic}.py").read_text() == stub_for(topic), (
        f"exercises/{topic}.py is stale: run `llmlab stubs --topic {topic}`")


@pytest.mark.parametrize("topic", TOPICS)
def test_stub_keeps_every_public_signature_and_docstring(topic):
    def public(tree):
        # module-level functions and classes and their methods; a helper nested inside a solution body
        # is part of that solution, not of the public interface
        out, nodes = {}, list(tree.body)
        while nodes:
            node = nodes.pop()
            if isinstance(node, (ast.FunctionDef, ast.ClassDef)) and not node.name.startswith("_"):
                args = ast.dump(node.args) if isinstance(node, ast.FunctionDef) else ""
                out[node.name] = (args, ast.get_docstring(node))
            if isinstance(node, ast.ClassDef):
                nodes += node.body
        return out

    ref = public(ast.parse((SOLUTIONS / f"{topic}.py").read_text()))
    stub = public(ast.parse((EXERCISES / f"{topic}.py").read_text()))
    assert ref == stub
    assert "BEGIN SOLUTION" not in (EXERCISES / f"{topic}.py").read_text()


def test_stub_generation_rules():
    source = '''
import torch

# stub region at module level
### BEGIN SOLUTION
# stub: KEYWORDS = ()
KEYWORDS = ("a", "b")
def _helper():
    return 1
### END SOLUTION


class Model:
    def forward(self, x):
        """Doc."""
        y = 1
        ### BEGIN SOLUTION
        return x + y
        ### END SOLUTION
'''
    stub = make_stub(source, "demo")
    assert "KEYWORDS = ()" in stub and "_helper" not in stub and "x + y" not in stub
    assert 'raise NotImplementedError("task demo.Model.forward: not implemented yet")' in stub
    assert "        y = 1" in stub  # code outside the regions stays
    ns = {}
    exec(compile(stub, "stub", "exec"), ns)
    with pytest.raises(NotImplementedError, match="task demo.Model.forward"):
        ns["Model"]().forward(1)
    with pytest.raises(StubError):
        make_stub("def f():\n    ### BEGIN SOLUTION\n    return 1\n", "demo")


def _self_check(target: str | None, tmp_path):
    env = dict(os.environ)
    env.pop("LLMLAB_SELF_CHECK_TARGET", None)
    if target:
        env["LLMLAB_SELF_CHECK_TARGET"] = target
    report = tmp_path / "report.xml"
    run = subprocess.run([sys.executable, "-m", "pytest", "exercises", "-q", "-p", "no:cacheprovider",
                          "-o", "addopts=", f"--junitxml={report}"], cwd=EXERCISES.parent, env=env,
                         capture_output=True, text=True)
    from xml.etree import ElementTree

    cases = ElementTree.parse(report).getroot().iter("testcase")
    return run, {f"{c.get('classname')}.{c.get('name')}": [e for e in c if e.tag in ("failure", "error")]
                 for c in cases}


def test_public_self_check_fails_politely_on_untouched_stubs(tmp_path):
    run, cases = _self_check(None, tmp_path)
    assert run.returncode == 1, run.stdout[-2000:]
    for topic in TOPICS:
        assert any(f"test_{topic}." in name for name in cases), f"no public tests for {topic}"
    for name, problems in cases.items():
        assert problems, f"{name} passed on an untouched stub"
        assert all(p.tag == "failure" and p.get("message", "").startswith("NotImplementedError: task ")
                   for p in problems), f"{name} did not fail with the not-implemented message: {problems[0].attrib}"


def test_public_self_check_passes_on_the_reference(tmp_path):
    run, cases = _self_check("solutions", tmp_path)
    assert run.returncode == 0, run.stdout[-3000:]
