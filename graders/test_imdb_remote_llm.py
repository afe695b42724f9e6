"""Hidden graders for ``imdb_remote_llm`` (API.md §13): reading free-text answers, and a robust client.

``parse_label`` is compared exactly with the reference on a hypothesis-generated corpus of answer
phrasings (plain, decorated, negated, clause-broken, ambiguous), which shrinks to a short answer.

``classify_remote`` runs in the worker against the real ``openai`` client. Its HTTP requests never
leave the process: the factory ``scripted_openai`` builds ``openai.OpenAI(http_client=
openai.DefaultHttpx2Client(transport=httpx2.MockTransport(handler)))`` where the handler answers each
review's attempt ``k`` from a script (an answer, an HTTP error with or without ``Retry-After``, a
timeout, a failed connection, a malformed body) and logs every request: which review and attempt, when
it started and ended, and how many requests were in flight. The script is keyed by review and attempt,
not by arrival order, so thread scheduling changes nothing in what the client is told.

Timing checks rely on lower bounds only (``time.sleep(x)`` never returns before ``x``; a busy machine
can only make a measured wait longer), except the upper bound on backoff waits, which allows 1 s of
slack. Concurrency checks hold each request until enough requests are in flight (or a deadline), so
overlap does not depend on luck. The jitter check fixes ``random``'s seed in the worker.
"""
from __future__ import annotations

import json

import functools

from hypothesis import Phase, given, settings
from hypothesis import strategies as st

from llmlab.grading.checks import CheckFailed, check, expect_equal, expect_raises, known_mistake
from llmlab.grading.remote import SubmissionError, Unfinished

TASK_PARSE = "imdb_remote_llm.parse_label"
TASK_CLASSIFY = "imdb_remote_llm.classify_remote"
TASK_BIAS = "imdb_remote_llm.label_logit_bias"
MODEL = "grader-model-7b"
SLACK = 0.005  # seconds: clock and bookkeeping tolerance on a lower bound
UPPER_SLACK = 1.0  # seconds a backoff wait may overrun on a busy machine

# =============================================================================================
# parse_label: a corpus of answer phrasings
# =============================================================================================
LABEL_WORDS = ("positive", "negative")
CASES = (str.lower, str.upper, str.capitalize)
WRAPS = ("{}", "**{}**", "'{}'", '"{}"', "*{}*", "`{}`", "{}.", "{}!", "({})", "[{}]", "_{}_", "{}:", "#{}")
PREFIXES = ("", "Sentiment: ", "The sentiment is ", "Answer: ", "I think this review is ", "This review is ",
            "Label - ", "Overall, the review is ", "The review above is ", "Result:\n", "It's ", "clearly ",
            "The sentiment of this review is ")
SUFFIXES = ("", ".", " sentiment.", " overall.", "\n", " review", "!", " (confident)",
            ". The reviewer enjoyed the acting.", " - the reviewer liked it", "\n\nExplanation: the plot")
NEGATIONS = ("not ", "NOT ", "isn't ", "isn\u2019t ", "is not ", "never ", "not at all ", "definitely not ",
             "not really ", "no ", "wasn't ", "cannot be ", "doesn't seem ", "It is not a ", "don't think it's ",
             "non-", "neither ")
TAILS_AFTER_LABEL = ("", " at all", ".", ", not at all", " in the slightest", " really")
BREAKS = (",", ".", ";", ":", "!", "?", "\n", " but", ", but", ". But")
OPENERS = ("Not sure", "No doubt", "Not bad", "I can't be certain", "Never mind", "Not an easy one",
           "It isn't long", "No spoilers")
NEAR_MISSES = ("positively", "negatively", "nonnegative", "positives", "negativity", "Positivity", "POSITIVELY",
               "negatives", "positiveness", "netnegative")
UNDECIDED = ("I cannot tell.", "", "Mixed.", "The review is mixed", "?", "Neutral", "It depends on the viewer",
             "I'm sorry, I can't help with that.", "The movie is a comedy.")


@st.composite
def mentions(draw):
    word = draw(st.sampled_from(LABEL_WORDS))
    return draw(st.sampled_from(WRAPS)).format(draw(st.sampled_from(CASES))(word))


@st.composite
def plain_answers(draw):
    return draw(st.sampled_from(PREFIXES)) + draw(mentions()) + draw(st.sampled_from(SUFFIXES))


@st.composite
def negated_answers(draw):
    neg = draw(st.sampled_from(NEGATIONS))
    return (draw(st.sampled_from(("", "It ", "The review is ", "This is ", "Sentiment: ")))
            + neg + draw(mentions()) + draw(st.sampled_from(TAILS_AFTER_LABEL)))


@st.composite
def clause_broken_answers(draw):
    return (draw(st.sampled_from(OPENERS)) + draw(st.sampled_from(BREAKS)) + " "
            + draw(st.sampled_from(("", "it is ", "the answer is ", "I'd say "))) + draw(mentions()))


@st.composite
def ambiguous_answers(draw):
    a, b = draw(mentions()), draw(mentions())
    form = draw(st.sampled_from(("{a} or {b}", "{a}/{b}", "It has {a} and {b} parts", "neither {a} nor {b}",
                                 "{a}? {b}?", "Both {a} and {b}", "{u}")))
    return form.format(a=a, b=b, u=draw(st.sampled_from(UNDECIDED)))


@st.composite
def near_miss_answers(draw):
    miss = draw(st.sampled_from(NEAR_MISSES))
    form = draw(st.sampled_from(("{m}", "{m} awful", "The film is {m} charming", "{p}{m}{s}", "{m}, but {l}",
                                 "{l}; the cast is {m} brilliant")))
    return form.format(m=miss, p=draw(st.sampled_from(PREFIXES)), s=draw(st.sampled_from(SUFFIXES)),
                       l=draw(mentions()))


answer_corpus = st.one_of(plain_answers(), negated_answers(), clause_broken_answers(), ambiguous_answers(),
                          near_miss_answers())


