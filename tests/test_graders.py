"""The graders are judged by the mistakes they catch and the correct solutions they accept.

For every topic, one trusted grading session grades together: the reference (full marks), the
generated stub (zero on every check), every buggy variant (must lose points, and the feedback must
name its mistake), and every alternative correct implementation (full marks).
"""
from __future__ import annotations

import shutil

import pytest

from llmlab import topics
from llmlab.grading.runner import grade
from llmlab.grading.variants import alternatives, load_variants, write_alternative
from llmlab.paths import EXERCISES, SOLUTIONS

TOPICS = topics.topic_names()


@pytest.fixture(scope="module", params=TOPICS)
def graded(request, tmp_path_factory):
    topic = request.param
    root = tmp_path_factory.mktemp(topic)
    subs = {"reference": SOLUTIONS, "stub": root / "stub"}
    (root / "stub").mkdir()
    shutil.copyfile(EXERCISES / f"{topic}.py", root / "stub" / f"{topic}.py")
    for variant in load_variants(topic):
        subs[f"bug:{variant.name}"] = variant.write(root / f"bug_{variant.name}")
    for alt in alternatives(topic):
        subs[f"alt:{alt.stem}"] = write_alternative(alt, root / alt.stem)
    results = grade(subs, [topic], trusted=True)
    return topic, results


def test_topic_has_enough_variants_and_alternatives(graded):
    topic, _ = graded
    assert len(load_variants(topic)) >= 8, f"{topic}: fewer than 8 buggy variants"
    assert len(alternatives(topic)) >= 2, f"{topic}: fewer than 2 alternative correct implementations"


def _summary(result, topic):
    t = result.topics[topic]
    return "\n".join(f"{c['check']}: {c['status']} {c['feedback'][:300]}" for c in t.checks if c["status"] != "passed")


def test_reference_gets_full_marks(graded):
    topic, results = graded
    t = results["reference"].topics[topic]
    assert t.max_points > 0 and t.points == t.max_points, _summary(results["reference"], topic)


def test_stub_gets_zero_on_every_check(graded):
    topic, results = graded
    t = results["stub"].topics[topic]
    assert t.checks and all(c["points"] == 0 for c in t.checks), [c["check"] for c in t.checks if c["points"]]
    assert all("Not implemented yet" in c["feedback"] or "not implemented" in c["feedback"].lower()
               for c in t.checks), _summary(results["stub"], topic)


def test_every_alternative_gets_full_marks(graded):
    topic, results = graded
    for name, res in results.items():
        if name.startswith("alt:"):
            t = res.topics[topic]
            assert t.points == t.max_points, f"{name} lost points:\n{_summary(res, topic)}"


def test_every_buggy_variant_is_caught_and_named(graded):
    topic, results = graded
    for variant in load_variants(topic):
        res = results[f"bug:{variant.name}"]
        t = res.topics[topic]
        assert t.points < t.max_points, f"{variant.name} got full marks"
        failed = [c for c in t.checks if c["status"] != "passed"]
        assert any(variant.mistake in c["feedback"] for c in failed), (
            f"{variant.name}: no failing check names its mistake; feedback was:\n{_summary(res, topic)}")


def test_no_internal_grader_errors(graded):
    topic, results = graded
    errors = [(n, c["check"], c["internal"][-800:]) for n, r in results.items() for c in r.topics[topic].checks
              if c["status"] == "error"]
    assert not errors, errors
