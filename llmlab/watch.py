"""``llmlab watch``: re-grade a topic each time its module or notebook is saved, in about a second.

A cold ``llmlab grade`` spends most of its time starting up: pytest, torch, the graders, the
forkserver that workers are forked from. Here one grading session process stays alive and pays that
once; each save then runs the same pytest session (``runner.session_args``: the same plugin, the
same spec, the same isolated workers and limits) inside it. Before every grading the session's
random generators are put back as they were when it started, so a warm score equals a cold one.

The folder is polled (stdlib only: modification times every ``interval`` seconds); a burst of
writes (an editor's save, a notebook's autosave) is one change once the files are quiet for
``settle`` seconds, and each changed topic is graded once.
"""
from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from . import topics as topic_registry
from .grading.runner import add_limit_options
from .paths import KIT_ROOT

SERVE_FLAG = "--llmlab-serve"


class WarmSession:
    """A grading session process that stays alive between gradings (``with WarmSession() as s``)."""

    def __init__(self, limits=None):
        from .grading.remote import Limits

        self.limits = limits or Limits()
        self.proc: subprocess.Popen | None = None

    def __enter__(self):
        self.start()
        return self

    def __exit__(self, *exc):
        self.close()

    def start(self) -> None:
        """Start the session process unless it runs; returns once it is ready. Raises
        :class:`~llmlab.grading.runner.GradingError` if it does not start."""
        from .grading.runner import GradingError, session_env

        if self.proc is not None and self.proc.poll() is None:
            return
        self.proc = subprocess.Popen([sys.executable, "-m", "llmlab.watch", SERVE_FLAG], cwd=KIT_ROOT,
                                     env=session_env(), stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.DEVNULL, text=True)
        if self.proc.stdout.readline().strip() != "ready":
            self.close()
            raise GradingError("the warm grading session did not start")

    def grade(self, path: str | Path, topics: list[str]):
        """Grade ``path`` on ``topics`` as ``runner.grade`` does; returns ``{name: SubmissionResult}``."""
        from .grading.runner import GradingError, check_topics, read_results, session_args, write_spec

        topics = check_topics(topics)
        self.start()
        path = Path(path)
        submissions = {path.resolve().name or str(path): path}
        workdir = Path(tempfile.mkdtemp(prefix="llmlab-watch-"))
        try:
            notes = write_spec(workdir, submissions, topics, limits=self.limits)
            self.proc.stdin.write(json.dumps({"args": session_args(workdir, topics)}) + "\n")
            self.proc.stdin.flush()
            line = self.proc.stdout.readline()
            if not line:  # the session died: the next grading starts a fresh one
                self.close()
                raise GradingError("the warm grading session stopped unexpectedly")
            return read_results(workdir, submissions, topics, notes, json.loads(line)["output"])
        finally:
            shutil.rmtree(workdir, ignore_errors=True)

    def close(self) -> None:
        """Stop the session: end of input, then (a grading still running) an interrupt, then a kill."""
        proc, self.proc = self.proc, None
        if proc is None:
            return
        for step in ("eof", "interrupt", "kill"):
            if proc.poll() is not None:
                break
            if step == "eof":
                try:
                    proc.stdin.close()
                except OSError:
                    pass
            elif step == "interrupt":
                proc.send_signal(signal.SIGINT)  # pytest ends the session and closes its workers
            else:
                proc.kill()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                continue
        proc.stdout.close()


def serve() -> None:
    """The session process: answer each line of arguments with one pytest run of them, in-process."""
    import contextlib
    import gc
    import io
    import random

    reply = os.fdopen(os.dup(1), "w")
    os.dup2(os.open(os.devnull, os.O_WRONLY), 1)  # only replies go to the caller
    import pytest
    import torch
    from multiprocessing import forkserver

    from .grading import plugin, remote  # noqa: F401 - imported once, here

    remote._context()
    forkserver.ensure_running()  # the forkserver (torch already imported) is started once too
    torch_state, python_state = torch.random.get_rng_state(), random.getstate()
    gc.freeze()  # what is imported now lives as long as the session: the collector need not walk it again
    print("ready", file=reply, flush=True)
    try:
        for line in sys.stdin:
            # every grading starts from the state a cold session starts from
            torch.random.set_rng_state(torch_state)
            random.setstate(python_state)
            output = io.StringIO()
            with contextlib.redirect_stdout(output), contextlib.redirect_stderr(output):
                pytest.main(json.loads(line)["args"])
            print(json.dumps({"output": output.getvalue()[-3000:]}), file=reply, flush=True)
    except KeyboardInterrupt:
        pass


