"""Alternative correct ``imdb_remote_llm``: a thread per review, a semaphore around each request (sleeping
reviews hold no slot), results written into their slot; ``parse_label`` by a hand-written scanner."""
from __future__ import annotations

import random
import threading
import time

import openai

SYSTEM_PROMPT = "You are a sentiment classifier. Reply with exactly one word: positive or negative."
MAX_TOKENS = 12
BASE_DELAY = 0.1
MAX_DELAY = 8.0
NEGATORS = ("not", "no", "never", "neither", "nor", "cannot", "non")


class Result:
    """One review's outcome, a plain class with slots."""
    __slots__ = ("label", "error", "attempts", "prompt_tokens", "completion_tokens")

    def __init__(self, label, error, attempts, prompt_tokens=0, completion_tokens=0):
        self.label, self.error, self.attempts = label, error, attempts
        self.prompt_tokens, self.completion_tokens = prompt_tokens, completion_tokens

    def __repr__(self):
        return "Result(" + ", ".join(f"{k}={getattr(self, k)!r}" for k in self.__slots__) + ")"

    def __eq__(self, other):
        if type(other) is not Result:
            return NotImplemented
        return all(getattr(self, k) == getattr(other, k) for k in self.__slots__)


def make_request(model, review, logit_bias=None):
    prompt = "Movie review:\n{}\n\nSentiment (positive or negative):".format(review)
    request = dict(model=model, temperature=0, max_tokens=MAX_TOKENS,
                   messages=[dict(role="system", content=SYSTEM_PROMPT), dict(role="user", content=prompt)])
    if logit_bias is not None:
        request["logit_bias"] = dict(logit_bias)
        request["max_tokens"] = 1  # one token: the biased label word the model likes best
    return request


def _tokens(text):
    """Words and clause breaks, scanning characters: ('w', word) / ('|', None)."""
    out, word = [], ""
    s = text.lower().replace("\u2019", "'")
    for i, ch in enumerate(s):
        if "a" <= ch <= "z":
            word += ch
            continue
        if ch == "'" and word and i + 1 < len(s) and "a" <= s[i + 1] <= "z":
            word += ch
            continue
        if word:
            out.append(("|", None) if word == "but" else ("w", word))
            word = ""
        if ch in ".,;:!?\n\r":
            out.append(("|", None))
    if word:
        out.append(("|", None) if word == "but" else ("w", word))
    return out


def parse_label(text):
    if not isinstance(text, str):
        raise TypeError("parse_label expects a str")
    seen = []  # words of the current clause
    labels = set()
    for kind, word in _tokens(text):
        if kind == "|":
            seen = []
            continue
        if word == "positive" or word == "negative":
            value = int(word == "positive")
            window = seen[-3:]
            if any(w in NEGATORS or w.endswith("n't") for w in window):
                value = 1 - value
            labels.add(value)
        seen.append(word)
    if len(labels) != 1:
        return None
    return labels.pop()


def _seconds(header):
    if header is None:
        return None
    try:
        value = float(header)
    except ValueError:
        return None
    if value != value or value in (float("inf"),) or value < 0:
        return None
    return value


def label_logit_bias(tokenizer, words=("negative", "positive"), *, bias=100):
    if type(words) not in (list, tuple) or any(type(w) is not str for w in words):
        raise TypeError("words must be a list or tuple of str")
    if type(bias) is not int:
        raise TypeError("bias must be an int")
    if bias < 1 or bias > 100 or len(words) < 2:
        raise ValueError("bias must be in 1..100 and there must be two words or more")
    heads = [tokenizer(w, add_special_tokens=False)["input_ids"][:1] for w in words]
    if not all(heads):
        raise ValueError("a label word has no token")
    ids = [str(h[0]) for h in heads]
    if len(set(ids)) < len(ids):
        raise ValueError("two label words start with the same token")
    return dict.fromkeys(ids, bias)


def classify_remote(client, model, reviews, *, concurrency=4, max_retries=5, logit_bias=None):
    if not isinstance(reviews, (list, tuple)):
        raise TypeError("reviews must be a list of str")
    for r in reviews:
        if not isinstance(r, str):
            raise TypeError("reviews must be a list of str")
    if not isinstance(concurrency, int) or concurrency < 1:
        raise ValueError("concurrency must be >= 1")
    if not isinstance(max_retries, int) or max_retries < 0:
        raise ValueError("max_retries must be >= 0")
    api = client.with_options(max_retries=0)
    slots = threading.BoundedSemaphore(concurrency)
    results = [None] * len(reviews)

    def work(i):
        last = "no attempt"
        for attempt in range(1, max_retries + 2):
            hint = None
            with slots:
                try:
                    reply = api.chat.completions.create(**make_request(model, reviews[i], logit_bias))
                    text = reply.choices[0].message.content
                    usage = reply.usage
                except openai.RateLimitError as exc:
                    last, hint = "rate limited (429)", _seconds(exc.response.headers.get("Retry-After"))
                except openai.APIStatusError as exc:
                    if exc.status_code < 500:
                        results[i] = Result(None, f"client error {exc.status_code}", attempt)
                        return
                    last, hint = f"server error {exc.status_code}", _seconds(exc.response.headers.get("Retry-After"))
                except openai.APIError as exc:  # timeouts, connection errors, unreadable bodies
                    last = type(exc).__name__
                except (ValueError, LookupError, AttributeError, TypeError) as exc:
                    last = f"unreadable answer: {type(exc).__name__}"
                else:
                    results[i] = Result(parse_label(text if text is not None else ""), None, attempt,
                                        usage.prompt_tokens if usage else 0, usage.completion_tokens if usage else 0)
                    return
            if attempt <= max_retries:
                pause = min(MAX_DELAY, BASE_DELAY * (2 ** (attempt - 1))) * (0.5 + 0.5 * random.random())
                time.sleep(pause if hint is None else max(pause, hint))
        results[i] = Result(None, f"gave up: {last} ({max_retries + 1} attempts)", max_retries + 1)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(len(reviews))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results
