"""Realistic buggy variants of ``imdb_remote_llm``: one mistake each, as students make them.

``parse_label`` variants get the reading rules wrong (negation, whole words, clause breaks, case,
ambiguity); ``classify_remote`` variants get the network wrong (what to retry, how long to wait, how
many requests at once, where results go). Each replacement is a complete function: the rest of the
reference module (``Result``, ``make_request``, ``parse_label``, the constants, ``openai``, ``random``,
``time``, ``ThreadPoolExecutor``) is in scope, as in a student's module.
"""
import re

from llmlab.grading.variants import Variants

bugs = Variants("imdb_remote_llm")


# =============================================================================================
# parse_label
# =============================================================================================
@bugs.bug("ignores_negation", replaces="parse_label",
          mistake="a negated label is read as that label: in 'not negative at all' or \"isn't positive\" the negator "
                  "(within the 3 words before the label, same clause) flips it to the opposite label")
def parse_label_ignores_negation(text):
    if not isinstance(text, str):
        raise TypeError("text must be a str")
    words = set(re.findall(r"[a-z]+(?:'[a-z]+)*", text.lower().replace("\u2019", "'")))
    found = {label for word, label in (("positive", 1), ("negative", 0)) if word in words}
    return found.pop() if len(found) == 1 else None


@bugs.bug("negated_label_dropped", replaces="parse_label",
          mistake="a negated label is skipped instead of flipped: in a two-label question 'not negative' names "
                  "positive, and \"isn't positive\" names negative")
def parse_label_drops_negated(text):
    if not isinstance(text, str):
        raise TypeError("text must be a str")
    named = set()
    for clause in re.split(r"[.,;:!?\n\r]|\bbut\b", text.lower().replace("\u2019", "'")):
        words = re.findall(r"[a-z]+(?:'[a-z]+)*", clause)
        for i, word in enumerate(words):
            if word in ("positive", "negative"):
                if not any(w in NEGATORS or w.endswith("n't") for w in words[max(0, i - 3):i]):  # noqa: F821
                    named.add(1 if word == "positive" else 0)
    return named.pop() if len(named) == 1 else None


@bugs.bug("substring_match", replaces="parse_label",
          mistake="labels are found as substrings: 'positively', 'negatives' or 'nonnegative' are not the words "
                  "positive/negative, and negations are ignored")
def parse_label_substrings(text):
    if not isinstance(text, str):
        raise TypeError("text must be a str")
    t = text.lower()
    pos, neg = "positive" in t, "negative" in t
    if pos == neg:
        return None
    return 1 if pos else 0


@bugs.bug("first_label_wins", replaces="parse_label",
          mistake="when an answer names both labels ('positive or negative', 'neither positive nor negative'), the "
                  "first one is returned: the answer is None when the mentions disagree")
def parse_label_first_wins(text):
    if not isinstance(text, str):
        raise TypeError("text must be a str")
    for clause in re.split(r"[.,;:!?\n\r]|\bbut\b", text.lower().replace("\u2019", "'")):
        words = re.findall(r"[a-z]+(?:'[a-z]+)*", clause)
        for i, word in enumerate(words):
            if word in ("positive", "negative"):
                label = 1 if word == "positive" else 0
                if any(w in NEGATORS or w.endswith("n't") for w in words[max(0, i - 3):i]):  # noqa: F821
                    label = 1 - label
                return label
    return None


@bugs.bug("case_sensitive", replaces="parse_label",
          mistake="the match is case-sensitive: 'Positive.', 'NEGATIVE' and 'Not negative' are labels (and negators) "
                  "too; lower-case the text first")
def parse_label_case_sensitive(text):
    if not isinstance(text, str):
        raise TypeError("text must be a str")
    named = set()
    for clause in re.split(r"[.,;:!?\n\r]|\bbut\b", text.replace("\u2019", "'")):
        words = re.findall(r"[A-Za-z]+(?:'[A-Za-z]+)*", clause)
        for i, word in enumerate(words):
            if word in ("positive", "negative"):
                label = 1 if word == "positive" else 0
                if any(w in NEGATORS or w.endswith("n't") for w in words[max(0, i - 3):i]):  # noqa: F821
                    label = 1 - label
                named.add(label)
    return named.pop() if len(named) == 1 else None


@bugs.bug("negation_crosses_clauses", replaces="parse_label",
          mistake="a negator reaches across a clause break: in 'Not sure, but positive' the 'not' belongs to another "
                  "clause (. , ; : ! ? a line break or 'but' end a negation's reach)")