def watched_files(path: Path) -> dict[Path, tuple[int, int]]:
    """(modification time, size) of every module and notebook that grading reads from ``path``."""
    if path.is_file():
        files = [path]
    else:
        files = [f for pattern in ("*.py", "*/*.py", "**/*.ipynb") for f in path.glob(pattern)
                 if ".ipynb_checkpoints" not in f.parts and not f.name.startswith("test_")]
    found = {}
    for f in files:
        try:
            st = f.stat()
        except OSError:  # removed while we looked
            continue
        found[f] = (st.st_mtime_ns, st.st_size)
    return found


def topics_of(files, chosen: list[str]) -> list[str]:
    """The topics, among ``chosen``, that the changed ``files`` hold (in ``chosen``'s order)."""
    hit = set()
    for f in files:
        if f.suffix == ".py":
            hit.add(f.stem)
        elif f.suffix == ".ipynb":
            hit.update(topic_registry.topics_of_notebook(f.name) or (chosen if len(chosen) == 1 else ()))
    return [t for t in chosen if t in hit]


def watch(path: str | Path, topics: list[str], *, session: WarmSession, interval: float = 0.3,
          settle: float = 0.3, stop=lambda: False, show=print) -> int:
    """Grade ``path`` on ``topics`` now, then each changed topic after every save, until ``stop()``
    is true (or Ctrl-C). ``show`` gets each report. Returns how many gradings ran."""
    from .grading import report
    from .grading.runner import GradingError

    path = Path(path)

    def run(which: list[str]) -> None:
        started = time.monotonic()
        try:
            results = session.grade(path, which)
        except GradingError as exc:
            show(f"llmlab watch: {exc}\n")
            return
        show(report.table(results) + f"graded {', '.join(which)} in {time.monotonic() - started:.1f} s; "
             f"watching {path} (Ctrl-C to stop)\n")

    seen = watched_files(path)
    run(topics)
    gradings = 1
    while not stop():
        time.sleep(interval)
        now = watched_files(path)
        if now == seen:
            continue
        while True:  # wait until the burst of writes is over
            time.sleep(settle)
            later = watched_files(path)
            if later == now:
                break
            now = later
        changed = [f for f in now.keys() | seen.keys() if now.get(f) != seen.get(f)]
        seen = now
        which = topics if path.is_file() else topics_of(changed, topics)  # one file: whatever its name
        if which:
            run(which)
            gradings += 1
    return gradings


def _cmd_watch(args) -> int:
    from .cli import default_topics
    from .grading.remote import Limits
    from .grading.runner import GradingError, check_topics

    path = Path(args.path)
    if not path.exists():
        print(f"llmlab watch: {path} does not exist", file=sys.stderr)
        return 2
    try:
        topics = check_topics(args.topic or default_topics(path) or None)
        limits = Limits(timeout=args.timeout, memory_mb=args.memory_mb)
        print(f"llmlab watch: starting a grading session for {', '.join(topics)} ...", flush=True)
        with WarmSession(limits) as session:
            watch(path, topics, session=session, show=lambda text: print(text, flush=True))
    except GradingError as exc:
        print(f"llmlab watch: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("\nllmlab watch: stopped", flush=True)
    return 0


def add_parser(sub) -> None:
    """Register ``llmlab watch`` on ``sub`` (the subparsers of :mod:`llmlab.cli`)."""
    w = sub.add_parser("watch", help="re-grade a topic each time you save its module or notebook")
    w.add_argument("path", nargs="?", default="exercises",
                   help="folder of <topic>.py modules and/or notebooks, one module, or one notebook (default: exercises)")
    w.add_argument("--topic", action="append", help="watch only this topic (repeatable); default: what PATH holds")
    add_limit_options(w)
    w.set_defaults(func=_cmd_watch)


if __name__ == "__main__" and sys.argv[1:] == [SERVE_FLAG]:
    serve()
