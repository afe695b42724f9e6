"""Hidden graders for ``tokenizer`` (API.md §14): byte-level BPE.

Expected values come from the reference (``ref``), run here on the same inputs; the corpora are tiny
(a few short texts over small alphabets, so that ties between equally frequent pairs are common) and
the vocabularies small, so a check takes milliseconds. Properties that do not need the reference
(round trips, no token across pieces, ids only built from earlier ones) are checked directly.
"""
from __future__ import annotations

from hypothesis import example, given, settings
from hypothesis import strategies as st

from llmlab.grading.checks import (CheckFailed, check, describe, diagnose, diagnosing, expect_equal,
                                  expect_raises, later, require_implemented, type_name)

TASK_PRE = "tokenizer.pretokenize"
TASK_TRAIN = "tokenizer.train_bpe"
TASK_ENCODE = "tokenizer.encode"
TASK_DECODE = "tokenizer.decode"
TASK_TPW = "tokenizer.tokens_per_word"


# ---------------------------------------------------------------------------------------------
# Strategies
# ---------------------------------------------------------------------------------------------
# Few distinct symbols: pairs repeat (and tie) often. Multi-byte characters and whitespace runs included.
_SMALL = st.sampled_from(["a", "b", "c", " ", " ", "ab", "ba", "é", "中", "1", "2", "!", "\n", "  ", "'s"])


@st.composite
def small_texts(draw, max_parts: int = 10):
    return "".join(draw(st.lists(_SMALL, max_size=max_parts)))


corpora = st.lists(small_texts(), min_size=1, max_size=4)
vocab_sizes = st.integers(256, 256 + 12)
# Any Unicode string except lone surrogates (which have no UTF-8 encoding).
unicode_texts = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=30)


@st.composite
def random_merges(draw, max_merges: int = 12):
    """Valid merges that training would not produce: any order of ranks, each pair built from bytes of
    ``_SMALL`` or earlier merges, no pair twice."""
    base = sorted({b for s in ("abc 1!\n", "é中") for b in s.encode("utf-8")})
    merges: list = []
    for _ in range(draw(st.integers(0, max_merges))):
        ids = base + list(range(256, 256 + len(merges)))
        pair = (draw(st.sampled_from(ids)), draw(st.sampled_from(ids)))
        if pair not in merges:
            merges.append(pair)
    return merges


# ---------------------------------------------------------------------------------------------
# Helpers: type checks first, then values
# ---------------------------------------------------------------------------------------------
def _int_list(value, what, inputs, diag=None):
    if not isinstance(value, list) or not all(type(x) is int for x in value):
        raise CheckFailed(f"{what} should be a list of ints, got {describe(value)}", inputs=inputs, diagnosis=diag)
    return value


def _merges(value, what, inputs, diag=None):
    if not isinstance(value, list) or not all(isinstance(m, (tuple, list)) and len(m) == 2
                                              and all(type(x) is int for x in m) for m in value):
        raise CheckFailed(f"{what} should be a list of (a, b) tuples of ints, got {type_name(value)}: "
                          f"{describe(value)}", inputs=inputs, diagnosis=diag)
    return [tuple(m) for m in value]


def _train(sub, texts, vocab_size):
    inputs = dict(texts=texts, vocab_size=vocab_size)
    diag = later(lambda: diagnose(lambda m: m.train_bpe(texts, vocab_size), got))
    got = None
    with diagnosing(lambda m: m.train_bpe(texts, vocab_size)):
        got = sub.call("train_bpe", texts, vocab_size)
    return _merges(got, "train_bpe's result", inputs, diag), inputs, diag


def _token_bytes(merges):
    vocab = [bytes([b]) for b in range(256)]
    for a, b in merges:
        vocab.append(vocab[a] + vocab[b])
    return vocab


# ---------------------------------------------------------------------------------------------
# pretokenize
# ---------------------------------------------------------------------------------------------
@check(TASK_PRE, points=2, spec="The pieces are ``regex.findall(pattern, text)``")
@given(text=st.one_of(small_texts(), unicode_texts))
@example(text="Hello world's 42!")
@example(text="  two  spaces\n\nand\ttabs  ")
@example(text="I'll say 3.14 isn't 中文 😀!!")
def test_pretokenize_gpt2_pieces(sub, ref, text):
    got = sub.call("pretokenize", text)
    expect_equal(got, ref.pretokenize(text), what=f"pretokenize({text!r})", inputs=dict(text=text),
                 diagnose_with=lambda m: m.pretokenize(text))


