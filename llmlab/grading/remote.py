"""The grader's side of a submission: a proxy that runs every call in a worker process.

``Submission.call("f", *args)`` sends the call to the worker and returns the plain data it answers.
A call that raises in the submission raises :class:`SubmissionError` here; a call that hangs past
its wall-clock limit, or a worker that dies (``os._exit``, a crash, the memory limit), kills the
worker's process group and raises :class:`SubmissionError` too. The next check starts a fresh
worker, so one broken check never costs the others.

Failures that would repeat in every check cost one limit per topic, not one per check:

* a fresh worker imports the module first; when that import hangs, dies or raises, every check of
  the topic fails at once with that message;
* a function that hangs (a call limit) or exhausts memory (``MemoryError``, or a worker killed by
  the memory limit) fails at once in every later call, in this check and the next ones, also when
  another function of the submission calls it: fresh workers get it replaced by one that raises
  (the function is the innermost submission frame of the stack at the time, see ``worker.STACK_FILE``);
* all workers of one submission's topic share a budget of CPU seconds (``Limits.budget``); when it
  runs out, the remaining checks of the topic score 0 with a message saying so.

``LocalSubmission`` has the same interface and runs trusted code (the reference, the kit's own
buggy variants) in this process: the kit's tests use it to grade dozens of variants quickly.
"""
from __future__ import annotations

import dataclasses
import importlib.util
import json
import multiprocessing
import os
import re
import shutil
import signal
import sys
import tempfile
import time
import types
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from ..paths import KIT_ROOT, PROTECTED
from .protocol import Diagnosis, unfinished

if TYPE_CHECKING:
    from ..codec import Handle


@dataclass
class Limits:
    """Resource limits of a submission's worker: per call (``timeout`` CPU seconds, ``timeout *
    wall_factor`` wall seconds; ``None``: the topic's own ``call_limit``, see :mod:`llmlab.topics`), per
    worker (``memory_mb``, ``cpu_seconds``, ``file_mb``) and per topic (``budget`` CPU seconds, ``budget *
    budget_wall_factor`` wall seconds; 0: no budget)."""
    timeout: float | None = None  # CPU seconds one call may use (load-independent, so verdicts are reproducible)
    wall_factor: float = 10.0  # ... and wall-clock seconds = timeout * wall_factor (catches sleeps, waits)
    memory_mb: int = 3072  # address space above what torch maps at start
    cpu_seconds: int = 600  # per worker lifetime
    file_mb: int = 16  # largest file a submission may write
    budget: float = 300.0  # CPU seconds for one submission's whole topic, all checks together (0: none)
    budget_wall_factor: float = 3.0  # ... and wall-clock seconds = budget * budget_wall_factor

    def for_topic(self, topic: str) -> "Limits":
        """These limits with ``timeout`` settled for ``topic``: the one given, else the topic's own."""
        if self.timeout is not None:
            return self
        from ..topics import call_limit

        return dataclasses.replace(self, timeout=call_limit(topic))


class SubmissionError(Exception):
    """The submission raised, hung, crashed or returned something that cannot be sent."""

    def __init__(self, kind: str, message: str, traceback: str = ""):
        super().__init__(message)
        self.kind = kind  # "raised", "timeout", "crashed", "missing", "invalid", "memory", "output", "import",
        # "budget"
        self.exc_type = ""  # kind "raised": the name of the exception's type
        self.message = message
        self.traceback = traceback
        # kind "raised": the mistakes this exception matches (set by ``checks.diagnosing``), read by
        # ``protocol.verdict`` when the feedback is written
        self.diagnosis: Diagnosis | None = None


class Unfinished(BaseException):
    """The answer cannot depend on the input: the function is an unfinished stub, is missing, or the
    worker already hung or crashed in this check. A ``BaseException``, so hypothesis does not replay
    and shrink such a failure dozens of times: the check ends at once, with ``error`` as its verdict."""

    def __init__(self, error: SubmissionError):
        super().__init__(error.message)
        self.error = error


