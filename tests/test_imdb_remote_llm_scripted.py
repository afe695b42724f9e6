"""The scripted endpoint the ``imdb_remote_llm`` graders stand on, and its life inside a real worker.

The graders' verdicts are only as good as the endpoint's log: these tests pin what it answers (per review,
per attempt), what it records, how ``hold`` makes requests overlap, and that the factory works in the
isolated worker, whose audit hook blocks every socket (the mock transport needs none).
"""
from __future__ import annotations

import time

import openai  # declared in the `remote` extra: a missing one is an error, never a skip
import pytest

from llmlab.grading.scripted import ScriptedEndpoint

REVIEWS = ["(a) first review (a)", "(b) second review (b)"]


def create(client, review, **kw):
    return client.with_options(max_retries=0).chat.completions.create(
        model="m", messages=[{"role": "user", "content": f"Review: {review}"}], **kw)


def test_answers_follow_the_script_per_review_and_attempt():
    ep = ScriptedEndpoint(REVIEWS, [[{"status": 503, "retry_after": "2"}, {"answer": "yes", "prompt_tokens": 4,
                                                                             "completion_tokens": 1}],
                                    [{"answer": None}]])
    with pytest.raises(openai.InternalServerError) as info:
        create(ep.client, REVIEWS[0])
    assert info.value.response.headers["retry-after"] == "2"
    second = create(ep.client, REVIEWS[0])
    assert second.choices[0].message.content == "yes" and second.usage.prompt_tokens == 4
    third = create(ep.client, REVIEWS[0])  # the last planned answer repeats
    assert third.choices[0].message.content == "yes"
    assert create(ep.client, REVIEWS[1]).choices[0].message.content is None
    log = ep.log()
    assert [(e["review"], e["attempt"], e["status"]) for e in log] == [(0, 1, 503), (0, 2, 200), (0, 3, 200),
                                                                       (1, 1, 200)]
    assert all(e["end"] >= e["start"] >= 0 and e["in_flight"] == 1 and e["model"] == "m" for e in log)


def test_timeouts_connection_errors_and_malformed_bodies_reach_the_client_as_from_a_server():
    ep = ScriptedEndpoint(REVIEWS, [[{"timeout": True}, {"connect_error": True}], [{"malformed": "{cut"}]])
    with pytest.raises(openai.APITimeoutError):
        create(ep.client, REVIEWS[0])
    with pytest.raises(openai.APIConnectionError) as info:
        create(ep.client, REVIEWS[0])
    assert not isinstance(info.value, openai.APITimeoutError)
    with pytest.raises(ValueError):  # json.JSONDecodeError, raised by the SDK while parsing
        create(ep.client, REVIEWS[1])
    assert [e["status"] for e in ep.log()] == ["timeout", "connect_error", 200]


def test_requests_without_exactly_one_known_review_are_refused_and_logged():
    ep = ScriptedEndpoint(REVIEWS, [[{"answer": "x"}], [{"answer": "y"}]])
    for text in ("no review here", " ".join(REVIEWS)):
        with pytest.raises(openai.BadRequestError):
            create(ep.client, text)
    assert [(e["review"], e["status"]) for e in ep.log()] == [(None, 400), (None, 400)]


def test_the_sdk_retry_count_is_recorded():
    ep = ScriptedEndpoint(REVIEWS, [[{"status": 500}], [{"answer": "y"}]], sdk_max_retries=2)
    with pytest.raises(openai.InternalServerError):  # SDK retries on: 3 requests for one call
        ep.client.chat.completions.create(model="m", messages=[{"role": "user", "content": REVIEWS[0]}])
    assert [e["sdk_retry"] for e in ep.log()] == [0, 1, 2]


