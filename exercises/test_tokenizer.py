"""Example tests for `tokenizer` (the hidden graders try many more corpora, merge lists and strings)."""
from exercises.tokenizer import decode, encode, pretokenize, tokens_per_word, train_bpe


def test_pretokenize_splits_words_numbers_and_punctuation():
    assert pretokenize("Hello world's 42!") == ["Hello", " world", "'s", " 42", "!"]
    text = "  two  spaces\nand\ttabs "
    assert "".join(pretokenize(text)) == text  # the pieces cover the text


def test_train_bpe_merges_the_most_frequent_pair_first():
    # (a, a) occurs 4 times in "aaab aaab" (twice per piece, pieces "aaab" and " aaab")
    merges = train_bpe(["aaab aaab"], 257)
    assert merges == [(97, 97)]
    assert train_bpe(["aaab aaab"], 256) == []  # 256 ids are just the bytes
    # every pair occurs once: the tie goes to the smallest pair
    assert train_bpe(["dcba"], 257) == [(98, 97)]


def test_encode_uses_new_ids_and_lowest_rank_first():
    merges = [(97, 98), (256, 99)]  # "ab" -> 256, then "ab"+"c" -> 257
    assert encode("abc ab", merges) == [257, 32, 256]
    # the rank decides, not the position: (b, c) is merge 0, so "abc" becomes a + bc
    assert encode("abc", [(98, 99), (97, 98)]) == [97, 256]


def test_decode_round_trip_and_broken_characters():
    merges = train_bpe(["the cat sat on the mat", "中文 中文"], 270)
    for text in ["the mat", "中文 and é 😀", "  \n\t"]:
        assert decode(encode(text, merges), merges) == text
    assert decode([0xE4], merges) == "\ufffd"  # half a character is replaced, not an error


def test_tokens_per_word():
    assert tokens_per_word(lambda t: list(t.encode("utf-8")), ["ab cd", "efg\nh"]) == 10 / 4
