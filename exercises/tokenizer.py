# Exercise stub generated from the reference by `llmlab stubs` -- fill in every body that raises
# NotImplementedError; signatures and docstrings are the spec. Check yourself with `pytest exercises/`.
"""Byte-level BPE: the tokenizer of GPT-2, Llama 3 and SmolLM2 (notes §2.3).

A language model reads integers, not characters. A byte-level tokenizer first writes the text as
UTF-8 bytes, so every string (any script, emoji, stray control characters) is representable with
just 256 symbols and nothing is ever "unknown". Sequences of raw bytes are long, though, so
*byte-pair encoding* (BPE) learns shortcuts: it counts which two adjacent symbols occur together most
often in a training corpus, gives that pair a new id, rewrites the corpus with it, and repeats.
Each repetition is a *merge*; the ordered list of merges is the tokenizer. Ids 0-255 are the bytes
and merge ``i`` creates id ``256 + i``, so a vocabulary of ``V`` ids holds ``V - 256`` merges.

Before counting, the text is cut into *pieces* with a regular expression (GPT-2's pattern below):
runs of letters with their leading space (``" the"``), runs of digits, runs of punctuation, runs of
whitespace, and English contractions (``"'s"``). Pairs are counted inside pieces only, so no token
ever spans a word and the punctuation after it: ``"dog."`` and ``"dog!"`` share the token ``"dog"``.
Counting works on the *distinct* pieces, each weighted by how often it occurs, which is what makes
training on thousands of documents affordable.

Encoding a new text replays the training: for each piece, start from its bytes and repeatedly apply
the merge with the **lowest rank** (the earliest learnt) among the adjacent pairs present. Decoding
looks each id's bytes up and decodes them as UTF-8; a token sequence may end in the middle of a
multi-byte character, so invalid bytes become U+FFFD instead of raising.

With ~50,000 merges, English text costs about 1.3 tokens per word (a token is ~3/4 of a word);
``tokens_per_word`` measures it.
"""
from __future__ import annotations

import heapq
import json
from collections import Counter, defaultdict

import regex

# GPT-2's pre-tokenization pattern (also used by SmolLM2's tokenizer). ``\p{L}`` is any letter and
# ``\p{N}`` any digit in any script, which is why it needs the ``regex`` package rather than ``re``.
GPT2_PATTERN = r"""'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"""


def _merge_pair(ids, pair, new_id):
    """``ids`` with every occurrence of ``pair`` replaced by ``new_id``, scanning left to right (so in
    ``[a, a, a]`` the pair ``(a, a)`` is replaced once, at the start). Given: use it or not."""
    out, i, n = [], 0, len(ids)
    while i < n:
        if i + 1 < n and ids[i] == pair[0] and ids[i + 1] == pair[1]:
            out.append(new_id)
            i += 2
        else:
            out.append(ids[i])
            i += 1
    return out


def pretokenize(text, pattern=GPT2_PATTERN):
    """Split ``text`` into pieces with the regular expression ``pattern``.

    The pieces are ``regex.findall(pattern, text)`` (the ``regex`` package, not ``re``). With
    ``GPT2_PATTERN`` they cover the text: ``"".join(pretokenize(text)) == text`` for every string,
    whitespace included. Example: ``pretokenize("Hello world's 42!")`` is
    ``["Hello", " world", "'s", " 42", "!"]``.

    Args:
        text: the text (str).
        pattern: a regular expression (str).

    Returns:
        The pieces, a list of str, in order.

    Raises:
        TypeError: if ``text`` is not a str.
    """
    # YOUR CODE HERE
    raise NotImplementedError("task tokenizer.pretokenize: not implemented yet")


def train_bpe(texts, vocab_size, *, pattern=GPT2_PATTERN):
    """Learn byte-level BPE merges from ``texts``.

    Each text is pre-tokenized with ``pattern`` and each piece is written as its UTF-8 bytes (ids
    0-255). Pairs are counted inside pieces only, never across them. The count of a pair is the number
    of adjacent positions where it occurs (in ``[a, a, a]`` the pair ``(a, a)`` counts twice), summed
    over all pieces: a piece that occurs ``k`` times counts ``k`` times. Each step merges the most
    frequent pair; ties go to the smallest pair ``(a, b)`` (compare ``a``, then ``b``). Merge ``i``
    creates id ``256 + i``: every occurrence of the pair in every piece is replaced, left to right, by
    the new id, and the counts are updated. Training stops when the vocabulary (256 bytes plus the
    merges) reaches ``vocab_size``, or earlier when no piece has two symbols left.

    Args:
        texts: a list of str.
        vocab_size: the number of ids wanted, bytes included (an int >= 256; 256 means no merge).
        pattern: the pre-tokenization regular expression.

    Returns:
        The merges in the order learnt: a list of ``(a, b)`` tuples of ints.

    Raises:
        TypeError: if ``texts`` is not a list of str.
        ValueError: if ``vocab_size < 256``.
    """
    # YOUR CODE HERE
    raise NotImplementedError("task tokenizer.train_bpe: not implemented yet")



_RANKS = {}  # the reference's cache (the last merge list encode checked); yours may ignore it


