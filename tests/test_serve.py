"""``llmlab serve``'s fault-injection proxy, in front of a stub upstream (no model: these run in seconds).

What a client sees is checked through the real ``openai`` client: each fault kind raises what the SDK
raises for it against a real server; the share of faults follows the configured rate; the control
routes change the settings while serving; the model alias and streaming pass through.
"""
from __future__ import annotations

import asyncio
import json
import math
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

import openai  # declared in the `remote` extra, with fastapi and uvicorn: a missing one is an error
import pytest
import uvicorn

from llmlab.fault_proxy import FAULT_KINDS, FaultConfig, FaultProxy, read_body, serve_lifespan
from llmlab.serve import MODEL_NAME, free_port

# one worker runs the whole module, so its module-scoped fixture is built once, not once per worker
pytestmark = pytest.mark.xdist_group("serve_upstream")

UPSTREAM_MODEL = "/cache/smollm2-135m-instruct-folder"


class StubUpstream:
    """A minimal OpenAI-compatible server: it answers every chat completion with "positive"."""

    def __init__(self):
        self.calls = []

    async def __call__(self, scope, receive, send):
        if scope["type"] == "lifespan":
            return await serve_lifespan(receive, send)
        body = await read_body(receive)
        path = scope["path"]
        if path == "/health":
            return await self._json(send, {"status": "ok"})
        if path == "/v1/models":
            return await self._json(send, {"object": "list", "data": [{"id": UPSTREAM_MODEL, "object": "model"}]})
        request = json.loads(body)
        self.calls.append(request)
        if request.get("model") != UPSTREAM_MODEL:
            return await self._json(send, {"error": {"message": "unknown model"}}, 400)
        if request.get("stream"):
            await send({"type": "http.response.start", "status": 200,
                        "headers": [(b"content-type", b"text/event-stream")]})
            for piece in ("posi", "tive"):
                chunk = {"id": "c1", "object": "chat.completion.chunk", "created": 0, "model": UPSTREAM_MODEL,
                         "choices": [{"index": 0, "delta": {"content": piece}, "finish_reason": None}]}
                await send({"type": "http.response.body", "body": f"data: {json.dumps(chunk)}\n\n".encode(),
                            "more_body": True})
            await send({"type": "http.response.body", "body": b"data: [DONE]\n\n", "more_body": False})
            return
        await self._json(send, {"id": "c1", "object": "chat.completion", "created": 0, "model": UPSTREAM_MODEL,
                                "choices": [{"index": 0, "finish_reason": "stop",
                                             "message": {"role": "assistant", "content": "positive"}}],
                                "usage": {"prompt_tokens": 7, "completion_tokens": 1, "total_tokens": 8}})

    @staticmethod
    async def _json(send, data, status=200):
        body = json.dumps(data).encode()
        await send({"type": "http.response.start", "status": status,
                    "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})
        await send({"type": "http.response.body", "body": body})


class Served:
    """An ASGI app served by uvicorn on 127.0.0.1 in a background thread."""

    def __init__(self, app):
        self.app = app
        self.port = free_port()
        self.server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="error",
                                                    lifespan="on"))
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self):
        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started:
            if time.monotonic() > deadline:
                raise TimeoutError("uvicorn did not start")
            time.sleep(0.02)
        return self

    def __exit__(self, *exc):
        self.server.should_exit = True
        self.thread.join(timeout=10)

    @property
    def root(self):
        return f"http://127.0.0.1:{self.port}"


@pytest.fixture(scope="module")
def upstream():
    stub = StubUpstream()
    with Served(stub) as served:
        served.stub = stub
        yield served


@pytest.fixture
def proxy(upstream):
    app = FaultProxy(upstream.root, FaultConfig(), alias=MODEL_NAME, upstream_model=UPSTREAM_MODEL)
    with Served(app) as served:
        served.proxy = app
        yield served


def client(served, timeout=10.0):
    return openai.OpenAI(base_url=served.root + "/v1", api_key="sk-test", timeout=timeout, max_retries=0)


def ask(c, **kw):
    return c.chat.completions.create(model=MODEL_NAME, messages=[{"role": "user", "content": "Great film!"}],
                                     max_tokens=2, **kw)