@st.composite
def long_answers(draw):
    parts = draw(st.lists(answer_corpus, min_size=1, max_size=3))
    return draw(st.sampled_from((" ", "\n", ". "))).join(parts)


def _expect_label(sub, ref, text):
    got = sub.call("parse_label", text)
    expect_equal(got, ref.parse_label(text), what=f"parse_label({text!r})", inputs=dict(text=text),
                 diagnose_with=lambda m: m.parse_label(text))


@check(TASK_PARSE, points=2,
       spec=("Case does not matter", "markdown (``**positive**`` holds the word ``positive``)"))
@given(text=plain_answers())
def test_parse_label_reads_plain_answers(sub, ref, text):
    _expect_label(sub, ref, text)


@check(TASK_PARSE, points=2,
       spec=("A negated mention names the opposite label", "several negators still flip it once"))
@given(text=negated_answers())
def test_parse_label_flips_a_negated_label(sub, ref, text):
    _expect_label(sub, ref, text)


@check(TASK_PARSE, points=1,
       spec="The text splits into *clauses* at each of ``. , ; : ! ?``, at line breaks, and at the word ``but``.")
@given(text=clause_broken_answers())
def test_parse_label_negation_stops_at_a_clause_break(sub, ref, text):
    _expect_label(sub, ref, text)


@check(TASK_PARSE, points=1,
       spec="None when there is no mention, or when the mentions name both labels.")
@given(text=ambiguous_answers())
def test_parse_label_is_none_for_neither_or_both(sub, ref, text):
    _expect_label(sub, ref, text)


@check(TASK_PARSE, points=1,
       spec="(``positively``, ``nonnegative`` and ``negatives`` are not mentions)")
@given(text=near_miss_answers())
def test_parse_label_matches_whole_words_only(sub, ref, text):
    _expect_label(sub, ref, text)


@check(TASK_PARSE, points=2,
       spec="The answer is the label that every mention names")
@given(text=long_answers())
def test_parse_label_on_longer_answers(sub, ref, text):
    _expect_label(sub, ref, text)


@check(TASK_PARSE, points=1,
       spec="if ``text`` is not a str")
def test_parse_label_rejects_non_text(sub, ref):
    _expect_label(sub, ref, "positive")  # a valid call first: it must work before it can refuse
    expect_raises(lambda: sub.call("parse_label", None), "TypeError", what="parse_label(None)")
    expect_raises(lambda: sub.call("parse_label", 1), "TypeError", what="parse_label(1)")


# =============================================================================================
# label_logit_bias: SmolLM2's real tokenizer, label words of one token and of several
# =============================================================================================
# SmolLM2's tokenizer, checked when the word lists were chosen: these words are one token each (no
# leading space), these are several tokens, and these groups share their first token.
ONE_TOKEN_WORDS = ("negative", "positive", "good", "bad", "yes", "no", "great", "love", "like", "fresh", "happy",
                   "avoid", "nothing", "Positive", "Negative", "pos", "neg")
SEVERAL_TOKEN_WORDS = ("awful", "favourable", "thumbsup", "excellent", "terrible", "approve", "dislike", "rotten",
                       "pleased", "recommend", "sarcastic", "sincere", "POSITIVE", "NEGATIVE", "unhappy")
# The groups share their first token with and without a leading space (a leading space is another
# check's mistake).
SHARED_FIRST_TOKEN = (("thumbsup", "thumbsdown"), ("neg", "negation"), ("lame", "lousy"), ("suspense", "suspenseful"),
                      ("laugh", "laughable"), ("spoil", "spoilers"), ("comedic", "comedies"), ("luck", "luckily"))


@functools.lru_cache(maxsize=None)
def grader_tokenizer():
    """SmolLM2's tokenizer in the grading process, for the reference and the variants."""
    from llmlab.grading.factories import smollm2_tokenizer

    return smollm2_tokenizer()


def bias_tokenizer(sub):
    """SmolLM2's tokenizer in the worker, built once per worker (rebuilt if the worker restarted)."""
    cache = sub.__dict__.setdefault("_imdb_remote_llm_tokenizer", {})
    key = sub._generation()
    if key not in cache:
        cache.clear()
        cache[key] = sub.factory("smollm2_tokenizer")
    return cache[key]


def first_token(word: str, prefix: str = "") -> int:
    return grader_tokenizer().encode(prefix + word, add_special_tokens=False)[0]


@st.composite
def label_word_sets(draw, pool, *, need=None):
    """2-4 words from ``pool`` (plus one from ``need`` when given) whose first tokens all differ."""
    words = draw(st.lists(st.sampled_from(pool), min_size=1 if need else 2, max_size=3 if need else 4,
                          unique_by=first_token))
    if need:
        extra = draw(st.sampled_from([w for w in need if first_token(w) not in map(first_token, words)]))
        words.insert(draw(st.integers(0, len(words))), extra)
    return tuple(words) if draw(st.booleans()) else list(words)


def expect_bias_map(got, words, bias, *, what, inputs, diagnose_with, accept=()):
    """``got`` must be a dict of str token ids to the int ``bias``, equal to the reference's map (or to one of
    the maps in ``accept``: a mistake judged by another check)."""
    want = {str(first_token(w)): bias for w in words}
    if type(got) is not dict:
        raise CheckFailed(f"{what} should return a dict {{token id as str: bias}}, got {type(got).__name__}",
                          inputs=inputs)
    bad_keys = [k for k in got if type(k) is not str]
    if bad_keys:
        raise CheckFailed(f"{what}: the keys must be token ids written as str (JSON object keys are), got "
                          f"{bad_keys[0]!r} ({type(bad_keys[0]).__name__})", inputs=inputs)
    bad_values = [v for v in got.values() if type(v) is not int]
    if bad_values:
        raise CheckFailed(f"{what}: each value must be the int bias, got {bad_values[0]!r} "
                          f"({type(bad_values[0]).__name__})", inputs=inputs)
    if got == want or any(got == other for other in accept):
        return
    expect_equal(got, want, what=what, inputs=inputs, diagnose_with=diagnose_with)


