"""Feedback in the student's language: ``LLMLAB_LANG=zh`` (or ``llmlab grade --lang zh``) for Chinese.

The graders write English. The translation happens once, where results are built from the grading
records (:func:`translate_result`, called by the runner) and where the report writes its own words: each
feedback text is matched against the catalogue's English *templates* and refilled into the Chinese ones.

The catalogue is ``llmlab/i18n/zh/<topic>.json`` (``{"checks": {check: title}, "texts": {english:
chinese}}``) plus ``kit.json`` for the kit's own texts. A template is the English text with ``{}`` where
an f-string inserts a value (literal braces doubled); the Chinese template has the same placeholders,
in order, or numbered (``{0}``, ``{1}``) when Chinese word order differs. What fills a placeholder is
copied as it is (inputs, numbers, code), except that a filler that is itself a catalogued text (the
``what=`` of a check inside a kit message, a mistake) is translated too. Text that matches no template
stays English: a missing entry costs readability, never a wrong word. ``LLMLAB_LANG`` unset or ``en``
changes nothing, byte for byte.
"""
from __future__ import annotations

import argparse
import json
import os
import re
from functools import lru_cache
from pathlib import Path

from ..grading.protocol import LIKELY_MISTAKE as LIKELY  # the lines the translation treats apart
from ..grading.protocol import SMALLEST_INPUT as SMALLEST

LANGS = ("en", "zh")
CATALOGUE = Path(__file__).with_name("zh")
_PLACEHOLDER = re.compile(r"\{\{|\}\}|\{\d*\}")


def current() -> str:
    """The feedback language now: ``LLMLAB_LANG`` (``zh`` or ``en``), English by default."""
    lang = os.environ.get("LLMLAB_LANG", "").strip().lower().split("_")[0].split("-")[0]
    return lang if lang in LANGS else "en"


class LangAction(argparse.Action):
    """``--lang zh``: sets ``LLMLAB_LANG`` for this process and the grading processes it starts."""

    def __call__(self, parser, namespace, value, option_string=None):
        os.environ["LLMLAB_LANG"] = value
        setattr(namespace, self.dest, value)


def placeholders(template: str) -> list[str]:
    """The placeholders of ``template`` in order (``{}`` or ``{<digits>}``); escaped ``{{``/``}}`` left out."""
    return [p for p in _PLACEHOLDER.findall(template) if p not in ("{{", "}}")]


def _regex(template: str) -> re.Pattern:
    parts, pos = [], 0
    for m in _PLACEHOLDER.finditer(template):
        parts.append(re.escape(template[pos:m.start()]))
        parts.append({"{{": r"\{", "}}": r"\}"}.get(m.group(), "(.*?)"))
        pos = m.end()
    parts.append(re.escape(template[pos:]))
    return re.compile("".join(parts), re.DOTALL)


def _fill(template: str, values: list[str]) -> str:
    out, pos, n = [], 0, 0
    for m in _PLACEHOLDER.finditer(template):
        out.append(template[pos:m.start()])
        token = m.group()
        if token in ("{{", "}}"):
            out.append(token[0])
        else:
            out.append(values[int(token[1:-1])] if token != "{}" else values[n])
            n += 1
        pos = m.end()
    out.append(template[pos:])
    return "".join(out)


def read_catalogue(name: str) -> dict:
    """The translation catalogue ``llmlab/i18n/zh/<name>.json`` (``{"checks": ..., "texts": ...}``); empty
    when the file does not exist."""
    path = CATALOGUE / f"{name}.json"
    return json.loads(path.read_text(encoding="utf-8")) if path.exists() else {"checks": {}, "texts": {}}


@lru_cache(maxsize=None)
def _compiled(topic: str) -> tuple:
    """(regex, chinese) of the topic's and the kit's templates, the most specific (longest literal) first."""
    texts = dict(_cached("kit")["texts"])
    if topic:
        texts.update(_cached(topic)["texts"])
    entries = [(en, zh) for en, zh in texts.items() if zh is not None]
    entries.sort(key=lambda e: -len(_PLACEHOLDER.sub("", e[0])))
    return tuple((_regex(en), zh, _side_by_side(en)) for en, zh in entries)


def _side_by_side(template: str) -> list[int]:
    """Indexes i of placeholders followed by a space and placeholder i + 1 (``{} {}``)."""
    tokens = [m for m in _PLACEHOLDER.finditer(template) if m.group() not in ("{{", "}}")]
    return [i for i in range(len(tokens) - 1) if template[tokens[i].end():tokens[i + 1].start()] == " "]


