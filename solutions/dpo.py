"""Preference learning: reward models, PPO's clipped objective and DPO (notes §3.3.2).

A chat model that follows the format of a conversation still imitates whatever its data did. People
find it much easier to *compare* two answers than to write a perfect one, so post-training collects
preference pairs ``(prompt, chosen, rejected)`` and pushes the model towards the chosen answers.

* RLHF first fits a **reward model** to the pairs: under the Bradley-Terry model the probability that
  ``chosen`` beats ``rejected`` is ``sigmoid(r(chosen) - r(rejected))``; the reward model maximises
  its log-likelihood. The language model is then tuned with reinforcement learning (PPO) to earn a
  high reward, while a KL penalty keeps it close to where it started. PPO's **clipped surrogate**
  stops one batch of samples from moving the policy too far: the probability ratio between the new
  and the old policy only earns credit inside ``[1 - eps, 1 + eps]``.
* **DPO** skips the reward model and the sampling. The KL-regularised reward maximisation has a
  closed-form optimum, ``pi*(y|x) ~ pi_ref(y|x) exp(r(x, y) / beta)``, so any policy defines an
  *implicit* reward ``beta * log(pi(y|x) / pi_ref(y|x))`` (up to a term that only depends on ``x``
  and cancels in a comparison). Putting that reward into the Bradley-Terry likelihood gives a loss
  on the policy alone: a logistic regression on the difference of log-probability ratios.

Every loss here works on **sequence log-probabilities**: ``log pi(y|x)`` is the *sum* of the
per-token log-probabilities of the completion ``y`` given the prompt ``x`` (prompt and padding
tokens carry the label ``-100`` and do not count).

Conventions: tensors keep their input dtype; a bad argument raises ``ValueError`` (``TypeError`` for a
wrong type) naming the argument. Version note: ``label_smoothing`` with the sigmoid loss is *conservative*
DPO (cDPO), as TRL 0.19's ``sigmoid`` loss; TRL 1.x ignores ``label_smoothing`` for ``sigmoid``.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

LOSS_TYPES = ("sigmoid", "hinge", "ipo")


def sequence_logprobs(logits, labels, *, ignore_index=-100):
    """Log-probability of each labelled sequence under a causal language model.

    The labels are aligned with the input ids (the shift happens here): the logits at position ``t``
    predict the token at position ``t + 1``. For each row ``b``::

        out[b] = sum over t in 0..T-2 with labels[b, t+1] != ignore_index of
                 log_softmax(logits[b, t])[labels[b, t+1]]

    The label at position 0 and the logits at position ``T - 1`` are never used. A row whose labels
    are all ``ignore_index`` (or ``T == 1``) gives 0. The result is differentiable with respect to
    ``logits``, and stays finite (and accurate) for very unlikely labels, logits hundreds apart: never
    take the log of a softmax. ``logits`` and ``labels`` are not modified.

    Args:
        logits: float tensor ``(B, T, V)``, the model's output for the input ids.
        labels: integer tensor ``(B, T)``: token ids in ``[0, V)``, or ``ignore_index`` for positions
            that do not count (prompt, padding).
        ignore_index: the label value to skip.

    Returns:
        Tensor ``(B,)`` with the dtype of ``logits``: the summed log-probabilities (each <= 0).
        Computed in that dtype: float64 logits give float64 precision (within 1e-10), so never cast
        them to float32 (``.float()``) on the way.

    Raises:
        TypeError: if an argument is not a tensor, ``logits`` is not floating point or ``labels`` not
            integer.
        ValueError: if ``logits`` is not 3-D, ``labels`` not 2-D, their batch or length differ, or a
            counted label lies outside ``[0, V)``.
    """
    ### BEGIN SOLUTION
    if not isinstance(logits, torch.Tensor) or not isinstance(labels, torch.Tensor):
        raise TypeError("logits and labels must be torch tensors")
    if not logits.is_floating_point():
        raise TypeError(f"logits must be a floating point tensor, got {logits.dtype}")
    if labels.is_floating_point() or labels.is_complex() or labels.dtype == torch.bool:
        raise TypeError(f"labels must be an integer tensor, got {labels.dtype}")
    if logits.dim() != 3:
        raise ValueError(f"logits must have shape (B, T, V), got {tuple(logits.shape)}")
    if labels.dim() != 2:
        raise ValueError(f"labels must have shape (B, T), got {tuple(labels.shape)}")
    if labels.shape != logits.shape[:2]:
        raise ValueError(f"labels {tuple(labels.shape)} and logits {tuple(logits.shape)} disagree on (B, T)")
    targets = labels[:, 1:]  # the token each position t < T-1 must predict
    counted = targets != ignore_index
    if ((targets[counted] < 0) | (targets[counted] >= logits.shape[-1])).any():
        raise ValueError(f"labels must be in [0, {logits.shape[-1]}) or equal ignore_index={ignore_index}")
    scores = logits[:, :-1]
    safe = targets.masked_fill(~counted, 0).long().unsqueeze(-1)
    # log_softmax(x)[y] = x[y] - logsumexp(x): stable, and never builds the (B, T, V) log-softmax
    token_logps = scores.gather(-1, safe).squeeze(-1) - torch.logsumexp(scores, dim=-1)
    return token_logps.masked_fill(~counted, 0.0).sum(dim=-1)
    ### END SOLUTION


def dpo_loss(policy_chosen_logps, policy_rejected_logps, ref_chosen_logps, ref_rejected_logps, *, beta=0.1,
             label_smoothing=0.0, loss_type="sigmoid"):
    """Direct Preference Optimisation loss per pair, with the implicit rewards.

    With ``delta = (policy_chosen - ref_chosen) - (policy_rejected - ref_rejected)`` (the difference of
    log-probability ratios) and ``eps = label_smoothing``:

    * ``"sigmoid"`` (DPO; conservative DPO when ``eps > 0``):
      ``-(1 - eps) * logsigmoid(beta * delta) - eps * logsigmoid(-beta * delta)``
    * ``"hinge"`` (SLiC): ``relu(1 - beta * delta)``
    * ``"ipo"``: ``(delta - 1 / (2 * beta)) ** 2``

    ``label_smoothing`` only affects ``"sigmoid"`` (hinge and ipo ignore it). The loss stays finite,
    with finite gradients, for ``|beta * delta|`` up to at least 1e4 (use ``logsigmoid``, never
    ``log(sigmoid(...))``). For the plain sigmoid loss, ``d loss_i / d policy_chosen_logps[i] =
    -beta * sigmoid(-beta * delta_i)``.

    The reference log-probabilities are constants (the reference model is frozen): no gradient
    reaches ``ref_chosen_logps`` or ``ref_rejected_logps``, even when they require grad.

    Args:
        policy_chosen_logps, policy_rejected_logps: ``(B,)`` sequence log-probs under the policy.
        ref_chosen_logps, ref_rejected_logps: ``(B,)`` the same under the frozen reference model.
        beta: strength of the implicit KL penalty, ``> 0``.
        label_smoothing: assumed probability that a pair's label is flipped, in ``[0, 0.5)``.
        loss_type: one of ``"sigmoid"``, ``"hinge"``, ``"ipo"``.

    Returns:
        ``(losses, chosen_rewards, rejected_rewards)``, each ``(B,)`` with the inputs' dtype (float64
        inputs keep float64 precision, within 1e-10). The
        rewards are the implicit rewards ``beta * (policy - ref)`` of each completion, **detached**
        (``requires_grad`` False): they are for logging, not for training. Average ``losses`` yourself.

    Raises:
        TypeError: if a log-prob argument is not a tensor.
        ValueError: if the four tensors do not have the same shape, ``beta <= 0``, ``label_smoothing``
            is outside ``[0, 0.5)`` or ``loss_type`` is unknown.
    """
    ### BEGIN SOLUTION
    names = ("policy_chosen_logps", "policy_rejected_logps", "ref_chosen_logps", "ref_rejected_logps")
    tensors = (policy_chosen_logps, policy_rejected_logps, ref_chosen_logps, ref_rejected_logps)
    for name, t in zip(names, tensors):
        if not isinstance(t, torch.Tensor):
            raise TypeError(f"{name} must be a torch.Tensor, got {type(t).__name__}")
    if len({tuple(t.shape) for t in tensors}) != 1:
        raise ValueError("policy_chosen_logps, policy_rejected_logps, ref_chosen_logps and ref_rejected_logps must "
                         f"have the same shape, got {[tuple(t.shape) for t in tensors]}")
    if isinstance(beta, bool) or not isinstance(beta, (int, float)) or not beta > 0:
        raise ValueError(f"beta must be a number > 0, got {beta!r}")
    if isinstance(label_smoothing, bool) or not isinstance(label_smoothing, (int, float)) or not (
            0.0 <= label_smoothing < 0.5):
        raise ValueError(f"label_smoothing must be in [0, 0.5), got {label_smoothing!r}")
    if loss_type not in LOSS_TYPES:
        raise ValueError(f"loss_type must be one of {LOSS_TYPES}, got {loss_type!r}")

    chosen_logratios = policy_chosen_logps - ref_chosen_logps.detach()
    rejected_logratios = policy_rejected_logps - ref_rejected_logps.detach()
    delta = chosen_logratios - rejected_logratios
    if loss_type == "sigmoid":
        eps = label_smoothing
        losses = -(1 - eps) * F.logsigmoid(beta * delta) - eps * F.logsigmoid(-beta * delta)
    elif loss_type == "hinge":
        losses = torch.relu(1 - beta * delta)
    else:
        losses = (delta - 1 / (2 * beta)) ** 2
    chosen_rewards = (beta * chosen_logratios).detach()
    rejected_rewards = (beta * rejected_logratios).detach()
    return losses, chosen_rewards, rejected_rewards
    ### END SOLUTION


def reward_model_loss(chosen_rewards, rejected_rewards, *, margin=None):
    """Bradley-Terry loss of a reward model on a batch of preference pairs.

    ``mean(-logsigmoid(chosen_rewards - rejected_rewards - margin))``: the negative log-likelihood that
    each chosen answer beats its rejected one, where a pair with a ``margin`` must win by that much
    (Llama 2's margin loss); ``margin=None`` means 0. Stable for large reward differences.

    Args:
        chosen_rewards, rejected_rewards: float tensors ``(B,)``, the reward model's scores.
        margin: ``None``, a number, or a tensor ``(B,)`` (one margin per pair).

    Returns:
        A 0-dimensional tensor (the mean over the batch) with the rewards' dtype (float64 rewards keep
        float64 precision, within 1e-10), differentiable with respect to both reward tensors.

    Raises:
        TypeError: if a reward is not a tensor.
        ValueError: if the two reward tensors have different shapes, the batch is empty, or a margin
            tensor has another shape.
    """
    ### BEGIN SOLUTION
    for name, t in (("chosen_rewards", chosen_rewards), ("rejected_rewards", rejected_rewards)):
        if not isinstance(t, torch.Tensor):
            raise TypeError(f"{name} must be a torch.Tensor, got {type(t).__name__}")
    if chosen_rewards.shape != rejected_rewards.shape:
        raise ValueError(f"chosen_rewards {tuple(chosen_rewards.shape)} and rejected_rewards "
                         f"{tuple(rejected_rewards.shape)} must have the same shape")
    if chosen_rewards.numel() == 0:
        raise ValueError("chosen_rewards and rejected_rewards are empty: no pair to score")
    diff = chosen_rewards - rejected_rewards
    if margin is not None:
        if isinstance(margin, torch.Tensor) and margin.shape != chosen_rewards.shape:
            raise ValueError(f"margin must be a number or a tensor of shape {tuple(chosen_rewards.shape)}, "
                             f"got {tuple(margin.shape)}")
        diff = diff - margin
    return -F.logsigmoid(diff).mean()
    ### END SOLUTION


def preference_accuracy(chosen_rewards, rejected_rewards):
    """Fraction of pairs whose chosen answer scores strictly higher than the rejected one.

    A tie counts as wrong (as TRL's ``rewards/accuracies``): before any DPO step the policy *is* the
    reference, every implicit reward is 0, and the accuracy is 0, not 1.

    Args:
        chosen_rewards, rejected_rewards: tensors ``(B,)`` (implicit DPO rewards or reward-model scores).

    Returns:
        A Python ``float`` in ``[0, 1]``.

    Raises:
        TypeError: if an argument is not a tensor.
        ValueError: if the shapes differ or the batch is empty.
    """
    ### BEGIN SOLUTION
    if not (isinstance(chosen_rewards, torch.Tensor) and isinstance(rejected_rewards, torch.Tensor)):
        raise TypeError(f"chosen_rewards and rejected_rewards must be torch.Tensors, got "
                        f"{type(chosen_rewards).__name__} and {type(rejected_rewards).__name__}")
    if chosen_rewards.shape != rejected_rewards.shape or chosen_rewards.numel() == 0:
        raise ValueError(f"chosen_rewards {tuple(chosen_rewards.shape)} and rejected_rewards "
                         f"{tuple(rejected_rewards.shape)} must have the same shape, with at least one pair")
    return (chosen_rewards > rejected_rewards).double().mean().item()
    ### END SOLUTION


def ppo_clip_loss(logp_new, logp_old, advantages, *, clip_eps=0.2, mask=None):
    """PPO's clipped surrogate, as a loss to minimise.

    With the probability ratio ``r = exp(logp_new - logp_old)`` of each sampled action (token)::

        loss = -mean( min(r * A, clip(r, 1 - clip_eps, 1 + clip_eps) * A) )

    The ``min`` takes the pessimistic of the two: a ratio outside the clip range earns no more credit
    (and gives no gradient) in the direction the advantage pushes it, but a ratio that moved the
    wrong way is never clipped. The mean runs over the positions where ``mask`` is True (all positions
    when ``mask`` is None), so padding never counts and never dilutes the mean. ``logp_old`` and
    ``advantages`` are constants (they come from the sampling policy): no gradient reaches them.

    Args:
        logp_new: float tensor of any shape, e.g. ``(B, T)``: log-probs of the sampled tokens under the
            policy being trained.
        logp_old: same shape, the log-probs under the policy that sampled them.
        advantages: same shape, or broadcastable to it (e.g. ``(B, 1)``: one advantage per sequence).
        clip_eps: the clip range, ``0 < clip_eps < 1``.
        mask: ``None``, or a bool / 0-1 tensor of ``logp_new``'s shape; True (1) marks positions that count.

    Returns:
        A 0-dimensional tensor with ``logp_new``'s dtype (float64 keeps float64 precision, within
        1e-10), differentiable with respect to ``logp_new``.

    Raises:
        TypeError: if a tensor argument is not a tensor.
        ValueError: if ``logp_old`` or ``mask`` does not have ``logp_new``'s shape, ``advantages`` does not
            broadcast to it, ``clip_eps`` is outside ``(0, 1)``, or the mask selects no position.
    """
    ### BEGIN SOLUTION
    for name, t in (("logp_new", logp_new), ("logp_old", logp_old), ("advantages", advantages)):
        if not isinstance(t, torch.Tensor):
            raise TypeError(f"{name} must be a torch.Tensor, got {type(t).__name__}")
    if logp_old.shape != logp_new.shape:
        raise ValueError(f"logp_old {tuple(logp_old.shape)} must have logp_new's shape {tuple(logp_new.shape)}")
    try:
        if torch.broadcast_shapes(advantages.shape, logp_new.shape) != logp_new.shape:
            raise RuntimeError
    except RuntimeError:
        raise ValueError(f"advantages {tuple(advantages.shape)} do not broadcast to {tuple(logp_new.shape)}") from None
    if isinstance(clip_eps, bool) or not isinstance(clip_eps, (int, float)) or not 0 < clip_eps < 1:
        raise ValueError(f"clip_eps must be in (0, 1), got {clip_eps!r}")
    ratio = torch.exp(logp_new - logp_old.detach())
    adv = advantages.detach()
    objective = torch.minimum(ratio * adv, ratio.clamp(1 - clip_eps, 1 + clip_eps) * adv)
    if mask is None:
        return -objective.mean()
    if not isinstance(mask, torch.Tensor):
        raise TypeError(f"mask must be a torch.Tensor or None, got {type(mask).__name__}")
    if mask.shape != logp_new.shape:
        raise ValueError(f"mask {tuple(mask.shape)} must have logp_new's shape {tuple(logp_new.shape)}")
    keep = mask.bool()
    count = keep.sum()
    if count == 0:
        raise ValueError("mask selects no position: nothing to average")
    return -objective.masked_fill(~keep, 0.0).sum() / count
    ### END SOLUTION
