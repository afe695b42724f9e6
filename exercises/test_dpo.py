"""Example tests for `dpo` (the hidden graders check much more: random batches, a real model's loss,
gradients, numerical stability, every loss type, masks and bad arguments)."""
import math

import torch

from exercises.dpo import dpo_loss, ppo_clip_loss, preference_accuracy, reward_model_loss, sequence_logprobs


def test_sequence_logprobs_by_hand():
    # two equally likely tokens everywhere: each counted token costs log(1/2)
    logits = torch.zeros(1, 4, 2)
    labels = torch.tensor([[-100, -100, 0, 1]])  # the first two tokens are the prompt: they do not count
    out = sequence_logprobs(logits, labels)
    assert out.shape == (1,)
    torch.testing.assert_close(out, torch.tensor([2 * math.log(0.5)]))


def test_sequence_logprobs_uses_the_previous_position():
    # position 0 is sure the next token is 1; position 1 is sure it is 0
    logits = torch.tensor([[[-30.0, 30.0], [30.0, -30.0], [0.0, 0.0]]])
    labels = torch.tensor([[-100, 1, 0]])
    torch.testing.assert_close(sequence_logprobs(logits, labels), torch.tensor([0.0]), atol=1e-6, rtol=0)


def test_dpo_loss_at_the_start_of_training():
    # the policy equals the reference: every implicit reward is 0 and the loss is log 2
    logps = torch.tensor([-12.0, -7.5])
    losses, chosen_rewards, rejected_rewards = dpo_loss(logps, logps - 1, logps, logps - 1, beta=0.1)
    torch.testing.assert_close(losses, torch.full((2,), math.log(2)))
    torch.testing.assert_close(chosen_rewards, torch.zeros(2))
    torch.testing.assert_close(rejected_rewards, torch.zeros(2))


def test_dpo_rewards_are_detached():
    pc = torch.tensor([-3.0], requires_grad=True)
    pr = torch.tensor([-4.0], requires_grad=True)
    losses, chosen_rewards, _ = dpo_loss(pc, pr, torch.tensor([-3.5]), torch.tensor([-3.5]), beta=0.5)
    assert losses.requires_grad and not chosen_rewards.requires_grad
    torch.testing.assert_close(chosen_rewards, torch.tensor([0.25]))


def test_reward_model_loss_and_accuracy():
    # equal scores: the model says 50/50, the loss is log 2; a tie is not a correct preference
    loss = reward_model_loss(torch.tensor([0.3, 1.0]), torch.tensor([0.3, 1.0]))
    assert loss.shape == ()
    torch.testing.assert_close(loss, torch.tensor(math.log(2)))
    assert preference_accuracy(torch.tensor([1.0, 2.0, 0.5]), torch.tensor([0.0, 2.0, 0.7])) == 1 / 3


def test_ppo_clip_caps_the_credit_of_a_large_ratio():
    # ratio 2 with a positive advantage earns only (1 + 0.2) * A
    loss = ppo_clip_loss(torch.tensor([math.log(2.0)]), torch.tensor([0.0]), torch.tensor([1.0]), clip_eps=0.2)
    torch.testing.assert_close(loss, torch.tensor(-1.2))
