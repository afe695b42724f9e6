"""The kit's own checks of the `tokenizer` reference against Hugging Face `tokenizers` (the library that
runs GPT-2's and SmolLM2's byte-level BPE): the same pieces, and the same ids for the same merges."""
from __future__ import annotations

import unicodedata

from hypothesis import given, settings
from hypothesis import strategies as st
from tokenizers import Tokenizer, models, pre_tokenizers

from solutions import tokenizer as ref

CHARS = ref.gpt2_byte_chars()
# Characters assigned in Python's Unicode database. The `regex` package and the Rust library follow
# different (newer) Unicode versions, so a code point assigned only recently (e.g. U+323B0, CJK
# extension H, Unicode 15) is a letter to one and unassigned to the other and splits differently.
TEXTS = st.text(alphabet=st.characters(blacklist_categories=("Cs", "Cn")), max_size=40)
CORPUS = ["The film's plot isn't new, but 3 of 4 scenes work!", "中文字幕 and émigré café 😀😀",
          "  indented\n\n\tcode = x[0] + 42;  ", "it's it's it's the the the 2024 2024"]


def _hf_tokenizer(merges):
    """A `tokenizers` BPE with GPT-2's byte-level pre-tokenizer and the reference's merges."""
    tokens = [CHARS[b] for b in range(256)]
    pairs = []
    for a, b in merges:
        pairs.append((tokens[a], tokens[b]))
        tokens.append(tokens[a] + tokens[b])
    vocab = {t: i for i, t in enumerate(tokens)}
    tok = Tokenizer(models.BPE(vocab=vocab, merges=pairs))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    return tok


@settings(max_examples=200, deadline=None)
@given(text=TEXTS)
def test_pretokenize_equals_the_byte_level_pre_tokenizer(text):
    hf = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True).pre_tokenize_str(text)
    byte_of = {c: b for b, c in CHARS.items()}
    pieces = [bytes(byte_of[c] for c in piece).decode("utf-8") for piece, _ in hf]
    assert ref.pretokenize(text) == pieces
    assert "".join(pieces) == text


def test_gpt2_byte_chars_match_the_library():
    alphabet = pre_tokenizers.ByteLevel.alphabet()
    assert sorted(CHARS.values()) == sorted(alphabet) and len(set(CHARS.values())) == 256
    assert CHARS[ord(" ")] == "Ġ" and CHARS[ord("\n")] == "Ċ"


@settings(max_examples=100, deadline=None)
@given(text=TEXTS, vocab_size=st.integers(256, 600))
def test_encode_equals_tokenizers_bpe(text, vocab_size):
    merges = ref.train_bpe(CORPUS, vocab_size)
    tok = _hf_tokenizer(merges)
    assert ref.encode(text, merges) == tok.encode(text).ids
    assert ref.decode(ref.encode(text, merges), merges) == text


def test_train_bpe_stops_when_no_pair_is_left():
    merges = ref.train_bpe(["ab ab"], 10_000)
    assert merges == [(97, 98), (32, 256)]  # "ab", then " ab": nothing left to merge


def test_load_hf_byte_bpe_round_trips_a_tokenizer_json(tmp_path):
    merges = ref.train_bpe(CORPUS, 400)
    path = tmp_path / "tokenizer.json"
    _hf_tokenizer(merges).save(str(path))
    loaded, hf_ids = ref.load_hf_byte_bpe(path)
    assert loaded == merges and hf_ids == list(range(256 + len(merges)))
