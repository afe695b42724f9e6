"""A scripted, logged, in-process OpenAI endpoint: the protocol of ``llmlab serve`` without a server.

:class:`ScriptedEndpoint` gives an ``openai.OpenAI`` client whose requests are answered inside the
process, by a script (per review, per attempt), with every request logged. The graders build it in
a worker through :func:`llmlab.grading.factories.scripted_openai` (no sockets, deterministic faults);
the exercise tests and the notebook use it directly (``from llmlab.serve import ScriptedEndpoint``
still works) to test a client.
"""
from __future__ import annotations

import json
import random
import threading
import time

from ..fault_proxy import error_body


class ScriptedEndpoint:
    """An ``openai.OpenAI`` client (``.client``) whose requests are answered in this process.

    Nothing touches the network: the client sends through ``httpx2.MockTransport``. Each request must
    carry exactly one of ``reviews`` in its messages; the endpoint counts the attempts per review and
    answers attempt ``k`` with ``script[i][k-1]`` (the last entry repeats). A script entry is a dict:

    * ``{"answer": "Positive.", "prompt_tokens": 12, "completion_tokens": 2}``: HTTP 200, a chat
      completion with that content (``None`` allowed) and usage (omitted when the counts are absent);
    * ``{"status": 429, "retry_after": "1"}``: that HTTP error (an OpenAI-style error body), with a
      ``Retry-After`` header when given;
    * ``{"timeout": True}``: the request times out (the client raises ``openai.APITimeoutError``);
    * ``{"connect_error": True}``: the connection fails (``openai.APIConnectionError``);
    * ``{"malformed": "<body>"}``: HTTP 200 whose body is not a readable completion;
    * any entry may add ``"delay": seconds``, a latency before the answer.

    ``hold={"until_in_flight": k, "max_wait": s}`` holds every request until ``k`` requests have been in
    flight at once (at some moment while it was), or ``s`` seconds pass: it makes overlapping requests
    overlap for sure (a concurrency test then needs no luck); ``"first": m`` in it holds only the first
    ``m`` requests to arrive. ``sdk_max_retries`` is the client's own retry setting (the SDK's default,
    2). ``seed`` seeds Python's ``random`` module (jitter draws become reproducible).

    Raises ``ValueError`` unless ``script`` has one non-empty list per review.

    ``log()`` lists every request in arrival order: ``review`` (index, or None when no single review was
    found), ``attempt`` (1-based, per review), ``start``/``end`` (seconds since the endpoint was made),
    ``in_flight`` (requests in flight when it arrived, itself included), ``status`` (an int, ``"timeout"``
    or ``"connect_error"``), ``model``, ``sdk_retry`` (the SDK's own retry count for this request),
    ``thread``, ``max_tokens``, ``temperature``, ``logit_bias`` (None when the request had none), ``path``.
    """

    def __init__(self, reviews, script, *, hold: dict | None = None, sdk_max_retries: int = 2, seed: int = 0,
                 timeout: float = 30.0, base_url: str = "http://llmlab-scripted.invalid/v1"):
        import httpx2
        import openai

        self.reviews = [str(r) for r in reviews]
        self.script = [list(s) for s in script]
        if len(self.script) != len(self.reviews) or any(not s for s in self.script):
            raise ValueError("script needs one non-empty list of planned answers per review")
        self.hold = dict(hold) if hold else None
        self._cond = threading.Condition()
        self._in_flight = 0
        self._reached = 0
        self._attempts = [0] * len(self.reviews)
        self._log: list[dict] = []
        self._t0 = time.monotonic()
        random.seed(seed)
        self.client = openai.OpenAI(
            api_key="sk-llmlab-scripted", base_url=base_url, timeout=timeout, max_retries=sdk_max_retries,
            http_client=openai.DefaultHttpx2Client(transport=httpx2.MockTransport(self._handle)))

    def log(self) -> list[dict]:
        """A copy of the request log, in arrival order (see the class docstring for the fields)."""
        with self._cond:
            return [dict(e) for e in self._log]

    def max_in_flight(self) -> int:
        """The most requests that were in flight at once (0 before any request)."""
        return max((e["in_flight"] for e in self.log()), default=0)

    def describe(self, results) -> dict:
        """Plain data about what a client returned: the type of the whole and, per item, its type and the
        fields ``label``, ``error``, ``attempts``, ``prompt_tokens``, ``completion_tokens`` (a value that is
        not plain data is replaced by ``{"type": name}``; a missing field by ``{"missing": error}``)."""
        plain = (int, float, str, bool, type(None))
        if not isinstance(results, (list, tuple)):
            return {"type": type(results).__name__, "items": None}
        items = []
        for r in results:
            item = {"type": type(r).__name__}
            for name in ("label", "error", "attempts", "prompt_tokens", "completion_tokens"):
                try:
                    value = getattr(r, name)
                except Exception as exc:  # noqa: BLE001 - a broken object is described, not trusted
                    item[name] = {"missing": type(exc).__name__}
                    continue
                item[name] = value if type(value) in plain else {"type": type(value).__name__}
            items.append(item)
        return {"type": type(results).__name__, "items": items}

    # -- the transport's handler (runs in the caller's thread) ----------------------------------
    def _find_review(self, body) -> int | None:
        texts = []
        for m in body.get("messages", []) if isinstance(body, dict) else []:
            content = m.get("content") if isinstance(m, dict) else None
            if isinstance(content, str):
                texts.append(content)
            elif isinstance(content, list):
                texts += [p.get("text", "") for p in content if isinstance(p, dict) and isinstance(p.get("text"), str)]
        text = "\n".join(texts)
        found = [i for i, r in enumerate(self.reviews) if r in text]
        return found[0] if len(found) == 1 else None

    def _handle(self, request):
        import httpx2

        start = time.monotonic() - self._t0
        try:
            body = json.loads(request.content or b"{}")
        except ValueError:
            body = {}
        if not isinstance(body, dict):
            body = {}
        index = self._find_review(body)
        with self._cond:
            self._in_flight += 1
            if self.hold and self._in_flight >= int(self.hold.get("until_in_flight", 1)):
                self._reached += 1  # a moment with enough requests in flight: release the held ones
            reached_at_arrival = self._reached
            self._cond.notify_all()
            arrival = len(self._log)
            attempt = None
            if index is not None:
                self._attempts[index] += 1
                attempt = self._attempts[index]
            entry = {"review": index, "attempt": attempt, "start": start, "end": None,
                     "in_flight": self._in_flight, "status": None, "model": body.get("model"),
                     "sdk_retry": _int_or_none(request.headers.get("x-stainless-retry-count")),
                     "thread": threading.get_ident(), "max_tokens": body.get("max_tokens"),
                     "temperature": body.get("temperature"), "logit_bias": body.get("logit_bias"),
                     "path": request.url.path}
            self._log.append(entry)
        try:
            if self.hold and (self.hold.get("first") is None or arrival < int(self.hold["first"])):
                want, max_wait = int(self.hold.get("until_in_flight", 1)), float(self.hold.get("max_wait", 0))
                deadline = time.monotonic() + max_wait
                with self._cond:
                    # released once `want` requests were in flight together at some moment since this one
                    # arrived (its own arrival included), or at the deadline
                    satisfied = lambda: entry["in_flight"] >= want or self._reached > reached_at_arrival  # noqa: E731
                    while not satisfied() and time.monotonic() < deadline:
                        self._cond.wait(timeout=max(0.0, deadline - time.monotonic()))
            if not request.url.path.endswith("/chat/completions"):
                entry["status"] = 404
                return httpx2.Response(404, content=error_body(f"no route {request.url.path}",
                                                             "invalid_request_error"))
            if index is None:
                entry["status"] = 400
                return httpx2.Response(400, content=error_body(
                    "the request must carry exactly one review of the batch", "invalid_request_error"))
            plan = self.script[index][min(attempt, len(self.script[index])) - 1]
            if plan.get("delay"):
                time.sleep(float(plan["delay"]))
            return self._answer(request, body, plan, entry, index, attempt)
        finally:
            with self._cond:
                self._in_flight -= 1
                entry["end"] = time.monotonic() - self._t0
                self._cond.notify_all()

    @staticmethod
    def _answer(request, body, plan, entry, index, attempt):
        import httpx2

        json_type = {"content-type": "application/json"}
        if plan.get("timeout"):
            entry["status"] = "timeout"
            raise httpx2.ReadTimeout("the scripted endpoint timed out", request=request)
        if plan.get("connect_error"):
            entry["status"] = "connect_error"
            raise httpx2.ConnectError("the scripted endpoint refused the connection", request=request)
        if "malformed" in plan:
            entry["status"] = 200
            return httpx2.Response(200, content=str(plan["malformed"]).encode(), headers=json_type)
        if "status" in plan:
            status = int(plan["status"])
            entry["status"] = status
            headers = dict(json_type)
            if plan.get("retry_after") is not None:
                headers["retry-after"] = str(plan["retry_after"])
            kinds = {400: "invalid_request_error", 401: "authentication_error", 403: "permission_error",
                     404: "not_found_error", 422: "invalid_request_error", 429: "rate_limit_error"}
            return httpx2.Response(status, headers=headers, content=error_body(
                plan.get("message", f"scripted HTTP {status}"), kinds.get(status, "server_error")))
        entry["status"] = 200
        completion = {
            "id": f"chatcmpl-scripted-{index}-{attempt}", "object": "chat.completion", "created": 0,
            "model": body.get("model") or "scripted",
            "choices": [{"index": 0, "finish_reason": "stop",
                         "message": {"role": "assistant", "content": plan.get("answer")}}]}
        if plan.get("prompt_tokens") is not None:
            p, c = int(plan["prompt_tokens"]), int(plan.get("completion_tokens", 0))
            completion["usage"] = {"prompt_tokens": p, "completion_tokens": c, "total_tokens": p + c}
        return httpx2.Response(200, headers=json_type, content=json.dumps(completion).encode())


def _int_or_none(value):
    try:
        return int(value)
    except (ValueError, TypeError):  # a header that is absent or not a number
        return None

