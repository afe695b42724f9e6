"""Buggy variants are patches of the reference: each applies, changes the code and names its mistake.

The grading itself (every variant loses points, its feedback names the mistake) is tested per topic in
test_graders.py; here only what can be checked without grading: the patches, and the size and shape of
graders/variants/.
"""
from __future__ import annotations

import ast

import pytest

from llmlab import topics
from llmlab.grading.variants import PatchError, apply_edit, apply_edits, load_variants
from llmlab.paths import GRADERS, SOLUTIONS

VARIANTS = GRADERS / "variants"
# The topics whose variants were copies of the reference before they became patches (issue 17); their
# files together must stay small. Topics added later are counted by their own reviews.
CONVERTED = ("attention", "causal_mask", "bert_masking", "sampling", "chat_format", "dpo", "refusal_loss",
             "code_attack", "decoder_lm", "pretraining", "imdb_bert", "imdb_local_llm", "imdb_remote_llm")


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


def test_variants_need_no_undefined_names_and_stay_small():
    files = sorted(VARIANTS.glob("*.py"))
    assert [f for f in files if "noqa: F821" in f.read_text()] == []
    lines = sum(len((VARIANTS / f"{t}.py").read_text().splitlines()) for t in CONVERTED)
    assert lines < 1500, f"graders/variants/ of the {len(CONVERTED)} converted topics has {lines} lines"


def test_a_whole_replacement_says_why_it_is_not_a_patch():
    """``@bugs.bug`` is for a different algorithm only: a comment just above it must say why."""
    unexplained = []
    for path in sorted(VARIANTS.glob("*.py")):
        lines = path.read_text().splitlines()
        for n, line in enumerate(lines):
            if line.startswith("@bugs.bug(") and not (n and lines[n - 1].lstrip().startswith("#")):
                unexplained.append(f"{path.name}:{n + 1}")
    assert unexplained == []


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
