"""The fault-injection proxy of ``llmlab serve``: an ASGI app in front of an OpenAI-compatible server.

It forwards every request upstream, except the model calls that its fault settings pick, which get
what real APIs answer under load instead::

    client  --->  FaultProxy  --->  upstream (transformers serve, or any OpenAI-compatible server)
                  |  a share of the model calls is answered with
                  |  429 + Retry-After, 500, 503 + Retry-After,
                  |  a slow answer (past the client's timeout), or a malformed 200 body

Two control routes: ``GET``/``PUT /llmlab/faults`` (the settings) and ``GET /llmlab/stats``.
:mod:`llmlab.serve` starts the model server and runs this app under uvicorn.
"""
from __future__ import annotations

import json
import random
from dataclasses import asdict, dataclass

FAULT_KINDS = ("429", "500", "503", "slow", "malformed")
# A completion cut off in the middle, as when a connection drops mid-body (valid HTTP, invalid JSON).
MALFORMED_BODY = '{"id": "chatcmpl-llmlab", "object": "chat.completion", "choices": [{"index": 0, "message": {"ro'


# =============================================================================================
# Fault settings
# =============================================================================================
@dataclass
class FaultConfig:
    """Which share of the model calls fails, and how.

    ``rate`` is the probability that one model call (a POST to ``.../chat/completions`` or
    ``.../completions``) is answered by a fault instead of the model; the kind is drawn uniformly
    from ``kinds``. The draws come from ``random.Random(seed)`` in arrival order.
    """

    rate: float = 0.0
    kinds: tuple = FAULT_KINDS
    retry_after: float = 1.0  # seconds, sent as Retry-After with 429 and 503
    slow_seconds: float = 30.0  # how long a "slow" answer is held before it is forwarded
    seed: int = 0

    def __post_init__(self):
        if isinstance(self.kinds, str):
            self.kinds = tuple(k.strip() for k in self.kinds.split(",") if k.strip())
        self.kinds = tuple(str(k) for k in self.kinds)
        unknown = [k for k in self.kinds if k not in FAULT_KINDS]
        if unknown:
            raise ValueError(f"unknown fault kind(s) {unknown}; choose from {', '.join(FAULT_KINDS)}")
        if not 0.0 <= float(self.rate) <= 1.0:
            raise ValueError(f"fault rate must be in [0, 1], got {self.rate}")
        if self.rate > 0 and not self.kinds:
            raise ValueError("a positive fault rate needs at least one fault kind")
        if self.retry_after < 0 or self.slow_seconds < 0:
            raise ValueError("retry_after and slow_seconds must be >= 0")
        self.rate = float(self.rate)

    def to_dict(self) -> dict:
        """The settings as plain JSON data (``kinds`` as a list)."""
        d = asdict(self)
        d["kinds"] = list(self.kinds)
        return d


def _json_object(body: bytes) -> dict | None:
    """The JSON object ``body`` holds, or None (empty, not JSON, or JSON but not an object)."""
    if not body:
        return None
    try:
        data = json.loads(body)
    except ValueError:
        return None
    return data if isinstance(data, dict) else None


def _retry_after_header(seconds: float) -> str:
    return str(int(seconds)) if float(seconds).is_integer() else f"{seconds:g}"


def error_body(message: str, kind: str, code: str | None = None) -> bytes:
    """The JSON bytes of an OpenAI-style error: ``{"error": {"message": message, "type": kind, "param":
    null, "code": code}}``."""
    return json.dumps({"error": {"message": message, "type": kind, "param": None, "code": code}}).encode()


