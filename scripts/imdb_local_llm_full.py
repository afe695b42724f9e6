"""Full-size measurement for `imdb-local-llm.ipynb`: SmolLM2-135M-Instruct as a zero-training classifier.

Scores the shared IMDB test reviews (1,000 by default) with the kit's reference `label_logprobs`, zero-shot
and few-shot, and derives from the same scores the plain, the contextually calibrated (`calibrate` with a
content-free input) and the batch-calibrated predictions (`calibrate` with the mean scores of the
unlabelled test reviews), so each review is run through the model once per prompt. A consistency check
confirms that the kit's `classify` gives the same labels on the first reviews. Reports accuracy, the share of
"positive" answers, confusion matrices, and the wall time per review, and writes everything as JSON.

    python scripts/imdb_local_llm_full.py --out results.json            # the numbers of the report
    python scripts/imdb_local_llm_full.py --n 100 --threads 2           # a quick look

For comparison it also prints what a threshold chosen with the test labels themselves would give
(the best threshold, and the balanced one that calls half the reviews positive): neither is a
classifier one could deploy, both say how well the scores separate the classes.
"""
from __future__ import annotations

import argparse
import json
import platform
import re
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from llmlab.data import load_imdb  # noqa: E402
from llmlab.models import load_smollm2  # noqa: E402
from solutions.imdb_local_llm import build_messages, calibrate, classify, label_logprobs  # noqa: E402


def clean(text: str) -> str:
    """HTML line breaks and runs of whitespace become one space."""
    return re.sub(r"\s+", " ", text.replace("<br />", " ")).strip()


def shorten(text: str, max_words: int | None) -> str:
    """The review, cleaned; if longer than ``max_words`` words, its first and last halves around '...'."""
    words = clean(text).split()
    if max_words is None or len(words) <= max_words:
        return " ".join(words)
    return " ".join(words[:max_words // 2] + ["..."] + words[-(max_words - max_words // 2):])


def pick_examples(train: list[dict], k: int, *, min_words: int = 25, max_words: int = 70) -> list[tuple[str, int]]:
    """``k`` short training reviews, labels in the order positive, negative, negative, positive, ... (balanced,
    and neither label always last), taken in the file's order: deterministic."""
    pattern = [1, 0, 0, 1]
    chosen, used = [], set()
    for i in range(k):
        label = pattern[i % 4]
        j = next(j for j, r in enumerate(train) if j not in used and r["label"] == label
                 and min_words <= len(r["text"].split()) < max_words)
        used.add(j)
        chosen.append((clean(train[j]["text"]), label))
    return chosen


def score_all(model, tokenizer, reviews, examples, batch_size):
    """(n, 2) label log-probabilities, batched by length like `classify`, and the seconds it took."""
    order = sorted(range(len(reviews)), key=lambda i: len(reviews[i]))
    scores = torch.empty(len(reviews), 2)
    start = time.perf_counter()
    for s in range(0, len(order), batch_size):
        chunk = order[s:s + batch_size]
        scores[chunk] = label_logprobs(model, tokenizer, [build_messages(reviews[i], examples=examples)
                                                          for i in chunk])
    return scores, time.perf_counter() - start


def summary(pred: torch.Tensor, labels: torch.Tensor) -> dict:
    cm = [[int(((labels == t) & (pred == p)).sum()) for p in (0, 1)] for t in (0, 1)]
    return {"accuracy": float((pred == labels).float().mean()), "positive_rate": float(pred.float().mean()),
            "confusion": cm}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=1000, help="test reviews (the shared sample has 1,000)")
    ap.add_argument("--shots", type=int, default=4, help="few-shot examples from the training split")
    ap.add_argument("--max-words", type=int, default=None, help="shorten longer reviews (default: full)")
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--content-free", nargs="+", default=["N/A", "", "[MASK]"],
                    help="content-free inputs to calibrate with (the first one is the headline)")
    ap.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    ap.add_argument("--check", type=int, default=16, help="reviews on which classify() must agree")
    ap.add_argument("--out", help="write the results here as JSON")
    args = ap.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)

    model, tokenizer = load_smollm2()
    test = load_imdb("test", args.n if args.n < 1000 else None)[:args.n]
    reviews = [shorten(r["text"], args.max_words) for r in test]
    labels = torch.tensor([r["label"] for r in test])
    examples = pick_examples(load_imdb("train"), args.shots) if args.shots else []
    print(f"{len(reviews)} test reviews ({int(labels.sum())} positive), {len(examples)} few-shot examples, "
          f"max_words={args.max_words}, batch {args.batch_size}, {torch.get_num_threads()} torch threads")

    results = {"n": len(reviews), "shots": len(examples), "max_words": args.max_words, "batch_size": args.batch_size,
               "threads": torch.get_num_threads(), "machine": platform.processor() or platform.machine(),
               "prompts": {}, "rows": {}}
    for name, ex in (("zero-shot", []), (f"{len(examples)}-shot", examples)):
        if name != "zero-shot" and not examples:
            continue
        scores, seconds = score_all(model, tokenizer, reviews, ex, args.batch_size)
        n_tokens = sum(len(tokenizer.apply_chat_template(build_messages(r, examples=ex), tokenize=True,
                                                         add_generation_prompt=True, return_dict=False))
                       for r in reviews)
        results["prompts"][name] = {"seconds": seconds, "seconds_per_review": seconds / len(reviews),
                                    "tokens_per_review": n_tokens / len(reviews)}
        print(f"{name}: {seconds:.0f} s, {seconds / len(reviews):.2f} s/review, "
              f"{n_tokens / len(reviews):.0f} tokens/review")
        results["rows"][name] = summary(scores.argmax(-1), labels)
        for cf_text in args.content_free:
            cf = label_logprobs(model, tokenizer, [build_messages(cf_text, examples=ex)])
            results["rows"][f"{name}, calibrated ({cf_text!r})"] = summary(calibrate(scores, cf).argmax(-1), labels)
        # batch calibration: the unlabelled reviews' mean scores estimate the prompt's bias (no labels used)
        results["rows"][f"{name}, batch-calibrated"] = summary(
            calibrate(scores, scores.mean(0, keepdim=True)).argmax(-1), labels)
        margin = scores[:, 1] - scores[:, 0]
        best = max(float(((margin > t).long() == labels).float().mean()) for t in margin.tolist())
        results["rows"][f"{name}, best threshold (uses test labels)"] = {"accuracy": best}
        balanced = (margin > margin.median()).long()
        results["rows"][f"{name}, balanced threshold (uses the class ratio)"] = summary(balanced, labels)
        results.setdefault("margins", {})[name] = margin.tolist()
        if args.check:
            k = min(args.check, len(reviews))
            head = classify(model, tokenizer, reviews[:k], examples=ex, content_free=args.content_free[0],
                            batch_size=args.batch_size)
            cf = label_logprobs(model, tokenizer, [build_messages(args.content_free[0], examples=ex)])
            derived = calibrate(scores[:k], cf).argmax(-1).tolist()
            results["prompts"][name]["classify_agrees"] = head == derived
            print(f"  classify() on the first {k} reviews agrees with the derived labels: {head == derived}")
    results["labels"] = labels.tolist()

    print(f"\n{'configuration':58s} {'accuracy':>8s} {'positive':>8s}")
    for name, row in results["rows"].items():
        pos = f"{row['positive_rate']:8.1%}" if "positive_rate" in row else " " * 8
        print(f"{name:58s} {row['accuracy']:8.1%} {pos}")
    if args.out:
        Path(args.out).write_text(json.dumps(results, indent=1))
        print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