def parse_label_no_clauses(text):
    if not isinstance(text, str):
        raise TypeError("text must be a str")
    named = set()
    words = re.findall(r"[a-z]+(?:'[a-z]+)*", text.lower().replace("\u2019", "'"))
    for i, word in enumerate(words):
        if word in ("positive", "negative"):
            label = 1 if word == "positive" else 0
            if any(w in NEGATORS or w.endswith("n't") for w in words[max(0, i - 3):i]):  # noqa: F821
                label = 1 - label
            named.add(label)
    return named.pop() if len(named) == 1 else None


# =============================================================================================
# classify_remote. Names from the reference module: Result, make_request, parse_label, BASE_DELAY,
# MAX_DELAY, openai, random, time, ThreadPoolExecutor (hence the noqa: F821 below).
# =============================================================================================
# ruff: noqa: F821
@bugs.bug("results_in_completion_order", replaces="classify_remote",
          mistake="results are collected in the order the answers arrive (as_completed, or appending from each "
                  "thread): result i must belong to review i")
def classify_completion_order(client, model, reviews, *, concurrency=4, max_retries=5):
    from concurrent.futures import as_completed

    if not isinstance(reviews, (list, tuple)) or not all(isinstance(r, str) for r in reviews):
        raise TypeError("reviews must be a list of str")
    if concurrency < 1 or max_retries < 0:
        raise ValueError("concurrency must be >= 1 and max_retries >= 0")
    api = client.with_options(max_retries=0)

    def one(review):
        attempts = 0
        while True:
            attempts += 1
            retry_after = None
            try:
                response = api.chat.completions.create(**make_request(model, review))
                content = response.choices[0].message.content
            except openai.APIStatusError as exc:
                if exc.status_code != 429 and exc.status_code < 500:
                    return Result(None, f"HTTP {exc.status_code}", attempts)
                error = f"HTTP {exc.status_code}"
                try:
                    retry_after = float(exc.response.headers.get("retry-after"))
                except (TypeError, ValueError):
                    pass
            except (openai.APIConnectionError, ValueError, IndexError, AttributeError) as exc:
                error = type(exc).__name__
            else:
                usage = response.usage
                return Result(parse_label(content or ""), None, attempts, getattr(usage, "prompt_tokens", 0) or 0,
                              getattr(usage, "completion_tokens", 0) or 0)
            if attempts > max_retries:
                return Result(None, f"{error} after {attempts} attempts", attempts)
            wait = min(MAX_DELAY, BASE_DELAY * 2 ** (attempts - 1)) * random.uniform(0.5, 1.0)
            time.sleep(max(wait, retry_after or 0))

    results = []
    with ThreadPoolExecutor(max_workers=concurrency) as pool:
        for future in as_completed([pool.submit(one, r) for r in reviews]):
            results.append(future.result())
    return results


@bugs.bug("unbounded_concurrency", replaces="classify_remote",
          mistake="every review is sent at once (one thread per review): at most `concurrency` requests may be in "
                  "flight, e.g. ThreadPoolExecutor(max_workers=concurrency)")
def classify_unbounded(client, model, reviews, *, concurrency=4, max_retries=5):
    if not isinstance(reviews, (list, tuple)) or not all(isinstance(r, str) for r in reviews):
        raise TypeError("reviews must be a list of str")
    if concurrency < 1 or max_retries < 0:
        raise ValueError("concurrency must be >= 1 and max_retries >= 0")
    api = client.with_options(max_retries=0)

    def one(review):
        attempts = 0
        while True:
            attempts += 1
            retry_after = None
            try:
                response = api.chat.completions.create(**make_request(model, review))
                content = response.choices[0].message.content
            except openai.APIStatusError as exc:
                if exc.status_code != 429 and exc.status_code < 500:
                    return Result(None, f"HTTP {exc.status_code}", attempts)
                error = f"HTTP {exc.status_code}"
                try:
                    retry_after = float(exc.response.headers.get("retry-after"))
                except (TypeError, ValueError):
                    pass
            except (openai.APIConnectionError, ValueError, IndexError, AttributeError) as exc:
                error = type(exc).__name__
            else:
                usage = response.usage
                return Result(parse_label(content or ""), None, attempts, getattr(usage, "prompt_tokens", 0) or 0,
                              getattr(usage, "completion_tokens", 0) or 0)
            if attempts > max_retries:
                return Result(None, f"{error} after {attempts} attempts", attempts)
            wait = min(MAX_DELAY, BASE_DELAY * 2 ** (attempts - 1)) * random.uniform(0.5, 1.0)
            time.sleep(max(wait, retry_after or 0))

    if not reviews:
        return []
    with ThreadPoolExecutor(max_workers=len(reviews)) as pool:
        return list(pool.map(one, reviews))