# =============================================================================================
# The fault-injection proxy (an ASGI app: uvicorn runs it)
# =============================================================================================
class FaultProxy:
    """Forwards every request to ``upstream`` (a server root such as ``http://127.0.0.1:8001``), except
    the model calls that the fault settings pick, which get a fault instead.

    ``alias``/``upstream_model``: clients may name the model ``alias``; the proxy sends
    ``upstream_model`` upstream and shows ``alias`` in ``/v1/models`` and in JSON answers.
    """

    MODEL_CALLS = ("/chat/completions", "/completions")

    def __init__(self, upstream: str, faults: FaultConfig | None = None, *, alias: str | None = None,
                 upstream_model: str | None = None, upstream_timeout: float = 600.0):
        self.upstream = upstream.rstrip("/")
        self.faults = faults or FaultConfig()
        self.rng = random.Random(self.faults.seed)
        self.alias = alias
        self.upstream_model = upstream_model
        self.upstream_timeout = upstream_timeout
        self.stats = {"requests": 0, "model_calls": 0, "forwarded": 0, "client_gave_up": 0,
                      "faults": {k: 0 for k in FAULT_KINDS}}
        self._client = None

    # -- settings ----------------------------------------------------------------------------
    def configure(self, **changes) -> FaultConfig:
        """Change some settings (``FaultConfig`` fields); returns the new settings. Giving ``seed`` restarts
        the draws. Raises ``ValueError``/``TypeError`` for invalid settings (the old ones stay)."""
        merged = {**self.faults.to_dict(), **changes}
        new = FaultConfig(**merged)
        if new.seed != self.faults.seed or "seed" in changes:
            self.rng = random.Random(new.seed)
        self.faults = new
        return new

    def pick_fault(self) -> str | None:
        """The fault for the next model call, or None to forward it (drawn in arrival order)."""
        f = self.faults
        if f.rate <= 0 or not f.kinds:
            return None
        hit = self.rng.random() < f.rate
        kind = self.rng.choice(f.kinds)  # always drawn: the sequence does not depend on the rate
        return kind if hit else None

    async def _close_client(self):
        if self._client is not None:
            await self._client.aclose()

    # -- ASGI --------------------------------------------------------------------------------
    async def __call__(self, scope, receive, send):
        if scope["type"] == "lifespan":
            return await serve_lifespan(receive, send, on_shutdown=self._close_client)
        if scope["type"] != "http":
            return
        body = await read_body(receive)
        path, method = scope["path"], scope["method"]
        self.stats["requests"] += 1
        if path == "/llmlab/faults":
            if method == "PUT":
                try:
                    changes = json.loads(body or b"{}")
                    if not isinstance(changes, dict):
                        raise ValueError("expected a JSON object")
                    allowed = set(FaultConfig.__dataclass_fields__)
                    if set(changes) - allowed:
                        raise ValueError(f"unknown settings {sorted(set(changes) - allowed)}")
                    self.configure(**changes)
                except (ValueError, TypeError) as exc:
                    return await _send(send, 400, error_body(str(exc), "invalid_request_error"))
            return await _send(send, 200, json.dumps(self.faults.to_dict()).encode())
        if path == "/llmlab/stats":
            return await _send(send, 200, json.dumps(self.stats).encode())

        if method == "POST" and path.endswith(self.MODEL_CALLS):
            self.stats["model_calls"] += 1
            kind = self.pick_fault()
            if kind is not None:
                self.stats["faults"][kind] += 1
                if kind == "429":
                    return await _send(send, 429, error_body(
                        "Rate limit reached: too many requests (injected by llmlab serve)", "rate_limit_error",
                        "rate_limit_exceeded"), {"retry-after": _retry_after_header(self.faults.retry_after)})
                if kind == "500":
                    return await _send(send, 500, error_body(
                        "The server had an error while processing your request (injected by llmlab serve)",
                        "server_error"))
                if kind == "503":
                    return await _send(send, 503, error_body(
                        "The server is overloaded, try again later (injected by llmlab serve)", "server_error"),
                        {"retry-after": _retry_after_header(self.faults.retry_after)})
                if kind == "malformed":
                    return await _send(send, 200, MALFORMED_BODY.encode())
                if kind == "slow":
                    if await _sleep_unless_disconnected(receive, self.faults.slow_seconds):
                        self.stats["client_gave_up"] += 1
                        return  # the client timed out and left: do not spend the model on it
        body = self._rewrite_request(path, body)
        await self._forward(scope, body, send)

    def _rewrite_request(self, path: str, body: bytes) -> bytes:
        data = _json_object(body)
        if data is None:
            return body
        changed = False
        if self.alias and self.upstream_model and data.get("model") == self.alias:
            data["model"] = self.upstream_model
            changed = True
        bias = data.get("logit_bias")
        if isinstance(bias, dict) and any(type(v) is int for v in bias.values()):
            # The API's logit_bias values are integers, but `transformers serve` (5.x) passes them to
            # generate's `sequence_bias`, which accepts floats only (HTTP 500 otherwise): send 100 as 100.0,
            # the same number.
            data["logit_bias"] = {k: float(v) if type(v) is int else v for k, v in bias.items()}
            changed = True
        return json.dumps(data).encode() if changed else body

    def _rewrite_response(self, path: str, body: bytes) -> bytes:
        data = _json_object(body) if self.alias and self.upstream_model else None
        if data is None:
            return body
        if path.endswith("/models") and isinstance(data.get("data"), list):
            for item in data["data"]:
                if isinstance(item, dict) and item.get("id") == self.upstream_model:
                    item["id"] = self.alias
        elif data.get("model") == self.upstream_model:
            data["model"] = self.alias
        else:
            return body
        return json.dumps(data).encode()

    async def _forward(self, scope, body: bytes, send):
        import httpx2

        if self._client is None:
            self._client = httpx2.AsyncClient(timeout=self.upstream_timeout)
        query = scope.get("query_string", b"").decode()
        url = self.upstream + scope["path"] + (f"?{query}" if query else "")
        skip = {"host", "content-length", "connection", "accept-encoding", "transfer-encoding"}
        headers = [(k.decode(), v.decode()) for k, v in scope["headers"] if k.decode().lower() not in skip]
        try:
            request = self._client.build_request(scope["method"], url, headers=headers, content=body)
            upstream = await self._client.send(request, stream=True)
        except httpx2.HTTPError as exc:
            return await _send(send, 502, error_body(f"upstream unreachable: {exc}", "server_error"))
        self.stats["forwarded"] += 1
        try:
            drop = {"content-length", "transfer-encoding", "connection", "content-encoding"}
            out_headers = [(k.encode(), v.encode()) for k, v in upstream.headers.items() if k.lower() not in drop]
            if upstream.headers.get("content-type", "").startswith("text/event-stream"):
                await send({"type": "http.response.start", "status": upstream.status_code, "headers": out_headers})
                async for chunk in upstream.aiter_bytes():
                    await send({"type": "http.response.body", "body": chunk, "more_body": True})
                await send({"type": "http.response.body", "body": b"", "more_body": False})
            else:
                content = self._rewrite_response(scope["path"], await upstream.aread())
                out_headers.append((b"content-length", str(len(content)).encode()))
                await send({"type": "http.response.start", "status": upstream.status_code, "headers": out_headers})
                await send({"type": "http.response.body", "body": content})
        finally:
            await upstream.aclose()


async def serve_lifespan(receive, send, on_shutdown=None) -> None:
    """Answer an ASGI ``lifespan`` scope: startup at once; at shutdown, ``await on_shutdown()`` first."""
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            if on_shutdown is not None:
                await on_shutdown()
            await send({"type": "lifespan.shutdown.complete"})
            return


async def read_body(receive) -> bytes:
    """The whole body of an ASGI ``http`` request."""
    chunks = []
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            break
        chunks.append(message.get("body", b""))
        if not message.get("more_body"):
            break
    return b"".join(chunks)


async def _send(send, status: int, body: bytes, headers: dict | None = None):
    h = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    h += [(k.encode(), v.encode()) for k, v in (headers or {}).items()]
    await send({"type": "http.response.start", "status": status, "headers": h})
    await send({"type": "http.response.body", "body": body})


async def _sleep_unless_disconnected(receive, seconds: float) -> bool:
    """Wait ``seconds``; True if the client hung up meanwhile."""
    import asyncio

    async def disconnected():
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return True

    waiter = asyncio.ensure_future(disconnected())
    try:
        await asyncio.wait_for(asyncio.shield(waiter), timeout=seconds)
        return True
    except asyncio.TimeoutError:
        return False
    finally:
        waiter.cancel()