def _bias_call(sub, words, **kwargs):
    return sub.call("label_logit_bias", bias_tokenizer(sub), words, **kwargs)


@check(TASK_BIAS, points=3,
       spec=("The first token of ``word`` is ``tokenizer.encode(word,", "``{str(first_token_id): bias}``, one entry per word"))
@settings(max_examples=12)
@given(words=label_word_sets(ONE_TOKEN_WORDS), bias=st.integers(1, 100))
def test_logit_bias_on_one_token_words(sub, ref, words, bias):
    inputs = dict(words=words, bias=bias, tokenizer="SmolLM2-135M-Instruct's")
    expect_bias_map(_bias_call(sub, words, bias=bias), words, bias, what=f"label_logit_bias(tokenizer, {words!r}, "
                    f"bias={bias})", inputs=inputs,
                    diagnose_with=lambda m: m.label_logit_bias(grader_tokenizer(), words, bias=bias))


@check(TASK_BIAS, points=2,
       spec="Only the **first** token of each word is biased")
@settings(max_examples=10)
@given(words=label_word_sets(ONE_TOKEN_WORDS, need=SEVERAL_TOKEN_WORDS), bias=st.integers(1, 100))
def test_logit_bias_on_first_tokens_only(sub, ref, words, bias):
    inputs = dict(words=words, bias=bias, tokenizer="SmolLM2-135M-Instruct's")
    # a word encoded with a leading space is the first check's mistake: here only "first token, one per word"
    spaced = {str(first_token(w, " ")): bias for w in words}
    expect_bias_map(_bias_call(sub, words, bias=bias), words, bias, what=f"label_logit_bias(tokenizer, {words!r}, "
                    f"bias={bias})", inputs=inputs, accept=(spaced,),
                    diagnose_with=lambda m: m.label_logit_bias(grader_tokenizer(), words, bias=bias))


@check(TASK_BIAS, points=1,
       spec=("bias: the bias given to each word's first token", "(default ``MAX_BIAS = 100``)"))
def test_default_bias_is_the_maximum(sub, ref):
    # the defaults against the submission's own explicit call: which tokens it picks is the first check's matter
    explicit = _bias_call(sub, ("negative", "positive"), bias=100)
    default = sub.call("label_logit_bias", bias_tokenizer(sub))
    if default != explicit:
        raise CheckFailed(f"label_logit_bias(tokenizer) returned {default!r}, but label_logit_bias(tokenizer, "
                          f"('negative', 'positive'), bias=100) returned {explicit!r}: the defaults are the words "
                          "LABEL_WORDS and the bias MAX_BIAS = 100",
                          diagnosis=[known_mistake("bias_too_small")]
                          if type(default) is dict and len(default) == 2 and set(default.values()) != {100} else [])


@check(TASK_BIAS, points=2,
       spec="two words share their first token")
@settings(max_examples=8)
@given(pair=st.sampled_from(SHARED_FIRST_TOKEN), before=st.sampled_from(("", "great", "awful")),
       swap=st.booleans())
def test_shared_first_tokens_are_refused(sub, ref, pair, before, swap):
    words = ([before] if before else []) + list(pair[::-1] if swap else pair)
    expect_raises(lambda: _bias_call(sub, words), "ValueError", what=f"label_logit_bias(tokenizer, {words!r})",
                  inputs=dict(words=words, first_tokens=[first_token(w) for w in words]),
                  diagnose_with=lambda m: m.label_logit_bias(grader_tokenizer(), words))


@check(TASK_BIAS, points=1,
       spec=("if ``words`` is not a list or tuple of str", "if there are fewer than two words"))
def test_label_logit_bias_argument_errors(sub, ref):
    spaced = {str(first_token(w, " ")): 7 for w in ("good", "bad")}
    valid = _bias_call(sub, ["good", "bad"], bias=7)  # a valid call first
    expect_bias_map(valid, ["good", "bad"], 7, what="label_logit_bias(tokenizer, ['good', 'bad'], bias=7)",
                    inputs=None, diagnose_with=None, accept=(spaced,))
    for words, kwargs, error in (("positive", {}, "TypeError"), (["good", 3], {}, "TypeError"),
                                 (["good", "bad"], {"bias": 50.0}, "TypeError"),
                                 (["good", "bad"], {"bias": True}, "TypeError"),
                                 (["good"], {}, "ValueError"), (["good", ""], {}, "ValueError"),
                                 (["good", "bad"], {"bias": 0}, "ValueError"),
                                 (["good", "bad"], {"bias": 101}, "ValueError")):
        if valid == spaced and "" in words:
            continue  # " " + "" is a token: the leading space is charged by the first check, not again here
        shown = ", ".join([repr(words)] + [f"{k}={v!r}" for k, v in kwargs.items()])
        expect_raises(lambda: _bias_call(sub, words, **kwargs), error, what=f"label_logit_bias(tokenizer, {shown})",
                      diagnose_with=lambda m: m.label_logit_bias(grader_tokenizer(), words, **kwargs))


# =============================================================================================
# classify_remote: a scripted endpoint inside the worker
# =============================================================================================
SENTENCES = ("A slow start, then a gripping second half.", "The acting is wooden and the plot is thin.",
             "I laughed from start to finish.", "Two hours I will never get back.", "A quiet, moving film.",
             "The sequel nobody asked for.", "Gorgeous photography, silly dialogue.", "See it on a big screen.")


def reviews_for(n: int) -> list[str]:
    """Distinct reviews; none is a substring of another (the endpoint finds each by its text)."""
    return [f"(review #{i}) {SENTENCES[i % len(SENTENCES)]} (end of #{i})" for i in range(n)]


