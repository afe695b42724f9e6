"""End to end with the reference: DPO on a tiny random Llama learns a preference, and the pieces fit.

Fast (a model of a few thousand parameters), so it runs with every test run; the real SmolLM2 run
is the notebook's (CI runs it small) and ``scripts/dpo_full.py`` (full size).
"""
from __future__ import annotations

import copy

import torch

from solutions import dpo


def _tiny_llama(vocab=12, seed=0):
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(seed)
    config = LlamaConfig(vocab_size=vocab, hidden_size=16, intermediate_size=32, num_hidden_layers=2,
                         num_attention_heads=2, num_key_value_heads=1, max_position_embeddings=32)
    return LlamaForCausalLM(config)


def _batch():
    """Two prompts; the chosen completion ends in token 3, the rejected one in token 4 (TRL's layout)."""
    ids = torch.tensor([[1, 5, 6, 3, 2], [1, 7, 8, 9, 3],     # chosen rows
                        [1, 5, 6, 4, 2], [1, 7, 8, 9, 4]])    # rejected rows
    labels = ids.clone()
    labels[:, :3] = -100
    labels[[1, 3], 3] = 9
    return ids, labels


def test_dpo_steps_raise_the_margin_and_the_accuracy():
    policy = _tiny_llama()
    reference = copy.deepcopy(policy).eval().requires_grad_(False)
    ids, labels = _batch()
    opt = torch.optim.Adam(policy.parameters(), lr=1e-2)
    history = []
    for _ in range(30):
        pc, pr = dpo.sequence_logprobs(policy(input_ids=ids).logits, labels).chunk(2)
        with torch.no_grad():
            rc, rr = dpo.sequence_logprobs(reference(input_ids=ids).logits, labels).chunk(2)
        losses, chosen, rejected = dpo.dpo_loss(pc, pr, rc, rr, beta=0.5)
        history.append((losses.mean().item(), dpo.preference_accuracy(chosen, rejected)))
        opt.zero_grad()
        losses.mean().backward()
        opt.step()
    assert abs(history[0][0] - 0.6931) < 1e-3 and history[0][1] == 0.0  # step 0: policy == reference
    assert history[-1][0] < 0.1 and history[-1][1] == 1.0
    assert all(p.grad is None for p in reference.parameters())


def test_reward_model_on_separable_features_reaches_full_accuracy():
    g = torch.Generator().manual_seed(0)
    direction = torch.randn(8, generator=g)
    chosen = torch.randn(64, 8, generator=g) + direction
    rejected = torch.randn(64, 8, generator=g) - direction
    head = torch.nn.Linear(8, 1)
    opt = torch.optim.SGD(head.parameters(), lr=0.5)
    for _ in range(200):
        loss = dpo.reward_model_loss(head(chosen).squeeze(-1), head(rejected).squeeze(-1))
        opt.zero_grad()
        loss.backward()
        opt.step()
    with torch.no_grad():
        assert dpo.preference_accuracy(head(chosen).squeeze(-1), head(rejected).squeeze(-1)) > 0.95


def _bandit(loss_fn, steps=200, lr=0.1):
    rewards = torch.tensor([1.0, 0.0, -1.0])
    logits = torch.zeros(3, requires_grad=True)
    opt = torch.optim.SGD([logits], lr=lr)
    with torch.no_grad():
        logp_old = torch.log_softmax(logits, -1)
        advantages = rewards - (logp_old.exp() * rewards).sum()
    for _ in range(steps):  # many steps on ONE batch of samples, as PPO's inner epochs do
        loss = loss_fn(torch.log_softmax(logits, -1), logp_old, advantages)
        opt.zero_grad()
        loss.backward()
        opt.step()
    with torch.no_grad():
        return (torch.log_softmax(logits, -1) - logp_old).exp()


def test_ppo_clip_keeps_the_ratio_near_the_clip_range():
    clipped = _bandit(lambda new, old, adv: dpo.ppo_clip_loss(new, old, adv, clip_eps=0.2))
    unclipped = _bandit(lambda new, old, adv: -((new - old).exp() * adv).mean())
    # with small steps the ratio stops within one step of 1 +- eps (measured: 1.22 and 0.80) ...
    assert 1.15 < clipped[0] < 1.25 and 0.75 < clipped[2] < 0.85
    # ... while the unclipped surrogate drives it far away (measured: 2.9 and 0.03)
    assert unclipped[0] > 2.5 and unclipped[2] < 0.1
