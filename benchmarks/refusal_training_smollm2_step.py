"""How long would refusal training take on SmolLM2-135M on this CPU?

Times full fine-tuning steps (forward + backward + AdamW) of SmolLM2-135M-Instruct with the kit's
`derta_loss` on a batch shaped like the refusal-training notebook's (B sequences of T tokens), and
extrapolates to the number of steps the notebook's experiment uses. The notebook trains a miniature
model when this exceeds its 10-minute budget.

    python benchmarks/refusal_training_smollm2_step.py [--batch 32] [--tokens 32] [--steps 3] [--threads 0]
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--tokens", type=int, default=32)
    parser.add_argument("--steps", type=int, default=3, help="timed steps (after one warm-up step)")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    parser.add_argument("--needed-steps", type=int, default=600 + 3 * 400,
                        help="steps of the notebook's experiment: base model + three fine-tuning methods")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    from llmlab.models import load_smollm2
    from solutions.refusal_loss import derta_loss

    model, tokenizer = load_smollm2()
    model.train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-5)
    g = torch.Generator().manual_seed(0)
    ids = torch.randint(0, model.config.vocab_size, (args.batch, args.tokens), generator=g)
    labels = ids.clone()
    labels[:, : args.tokens // 2] = -100
    mask = torch.zeros_like(ids, dtype=torch.bool)
    mask[: args.batch // 2, args.tokens // 2:] = True
    labels[: args.batch // 2] = -100
    refusal = tokenizer.encode("Sorry", add_special_tokens=False)[0]

    times = []
    for step in range(args.steps + 1):
        start = time.perf_counter()
        loss = derta_loss(model(input_ids=ids).logits, labels, mask, refusal)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        if step:  # the first step warms up allocators and kernels
            times.append(time.perf_counter() - start)
    per_step = sorted(times)[len(times) // 2]
    total = per_step * args.needed_steps
    print(f"SmolLM2-135M, batch {args.batch} x {args.tokens} tokens, {torch.get_num_threads()} threads: "
          f"median {per_step:.1f} s per training step (of {len(times)}: {', '.join(f'{t:.1f}' for t in times)})")
    print(f"{args.needed_steps} steps would take about {total / 60:.0f} min (budget: 10 min)")


if __name__ == "__main__":
    main()
