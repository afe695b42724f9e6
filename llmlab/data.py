"""IMDB reviews (aclImdb, Maas et al. 2011), loaded from where the user keeps them.

The kit never bundles review texts. Sources, in order of preference:

1. ``source=`` argument or the ``LLMLAB_IMDB`` environment variable: a folder holding
   ``train.jsonl``/``test.jsonl`` (the course's sample), or a full ``aclImdb/`` folder
   (``train/pos/*.txt`` ...), or the word ``datasets`` (Hugging Face ``datasets``, needs a network);
2. the course's shared sample beside the checkout: ``../shared/data/imdb/``.

Each review is a dict ``{"text": str, "label": int}`` (1 = positive).
"""
from __future__ import annotations

import json
import os
import random
from pathlib import Path

from .paths import shared_dir


class DataNotFound(FileNotFoundError):
    """No IMDB reviews where :func:`resolve_source` looked (or ``datasets`` is not installed)."""


def _from_jsonl(path: Path) -> list[dict]:
    with open(path, encoding="utf-8") as f:
        return [{"text": r["text"], "label": int(r["label"])} for r in map(json.loads, filter(str.strip, f))]


def _from_aclimdb(folder: Path, split: str) -> list[dict]:
    rows = []
    for label, sub in ((0, "neg"), (1, "pos")):
        for f in sorted((folder / split / sub).glob("*.txt")):
            rows.append({"text": f.read_text(encoding="utf-8"), "label": label})
    random.Random(0).shuffle(rows)  # aclImdb is sorted by label; mix it, reproducibly
    return rows


def _from_datasets(split: str) -> list[dict]:
    try:
        import datasets
    except ImportError as exc:
        raise DataNotFound("LLMLAB_IMDB=datasets needs the `datasets` package (pip install datasets)") from exc
    ds = datasets.load_dataset("imdb", split=split)
    return [{"text": r["text"], "label": int(r["label"])} for r in ds]


def resolve_source(source: str | os.PathLike | None = None) -> str | Path:
    """Where the reviews come from: ``"datasets"``, or the folder (a ``Path``) given by ``source``, else
    ``$LLMLAB_IMDB``, else ``../shared/data/imdb``. A folder counts if it holds ``test.jsonl``,
    ``train/pos/`` or ``aclImdb/train/``; raises :class:`DataNotFound` otherwise."""
    choice = source or os.environ.get("LLMLAB_IMDB")
    if choice == "datasets":
        return "datasets"
    candidates = [Path(choice)] if choice else [shared_dir() / "data" / "imdb"]
    for c in candidates:
        if (c / "test.jsonl").exists() or (c / "train" / "pos").is_dir() or (c / "aclImdb" / "train").is_dir():
            return c
    raise DataNotFound(
        "no IMDB reviews found. Give one of: a folder with train.jsonl/test.jsonl (the course sample, e.g. "
        "../shared/data/imdb), a full aclImdb/ folder, or 'datasets' (needs network) -- via the `source` "
        f"argument or LLMLAB_IMDB=... (looked in: {', '.join(str(c) for c in candidates)})")


def load_imdb(split: str = "test", n: int | None = None, *, source=None, seed: int = 0) -> list[dict]:
    """Reviews of ``split`` (``train`` or ``test``); ``n`` takes a label-balanced random subset."""
    if split not in ("train", "test"):
        raise ValueError("split must be 'train' or 'test'")
    where = resolve_source(source)
    if where == "datasets":
        rows = _from_datasets(split)
    elif (where / f"{split}.jsonl").exists():
        rows = _from_jsonl(where / f"{split}.jsonl")
    else:
        rows = _from_aclimdb(where / "aclImdb" if (where / "aclImdb").is_dir() else where, split)
    if n is not None and n < len(rows):
        rng = random.Random(seed)
        pos = [r for r in rows if r["label"] == 1]
        neg = [r for r in rows if r["label"] == 0]
        rng.shuffle(pos)
        rng.shuffle(neg)
        rows = pos[: (n + 1) // 2] + neg[: n // 2]
        rng.shuffle(rows)
    return rows
