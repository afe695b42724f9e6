"""No check demands what the student's contract does not say.

Each ``@check(..., spec=...)`` names the phrase(s) of its task's docstring that it enforces. This test
finds every phrase, whitespace aside, in the generated stub ``exercises/<topic>.py``: in the docstring of
the task's function (for a method, also its class's docstring), or in the module docstring for a
module-level task (a constant). For the topics in ``AUDITED`` every check must declare a phrase.
"""
from __future__ import annotations

import ast
import importlib

import pytest

from llmlab import topics
from llmlab.paths import EXERCISES

TOPICS = topics.topic_names()
# Every topic's every check states the docstring phrase it enforces.
AUDITED = set(TOPICS)
# importing a grader outside a grading session applies its (there unregistered) ``llmlab`` mark
pytestmark = pytest.mark.filterwarnings("ignore::pytest.PytestUnknownMarkWarning")


def normalise(text: str) -> str:
    return " ".join(text.split())


def stub_docstrings(topic: str) -> dict[str, str]:
    """Task id -> the docstring text a student reads for it (class docstring included for a method)."""
    tree = ast.parse((EXERCISES / f"{topic}.py").read_text())
    module_doc = ast.get_docstring(tree) or ""
    docs = {"": module_doc}

    def walk(nodes, prefix, outer_doc):
        for node in nodes:
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                docs[prefix + node.name] = (ast.get_docstring(node) or "") + "\n" + outer_doc
            elif isinstance(node, ast.ClassDef):
                doc = ast.get_docstring(node) or ""
                docs[prefix + node.name] = doc
                walk(node.body, prefix + node.name + ".", doc)
    walk(tree.body, "", "")
    return {f"{topic}.{k}" if k else topic: normalise(v) for k, v in docs.items()}


def grader_checks(topic: str) -> list[tuple[str, dict]]:
    """(test name, the ``llmlab`` mark's keyword arguments) of every check in the topic's grader."""
    module = importlib.import_module(f"graders.test_{topic}")
    found = []
    for name, fn in vars(module).items():
        if not name.startswith("test_") or not callable(fn):
            continue
        marks = [m for m in getattr(fn, "pytestmark", []) if m.name == "llmlab"]
        if marks:
            found.append((name, marks[0].kwargs))
    return found


@pytest.mark.parametrize("topic", TOPICS)
def test_every_spec_phrase_is_in_the_stub_docstring(topic):
    docs = stub_docstrings(topic)
    missing = []
    for name, meta in grader_checks(topic):
        task = meta["task"]
        # a module-level task (a constant) is documented in the module docstring
        doc = docs.get(task, docs[topic])
        missing += [f"{name} ({task}): {p!r}" for p in meta.get("spec", ()) if normalise(p) not in doc]
    assert not missing, f"{topic}: spec phrases not found in the stub's docstrings:\n" + "\n".join(missing)


def test_every_check_of_an_audited_topic_declares_its_spec():
    # one test over all audited topics (an empty parameter list would be a skip, a failure on CI)
    bare = []
    for topic in sorted(AUDITED):
        assert topic in TOPICS, f"AUDITED names {topic}, which is not an active topic"
        checks = grader_checks(topic)
        assert checks, f"{topic}: no checks found"
        bare += [f"{topic}.{name}" for name, meta in checks if not meta.get("spec")]
    assert not bare, "checks without spec=...:\n" + "\n".join(bare)


def test_audit_finds_a_missing_phrase():
    # the audit itself can fail: a phrase nobody wrote is not found
    docs = stub_docstrings("attention")
    assert normalise("a requirement nobody wrote down") not in docs["attention.scaled_dot_product_attention"]
    assert docs["attention.scaled_dot_product_attention"]
