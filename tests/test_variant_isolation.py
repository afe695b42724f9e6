"""One mistake loses its own checks, not more.

``graders/expected_failures/<topic>.json`` lists, for each buggy variant of the topic, the checks it
must fail: ``{"variant_name": ["check_name", ...], ...}``. All of a topic's variants are graded in one
trusted session (as ``tests/test_graders.py`` does) and each variant's set of failing checks must equal
its list exactly: a failing check that is not listed is a mistake costing points twice, a listed check
that passes is a mistake the grader no longer catches. One test per topic, so test workers split them.
After a change to a topic's graders or variants, ``LLMLAB_UPDATE_EXPECTED=topic[,topic...] pytest -n 0
tests/test_variant_isolation.py`` rewrites those topics' lists from what fails now (review the diff).
"""
from __future__ import annotations

import json
import os

import pytest

from llmlab import topics
from llmlab.grading.runner import grade
from llmlab.grading.variants import load_variants
from llmlab.paths import GRADERS

EXPECTED = GRADERS / "expected_failures"
LISTED = sorted(p.stem for p in EXPECTED.glob("*.json"))
UPDATE = {t for t in os.environ.get("LLMLAB_UPDATE_EXPECTED", "").split(",") if t}
# Examples per property check (grading uses 25): the failing checks of a variant are found with fewer, and
# the lists were recorded with exactly this many, so the verdict stays deterministic and CI stays fast.
EXAMPLES = 10


def test_every_listed_topic_is_active():
    assert LISTED, "no graders/expected_failures/*.json"
    assert set(LISTED) <= set(topics.topic_names()), set(LISTED) - set(topics.topic_names())


@pytest.mark.slow
@pytest.mark.parametrize("topic", sorted(set(LISTED) | UPDATE))
def test_each_variant_fails_exactly_its_listed_checks(topic, tmp_path):
    variants = {v.name: v for v in load_variants(topic)}
    subs = {name: v.write(tmp_path / name) for name, v in variants.items()}
    results = grade(subs, [topic], trusted=True, max_examples=EXAMPLES, threads=1)
    if topic in UPDATE:
        failing = {name: sorted(c["check"] for c in results[name].topics[topic].checks if c["status"] != "passed")
                   for name in variants}
        (EXPECTED / f"{topic}.json").write_text(json.dumps(failing, indent=1) + "\n")
    expected = json.loads((EXPECTED / f"{topic}.json").read_text())
    assert set(expected) == set(variants), (
        f"{topic}: variants without a list {sorted(set(variants) - set(expected))}, "
        f"lists without a variant {sorted(set(expected) - set(variants))}")
    problems = []
    for name, listed in expected.items():
        checks = results[name].topics[topic].checks
        known = {c["check"] for c in checks}
        unknown = set(listed) - known
        failing = {c["check"] for c in checks if c["status"] != "passed"}
        if unknown:
            problems.append(f"{name}: lists checks that do not exist: {sorted(unknown)}")
        if failing != set(listed):
            problems.append(f"{name}: also fails {sorted(failing - set(listed))}, "
                            f"no longer fails {sorted(set(listed) - failing)}")
    assert not problems, f"{topic}:\n" + "\n".join(problems)