def answer(text, prompt=None, completion=None, delay=None):
    plan = {"answer": text}
    if prompt is not None:
        plan.update(prompt_tokens=prompt, completion_tokens=completion or 0)
    if delay:
        plan["delay"] = delay
    return plan


def status(code, retry_after=None):
    return {"status": code} if retry_after is None else {"status": code, "retry_after": retry_after}


TIMEOUT = {"timeout": True}
CONNECT_ERROR = {"connect_error": True}


def malformed(body):
    return {"malformed": body}


def describe_plan(plan: dict) -> str:
    if "answer" in plan:
        text = f"answer {plan['answer']!r}"
        if "prompt_tokens" in plan:
            text += f" (usage {plan['prompt_tokens']} prompt + {plan.get('completion_tokens', 0)} completion tokens)"
    elif "status" in plan:
        text = f"HTTP {plan['status']}" + (f" with Retry-After: {plan['retry_after']}" if "retry_after" in plan else "")
    elif plan.get("timeout"):
        text = "timeout"
    elif plan.get("connect_error"):
        text = "connection error"
    else:
        text = f"HTTP 200 with the body {plan['malformed']!r}"
    return text + (f" after {plan['delay']:g} s" if plan.get("delay") else "")


def describe_script(script) -> list[str]:
    return [f"review #{i}: " + ", then ".join(describe_plan(p) for p in plans) for i, plans in enumerate(script)]


def outcome(plan: dict) -> str:
    if "answer" in plan:
        return "answer"
    if "status" in plan and plan["status"] != 429 and plan["status"] < 500:
        return "final"
    return "retry"


def own_parser(sub, ref):
    """The submission's own ``parse_label`` where it gives a label (0, 1 or None), else the reference's: the
    labels classify_remote should report follow the student's parser, so a parse_label mistake is graded by the
    parse_label checks only, not again by every classify_remote check."""
    cache = {}

    def parse(text):
        if text not in cache:
            try:
                got = sub.call("parse_label", text)
            except (SubmissionError, Unfinished):
                got = "unusable"
            cache[text] = got if got is None or type(got) is int and got in (0, 1) else ref.parse_label(text)
        return cache[text]
    return parse


def expected_results(parse, script, max_retries):
    """What the spec says each review ends with, simulated attempt by attempt from its script (``parse``: the
    answer's label)."""
    out = []
    for plans in script:
        for k in range(1, max_retries + 2):
            plan = plans[min(k, len(plans)) - 1]
            kind = outcome(plan)
            if kind == "answer":
                out.append(dict(label=parse(plan["answer"] or ""), error=False, attempts=k,
                                prompt_tokens=plan.get("prompt_tokens", 0), completion_tokens=plan.get("completion_tokens", 0)))
                break
            if kind == "final":
                out.append(dict(label=None, error=True, attempts=k, prompt_tokens=0, completion_tokens=0))
                break
        else:
            out.append(dict(label=None, error=True, attempts=max_retries + 1, prompt_tokens=0, completion_tokens=0))
    return out


_OPENAI_ERRORS = {"RateLimitError", "InternalServerError", "APIStatusError", "APITimeoutError", "APIConnectionError",
                  "BadRequestError", "AuthenticationError", "PermissionDeniedError", "NotFoundError",
                  "UnprocessableEntityError", "ConflictError", "APIError"}
_MALFORMED_ERRORS = {"JSONDecodeError", "ValueError", "IndexError", "AttributeError", "TypeError", "KeyError",
                     "APIResponseValidationError"}


