"""The reference ``imdb_remote_llm`` against its own spec: the docstring's examples, and the rule stated
there, re-implemented independently here, on many answers.

The graders compare students with the reference, so the reference must be exactly what the docstring
says. The independent reading below follows the numbered rule of ``parse_label``'s docstring word by
word (a different algorithm: a state machine over characters, no regular expressions).
"""
from __future__ import annotations

import inspect
import re

from hypothesis import given, settings
from hypothesis import strategies as st

from solutions import imdb_remote_llm as ref

BREAK_CHARS = set(".,;:!?\n\r")


def by_the_rule(text: str):
    text = text.lower().replace("\u2019", "'")
    clauses, words, word = [[]], None, ""

    def flush():
        nonlocal word
        if word:
            if word == "but":  # rule 4: the word "but" ends a clause
                clauses.append([])
            else:
                clauses[-1].append(word)
        word = ""

    for i, ch in enumerate(text):
        if "a" <= ch <= "z":
            word += ch
        elif ch == "'" and word and i + 1 < len(text) and "a" <= text[i + 1] <= "z":
            word += ch  # rule 2: an apostrophe between letters stays inside the word
        else:
            flush()
            if ch in BREAK_CHARS:
                clauses.append([])
    flush()
    named = set()
    for words in clauses:
        for i, w in enumerate(words):
            if w in ("positive", "negative"):
                label = int(w == "positive")
                before = words[max(0, i - 3):i]
                if any(b in ref.NEGATORS or b.endswith("n't") for b in before):
                    label = 1 - label
                named.add(label)
    return named.pop() if len(named) == 1 else None


def docstring_examples():
    doc = inspect.getdoc(ref.parse_label)
    block = doc[doc.index("Examples:"):doc.index("Raises:")]
    cases = []
    for group in re.finditer(r"((?:``\".*?\"``,?\s*)+)->\s*(1|0|None)", block, re.S):
        for text in re.findall(r"``\"(.*?)\"``", group.group(1), re.S):
            cases.append((text.replace("\\u2019", "\u2019"), None if group.group(2) == "None" else int(group.group(2))))
    return cases


def test_the_docstring_examples_hold():
    cases = docstring_examples()
    assert len(cases) >= 12
    for text, label in cases:
        assert ref.parse_label(text) == label, text
        assert by_the_rule(text) == label, text


WORDS = ["positive", "negative", "Positive", "NEGATIVE", "not", "no", "never", "isn't", "isn\u2019t", "but",
         "neither", "nor", "non", "cannot", "really", "at", "all", "the", "review", "is", "positively", "it's"]
SEPARATORS = [" ", " ", " ", ", ", ". ", "; ", "\n", "-", "**", " (", ") ", "'", "! ", "? ", ": "]


@settings(max_examples=400, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(WORDS), st.sampled_from(SEPARATORS)), max_size=9))
def test_the_reference_follows_the_stated_rule(parts):
    text = "".join(w + s for w, s in parts)
    assert ref.parse_label(text) == by_the_rule(text), text


def test_make_request_sends_the_review_whole():
    review = "A film. With 'quotes', newlines\nand émojis 🎬."
    request = ref.make_request("m", review)
    assert request["model"] == "m" and request["temperature"] == 0 and request["max_tokens"] == ref.MAX_TOKENS
    assert request["messages"][0] == {"role": "system", "content": ref.SYSTEM_PROMPT}
    assert request["messages"][-1]["role"] == "user" and review in request["messages"][-1]["content"]