@bugs.bug("sequential_requests", replaces="classify_remote",
          mistake="reviews are sent one at a time: `concurrency` requests should be in flight together (a thread "
                  "pool of `concurrency` workers)")
def classify_sequential(client, model, reviews, *, concurrency=4, max_retries=5):
    if not isinstance(reviews, (list, tuple)) or not all(isinstance(r, str) for r in reviews):
        raise TypeError("reviews must be a list of str")
    if concurrency < 1 or max_retries < 0:
        raise ValueError("concurrency must be >= 1 and max_retries >= 0")
    api = client.with_options(max_retries=0)
    results = []
    for review in reviews:
        attempts = 0
        while True:
            attempts += 1
            retry_after = None
            try:
                response = api.chat.completions.create(**make_request(model, review))
                content = response.choices[0].message.content
            except openai.APIStatusError as exc:
                if exc.status_code != 429 and exc.status_code < 500:
                    results.append(Result(None, f"HTTP {exc.status_code}", attempts))
                    break
                error = f"HTTP {exc.status_code}"
                try:
                    retry_after = float(exc.response.headers.get("retry-after"))
                except (TypeError, ValueError):
                    pass
            except (openai.APIConnectionError, ValueError, IndexError, AttributeError) as exc:
                error = type(exc).__name__
            else:
                usage = response.usage
                results.append(Result(parse_label(content or ""), None, attempts,
                                      getattr(usage, "prompt_tokens", 0) or 0,
                                      getattr(usage, "completion_tokens", 0) or 0))
                break
            if attempts > max_retries:
                results.append(Result(None, f"{error} after {attempts} attempts", attempts))
                break
            wait = min(MAX_DELAY, BASE_DELAY * 2 ** (attempts - 1)) * random.uniform(0.5, 1.0)
            time.sleep(max(wait, retry_after or 0))
    return results


@bugs.bug("retries_client_errors", replaces="classify_remote",
          mistake="every HTTP error is retried: 400, 401, 403, 404, 422 fail the same way every time and are final; "
                  "retry only 429, 5xx, timeouts, connection errors and malformed answers")
def classify_retries_4xx(client, model, reviews, *, concurrency=4, max_retries=5):
    if not isinstance(reviews, (list, tuple)) or not all(isinstance(r, str) for r in reviews):
        raise TypeError("reviews must be a list of str")
    if concurrency < 1 or max_retries < 0:
        raise ValueError("concurrency must be >= 1 and max_retries >= 0")
    api = client.with_options(max_retries=0)

    def one(review):
        attempts = 0
        while True:
            attempts += 1
            retry_after = None
            try:
                response = api.chat.completions.create(**make_request(model, review))
                content = response.choices[0].message.content
            except openai.APIStatusError as exc:
                error = f"HTTP {exc.status_code}"
                try:
                    retry_after = float(exc.response.headers.get("retry-after"))
                except (TypeError, ValueError):
                    pass
            except (openai.APIConnectionError, ValueError, IndexError, AttributeError) as exc:
                error = type(exc).__name__
            else:
                usage = response.usage
                return Result(parse_label(content or ""), None, attempts, getattr(usage, "prompt_tokens", 0) or 0,
                              getattr(usage, "completion_tokens", 0) or 0)
            if attempts > max_retries:
                return Result(None, f"{error} after {attempts} attempts", attempts)
            wait = min(MAX_DELAY, BASE_DELAY * 2 ** (attempts - 1)) * random.uniform(0.5, 1.0)
            time.sleep(max(wait, retry_after or 0))

    with ThreadPoolExecutor(max_workers=concurrency) as pool:
        return list(pool.map(one, reviews))


@bugs.bug("no_retry_on_server_errors", replaces="classify_remote",
          mistake="only 429 is retried: 5xx answers, timeouts, connection errors and malformed answers are "
                  "passing failures too, worth a retry")
