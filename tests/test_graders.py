"""The graders are judged by the mistakes they catch and the correct solutions they accept.

For every topic, one trusted grading session grades together: the reference (full marks), the
generated stub (zero on every check), every buggy variant (must lose points, and the feedback of at
least one failing check must name its mistake), and every alternative correct implementation (full
marks). One test per topic, so parallel test workers split the topics between them.

One mistake loses its own checks, not more: ``graders/expected_failures/<topic>.json`` lists, for each
buggy variant, the checks it must fail (``{"variant_name": ["check_name", ...]}``), and each variant's set
of failing checks must equal its list: a failing check that is not listed is a mistake costing points
twice, a listed check that passes is a mistake the grader no longer catches; a ``"?check"`` entry may fail or
pass (a timing-dependent check, e.g. a concurrency bound, for this variant only). After a change to a topic's
graders or variants, ``LLMLAB_UPDATE_EXPECTED=topic[,topic...]`` (or ``all``) ``pytest -n 0
tests/test_graders.py -k topic`` rewrites those lists from what fails now (review the diff).
"""
from __future__ import annotations

import json
import os
import shutil

import pytest

from llmlab import topics
from llmlab.grading.runner import grade
from llmlab.grading.variants import alternatives, load_variants, write_alternative
from llmlab.paths import EXERCISES, GRADERS, SOLUTIONS

TOPICS = topics.topic_names()
EXPECTED = GRADERS / "expected_failures"
UPDATE = {t for t in os.environ.get("LLMLAB_UPDATE_EXPECTED", "").split(",") if t}


def _summary(result, topic):
    t = result.topics[topic]
    return "\n".join(f"  {c['check']}: {c['status']} {c['feedback'][:300]}" for c in t.checks if c["status"] != "passed")


@pytest.mark.slow  # minutes per topic: the fast loop leaves it out, a change to a topic's graders runs it
@pytest.mark.parametrize("topic", TOPICS)
def test_graders_catch_every_variant_and_accept_every_correct_solution(topic, tmp_path):
    variants, alts = list(load_variants(topic)), alternatives(topic)
    assert len(variants) >= 8, f"{topic}: fewer than 8 buggy variants"
    assert len(alts) >= 2, f"{topic}: fewer than 2 alternative correct implementations"
    subs = {"reference": SOLUTIONS, "stub": tmp_path / "stub"}
    (tmp_path / "stub").mkdir()
    shutil.copyfile(EXERCISES / f"{topic}.py", tmp_path / "stub" / f"{topic}.py")
    for variant in variants:
        subs[f"bug:{variant.name}"] = variant.write(tmp_path / f"bug_{variant.name}")
    for alt in alts:
        subs[f"alt:{alt.stem}"] = write_alternative(alt, tmp_path / alt.stem)
    results = grade(subs, [topic], trusted=True)
    problems = []

    errors = [(n, c["check"], c["internal"][-600:]) for n, r in results.items() for c in r.topics[topic].checks
              if c["status"] == "error"]
    if errors:
        problems.append(f"internal grader errors: {errors}")
    ref = results["reference"].topics[topic]
    if not (ref.max_points > 0 and ref.points == ref.max_points):
        problems.append(f"the reference lost points:\n{_summary(results['reference'], topic)}")
    stub = results["stub"].topics[topic]
    if not stub.checks or any(c["points"] for c in stub.checks):
        problems.append(f"the stub scored on {[c['check'] for c in stub.checks if c['points']]}")
    if not all("Not implemented yet" in c["feedback"] for c in stub.checks):
        problems.append(f"the stub's feedback does not say 'Not implemented yet':\n{_summary(results['stub'], topic)}")
    for alt in alts:
        t = results[f"alt:{alt.stem}"].topics[topic]
        if t.points != t.max_points:
            problems.append(f"{alt.name} (correct) lost points:\n{_summary(results[f'alt:{alt.stem}'], topic)}")
    for variant in variants:
        res = results[f"bug:{variant.name}"]
        t = res.topics[topic]
        if t.points >= t.max_points:
            problems.append(f"buggy variant {variant.name} got full marks")
        elif not any(variant.mistake in c["feedback"] for c in t.checks if c["status"] != "passed"):
            problems.append(f"no failing check names the mistake of {variant.name}:\n{_summary(res, topic)}")
    problems += _isolation_problems(topic, {v.name: results[f"bug:{v.name}"].topics[topic].checks for v in variants})
    assert not problems, f"{topic}:\n" + "\n".join(problems)


def _isolation_problems(topic: str, checks_of: dict[str, list[dict]]) -> list[str]:
    failing = {name: sorted(c["check"] for c in checks if c["status"] != "passed") for name, checks in checks_of.items()}
    path = EXPECTED / f"{topic}.json"
    if topic in UPDATE or "all" in UPDATE:
        # a "?check" entry (timing-dependent: it may fail or pass for this variant) is kept as it was
        old = json.loads(path.read_text()) if path.exists() else {}
        kept = {name: [c for c in old.get(name, []) if c.startswith("?")] for name in failing}
        fresh = {name: sorted(set(checks) - {c[1:] for c in kept[name]}) + kept[name] for name, checks in failing.items()}
        path.write_text(json.dumps(fresh, indent=1, sort_keys=True) + "\n")
    if not path.exists():
        return [f"{path.name} is missing: record it with LLMLAB_UPDATE_EXPECTED={topic} and review it"]
    expected = json.loads(path.read_text())
    problems = []
    if set(expected) != set(failing):
        problems.append(f"{path.name}: variants without a list {sorted(set(failing) - set(expected))}, "
                        f"lists without a variant {sorted(set(expected) - set(failing))}")
    for name in sorted(set(expected) & set(failing)):
        now = set(failing[name])
        maybe = {c[1:] for c in expected[name] if c.startswith("?")}
        listed = set(expected[name]) - {"?" + c for c in maybe}
        if not listed <= now <= listed | maybe:
            problems.append(f"{name}: also fails {sorted(now - listed - maybe)}, no longer fails {sorted(listed - now)}")
    return problems


def test_every_expected_failures_file_is_a_topic():
    listed = {p.stem for p in EXPECTED.glob("*.json")}
    assert listed <= set(TOPICS), listed - set(TOPICS)