class Run:
    """One call of the submission's ``classify_remote`` against a scripted endpoint, and what it left."""

    def __init__(self, sub, ref, script, *, concurrency, max_retries, hold=None, reviews=None, logit_bias=None):
        self.script = script
        self.reviews = reviews or reviews_for(len(script))
        self.concurrency, self.max_retries = concurrency, max_retries
        self.inputs = dict(reviews=self.reviews, script=describe_script(script), concurrency=concurrency,
                           max_retries=max_retries)
        extra = {} if logit_bias is None else {"logit_bias": logit_bias}
        self.inputs.update(extra)
        self.expected = expected_results(own_parser(sub, ref), script, max_retries)
        # the SDK's own retries (which a correct client switches off) are left at 1, not 2: a client that
        # forgets to switch them off is caught as surely, and waits less for the SDK's backoff
        endpoint = sub.factory("scripted_openai", self.reviews, script, hold=hold, seed=0, sdk_max_retries=1)
        try:
            returned = sub.call("classify_remote", endpoint.get("client"), MODEL, self.reviews,
                                concurrency=concurrency, max_retries=max_retries, **extra)
        except SubmissionError as err:
            if err.kind != "raised":
                raise
            name = err.exc_type
            if name in _OPENAI_ERRORS:
                raise CheckFailed(f"classify_remote raised {err.message}: a failed request escaped instead of being "
                                  "written into that review's Result", inputs=self.inputs,
                                  diagnosis=[known_mistake("raises_after_last_retry")]) from None
            if name in _MALFORMED_ERRORS and any("malformed" in p for plans in script for p in plans):
                raise CheckFailed(f"classify_remote raised {err.message} on an answer whose body is not a readable "
                                  "completion: such an answer is a failed attempt, to be retried",
                                  inputs=self.inputs, diagnosis=[known_mistake("malformed_body_crashes")]) from None
            raise
        self.log = endpoint.call("log")
        self.described = endpoint.call("describe", returned)

    # -- what came back -------------------------------------------------------------------------
    def results(self) -> list[dict]:
        """The returned results as plain dicts, after checking their types; fails with a verdict."""
        d, n = self.described, len(self.reviews)
        if d["items"] is None or d["type"] != "list":
            raise CheckFailed(f"classify_remote should return a list of Result, got {d['type']}", inputs=self.inputs)
        items = d["items"]
        if len(items) != n:
            lost = len(items) < n and any(e["error"] for e in self.expected)
            raise CheckFailed(f"classify_remote returned {len(items)} results for {n} reviews: every review must get "
                              "exactly one Result, in order", inputs=self.inputs,
                              diagnosis=[known_mistake("drops_failed_reviews")] if lost else [])
        for i, item in enumerate(items):
            if item["type"] != "Result":
                raise CheckFailed(f"result {i} is a {item['type']}, expected a Result", inputs=self.inputs)
            problems = []
            if not (item["label"] is None or (type(item["label"]) is int and item["label"] in (0, 1))):
                problems.append(f"label {item['label']!r} (expected 0, 1 or None)")
            if not (item["error"] is None or type(item["error"]) is str):
                problems.append(f"error {item['error']!r} (expected a str or None)")
            for field in ("attempts", "prompt_tokens", "completion_tokens"):
                if type(item[field]) is not int or item[field] < 0:
                    problems.append(f"{field} {item[field]!r} (expected an int >= 0)")
            if problems:
                raise CheckFailed(f"result {i} has " + "; ".join(problems), inputs=self.inputs)
        return items

    def requests_of(self, i: int) -> list[dict]:
        return [e for e in self.log if e["review"] == i]

    def check_requests_are_well_formed(self):
        stray = [e for e in self.log if e["review"] is None]
        if stray:
            raise CheckFailed(f"{len(stray)} request(s) carried no review of the batch, or several: each request must "
                              "carry exactly one review, whole and unchanged (use make_request)", inputs=self.inputs)
        models = {e["model"] for e in self.log}
        if models - {MODEL}:
            raise CheckFailed(f"requests named the model {sorted(map(str, models - {MODEL}))}, expected {MODEL!r} "
                              "(the `model` argument)", inputs=self.inputs)

    def check_sdk_retries_off(self):
        inner = [e for e in self.log if (e["sdk_retry"] or 0) > 0]
        if inner:
            e = inner[0]
            raise CheckFailed(f"the openai SDK retried review #{e['review']} on its own ({len(inner)} request(s) were "
                              "SDK retries)", inputs=self.inputs, diagnosis=[known_mistake("sdk_retries_left_on")])

    def check_attempt_counts(self, results):
        """Each review was sent as often as its script implies. (What a Result reports in ``attempts`` is
        judged by the check of that field alone, so that a miscount costs its points once.)"""
        self.check_sdk_retries_off()
        for i, (got, want) in enumerate(zip(results, self.expected)):
            sent = len(self.requests_of(i))
            if sent != want["attempts"]:
                first = self.script[i][min(want["attempts"], len(self.script[i])) - 1]
                if sent > want["attempts"] and outcome(first) == "answer":
                    raise CheckFailed(f"review #{i} had its answer after {want['attempts']} request(s) but was sent "
                                      f"{sent} times: once a review is answered, it is never sent again",
                                      inputs=self.inputs, diagnosis=[known_mistake("no_break_after_success")])
                if sent > want["attempts"] and outcome(first) == "final":
                    raise CheckFailed(f"review #{i} got {describe_plan(first)} and was sent {sent} times: a 4xx answer "
                                      "other than 429 is final, never retried", inputs=self.inputs,
                                      diagnosis=[known_mistake("retries_client_errors")])
                if sent == self.max_retries and want["attempts"] == self.max_retries + 1:
                    raise CheckFailed(f"review #{i} kept failing and was sent {sent} times with max_retries="
                                      f"{self.max_retries}: it should be sent max_retries + 1 = "
                                      f"{self.max_retries + 1} times (the first attempt is not a retry)",
                                      inputs=self.inputs, diagnosis=[known_mistake("max_retries_counts_attempts")])
                plans = self.script[i][:sent]
                failed_on = [describe_plan(p) for p in plans if outcome(p) == "retry"]
                raise CheckFailed(f"review #{i} was sent {sent} time(s), expected {want['attempts']} (its answers: "
                                  f"{'; '.join(describe_plan(p) for p in self.script[i])}; max_retries="
                                  f"{self.max_retries})", inputs=self.inputs,
                                  diagnosis=[known_mistake("no_retry_on_server_errors")]
                                  if sent < want["attempts"] and failed_on else [])

    def check_order(self, results):
        """Results that are all there but shuffled (gathered as they completed, say)."""
        def key(r):
            return (repr(r["label"]), r["error"] is None, r["attempts"], r["prompt_tokens"], r["completion_tokens"])

        got = [key(r) for r in results]
        want = [(repr(w["label"]), not w["error"], w["attempts"], w["prompt_tokens"], w["completion_tokens"])
                for w in self.expected]
        if got != want and sorted(got) == sorted(want):
            where = next(i for i, (a, b) in enumerate(zip(got, want)) if a != b)
            raise CheckFailed(f"the results are not in the order of the reviews: result {where} is another review's "
                              f"(labels in order: {[r['label'] for r in results]}, expected "
                              f"{[w['label'] for w in self.expected]})", inputs=self.inputs,
                              diagnosis=[known_mistake("results_in_completion_order")])

    def check_outcomes(self, results):
        """Labels and errors as the spec implies, review by review. (Token counts are judged by the check
        of those fields alone, so that a mistake there costs its points once.)"""
        self.check_order(results)
        for i, (got, want) in enumerate(zip(results, self.expected)):
            if want["error"]:
                if got["label"] is not None or not (isinstance(got["error"], str) and got["error"].strip()):
                    raise CheckFailed(f"review #{i} never got an answer, so its Result needs label=None and a non-empty "
                                      f"error; got label={got['label']!r}, error={got['error']!r}", inputs=self.inputs)
                continue
            if got["error"] is not None or got["label"] != want["label"] or type(got["label"]) is not type(want["label"]):
                said = self.script[i][min(want["attempts"], len(self.script[i])) - 1]["answer"]
                raise CheckFailed(f"review #{i} was answered {said!r}, so its Result should have label="
                                  f"{want['label']!r} and error=None; got label={got['label']!r}, error={got['error']!r}",
                                  inputs=self.inputs)

    def gaps(self, i: int) -> list[float]:
        """Seconds between the end of each failed request of review ``i`` and the start of the next."""
        reqs = sorted(self.requests_of(i), key=lambda e: e["attempt"])
        return [b["start"] - a["end"] for a, b in zip(reqs, reqs[1:])]


