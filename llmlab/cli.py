"""The ``llmlab`` command."""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from . import classroom, serve, watch
from . import topics as topic_registry
from .grading.runner import add_limit_options


def _cmd_grade(args) -> int:
    from .grading import report
    from .grading.remote import Limits
    from .grading.runner import GradingError, grade

    started = time.monotonic()
    limits = Limits(timeout=args.timeout, memory_mb=args.memory_mb,
                    **({"budget": args.budget} if args.budget is not None else {}))
    path = Path(args.submission)
    chosen = args.topic or default_topics(path)
    try:
        results = grade({path.resolve().name or str(path): path}, chosen or None, limits=limits)
    except GradingError as exc:
        print(f"llmlab grade: {exc}", file=sys.stderr)
        return 2
    if args.format == "json":
        text = report.to_json(results)
    elif args.format == "junit":
        text = report.junit(results)
    else:
        text = report.table(results, details=not args.summary)
        text += f"graded in {time.monotonic() - started:.1f} s\n"
    if args.output:
        Path(args.output).write_text(text)
    else:
        print(text)
    return 0


def default_topics(path: Path) -> list[str] | None:
    """The topics a submission is graded on without ``--topic`` (None: every topic)."""
    if path.suffix == ".py" and path.stem in topic_registry.topic_names():
        return [path.stem]  # one module: grade its topic only
    if path.suffix == ".ipynb":
        return topic_registry.topics_of_notebook(path.name) or None
    if path.is_dir():
        return classroom.submission_topics(path) or None  # what it holds; nothing at all: every topic scores 0
    return None


def _cmd_stubs(args) -> int:
    from .stubgen import write_stubs

    names = args.topic or topic_registry.topic_names()
    for path in write_stubs(names):
        print(f"wrote {path}")
    return 0


def _cmd_notebooks(args) -> int:
    from .nbbuild import build_all

    for path in build_all(args.name or None):
        print(f"wrote {path}")
    return 0


def _cmd_topics(args) -> int:
    for t in topic_registry.all_topics():
        print(f"{t.name:16} {t.notebook:26} {t.call_limit:>4g} s  {t.title}")
    return 0


def main(argv=None) -> int:
    """Run the ``llmlab`` command with ``argv`` (default: ``sys.argv[1:]``); returns the subcommand's exit
    status (``llmlab grade``: 0, or 2 when grading could not run). argparse raises ``SystemExit`` for
    ``--help`` and for invalid arguments."""
    parser = argparse.ArgumentParser(prog="llmlab", description="Exercises and autograding for the LLM course.")
    sub = parser.add_subparsers(dest="command", required=True)

    g = sub.add_parser("grade", help="grade one submission (a folder, a module or a notebook)")
    g.add_argument("submission", help="folder of <topic>.py modules and/or notebooks, one module, or one notebook")
    g.add_argument("--topic", action="append", help="grade only this topic (repeatable); default: all")
    g.add_argument("--format", choices=["table", "json", "junit"], default="table")
    g.add_argument("--output", help="write the report here instead of standard output")
    add_limit_options(g, budget_help="CPU seconds for one topic's checks together (default 300); then the rest "
                                     "score 0")
    g.add_argument("--summary", action="store_true", help="table: scores only, no feedback")
    g.set_defaults(func=_cmd_grade)

    s = sub.add_parser("stubs", help="regenerate exercises/<topic>.py from solutions/")
    s.add_argument("--topic", action="append")
    s.set_defaults(func=_cmd_stubs)

    n = sub.add_parser("notebooks", help="rebuild the notebooks from notebooks/src/")
    n.add_argument("name", nargs="*")
    n.set_defaults(func=_cmd_notebooks)

    t = sub.add_parser("topics", help="list the topics")
    t.set_defaults(func=_cmd_topics)

    # Further commands live in their own modules, each with ``add_parser(subparsers)``.
    for module in (serve, classroom, watch):
        module.add_parser(sub)

    args = parser.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