_CONTEXT = None
_CALL_PROFILE = os.environ.get("LLMLAB_CALL_PROFILE", "")  # a file: one JSON line per call (its CPU seconds)
PRELOAD_MODELS = True  # False: the forkserver imports torch only (see ``needs_models``)
# What names a need for the model stack in a module that runs in a worker: the library, the trusted
# factories that build its objects, the kit's model and data loaders, a notebook's plotting imports.
_MODEL_WORDS = re.compile(r"transformers|factory\(\s*[\"'](?:hf_|smollm2|bert_classifier|scripted)|"
                          r"llmlab\.(?:models|data|serve|grading\.nbgrader)|matplotlib")


def needs_models(topics, folders=()) -> bool:
    """Whether grading ``topics`` may use the model stack in a worker: the topic's reference, graders,
    variants or module in a submission's ``folders`` (and the topics they import) name it. Only a run
    that needs none (``attention``, ``causal_mask``, ...) starts its forkserver without transformers."""
    from ..paths import GRADERS, SOLUTIONS

    seen, todo, texts = set(), list(topics), []
    while todo:
        topic = todo.pop()
        if topic in seen:
            continue
        seen.add(topic)
        for f in (SOLUTIONS / f"{topic}.py", GRADERS / f"test_{topic}.py", GRADERS / "variants" / f"{topic}.py",
                  *(Path(d) / f"{topic}.py" for d in folders)):
            if f.is_file():
                text = f.read_text(errors="replace")
                texts.append(text)
                todo += re.findall(r"^from \.(\w+) import", text, flags=re.M)  # a topic built on another
    return any(_MODEL_WORDS.search(t) for t in texts)


def _context():
    """A forkserver that has already imported torch: a worker starts in milliseconds, not seconds."""
    global _CONTEXT
    if _CONTEXT is None:
        _CONTEXT = multiprocessing.get_context("forkserver")
        # Imported once in the forkserver, not in every worker: transformers (seconds), and what a
        # notebook's import cell brings into an extracted submission (pyplot alone costs half a second).
        optional = ("transformers", "transformers.models.llama.modeling_llama",
                    "transformers.models.bert.modeling_bert", "numpy", "matplotlib.pyplot")
        os.environ.setdefault("MPLBACKEND", "Agg")
        preload = ["torch", "llmlab.grading.worker", "llmlab.grading.factories"]
        if PRELOAD_MODELS:
            preload += [*(m for m in optional if importlib.util.find_spec(m.split(".")[0])),
                        "llmlab.models", "llmlab.data", "llmlab.grading.nbgrader"]  # the runtime notebooks import
        # Every worker re-imports the parent's main module by name (multiprocessing's spawn preparation):
        # import it in the server first, so that costs nothing (e.g. ``pytest`` under ``python -m pytest``).
        main_spec = getattr(sys.modules.get("__main__"), "__spec__", None)
        if main_spec is not None and main_spec.name not in ("__main__", "__mp_main__"):
            preload.append(main_spec.name)
        _CONTEXT.set_forkserver_preload(preload)
    return _CONTEXT


class RemoteObject:
    """An object that lives in the worker (a student's ``nn.Module``, say)."""

    def __init__(self, sub: "BaseSubmission", handle: Handle, generation: int):
        self._sub = sub
        self._handle = handle
        self._generation = generation

    @property
    def type_name(self) -> str:
        """The class name of the object in the worker."""
        return self._handle.type_name

    def call(self, method: str, *args, keep: bool = False, **kwargs):
        """Call the object's method ``method`` in the worker; returns the result as plain data, or as a
        :class:`~llmlab.codec.Handle` to an object kept there (with ``keep=True``, or when it is not plain
        data). Raises :class:`SubmissionError` (or :class:`Unfinished`) as :meth:`BaseSubmission.call` does."""
        return self._sub._request({"op": "call", "handle": self._handle.id, "attr": method,
                                   "args": list(args), "kwargs": kwargs, "keep": keep},
                                  generation=self._generation, label=f"{self.type_name}.{method}")

    def __call__(self, *args, **kwargs):
        return self.call("__call__", *args, **kwargs)

    def get(self, attr: str, keep: bool = False):
        """The object's attribute ``attr``, as plain data or as a :class:`~llmlab.codec.Handle` (with
        ``keep=True``, or when it is not plain data)."""
        return self._sub._request({"op": "getattr", "handle": self._handle.id, "attr": attr, "keep": keep},
                                  generation=self._generation)

    def __repr__(self):
        return f"<remote {self.type_name}>"


