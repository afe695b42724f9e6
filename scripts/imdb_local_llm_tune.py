"""Choose the `imdb-local-llm.ipynb` prompt and decision rule on training reviews only (issue 22).

The test reviews are never looked at here. The training split is cut in two: the few-shot examples come
from its first reviews (as `pick_examples` takes them), and a balanced *dev* set of ``--n`` reviews from
its end. Each configuration (shots x review length) scores the dev reviews once with the kit's reference
`label_logprobs`; every decision rule is then computed from the same scores:

* ``argmax``: the more likely label word;
* ``calibrated``: contextual calibration with the ``N/A`` content-free input (the notebook's section 3);
* ``batch-calibrated``: `calibrate` with the mean scores of the scored batch as the content-free scores
  (batch calibration, Zhou et al. 2024: the unlabelled reviews themselves estimate the prompt's bias; with
  two labels, a review is positive when its margin is above the batch's mean margin);
* ``dev threshold``: the margin threshold that is best on the other half of the dev set (two-fold), i.e. a
  threshold learned from labelled training reviews.

    python scripts/imdb_local_llm_tune.py --out /tmp/tune.json                       # the default grid
    python scripts/imdb_local_llm_tune.py --configs 2:120 4:200 --n 100 --threads 1    # a quick look

Scores are cached in ``--out`` per configuration, so an interrupted run resumes.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from llmlab.data import load_imdb  # noqa: E402
from llmlab.models import load_smollm2  # noqa: E402
from imdb_local_llm_full import pick_examples, score_all, shorten  # noqa: E402  (this script's own folder)
from solutions.imdb_local_llm import build_messages, calibrate, label_logprobs  # noqa: E402


def dev_split(train: list[dict], n: int) -> list[dict]:
    """``n`` balanced reviews from the end of the training split (the few-shot pool is its start)."""
    pos = [r for r in reversed(train) if r["label"] == 1][:n // 2]
    neg = [r for r in reversed(train) if r["label"] == 0][:n - n // 2]
    return [r for pair in zip(pos, neg) for r in pair] + pos[len(neg):] + neg[len(pos):]


def accuracy(pred: torch.Tensor, labels: torch.Tensor) -> float:
    return float((pred == labels).float().mean())


def best_threshold(margin: torch.Tensor, labels: torch.Tensor) -> float:
    """The threshold (between two sorted margins) with the highest accuracy on these reviews."""
    values = torch.sort(margin).values
    cuts = torch.cat([values[:1] - 1, (values[1:] + values[:-1]) / 2, values[-1:] + 1])
    return float(max(cuts.tolist(), key=lambda t: accuracy((margin > t).long(), labels)))


def rules(scores: torch.Tensor, cf: torch.Tensor, labels: torch.Tensor) -> dict[str, float]:
    margin = scores[:, 1] - scores[:, 0]
    half = len(labels) // 2
    a, b = slice(0, half), slice(half, None)
    two_fold = torch.empty_like(labels)
    two_fold[a] = (margin[a] > best_threshold(margin[b], labels[b])).long()
    two_fold[b] = (margin[b] > best_threshold(margin[a], labels[a])).long()
    return {"argmax": accuracy(scores.argmax(-1), labels),
            "calibrated": accuracy(calibrate(scores, cf).argmax(-1), labels),
            "batch-calibrated": accuracy(calibrate(scores, scores.mean(0, keepdim=True)).argmax(-1), labels),
            "dev threshold": accuracy(two_fold, labels)}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=300, help="dev reviews from the end of the training split")
    ap.add_argument("--configs", nargs="+", default=["2:120", "4:120", "4:200", "6:120"],
                    help="SHOTS:MAX_WORDS pairs (MAX_WORDS 0 keeps whole reviews)")
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--out", help="JSON file: cached scores and the table")
    args = ap.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    cache = json.loads(Path(args.out).read_text()) if args.out and Path(args.out).exists() else {}
    train = load_imdb("train")
    dev = dev_split(train, args.n)
    labels = torch.tensor([r["label"] for r in dev])
    model = tokenizer = None
    for config in args.configs:
        key = f"{config}/{args.n}"
        if key not in cache:
            if model is None:
                model, tokenizer = load_smollm2()
            shots, max_words = (int(x) for x in config.split(":"))
            examples = pick_examples(train, shots) if shots else []
            reviews = [shorten(r["text"], max_words or None) for r in dev]
            scores, seconds = score_all(model, tokenizer, reviews, examples, args.batch_size)
            cf = label_logprobs(model, tokenizer, [build_messages("N/A", examples=examples)])[0]
            cache[key] = {"scores": scores.tolist(), "cf": cf.tolist(), "seconds_per_review": seconds / len(dev)}
            if args.out:
                Path(args.out).write_text(json.dumps(cache))
        entry = cache[key]
        entry["rules"] = rules(torch.tensor(entry["scores"]), torch.tensor(entry["cf"]), labels)
        print(f"{config:>8s}  " + "  ".join(f"{k} {v:6.1%}" for k, v in entry["rules"].items())
              + f"  ({entry['seconds_per_review']:.2f} s/review)", flush=True)
    if args.out:
        Path(args.out).write_text(json.dumps(cache))
    return 0


if __name__ == "__main__":
    sys.exit(main())
