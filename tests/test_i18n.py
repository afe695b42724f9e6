"""Feedback in Chinese: the catalogue is complete and current, keeps what must not be translated, and
``llmlab grade --lang zh`` gives the same grade in Chinese while English stays byte for byte as it was."""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys

import pytest

from llmlab import i18n, topics
from llmlab.grading import report
from llmlab.grading.runner import SubmissionResult, TopicResult
from llmlab.grading.variants import load_variants
from llmlab.i18n.extract import audit, stale_kit_entries
from llmlab.paths import KIT_ROOT

TOPICS = topics.topic_names()
CATALOGUES = ["kit", *TOPICS]
CJK = re.compile(r"[\u4e00-\u9fff]")


@pytest.mark.parametrize("topic", TOPICS)
def test_every_feedback_text_and_check_of_the_topic_has_a_chinese_version(topic):
    found = audit(topic, i18n.read_catalogue(topic))
    assert not found["missing texts"], f"untranslated (run scripts/i18n_extract.py): {found['missing texts']}"
    assert not found["missing checks"], f"checks without a Chinese title: {found['missing checks']}"


@pytest.mark.parametrize("topic", TOPICS)
def test_no_entry_is_stale(topic):
    found = audit(topic, i18n.read_catalogue(topic))
    assert not found["stale texts"], f"English templates that no longer exist: {found['stale texts']}"
    assert not found["stale checks"], f"titles of checks that no longer exist: {found['stale checks']}"


def test_no_kit_entry_is_stale():
    assert not stale_kit_entries(i18n.read_catalogue("kit")["texts"])


@pytest.mark.parametrize("topic", TOPICS)
def test_every_variant_mistake_reads_in_chinese(topic):
    """The diagnoser's words, as the student reads them: each mistake translates as a whole."""
    for variant in load_variants(topic):
        zh = i18n.translate(variant.mistake, topic, lang="zh")
        assert CJK.search(zh) and zh != variant.mistake, f"{topic}:{variant.name} stays English: {variant.mistake}"


_NUMBER = re.compile(r"(?<![\w.])[-+]?\d+(?:[.,]\d+)*(?:e[-+]?\d+)?")
_CODE = re.compile(r"`[^`]+`")
_IDENT = re.compile(r"\b(?!e\.g\b|i\.e\b)(?:\w*_\w*|\w+(?:\.\w+)+)\b")


def _kept(pattern: re.Pattern, text: str) -> list[str]:
    return sorted(pattern.findall(i18n._PLACEHOLDER.sub(" ", text)))


@pytest.mark.parametrize("name", CATALOGUES)
def test_translations_keep_placeholders_numbers_and_code(name):
    problems = []
    for en, zh in i18n.read_catalogue(name)["texts"].items():
        ph_en, ph_zh = i18n.placeholders(en), i18n.placeholders(zh)
        numbered = [p for p in ph_zh if p != "{}"]
        if len(ph_en) != len(ph_zh) or (numbered and (len(numbered) != len(ph_zh) or sorted(
                int(p[1:-1]) for p in numbered) != list(range(len(ph_en))))):
            problems.append(f"placeholders {ph_en} -> {ph_zh}: {en}")
        for what, pattern in (("numbers", _NUMBER), ("code", _CODE), ("identifiers", _IDENT)):
            a, b = _kept(pattern, en), _kept(pattern, zh)
            if (a != b) if what == "numbers" else any(a.count(x) > b.count(x) for x in a):
                problems.append(f"{what} {a} -> {b}: {en}")
        wordy = re.search(r"[a-z]{3,} [a-z]{3,}", i18n._PLACEHOLDER.sub("", en))
        if wordy and not CJK.search(zh) and zh not in en:
            problems.append(f"not translated: {en}")
    assert not problems, "\n".join(problems)


def test_a_template_is_refilled_with_the_same_values_and_a_nested_text_is_translated_too():
    text = ("attention weights has shape (2, 3), expected (2, 4)\n"
            "Likely mistake: scores are divided by E instead of sqrt(E) / some unknown mistake\n"
            "Smallest failing input found:\n  q = tensor of shape (1, 2), dtype float32: [[0.5, 1.0]]")
    zh = i18n.translate(text, "attention", lang="zh")
    lines = zh.split("\n")
    assert lines[0] == "注意力权重 的形状是 (2, 3)，应为 (2, 4)"
    assert lines[1] == "可能的错误：分数除以了 E，而不是 sqrt(E) / some unknown mistake"
    assert lines[2:] == ["找到的最小失败输入：", "  q = tensor of shape (1, 2), dtype float32: [[0.5, 1.0]]"]


def test_numbered_placeholders_reorder_the_values():
    en = "label 7 for ('a', 'b'): labels are 0 (IsNext) or 1 (NotNext)"
    assert i18n.translate(en, "bert_masking", lang="zh").startswith("('a', 'b') 的标签是 7")