def classify_only_429(client, model, reviews, *, concurrency=4, max_retries=5):
    if not isinstance(reviews, (list, tuple)) or not all(isinstance(r, str) for r in reviews):
        raise TypeError("reviews must be a list of str")
    if concurrency < 1 or max_retries < 0:
        raise ValueError("concurrency must be >= 1 and max_retries >= 0")
    api = client.with_options(max_retries=0)

    def one(review):
        attempts = 0
        while True:
            attempts += 1
            retry_after = None
            try:
                response = api.chat.completions.create(**make_request(model, review))
                content = response.choices[0].message.content
            except openai.RateLimitError as exc:
                error = "HTTP 429"
                try:
                    retry_after = float(exc.response.headers.get("retry-after"))
                except (TypeError, ValueError):
                    pass
            except (openai.APIError, ValueError, IndexError, AttributeError) as exc:
                return Result(None, f"{type(exc).__name__}: {exc}", attempts)
            else:
                usage = response.usage
                return Result(parse_label(content or ""), None, attempts, getattr(usage, "prompt_tokens", 0) or 0,
                              getattr(usage, "completion_tokens", 0) or 0)
            if attempts > max_retries:
                return Result(None, f"{error} after {attempts} attempts", attempts)
            wait = min(MAX_DELAY, BASE_DELAY * 2 ** (attempts - 1)) * random.uniform(0.5, 1.0)
            time.sleep(max(wait, retry_after or 0))

    with ThreadPoolExecutor(max_workers=concurrency) as pool:
        return list(pool.map(one, reviews))


@bugs.bug("ignores_retry_after", replaces="classify_remote",
          mistake="the Retry-After header is ignored: when a 429/503 answer says how many seconds to wait, wait at "
                  "least that long (it is in exc.response.headers)")
def classify_no_retry_after(client, model, reviews, *, concurrency=4, max_retries=5):
    if not isinstance(reviews, (list, tuple)) or not all(isinstance(r, str) for r in reviews):
        raise TypeError("reviews must be a list of str")
    if concurrency < 1 or max_retries < 0:
        raise ValueError("concurrency must be >= 1 and max_retries >= 0")
    api = client.with_options(max_retries=0)

    def one(review):
        attempts = 0
        while True:
            attempts += 1
            try:
                response = api.chat.completions.create(**make_request(model, review))
                content = response.choices[0].message.content
            except openai.APIStatusError as exc:
                if exc.status_code != 429 and exc.status_code < 500:
                    return Result(None, f"HTTP {exc.status_code}", attempts)
                error = f"HTTP {exc.status_code}"
            except (openai.APIConnectionError, ValueError, IndexError, AttributeError) as exc:
                error = type(exc).__name__
            else:
                usage = response.usage
                return Result(parse_label(content or ""), None, attempts, getattr(usage, "prompt_tokens", 0) or 0,
                              getattr(usage, "completion_tokens", 0) or 0)
            if attempts > max_retries:
                return Result(None, f"{error} after {attempts} attempts", attempts)
            time.sleep(min(MAX_DELAY, BASE_DELAY * 2 ** (attempts - 1)) * random.uniform(0.5, 1.0))

    with ThreadPoolExecutor(max_workers=concurrency) as pool:
        return list(pool.map(one, reviews))


@bugs.bug("drops_failed_reviews", replaces="classify_remote",
          mistake="a review whose retries ran out (or that got a final error) is left out of the results: every "
                  "review gets a Result, with label=None and the error written in it")
def classify_drops(client, model, reviews, *, concurrency=4, max_retries=5):
    if not isinstance(reviews, (list, tuple)) or not all(isinstance(r, str) for r in reviews):
        raise TypeError("reviews must be a list of str")
    if concurrency < 1 or max_retries < 0:
        raise ValueError("concurrency must be >= 1 and max_retries >= 0")
    api = client.with_options(max_retries=0)

    def one(review):
        attempts = 0
        while True:
            attempts += 1
            retry_after = None
            try:
                response = api.chat.completions.create(**make_request(model, review))
                content = response.choices[0].message.content
            except openai.APIStatusError as exc:
                if exc.status_code != 429 and exc.status_code < 500:
                    return None
                try:
                    retry_after = float(exc.response.headers.get("retry-after"))
                except (TypeError, ValueError):
                    pass
            except (openai.APIConnectionError, ValueError, IndexError, AttributeError):
                pass
            else:
                usage = response.usage
                return Result(parse_label(content or ""), None, attempts, getattr(usage, "prompt_tokens", 0) or 0,
                              getattr(usage, "completion_tokens", 0) or 0)
            if attempts > max_retries:
                return None
            wait = min(MAX_DELAY, BASE_DELAY * 2 ** (attempts - 1)) * random.uniform(0.5, 1.0)
            time.sleep(max(wait, retry_after or 0))

    with ThreadPoolExecutor(max_workers=concurrency) as pool:
        return [r for r in pool.map(one, reviews) if r is not None]


@bugs.bug("raises_after_last_retry", replaces="classify_remote",
          mistake="the last error is raised when a review runs out of retries (or is not retried): that stops the "
                  "whole batch; catch it and give that review Result(label=None, error=...) instead")
