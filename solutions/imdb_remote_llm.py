"""A remote LLM as a classifier, through the OpenAI API (notes §5).

Hosted models are reached over HTTP: a client sends a chat-completions request (the model's name, the
messages, a few generation settings) and gets back the model's answer and the tokens it was billed
for. Any server that speaks the same protocol -- OpenAI's, vLLM, llama.cpp, ``transformers serve``,
the kit's own ``llmlab serve`` -- works with the same client code.

The network makes three new problems that a local model never had:

* the answer is free text, so it must be **read**: ``parse_label`` turns "The sentiment is
  positive." or "not negative at all" into a label, and refuses to guess when the text is unclear;
* requests **fail**: a server that is busy answers 429 (too many requests) or 503 (overloaded),
  often with a ``Retry-After`` header saying how long to wait; a crashed worker answers 500; a
  request can time out or come back cut in half. Those are worth retrying, after a wait that grows
  exponentially (so a struggling server gets room to recover) with a random jitter (so a thousand
  clients that failed together do not come back together). A 400 (bad request) or 401 (bad key)
  will fail the same way every time: retrying it only wastes the quota;
* one request at a time leaves the server idle while an answer travels; **concurrent** requests
  keep it busy, but only up to the limit the server (and the bill) can take.

``classify_remote`` does all of that for a batch of reviews and never loses one: each review gets a
label or a written reason why it has none.

A free-text answer may still name no label at all. The API has a standard way to make every answer
readable: ``logit_bias`` lifts chosen tokens above all others, and ``label_logit_bias`` builds the map
that, with a one-token answer, leaves the model nothing to say but a label word.
"""
from __future__ import annotations

import random
import re
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import openai

SYSTEM_PROMPT = "You are a sentiment classifier. Reply with exactly one word: positive or negative."
MAX_TOKENS = 12  # room for "The sentiment of this review is positive." but not for an essay
BASE_DELAY = 0.1  # seconds: the backoff before the first retry
MAX_DELAY = 8.0  # seconds: no backoff wait is longer than this (Retry-After may be)
NEGATORS = ("not", "no", "never", "neither", "nor", "cannot", "non")
LABEL_WORDS = ("negative", "positive")  # index = label, as parse_label reads them (1 = positive)
MAX_BIAS = 100  # the largest logit_bias value the chat-completions API accepts


@dataclass
class Result:
    """The outcome for one review.

    ``label``: 1 (positive), 0 (negative), or None (no answer, or an answer that names no single label);
    ``error``: None when the review got an answer, else a short description of the last failure;
    ``attempts``: how many requests were sent for this review (1 + retries);
    ``prompt_tokens``, ``completion_tokens``: the usage reported with the answer (0 without one).
    """

    label: int | None
    error: str | None
    attempts: int
    prompt_tokens: int = 0
    completion_tokens: int = 0


def make_request(model, review, logit_bias=None):
    """The keyword arguments of ``client.chat.completions.create`` for one review.

    A system message with the instruction, then the review, whole and unchanged, in a user message;
    greedy decoding (``temperature=0``) and at most ``MAX_TOKENS`` answer tokens. With ``logit_bias`` (a
    map from token ids, as str, to a bias, as made by ``label_logit_bias``) the request also carries that
    map and asks for one answer token only (``max_tokens=1``): the answer is then the biased token the
    model likes best.
    """
    request = {
        "model": model,
        "messages": [{"role": "system", "content": SYSTEM_PROMPT},
                     {"role": "user", "content": f"Movie review:\n{review}\n\nSentiment (positive or negative):"}],
        "max_tokens": MAX_TOKENS,
        "temperature": 0,
    }
    if logit_bias is not None:
        request.update(logit_bias=dict(logit_bias), max_tokens=1)
    return request