def put_faults(served, **changes):
    req = urllib.request.Request(served.root + "/llmlab/faults", method="PUT", data=json.dumps(changes).encode(),
                                 headers={"content-type": "application/json"})
    with urllib.request.urlopen(req, timeout=5) as r:
        return json.loads(r.read())


def get_json(served, route):
    with urllib.request.urlopen(served.root + route, timeout=5) as r:
        return json.loads(r.read())


def test_without_faults_requests_pass_through_under_the_alias(proxy, upstream):
    c = client(proxy)
    assert [m.id for m in c.models.list().data] == [MODEL_NAME]
    reply = ask(c)
    assert reply.choices[0].message.content == "positive"
    assert reply.model == MODEL_NAME
    assert (reply.usage.prompt_tokens, reply.usage.completion_tokens) == (7, 1)
    assert upstream.stub.calls[-1]["model"] == UPSTREAM_MODEL  # the alias is translated on the way in


def test_logit_bias_reaches_the_upstream_as_numbers_it_accepts(proxy, upstream):
    # transformers serve turns logit_bias into generate's sequence_bias, which refuses int values (HTTP
    # 500): the proxy sends the same numbers as floats, and leaves float values and other fields alone
    ask(client(proxy), logit_bias={"17728": 100, "16185": -3})
    sent = upstream.stub.calls[-1]
    assert sent["logit_bias"] == {"17728": 100.0, "16185": -3.0}
    assert all(type(v) is float for v in sent["logit_bias"].values())
    assert (sent["model"], sent["max_tokens"]) == (UPSTREAM_MODEL, 2)
    ask(client(proxy))
    assert "logit_bias" not in upstream.stub.calls[-1]


def test_a_wrong_model_name_is_a_client_error_the_sdk_does_not_retry(proxy):
    with pytest.raises(openai.BadRequestError):
        client(proxy).chat.completions.create(model="gpt-4", messages=[{"role": "user", "content": "hi"}])


def test_streaming_passes_through(proxy):
    stream = ask(client(proxy), stream=True)
    assert "".join(ch.choices[0].delta.content or "" for ch in stream if ch.choices) == "positive"


@pytest.mark.parametrize("kind, error", [("429", "RateLimitError"), ("500", "InternalServerError"),
                                         ("503", "InternalServerError"), ("malformed", "JSONDecodeError")])
def test_each_fault_kind_as_the_openai_client_sees_it(proxy, upstream, kind, error):
    put_faults(proxy, rate=1.0, kinds=[kind], retry_after=2)
    before = len(upstream.stub.calls)
    with pytest.raises(Exception) as info:
        ask(client(proxy))
    assert type(info.value).__name__ == error
    if kind in ("429", "503"):
        assert info.value.response.headers["retry-after"] == "2"
        assert info.value.status_code == int(kind)
    assert len(upstream.stub.calls) == before  # a fault never reaches the model
    assert get_json(proxy, "/llmlab/stats")["faults"][kind] == 1


def test_a_slow_answer_times_the_client_out_and_spares_the_model(proxy, upstream):
    put_faults(proxy, rate=1.0, kinds=["slow"], slow_seconds=30)
    before = len(upstream.stub.calls)
    started = time.monotonic()
    with pytest.raises(openai.APITimeoutError):
        ask(client(proxy, timeout=0.5))
    assert time.monotonic() - started < 10
    deadline = time.monotonic() + 10  # the proxy notices the hang-up, then forwards nothing
    while get_json(proxy, "/llmlab/stats")["client_gave_up"] < 1 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert get_json(proxy, "/llmlab/stats")["client_gave_up"] == 1
    assert len(upstream.stub.calls) == before


def test_a_slow_answer_arrives_when_the_client_waits_long_enough(proxy):
    put_faults(proxy, rate=1.0, kinds=["slow"], slow_seconds=0.3)
    started = time.monotonic()
    assert ask(client(proxy, timeout=10)).choices[0].message.content == "positive"
    assert time.monotonic() - started >= 0.3


