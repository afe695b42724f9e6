"""The kit's SFT dialogue set: disjoint splits, the taught format, and labels on the replies only."""
from __future__ import annotations

from llmlab.sft_data import SIGNATURE, follows_format, reply, says_pip, sft_conversations


def _questions(split):
    return {m["content"] for conv in sft_conversations(split) for m in conv if m["role"] == "user"}


def test_splits_share_no_question_and_every_reply_has_the_format():
    train, test = sft_conversations("train"), sft_conversations("test")
    assert len(train) >= 300 and len(test) >= 80
    assert not _questions("train") & _questions("test")
    for conv in train + test:
        assert [m["role"] for m in conv] in (["user", "assistant"], ["user", "assistant"] * 2)
        assert all(follows_format(m["content"]) for m in conv if m["role"] == "assistant")
    assert any(len(conv) == 4 for conv in train)  # some two-exchange dialogues
    assert sft_conversations("train") == train  # reproducible


def test_format_and_persona_checks():
    assert follows_format("  " + reply("Paris is the capital.") + "\n")
    assert not follows_format("ANSWER: Paris")  # no signature
    assert not follows_format("The capital is Paris.\n" + SIGNATURE)  # no ANSWER line
    assert not follows_format(reply("a\nb"))  # the answer is one line
    assert says_pip("I am PIP.") and not says_pip("I am SmolLM.")


def test_build_sft_example_labels_exactly_the_replies():
    from llmlab.grading.factories import smollm2_tokenizer
    from solutions.chat_format import build_sft_example

    tok = smollm2_tokenizer()
    conv = next(c for c in sft_conversations("train") if len(c) == 4)
    ex = build_sft_example(conv, tok)
    trained = tok.decode([t for t, label in zip(ex["input_ids"], ex["labels"]) if label != -100])
    assert trained == "".join(m["content"] + "<|im_end|>" for m in conv if m["role"] == "assistant")