@check(TASK_PRE, points=1, spec="Split ``text`` into pieces with the regular expression ``pattern``")
def test_pretokenize_uses_the_pattern(sub, ref):
    for text, pattern in [("ab, cd!", r"\w+|\W"), ("x1y22z", r"\d+|\D"), ("日本語 text", r"\p{Han}|\S+|\s")]:
        got = sub.call("pretokenize", text, pattern=pattern)
        expect_equal(got, ref.pretokenize(text, pattern=pattern), what=f"pretokenize({text!r}, pattern={pattern!r})",
                     inputs=dict(text=text, pattern=pattern))


@check(TASK_PRE, points=1, spec="TypeError: if ``text`` is not a str.")
def test_pretokenize_rejects_non_str(sub):
    require_implemented(sub, "pretokenize", "a b")
    expect_raises(lambda: sub.call("pretokenize", b"bytes"), "TypeError", what="pretokenize(b'bytes')")
    expect_raises(lambda: sub.call("pretokenize", ["a", "b"]), "TypeError", what="pretokenize(['a', 'b'])")


# ---------------------------------------------------------------------------------------------
# train_bpe
# ---------------------------------------------------------------------------------------------
@check(TASK_TRAIN, points=3, spec=("Each step merges the most frequent pair; ties go to the smallest pair ``(a, b)``",
                                   "a piece that occurs ``k`` times counts ``k`` times"))
@given(texts=corpora, vocab_size=vocab_sizes)
@example(texts=["aaabdaaabac"], vocab_size=259)
@example(texts=["low lower lowest", "newer wider new"], vocab_size=268)
def test_train_merges_equal_reference(sub, ref, texts, vocab_size):
    got, inputs, diag = _train(sub, texts, vocab_size)
    want = ref.train_bpe(texts, vocab_size)
    if got != want:
        n = next((i for i, (g, w) in enumerate(zip(got, want)) if g != w), min(len(got), len(want)))
        raise CheckFailed(f"train_bpe's merges differ from the expected ones at merge {n}: got "
                          f"{describe(got[n:n + 3])}..., expected {describe(want[n:n + 3])}... "
                          f"({len(got)} merges, expected {len(want)})", inputs=inputs, diagnosis=diag)


@check(TASK_TRAIN, points=1, spec="ties go to the smallest pair ``(a, b)`` (compare ``a``, then ``b``)")
def test_train_ties_go_to_the_smallest_pair(sub, ref):
    # every pair occurs once, so each step is a tie; two-byte single-piece texts (no merge builds on
    # another) and a vocab_size that uses up every pair: only the order of the merges is tested
    for texts, vocab_size in [(["dc", "ba", "ed", "cb"], 300), (["zy", "ba", "yx"], 300), (["ca", "cb", "ac"], 300)]:
        got, inputs, diag = _train(sub, texts, vocab_size)
        expect_equal(got, ref.train_bpe(texts, vocab_size), what="train_bpe's merges (all pairs tied)", inputs=inputs,
                     diagnose_with=lambda m, t=texts, v=vocab_size: m.train_bpe(t, v))


@check(TASK_TRAIN, points=1, spec="a piece that occurs ``k`` times counts ``k`` times")
def test_train_counts_are_weighted_by_piece_frequency(sub, ref):
    # "zz" occurs 5 times as one distinct piece, "ab" once: (z, z) must come first, not the smaller (a, b).
    # Single-piece texts, every pair used up: only the counting is tested.
    for texts, vocab_size in [(["zz"] * 5 + ["ab"], 300), (["xy"] * 3 + ["ab"] * 2 + ["cd"], 300)]:
        got, inputs, diag = _train(sub, texts, vocab_size)
        expect_equal(got, ref.train_bpe(texts, vocab_size), what="train_bpe's merges", inputs=inputs,
                     diagnose_with=lambda m, t=texts, v=vocab_size: m.train_bpe(t, v))