class BaseSubmission:
    """What graders see: ``call``, ``new``, ``factory``, ``has``; results are plain data."""

    def __init__(self, name: str, topic: str):
        self.name = name
        self.topic = topic
        self.poisoned: SubmissionError | None = None  # this check is settled
        self.broken: SubmissionError | None = None  # the whole topic is settled (import, budget)
        self.exhausted_functions: dict[str, SubmissionError] = {}  # requests that hung or ran out of memory
        self.settled: dict[tuple[str, str], str] = {}  # (module, function) -> why; replaced in fresh workers
        self.output = ""  # what the submission printed, for feedback

    # graders use these -----------------------------------------------------------------------
    def call(self, function: str, *args, **kwargs):
        """Call ``<topic>.<function>(*args, **kwargs)`` in the submission."""
        return self._wrap(self._request({"op": "call", "module": self.topic, "attr": function,
                                         "args": list(args), "kwargs": kwargs}))

    def call_echo(self, function: str, *args, **kwargs):
        """Like :meth:`call`, but returns ``(result, args_after, kwargs_after)`` as the submission saw them
        after the call, to detect in-place modification of inputs."""
        return self._wrap(self._request({"op": "call", "module": self.topic, "attr": function,
                                         "args": list(args), "kwargs": kwargs, "echo": True}))

    def call_grad(self, function: str, *args, grad_of: int | None = None, **kwargs):
        """Call, then backpropagate ``output.sum()`` (``output[grad_of]`` for a tuple) inside the worker.

        Returns ``(result, grads)``: ``grads`` lists ``.grad`` of every tensor argument passed with
        ``requires_grad=True`` (positional first, then keyword), ``None`` where no gradient reached it.
        """
        return self._wrap(self._request({"op": "call", "module": self.topic, "attr": function,
                                         "args": list(args), "kwargs": kwargs, "grad_of": grad_of}))

    def get(self, name: str):
        """A module-level value of the submission (e.g. a constant), as plain data."""
        return self._wrap(self._request({"op": "getattr", "module": self.topic, "attr": name}))

    def new(self, cls: str, *args, **kwargs) -> RemoteObject:
        """Instantiate ``<topic>.<cls>(*args, **kwargs)`` and keep it in the worker."""
        value = self._request({"op": "call", "module": self.topic, "attr": cls, "args": list(args),
                               "kwargs": kwargs, "keep": True})
        return self._wrap(value)

    def factory(self, name: str, *args, **kwargs) -> RemoteObject:
        """Build a trusted library object (see :mod:`llmlab.grading.factories`) in the worker."""
        return self._wrap(self._request({"op": "factory", "name": name, "args": list(args), "kwargs": kwargs}))

    def has(self, attr: str) -> bool:
        """Whether the submission's module defines ``attr``."""
        return attr in self.names()

    def names(self) -> list[str]:
        """The names the submission's module defines, sorted (those starting with ``__`` left out)."""
        return self._request({"op": "import", "module": self.topic})

    def start_check(self):
        """Begin a new check: forget the previous check's settling failure (topic-wide ones stay)."""
        self.poisoned = None

    # internals ------------------------------------------------------------------------------
    def _wrap(self, value):
        from ..codec import Handle  # torch comes with it: not at import, so `llmlab grade` starts fast

        if isinstance(value, Handle):
            return RemoteObject(self, value, self._generation())
        if isinstance(value, tuple):
            return tuple(self._wrap(v) for v in value)
        if isinstance(value, list):
            return [self._wrap(v) for v in value]
        return value

    @staticmethod
    def _unwrap(value):
        if isinstance(value, RemoteObject):
            return value._handle
        if isinstance(value, (list, tuple)):
            return type(value)(BaseSubmission._unwrap(v) for v in value)
        if isinstance(value, dict):
            return {k: BaseSubmission._unwrap(v) for k, v in value.items()}
        return value

    def _generation(self) -> int:
        return 0

    def _request(self, req: dict, generation: int | None = None, label: str | None = None):
        label = label or req.get("attr") or req.get("name") or req["op"]
        settled = self.broken or self.poisoned or self.exhausted_functions.get(label)
        if settled is not None:
            # After a failed import, a hang, a crash or exhausted memory: fail at once, without replays.
            raise Unfinished(settled)
        req = self._unwrap(req)
        try:
            reply = self._exchange(req, generation)
        except SubmissionError as exc:
            if exc.kind == "timeout" or (exc.kind == "crashed" and "out of memory" in exc.message):
                self._settle(label, exc, getattr(exc, "where", None))
            raise
        self.output = (reply.get("stdout", "") + reply.get("stderr", ""))[-4000:]
        if reply.get("ok"):
            return reply.get("value")
        if reply.get("type") == "Settled":
            raise Unfinished(SubmissionError("settled", str(reply.get("message", ""))))
        err = SubmissionError("raised", f"{reply.get('type', 'Error')}: {reply.get('message', '')}",
                              reply.get("traceback", ""))
        err.exc_type = str(reply.get("type", ""))
        # Failures that would repeat on every call, each time as costly: restart, and settle the function.
        most = getattr(self, "limits", Limits()).file_mb  # only an isolated worker limits its output
        repeating = {"MemoryError": ("memory", f"your code ran out of memory (MemoryError) in `{label}`"),
                     "OutputLimitExceeded": ("output", f"your code printed more than {most} MB in one call of "
                                                       f"`{label}` (the same limit as a file's)")}
        if err.exc_type in repeating:
            self._restart()  # the next worker starts with the function replaced (see ``_settle``)
            kind, message = repeating[err.exc_type]
            exc_type, err = err.exc_type, SubmissionError(kind, message, err.traceback)
            err.exc_type = exc_type
            self.poisoned = err
            self._settle(label, err, _innermost(err.traceback))
            raise err
        if unfinished(err.exc_type, err.message):
            raise Unfinished(err)
        raise err

    def _settle(self, label: str, err: SubmissionError, where: tuple[str, str] | None):
        """``err`` (a hang, exhausted memory) would repeat: later calls of ``label``, and of the
        submission's function ``where`` (module, name) from anywhere, fail at once with it."""
        self.exhausted_functions[label] = err
        if where is not None:
            self.settled[where] = (f"`{where[1]}` already failed in an earlier call ({err.message}); "
                                   "every later call of it scores 0 without running it")
        err.message += "; later calls of this function score 0 without running it"

    def _restart(self):
        """Drop the worker (the next request starts a fresh one)."""


    def _exchange(self, req: dict, generation: int | None) -> dict:
        raise NotImplementedError

    def close(self):
        """Release what the submission holds (nothing here; a worker in subclasses)."""
        pass


