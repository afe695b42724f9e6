"""Full-size run of ``imdb-remote-llm``: the 1,000 shared IMDB test reviews through ``llmlab serve``.

Measures, with the reference ``classify_remote`` and ``label_logit_bias``:

1. ``remote``: accuracy of the free-text answers (a review whose answer names no single label counts
   as wrong), the share of such answers, and the token usage;
2. ``bias``: the main route, every answer one token restricted by ``logit_bias`` to the label words'
   first tokens: accuracy and unreadable answers at each concurrency of ``--concurrencies`` (the first
   on all reviews, the others on ``--bias-reviews`` of them, default all), with the label agreement
   between concurrencies;
3. ``local``: the same model scored locally on the same prompt (the label tokens' log-probabilities at
   the answer position, as in ``imdb-local-llm``), raw and with contextual calibration, and its
   agreement with both remote routes;
4. ``throughput`` at each concurrency on a fixed subset (reviews/s, completion tokens/s, latency), on
   the main route (``--route text`` for free text);
5. ``faults``: a rerun with faults on (429/500/503/malformed/slow): every review keeps its label, and
   what the retries cost.

    python scripts/imdb_remote_llm_full.py --out imdb_remote_llm_full.json        # ~1-2 h on 2 CPU cores
    python scripts/imdb_remote_llm_full.py --skip remote,throughput,faults --concurrencies 4,1,2 \
        --bias-reviews 200 --out bias.json                                       # the logit_bias figures

Each stage is written to ``--out`` as soon as it is done (a rerun with ``--skip ...`` reuses nothing:
it simply leaves that stage out).
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from llmlab.data import load_imdb  # noqa: E402
from llmlab.serve import LocalServer  # noqa: E402
from solutions.imdb_remote_llm import (SYSTEM_PROMPT, classify_remote, label_logit_bias,  # noqa: E402
                                       make_request)


def accuracy(labels, gold):
    return sum(int(p == g) for p, g in zip(labels, gold)) / len(gold)


def timed(client, model, reviews, concurrency, max_retries=5, logit_bias=None):
    started = time.perf_counter()
    results = classify_remote(client, model, reviews, concurrency=concurrency, max_retries=max_retries,
                              logit_bias=logit_bias)
    return results, time.perf_counter() - started


def served_logit_bias():
    """The label words' first tokens for the served model (SmolLM2), biased +100."""
    from transformers import AutoTokenizer

    from llmlab.models import smollm2_dir

    return label_logit_bias(AutoTokenizer.from_pretrained(smollm2_dir()))


def summary(results, gold, seconds):
    labels = [r.label for r in results]
    return {
        "n": len(results), "seconds": round(seconds, 1), "reviews_per_s": round(len(results) / seconds, 3),
        "accuracy": round(accuracy(labels, gold), 4),
        "accuracy_answered": round(accuracy(*zip(*[(p, g) for p, g in zip(labels, gold) if p is not None])), 4)
        if any(p is not None for p in labels) else None,
        "unreadable_answers": sum(r.label is None and r.error is None for r in results),
        "errors": sum(r.error is not None for r in results),
        "prompt_tokens": sum(r.prompt_tokens for r in results),
        "completion_tokens": sum(r.completion_tokens for r in results),
        "completion_tokens_per_s": round(sum(r.completion_tokens for r in results) / seconds, 2),
        "attempts": dict(sorted(Counter(r.attempts for r in results).items())),
        "predicted_positive": sum(p == 1 for p in labels), "predicted_negative": sum(p == 0 for p in labels),
    }


def local_scores(reviews, batch_size=8):
    """(n, 2) log-probabilities of the first tokens of "negative" and "positive" at the answer position."""
    import torch

    from llmlab.models import load_smollm2

    model, tok = load_smollm2()
    tok.padding_side = "left"
    ids = [tok.encode(w, add_special_tokens=False)[0] for w in ("negative", "positive")]
    out = []
    for start in range(0, len(reviews), batch_size):
        texts = [tok.apply_chat_template(make_request("m", r)["messages"], tokenize=False, add_generation_prompt=True)
                 for r in reviews[start:start + batch_size]]
        batch = tok(texts, return_tensors="pt", padding=True, add_special_tokens=False)
        with torch.no_grad():
            logits = model(**batch).logits[:, -1, :]
        out.append(torch.log_softmax(logits.float(), dim=-1)[:, ids])
    return torch.cat(out)