def classify_raises(client, model, reviews, *, concurrency=4, max_retries=5):
    if not isinstance(reviews, (list, tuple)) or not all(isinstance(r, str) for r in reviews):
        raise TypeError("reviews must be a list of str")
    if concurrency < 1 or max_retries < 0:
        raise ValueError("concurrency must be >= 1 and max_retries >= 0")
    api = client.with_options(max_retries=0)

    def one(review):
        attempts = 0
        while True:
            attempts += 1
            retry_after = None
            try:
                response = api.chat.completions.create(**make_request(model, review))
                content = response.choices[0].message.content
            except openai.APIStatusError as exc:
                if (exc.status_code != 429 and exc.status_code < 500) or attempts > max_retries:
                    raise
                try:
                    retry_after = float(exc.response.headers.get("retry-after"))
                except (TypeError, ValueError):
                    pass
            except (openai.APIConnectionError, ValueError, IndexError, AttributeError):
                if attempts > max_retries:
                    raise
            else:
                usage = response.usage
                return Result(parse_label(content or ""), None, attempts, getattr(usage, "prompt_tokens", 0) or 0,
                              getattr(usage, "completion_tokens", 0) or 0)
            wait = min(MAX_DELAY, BASE_DELAY * 2 ** (attempts - 1)) * random.uniform(0.5, 1.0)
            time.sleep(max(wait, retry_after or 0))

    with ThreadPoolExecutor(max_workers=concurrency) as pool:
        return list(pool.map(one, reviews))


@bugs.bug("max_retries_counts_attempts", replaces="classify_remote",
          mistake="max_retries is used as the number of attempts: the first request is not a retry, so a failing "
                  "review is sent max_retries + 1 times")
def classify_off_by_one(client, model, reviews, *, concurrency=4, max_retries=5):
    if not isinstance(reviews, (list, tuple)) or not all(isinstance(r, str) for r in reviews):
        raise TypeError("reviews must be a list of str")
    if concurrency < 1 or max_retries < 0:
        raise ValueError("concurrency must be >= 1 and max_retries >= 0")
    api = client.with_options(max_retries=0)

    def one(review):
        attempts = 0
        while True:
            attempts += 1
            retry_after = None
            try:
                response = api.chat.completions.create(**make_request(model, review))
                content = response.choices[0].message.content
            except openai.APIStatusError as exc:
                if exc.status_code != 429 and exc.status_code < 500:
                    return Result(None, f"HTTP {exc.status_code}", attempts)
                error = f"HTTP {exc.status_code}"
                try:
                    retry_after = float(exc.response.headers.get("retry-after"))
                except (TypeError, ValueError):
                    pass
            except (openai.APIConnectionError, ValueError, IndexError, AttributeError) as exc:
                error = type(exc).__name__
            else:
                usage = response.usage
                return Result(parse_label(content or ""), None, attempts, getattr(usage, "prompt_tokens", 0) or 0,
                              getattr(usage, "completion_tokens", 0) or 0)
            if attempts >= max_retries:
                return Result(None, f"{error} after {attempts} attempts", attempts)
            wait = min(MAX_DELAY, BASE_DELAY * 2 ** (attempts - 1)) * random.uniform(0.5, 1.0)
            time.sleep(max(wait, retry_after or 0))

    with ThreadPoolExecutor(max_workers=concurrency) as pool:
        return list(pool.map(one, reviews))


@bugs.bug("no_backoff", replaces="classify_remote",
          mistake="a failed request is retried at once, with no wait: wait min(MAX_DELAY, BASE_DELAY * 2**(n-1)) "
                  "times a random factor in [0.5, 1] before retry n")
def classify_no_backoff(client, model, reviews, *, concurrency=4, max_retries=5):
    if not isinstance(reviews, (list, tuple)) or not all(isinstance(r, str) for r in reviews):
        raise TypeError("reviews must be a list of str")
    if concurrency < 1 or max_retries < 0:
        raise ValueError("concurrency must be >= 1 and max_retries >= 0")
    api = client.with_options(max_retries=0)

    def one(review):
        attempts = 0
        while True:
            attempts += 1
            retry_after = None
            try:
                response = api.chat.completions.create(**make_request(model, review))
                content = response.choices[0].message.content
            except openai.APIStatusError as exc:
                if exc.status_code != 429 and exc.status_code < 500:
                    return Result(None, f"HTTP {exc.status_code}", attempts)
                error = f"HTTP {exc.status_code}"
                try:
                    retry_after = float(exc.response.headers.get("retry-after"))
                except (TypeError, ValueError):
                    pass
            except (openai.APIConnectionError, ValueError, IndexError, AttributeError) as exc:
                error = type(exc).__name__
            else:
                usage = response.usage
                return Result(parse_label(content or ""), None, attempts, getattr(usage, "prompt_tokens", 0) or 0,
                              getattr(usage, "completion_tokens", 0) or 0)
            if attempts > max_retries:
                return Result(None, f"{error} after {attempts} attempts", attempts)
            if retry_after:
                time.sleep(retry_after)

    with ThreadPoolExecutor(max_workers=concurrency) as pool:
        return list(pool.map(one, reviews))