@check(TASK_TRAIN, points=2, spec="Pairs are counted inside pieces only, never across them.")
@given(texts=corpora, vocab_size=st.integers(256, 256 + 20))
@example(texts=["a b a b a b", "a!a!a!"], vocab_size=262)
def test_train_never_merges_across_pieces(sub, ref, texts, vocab_size):
    got, inputs, diag = _train(sub, texts, vocab_size)
    pieces = {p.encode("utf-8") for t in texts for p in ref.pretokenize(t)}
    for i, (a, b) in enumerate(got):
        # merges of two bytes only: they mean the same whatever ids the other merges were given
        if 0 <= a < 256 and 0 <= b < 256 and not any(bytes([a, b]) in piece for piece in pieces):
            raise CheckFailed(f"merge {i} {got[i]} joins the bytes {bytes([a, b])!r}, which are adjacent in no "
                              f"single piece (pieces: {sorted(pieces)[:8]}): a pair was counted across two pieces",
                              inputs=inputs, diagnosis=diag)


@check(TASK_TRAIN, points=1, spec="Merge ``i`` creates id ``256 + i``")
@given(texts=st.lists(st.text(alphabet="ab", min_size=4, max_size=16), min_size=1, max_size=3),
       vocab_size=st.integers(258, 264))
@example(texts=["aaaaaaaa"], vocab_size=259)
def test_train_new_ids(sub, ref, texts, vocab_size):
    got, inputs, diag = _train(sub, texts, vocab_size)
    for i, (a, b) in enumerate(got):
        if not (0 <= a < 256 + i and 0 <= b < 256 + i):
            raise CheckFailed(f"merge {i} is {(a, b)}, but only ids 0..{255 + i} exist before merge {i} "
                              f"(merge j creates id 256 + j)", inputs=inputs, diagnosis=diag)


@check(TASK_TRAIN, points=1, spec=("Training stops when the vocabulary (256 bytes plus the merges) reaches "
                                   "``vocab_size``", "or earlier when no piece has two symbols left"))
def test_train_vocab_size(sub, ref):
    # single-piece texts: only the number of merges is tested
    for texts, vocab_size in [(["abcabcabd", "abcabcabd"], 256), (["abcabcabd", "abcabcabd"], 258),
                              (["abcabcabd", "abcabcabd"], 260), (["ab"], 300), (["abc", "cde"], 270), ([], 260)]:
        got, inputs, diag = _train(sub, texts, vocab_size)
        want = ref.train_bpe(texts, vocab_size)
        if len(got) != len(want):
            raise CheckFailed(f"train_bpe made {len(got)} merges, expected {len(want)} (vocab_size counts the 256 "
                              "bytes too; training stops early when no pair is left)", inputs=inputs, diagnosis=diag)


@check(TASK_TRAIN, points=1, spec=("ValueError: if ``vocab_size < 256``.", "TypeError: if ``texts`` is not a list of str."))
def test_train_rejects_bad_arguments(sub):
    require_implemented(sub, "train_bpe", ["ab ab"], 257)
    expect_raises(lambda: sub.call("train_bpe", ["ab ab"], 255), "ValueError", what="train_bpe(texts, 255)")
    expect_raises(lambda: sub.call("train_bpe", ["ab ab"], 0), "ValueError", what="train_bpe(texts, 0)")
    expect_raises(lambda: sub.call("train_bpe", "ab ab", 260), "TypeError",
                  what="train_bpe('ab ab', 260) (a str, not a list of str)")
    expect_raises(lambda: sub.call("train_bpe", ["ab", 3], 260), "TypeError", what="train_bpe(['ab', 3], 260)")


# ---------------------------------------------------------------------------------------------
# encode
# ---------------------------------------------------------------------------------------------
_ROUND_TRIP_CORPUS = ["the cat sat on the mat, the end", "中文中文 é é 😀😀", "  \n\n\t 123 123"]


def _encode(sub, text, merges, what="encode(text, merges)"):
    inputs = dict(text=text, merges=merges)
    got = None
    diag = later(lambda: diagnose(lambda m: m.encode(text, merges), got))
    with diagnosing(lambda m: m.encode(text, merges)):
        got = sub.call("encode", text, merges)
    return _int_list(got, what, inputs, diag), inputs, diag


@check(TASK_ENCODE, points=2, spec="repeatedly: among the adjacent pairs present, take the one with the lowest rank")
@given(texts=corpora, vocab_size=st.integers(256, 256 + 20), text=small_texts(max_parts=14))
@example(texts=["low lower lowest"], vocab_size=266, text="lowest lower slow")
def test_encode_with_trained_merges(sub, ref, texts, vocab_size, text):
    merges = ref.train_bpe(texts, vocab_size)
    got, inputs, diag = _encode(sub, text, merges)
    want = ref.encode(text, merges)
    if got != want:
        raise CheckFailed(f"encode gives {describe(got)}, expected {describe(want)}", inputs=inputs, diagnosis=diag)