def serve_stages(server, args, skip, reviews, gold, report, save):
    client = server.client(timeout=args.client_timeout)
    clean = None
    bias = served_logit_bias()
    main_bias = bias if args.route == "bias" else None
    report["logit_bias"] = bias
    concurrencies = [int(x) for x in args.concurrencies.split(",")]
    if "bias" not in skip:
        report["stages"]["bias"] = {}
        for k, c in enumerate(concurrencies):
            m = len(reviews) if k == 0 else min(len(reviews), args.bias_reviews or len(reviews))
            results, seconds = timed(client, server.model, reviews[:m], c, logit_bias=bias)
            s = summary(results, gold[:m], seconds) | {"concurrency": c}
            labels = [r.label for r in results]
            if k == 0:
                report["bias_labels"] = labels
                if main_bias is not None:
                    clean = results
            else:
                s["same_labels_as_first"] = sum(a == b for a, b in zip(labels, report["bias_labels"]))
            report["stages"]["bias"][str(c)] = s
            save()
            print(f"bias c={c}:", s, flush=True)
    if "remote" not in skip:
        text, seconds = timed(client, server.model, reviews, args.concurrency)
        report["stages"]["remote"] = summary(text, gold, seconds) | {"concurrency": args.concurrency}
        report["remote_labels"] = [r.label for r in text]
        if main_bias is None:
            clean = text
        save()
        print("remote:", report["stages"]["remote"], flush=True)
    if "throughput" not in skip:
        sub, sub_gold = reviews[:args.throughput_reviews], gold[:args.throughput_reviews]
        timed(client, server.model, sub[:2], 1, logit_bias=main_bias)  # warm up
        report["stages"]["throughput"] = {"route": args.route}
        for c in sorted(concurrencies):
            results, seconds = timed(client, server.model, sub, c, logit_bias=main_bias)
            s = summary(results, sub_gold, seconds)
            s["mean_latency_s"] = round(seconds * c / len(sub), 2)  # closed loop: c requests always out
            report["stages"]["throughput"][str(c)] = s
            save()
            print(f"throughput c={c}:", s, flush=True)
    if "faults" not in skip:
        server.set_faults(rate=args.fault_rate, kinds=["429", "500", "503", "slow", "malformed"], seed=0,
                          retry_after=1.0, slow_seconds=args.client_timeout + 30)
        before = server.stats()
        m = args.fault_reviews or len(reviews)
        faulty, seconds = timed(client, server.model, reviews[:m], args.concurrency, max_retries=8,
                                logit_bias=main_bias)
        after = server.stats()
        s = summary(faulty, gold[:m], seconds)
        s["faults_injected"] = {k: after["faults"][k] - before["faults"][k] for k in after["faults"]}
        s["model_calls"] = after["model_calls"] - before["model_calls"]
        if clean is not None:
            s["same_labels_as_clean_run"] = sum(a.label == b.label for a, b in zip(faulty, clean[:m]))
            s["lost_or_failed"] = sum(r.error is not None for r in faulty)
        s["route"] = args.route
        report["stages"]["faults"] = s
        save()
        print("faults:", s, flush=True)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--n", type=int, default=1000, help="test reviews (label-balanced sample; 1000 = all)")
    p.add_argument("--throughput-reviews", type=int, default=48)
    p.add_argument("--concurrencies", default="1,2,4",
                   help="for the throughput stage and the bias stage (whose first is run on all reviews)")
    p.add_argument("--bias-reviews", type=int, default=None,
                   help="reviews for the bias stage's other concurrencies (default: all)")
    p.add_argument("--route", choices=("bias", "text"), default="bias",
                   help="the requests of the throughput and fault stages: logit_bias (one token) or free text")
    p.add_argument("--concurrency", type=int, default=4, help="for the full passes")
    p.add_argument("--fault-rate", type=float, default=0.3)
    p.add_argument("--client-timeout", type=float, default=90.0)
    p.add_argument("--device", default="cpu")
    p.add_argument("--continuous-batching", action="store_true")
    p.add_argument("--threads", type=int, default=None, help="CPU threads of the model server (1 on a shared machine)")
    p.add_argument("--fault-reviews", type=int, default=None, help="reviews in the fault rerun (default: all)")
    p.add_argument("--skip", default="",
                   help="comma-separated stages to leave out: remote,bias,local,throughput,faults")
    p.add_argument("--out", default="imdb_remote_llm_full.json")
    args = p.parse_args(argv)
    skip = set(filter(None, args.skip.split(",")))
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)  # the local scoring, on a shared machine
    rows = load_imdb("test", args.n)
    reviews, gold = [r["text"] for r in rows], [r["label"] for r in rows]
    report = {"n_reviews": len(rows), "positives": sum(gold), "system_prompt": SYSTEM_PROMPT,
              "device": args.device, "continuous_batching": args.continuous_batching, "threads": args.threads,
              "stages": {}}
    out = Path(args.out)

    def save():
        out.write_text(json.dumps(report, indent=1))

    if {"remote", "bias", "throughput", "faults"} - skip:
        with LocalServer(device=args.device, continuous_batching=args.continuous_batching, threads=args.threads,
                         retry_after=1.0, slow_seconds=args.client_timeout + 30,
                         log_path=str(out.with_suffix(".server.log"))) as server:
            serve_stages(server, args, skip, reviews, gold, report, save)
    if "local" not in skip:
        import torch

        started = time.perf_counter()
        scores = local_scores(reviews)
        free = local_scores(["N/A"])[0]
        raw = scores.argmax(-1).tolist()
        calibrated = torch.log_softmax(scores - free, dim=-1).argmax(-1).tolist()
        report["stages"]["local"] = {"accuracy": round(accuracy(raw, gold), 4),
                                     "accuracy_calibrated": round(accuracy(calibrated, gold), 4),
                                     "predicted_positive": sum(raw), "seconds": round(time.perf_counter() - started, 1)}
        report["local_labels"] = raw
        if "remote_labels" in report:
            report["stages"]["local"]["agreement_with_remote_where_readable"] = round(
                sum(a == b for a, b in zip(report["remote_labels"], raw) if a is not None)
                / max(1, sum(a is not None for a in report["remote_labels"])), 4)
        if "bias_labels" in report:
            first = report["stages"]["bias"][args.concurrencies.split(",")[0]]
            report["stages"]["local"]["same_labels_as_bias"] = sum(
                a == b for a, b in zip(report["bias_labels"], raw))
            report["stages"]["local"]["bias_minus_local_accuracy_points"] = round(
                100 * (first["accuracy"] - accuracy(raw, gold)), 2)
        save()
        print("local:", report["stages"]["local"], flush=True)

    save()
    print(json.dumps(report["stages"], indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
