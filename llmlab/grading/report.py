"""Reports: a table for people, Gradescope's results.json, JUnit XML for CI systems."""
from __future__ import annotations

import json
from xml.etree import ElementTree as ET

from .runner import SubmissionResult


def _fmt(x: float) -> str:
    return f"{x:g}"


def table(results: dict[str, SubmissionResult], *, details: bool = True) -> str:
    lines = []
    for res in results.values():
        lines.append(f"Submission: {res.name}")
        for note in res.notes:
            lines.append(f"  note: {note}")
        width = max([len(t) for t in res.topics] + [5])
        lines.append(f"  {'topic'.ljust(width)}  {'score':>11}  checks")
        for topic, t in res.topics.items():
            passed = sum(c["status"] == "passed" for c in t.checks)
            lines.append(f"  {topic.ljust(width)}  {_fmt(t.points):>5} / {_fmt(t.max_points):<3}  "
                         f"{passed}/{len(t.checks)} passed")
        lines.append(f"  {'TOTAL'.ljust(width)}  {_fmt(res.points):>5} / {_fmt(res.max_points):<3}")
        if details:
            failed = [c for t in res.topics.values() for c in t.checks if c["status"] != "passed"]
            if failed:
                lines.append("")
                lines.append("  Checks that did not pass:")
            for c in failed:
                lines.append(f"  x {c['topic']}/{c['check']} [{_fmt(c['max_points'])} pt, task {c['task']}]")
                for fl in c["feedback"].splitlines():
                    lines.append(f"      {fl}")
        lines.append("")
    return "\n".join(lines)


def gradescope(result: SubmissionResult) -> dict:
    """Gradescope's ``results.json``: score, and one entry per check."""
    tests = []
    for topic, t in result.topics.items():
        for c in t.checks:
            output = c["feedback"]
            if c.get("printed"):
                output += "\n\nYour code printed:\n" + c["printed"]
            tests.append({"name": f"{topic}: {c['check']}", "number": c["task"], "score": c["points"],
                          "max_score": c["max_points"], "status": "passed" if c["status"] == "passed" else "failed",
                          "output": output, "visibility": c.get("visibility", "visible")})
    out = {"score": result.points, "max_score": result.max_points, "tests": tests, "visibility": "visible",
           "stdout_visibility": "hidden"}
    if result.notes:
        out["output"] = "\n".join(result.notes)
    return out


def to_json(results: dict[str, SubmissionResult]) -> str:
    if len(results) == 1:
        return json.dumps(gradescope(next(iter(results.values()))), indent=2)
    return json.dumps({name: gradescope(r) for name, r in results.items()}, indent=2)


def junit(results: dict[str, SubmissionResult]) -> str:
    root = ET.Element("testsuites")
    for res in results.values():
        for topic, t in res.topics.items():
            suite = ET.SubElement(root, "testsuite", name=f"{res.name}.{topic}", tests=str(len(t.checks)),
                                  failures=str(sum(c["status"] == "failed" for c in t.checks)),
                                  errors=str(sum(c["status"] == "error" for c in t.checks)))
            for c in t.checks:
                case = ET.SubElement(suite, "testcase", classname=f"{res.name}.{topic}", name=c["check"],
                                     time=str(c.get("seconds", 0)))
                ET.SubElement(case, "properties").append(
                    ET.Element("property", name="points", value=f"{c['points']}/{c['max_points']}"))
                if c["status"] == "failed":
                    ET.SubElement(case, "failure", message=c["feedback"].splitlines()[0] if c["feedback"] else "")\
                        .text = c["feedback"]
                elif c["status"] == "error":
                    ET.SubElement(case, "error", message="internal grader error").text = c["feedback"]
    return ET.tostring(root, encoding="unicode")