@check(TASK_ENCODE, points=2, spec=("take the one with the lowest rank (merge ``i`` has rank ``i``)",
                                    "The merges need not come from ``train_bpe``"))
@given(merges=random_merges(), text=small_texts(max_parts=14))
@example(merges=[(98, 99), (97, 98)], text="abc")
@example(merges=[(97, 97), (256, 97)], text="aaa")
def test_encode_with_any_merges(sub, ref, merges, text):
    got, inputs, diag = _encode(sub, text, merges)
    want = ref.encode(text, merges)
    if got != want:
        raise CheckFailed(f"encode gives {describe(got)}, expected {describe(want)}", inputs=inputs, diagnosis=diag)


@check(TASK_ENCODE, points=1, spec="A piece starts as its UTF-8 bytes (ids 0-255)")
@given(text=unicode_texts)
@example(text="the cat 中文 😀 e\u0301 \x00\t\n  end ")
def test_encode_round_trip_on_any_unicode(sub, ref, text):
    merges = ref.train_bpe(_ROUND_TRIP_CORPUS + [text], 300)
    ids, inputs, diag = _encode(sub, text, merges)
    try:
        back = ref.decode(ids, merges)
    except ValueError:
        raise CheckFailed(f"encode returns ids that no merge creates: {describe(ids)}", inputs=inputs,
                          diagnosis=diag) from None
    if back != text:
        raise CheckFailed(f"the ids encode returns stand for {describe(back)}, not for the text", inputs=inputs,
                          diagnosis=diag)


@check(TASK_ENCODE, points=1, spec="each piece is encoded on its own (no token spans two pieces)")
def test_encode_never_merges_across_pieces(sub, ref):
    # merges that would glue a word to the next piece's leading space or punctuation
    merges = [(97, 32), (256, 98), (97, 33), (33, 32)]
    for text in ["a b", "a! b", "ba a b"]:
        got, inputs, diag = _encode(sub, text, merges)
        expect_equal(got, ref.encode(text, merges), what=f"encode({text!r}, merges)", inputs=inputs,
                     diagnose_with=lambda m, t=text: m.encode(t, merges))


@check(TASK_ENCODE, points=1, spec=("TypeError: if ``text`` is not a str", "ValueError: if merge ``i`` uses an id "
                                    "outside ``0 .. 255 + i``."))
def test_encode_rejects_bad_arguments(sub):
    require_implemented(sub, "encode", "ab", [(97, 98)])
    expect_raises(lambda: sub.call("encode", b"ab", [(97, 98)]), "TypeError", what="encode(b'ab', merges)")
    expect_raises(lambda: sub.call("encode", "ab", [(97, 256)]), "ValueError",
                  what="encode('ab', [(97, 256)]) (merge 0 uses id 256, which merge 0 itself would create)")
    expect_raises(lambda: sub.call("encode", "ab", [(97, 98), (300, 97)]), "ValueError",
                  what="encode('ab', [(97, 98), (300, 97)]) (an id that no merge creates)")
    expect_raises(lambda: sub.call("encode", "ab", [(-1, 98)]), "ValueError", what="encode('ab', [(-1, 98)])")


# ---------------------------------------------------------------------------------------------
# decode
# ---------------------------------------------------------------------------------------------
@check(TASK_DECODE, points=2, spec="``decode(encode(t, merges), merges) == t`` for every string ``t``")
@given(text=unicode_texts)
@example(text="the cat 中文 😀 e\u0301 \x00\t\n  end ")
def test_decode_round_trip_on_any_unicode(sub, ref, text):
    merges = ref.train_bpe(_ROUND_TRIP_CORPUS + [text], 300)
    ids = ref.encode(text, merges)  # the reference's ids: this check grades decode alone
    inputs = dict(ids=ids, merges=merges)
    with diagnosing(lambda m: m.decode(ids, merges)):
        back = sub.call("decode", ids, merges)
    if back != text:
        raise CheckFailed(f"decode gives {describe(back)}, expected {describe(text)}", inputs=inputs,
                          diagnosis=later(lambda: diagnose(lambda m: m.decode(ids, merges), back)))


