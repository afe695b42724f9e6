"""Shared parts of the full-size run scripts (``scripts/*_full.py``): their command lines and running the
built notebook with ``nbbuild.execute``."""
from __future__ import annotations

import argparse
import ast
import base64
import json
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


def out_and_overrides(doc: str, default_out: str, out_help: str, defaults=lambda out: {}):
    """Parse ``--out`` and the repeatable ``-p NAME=python-literal`` overrides.

    Returns (the ``--out`` folder, resolved; the parameters: ``defaults(out)`` updated by the overrides)."""
    parser = argparse.ArgumentParser(description=doc.splitlines()[0])
    parser.add_argument("--out", default=default_out, help=out_help)
    parser.add_argument("-p", "--parameter", action="append", default=[],
                        help="override a parameter, NAME=python-literal (repeatable)")
    args = parser.parse_args()
    out = Path(args.out).resolve()
    params = defaults(out)
    for item in args.parameter:
        key, _, value = item.partition("=")
        params[key.strip()] = ast.literal_eval(value.strip())
    return out, params


def save_figures(out: Path, name: str, other_output=None) -> None:
    """Write each PNG output of the executed notebook ``out/<name>.executed.ipynb`` to ``out/figure-NN.png``;
    ``other_output(cell index, output)``, if given, sees every other output of its code cells."""
    executed = json.loads((out / f"{name}.executed.ipynb").read_text())
    figure = 0
    for n, cell in enumerate(executed["cells"]):
        for output in cell.get("outputs", []) if cell["cell_type"] == "code" else []:
            if "image/png" in output.get("data", {}):
                figure += 1
                (out / f"figure-{figure:02d}.png").write_bytes(base64.b64decode(output["data"]["image/png"]))
            elif other_output is not None:
                other_output(n, output)


def results_parser(doc: str, name: str, threads: bool = False) -> argparse.ArgumentParser:
    """The command line of a script whose notebook writes ``results.json``: ``--out`` (default
    ``<tmp>/llmlab-runs/<name>``) and, with ``threads``, ``--threads``; the script adds its sizes."""
    parser = argparse.ArgumentParser(description=doc.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path(tempfile.gettempdir()) / "llmlab-runs" / name,
                        help="folder for the executed notebook and results.json")
    if threads:
        parser.add_argument("--threads", type=int, default=0, help="torch threads in the kernel (0: torch's default)")
    return parser


def run_for_results(name: str, out: Path, params: dict) -> dict:
    """Execute notebook ``name`` in ``out`` with ``params`` and ``RESULTS_PATH`` (``out/results.json``), print
    what ran and how long it took, and return the results the notebook wrote."""
    from llmlab import nbbuild

    results = out.resolve() / "results.json"
    params = dict(params, RESULTS_PATH=str(results))
    seconds = nbbuild.execute(name, out, params)
    print(f"{name}: {params} in {seconds:.0f} s")
    return json.loads(results.read_text())
