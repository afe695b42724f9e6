"""Realistic buggy variants of ``imdb_remote_llm``: each is a patch of the reference (see llmlab.grading.variants)."""
from llmlab.grading.variants import Variants

bugs = Variants("imdb_remote_llm")

# --- parse_label ---------------------------------------------------------------------------------
bugs.patch("ignores_negation", "parse_label", """
            if any(w in NEGATORS or w.endswith("n't") for w in words[max(0, i - 3):i]):
                label = 1 - label
""", "", mistake="a negated label is read as that label: in 'not negative at all' or \"isn't positive\" the negator "
                 "(within the 3 words before the label, same clause) flips it to the opposite label")
bugs.patch("negated_label_dropped", "parse_label", "label = 1 - label", "continue",
           mistake="a negated label is skipped instead of flipped: in a two-label question 'not negative' names "
                   "positive, and \"isn't positive\" names negative")
bugs.patch("substring_match", "parse_label", """
    for words in clauses:
        for i, word in enumerate(words):
            if word not in ("positive", "negative"):
                continue
            label = 1 if word == "positive" else 0
            if any(w in NEGATORS or w.endswith("n't") for w in words[max(0, i - 3):i]):
                label = 1 - label
            named.add(label)
""", """
    for word, label in (("positive", 1), ("negative", 0)):
        if word in normalized:
            named.add(label)
""", mistake="labels are found as substrings: 'positively', 'negatives' or 'nonnegative' are not the words "
             "positive/negative, and negations are ignored")
bugs.patch("first_label_wins", "parse_label", "named.add(label)", "return label",
           mistake="when an answer names both labels ('positive or negative', 'neither positive nor negative'), the "
                   "first one is returned: the answer is None when the mentions disagree")
bugs.patch("first_label_wins", "parse_label", "return named.pop() if len(named) == 1 else None", "return None")
bugs.patch("case_sensitive", "parse_label", "text.lower().replace", "text.replace",
           mistake="the match is case-sensitive: 'Positive.', 'NEGATIVE' and 'Not negative' are labels (and "
                   "negators) too; lower-case the text first")
bugs.patch("case_sensitive", "parse_label", "[a-z]+(?:'[a-z]+)*|", "[A-Za-z]+(?:'[A-Za-z]+)*|")
bugs.patch("negation_crosses_clauses", "parse_label", """
        if token == "but" or not token[0].isalpha():
            clauses.append([])
""", """
        if not token[0].isalpha():
            continue
""", mistake="a negator reaches across a clause break: in 'Not sure, but positive' the 'not' belongs to another "
             "clause (. , ; : ! ? a line break or 'but' end a negation's reach)")

# --- label_logit_bias ----------------------------------------------------------------------------
bugs.patch("leading_space", "label_logit_bias", "tokenizer.encode(word, add_special_tokens=False)",
           'tokenizer.encode(" " + word, add_special_tokens=False)',
           mistake="the words are encoded with a leading space: the answer's first token comes right after the "
                   "assistant header, with no space before it, and ' positive' is another token than 'positive'")
bugs.patch("whole_word_biased", "label_logit_bias", "first[key] = word",
           "first.update({str(i): word for i in ids})",
           mistake="every token of a word is biased, not only its first: with one answer token, a word's later "
                   "tokens ('ful' of 'aw|ful') could become the whole answer; bias encode(word)[0] only")
bugs.patch("shared_first_token_not_detected", "label_logit_bias", "if key in first:", "if False:", mistake="two label words that start with the same token are accepted: a one-token answer could not tell "
                 "them apart ('thumbsup' and 'thumbsdown' both start with 'th'); raise ValueError")
bugs.patch("bias_too_small", "label_logit_bias", "bias=MAX_BIAS", "bias=5",
           mistake="the default bias is too small to win: +5 loses to a token the model prefers strongly ('The'); "
                   "the default is MAX_BIAS = 100, the most the API accepts")

