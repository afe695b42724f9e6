"""The kit's DecoderLM on the real SmolLM2-135M-Instruct: how close, and how fast?

1. Copies SmolLM2 into the reference ``DecoderLM`` (``solutions/decoder_lm.py``, built on
   ``solutions/attention.py``) and compares its logits with transformers' on a left-padded batch of
   prompts and on one long text: max |logit difference| over every real position and vocabulary
   entry, the logits' scale, and how often the two models' argmax agree.
2. Greedy tokens/s on the same prompt: DecoderLM in a recomputing loop, transformers' model in the
   same loop, and transformers' ``generate`` (KV cache). Best of ``--repeats`` runs.

    python benchmarks/decoder_lm_smollm2.py [--new-tokens 32] [--long-tokens 512] [--repeats 3] [--threads 0]
"""
from __future__ import annotations

import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from timing import best_seconds, smollm2_benchmark  # noqa: E402  (benchmarks/timing.py)

PROMPTS = ["The three primary colors are", "Paris is the capital of",
           "def fibonacci(n):\n    \"\"\"Return the n-th Fibonacci number.\"\"\"\n",
           "Once upon a time, in a small village by the sea, there lived"]


def greedy(step, ids, n):
    for _ in range(n):
        ids = torch.cat([ids, step(ids)[:, -1].argmax(-1, keepdim=True)], dim=-1)
    return ids


def main() -> None:
    args, hf, tokenizer = smollm2_benchmark(__doc__, 32, ("--long-tokens", 512, "length of the long text compared"))

    from solutions.decoder_lm import DecoderLM

    start = time.perf_counter()
    lm = DecoderLM.from_hf(hf)
    print(f"DecoderLM.from_hf(SmolLM2-135M-Instruct): {time.perf_counter() - start:.1f} s, "
          f"{sum(p.numel() for p in lm.parameters()) / 1e6:.1f} M parameters "
          f"(transformers: {sum(p.numel() for p in hf.parameters()) / 1e6:.1f} M)")

    # 1. logits ---------------------------------------------------------------------------------
    tokenizer.padding_side = "left"
    batch = tokenizer(PROMPTS, return_tensors="pt", padding=True)
    long_text = " ".join(["In the beginning the sea was calm, and the fishermen went out before dawn."] * 60)
    long_ids = tokenizer(long_text, return_tensors="pt")["input_ids"][:, :args.long_tokens]
    cases = [("left-padded batch of 4 prompts", batch["input_ids"], batch["attention_mask"]),
             (f"one text of {long_ids.shape[1]} tokens", long_ids, torch.ones_like(long_ids))]
    print("\nlogits, DecoderLM vs transformers (float32):")
    for name, ids, am in cases:
        pos = (am.cumsum(-1) - 1).clamp(min=0)
        with torch.no_grad():
            mine = lm(ids, am, pos)
            theirs = hf(input_ids=ids, attention_mask=am, position_ids=pos).logits
        real = am.bool()
        diff = (mine - theirs).abs()[real]
        agree = (mine.argmax(-1) == theirs.argmax(-1))[real].float().mean()
        print(f"  {name:34s} max |diff| {diff.max():.3e}  mean |diff| {diff.mean():.3e}  "
              f"logit std {theirs[real].std():.2f}  argmax agreement {agree:.4f}")

    # 2. greedy speed ---------------------------------------------------------------------------
    chat = tokenizer.apply_chat_template([{"role": "user", "content": "Name the three primary colors."}],
                                         add_generation_prompt=True, return_tensors="pt", return_dict=True)
    ids, n = chat["input_ids"], args.new_tokens
    runs = {
        "DecoderLM, recompute loop": lambda: greedy(lm, ids, n),
        "transformers, recompute loop": lambda: greedy(lambda t: hf(t).logits, ids, n),
        "transformers generate (KV cache)": lambda: hf.generate(ids, attention_mask=torch.ones_like(ids),
                                                                max_new_tokens=n, min_new_tokens=n, do_sample=False),
    }
    print(f"\ngreedy decoding, prompt {ids.shape[1]} tokens, {n} new tokens, torch threads "
          f"{torch.get_num_threads()}, best of {args.repeats}:")
    outs = {}
    for name, fn in runs.items():
        seconds, outs[name] = best_seconds(fn, args.repeats)
        print(f"  {name:34s} {n / seconds:7.1f} tokens/s  ({seconds:.2f} s)")
    same = torch.equal(outs["DecoderLM, recompute loop"], outs["transformers, recompute loop"])
    print(f"  DecoderLM and transformers wrote the same tokens: {same}")
    print("  text:", repr(tokenizer.decode(outs["DecoderLM, recompute loop"][0, ids.shape[1]:])))


if __name__ == "__main__":
    main()