@bugs.bug("constant_backoff", replaces="classify_remote",
          mistake="the wait before a retry does not grow: it must double with each retry (BASE_DELAY * 2**(n-1), "
                  "capped at MAX_DELAY), so a struggling server gets more and more room")
def classify_constant_backoff(client, model, reviews, *, concurrency=4, max_retries=5):
    if not isinstance(reviews, (list, tuple)) or not all(isinstance(r, str) for r in reviews):
        raise TypeError("reviews must be a list of str")
    if concurrency < 1 or max_retries < 0:
        raise ValueError("concurrency must be >= 1 and max_retries >= 0")
    api = client.with_options(max_retries=0)

    def one(review):
        attempts = 0
        while True:
            attempts += 1
            retry_after = None
            try:
                response = api.chat.completions.create(**make_request(model, review))
                content = response.choices[0].message.content
            except openai.APIStatusError as exc:
                if exc.status_code != 429 and exc.status_code < 500:
                    return Result(None, f"HTTP {exc.status_code}", attempts)
                error = f"HTTP {exc.status_code}"
                try:
                    retry_after = float(exc.response.headers.get("retry-after"))
                except (TypeError, ValueError):
                    pass
            except (openai.APIConnectionError, ValueError, IndexError, AttributeError) as exc:
                error = type(exc).__name__
            else:
                usage = response.usage
                return Result(parse_label(content or ""), None, attempts, getattr(usage, "prompt_tokens", 0) or 0,
                              getattr(usage, "completion_tokens", 0) or 0)
            if attempts > max_retries:
                return Result(None, f"{error} after {attempts} attempts", attempts)
            time.sleep(max(BASE_DELAY * random.uniform(0.5, 1.0), retry_after or 0))

    with ThreadPoolExecutor(max_workers=concurrency) as pool:
        return list(pool.map(one, reviews))


@bugs.bug("no_jitter", replaces="classify_remote",
          mistake="the backoff has no jitter: multiply each wait by a random factor in [0.5, 1], or every client "
                  "that failed together retries at the same instant")
def classify_no_jitter(client, model, reviews, *, concurrency=4, max_retries=5):
    if not isinstance(reviews, (list, tuple)) or not all(isinstance(r, str) for r in reviews):
        raise TypeError("reviews must be a list of str")
    if concurrency < 1 or max_retries < 0:
        raise ValueError("concurrency must be >= 1 and max_retries >= 0")
    api = client.with_options(max_retries=0)

    def one(review):
        attempts = 0
        while True:
            attempts += 1
            retry_after = None
            try:
                response = api.chat.completions.create(**make_request(model, review))
                content = response.choices[0].message.content
            except openai.APIStatusError as exc:
                if exc.status_code != 429 and exc.status_code < 500:
                    return Result(None, f"HTTP {exc.status_code}", attempts)
                error = f"HTTP {exc.status_code}"
                try:
                    retry_after = float(exc.response.headers.get("retry-after"))
                except (TypeError, ValueError):
                    pass
            except (openai.APIConnectionError, ValueError, IndexError, AttributeError) as exc:
                error = type(exc).__name__
            else:
                usage = response.usage
                return Result(parse_label(content or ""), None, attempts, getattr(usage, "prompt_tokens", 0) or 0,
                              getattr(usage, "completion_tokens", 0) or 0)
            if attempts > max_retries:
                return Result(None, f"{error} after {attempts} attempts", attempts)
            time.sleep(max(min(MAX_DELAY, BASE_DELAY * 2 ** (attempts - 1)), retry_after or 0))

    with ThreadPoolExecutor(max_workers=concurrency) as pool:
        return list(pool.map(one, reviews))


@bugs.bug("sdk_retries_left_on", replaces="classify_remote",
          mistake="the openai SDK's own retries are left on (2 by default): one attempt can then be 3 requests with "
                  "the SDK's waits; call client.with_options(max_retries=0) and retry yourself")