def _full_check(run: Run):
    results = run.results()
    run.check_requests_are_well_formed()
    run.check_order(results)
    run.check_attempt_counts(results)
    run.check_outcomes(results)
    return results


# -- answers, order, usage -------------------------------------------------------------------
ORDER_SCRIPT = [[answer("Positive.", 31, 2, delay=0.15)], [answer("the sentiment is NEGATIVE", 27, 5, delay=0.11)],
                [answer("not negative at all", 40, 4, delay=0.075)], [answer("I cannot tell.", 12, 4, delay=0.04)],
                [answer(None, 9, 0, delay=0.02)], [answer("**positive**", 18, 3)]]


@check(TASK_CLASSIFY, points=2,
       spec="one per review, in the order of ``reviews``, whatever order the answers came in")
def test_results_come_back_in_input_order(sub, ref):
    # later reviews are answered sooner: results gathered as they complete come out reversed
    run = Run(sub, ref, ORDER_SCRIPT, concurrency=6, max_retries=2)
    results = run.results()
    run.check_requests_are_well_formed()
    run.check_outcomes(results)


@check(TASK_CLASSIFY, points=1,
       spec=("the tokens come from the answer's ``usage`` (0 when it has none)", "so that ``attempts`` counts requests"))
def test_attempts_and_token_usage_are_reported(sub, ref):
    # review #3 fails once first: its attempts count both requests. Only the two reported fields are
    # judged here, against what was really sent and answered, so a wrong retry policy is not charged again.
    run = Run(sub, ref, [[answer("negative", 120, 1)], [answer("Positive", 95, 2)], [answer("neutral", 64, 7)],
                         [status(500), answer("positive", 33, 4)], [answer("negative")]],
              concurrency=2, max_retries=3)
    results = run.results()
    for i, got in enumerate(results):
        sent = len([e for e in run.requests_of(i) if not e["sdk_retry"]])  # the SDK's own retries: another check
        if got["attempts"] != sent:
            named = ([known_mistake("attempts_miscounted")] if got["attempts"] == sent - 1 else [])
            raise CheckFailed(f"review #{i}: {sent} request(s) were sent for it, but its Result says attempts="
                              f"{got['attempts']}: attempts counts the requests sent for the review (1 + retries)",
                              inputs=run.inputs, diagnosis=named)
    for i, got in enumerate(results):
        sent = len(run.requests_of(i))
        if got["label"] is None or not 1 <= sent <= len(run.script[i]):
            continue  # no answer was accepted: nothing to count
        plan = run.script[i][sent - 1]  # the answer that was accepted
        counts = (got["prompt_tokens"], got["completion_tokens"])
        want = (plan.get("prompt_tokens", 0), plan.get("completion_tokens", 0))
        if counts != want:
            raise CheckFailed(f"review #{i}: (prompt_tokens, completion_tokens) = {counts}, expected {want} (the "
                              "usage of the answer it was given; 0 and 0 when the answer has none)", inputs=run.inputs,
                              diagnosis=[known_mistake("tokens_swapped")] if counts == want[::-1] else [])


@check(TASK_CLASSIFY, points=1,
       spec="a review is never sent again once it has its answer")
def test_an_answered_review_is_sent_once(sub, ref):
    run = Run(sub, ref, [[answer("positive", 5, 1)], [answer("negative", 6, 1)], [answer("positive", 7, 1)]],
              concurrency=3, max_retries=3)
    results = run.results()
    run.check_requests_are_well_formed()
    run.check_attempt_counts(results)
    run.check_outcomes(results)  # sending each review once earns the point only with the right results


@check(TASK_CLASSIFY, points=1,
       spec="with a ``logit_bias`` map the request carries it and asks for a single answer token")
def test_logit_bias_is_sent_with_every_request(sub, ref):
    # what is sent is judged here; reading the answers, their order and the retries are other checks' matter
    bias = {"17728": 100, "16185": 100}
    script = [[answer("positive", 40, 1)], [answer("negative", 35, 1)], [answer("negative", 52, 1)]]
    run = Run(sub, ref, script, concurrency=1, max_retries=2, logit_bias=bias)
    run.results()
    run.check_requests_are_well_formed()
    for e in run.log:
        if e["logit_bias"] != bias or e["max_tokens"] != 1:
            raise CheckFailed(f"classify_remote(..., logit_bias={bias!r}) sent a request for review #{e['review']} "
                              f"with logit_bias={e['logit_bias']!r} and max_tokens={e['max_tokens']!r}: every request "
                              "must carry the map and ask for one token (make_request(model, review, logit_bias))",
                              inputs=run.inputs,
                              diagnosis=[known_mistake("logit_bias_not_sent")] if e["logit_bias"] is None else [])


# -- concurrency -----------------------------------------------------------------------------
@check(TASK_CLASSIFY, points=2,
       spec="up to ``concurrency`` at a time")
def test_concurrency_bound_is_never_exceeded(sub, ref):
    for concurrency, n in ((1, 2), (3, 6)):
        # each request waits until all n requests are in flight, or 0.1 s: a correct client never gets
        # there, a client that sends everything at once gets there at once
        script = [[answer("positive" if i % 2 else "negative", 10 + i, 1)] for i in range(n)]
        run = Run(sub, ref, script, concurrency=concurrency, max_retries=1,
                  hold={"until_in_flight": n, "max_wait": 0.1})
        results = run.results()
        peak = max(e["in_flight"] for e in run.log)
        if peak > concurrency:
            raise CheckFailed(f"{peak} requests were in flight at once with concurrency={concurrency}",
                              inputs=run.inputs,
                              diagnosis=[known_mistake("unbounded_concurrency")] if peak >= n else [])
        run.check_outcomes(results)