class Submission(BaseSubmission):
    """A submission that runs in an isolated worker process."""

    def __init__(self, name: str, topic: str, directory: str, limits: Limits | None = None,
                 protected: list[str] | tuple = ()):
        super().__init__(name, topic)
        self.directory = os.path.realpath(directory)
        # never readable from the worker: the reference, the graders, the kit's tests, and whatever the
        # caller adds (other students' submissions); the submission's own folder stays readable
        self.protected = [str(p) for p in PROTECTED] + [str(KIT_ROOT / "tests"), str(KIT_ROOT / "notebooks")]
        self.protected += [str(p) for p in protected]
        self.limits = (limits or Limits()).for_topic(topic)
        self.process = None
        self.conn = None
        self.generation = 0
        self.scratch = None
        self.starts = 0
        self.cpu_used = 0.0  # CPU seconds of this topic's workers so far, against limits.budget
        self._last_cpu = 0.0
        self.wall_used = 0.0

    def _generation(self) -> int:
        return self.generation

    def _start(self):
        ctx = _context()
        parent, child = ctx.Pipe(duplex=True)
        self.scratch = tempfile.mkdtemp(prefix="llmlab-scratch-")
        from .worker import worker_main

        limits = {"memory_mb": self.limits.memory_mb, "cpu_seconds": self.limits.cpu_seconds,
                  "file_mb": self.limits.file_mb}
        self.process = ctx.Process(target=worker_main, daemon=True,
                                   args=(child, self.directory, self.protected, self.scratch, limits))
        self.process.start()
        child.close()
        self.conn = parent
        self.generation += 1
        self.starts += 1

    def _kill(self):
        if self.process is not None:
            pid = self.process.pid
            for target in (lambda: os.killpg(pid, signal.SIGKILL), lambda: os.kill(pid, signal.SIGKILL)):
                try:
                    target()
                except (ProcessLookupError, PermissionError, OSError):
                    pass
            self.process.join(timeout=5)
        if self.conn is not None:
            self.conn.close()
        if self.scratch:
            shutil.rmtree(self.scratch, ignore_errors=True)
        self.process = self.conn = self.scratch = None

    def _restart(self):
        self._kill()

    def _exchange(self, req: dict, generation: int | None) -> dict:
        if generation is not None and generation != self.generation:
            raise SubmissionError("crashed", "this object was lost when the worker restarted after an earlier failure")
        if self.process is None:
            self._start()
            self._import_module()
        return self._send(req)

    def _import_module(self):
        """Import the module before the first request of a fresh worker: an import that hangs, dies or
        raises would do the same in every check, so it settles the whole topic at once."""
        try:
            reply = self._send({"op": "import", "module": self.topic})
        except SubmissionError as exc:
            self.broken = SubmissionError("import", f"importing your module {self.topic}.py failed: "
                                                    f"{exc.message[0].lower() + exc.message[1:]}")
            raise Unfinished(self.broken) from None
        if reply.get("ok") and self.settled:
            self._send({"op": "settle", "functions": [[m, f, why] for (m, f), why in self.settled.items()]})
        if not reply.get("ok"):
            self._kill()
            self.broken = SubmissionError(
                "import", f"importing your module {self.topic}.py raised {reply.get('type', 'Error')}: "
                          f"{reply.get('message', '')} (every check of this topic needs it)", reply.get("traceback", ""))
            self.output = (reply.get("stdout", "") + reply.get("stderr", ""))[-4000:]
            raise Unfinished(self.broken)

    def _send(self, req: dict) -> dict:
        """One request to the live worker, under the call's limits and what is left of the budget."""
        limits = self.limits
        cpu_limit, wall_limit = limits.timeout, limits.timeout * limits.wall_factor
        if limits.budget:
            cpu_limit = min(cpu_limit, limits.budget - self.cpu_used)
            wall_limit = min(wall_limit, limits.budget * limits.budget_wall_factor - self.wall_used)
        cpu_start = self._last_cpu = _cpu_seconds(self.process.pid)
        started = time.monotonic()
        from ..codec import encode

        self.conn.send_bytes(encode(req))
        try:
            return self._wait(cpu_start, started, cpu_limit, wall_limit)
        finally:
            end = _cpu_seconds(self.process.pid) if self.process is not None else 0.0
            cpu = max(0.0, max(end, self._last_cpu) - cpu_start)
            self.cpu_used += cpu
            self.wall_used += time.monotonic() - started
            if _CALL_PROFILE:  # benchmarks/call_limits.py: what each call cost
                with open(_CALL_PROFILE, "a") as f:
                    f.write(json.dumps({"submission": self.name, "topic": self.topic, "op": req.get("op"),
                                        "attr": req.get("attr"), "cpu": round(cpu, 4),
                                        "wall": round(time.monotonic() - started, 4)}) + "\n")

    def _wait(self, cpu_start: float, started: float, cpu_limit: float, wall_limit: float) -> dict:
        limits = self.limits
        while True:
            left = started + wall_limit - time.monotonic()
            self._last_cpu = max(self._last_cpu, _cpu_seconds(self.process.pid))
            cpu = self._last_cpu - cpu_start
            if left <= 0 or cpu > cpu_limit:
                where = self._hung_function()
                self._kill()
                if limits.budget and (cpu_limit < limits.timeout and cpu > cpu_limit or
                                      wall_limit < limits.timeout * limits.wall_factor and left <= 0):
                    self.broken = SubmissionError(
                        "budget", f"grading stopped: your code used up this topic's budget of {limits.budget:g} "
                                  f"CPU seconds ({limits.budget * limits.budget_wall_factor:g} s of wall-clock time) "
                                  "for all its checks together; the remaining checks score 0")
                    raise Unfinished(self.broken)
                why = (f"used more than {limits.timeout:g} s of CPU time" if cpu > limits.timeout else
                       f"gave no answer within {limits.timeout * limits.wall_factor:g} s")
                self.poisoned = SubmissionError("timeout", f"no answer: your code {why} (an infinite loop, a wait "
                                                           "that never ends, or far too slow?)")
                self.poisoned.where = where
                raise self.poisoned
            try:
                ready = self.conn.poll(min(left, 0.5))
            except (EOFError, OSError):
                ready = True
            if ready:
                try:
                    data = self.conn.recv_bytes(maxlength=512 * 1024 * 1024)
                except (EOFError, OSError):
                    data = None
                if data is None:
                    self.process.join(timeout=2)
                    code = self.process.exitcode
                    self._kill()
                    self.poisoned = SubmissionError("crashed", _death_message(code))
                    raise self.poisoned
                from ..codec import CodecError, decode

                try:
                    reply = decode(data)
                    if not isinstance(reply, dict):
                        raise CodecError("reply is not a dict")
                    return reply
                except CodecError as exc:
                    self._kill()
                    self.poisoned = SubmissionError("invalid", f"the worker sent a malformed answer ({exc})")
                    raise self.poisoned
            elif not self.process.is_alive():
                code = self.process.exitcode
                self._kill()
                self.poisoned = SubmissionError("crashed", _death_message(code))
                raise self.poisoned

    def _hung_function(self) -> tuple[str, str] | None:
        """(module, function) of the innermost submission frame the worker is running, from the stack
        it dumps on our signal; None when it cannot tell."""
        from .worker import STACK_FILE, STACK_SIGNAL

        path = os.path.join(self.scratch, STACK_FILE)
        try:
            size = os.path.getsize(path)
            os.kill(self.process.pid, STACK_SIGNAL)
            for _ in range(20):
                time.sleep(0.05)
                if os.path.getsize(path) > size:
                    break
            time.sleep(0.05)
            with open(path, errors="replace") as f:
                text = f.read()[size:]
        except OSError:
            return None
        for line in text.splitlines():  # "  File "<path>", line N in <function>", most recent call first
            match = re.match(r'\s*File "(.+)", line \d+ in (\w+)', line)
            if match and os.path.dirname(os.path.realpath(match[1])) == self.directory:
                return os.path.splitext(os.path.basename(match[1]))[0], match[2]
        return None

    def close(self):
        """Kill the worker and remove its scratch folder (a later request starts a fresh worker)."""
        self._kill()