def classify_sdk_retries(client, model, reviews, *, concurrency=4, max_retries=5):
    if not isinstance(reviews, (list, tuple)) or not all(isinstance(r, str) for r in reviews):
        raise TypeError("reviews must be a list of str")
    if concurrency < 1 or max_retries < 0:
        raise ValueError("concurrency must be >= 1 and max_retries >= 0")

    def one(review):
        attempts = 0
        while True:
            attempts += 1
            retry_after = None
            try:
                response = client.chat.completions.create(**make_request(model, review))
                content = response.choices[0].message.content
            except openai.APIStatusError as exc:
                if exc.status_code != 429 and exc.status_code < 500:
                    return Result(None, f"HTTP {exc.status_code}", attempts)
                error = f"HTTP {exc.status_code}"
                try:
                    retry_after = float(exc.response.headers.get("retry-after"))
                except (TypeError, ValueError):
                    pass
            except (openai.APIConnectionError, ValueError, IndexError, AttributeError) as exc:
                error = type(exc).__name__
            else:
                usage = response.usage
                return Result(parse_label(content or ""), None, attempts, getattr(usage, "prompt_tokens", 0) or 0,
                              getattr(usage, "completion_tokens", 0) or 0)
            if attempts > max_retries:
                return Result(None, f"{error} after {attempts} attempts", attempts)
            wait = min(MAX_DELAY, BASE_DELAY * 2 ** (attempts - 1)) * random.uniform(0.5, 1.0)
            time.sleep(max(wait, retry_after or 0))

    with ThreadPoolExecutor(max_workers=concurrency) as pool:
        return list(pool.map(one, reviews))


@bugs.bug("no_break_after_success", replaces="classify_remote",
          mistake="the retry loop goes on after an answer arrives (a missing break/return): an answered review is "
                  "sent again and again, which costs tokens for nothing")
def classify_no_break(client, model, reviews, *, concurrency=4, max_retries=5):
    if not isinstance(reviews, (list, tuple)) or not all(isinstance(r, str) for r in reviews):
        raise TypeError("reviews must be a list of str")
    if concurrency < 1 or max_retries < 0:
        raise ValueError("concurrency must be >= 1 and max_retries >= 0")
    api = client.with_options(max_retries=0)

    def one(review):
        result = None
        for attempt in range(1, max_retries + 2):
            retry_after = None
            try:
                response = api.chat.completions.create(**make_request(model, review))
                content = response.choices[0].message.content
                usage = response.usage
                result = Result(parse_label(content or ""), None, attempt, getattr(usage, "prompt_tokens", 0) or 0,
                                getattr(usage, "completion_tokens", 0) or 0)
            except openai.APIStatusError as exc:
                if exc.status_code != 429 and exc.status_code < 500:
                    return Result(None, f"HTTP {exc.status_code}", attempt)
                result = Result(None, f"HTTP {exc.status_code} after {attempt} attempts", attempt)
                try:
                    retry_after = float(exc.response.headers.get("retry-after"))
                except (TypeError, ValueError):
                    pass
                wait = min(MAX_DELAY, BASE_DELAY * 2 ** (attempt - 1)) * random.uniform(0.5, 1.0)
                if attempt <= max_retries:
                    time.sleep(max(wait, retry_after or 0))
            except (openai.APIConnectionError, ValueError, IndexError, AttributeError) as exc:
                result = Result(None, f"{type(exc).__name__} after {attempt} attempts", attempt)
                if attempt <= max_retries:
                    time.sleep(min(MAX_DELAY, BASE_DELAY * 2 ** (attempt - 1)) * random.uniform(0.5, 1.0))
        return result

    with ThreadPoolExecutor(max_workers=concurrency) as pool:
        return list(pool.map(one, reviews))


@bugs.bug("attempts_miscounted", replaces="classify_remote",
          mistake="attempts counts the retries, not the requests: a review answered by its first request has "
                  "attempts=1")
def classify_attempts_from_zero(client, model, reviews, *, concurrency=4, max_retries=5):
    if not isinstance(reviews, (list, tuple)) or not all(isinstance(r, str) for r in reviews):
        raise TypeError("reviews must be a list of str")
    if concurrency < 1 or max_retries < 0:
        raise ValueError("concurrency must be >= 1 and max_retries >= 0")
    api = client.with_options(max_retries=0)

    def one(review):
        retries = 0
        while True:
            retry_after = None
            try:
                response = api.chat.completions.create(**make_request(model, review))
                content = response.choices[0].message.content
            except openai.APIStatusError as exc:
                if exc.status_code != 429 and exc.status_code < 500:
                    return Result(None, f"HTTP {exc.status_code}", retries)
                error = f"HTTP {exc.status_code}"
                try:
                    retry_after = float(exc.response.headers.get("retry-after"))
                except (TypeError, ValueError):
                    pass
            except (openai.APIConnectionError, ValueError, IndexError, AttributeError) as exc:
                error = type(exc).__name__
            else:
                usage = response.usage
                return Result(parse_label(content or ""), None, retries, getattr(usage, "prompt_tokens", 0) or 0,
                              getattr(usage, "completion_tokens", 0) or 0)
            if retries >= max_retries:
                return Result(None, f"{error} after {retries} retries", retries)
            retries += 1
            wait = min(MAX_DELAY, BASE_DELAY * 2 ** (retries - 1)) * random.uniform(0.5, 1.0)
            time.sleep(max(wait, retry_after or 0))

    with ThreadPoolExecutor(max_workers=concurrency) as pool:
        return list(pool.map(one, reviews))


