"""The ``sft`` reference against the libraries it imitates: transformers' causal-LM loss, one big batch
(gradient accumulation) and ``torch.nn.utils.clip_grad_norm_``, on tiny random Llamas."""
from __future__ import annotations

import copy

import pytest
import torch

from llmlab.grading import factories
from solutions.sft import collate_sft, sft_loss, train_sft

TINY = dict(vocab_size=50, hidden_size=16, intermediate_size=32, num_hidden_layers=2, num_attention_heads=4,
            num_key_value_heads=2, max_position_embeddings=64, pad_token_id=0)


def _examples(seed, lengths):
    g = torch.Generator().manual_seed(seed)
    out = []
    for n in lengths:
        ids = torch.randint(1, TINY["vocab_size"], (n,), generator=g).tolist()
        trained = torch.rand(n, generator=g) < 0.5
        trained[-1] = True  # at least one trained target per example
        out.append({"input_ids": ids, "labels": [i if t else -100 for i, t in zip(ids, trained.tolist())]})
    return out


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_sft_loss_equals_the_transformers_loss(seed):
    model = factories.hf_llama(TINY, seed=seed)
    batch = collate_sft(_examples(seed, [3, 7, 5]), pad_id=0)
    out = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"], labels=batch["labels"])
    torch.testing.assert_close(sft_loss(out.logits, batch["labels"]), out.loss, atol=1e-6, rtol=1e-6)


def test_collate_pads_on_the_right_and_never_trains_padding():
    examples = [{"input_ids": [5, 6, 7], "labels": [-100, 6, 7]}, {"input_ids": [8], "labels": [8]}]
    batch = collate_sft(examples, pad_id=2)
    assert batch["input_ids"].tolist() == [[5, 6, 7], [8, 2, 2]]
    assert batch["attention_mask"].tolist() == [[1, 1, 1], [1, 0, 0]]
    assert batch["labels"].tolist() == [[-100, 6, 7], [8, -100, -100]]
    assert examples[1] == {"input_ids": [8], "labels": [8]}


def _one_big_step(model, examples, lr, max_grad_norm=None):
    """The definition: one SGD step on transformers' loss of one batch holding every example."""
    batch = collate_sft(examples, pad_id=0)
    opt = torch.optim.SGD(model.parameters(), lr=lr)
    model.train()
    loss = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"], labels=batch["labels"]).loss
    loss.backward()
    if max_grad_norm is not None:
        torch.nn.utils.clip_grad_norm_(model.parameters(), max_grad_norm)
    opt.step()
    return float(loss.detach())


@pytest.mark.parametrize("max_grad_norm", [None, 0.05])
def test_accumulation_equals_one_big_batch(max_grad_norm):
    examples = _examples(3, [4, 9, 2, 6, 5, 3])
    big = factories.hf_llama(TINY, seed=4)
    small = copy.deepcopy(big)
    want_loss = _one_big_step(big, examples, 0.5, max_grad_norm)
    micro = [collate_sft(examples[i:i + 2], pad_id=0) for i in range(0, 6, 2)]
    opt = torch.optim.SGD(small.parameters(), lr=0.5)
    losses = train_sft(small, micro, opt, grad_accum=3, max_grad_norm=max_grad_norm)
    assert losses == pytest.approx([want_loss], abs=1e-6)
    for a, b in zip(big.parameters(), small.parameters()):
        torch.testing.assert_close(a, b, atol=1e-6, rtol=1e-5)


def test_a_short_last_group_still_steps_and_scheduler_follows_steps():
    examples = _examples(5, [3, 4, 5, 6, 7])
    model = factories.hf_llama(TINY, seed=6)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    sched = torch.optim.lr_scheduler.StepLR(opt, step_size=1, gamma=0.5)
    losses = train_sft(model, [collate_sft([e], 0) for e in examples], opt, grad_accum=2, scheduler=sched)
    assert len(losses) == 3 and sched.last_epoch == 3