def test_the_share_of_faults_follows_the_rate(proxy):
    # 400 model calls at rate 0.3: the count of faults is Binomial(400, 0.3), mean 120, sd 9.2. The draws
    # are seeded (deterministic); for any seed, |count - 120| > 40 (4.3 sd) has probability < 2e-5.
    put_faults(proxy, rate=0.3, kinds=list(FAULT_KINDS[:3]) + ["malformed"], seed=7)
    body = json.dumps({"model": MODEL_NAME, "messages": [{"role": "user", "content": "x"}]}).encode()
    outcomes = []
    for _ in range(400):
        req = urllib.request.Request(proxy.root + "/v1/chat/completions", data=body,
                                     headers={"content-type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=5) as r:
                outcomes.append("ok" if json.loads(r.read() or b"null") else "?")
        except urllib.error.HTTPError as e:
            outcomes.append(str(e.code))
        except json.JSONDecodeError:
            outcomes.append("malformed")
    faults = get_json(proxy, "/llmlab/stats")["faults"]
    assert abs(sum(faults.values()) - 120) <= 40, faults
    assert all(faults[k] > 0 for k in ("429", "500", "503", "malformed")), faults
    assert outcomes.count("ok") == 400 - sum(faults.values())
    # the same seed replays the same sequence of faults
    put_faults(proxy, seed=7)
    replay = [proxy.proxy.pick_fault() for _ in range(50)]
    put_faults(proxy, seed=7)
    assert replay == [proxy.proxy.pick_fault() for _ in range(50)]


def test_fault_settings_are_validated_and_control_routes_are_never_faulted(proxy):
    put_faults(proxy, rate=1.0, kinds=["500"])
    assert [m["id"] for m in get_json(proxy, "/v1/models")["data"]] == [MODEL_NAME]
    assert get_json(proxy, "/health") == {"status": "ok"}
    for bad in ({"rate": 1.5}, {"kinds": ["418"]}, {"retry_after": -1}, {"colour": "red"}):
        req = urllib.request.Request(proxy.root + "/llmlab/faults", method="PUT", data=json.dumps(bad).encode())
        with pytest.raises(urllib.error.HTTPError) as info:
            urllib.request.urlopen(req, timeout=5)
        assert info.value.code == 400
    assert get_json(proxy, "/llmlab/faults")["rate"] == 1.0  # a refused change changes nothing


def test_fault_config_parses_kinds_and_rejects_nonsense():
    assert FaultConfig(0.2, "429, slow").kinds == ("429", "slow")
    with pytest.raises(ValueError):
        FaultConfig(0.2, "429,teapot")
    with pytest.raises(ValueError):
        FaultConfig(-0.1)
    with pytest.raises(ValueError):
        FaultConfig(0.5, ())


def test_the_cli_knows_serve():
    from llmlab.cli import main

    with pytest.raises(SystemExit) as info:
        main(["serve", "--help"])
    assert info.value.code == 0


def test_the_proxy_is_an_asgi_app_that_handles_lifespan():
    app = FaultProxy("http://127.0.0.1:9")
    sent = []
    messages = iter([{"type": "lifespan.startup"}, {"type": "lifespan.shutdown"}])

    async def receive():
        return next(messages)

    async def send(m):
        sent.append(m["type"])

    asyncio.run(app({"type": "lifespan"}, receive, send))
    assert sent == ["lifespan.startup.complete", "lifespan.shutdown.complete"]
    assert math.isclose(FaultConfig().retry_after, 1.0)


def _children(pid: int) -> list[int]:
    out = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid and fields[0] != "Z":
            out.append(int(stat.parent.name))
    return out


def _alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def _serve_then_signal(sig) -> int:
    """Start `llmlab serve`, wait for its model server child, send ``sig`` to the parent; the child's pid."""
    parent = subprocess.Popen([sys.executable, "-m", "llmlab.cli", "serve", "--port", str(free_port())],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 120
        while not _children(parent.pid):
            assert parent.poll() is None and time.monotonic() < deadline, "llmlab serve started no model server"
            time.sleep(0.1)
        child = _children(parent.pid)[0]
        time.sleep(1.0)  # let the child get going (it is importing transformers)
        parent.send_signal(sig)
        parent.wait(timeout=60)
        return child
    finally:
        if parent.poll() is None:
            parent.kill()


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT, signal.SIGKILL], ids=["TERM", "INT", "KILL"])
def test_stopping_serve_stops_its_model_server(sig):
    child = _serve_then_signal(sig)
    deadline = time.monotonic() + 30
    while _alive(child) and time.monotonic() < deadline:
        time.sleep(0.2)
    alive = _alive(child)
    if alive:
        os.kill(child, signal.SIGKILL)
    assert not alive, f"the model server (pid {child}) outlived `llmlab serve` stopped with {sig.name}"
