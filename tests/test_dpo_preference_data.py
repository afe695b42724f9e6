"""The kit's own preference set (llmlab/preference_data.py) and its DPO batches."""
from __future__ import annotations

import pytest

from llmlab import preference_data as pd


def test_splits_are_reproducible_and_disjoint():
    train, test = pd.preference_pairs("train"), pd.preference_pairs("test")
    assert train == pd.preference_pairs("train") and test == pd.preference_pairs("test")
    assert len(train) == 2 * 54 and len(test) == 2 * 26
    assert not {p["prompt"] for p in train} & {p["prompt"] for p in test}
    assert {p["flaw"] for p in train} == {p["flaw"] for p in test} == {"rude", "rambling"}
    assert pd.preference_pairs("train", seed=1) != train  # the seed only reorders and re-draws phrasings
    with pytest.raises(ValueError):
        pd.preference_pairs("validation")
    with pytest.raises(ValueError):
        pd.preference_pairs("train", flaws=("sarcastic",))


def _template_of(text: str, templates: list[str]) -> int:
    for i, t in enumerate(templates):
        head, _, tail = t.partition("{answer}")
        if text.startswith(head) and text.endswith(tail):
            return i
    raise AssertionError(f"no template matches {text!r}")


def test_phrasings_do_not_leak_between_splits():
    for split, want_test in (("train", False), ("test", True)):
        for p in pd.preference_pairs(split):
            assert (_template_of(p["chosen"], pd.POLITE) % 3 == 2) == want_test
            bad = pd.RUDE if p["flaw"] == "rude" else pd.RAMBLING
            assert (_template_of(p["rejected"], bad) % 3 == 2) == want_test


def test_both_answers_carry_the_same_fact():
    answers = dict(pd.QUESTIONS)
    for p in pd.preference_pairs("train") + pd.preference_pairs("test"):
        assert answers[p["prompt"]] in p["chosen"] and answers[p["prompt"]] in p["rejected"]
        assert p["chosen"] != p["rejected"]


def test_rude_answers_are_shorter_than_polite_ones():
    """A length bias alone would prefer the rude answer: the preference must be learned."""
    pairs = [p for p in pd.preference_pairs("train") if p["flaw"] == "rude"]
    assert sum(len(p["rejected"]) < len(p["chosen"]) for p in pairs) >= 0.8 * len(pairs)


class _CharTokenizer:
    """A stand-in tokenizer: one id per character, a chat template with visible markers."""

    eos_token, eos_token_id, pad_token_id = "#", 35, 35

    def apply_chat_template(self, messages, tokenize, add_generation_prompt):
        assert not tokenize and add_generation_prompt
        return "U:" + messages[0]["content"] + "|A:"

    def __call__(self, text, add_special_tokens=False):
        return {"input_ids": [ord(c) % 32 if c != "#" else 35 for c in text]}


def test_build_batch_layout_and_labels():
    tok = _CharTokenizer()
    pairs = [{"prompt": "hi", "chosen": "ok", "rejected": "no way"}, {"prompt": "q?", "chosen": "a", "rejected": "bb"}]
    b = pd.build_batch(tok, pairs)
    assert set(b) == {"input_ids", "attention_mask", "labels"}
    assert b["input_ids"].shape == (4, len("U:hi|A:no way#"))
    prompt = tok(pd.chat_prompt(tok, "hi"))["input_ids"]
    for row, key, pair in ((0, "chosen", pairs[0]), (2, "rejected", pairs[0]), (3, "rejected", pairs[1])):
        completion = tok(pair[key] + "#")["input_ids"]
        n = len(tok(pd.chat_prompt(tok, pair["prompt"]))["input_ids"])
        length = n + len(completion)
        assert b["attention_mask"][row].tolist() == [1] * length + [0] * (b["input_ids"].shape[1] - length)
        assert b["labels"][row, :n].eq(-100).all() and b["labels"][row, length:].eq(-100).all()
        assert b["labels"][row, n:length].tolist() == completion  # the end-of-turn token is labelled
    assert len(prompt) == 7
    padded = b["input_ids"][1, b["attention_mask"][1] == 0]
    assert padded.eq(tok.pad_token_id).all()
    short = pd.build_batch(tok, pairs, max_length=5)
    assert short["input_ids"].shape[1] == 5 and short["labels"].eq(-100).all()


@pytest.mark.slow
def test_build_batch_with_smollm2_tokenizer():
    from transformers import AutoTokenizer

    from llmlab.models import smollm2_dir

    # scripts/install.sh installs SmolLM2: a missing model is a failure, never a skip
    tok = AutoTokenizer.from_pretrained(smollm2_dir())
    pair = pd.preference_pairs("test")[0]
    b = pd.build_batch(tok, [pair])
    counted = b["labels"][0] != -100
    assert tok.decode(b["labels"][0][counted]) == pair["chosen"] + "<|im_end|>"
    text = tok.decode(b["input_ids"][0][b["attention_mask"][0].bool()])
    assert text == pd.chat_prompt(tok, pair["prompt"]) + pair["chosen"] + "<|im_end|>"