def _decode_cases(sub, merges, cases):
    """decode(ids, merges) for each ids in ``cases`` must equal the UTF-8 decoding of the joined bytes."""
    for ids in cases:
        want = b"".join(_token_bytes(merges)[i] for i in ids).decode("utf-8", errors="replace")
        with diagnosing(lambda m, i=ids: m.decode(i, merges)):
            got = sub.call("decode", ids, merges)
        expect_equal(got, want, what=f"decode({ids}, merges)", inputs=dict(ids=ids, merges=merges),
                     diagnose_with=lambda m, i=ids: m.decode(i, merges))


@check(TASK_DECODE, points=1, spec="The bytes of all ids are joined first and then decoded as UTF-8")
def test_decode_joins_bytes_before_decoding(sub):
    # "中" is E4 B8 AD: here its bytes are split across two tokens, and "é" (C3 A9) across two as well
    _decode_cases(sub, [(0xE4, 0xB8), (0x61, 0xC3)], ([256, 0xAD], [257, 0xA9], [0x61, 0xC3, 0xA9, 256, 0xAD]))


@check(TASK_DECODE, points=1, spec='``errors="replace"``')
def test_decode_replaces_invalid_bytes(sub):
    # incomplete or invalid UTF-8, each within one token: only the error handling is tested
    _decode_cases(sub, [(0xE4, 0xB8)], ([0xE4], [256], [0x61, 0xFF, 0x62], [0xC3], [0x80, 0x80]))


@check(TASK_DECODE, points=1, spec="ValueError: if an id is outside ``0 .. 255 + len(merges)``.")
def test_decode_rejects_unknown_ids(sub):
    require_implemented(sub, "decode", [104, 105], [])
    expect_raises(lambda: sub.call("decode", [104, 256], []), "ValueError", what="decode([104, 256], []) (no merges)")
    expect_raises(lambda: sub.call("decode", [257], [(97, 98)]), "ValueError", what="decode([257], [(97, 98)])")
    expect_raises(lambda: sub.call("decode", [-1], []), "ValueError", what="decode([-1], [])")


# ---------------------------------------------------------------------------------------------
# tokens_per_word (encode_fn is a trusted function built in the worker: one token per UTF-8 byte)
# ---------------------------------------------------------------------------------------------
def _tpw(sub, texts, kind="bytes"):
    """Grade tokens_per_word with a trusted encode_fn built in the worker (see ``counting_encoder``)."""
    def count(t):
        return len(t.encode("utf-8")) if kind == "bytes" else sum(not c.isspace() for c in t)

    def encode_fn(t):
        return [0] * count(t)

    inputs = dict(encode_fn=("one token per UTF-8 byte" if kind == "bytes" else
                             "one token per character that is not whitespace"), texts=texts)
    with diagnosing(lambda m: m.tokens_per_word(encode_fn, texts)):
        got = sub.call("tokens_per_word", sub.factory("counting_encoder", kind), texts)
    if not isinstance(got, (float, int)) or isinstance(got, bool):
        raise CheckFailed(f"tokens_per_word should return a float, got {type_name(got)}", inputs=inputs)
    want = sum(count(t) for t in texts) / sum(len(t.split()) for t in texts)
    if abs(got - want) > 1e-9 * max(1.0, want):
        raise CheckFailed(f"tokens_per_word gives {got!r}, expected {want!r}", inputs=inputs,
                          diagnosis=later(lambda: diagnose(lambda m: m.tokens_per_word(encode_fn, texts), got)))


@check(TASK_TPW, points=1, spec="The total number of tokens")
@given(texts=st.lists(st.lists(st.text(alphabet="abcé中", min_size=1, max_size=6), min_size=1, max_size=5)
                      .map(" ".join), min_size=1, max_size=4))
@example(texts=["ab cd", "efg h"])
def test_tokens_per_word_single_spaces(sub, texts):
    _tpw(sub, texts)


@check(TASK_TPW, points=1, spec="words are separated by any whitespace")
def test_tokens_per_word_any_whitespace(sub):
    # one-letter words, one token per letter: 1.0 whichever way round the ratio is taken
    for texts in (["a\tb c", "d\ne  f"], ["  g h  "], ["i", "", "j\n\nk"]):
        _tpw(sub, texts, kind="non_space")


@check(TASK_TPW, points=1, spec="ValueError: if the texts hold no word at all.")
def test_tokens_per_word_without_words(sub):
    encode_fn = sub.factory("counting_encoder")
    require_implemented(sub, "tokens_per_word", encode_fn, ["a b"])
    expect_raises(lambda: sub.call("tokens_per_word", encode_fn, []), "ValueError",
                  what="tokens_per_word(encode_fn, [])")