bugs.patch("bias_range_unchecked", "label_logit_bias", "if not 1 <= bias <= MAX_BIAS:", "if False:", mistake="a bias outside 1..100 is accepted: the API refuses values beyond +-100, and a bias of 0 or less "
                 "does not lift the label tokens at all; raise ValueError")

# --- classify_remote -----------------------------------------------------------------------------
bugs.patch("results_in_completion_order", "classify_remote", """
        for index, result in enumerate(pool.map(_one, range(len(reviews)))):
            results[index] = result
""", """
        from concurrent.futures import as_completed
        futures = [pool.submit(_one, index) for index in range(len(reviews))]
        results = [future.result() for future in as_completed(futures)]
""", mistake="results are collected in the order the answers arrive (as_completed, or appending from each "
             "thread): result i must belong to review i")
bugs.patch("unbounded_concurrency", "classify_remote", "max_workers=min(concurrency, len(reviews))",
           "max_workers=len(reviews)",
           mistake="every review is sent at once (one thread per review): at most `concurrency` requests may be in "
                   "flight, e.g. ThreadPoolExecutor(max_workers=concurrency)")
bugs.patch("sequential_requests", "classify_remote", "max_workers=min(concurrency, len(reviews))", "max_workers=1",
           mistake="reviews are sent one at a time: `concurrency` requests should be in flight together (a thread "
                   "pool of `concurrency` workers)")
bugs.patch("retries_client_errors", "classify_remote", """
                if status != 429 and status < 500:
                    return Result(None, f"HTTP {status} (not retried): {exc.message}", attempts)
""", "", mistake="every HTTP error is retried: 400, 401, 403, 404, 422 fail the same way every time and are final; "
                 "retry only 429, 5xx, timeouts, connection errors and malformed answers")
bugs.patch("no_retry_on_server_errors", "classify_remote", "if attempts > max_retries:",
           'if attempts > max_retries or error != "HTTP 429":',
           mistake="only 429 is retried: 5xx answers, timeouts, connection errors and malformed answers are passing "
                   "failures too, worth a retry")
bugs.patch("ignores_retry_after", "classify_remote", """
            if retry_after is not None:
                wait = max(wait, retry_after)
""", "", mistake="the Retry-After header is ignored: when a 429/503 answer says how many seconds to wait, wait at "
                 "least that long (it is in exc.response.headers)")
bugs.patch("drops_failed_reviews", "classify_remote",
           'return Result(None, f"HTTP {status} (not retried): {exc.message}", attempts)', "return None",
           mistake="a review whose retries ran out (or that got a final error) is left out of the results: every "
                   "review gets a Result, with label=None and the error written in it")
bugs.patch("drops_failed_reviews", "classify_remote",
           'return Result(None, f"{error} after {attempts} attempts", attempts)', "return None")
bugs.patch("drops_failed_reviews", "classify_remote", "return results", "return [r for r in results if r is not None]")
# The last exception is kept (instead of its description) so that it can be raised again.
bugs.patch("raises_after_last_retry", "classify_remote",
           'return Result(None, f"HTTP {status} (not retried): {exc.message}", attempts)', "raise",
           mistake="the last error is raised when a review runs out of retries (or is not retried): that stops the "
                   "whole batch; catch it and give that review Result(label=None, error=...) instead")
bugs.patch("raises_after_last_retry", "classify_remote", 'error = f"HTTP {status}"', "error = exc")
bugs.patch("raises_after_last_retry", "classify_remote", "except openai.APITimeoutError:",
           "except openai.APITimeoutError as exc:")
bugs.patch("raises_after_last_retry", "classify_remote", 'error = "timeout"', "error = exc")
bugs.patch("raises_after_last_retry", "classify_remote", "except openai.APIConnectionError:",
           "except openai.APIConnectionError as exc:")
