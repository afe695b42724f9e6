"""The IMDB loader the notebook uses (``llmlab.data.load_imdb``) and ``clean_review`` on real reviews.

The loader takes the course's sample (a folder of ``train.jsonl``/``test.jsonl``), a full ``aclImdb/``
folder, or ``datasets``; a setting (``source=``) or the environment (``LLMLAB_IMDB``) chooses, and the
error when nothing is found names every option. The kit itself never contains review texts.
"""
from __future__ import annotations

import json
import re
import sys

import pytest

from llmlab.data import DataNotFound, load_imdb
from llmlab.paths import KIT_ROOT
from solutions.imdb_bert import clean_review

# one worker runs the whole module, so its module-scoped fixture is built once, not once per worker
pytestmark = pytest.mark.xdist_group("imdb_sample")


def _fake_aclimdb(root):
    """A miniature aclImdb/: 3 positive and 2 negative reviews per split, with <br /> tags."""
    texts = {}
    for split in ("train", "test"):
        for polarity, label, n in (("pos", 1, 3), ("neg", 0, 2)):
            folder = root / "aclImdb" / split / polarity
            folder.mkdir(parents=True)
            for i in range(n):
                text = f"{split} {polarity} review {i}.<br /><br />It was {'great' if label else 'awful'}."
                (folder / f"{i}_{7 if label else 2}.txt").write_text(text, encoding="utf-8")
                texts[text] = label
    return texts


def test_aclimdb_folder_by_argument(tmp_path):
    texts = _fake_aclimdb(tmp_path)
    for source in (tmp_path, tmp_path / "aclImdb"):  # the folder holding aclImdb/, or aclImdb/ itself
        rows = load_imdb("train", source=source)
        assert len(rows) == 5
        assert all(texts[r["text"]] == r["label"] for r in rows)
        assert [r["label"] for r in rows] != sorted(r["label"] for r in rows)  # shuffled, not sorted by label
        assert rows == load_imdb("train", source=source)  # reproducibly


def test_aclimdb_folder_by_environment(tmp_path, monkeypatch):
    texts = _fake_aclimdb(tmp_path)
    monkeypatch.setenv("LLMLAB_IMDB", str(tmp_path / "aclImdb"))
    rows = load_imdb("test")
    assert sorted(r["text"] for r in rows) == sorted(t for t in texts if t.startswith("test"))


def test_balanced_subset(tmp_path):
    _fake_aclimdb(tmp_path)
    rows = load_imdb("train", 4, source=tmp_path)
    assert sorted(r["label"] for r in rows) == [0, 0, 1, 1]
    assert rows == load_imdb("train", 4, source=tmp_path)


def test_jsonl_folder(tmp_path):
    for split, n in (("train", 4), ("test", 2)):
        with open(tmp_path / f"{split}.jsonl", "w") as f:
            for i in range(n):
                f.write(json.dumps({"id": f"{split}/{i}", "text": f"review {i}", "label": i % 2, "rating": 1}) + "\n")
    rows = load_imdb("train", source=tmp_path)
    assert rows == [{"text": f"review {i}", "label": i % 2} for i in range(4)]


def test_missing_data_names_every_option(tmp_path, monkeypatch):
    monkeypatch.setenv("LLMLAB_IMDB", str(tmp_path / "nowhere"))
    with pytest.raises(DataNotFound) as info:
        load_imdb("train")
    message = str(info.value)
    for option in ("train.jsonl", "aclImdb", "datasets", "LLMLAB_IMDB", "source", str(tmp_path / "nowhere")):
        assert option in message
    with pytest.raises(DataNotFound):
        load_imdb("test", source=tmp_path)  # an existing folder with nothing in it


def test_datasets_option_without_the_package(monkeypatch):
    monkeypatch.setitem(sys.modules, "datasets", None)  # `import datasets` now fails
    with pytest.raises(DataNotFound, match="pip install datasets"):
        load_imdb("train", source="datasets")


def test_bad_split():
    with pytest.raises(ValueError):
        load_imdb("validation")


@pytest.fixture(scope="module")
def sample():
    return load_imdb("train"), load_imdb("test")  # DataNotFound says where it looked


def test_shared_sample_sizes_and_balance(sample):
    train, test = sample
    assert (len(train), len(test)) == (2000, 1000)
    assert sum(r["label"] for r in train) == 1000 and sum(r["label"] for r in test) == 500
    subset = load_imdb("train", 200, seed=3)
    assert sum(r["label"] for r in subset) == 100 and len({r["text"] for r in subset}) == 200


def test_clean_review_on_real_reviews(sample):
    train, _ = sample
    with_breaks = [r["text"] for r in train if "<br" in r["text"]]
    assert len(with_breaks) > 500  # the reason the notebook cleans them
    for text in with_breaks[:300]:
        cleaned = clean_review(text)
        assert "<br" not in cleaned.lower() and "  " not in cleaned and cleaned == cleaned.strip()
        assert re.sub(r"\s+", "", cleaned) == re.sub(r"\s+", "", re.sub(r"(?i)<br\s*/?>", "", text))


def test_the_kit_bundles_no_review_text(sample):
    """No file of the kit (notebooks included: they are committed without outputs) holds review text."""
    train, test = sample
    plain = re.compile(r"[A-Za-z0-9,.!?;:()'-]+")  # words that read the same in .py, .md, .json and .ipynb
    snippets = []
    for r in train[:40] + test[:40]:
        words = r["text"].split()
        for start in range(0, max(0, len(words) - 12), 4):
            window = words[start:start + 12]
            if all(plain.fullmatch(w) for w in window):
                snippets.append(" ".join(window).encode())
                break
    assert len(snippets) > 40
    skip = {".git", "__pycache__", ".hypothesis", ".pytest_cache", "build", "dist", ".venv", "out"}
    offenders = []
    for path in KIT_ROOT.rglob("*"):
        if any(part in skip or part.endswith(".egg-info") for part in path.relative_to(KIT_ROOT).parts):
            continue
        if path.is_file() and path.stat().st_size < 20_000_000:
            data = b" ".join(path.read_bytes().split())
            if any(s in data for s in snippets):
                offenders.append(str(path.relative_to(KIT_ROOT)))
    assert not offenders, f"review text found in {offenders}"