@check(TASK_CLASSIFY, points=1,
       spec="``min(concurrency, len(reviews))`` are in flight together at the start")
def test_requests_overlap_up_to_the_concurrency(sub, ref):
    concurrency, n = 2, 4
    script = [[answer("positive", 10, 1)] for _ in range(n)]
    # the first requests wait (up to 0.5 s each) for `concurrency` requests to be in flight together
    run = Run(sub, ref, script, concurrency=concurrency, max_retries=1,
              hold={"until_in_flight": concurrency, "max_wait": 0.5, "first": concurrency})
    results = run.results()
    peak = max(e["in_flight"] for e in run.log)
    if peak < concurrency:
        raise CheckFailed(f"at most {peak} request(s) were in flight at once; with concurrency={concurrency} and {n} "
                          f"reviews, {concurrency} requests should run together",
                          inputs=run.inputs, diagnosis=[known_mistake("sequential_requests")] if peak == 1 else [])
    run.check_outcomes(results)  # overlapping requests earn the point only with the right results


# -- what is retried, and how often -------------------------------------------------------------
@check(TASK_CLASSIFY, points=2,
       spec="a **retryable failure**: HTTP 429, HTTP 5xx, a timeout (``openai.APITimeoutError``), a failed connection (``openai.APIConnectionError``)")
def test_server_errors_and_timeouts_are_retried(sub, ref):
    script = [[status(500), answer("positive", 11, 1)],
              [status(503), answer("Negative.", 12, 2)],
              [status(502), TIMEOUT, answer("negative", 13, 1)],
              [CONNECT_ERROR, answer("positive", 14, 1)],
              [status(429), answer("It's positive", 15, 3)]]
    _full_check(Run(sub, ref, script, concurrency=5, max_retries=3))


@check(TASK_CLASSIFY, points=1,
       spec="or an HTTP 200 whose body is not a readable completion (not JSON, or no ``choices``)")
def test_malformed_answers_are_retried(sub, ref):
    script = [[malformed("<html>502 Bad Gateway</html>"), answer("positive", 8, 1)],
              [malformed('{"id": "chatcmpl-1", "object": "chat.completion", "choices": [{"index": 0, "mess'),
               answer("negative", 9, 1)],
              [malformed('{"id": "chatcmpl-2", "object": "chat.completion", "created": 0, "model": "m", "choices": []}'),
               answer("negative", 10, 1)]]
    _full_check(Run(sub, ref, script, concurrency=3, max_retries=2))


@check(TASK_CLASSIFY, points=2,
       spec="a **final failure**: any other HTTP error (400, 401, 403, 404, 422...): never retried.")
def test_client_errors_are_not_retried(sub, ref):
    # had they been retried, the second attempt would even have been answered
    script = [[status(code), answer("positive", 5, 1)] for code in (400, 401, 403, 404, 422)]
    script.append([answer("negative", 6, 1)])
    _full_check(Run(sub, ref, script, concurrency=3, max_retries=3))


@check(TASK_CLASSIFY, points=2,
       spec=("so a review is sent at most ``max_retries + 1`` times", "nothing is raised for it, and the other reviews go on"))
def test_gives_up_after_max_retries_and_keeps_the_review(sub, ref):
    script = [[status(500)], [answer("positive", 7, 1)], [TIMEOUT], [status(429)], [answer("negative", 8, 1)]]
    _full_check(Run(sub, ref, script, concurrency=5, max_retries=2))
    # max_retries=0: one attempt, no retry
    _full_check(Run(sub, ref, [[status(503), answer("positive", 1, 1)], [answer("negative", 2, 1)]],
                    concurrency=2, max_retries=0))


@check(TASK_CLASSIFY, points=1,
       spec="``client.with_options(max_retries=0).chat.completions.create(**make_request(model, review, logit_bias))``")
def test_the_sdk_does_not_retry_on_its_own(sub, ref):
    # with the SDK's own retries left on, one attempt would be 2 requests here (3 with the SDK's default)
    _full_check(Run(sub, ref, [[status(500), status(500), status(500), answer("positive", 3, 1)]],
                    concurrency=1, max_retries=0))


# -- waiting ---------------------------------------------------------------------------------
@check(TASK_CLASSIFY, points=2,
       spec="the wait is the larger of that number and the jittered backoff")
def test_retry_after_is_honoured(sub, ref):
    # the backoff before a first retry is at most BASE_DELAY = 0.1 s: these waits are longer
    script = [[status(429, "0.4"), answer("positive", 4, 1)], [status(503, "0.25"), answer("negative", 5, 1)],
              [answer("positive", 6, 1)], [status(429, "0.3"), answer("negative", 7, 1)]]
    run = Run(sub, ref, script, concurrency=4, max_retries=2)
    _full_check(run)
    for i, plans in enumerate(script):
        if "retry_after" not in plans[0]:
            continue
        wanted = float(plans[0]["retry_after"])
        gap = run.gaps(i)[0]
        if gap < wanted - SLACK:
            raise CheckFailed(f"review #{i} got HTTP {plans[0]['status']} with Retry-After: {plans[0]['retry_after']} "
                              f"but was sent again {gap:.3f} s later: wait at least that many seconds",
                              inputs=run.inputs, diagnosis=[known_mistake("ignores_retry_after")])


def _backoff(ref, n: int) -> float:
    return min(ref.MAX_DELAY, ref.BASE_DELAY * 2 ** (n - 1))


@check(TASK_CLASSIFY, points=2,
       spec="``min(MAX_DELAY, BASE_DELAY * 2**(n-1))``")
