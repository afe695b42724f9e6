"""Alternative correct ``imdb_remote_llm``: an asyncio event loop, the blocking client run with
``asyncio.to_thread`` under an ``asyncio.Semaphore``, ``asyncio.gather`` keeping the order;
``parse_label`` with one regex that yields words and clause breaks; ``Result`` is a NamedTuple."""
from __future__ import annotations

import asyncio
import math
import random
import re
from typing import NamedTuple, Optional

import openai

SYSTEM_PROMPT = ("You are a sentiment classifier. "
                 "Reply with exactly one word: positive or negative.")
MAX_TOKENS, BASE_DELAY, MAX_DELAY = 12, 0.1, 8.0  # answer length; first backoff and cap, in seconds
NEGATORS = frozenset("not no never neither nor cannot non".split())


class Result(NamedTuple):
    label: Optional[int]
    error: Optional[str]
    attempts: int
    prompt_tokens: int = 0
    completion_tokens: int = 0


def make_request(model, review, logit_bias=None):
    messages = [{"role": "system", "content": SYSTEM_PROMPT},
                {"role": "user", "content": f"Movie review:\n{review}\n\nSentiment (positive or negative):"}]
    biased = {} if logit_bias is None else {"logit_bias": dict(logit_bias)}
    return {"model": model, "messages": messages, "temperature": 0,
            "max_tokens": MAX_TOKENS if logit_bias is None else 1, **biased}


def parse_label(text):
    if type(text) is not str and not isinstance(text, str):
        raise TypeError("text must be a str")
    pieces = re.finditer(r"(?P<w>[a-z]+(?:'[a-z]+)*)|(?P<b>[.,;:!?\r\n])", text.lower().replace("\u2019", "'"))
    clause: list[str] = []
    votes = []
    for m in pieces:
        word = m.group("w")
        if word is None or word == "but":
            clause = []
            continue
        if word in ("positive", "negative"):
            flipped = any(w in NEGATORS or w.endswith("n't") for w in clause[-3:])
            votes.append((word == "positive") != flipped)
        clause.append(word)
    if votes and all(votes):
        return 1
    if votes and not any(votes):
        return 0
    return None


def _backoff(n):
    return min(MAX_DELAY, BASE_DELAY * math.pow(2, n - 1)) * random.uniform(0.5, 1)


async def _one(api, model, review, limit, max_retries, logit_bias):
    error = ""
    for n in range(1, max_retries + 2):
        server_wait = 0.0
        try:
            async with limit:
                reply = await asyncio.to_thread(api.chat.completions.create,
                                                **make_request(model, review, logit_bias))
            content = reply.choices[0].message.content
        except openai.APIStatusError as exc:
            code = exc.status_code
            if 400 <= code < 500 and code != 429:
                return Result(None, f"{code}: {exc.message}", n)
            error = f"status {code}"
            try:
                server_wait = max(0.0, float(exc.response.headers["retry-after"]))
            except (KeyError, ValueError):
                server_wait = 0.0
        except (openai.APITimeoutError, openai.APIConnectionError) as exc:
            error = exc.__class__.__name__
        except Exception as exc:  # noqa: BLE001 - a body that is not a completion
            error = f"bad body ({exc.__class__.__name__})"
        else:
            u = reply.usage
            return Result(parse_label(content or ""), None, n, getattr(u, "prompt_tokens", 0) or 0,
                          getattr(u, "completion_tokens", 0) or 0)
        if n <= max_retries:
            await asyncio.sleep(max(server_wait, _backoff(n)))
    return Result(None, f"{error}, {max_retries + 1} attempts", max_retries + 1)


async def _all(client, model, reviews, concurrency, max_retries, logit_bias):
    api = client.with_options(max_retries=0)
    limit = asyncio.Semaphore(concurrency)
    return list(await asyncio.gather(*(_one(api, model, r, limit, max_retries, logit_bias) for r in reviews)))


def label_logit_bias(tokenizer, words=("negative", "positive"), *, bias=100):
    if not isinstance(words, (list, tuple)):
        raise TypeError("words must be a sequence of str")
    for word in words:
        if not isinstance(word, str):
            raise TypeError("words must be a sequence of str")
    if isinstance(bias, bool) or not isinstance(bias, int):
        raise TypeError("bias must be an int")
    if not 0 < bias <= 100:
        raise ValueError("bias out of range")
    if len(words) < 2:
        raise ValueError("two labels at least")
    out = {}
    for word in words:
        pieces = tokenizer.tokenize(word)
        if not pieces:
            raise ValueError(f"{word!r} has no token")
        key = str(tokenizer.convert_tokens_to_ids(pieces[0]))
        if key in out:
            raise ValueError(f"{word!r} shares its first token with another label")
        out[key] = bias
    return out


def classify_remote(client, model, reviews, *, concurrency=4, max_retries=5, logit_bias=None):
    if not isinstance(reviews, list) and not isinstance(reviews, tuple):
        raise TypeError("reviews must be a list of str")
    if any(not isinstance(r, str) for r in reviews):
        raise TypeError("reviews must be a list of str")
    if concurrency < 1:
        raise ValueError("concurrency must be at least 1")
    if max_retries < 0:
        raise ValueError("max_retries must be at least 0")
    return asyncio.run(_all(client, model, list(reviews), concurrency, max_retries, logit_bias))