def parse_label(text):
    """The label a free-text answer names: 1 (positive), 0 (negative) or None.

    The rule:

    1. Case does not matter, and the typographic apostrophe ``’`` reads as ``'``.
    2. A *word* is a maximal run of letters a-z, where single apostrophes between letters stay inside
       the word (``isn't`` is one word). Everything else separates words: spaces, digits, punctuation,
       markdown (``**positive**`` holds the word ``positive``).
    3. A *mention* is a word that is exactly ``positive`` or ``negative`` (``positively``,
       ``nonnegative`` and ``negatives`` are not mentions).
    4. The text splits into *clauses* at each of ``. , ; : ! ?``, at line breaks, and at the word
       ``but``. A mention is *negated* when one of the (up to) three words just before it in its clause
       is a negator: ``not``, ``no``, ``never``, ``neither``, ``nor``, ``cannot``, ``non`` (the tuple
       ``NEGATORS``), or a word ending in ``n't``. A negated mention names the opposite label ("not
       negative" names positive); several negators still flip it once.
    5. The answer is the label that every mention names; None when there is no mention, or when the
       mentions name both labels.

    Examples: ``"Positive."``, ``"**POSITIVE**"``, ``"The sentiment is positive, not negative."``,
    ``"not negative at all"``, ``"Not sure, but positive"`` -> 1; ``"the sentiment is NEGATIVE"``,
    ``"It isn’t positive."``, ``"It is not a positive review"`` -> 0; ``"positive or negative"``,
    ``"neither positive nor negative"``, ``"I cannot tell"``, ``"positively awful"``, ``""`` -> None.

    Raises:
        TypeError: if ``text`` is not a str.
    """
    ### BEGIN SOLUTION
    if not isinstance(text, str):
        raise TypeError(f"text must be a str, got {type(text).__name__}")
    named = set()
    normalized = text.lower().replace("\u2019", "'")
    clauses = [[]]
    # words first (an apostrophe between letters stays inside one: "but'positive" is a single word),
    # then clauses, which end at a break character or at the word "but"
    for token in re.findall(r"[a-z]+(?:'[a-z]+)*|[.,;:!?\n\r]", normalized):
        if token == "but" or not token[0].isalpha():
            clauses.append([])
        else:
            clauses[-1].append(token)
    for words in clauses:
        for i, word in enumerate(words):
            if word not in ("positive", "negative"):
                continue
            label = 1 if word == "positive" else 0
            if any(w in NEGATORS or w.endswith("n't") for w in words[max(0, i - 3):i]):
                label = 1 - label
            named.add(label)
    return named.pop() if len(named) == 1 else None
    ### END SOLUTION


def label_logit_bias(tokenizer, words=LABEL_WORDS, *, bias=MAX_BIAS):
    """The ``logit_bias`` map that makes a one-token answer one of the label words.

    ``logit_bias`` is a chat-completions parameter: a map from token ids to a number that the server
    adds to those tokens' logits before it picks the next token. A bias of +100 (the most the API
    accepts) lifts the chosen tokens above every other token of the vocabulary, so with greedy decoding
    and ``max_tokens=1`` the answer is always one of them -- the one the model itself ranks highest,
    since all of them got the same bias. The answer can then always be read.

    Only the **first** token of each word is biased: it is the token the answer starts with, and with
    ``max_tokens=1`` the only one generated (biasing a word's later tokens too would let the model answer
    with a word's tail). The first token of ``word`` is ``tokenizer.encode(word,
    add_special_tokens=False)[0]``: the word as the first token of the assistant's answer, with no
    leading space (``" positive"`` is another token than ``"positive"``) and no special token before it
    (the same tokens as ``imdb_local_llm.label_logprobs`` scores).

    Args:
        tokenizer: a Hugging Face tokenizer (only its ``encode`` is used).
        words: a list or tuple of at least two non-empty str; ``words[i]`` names label ``i`` (default
            ``LABEL_WORDS = ("negative", "positive")``).
        bias: the bias given to each word's first token, an int with ``1 <= bias <= 100`` (default
            ``MAX_BIAS = 100``). Anything smaller than the maximum may lose to an unbiased token that the
            model strongly prefers (``"The"``, ``"This"``), and the answer is unreadable again.

    Returns:
        ``dict[str, int]``: ``{str(first_token_id): bias}``, one entry per word, in the order of ``words``
        (the keys are str because JSON object keys are; the openai client sends the dict as it is).

    Raises:
        TypeError: if ``words`` is not a list or tuple of str, or ``bias`` is not an int (a bool is not).
        ValueError: if there are fewer than two words, a word encodes to no token, two words share their
            first token (a one-token answer could not tell them apart: name the labels by other words), or
            ``bias`` is outside ``1..100``.
    """
    ### BEGIN SOLUTION
    if not isinstance(words, (list, tuple)) or not all(isinstance(w, str) for w in words):
        raise TypeError("words must be a list or tuple of str")
    if isinstance(bias, bool) or not isinstance(bias, int):
        raise TypeError(f"bias must be an int, got {type(bias).__name__}")
    if not 1 <= bias <= MAX_BIAS:
        raise ValueError(f"bias must be between 1 and {MAX_BIAS}, got {bias}")
    if len(words) < 2:
        raise ValueError(f"need at least two label words, got {len(words)}")
    first = {}
    for word in words:
        ids = tokenizer.encode(word, add_special_tokens=False)
        if not ids:
            raise ValueError(f"the label word {word!r} encodes to no token")
        key = str(ids[0])
        if key in first:
            raise ValueError(f"the label words {first[key]!r} and {word!r} share their first token ({key}): a "
                             "one-token answer could not tell them apart")
        first[key] = word
    return {key: bias for key in first}
    ### END SOLUTION


