"""Buggy variants are patches of the reference: each applies, changes the code and names its mistake.

The grading itself (every variant loses points, its feedback names the mistake) is tested per topic in
test_graders.py; here only what can be checked without grading: the patches, and the size and shape of
graders/variants/.
"""
from __future__ import annotations

import ast

import pytest

from llmlab import topics
from llmlab.grading.variants import PatchError, apply_edit, apply_edits, load_variants, parse_variants
from llmlab.paths import GRADERS, SOLUTIONS

VARIANTS = GRADERS / "variants"
@pytest.mark.parametrize("topic", topics.topic_names())
def test_every_variant_applies_changes_the_code_and_names_its_mistake(topic):
    reference = (SOLUTIONS / f"{topic}.py").read_text()
    problems = []
    for variant in load_variants(topic):
        try:
            source = variant.source()
            variant.module()  # the patched module runs (imports, definitions)
        except Exception as exc:  # noqa: BLE001 - every failure is reported by name
            problems.append(f"{variant.name}: {type(exc).__name__}: {exc}")
            continue
        if ast.dump(ast.parse(source)) == ast.dump(ast.parse(reference)):
            problems.append(f"{variant.name}: the patched code is the reference's")
        if not variant.mistake.strip():
            problems.append(f"{variant.name}: no mistake text")
    assert not problems, f"{topic}:\n" + "\n".join(problems)


def test_variants_are_small_patches_not_copies():
    """graders/variants/ stays small (issue 17: under 1,500 lines in all) and holds no copied code: an
    edit replaces at most a few lines, and a whole replacement (a different algorithm) says why."""
    files = sorted(VARIANTS.glob("*"))
    assert [f.name for f in files if f.suffix != ".diff"] == []
    lines = sum(len(f.read_text().splitlines()) for f in files)
    assert lines < 1500, f"graders/variants/ has {lines} lines"
    long_edits = [f"{t}:{v.name}" for t in topics.topic_names() for v in load_variants(t)
                  for _, old, new in v.edits if old is not None and len(old.splitlines()) > 10]
    assert long_edits == []
    unexplained = []
    for path in files:
        lines = path.read_text().splitlines()
        for n, line in enumerate(lines[:-1]):
            whole = line.startswith("== ") and lines[n + 1].startswith("+")
            if whole and not (n and lines[n - 1].startswith("#")):
                unexplained.append(f"{path.name}:{n + 1}")
    assert unexplained == []


def test_the_variant_format_reads_edits_and_refuses_what_it_cannot_read():
    bugs = parse_variants("""
# a comment
== off_by_one @ f: returns x + 2
- x + 1
+ x + 2
- if x < 0:
-     raise ValueError("x < 0")
@ f
- return
+ y = x
+ return y + 0 *
== other @ LIMIT: the limit is wrong
- 2,
+ 3,
@ f
- if x
+ if x >= 0 and x
""", "t")
    assert [v.name for v in bugs] == ["off_by_one", "other"]
    assert bugs["off_by_one"].mistake == "returns x + 2"
    assert bugs["off_by_one"].edits == [("f", "x + 1", "x + 2"), ("f", 'if x < 0:\n    raise ValueError("x < 0")', ""),
                                        ("f", "return", "y = x\nreturn y + 0 *")]
    assert bugs["other"].edits == [("LIMIT", "2,", "3,"), ("f", "if x", "if x >= 0 and x")]
    whole = parse_variants("== w @ f: whole\n+ def f(x):\n+     return x\n", "t")["w"]
    assert whole.edits == [("f", None, "def f(x):\n    return x")]
    assert "def f(x):\n    return x\n\nLIMIT" in apply_edits(SOURCE, "f", [whole.edits[0][1:]])
    for bad, why in [("- x\n", "expected"), ("== a @ f: m\n-x\n", "expected"), ("== a @ f: m\n", "no edit"),
                     ("== a @ f: m\n- x\n== a @ f: n\n- y\n", "twice"), ("== a @ f:\n- x\n", "expected")]:
        with pytest.raises(PatchError, match=why):
            parse_variants(bad, "t")


SOURCE = '''
def f(x):
    """Return x + 1 (``x + 1`` is quoted here, in the docstring)."""
    if x < 0:
        raise ValueError("x < 0")
    return x + 1

LIMIT = (
    1,
    2,
)
'''


def test_a_snippet_is_found_in_the_code_not_in_the_docstring():
    assert "return x + 2" in apply_edit(SOURCE, "f", "x + 1", "x + 2")


def test_a_snippet_that_is_missing_or_repeated_is_refused():
    with pytest.raises(PatchError, match="0 times"):
        apply_edit(SOURCE, "f", "x * 2", "x")
    with pytest.raises(PatchError, match="2 times"):
        apply_edit(SOURCE, "f", "x <", "x >")


def test_blocks_are_matched_whatever_their_indentation_and_reindented():
    with pytest.raises(PatchError, match="0 times"):
        apply_edit(SOURCE, "f", "if x < 0:\n    raise ValueError('never')", "")
    out = apply_edit(SOURCE, "f", """
        if x < 0:
            raise ValueError("x < 0")
    """, "x = abs(x)")
    assert "    x = abs(x)\n    return x + 1" in out
    out = apply_edit(SOURCE, "f", "return x + 1", "y = x + 1\nreturn y")
    assert "    y = x + 1\n    return y" in out
    out = apply_edit(SOURCE, "f", 'raise ValueError("x < 0")', "")  # a deleted line leaves no blank line
    assert "if x < 0:\n    return x + 1" in out


def test_edits_of_one_function_may_pass_through_invalid_code_and_constants_can_be_patched():
    # the first edit leaves an empty `if` block, which the second one replaces
    out = apply_edits(SOURCE, "f", [('raise ValueError("x < 0")', ""), ("if x < 0:", "x = abs(x)")])
    assert "    x = abs(x)\n" in out and "if x < 0" not in out
    assert "LIMIT = (\n    1,\n    3," in apply_edit(SOURCE, "LIMIT", "2,", "3,")
