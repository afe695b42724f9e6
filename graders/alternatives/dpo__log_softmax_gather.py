"""Alternative correct `dpo`: log_softmax + gather with an explicit mask, softplus losses, torch.where
clipping, accuracy counted in Python."""
import torch
import torch.nn.functional as F


def _tensor(name, t):
    if not isinstance(t, torch.Tensor):
        raise TypeError(f"{name} must be a tensor")
    return t


def sequence_logprobs(logits, labels, *, ignore_index=-100):
    _tensor("logits", logits)
    _tensor("labels", labels)
    if not logits.is_floating_point() or labels.is_floating_point():
        raise TypeError("logits must be float and labels integer")
    if logits.ndim != 3 or labels.ndim != 2 or logits.shape[:2] != labels.shape:
        raise ValueError("logits must be (B, T, V) and labels (B, T)")
    V = logits.size(-1)
    target = labels[:, 1:].clone()
    keep = target.ne(ignore_index)
    if target[keep].lt(0).any() or target[keep].ge(V).any():
        raise ValueError("labels out of range")
    target[~keep] = 0
    logp = F.log_softmax(logits[:, :-1, :], dim=-1)
    picked = torch.gather(logp, 2, target[..., None].long())[..., 0]
    return torch.where(keep, picked, torch.zeros_like(picked)).sum(1)


def dpo_loss(policy_chosen_logps, policy_rejected_logps, ref_chosen_logps, ref_rejected_logps, *, beta=0.1,
             label_smoothing=0.0, loss_type="sigmoid"):
    args = [_tensor("logps", t) for t in (policy_chosen_logps, policy_rejected_logps, ref_chosen_logps,
                                          ref_rejected_logps)]
    if any(a.shape != args[0].shape for a in args):
        raise ValueError("the log-prob tensors must have the same shape")
    if not beta > 0:
        raise ValueError("beta must be positive")
    if not 0 <= label_smoothing < 0.5:
        raise ValueError("label_smoothing must be in [0, 0.5)")
    pc, pr = policy_chosen_logps, policy_rejected_logps
    with torch.no_grad():
        rc, rr = ref_chosen_logps.clone(), ref_rejected_logps.clone()
    logits = beta * ((pc - pr) - (rc - rr))
    if loss_type == "sigmoid":
        # -log sigmoid(x) = softplus(-x)
        losses = (1 - label_smoothing) * F.softplus(-logits) + label_smoothing * F.softplus(logits)
    elif loss_type == "hinge":
        losses = F.relu(1.0 - logits)
    elif loss_type == "ipo":
        losses = (logits / beta - 0.5 / beta).pow(2)
    else:
        raise ValueError(f"unknown loss_type {loss_type!r}")
    with torch.no_grad():
        return losses, beta * (pc - rc), beta * (pr - rr)


def reward_model_loss(chosen_rewards, rejected_rewards, *, margin=None):
    _tensor("chosen_rewards", chosen_rewards)
    _tensor("rejected_rewards", rejected_rewards)
    if chosen_rewards.shape != rejected_rewards.shape or chosen_rewards.numel() == 0:
        raise ValueError("need two non-empty reward tensors of the same shape")
    if isinstance(margin, torch.Tensor) and margin.shape != chosen_rewards.shape:
        raise ValueError("margin has the wrong shape")
    z = chosen_rewards - rejected_rewards - (0.0 if margin is None else margin)
    return F.softplus(-z).mean()


def preference_accuracy(chosen_rewards, rejected_rewards):
    _tensor("chosen_rewards", chosen_rewards)
    _tensor("rejected_rewards", rejected_rewards)
    if chosen_rewards.shape != rejected_rewards.shape or chosen_rewards.numel() == 0:
        raise ValueError("need two non-empty reward tensors of the same shape")
    pairs = list(zip(chosen_rewards.flatten().tolist(), rejected_rewards.flatten().tolist()))
    return sum(c > r for c, r in pairs) / len(pairs)


def ppo_clip_loss(logp_new, logp_old, advantages, *, clip_eps=0.2, mask=None):
    for name, t in (("logp_new", logp_new), ("logp_old", logp_old), ("advantages", advantages)):
        _tensor(name, t)
    if logp_old.shape != logp_new.shape:
        raise ValueError("logp_old must match logp_new")
    try:
        adv = advantages.detach().expand(logp_new.shape)
    except RuntimeError as exc:
        raise ValueError("advantages do not broadcast") from exc
    if not 0 < clip_eps < 1:
        raise ValueError("clip_eps must be in (0, 1)")
    ratio = (logp_new - logp_old.detach()).exp()
    clipped = torch.where(adv >= 0, ratio.clamp(max=1 + clip_eps), ratio.clamp(min=1 - clip_eps))
    objective = clipped * adv  # min(r*A, clip(r)*A) in one expression
    if mask is None:
        return -objective.mean()
    if mask.shape != logp_new.shape:
        raise ValueError("mask must match logp_new")
    m = mask.to(torch.bool)
    if not m.any():
        raise ValueError("empty mask")
    return -objective[m].mean()