def _match(text: str, topic: str, depth: int = 0) -> str | None:
    for candidate in (text, text[:1].lower() + text[1:]) if text[:1].isupper() else (text,):
        for regex, zh, pairs in _compiled(topic):
            m = regex.fullmatch(candidate)
            if m:
                groups = list(m.groups())
                for i in pairs:  # the lazy match splits "{} {}" at the first space: find the split that reads
                    joined = groups[i] + " " + groups[i + 1]
                    for space in re.finditer(" ", joined):
                        left, right = joined[:space.start()], joined[space.end():]
                        if _match(right, topic, depth + 1) and (_match(left, topic, depth + 1)
                                                                or not re.search(r"[A-Za-z]{2,}", left)):
                            groups[i], groups[i + 1] = left, right
                            break
                values = [_part(g, topic, depth + 1) for g in groups]
                return _fill(zh, values)
    return None


def _part(value: str, topic: str, depth: int) -> str:
    """A placeholder's filler: translated when it is itself a catalogued text, else as it is."""
    if depth > 2 or len(value) > 2000 or not re.search(r"[A-Za-z]{2,}", value):
        return value
    found = _match(value, topic, depth)
    aside = re.fullmatch(r"(.+?) \((.+)\)", value, re.DOTALL)
    if found is None and aside:  # "what (how it was computed)": each half may be a text of its own
        head, note = (_match(part, topic, depth) for part in aside.groups())
        if head or note:
            return f"{head or aside.group(1)}（{note or aside.group(2)}）"
    if found is None:
        for sep in ("; ", ", "):  # a joined list of texts ("missing ...; wrong shapes ...")
            pieces = value.split(sep)
            if len(pieces) > 1:
                done = [_match(p, topic, depth) for p in pieces]
                if any(done):
                    return sep.join(d or p for d, p in zip(done, pieces))
    return found or value


def _mistakes(text: str, topic: str) -> str:
    """``a / b``: the mistakes named by a diagnosis (a mistake's own text may contain `` / ``)."""
    pieces, out, i = text.split(" / "), [], 0
    while i < len(pieces):
        for j in range(len(pieces), i, -1):
            found = _match(" / ".join(pieces[i:j]), topic)
            if found is not None:
                out.append(found)
                i = j
                break
        else:
            out.append(pieces[i])
            i += 1
    return " / ".join(out)


def _block(text: str, topic: str) -> str:
    found = _match(text, topic)
    if found is not None:
        return found
    return "\n".join(_match(line, topic) or line for line in text.split("\n"))


def translate(text: str, topic: str = "", lang: str | None = None) -> str:
    """``text`` (a feedback text of ``topic``, or a kit text) in ``lang`` (default: :func:`current`)."""
    if (lang or current()) != "zh" or not text:
        return text
    kit = _cached("kit")["texts"]
    out, block, in_inputs = [], [], False

    def flush():
        if block:
            out.append(_block("\n".join(block), topic))
            block.clear()
    for line in text.split("\n"):
        if line.startswith(LIKELY):
            flush()
            out.append(kit[LIKELY] + _mistakes(line[len(LIKELY):], topic))
            in_inputs = False
        elif line == SMALLEST:
            flush()
            out.append(kit[SMALLEST])
            in_inputs = True
        elif in_inputs and line.startswith("  "):
            out.append(line)  # an input: shown as it is
        else:
            in_inputs = False
            block.append(line)
    flush()
    return "\n".join(out)


def check_title(topic: str, check: str, lang: str | None = None) -> str:
    """How the report names a check: its name, and in Chinese its title too."""
    if (lang or current()) != "zh":
        return check
    title = _cached(topic)["checks"].get(check)
    return f"{check}（{title}）" if title else check


@lru_cache(maxsize=None)
def _cached(name: str) -> dict:
    return read_catalogue(name)


def translate_result(result):
    """A :class:`~llmlab.grading.runner.SubmissionResult` with every check's feedback in the current
    language (records are written in English; this is where they become the student's text)."""
    if current() == "en":
        return result
    from dataclasses import replace

    for topic in result.topics.values():  # translated copies: the result's ``records`` stay English
        topic.checks = [replace(check, feedback=translate(check.feedback, check.topic)) for check in topic.checks]
    return result