def test_hold_makes_requests_overlap_and_gives_up_at_its_deadline():
    import threading

    ep = ScriptedEndpoint(REVIEWS, [[{"answer": "x"}], [{"answer": "y"}]],
                          hold={"until_in_flight": 2, "max_wait": 5.0})
    threads = [threading.Thread(target=create, args=(ep.client, r)) for r in REVIEWS]
    started = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert time.monotonic() - started < 4.0  # released as soon as both were in flight
    assert ep.max_in_flight() == 2
    lone = ScriptedEndpoint(REVIEWS, [[{"answer": "x"}], [{"answer": "y"}]],
                            hold={"until_in_flight": 2, "max_wait": 0.3})
    started = time.monotonic()
    create(lone.client, REVIEWS[0])  # nobody joins: released at the deadline
    assert time.monotonic() - started >= 0.3
    first_only = ScriptedEndpoint(REVIEWS, [[{"answer": "x"}], [{"answer": "y"}]],
                                  hold={"until_in_flight": 2, "max_wait": 0.3, "first": 0})
    started = time.monotonic()
    create(first_only.client, REVIEWS[0])
    assert time.monotonic() - started < 0.3


def test_describe_turns_results_into_plain_data():
    from solutions.imdb_remote_llm import Result

    ep = ScriptedEndpoint(REVIEWS, [[{"answer": "x"}], [{"answer": "y"}]])

    class Weird:
        @property
        def label(self):
            raise RuntimeError("no")

    d = ep.describe([Result(1, None, 2, 3, 4), Weird()])
    assert d["type"] == "list"
    assert d["items"][0] == {"type": "Result", "label": 1, "error": None, "attempts": 2, "prompt_tokens": 3,
                             "completion_tokens": 4}
    assert d["items"][1]["label"] == {"missing": "RuntimeError"} and d["items"][1]["type"] == "Weird"
    assert ep.describe("nope") == {"type": "str", "items": None}


def test_script_must_match_the_reviews():
    with pytest.raises(ValueError):
        ScriptedEndpoint(REVIEWS, [[{"answer": "x"}]])
    with pytest.raises(ValueError):
        ScriptedEndpoint(REVIEWS, [[{"answer": "x"}], []])


def _worker_run():
    from llmlab.grading.remote import Limits, Submission
    from llmlab.paths import SOLUTIONS

    sub = Submission("reference", "imdb_remote_llm", str(SOLUTIONS), Limits(timeout=60))
    try:
        reviews = ["(r0) Loved it. (r0)", "(r1) Hated it. (r1)"]
        ep = sub.factory("scripted_openai", reviews, [[{"status": 429, "retry_after": "0.2"}, {"answer": "positive"}],
                                                      [{"answer": "negative", "prompt_tokens": 5}]])
        results = sub.call("classify_remote", ep.get("client"), "m", reviews, concurrency=2, max_retries=2)
        return ep.call("describe", results), ep.call("log")
    finally:
        sub.close()


def test_the_factory_works_in_the_isolated_worker_without_sockets():
    described, log = _worker_run()
    items = described["items"]
    assert [(r["label"], r["error"], r["attempts"]) for r in items] == [(1, None, 2), (0, None, 1)]
    assert items[1]["prompt_tokens"] == 5
    assert sorted((e["review"], e["attempt"]) for e in log) == [(0, 1), (0, 2), (1, 1)]


def test_the_worker_still_refuses_real_network_access(tmp_path):
    """The scripted transport is the only way out: a submission that dials a server is stopped."""
    from llmlab.grading.remote import Limits, Submission, SubmissionError

    (tmp_path / "imdb_remote_llm.py").write_text(
        "import socket\n"
        "def classify_remote(client, model, reviews, *, concurrency=4, max_retries=5):\n"
        "    socket.create_connection(('127.0.0.1', 9), timeout=1)\n")
    sub = Submission("dialer", "imdb_remote_llm", str(tmp_path), Limits(timeout=60))
    try:
        with pytest.raises(SubmissionError) as info:
            sub.call("classify_remote", None, "m", [])
        assert info.value.exc_type == "PermissionError" and "network access" in info.value.message
    finally:
        sub.close()
