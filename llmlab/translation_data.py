"""A small translation task the kit generates: numbers written in English words -> digits.

``"three hundred forty-two thousand six"`` -> ``"342006"``. Like a real translation task, the source
and target languages have different vocabularies and orders (``"seventeen"`` becomes two tokens, and
the words for a zero digit are simply absent), and the output length differs from the input's. Train
and held-out numbers are disjoint: the held-out accuracy measures translating numbers never seen.
"""
from __future__ import annotations

import random

import torch

ONES = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", "eleven", "twelve",
        "thirteen", "fourteen", "fifteen", "sixteen", "seventeen", "eighteen", "nineteen"]
TENS = ["", "", "twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety"]
SPECIALS = ["<pad>", "<bos>", "<eos>"]  # ids 0, 1, 2 in both vocabularies
PAD, BOS, EOS = 0, 1, 2
MAX_VALUE = 999_999


def _below_thousand(n: int) -> list[str]:
    words = []
    if n >= 100:
        words += [ONES[n // 100], "hundred"]
        n %= 100
    if n >= 20:
        words.append(TENS[n // 10] + (f"-{ONES[n % 10]}" if n % 10 else ""))
    elif n > 0:
        words.append(ONES[n])
    return words


def number_to_words(n: int) -> str:
    """English words for ``0 <= n <= 999_999`` (American style, hyphenated tens: ``forty-two``)."""
    if not 0 <= n <= MAX_VALUE:
        raise ValueError(f"n must be in [0, {MAX_VALUE}], got {n}")
    if n == 0:
        return "zero"
    words = []
    if n >= 1000:
        words += _below_thousand(n // 1000) + ["thousand"]
    return " ".join(words + _below_thousand(n % 1000))


def split_numbers(n_train: int, n_test: int, *, seed: int = 0) -> tuple[list[int], list[int]]:
    """Disjoint random numbers for training and held-out testing (log-uniform sizes: short and long ones)."""
    rng = random.Random(seed)
    seen: set[int] = set()
    out = []
    while len(out) < n_train + n_test:
        digits = rng.randint(1, 6)
        n = rng.randint(10 ** (digits - 1) if digits > 1 else 0, 10 ** digits - 1)
        if n not in seen:
            seen.add(n)
            out.append(n)
    return out[:n_train], out[n_train:]


def source_tokens(n: int) -> list[str]:
    """The source sentence as tokens: words, with ``forty-two`` split into ``forty``, ``-``, ``two``."""
    return number_to_words(n).replace("-", " - ").split()


def target_tokens(n: int) -> list[str]:
    """The target sentence as tokens: the digits of ``n`` (``42`` -> ``["4", "2"]``)."""
    return list(str(n))


def vocabularies() -> tuple[list[str], list[str]]:
    """(source tokens, target tokens), specials first."""
    src = SPECIALS + ONES + TENS[2:] + ["hundred", "thousand", "-"]
    return src, SPECIALS + list("0123456789")


def batch(numbers: list[int], *, max_len: int = 16) -> dict:
    """Padded tensors for a list of numbers: ``src_ids``/``src_mask`` (words) and ``tgt_in`` (BOS + digits),
    ``tgt_out`` (digits + EOS), ``tgt_mask``; right padding with ``PAD``."""
    src_vocab, tgt_vocab = vocabularies()
    s_index, t_index = {t: i for i, t in enumerate(src_vocab)}, {t: i for i, t in enumerate(tgt_vocab)}
    srcs = [[s_index[t] for t in source_tokens(n)] for n in numbers]
    tgts = [[t_index[t] for t in target_tokens(n)] for n in numbers]
    S, T = max(map(len, srcs)), max(map(len, tgts)) + 1
    if S > max_len or T > max_len:
        raise ValueError(f"a sequence is longer than max_len={max_len}")

    def pad(rows, length):
        return torch.tensor([r + [PAD] * (length - len(r)) for r in rows], dtype=torch.long)

    src_ids = pad(srcs, S)
    tgt_in, tgt_out = pad([[BOS] + t for t in tgts], T), pad([t + [EOS] for t in tgts], T)
    return dict(src_ids=src_ids, src_mask=(src_ids != PAD).long(), tgt_in=tgt_in, tgt_out=tgt_out,
                tgt_mask=(tgt_in != PAD).long())


def digits_of(ids: list[int]) -> str:
    """Target ids (without BOS/EOS) back to a string of digits (specials dropped)."""
    tgt_vocab = vocabularies()[1]
    return "".join(tgt_vocab[i] for i in ids if i >= len(SPECIALS))


# ---------------------------------------------------------------------------------------------
# The same task for a decoder-only model: one sequence "source <sep> target <eos>"
# ---------------------------------------------------------------------------------------------
def joint_vocabulary() -> list[str]:
    """Source words, then ``<sep>``, then the digits: one vocabulary for a decoder-only model."""
    src, tgt = vocabularies()
    return src + ["<sep>"] + tgt[len(SPECIALS):]


def joint_batch(numbers: list[int], *, with_target: bool = True) -> dict:
    """``input_ids``/``attention_mask`` of ``words <sep> digits <eos>`` (right-padded) with ``target_mask``
    marking the positions whose *next* token is a target token (a digit or EOS); or, with
    ``with_target=False``, the left-padded prompts ``words <sep>`` for generation."""
    vocab = joint_vocabulary()
    index = {t: i for i, t in enumerate(vocab)}
    rows, n_prompt = [], []
    for n in numbers:
        prompt = [index[t] for t in source_tokens(n)] + [index["<sep>"]]
        n_prompt.append(len(prompt))
        rows.append(prompt + ([index[d] for d in target_tokens(n)] + [EOS] if with_target else []))
    L = max(map(len, rows))
    if with_target:
        ids = torch.tensor([r + [PAD] * (L - len(r)) for r in rows])
        mask = (torch.arange(L)[None] < torch.tensor([len(r) for r in rows])[:, None]).long()
        target = (torch.arange(L)[None] >= torch.tensor(n_prompt)[:, None] - 1) & (mask == 1)
        target[:, -1] = False
        target &= torch.cat([mask[:, 1:], torch.zeros_like(mask[:, :1])], dim=1) == 1
        return dict(input_ids=ids, attention_mask=mask, target_mask=target)
    ids = torch.tensor([[PAD] * (L - len(r)) + r for r in rows])
    return dict(input_ids=ids, attention_mask=(torch.arange(L)[None] >= L - torch.tensor(
        [len(r) for r in rows])[:, None]).long())


def joint_digits(ids: list[int]) -> str:
    """Generated joint-vocabulary ids (after ``<sep>``) back to digits, up to the first EOS."""
    vocab = joint_vocabulary()
    out = []
    for i in ids:
        if i == EOS:
            break
        out.append(vocab[i] if vocab[i].isdigit() else "?")
    return "".join(out)
