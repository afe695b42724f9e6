"""Alternative correct `dpo`: F.cross_entropy for the token log-probs, float64 arithmetic inside, TRL's
"max of negated objectives" form of PPO, BCE-with-logits for the reward model."""
import torch
import torch.nn.functional as F

_KINDS = {"sigmoid", "hinge", "ipo"}


def sequence_logprobs(logits, labels, *, ignore_index=-100):
    if not (torch.is_tensor(logits) and torch.is_tensor(labels)):
        raise TypeError("logits and labels must be tensors")
    if not torch.is_floating_point(logits) or torch.is_floating_point(labels):
        raise TypeError("float logits, integer labels")
    if logits.dim() != 3 or labels.dim() != 2 or tuple(labels.shape) != tuple(logits.shape[:2]):
        raise ValueError("shapes must be logits (B, T, V), labels (B, T)")
    B, T, V = logits.shape
    if T < 2:
        return logits.new_zeros(B)
    target = labels[:, 1:].long()
    counted = target != ignore_index
    if bool(((target < 0) | (target >= V))[counted].any()):
        raise ValueError("label outside [0, V)")
    nll = F.cross_entropy(logits[:, :-1].reshape(-1, V).double(), target.reshape(-1), ignore_index=ignore_index,
                          reduction="none").view(B, T - 1)
    return (-nll.sum(dim=1)).to(logits.dtype)


def dpo_loss(policy_chosen_logps, policy_rejected_logps, ref_chosen_logps, ref_rejected_logps, *, beta=0.1,
             label_smoothing=0.0, loss_type="sigmoid"):
    xs = (policy_chosen_logps, policy_rejected_logps, ref_chosen_logps, ref_rejected_logps)
    if not all(torch.is_tensor(x) for x in xs):
        raise TypeError("log-probs must be tensors")
    if len({x.shape for x in xs}) > 1:
        raise ValueError("shape mismatch")
    if loss_type not in _KINDS:
        raise ValueError("loss_type")
    if beta <= 0:
        raise ValueError("beta")
    if label_smoothing < 0 or label_smoothing >= 0.5:
        raise ValueError("label_smoothing")
    dtype = policy_chosen_logps.dtype
    pc, pr = policy_chosen_logps.double(), policy_rejected_logps.double()
    rc, rr = ref_chosen_logps.detach().double(), ref_rejected_logps.detach().double()
    chosen, rejected = pc - rc, pr - rr
    d = chosen - rejected
    if loss_type == "sigmoid":
        e = label_smoothing
        out = -(1 - e) * F.logsigmoid(beta * d) - e * F.logsigmoid(-beta * d)
    elif loss_type == "hinge":
        out = torch.clamp(1 - beta * d, min=0)
    else:
        out = torch.square(d - 1 / (2 * beta))
    return out.to(dtype), (beta * chosen).to(dtype).detach(), (beta * rejected).to(dtype).detach()


def reward_model_loss(chosen_rewards, rejected_rewards, *, margin=None):
    if not (torch.is_tensor(chosen_rewards) and torch.is_tensor(rejected_rewards)):
        raise TypeError("rewards must be tensors")
    if chosen_rewards.shape != rejected_rewards.shape:
        raise ValueError("shape mismatch")
    if chosen_rewards.numel() == 0:
        raise ValueError("empty batch")
    diff = chosen_rewards - rejected_rewards
    if margin is not None:
        if torch.is_tensor(margin) and margin.shape != diff.shape:
            raise ValueError("margin shape")
        diff = diff - margin
    # -log sigmoid(d) is the binary cross-entropy of logit d with target 1
    return F.binary_cross_entropy_with_logits(diff, torch.ones_like(diff))


def preference_accuracy(chosen_rewards, rejected_rewards):
    if not (torch.is_tensor(chosen_rewards) and torch.is_tensor(rejected_rewards)):
        raise TypeError("rewards must be tensors")
    if chosen_rewards.shape != rejected_rewards.shape or chosen_rewards.numel() == 0:
        raise ValueError("shape mismatch or empty")
    return float(torch.count_nonzero(chosen_rewards > rejected_rewards)) / chosen_rewards.numel()


def ppo_clip_loss(logp_new, logp_old, advantages, *, clip_eps=0.2, mask=None):
    if not all(torch.is_tensor(x) for x in (logp_new, logp_old, advantages)):
        raise TypeError("tensors expected")
    if logp_new.shape != logp_old.shape:
        raise ValueError("logp_old shape")
    try:
        torch.broadcast_to(advantages, logp_new.shape)
    except RuntimeError:
        raise ValueError("advantages shape") from None
    if clip_eps <= 0 or clip_eps >= 1:
        raise ValueError("clip_eps")
    ratio = torch.exp(logp_new - logp_old.detach())
    a = advantages.detach()
    # TRL 0.19 PPOTrainer: pg_loss = max(-A * r, -A * clip(r))
    losses = torch.max(-a * ratio, -a * torch.clamp(ratio, 1.0 - clip_eps, 1.0 + clip_eps))
    if mask is None:
        return losses.mean()
    if mask.shape != logp_new.shape:
        raise ValueError("mask shape")
    w = mask.to(losses.dtype)
    if w.sum() == 0:
        raise ValueError("empty mask")
    return (losses * w).sum() / w.sum()
