"""Reports: a table for people, Gradescope's results.json, JUnit XML for CI systems."""
from __future__ import annotations

import json
import unicodedata
from xml.etree import ElementTree as ET

from ..i18n import check_title
from ..i18n import translate as _t
from .runner import SubmissionResult


def _fmt(x: float) -> str:
    return f"{x:g}"


def _columns(text: str) -> int:
    """Terminal columns of ``text`` (a Chinese character takes two)."""
    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text)


def _ljust(text: str, width: int) -> str:
    return text + " " * max(0, width - _columns(text))


def _rjust(text: str, width: int) -> str:
    return " " * max(0, width - _columns(text)) + text


def _notes(res: SubmissionResult) -> list[str]:
    """The submission's notes, one line per distinct message (``attention: could not read x.ipynb`` and
    ``causal_mask: could not read x.ipynb`` become one line naming both topics)."""
    merged: dict[str, list[str]] = {}
    for note in res.notes:
        topic, sep, text = note.partition(": ")
        if sep and topic in res.topics or sep and topic.isidentifier():
            merged.setdefault(text, []).append(topic)
        else:
            merged.setdefault(note, [])
    return [f"{', '.join(ts)}: {text}" if ts else text for text, ts in merged.items()]


def topic_message(res: SubmissionResult, topic: str) -> str | None:
    """One message for a topic whose checks all failed for one reason (a syntax error, no module, an
    unreadable notebook), instead of the same text under every check; None otherwise."""
    checks = res.topics[topic].checks
    texts = {c.feedback for c in checks if c.status != "passed"}
    if len(checks) < 2 or len(texts) != 1 or any(c.status == "passed" for c in checks):
        return None
    unreadable = [n.partition(": ")[2] for n in res.notes if n.startswith(f"{topic}: could not read")]
    return unreadable[0] if unreadable else texts.pop()


def table(results: dict[str, SubmissionResult], *, details: bool = True) -> str:
    """The score table of each submission: first one line per problem that sinks a whole topic (or the
    whole submission), then the scores, then the feedback of the other failing checks."""
    lines = []
    for res in results.values():
        lines.append(_t(f"Submission: {res.name}"))
        whole = {t: topic_message(res, t) for t in res.topics}
        if res.topics and all(m and m.startswith("no module") for m in whole.values()) and len(res.topics) > 1:
            lines.append("  " + _t("found no <topic>.py module and no course notebook in this submission: "
                                   "every topic scores 0"))
            whole = {t: "" for t in res.topics}
        notes = _notes(res)
        for note in notes:
            lines.append("  " + _t(f"note: {_t(note)}"))
        for topic, message in whole.items():
            if message and not any(n.endswith(message) for n in notes):
                t = res.topics[topic]
                lines.append(f"  x {topic}: " + _t(f"all {len(t.checks)} checks failed ({_fmt(t.max_points)} pt): ")
                             + _t(message).replace("\n", "\n      "))
        width = max([len(t) for t in res.topics] + [5])
        lines.append(f"  {_ljust(_t('topic'), width)}  {_rjust(_t('score'), 11)}  {_t('checks')}")
        for topic, t in res.topics.items():
            passed = sum(c.status == "passed" for c in t.checks)
            lines.append(f"  {topic.ljust(width)}  {_fmt(t.points):>5} / {_fmt(t.max_points):<3}  "
                         + _t(f"{passed}/{len(t.checks)} passed"))
        lines.append(f"  {_ljust(_t('TOTAL'), width)}  {_fmt(res.points):>5} / {_fmt(res.max_points):<3}")
        if details:
            failed = [c for topic, t in res.topics.items() if whole[topic] is None
                      for c in t.checks if c.status != "passed"]
            if failed:
                lines.append("")
                lines.append("  " + _t("Checks that did not pass:"))
            for c in failed:
                lines.append(f"  x {c.topic}/{check_title(c.topic, c.check)} "
                             + _t(f"[{_fmt(c.max_points)} pt, task {c.task}]"))
                for fl in c.feedback.splitlines():
                    lines.append(f"      {fl}")
        lines.append("")
    return "\n".join(lines)


def gradescope(result: SubmissionResult) -> dict:
    """Gradescope's ``results.json``: score, and one entry per check."""
    tests = []
    for topic, t in result.topics.items():
        for c in t.checks:
            output = c.feedback
            if c.printed:
                output += "\n\n" + _t("Your code printed:") + "\n" + c.printed
            tests.append({"name": f"{topic}: {check_title(topic, c.check)}", "number": c.task,
                          "score": c.points,
                          "max_score": c.max_points, "status": "passed" if c.status == "passed" else "failed",
                          "output": output, "visibility": c.visibility})
    out = {"score": result.points, "max_score": result.max_points, "tests": tests, "visibility": "visible",
           "stdout_visibility": "hidden"}
    if result.notes:
        out["output"] = "\n".join(_t(n) for n in result.notes)
    return out


def to_json(results: dict[str, SubmissionResult]) -> str:
    """Gradescope ``results.json`` text: one submission's object, or ``{name: object}`` for several."""
    if len(results) == 1:
        return json.dumps(gradescope(next(iter(results.values()))), indent=2)
    return json.dumps({name: gradescope(r) for name, r in results.items()}, indent=2)


def junit(results: dict[str, SubmissionResult]) -> str:
    """A JUnit XML report: one ``testsuite`` per submission and topic, one ``testcase`` per check (points
    as a property; ``failure``/``error`` elements carry the feedback)."""
    root = ET.Element("testsuites")
    for res in results.values():
        for topic, t in res.topics.items():
            suite = ET.SubElement(root, "testsuite", name=f"{res.name}.{topic}", tests=str(len(t.checks)),
                                  failures=str(sum(c.status == "failed" for c in t.checks)),
                                  errors=str(sum(c.status == "error" for c in t.checks)))
            for c in t.checks:
                case = ET.SubElement(suite, "testcase", classname=f"{res.name}.{topic}", name=c.check,
                                     time=str(c.seconds))
                ET.SubElement(case, "properties").append(
                    ET.Element("property", name="points", value=f"{c.points}/{c.max_points}"))
                if c.status == "failed":
                    ET.SubElement(case, "failure", message=c.feedback.splitlines()[0] if c.feedback else "")\
                        .text = c.feedback
                elif c.status == "error":
                    ET.SubElement(case, "error", message=_t("internal grader error")).text = c.feedback
    return ET.tostring(root, encoding="unicode")