@bugs.bug("tokens_swapped", replaces="classify_remote",
          mistake="prompt and completion tokens are swapped: usage.prompt_tokens counts what was sent (the review), "
                  "usage.completion_tokens what the model wrote")
def classify_tokens_swapped(client, model, reviews, *, concurrency=4, max_retries=5):
    if not isinstance(reviews, (list, tuple)) or not all(isinstance(r, str) for r in reviews):
        raise TypeError("reviews must be a list of str")
    if concurrency < 1 or max_retries < 0:
        raise ValueError("concurrency must be >= 1 and max_retries >= 0")
    api = client.with_options(max_retries=0)

    def one(review):
        attempts = 0
        while True:
            attempts += 1
            retry_after = None
            try:
                response = api.chat.completions.create(**make_request(model, review))
                content = response.choices[0].message.content
            except openai.APIStatusError as exc:
                if exc.status_code != 429 and exc.status_code < 500:
                    return Result(None, f"HTTP {exc.status_code}", attempts)
                error = f"HTTP {exc.status_code}"
                try:
                    retry_after = float(exc.response.headers.get("retry-after"))
                except (TypeError, ValueError):
                    pass
            except (openai.APIConnectionError, ValueError, IndexError, AttributeError) as exc:
                error = type(exc).__name__
            else:
                usage = response.usage
                return Result(parse_label(content or ""), None, attempts, getattr(usage, "completion_tokens", 0) or 0,
                              getattr(usage, "prompt_tokens", 0) or 0)
            if attempts > max_retries:
                return Result(None, f"{error} after {attempts} attempts", attempts)
            wait = min(MAX_DELAY, BASE_DELAY * 2 ** (attempts - 1)) * random.uniform(0.5, 1.0)
            time.sleep(max(wait, retry_after or 0))

    with ThreadPoolExecutor(max_workers=concurrency) as pool:
        return list(pool.map(one, reviews))


@bugs.bug("malformed_body_crashes", replaces="classify_remote",
          mistake="only openai's own errors are caught: an HTTP 200 whose body is cut off or has no choices raises "
                  "JSONDecodeError/IndexError in your code; treat it as a failed attempt and retry")
def classify_malformed_crashes(client, model, reviews, *, concurrency=4, max_retries=5):
    if not isinstance(reviews, (list, tuple)) or not all(isinstance(r, str) for r in reviews):
        raise TypeError("reviews must be a list of str")
    if concurrency < 1 or max_retries < 0:
        raise ValueError("concurrency must be >= 1 and max_retries >= 0")
    api = client.with_options(max_retries=0)

    def one(review):
        attempts = 0
        while True:
            attempts += 1
            retry_after = None
            try:
                response = api.chat.completions.create(**make_request(model, review))
            except openai.APIStatusError as exc:
                if exc.status_code != 429 and exc.status_code < 500:
                    return Result(None, f"HTTP {exc.status_code}", attempts)
                error = f"HTTP {exc.status_code}"
                try:
                    retry_after = float(exc.response.headers.get("retry-after"))
                except (TypeError, ValueError):
                    pass
            except openai.APIConnectionError as exc:
                error = type(exc).__name__
            else:
                usage = response.usage
                return Result(parse_label(response.choices[0].message.content or ""), None, attempts,
                              getattr(usage, "prompt_tokens", 0) or 0, getattr(usage, "completion_tokens", 0) or 0)
            if attempts > max_retries:
                return Result(None, f"{error} after {attempts} attempts", attempts)
            wait = min(MAX_DELAY, BASE_DELAY * 2 ** (attempts - 1)) * random.uniform(0.5, 1.0)
            time.sleep(max(wait, retry_after or 0))

    with ThreadPoolExecutor(max_workers=concurrency) as pool:
        return list(pool.map(one, reviews))
