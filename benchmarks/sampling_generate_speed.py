"""Greedy tokens/s of the kit's ``generate`` (KV cache on and off) against transformers' ``model.generate``.

On SmolLM2-135M-Instruct, for a short chat prompt and a long prompt, greedy decoding of
``--new-tokens`` tokens with:

* ``solutions.sampling.generate(..., use_cache=True)`` and ``use_cache=False``;
* ``model.generate(..., do_sample=False)`` with and without its cache.

Every run must produce the same tokens (checked); speeds are the best of ``--repeats`` runs. The
graders check that the cache is *used* (by counting what each model call processes), never the
clock; this script shows what that buys.

    python benchmarks/sampling_generate_speed.py [--new-tokens 64] [--long-words 700] [--repeats 3] [--threads 0]
"""
from __future__ import annotations

import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from timing import best_seconds, smollm2_benchmark  # noqa: E402  (benchmarks/timing.py)


def main() -> None:
    args, model, tokenizer = smollm2_benchmark(__doc__, 64, ("--long-words", 700, "words in the long prompt"))

    from solutions.sampling import generate

    model.generation_config.eos_token_id = None  # never stop early: every run writes exactly n tokens
    chat = tokenizer.apply_chat_template([{"role": "user", "content": "Write a short poem about the sea."}],
                                         add_generation_prompt=True, return_tensors="pt", return_dict=True)
    words = "the tide comes in and the tide goes out while gulls circle over the harbour".split()
    long_text = " ".join(words[i % len(words)] for i in range(args.long_words))
    long_ids = tokenizer(long_text, return_tensors="pt")["input_ids"]
    n = args.new_tokens
    print(f"SmolLM2-135M-Instruct, greedy, {n} new tokens (EOS ignored), torch threads {torch.get_num_threads()}, "
          f"best of {args.repeats}")
    for name, ids in (("chat prompt", chat["input_ids"]), ("long prompt", long_ids)):
        am = torch.ones_like(ids)
        runs = {
            "generate, KV cache": lambda: generate(model, ids, attention_mask=am, max_new_tokens=n),
            "generate, recompute": lambda: generate(model, ids, attention_mask=am, max_new_tokens=n, use_cache=False),
            "model.generate, cache": lambda: model.generate(ids, attention_mask=am, max_new_tokens=n, do_sample=False,
                                                            use_cache=True),
            "model.generate, no cache": lambda: model.generate(ids, attention_mask=am, max_new_tokens=n,
                                                               do_sample=False, use_cache=False),
        }
        print(f"\n{name}: {ids.shape[1]} tokens")
        outs, speeds = {}, {}
        for run, fn in runs.items():
            seconds, outs[run] = best_seconds(fn, args.repeats)
            speeds[run] = n / seconds
            print(f"  {run:26s} {speeds[run]:7.1f} tokens/s  ({seconds:.2f} s)")
        first = next(iter(outs.values()))
        print(f"  all four wrote the same tokens: {all(torch.equal(o, first) for o in outs.values())}")
        print(f"  speed-up of the cache: yours x{speeds['generate, KV cache'] / speeds['generate, recompute']:.1f}, "
              f"transformers x{speeds['model.generate, cache'] / speeds['model.generate, no cache']:.1f}; "
              f"yours / transformers (cache) = {speeds['generate, KV cache'] / speeds['model.generate, cache']:.2f}")


if __name__ == "__main__":
    main()
