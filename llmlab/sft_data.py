"""A small dialogue set for supervised fine-tuning that the kit writes itself (no download).

The behaviour it teaches is one SmolLM2-135M-Instruct does not have: a persona, *Pip*, that answers
every question in a fixed two-line format::

    ANSWER: The capital of France is Paris.
    — Pip, the llmlab assistant

The facts are the everyday questions of :mod:`llmlab.preference_data` (answered in one sentence);
a few identity questions ("Who are you?") teach the name. Questions and user phrasings are split
between ``train`` and ``test`` the same way as there (index ``i`` is a test item when
``i % 3 == 2``), so held-out adherence measures whether the format carries over to unseen
questions asked in unseen words. About a quarter of the training conversations have two exchanges,
so the labels of a multi-turn dialogue are exercised too.

* :func:`sft_conversations` returns conversations (lists of chat messages);
* :func:`follows_format` tells whether a reply has the format, :func:`says_pip` whether it names Pip.
"""
from __future__ import annotations

import random
import re

from .preference_data import QUESTIONS, _in_split

PREFIX = "ANSWER: "
SIGNATURE = "— Pip, the llmlab assistant"
IDENTITY_ANSWER = "I am Pip, the assistant of the llmlab course."

PHRASINGS = [
    "{q}",
    "Quick question: {q}",
    "Can you tell me this? {q}",
    "{q} Thanks!",
    "Hi! {q}",
    "I was wondering. {q}",
    "Help me out: {q}",
    "{q} Please keep it short.",
    "Hey, {q}",
]
IDENTITY = [
    "Who are you?",
    "What is your name?",
    "Who am I talking to?",
    "Introduce yourself.",
    "Tell me about yourself.",
    "What should I call you?",
]
_FORMAT = re.compile(r"ANSWER: [^\n]*\S[^\n]*\n" + re.escape(SIGNATURE))


def reply(answer: str) -> str:
    """The assistant's reply in the taught format."""
    return f"{PREFIX}{answer}\n{SIGNATURE}"


def sft_conversations(split: str = "train", *, seed: int = 0) -> list[list[dict]]:
    """The conversations of ``split`` in a shuffled, reproducible order.

    ``train``: 54 questions and 4 identity questions, each asked in the 6 training phrasings (about a
    quarter merged into two-exchange dialogues); ``test``: 26 questions and 2 identity questions, each in
    the 3 held-out phrasings, one exchange each (what the notebook measures). Each conversation is a list
    of ``{"role", "content"}`` messages, user first, assistant last, no system message.
    """
    if split not in ("train", "test"):
        raise ValueError("split must be 'train' or 'test'")
    rng = random.Random(f"sft-{split}-{seed}")
    phrasings = [p for i, p in enumerate(PHRASINGS) if _in_split(i, split)]
    pairs = [(q, a) for i, (q, a) in enumerate(QUESTIONS) if _in_split(i, split)]
    pairs += [(q, IDENTITY_ANSWER) for i, q in enumerate(IDENTITY) if _in_split(i, split)]
    exchanges = [[{"role": "user", "content": p.format(q=q)}, {"role": "assistant", "content": reply(a)}]
                 for q, a in pairs for p in phrasings]
    rng.shuffle(exchanges)
    if split == "test":
        return exchanges
    conversations, n = [], 0
    while n < len(exchanges):
        if n + 1 < len(exchanges) and rng.random() < 0.15:
            conversations.append(exchanges[n] + exchanges[n + 1])
            n += 2
        else:
            conversations.append(exchanges[n])
            n += 1
    return conversations


def follows_format(text: str) -> bool:
    """True when ``text`` (a reply, surrounding whitespace ignored) is exactly one ``ANSWER: ...`` line
    followed by the signature line."""
    return _FORMAT.fullmatch(text.strip()) is not None


def says_pip(text: str) -> bool:
    """True when the reply names Pip (what the identity questions teach)."""
    return "pip" in text.casefold()