def test_english_and_an_unknown_language_change_nothing(monkeypatch):
    text = "attention weights has shape (2, 3), expected (2, 4)\nLikely mistake: the softmax is computed in float32"
    for value in (None, "en", "en_US.UTF-8", "fr"):
        if value is None:
            monkeypatch.delenv("LLMLAB_LANG", raising=False)
        else:
            monkeypatch.setenv("LLMLAB_LANG", value)
        assert i18n.current() == "en"
        assert i18n.translate(text, "attention") is text
        assert i18n.check_title("attention", "sdpa_custom_scale") == "sdpa_custom_scale"


def _result() -> SubmissionResult:
    checks = [
        {"submission": "s", "topic": "causal_mask", "check": "causal_edge_sizes_and_validation",
         "task": "causal_mask.causal_mask", "max_points": 1.0, "points": 0.0, "status": "failed",
         "feedback": "causal_mask(4, 3) (k_len < q_len) should raise ValueError, but returned tensor of shape "
                     "(4, 3), dtype bool\nLikely mistake: k_len < q_len (or a negative length) is accepted: it must "
                     "raise ValueError", "printed": "hello\n", "internal": "", "visibility": "visible", "seconds": 0.1},
        {"submission": "s", "topic": "causal_mask", "check": "padding_mask_marks_real_keys",
         "task": "causal_mask.padding_mask", "max_points": 2.0, "points": 2.0, "status": "passed", "feedback": "",
         "printed": "", "internal": "", "visibility": "visible", "seconds": 0.1},
    ]
    res = SubmissionResult("s", notes=["causal_mask: graded from the definitions in attention.ipynb"])
    res.topics["causal_mask"] = TopicResult("causal_mask", 2.0, 3.0, checks)
    return res


def _reports() -> list[str]:
    res = i18n.translate_result(_result())  # as the runner builds results from the grading records
    return [report.table({"s": res}), report.to_json({"s": res}), report.junit({"s": res})]


def test_english_reports_are_unchanged_by_the_language_machinery(monkeypatch):
    monkeypatch.delenv("LLMLAB_LANG", raising=False)
    unset = _reports()
    monkeypatch.setenv("LLMLAB_LANG", "en")
    assert _reports() == unset
    assert not any(CJK.search(r) for r in unset)
    assert "  x causal_mask/causal_edge_sizes_and_validation [1 pt, task causal_mask.causal_mask]" in unset[0]
    assert "Your code printed:" in unset[1]


def test_chinese_reports_translate_headers_titles_and_notes(monkeypatch):
    monkeypatch.setenv("LLMLAB_LANG", "zh")
    table, as_json, junit = _reports()
    assert "causal_edge_sizes_and_validation（边界尺寸与参数检查） [1 分，任务 causal_mask.causal_mask]" in table
    assert "注意：causal_mask：按 attention.ipynb 中的定义评分" in table
    assert "未通过的检查：" in table and "总计" in table
    tests = json.loads(as_json)["tests"]
    assert tests[0]["name"] == "causal_mask: causal_edge_sizes_and_validation（边界尺寸与参数检查）"
    assert "你的代码输出了：\nhello" in tests[0]["output"]
    assert "<testcase classname=\"s.causal_mask\" name=\"causal_edge_sizes_and_validation\"" in junit


def _grade(folder, lang: str | None, fmt: str = "table") -> str:
    cmd = [sys.executable, "-m", "llmlab.cli", "grade", str(folder), "--topic", "causal_mask", "--format", fmt]
    if lang:
        cmd += ["--lang", lang]
    env = {k: v for k, v in os.environ.items() if k != "LLMLAB_LANG"}
    out = subprocess.run(cmd, cwd=KIT_ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-2000:]
    return out.stdout


def _numbers(text: str) -> list[str]:
    return sorted(_NUMBER.findall(text))


@pytest.mark.slow
def test_grading_a_buggy_variant_in_chinese_gives_the_same_grade_in_chinese_words(tmp_path):
    variant = load_variants("causal_mask")["top_left_alignment"]
    folder = variant.write(tmp_path / "bug")
    en = json.loads(_grade(folder, None, "json"))
    zh = json.loads(_grade(folder, "zh", "json"))
    assert (zh["score"], zh["max_score"]) == (en["score"], en["max_score"]) and en["score"] < en["max_score"]
    mistake_zh = i18n.translate(variant.mistake, "causal_mask", lang="zh")
    assert any(mistake_zh in t["output"] for t in zh["tests"]), "the Chinese feedback does not name the mistake"
    assert not any(variant.mistake in t["output"] for t in zh["tests"])
    for e, z in zip(en["tests"], zh["tests"]):
        assert (e["score"], e["status"]) == (z["score"], z["status"])
        inputs = [line for line in e["output"].split("\n") if line.startswith("  ")]
        assert inputs == [line for line in z["output"].split("\n") if line.startswith("  ")]
        assert _numbers(e["output"]) == _numbers(z["output"]), e["output"]
        assert not z["output"] or CJK.search(z["output"])
    table = _grade(folder, "zh")
    assert mistake_zh in table and "可能的错误：" in table