def encode(text, merges, *, pattern=GPT2_PATTERN):
    """Token ids of ``text`` under ``merges`` (GPT-2's algorithm).

    ``text`` is pre-tokenized with ``pattern``; each piece is encoded on its own (no token spans two
    pieces) and the pieces' ids are concatenated. A piece starts as its UTF-8 bytes (ids 0-255). Then,
    repeatedly: among the adjacent pairs present, take the one with the lowest rank (merge ``i`` has
    rank ``i``), replace all its occurrences, left to right, by the id ``256 + i``; stop when no
    adjacent pair is a merge. The merges need not come from ``train_bpe``, but merge ``i`` may only use
    ids that exist before it (``0 <= a, b < 256 + i``), and no pair is listed twice.

    Args:
        text: the text (str).
        merges: a list of ``(a, b)`` pairs of ints (lists of two ints are accepted too).
        pattern: the pre-tokenization regular expression.

    Returns:
        The token ids, a list of ints.

    Raises:
        TypeError: if ``text`` is not a str, or ``merges`` is not a list of pairs of ints.
        ValueError: if merge ``i`` uses an id outside ``0 .. 255 + i``.
    """
    # YOUR CODE HERE
    raise NotImplementedError("task tokenizer.encode: not implemented yet")


def decode(ids, merges):
    """The text of the token ids ``ids`` under ``merges``.

    Id ``b < 256`` is the byte ``b``; id ``256 + i`` is the bytes of merge ``i``'s ``a`` followed by
    those of its ``b``. The bytes of all ids are joined first and then decoded as UTF-8 with
    ``errors="replace"``: a character whose bytes are split across tokens is rebuilt, and bytes that
    are not valid UTF-8 (e.g. ``decode([0xE4], merges)``) become ``"\ufffd"`` instead of raising.
    ``decode(encode(t, merges), merges) == t`` for every string ``t``.

    Args:
        ids: a list of ints.
        merges: a list of ``(a, b)`` pairs of ints, as for ``encode``.

    Returns:
        The text (str).

    Raises:
        ValueError: if an id is outside ``0 .. 255 + len(merges)``.
    """
    # YOUR CODE HERE
    raise NotImplementedError("task tokenizer.decode: not implemented yet")


def tokens_per_word(encode_fn, texts):
    """Average number of tokens per word over ``texts``.

    The total number of tokens (``len(encode_fn(t))`` summed over the texts, each text encoded on its
    own) divided by the total number of words (``len(t.split())`` summed over the texts: words are
    separated by any whitespace).

    Args:
        encode_fn: a function from str to a list of token ids.
        texts: a list of str.

    Returns:
        A float.

    Raises:
        ValueError: if the texts hold no word at all.
    """
    # YOUR CODE HERE
    raise NotImplementedError("task tokenizer.tokens_per_word: not implemented yet")


# ---------------------------------------------------------------------------------------------
# Given (not an exercise): reading a Hugging Face byte-level BPE into this module's numbering
# ---------------------------------------------------------------------------------------------
def gpt2_byte_chars():
    """GPT-2's printable stand-in for each byte (``{byte: char}``): ``tokenizer.json`` files write their
    tokens with these characters, e.g. a space is ``"Ġ"`` and a newline ``"Ċ"``."""
    printable = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1), *range(ord("®"), ord("ÿ") + 1)]
    chars, extra = {}, 0
    for b in range(256):
        if b in printable:
            chars[b] = chr(b)
        else:  # control characters, space, and a few others are moved to 256 + n
            chars[b] = chr(256 + extra)
            extra += 1
    return chars


def load_hf_byte_bpe(path):
    """``(merges, hf_ids)`` of a Hugging Face byte-level BPE ``tokenizer.json`` (GPT-2, SmolLM2, ...).

    ``merges`` is in this module's numbering (bytes 0-255, merge ``i`` is id ``256 + i``), ready for
    ``encode(text, merges)``; ``hf_ids[k]`` is the Hugging Face id of this module's id ``k`` (``None``
    for a byte that the tokenizer's vocabulary lacks). Only a plain ``ByteLevel`` pre-tokenizer with
    GPT-2's pattern and no prefix space is supported (a ``ValueError`` otherwise): with it,
    ``[hf_ids[k] for k in encode(text, merges)]`` is what the tokenizer gives for text without special
    tokens.
    """
    data = json.loads(open(path, encoding="utf-8").read())
    pre, model = data.get("pre_tokenizer") or {}, data["model"]
    if (model.get("type") != "BPE" or pre.get("type") != "ByteLevel" or not pre.get("use_regex", True)
            or pre.get("add_prefix_space") or data.get("normalizer")):
        raise ValueError("only a BPE model with a plain ByteLevel pre-tokenizer (GPT-2's pattern) is supported")
    ids = {c: b for b, c in gpt2_byte_chars().items()}  # token string -> this module's id
    merges = []
    for m in model["merges"]:
        a, b = m.split(" ") if isinstance(m, str) else m
        ids[a + b] = 256 + len(merges)
        merges.append((ids[a], ids[b]))
    vocab = model["vocab"]
    hf_ids = [None] * len(ids)
    for token, k in ids.items():
        hf_ids[k] = vocab.get(token)
    return merges, hf_ids