def classify_remote(client, model, reviews, *, concurrency=4, max_retries=5, logit_bias=None):
    """Label every review with a chat model behind an OpenAI-compatible endpoint.

    Args:
        client: an ``openai.OpenAI`` client (its ``base_url``, key and ``timeout`` say where and how long).
        model: the model name sent with every request.
        reviews: a list (or tuple) of review texts (str).
        concurrency: the most requests in flight at any moment (an int >= 1).
        max_retries: the most retries per review after its first attempt (an int >= 0), so a review is
            sent at most ``max_retries + 1`` times.
        logit_bias: None (free-text answers), or a ``logit_bias`` map (as made by ``label_logit_bias``)
            passed on to every request: see below.

    Returns:
        ``list[Result]``: one per review, in the order of ``reviews``, whatever order the answers came in.

    Requests: one attempt is one call
    ``client.with_options(max_retries=0).chat.completions.create(**make_request(model, review,
    logit_bias))``: with a ``logit_bias`` map the request carries it and asks for a single answer token,
    which ``parse_label`` reads like any other answer (it reads the label words when each is one token,
    as ``"negative"`` and ``"positive"`` are for SmolLM2). The
    SDK retries on its own by default (twice, with its own waits); switching that off makes one attempt
    exactly one HTTP request, so that ``attempts`` counts requests and the waits are yours. Requests
    for different reviews run concurrently, up to ``concurrency`` at a time (as long as no request fails,
    ``min(concurrency, len(reviews))`` are in flight together at the start); a review is never sent
    again once it has its answer.

    The outcome of one attempt:

    * an **answer** (HTTP 200 with a readable completion) ends the review: ``label`` is
      ``parse_label`` of ``choices[0].message.content`` (``None`` content reads as ``""``), ``error`` is
      None, and the tokens come from the answer's ``usage`` (0 when it has none);
    * a **retryable failure**: HTTP 429, HTTP 5xx, a timeout (``openai.APITimeoutError``), a failed
      connection (``openai.APIConnectionError``), or an HTTP 200 whose body is not a readable completion
      (not JSON, or no ``choices``);
    * a **final failure**: any other HTTP error (400, 401, 403, 404, 422...): never retried.

    Before retry ``n`` (n = 1, 2, ...) the review waits ``min(MAX_DELAY, BASE_DELAY * 2**(n-1))``
    times a random factor drawn uniformly from [0.5, 1] (the jitter). When the failed answer carries a
    ``Retry-After`` header holding a number of seconds (``"2"``, ``"0.5"``), the wait is the larger of
    that number and the jittered backoff (a value that is not a number, such as an HTTP date, is
    ignored). A review whose last allowed attempt fails, or that meets a final failure, gets
    ``Result(label=None, error=<a non-empty description, e.g. "HTTP 429 after 6 attempts">,
    attempts=<requests sent>)``; nothing is raised for it, and the other reviews go on.

    Raises:
        TypeError: if ``reviews`` is not a list or tuple of str.
        ValueError: if ``concurrency < 1`` or ``max_retries < 0``.
    """
    ### BEGIN SOLUTION
    if not isinstance(reviews, (list, tuple)) or not all(isinstance(r, str) for r in reviews):
        raise TypeError("reviews must be a list of str")
    if isinstance(concurrency, bool) or not isinstance(concurrency, int) or concurrency < 1:
        raise ValueError(f"concurrency must be an int >= 1, got {concurrency!r}")
    if isinstance(max_retries, bool) or not isinstance(max_retries, int) or max_retries < 0:
        raise ValueError(f"max_retries must be an int >= 0, got {max_retries!r}")
    if not reviews:
        return []
    api = client.with_options(max_retries=0)
    results = [None] * len(reviews)

    def _retry_after_seconds(value):
        """Seconds from a Retry-After value, or None when it holds no finite number >= 0."""
        try:
            seconds = float(value)
        except (TypeError, ValueError):
            return None
        return seconds if 0 <= seconds < float("inf") else None

    def _one(index):
        review = reviews[index]
        attempts = 0
        while True:
            attempts += 1
            retry_after = None
            try:
                response = api.chat.completions.create(**make_request(model, review, logit_bias))
                content = response.choices[0].message.content
                usage = response.usage
            except openai.APIStatusError as exc:
                status = exc.status_code
                if status != 429 and status < 500:
                    return Result(None, f"HTTP {status} (not retried): {exc.message}", attempts)
                error = f"HTTP {status}"
                retry_after = _retry_after_seconds(exc.response.headers.get("retry-after"))
            except openai.APITimeoutError:
                error = "timeout"
            except openai.APIConnectionError:
                error = "connection error"
            except (openai.APIResponseValidationError, ValueError, TypeError, AttributeError, IndexError,
                    KeyError) as exc:
                error = f"malformed answer ({type(exc).__name__})"
            else:
                prompt = getattr(usage, "prompt_tokens", 0) or 0
                completion = getattr(usage, "completion_tokens", 0) or 0
                return Result(parse_label(content or ""), None, attempts, prompt, completion)
            if attempts > max_retries:
                return Result(None, f"{error} after {attempts} attempts", attempts)
            wait = min(MAX_DELAY, BASE_DELAY * 2 ** (attempts - 1)) * random.uniform(0.5, 1.0)
            if retry_after is not None:
                wait = max(wait, retry_after)
            time.sleep(wait)

    with ThreadPoolExecutor(max_workers=min(concurrency, len(reviews))) as pool:
        for index, result in enumerate(pool.map(_one, range(len(reviews)))):
            results[index] = result
    return results
    ### END SOLUTION