_TICKS = os.sysconf("SC_CLK_TCK")


def _cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (0 when it is gone)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / _TICKS
    except (OSError, IndexError, ValueError):
        return 0.0


def _innermost(traceback: str) -> tuple[str, str] | None:
    """(module, function) of the last frame of a worker's student traceback ("File "x.py", line N, in f")."""
    frames = re.findall(r'File "([^"/]+)\.py", line \d+, in (\w+)', traceback)
    return frames[-1] if frames else None


def _death_message(code) -> str:
    if code is None:
        return "the process running your code died"
    if code < 0:
        name = signal.Signals(-code).name if -code in signal.Signals._value2member_map_ else str(-code)
        if name == "SIGKILL":
            return "the process running your code was killed (out of memory?)"
        if name == "SIGXCPU":
            return "the process running your code used up its CPU time"
        return f"the process running your code died with signal {name}"
    return f"the process running your code exited with status {code} (did it call sys.exit or os._exit?)"


class LocalSubmission(BaseSubmission):
    """Trusted code in this process, through the same interface and the same codec."""

    def __init__(self, name: str, topic: str, module: types.ModuleType):
        super().__init__(name, topic)
        self.module = module
        self.objects: dict[int, object] = {}

    def _exchange(self, req: dict, generation: int | None) -> dict:
        from ..codec import decode, encode
        from .worker import Worker

        worker = Worker.__new__(Worker)
        worker.objects, worker.modules, worker.directory = self.objects, {self.topic: self.module}, ""
        worker.next_id = max(self.objects, default=0) + 1
        worker.module = lambda name: self.module
        try:
            value = worker.handle(decode(encode(req)))
            return decode(encode({"ok": True, "value": value}))
        except Exception as exc:  # noqa: BLE001
            return {"ok": False, "type": type(exc).__name__, "message": str(exc), "traceback": ""}