def test_backoff_grows_exponentially(sub, ref):
    script = [[status(503), status(500), status(502), answer("positive", 3, 1)],
              [TIMEOUT, status(503), TIMEOUT, answer("negative", 4, 1)]]
    run = Run(sub, ref, script, concurrency=2, max_retries=3)
    _full_check(run)
    for i in range(len(script)):
        gaps = run.gaps(i)
        for n, gap in enumerate(gaps, start=1):
            d = _backoff(ref, n)
            if gap < 0.5 * d - SLACK:
                if max(gaps) < 0.5 * ref.BASE_DELAY:
                    named = [known_mistake("no_backoff")]
                elif gaps[0] >= 0.5 * ref.BASE_DELAY - SLACK and max(gaps) <= ref.BASE_DELAY + UPPER_SLACK / 10:
                    named = [known_mistake("constant_backoff")]
                else:
                    named = []
                raise CheckFailed(f"review #{i}: retry {n} was sent {gap:.3f} s after the failure; before retry {n} "
                                  f"the wait is at least 0.5 * min(MAX_DELAY, BASE_DELAY * 2**{n - 1}) = {0.5 * d:.3f} s "
                                  f"(waits measured: {[round(g, 3) for g in gaps]})", inputs=run.inputs,
                                  diagnosis=named)
            if gap > d + UPPER_SLACK:
                raise CheckFailed(f"review #{i}: retry {n} came {gap:.3f} s after the failure; the backoff before retry "
                                  f"{n} is at most min(MAX_DELAY, BASE_DELAY * 2**{n - 1}) = {d:.3f} s",
                                  inputs=run.inputs)


@check(TASK_CLASSIFY, points=1,
       spec="times a random factor drawn uniformly from [0.5, 1] (the jitter)")
def test_backoff_has_jitter(sub, ref):
    # 8 reviews fail together twice. Each wait is min(MAX_DELAY, BASE_DELAY * 2**(n-1)) times a factor
    # drawn from [0.5, 1] (the worker's `random` is seeded): without jitter every wait is at least the
    # backoff itself, as sleep never returns early. The check fails only when all 16 waits are >= 0.85
    # times their backoff: for a jittered client each has probability 0.3 (unseeded draws), all 16
    # together 0.3**16 < 1e-8; a busy machine would have to delay every one of them.
    n = 8
    script = [[status(500), status(503), answer("positive" if i % 2 else "negative", i + 1, 1)] for i in range(n)]
    run = Run(sub, ref, script, concurrency=n, max_retries=2)
    _full_check(run)
    ratios = [gap / _backoff(ref, k) for i in range(n) for k, gap in enumerate(run.gaps(i), start=1)]
    if min(ratios) >= 0.85:
        raise CheckFailed(f"{n} reviews failed at the same moments and every retry waited {min(ratios):.2f}-"
                          f"{max(ratios):.2f} times its backoff: without a random factor in the wait, clients that "
                          "fail together retry together", inputs=run.inputs, diagnosis=[known_mistake("no_jitter")])


# -- everything at once ----------------------------------------------------------------------
RETRYABLE = (status(500), status(502), status(503), status(429), TIMEOUT, CONNECT_ERROR,
             malformed("{not json"), status(429, "0.2"), status(503, "0.1"))
FINAL = (status(400), status(401), status(404), status(422))
ANSWERS = ("positive", "Negative.", "not negative at all", "The sentiment is NEGATIVE", "Mixed.", None)


@st.composite
def fault_scripts(draw):
    n = draw(st.integers(1, 4))
    script = []
    for i in range(n):
        plans = draw(st.lists(st.sampled_from(RETRYABLE), max_size=2))
        if draw(st.integers(0, 4)) == 0:
            plans.append(draw(st.sampled_from(FINAL)))
        else:
            plans.append(answer(draw(st.sampled_from(ANSWERS)), draw(st.integers(1, 400)), draw(st.integers(0, 9))))
        script.append(plans)
    return script, draw(st.integers(1, 3)), draw(st.integers(0, 3))


@check(TASK_CLASSIFY, points=2,
       spec=("The outcome of one attempt:", "A review whose last allowed attempt fails, or that meets a final failure, gets"))
@settings(max_examples=3, phases=(Phase.explicit, Phase.generate))  # each example waits real backoff time
@given(case=fault_scripts())
def test_random_fault_mixes_lose_nothing(sub, ref, case):
    script, concurrency, max_retries = case
    run = Run(sub, ref, script, concurrency=concurrency, max_retries=max_retries)
    _full_check(run)
    peak = max(e["in_flight"] for e in run.log)
    if peak > concurrency:
        raise CheckFailed(f"{peak} requests were in flight at once with concurrency={concurrency}", inputs=run.inputs)


# -- arguments -------------------------------------------------------------------------------
@check(TASK_CLASSIFY, points=1,
       spec=("if ``reviews`` is not a list or tuple of str", "if ``concurrency < 1`` or ``max_retries < 0``"))
def test_bad_arguments_and_empty_batch(sub, ref):
    reviews = reviews_for(1)
    endpoint = sub.factory("scripted_openai", reviews, [[answer("positive", 1, 1)]])
    client = endpoint.get("client")
    empty = endpoint.call("describe", sub.call("classify_remote", client, MODEL, []))
    if empty["type"] != "list" or empty["items"] != []:
        raise CheckFailed(f"classify_remote(client, model, []) should return [], got a {empty['type']} "
                          f"with {len(empty['items'] or [])} item(s)")
    expect_raises(lambda: sub.call("classify_remote", client, MODEL, reviews, concurrency=0), "ValueError",
                  what="classify_remote(..., concurrency=0)")
    expect_raises(lambda: sub.call("classify_remote", client, MODEL, reviews, max_retries=-1), "ValueError",
                  what="classify_remote(..., max_retries=-1)")
    expect_raises(lambda: sub.call("classify_remote", client, MODEL, reviews[0]), "TypeError",
                  what="classify_remote(client, model, 'a single review as a str')")
    sent = endpoint.call("log")
    if sent:
        raise CheckFailed(f"{len(sent)} request(s) were sent for bad arguments or an empty batch; check the arguments "
                          "before sending anything")