bugs.patch("raises_after_last_retry", "classify_remote", 'error = "connection error"', "error = exc")
bugs.patch("raises_after_last_retry", "classify_remote", 'error = f"malformed answer ({type(exc).__name__})"',
           "error = exc")
bugs.patch("raises_after_last_retry", "classify_remote",
           'return Result(None, f"{error} after {attempts} attempts", attempts)', "raise error")
bugs.patch("max_retries_counts_attempts", "classify_remote", "if attempts > max_retries:",
           "if attempts >= max_retries:",
           mistake="max_retries is used as the number of attempts: the first request is not a retry, so a failing "
                   "review is sent max_retries + 1 times")
bugs.patch("no_backoff", "classify_remote",
           "wait = min(MAX_DELAY, BASE_DELAY * 2 ** (attempts - 1)) * random.uniform(0.5, 1.0)", "wait = 0",
           mistake="a failed request is retried at once, with no wait: wait min(MAX_DELAY, BASE_DELAY * 2**(n-1)) "
                   "times a random factor in [0.5, 1] before retry n")
bugs.patch("constant_backoff", "classify_remote", "min(MAX_DELAY, BASE_DELAY * 2 ** (attempts - 1))", "BASE_DELAY",
           mistake="the wait before a retry does not grow: it must double with each retry (BASE_DELAY * 2**(n-1), "
                   "capped at MAX_DELAY), so a struggling server gets more and more room")
bugs.patch("no_jitter", "classify_remote", " * random.uniform(0.5, 1.0)", "",
           mistake="the backoff has no jitter: multiply each wait by a random factor in [0.5, 1], or every client "
                   "that failed together retries at the same instant")
bugs.patch("sdk_retries_left_on", "classify_remote", "api = client.with_options(max_retries=0)", "api = client",
           mistake="the openai SDK's own retries are left on (2 by default): one attempt can then be 3 requests with "
                   "the SDK's waits; call client.with_options(max_retries=0) and retry yourself")
bugs.patch("no_break_after_success", "classify_remote",
           'return Result(parse_label(content or ""), None, attempts, prompt, completion)', """
result = Result(parse_label(content or ""), None, attempts, prompt, completion)
if attempts > max_retries:
    return result
continue""", mistake="the retry loop goes on after an answer arrives (a missing break/return): an answered review is "
                     "sent again and again, which costs tokens for nothing")
bugs.patch("attempts_miscounted", "classify_remote", "{exc.message}\", attempts)", "{exc.message}\", attempts - 1)",
           mistake="attempts counts the retries, not the requests: a review answered by its first request has "
                   "attempts=1")
bugs.patch("attempts_miscounted", "classify_remote", "None, attempts, prompt, completion)",
           "None, attempts - 1, prompt, completion)")
bugs.patch("attempts_miscounted", "classify_remote", 'f"{error} after {attempts} attempts", attempts)',
           'f"{error} after {attempts - 1} retries", attempts - 1)')
bugs.patch("tokens_swapped", "classify_remote", "attempts, prompt, completion)", "attempts, completion, prompt)",
           mistake="prompt and completion tokens are swapped: usage.prompt_tokens counts what was sent (the review), "
                   "usage.completion_tokens what the model wrote")
bugs.patch("malformed_body_crashes", "classify_remote", """
            except (openai.APIResponseValidationError, ValueError, TypeError, AttributeError, IndexError,
                    KeyError) as exc:
""", "            except openai.APIResponseValidationError as exc:",
           mistake="only openai's own errors are caught: an HTTP 200 whose body is cut off or has no choices raises "
                   "JSONDecodeError/IndexError in your code; treat it as a failed attempt and retry")
bugs.patch("logit_bias_not_sent", "classify_remote", "**make_request(model, review, logit_bias))",
           "**make_request(model, review))",
           mistake="the logit_bias map is not passed on: each request must be make_request(model, review, "
                   "logit_bias), which adds the map and max_tokens=1")
