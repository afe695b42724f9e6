"""Example tests for `imdb_remote_llm` (the hidden graders check much more: every retry rule, waits measured
on a clock, the concurrency bound, and a generated corpus of answers for parse_label).

The client tests need no server: `ScriptedEndpoint` gives a real `openai.OpenAI` client whose requests
are answered inside this process, review by review, attempt by attempt, and logged.
"""
import pytest

from llmlab.serve import ScriptedEndpoint

from exercises.imdb_remote_llm import Result, classify_remote, label_logit_bias, parse_label


def test_parse_label_reads_answers():
    assert parse_label("Positive.") == 1
    assert parse_label("The sentiment is **NEGATIVE**") == 0
    assert parse_label("positive or negative") is None
    assert parse_label("positively awful") is None  # whole words only


def test_parse_label_negation_flips_within_a_clause():
    assert parse_label("not negative at all") == 1
    assert parse_label("It isn't positive.") == 0
    assert parse_label("Not sure, but positive") == 1  # the comma (and 'but') end the negation's reach


def test_classify_remote_keeps_the_order_of_the_reviews():
    reviews = ["(1) I loved it. (1)", "(2) Dull and long. (2)", "(3) Hmm. (3)"]
    script = [[{"answer": "Positive.", "prompt_tokens": 20, "completion_tokens": 2, "delay": 0.2}],
              [{"answer": "negative", "prompt_tokens": 18, "completion_tokens": 1}],
              [{"answer": "I cannot tell", "prompt_tokens": 15, "completion_tokens": 4}]]
    endpoint = ScriptedEndpoint(reviews, script)
    results = classify_remote(endpoint.client, "any-model", reviews, concurrency=3)
    assert [type(r) for r in results] == [Result] * 3
    assert [r.label for r in results] == [1, 0, None]
    assert [r.error for r in results] == [None, None, None]
    assert [(r.prompt_tokens, r.completion_tokens) for r in results] == [(20, 2), (18, 1), (15, 4)]


def test_classify_remote_waits_retry_after_and_retries_a_429():
    reviews = ["(1) Great cast. (1)"]
    endpoint = ScriptedEndpoint(reviews, [[{"status": 429, "retry_after": "0.4"}, {"answer": "positive"}]])
    (result,) = classify_remote(endpoint.client, "any-model", reviews)
    assert (result.label, result.error, result.attempts) == (1, None, 2)
    first, second = endpoint.log()
    assert second["start"] - first["end"] >= 0.4  # Retry-After honoured


def test_classify_remote_does_not_retry_a_400_and_gives_up_after_max_retries():
    reviews = ["(1) Bad request. (1)", "(2) Server down. (2)"]
    endpoint = ScriptedEndpoint(reviews, [[{"status": 400}], [{"status": 500}]])
    bad, down = classify_remote(endpoint.client, "any-model", reviews, max_retries=1)
    assert (bad.label, bad.attempts) == (None, 1) and bad.error
    assert (down.label, down.attempts) == (None, 2) and down.error
    assert len(endpoint.log()) == 3


class WordPieces:
    """A stand-in tokenizer: a word is cut into known pieces, longest first; a leading space is a piece."""

    PIECES = {" ": 1, "positive": 10, "negative": 11, "neg": 12, "ation": 13, "aw": 14, "ful": 15, "great": 16}

    def encode(self, text, add_special_tokens=True):
        ids = [0] if add_special_tokens else []  # 0: a begin-of-text token
        while text:
            piece = max((p for p in self.PIECES if text.startswith(p)), key=len)
            ids.append(self.PIECES[piece])
            text = text[len(piece):]
        return ids


def test_label_logit_bias_biases_each_words_first_token():
    assert label_logit_bias(WordPieces()) == {"11": 100, "10": 100}
    assert label_logit_bias(WordPieces(), ["great", "awful"], bias=50) == {"16": 50, "14": 50}  # "aw", not "ful"


def test_label_logit_bias_refuses_words_it_could_not_tell_apart():
    with pytest.raises(ValueError):
        label_logit_bias(WordPieces(), ["neg", "negation"])  # both start with "neg"


def test_classify_remote_sends_the_logit_bias_and_asks_for_one_token():
    reviews = ["(1) Loved it. (1)"]
    endpoint = ScriptedEndpoint(reviews, [[{"answer": "positive"}]])
    (result,) = classify_remote(endpoint.client, "any-model", reviews, logit_bias={"10": 100, "11": 100})
    assert result.label == 1
    (request,) = endpoint.log()
    assert (request["logit_bias"], request["max_tokens"]) == ({"10": 100, "11": 100}, 1)
