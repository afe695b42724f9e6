"""Realistic buggy variants of ``dpo`` (SEMANTICS.md §4.5 lists the classics).

Each function replaces one name of the reference module; its source is appended to the reference's,
so it is self-contained (it may use only the reference module's names: ``torch``, ``F``,
``LOSS_TYPES``). Each keeps the argument checks a careful student would write, so it loses points for
its one mistake only.
"""
import torch
import torch.nn.functional as F

from llmlab.grading.variants import Variants

bugs = Variants("dpo")


# --- sequence_logprobs -----------------------------------------------------------------------
@bugs.bug("seq_mean_over_tokens", replaces="sequence_logprobs",
          mistake="the per-token log-probs are averaged instead of summed: log pi(y|x) is the SUM over the "
                  "completion's tokens (a mean makes long and short answers look alike)")
def seq_mean(logits, labels, *, ignore_index=-100):
    targets = labels[:, 1:]
    counted = targets != ignore_index
    logp = torch.log_softmax(logits[:, :-1], dim=-1).gather(-1, targets.clamp(min=0).unsqueeze(-1)).squeeze(-1)
    return (logp * counted).sum(-1) / counted.sum(-1).clamp(min=1)


@bugs.bug("seq_no_shift", replaces="sequence_logprobs",
          mistake="the logits at position t are scored against the label at position t: a causal LM's logits at "
                  "t predict the NEXT token, so score logits[:, :-1] against labels[:, 1:]")
def seq_no_shift(logits, labels, *, ignore_index=-100):
    counted = labels != ignore_index
    logp = torch.log_softmax(logits, dim=-1).gather(-1, labels.clamp(min=0).unsqueeze(-1)).squeeze(-1)
    return (logp * counted).sum(-1)


@bugs.bug("seq_mask_not_shifted", replaces="sequence_logprobs",
          mistake="the labels are shifted but the ignore mask is not: it must come from labels[:, 1:] too, or "
                  "the last prompt token counts and the last completion token is dropped")
def seq_mask_not_shifted(logits, labels, *, ignore_index=-100):
    counted = labels != ignore_index
    targets = labels[:, 1:].clamp(min=0)
    logp = torch.log_softmax(logits[:, :-1], dim=-1).gather(-1, targets.unsqueeze(-1)).squeeze(-1)
    return (logp * counted[:, :-1]).sum(-1)


@bugs.bug("seq_ignored_positions_counted", replaces="sequence_logprobs",
          mistake="positions labelled ignore_index are counted (as token 0): replacing -100 by 0 for the gather "
                  "is fine, but those positions must then be zeroed out of the sum")
def seq_ignored_counted(logits, labels, *, ignore_index=-100):
    targets = labels[:, 1:].masked_fill(labels[:, 1:] == ignore_index, 0)
    logp = torch.log_softmax(logits[:, :-1], dim=-1).gather(-1, targets.unsqueeze(-1)).squeeze(-1)
    return logp.sum(-1)


@bugs.bug("seq_log_of_softmax", replaces="sequence_logprobs",
          mistake="log(softmax(logits)) underflows to log(0) = -inf for unlikely tokens: use log_softmax (or "
                  "logits - logsumexp)")
def seq_log_of_softmax(logits, labels, *, ignore_index=-100):
    targets = labels[:, 1:]
    counted = targets != ignore_index
    probs = torch.softmax(logits[:, :-1], dim=-1).gather(-1, targets.clamp(min=0).unsqueeze(-1)).squeeze(-1)
    return torch.log(probs).masked_fill(~counted, 0.0).sum(-1)


@bugs.bug("seq_raw_logits", replaces="sequence_logprobs",
          mistake="the raw logits are summed: normalise them first with log_softmax over the vocabulary")
def seq_raw_logits(logits, labels, *, ignore_index=-100):
    targets = labels[:, 1:]
    counted = targets != ignore_index
    picked = logits[:, :-1].gather(-1, targets.clamp(min=0).unsqueeze(-1)).squeeze(-1)
    return picked.masked_fill(~counted, 0.0).sum(-1)


@bugs.bug("seq_breaks_graph", replaces="sequence_logprobs",
          mistake="the result is rebuilt from Python numbers (.item() / torch.tensor(list)): no gradient reaches "
                  "the logits, so DPO cannot train the model")
def seq_breaks_graph(logits, labels, *, ignore_index=-100):
    targets = labels[:, 1:]
    counted = targets != ignore_index
    logp = torch.log_softmax(logits[:, :-1], dim=-1).gather(-1, targets.clamp(min=0).unsqueeze(-1)).squeeze(-1)
    return torch.tensor([row.masked_fill(~c, 0.0).sum().item() for row, c in zip(logp, counted)], dtype=logits.dtype)


@bugs.bug("seq_modifies_labels_in_place", replaces="sequence_logprobs",
          mistake="the labels are modified in place (labels[labels == ignore_index] = 0): the caller's labels "
                  "change; work on a copy (masked_fill, clamp) instead")
def seq_in_place(logits, labels, *, ignore_index=-100):
    counted = labels[:, 1:] != ignore_index
    labels[labels == ignore_index] = 0
    logp = torch.log_softmax(logits[:, :-1], dim=-1).gather(-1, labels[:, 1:].unsqueeze(-1)).squeeze(-1)
    return logp.masked_fill(~counted, 0.0).sum(-1)


@bugs.bug("seq_ignore_index_hard_coded", replaces="sequence_logprobs",
          mistake="-100 is hard-coded: use the ignore_index argument")
def seq_hard_coded(logits, labels, *, ignore_index=-100):
    targets = labels[:, 1:]
    counted = targets != -100
    logp = torch.log_softmax(logits[:, :-1], dim=-1).gather(
        -1, targets.clamp(0, logits.shape[-1] - 1).unsqueeze(-1)).squeeze(-1)
    return logp.masked_fill(~counted, 0.0).sum(-1)


# --- dpo_loss --------------------------------------------------------------------------------


@bugs.bug("dpo_sign_flipped", replaces="dpo_loss",
          mistake="the sign of the preference is flipped (logsigmoid of beta*(rejected - chosen) ratios): the loss "
                  "then pushes the policy towards the REJECTED answers")
def dpo_sign_flipped(pc, pr, rc, rr, *, beta=0.1, label_smoothing=0.0, loss_type="sigmoid"):
    if (len({tuple(t.shape) for t in (pc, pr, rc, rr)}) != 1 or not beta > 0 or not 0 <= label_smoothing < 0.5
            or loss_type not in LOSS_TYPES):  # noqa: F821 - the reference's own constant
        raise ValueError("bad arguments")
    delta = (pr - rr.detach()) - (pc - rc.detach())
    if loss_type == "sigmoid":
        losses = -(1 - label_smoothing) * F.logsigmoid(beta * delta) - label_smoothing * F.logsigmoid(-beta * delta)
    elif loss_type == "hinge":
        losses = torch.relu(1 - beta * delta)
    else:
        losses = (delta - 1 / (2 * beta)) ** 2
    return losses, (beta * (pc - rc)).detach(), (beta * (pr - rr)).detach()


@bugs.bug("dpo_log_of_sigmoid", replaces="dpo_loss",
          mistake="log(sigmoid(x)) underflows: sigmoid(-1e4) is 0 in floating point and log(0) = -inf (and its "
                  "gradient NaN); use F.logsigmoid")
def dpo_log_of_sigmoid(pc, pr, rc, rr, *, beta=0.1, label_smoothing=0.0, loss_type="sigmoid"):
    if (len({tuple(t.shape) for t in (pc, pr, rc, rr)}) != 1 or not beta > 0 or not 0 <= label_smoothing < 0.5
            or loss_type not in LOSS_TYPES):  # noqa: F821 - the reference's own constant
        raise ValueError("bad arguments")
    delta = (pc - rc.detach()) - (pr - rr.detach())
    if loss_type == "sigmoid":
        losses = (-(1 - label_smoothing) * torch.log(torch.sigmoid(beta * delta))
                  - label_smoothing * torch.log(torch.sigmoid(-beta * delta)))
    elif loss_type == "hinge":
        losses = torch.relu(1 - beta * delta)
    else:
        losses = (delta - 1 / (2 * beta)) ** 2
    return losses, (beta * (pc - rc)).detach(), (beta * (pr - rr)).detach()


@bugs.bug("dpo_smoothing_wrong_side", replaces="dpo_loss",
          mistake="label smoothing has the wrong sign: conservative DPO SUBTRACTS eps * logsigmoid(-beta*delta) "
                  "(-(1-eps) logsig(bd) - eps logsig(-bd)); '+' is TRL's 'robust' numerator")
def dpo_smoothing_wrong_side(pc, pr, rc, rr, *, beta=0.1, label_smoothing=0.0, loss_type="sigmoid"):
    if (len({tuple(t.shape) for t in (pc, pr, rc, rr)}) != 1 or not beta > 0 or not 0 <= label_smoothing < 0.5
            or loss_type not in LOSS_TYPES):  # noqa: F821 - the reference's own constant
        raise ValueError("bad arguments")
    delta = (pc - rc.detach()) - (pr - rr.detach())
    if loss_type == "sigmoid":
        losses = -(1 - label_smoothing) * F.logsigmoid(beta * delta) + label_smoothing * F.logsigmoid(-beta * delta)
    elif loss_type == "hinge":
        losses = torch.relu(1 - beta * delta)
    else:
        losses = (delta - 1 / (2 * beta)) ** 2
    return losses, (beta * (pc - rc)).detach(), (beta * (pr - rr)).detach()


@bugs.bug("dpo_rewards_not_detached", replaces="dpo_loss",
          mistake="the returned rewards are not detached: they are for logging, so return beta*(policy - ref)"
                  ".detach() (otherwise they keep the graph alive, and backpropagating through them trains on them)")
def dpo_rewards_attached(pc, pr, rc, rr, *, beta=0.1, label_smoothing=0.0, loss_type="sigmoid"):
    if (len({tuple(t.shape) for t in (pc, pr, rc, rr)}) != 1 or not beta > 0 or not 0 <= label_smoothing < 0.5
            or loss_type not in LOSS_TYPES):  # noqa: F821 - the reference's own constant
        raise ValueError("bad arguments")
    delta = (pc - rc.detach()) - (pr - rr.detach())
    if loss_type == "sigmoid":
        losses = -(1 - label_smoothing) * F.logsigmoid(beta * delta) - label_smoothing * F.logsigmoid(-beta * delta)
    elif loss_type == "hinge":
        losses = torch.relu(1 - beta * delta)
    else:
        losses = (delta - 1 / (2 * beta)) ** 2
    return losses, beta * (pc - rc.detach()), beta * (pr - rr.detach())


@bugs.bug("dpo_rewards_from_policy_alone", replaces="dpo_loss",
          mistake="the rewards are beta * policy log-probs: the implicit reward is beta * (policy - reference) "
                  "log-probs, a log-RATIO")
def dpo_rewards_policy_only(pc, pr, rc, rr, *, beta=0.1, label_smoothing=0.0, loss_type="sigmoid"):
    if (len({tuple(t.shape) for t in (pc, pr, rc, rr)}) != 1 or not beta > 0 or not 0 <= label_smoothing < 0.5
            or loss_type not in LOSS_TYPES):  # noqa: F821 - the reference's own constant
        raise ValueError("bad arguments")
    delta = (pc - rc.detach()) - (pr - rr.detach())
    if loss_type == "sigmoid":
        losses = -(1 - label_smoothing) * F.logsigmoid(beta * delta) - label_smoothing * F.logsigmoid(-beta * delta)
    elif loss_type == "hinge":
        losses = torch.relu(1 - beta * delta)
    else:
        losses = (delta - 1 / (2 * beta)) ** 2
    return losses, (beta * pc).detach(), (beta * pr).detach()


@bugs.bug("dpo_ipo_target_times_beta", replaces="dpo_loss",
          mistake="the IPO target is scaled by beta (beta/2): IPO regresses delta onto 1/(2*beta)")
def dpo_ipo_target_times_beta(pc, pr, rc, rr, *, beta=0.1, label_smoothing=0.0, loss_type="sigmoid"):
    if (len({tuple(t.shape) for t in (pc, pr, rc, rr)}) != 1 or not beta > 0 or not 0 <= label_smoothing < 0.5
            or loss_type not in LOSS_TYPES):  # noqa: F821 - the reference's own constant
        raise ValueError("bad arguments")
    delta = (pc - rc.detach()) - (pr - rr.detach())
    if loss_type == "sigmoid":
        losses = -(1 - label_smoothing) * F.logsigmoid(beta * delta) - label_smoothing * F.logsigmoid(-beta * delta)
    elif loss_type == "hinge":
        losses = torch.relu(1 - beta * delta)
    else:
        losses = (delta - beta / 2) ** 2
    return losses, (beta * (pc - rc)).detach(), (beta * (pr - rr)).detach()


@bugs.bug("dpo_ipo_beta_times_delta", replaces="dpo_loss",
          mistake="IPO is written (beta*delta - 1/2)**2: that is beta**2 times the IPO loss; use "
                  "(delta - 1/(2*beta))**2 without beta on delta")
def dpo_ipo_beta_delta(pc, pr, rc, rr, *, beta=0.1, label_smoothing=0.0, loss_type="sigmoid"):
    if (len({tuple(t.shape) for t in (pc, pr, rc, rr)}) != 1 or not beta > 0 or not 0 <= label_smoothing < 0.5
            or loss_type not in LOSS_TYPES):  # noqa: F821 - the reference's own constant
        raise ValueError("bad arguments")
    delta = (pc - rc.detach()) - (pr - rr.detach())
    if loss_type == "sigmoid":
        losses = -(1 - label_smoothing) * F.logsigmoid(beta * delta) - label_smoothing * F.logsigmoid(-beta * delta)
    elif loss_type == "hinge":
        losses = torch.relu(1 - beta * delta)
    else:
        losses = (beta * delta - 0.5) ** 2
    return losses, (beta * (pc - rc)).detach(), (beta * (pr - rr)).detach()


@bugs.bug("dpo_beta_on_one_term", replaces="dpo_loss",
          mistake="beta multiplies only the chosen log-ratio: it must scale the whole difference "
                  "beta * ((pc - rc) - (pr - rr))")
def dpo_beta_one_term(pc, pr, rc, rr, *, beta=0.1, label_smoothing=0.0, loss_type="sigmoid"):
    if (len({tuple(t.shape) for t in (pc, pr, rc, rr)}) != 1 or not beta > 0 or not 0 <= label_smoothing < 0.5
            or loss_type not in LOSS_TYPES):  # noqa: F821 - the reference's own constant
        raise ValueError("bad arguments")
    z = beta * (pc - rc.detach()) - (pr - rr.detach())
    delta = (pc - rc.detach()) - (pr - rr.detach())
    if loss_type == "sigmoid":
        losses = -(1 - label_smoothing) * F.logsigmoid(z) - label_smoothing * F.logsigmoid(-z)
    elif loss_type == "hinge":
        losses = torch.relu(1 - z)
    else:
        losses = (delta - 1 / (2 * beta)) ** 2
    return losses, (beta * (pc - rc)).detach(), (beta * (pr - rr)).detach()


@bugs.bug("dpo_reference_not_detached", replaces="dpo_loss",
          mistake="gradient flows into the reference log-probs: the reference model is frozen, so detach "
                  "ref_chosen_logps and ref_rejected_logps (or compute them under torch.no_grad())")
def dpo_ref_attached(pc, pr, rc, rr, *, beta=0.1, label_smoothing=0.0, loss_type="sigmoid"):
    if (len({tuple(t.shape) for t in (pc, pr, rc, rr)}) != 1 or not beta > 0 or not 0 <= label_smoothing < 0.5
            or loss_type not in LOSS_TYPES):  # noqa: F821 - the reference's own constant
        raise ValueError("bad arguments")
    delta = (pc - rc) - (pr - rr)
    if loss_type == "sigmoid":
        losses = -(1 - label_smoothing) * F.logsigmoid(beta * delta) - label_smoothing * F.logsigmoid(-beta * delta)
    elif loss_type == "hinge":
        losses = torch.relu(1 - beta * delta)
    else:
        losses = (delta - 1 / (2 * beta)) ** 2
    return losses, (beta * (pc - rc)).detach(), (beta * (pr - rr)).detach()


@bugs.bug("dpo_hinge_without_beta", replaces="dpo_loss",
          mistake="the hinge loss ignores beta: it is relu(1 - beta * delta)")
def dpo_hinge_no_beta(pc, pr, rc, rr, *, beta=0.1, label_smoothing=0.0, loss_type="sigmoid"):
    if (len({tuple(t.shape) for t in (pc, pr, rc, rr)}) != 1 or not beta > 0 or not 0 <= label_smoothing < 0.5
            or loss_type not in LOSS_TYPES):  # noqa: F821 - the reference's own constant
        raise ValueError("bad arguments")
    delta = (pc - rc.detach()) - (pr - rr.detach())
    if loss_type == "sigmoid":
        losses = -(1 - label_smoothing) * F.logsigmoid(beta * delta) - label_smoothing * F.logsigmoid(-beta * delta)
    elif loss_type == "hinge":
        losses = torch.relu(1 - delta)
    else:
        losses = (delta - 1 / (2 * beta)) ** 2
    return losses, (beta * (pc - rc)).detach(), (beta * (pr - rr)).detach()


@bugs.bug("dpo_batch_mean", replaces="dpo_loss",
          mistake="the losses are averaged over the batch: return one loss per pair, shape (B,), and let the "
                  "training loop take the mean")
def dpo_batch_mean(pc, pr, rc, rr, *, beta=0.1, label_smoothing=0.0, loss_type="sigmoid"):
    if (len({tuple(t.shape) for t in (pc, pr, rc, rr)}) != 1 or not beta > 0 or not 0 <= label_smoothing < 0.5
            or loss_type not in LOSS_TYPES):  # noqa: F821 - the reference's own constant
        raise ValueError("bad arguments")
    delta = (pc - rc.detach()) - (pr - rr.detach())
    if loss_type == "sigmoid":
        losses = -(1 - label_smoothing) * F.logsigmoid(beta * delta) - label_smoothing * F.logsigmoid(-beta * delta)
    elif loss_type == "hinge":
        losses = torch.relu(1 - beta * delta)
    else:
        losses = (delta - 1 / (2 * beta)) ** 2
    return losses.mean(), (beta * (pc - rc)).detach(), (beta * (pr - rr)).detach()


@bugs.bug("dpo_no_argument_checks", replaces="dpo_loss",
          mistake="bad arguments are accepted: beta <= 0, label_smoothing < 0 or >= 0.5, and an unknown "
                  "loss_type must raise ValueError")
def dpo_no_checks(pc, pr, rc, rr, *, beta=0.1, label_smoothing=0.0, loss_type="sigmoid"):
    delta = (pc - rc.detach()) - (pr - rr.detach())
    if loss_type == "hinge":
        losses = torch.relu(1 - beta * delta)
    elif loss_type == "ipo":
        losses = (delta - 1 / (2 * beta)) ** 2
    else:
        losses = -(1 - label_smoothing) * F.logsigmoid(beta * delta) - label_smoothing * F.logsigmoid(-beta * delta)
    return losses, (beta * (pc - rc)).detach(), (beta * (pr - rr)).detach()


# --- reward_model_loss -----------------------------------------------------------------------
@bugs.bug("rm_sign_flipped", replaces="reward_model_loss",
          mistake="the reward-model loss has its sign flipped (logsigmoid(rejected - chosen)): it rewards "
                  "scoring the rejected answer higher")
def rm_sign(chosen_rewards, rejected_rewards, *, margin=None):
    if chosen_rewards.shape != rejected_rewards.shape or chosen_rewards.numel() == 0:
        raise ValueError("bad shapes")
    m = 0.0 if margin is None else margin
    return -F.logsigmoid(rejected_rewards - chosen_rewards - m).mean()


@bugs.bug("rm_margin_added", replaces="reward_model_loss",
          mistake="the margin is added: the chosen answer must win BY the margin, "
                  "-logsigmoid(chosen - rejected - margin)")
def rm_margin_added(chosen_rewards, rejected_rewards, *, margin=None):
    if chosen_rewards.shape != rejected_rewards.shape or chosen_rewards.numel() == 0:
        raise ValueError("bad shapes")
    m = 0.0 if margin is None else margin
    return -F.logsigmoid(chosen_rewards - rejected_rewards + m).mean()


@bugs.bug("rm_pointwise_bce", replaces="reward_model_loss",
          mistake="the rewards are scored one by one (BCE of sigmoid(chosen) vs 1 and sigmoid(rejected) vs 0): "
                  "Bradley-Terry is PAIRWISE, only the difference chosen - rejected matters")
def rm_pointwise(chosen_rewards, rejected_rewards, *, margin=None):
    if chosen_rewards.shape != rejected_rewards.shape or chosen_rewards.numel() == 0:
        raise ValueError("bad shapes")
    return (F.binary_cross_entropy_with_logits(chosen_rewards, torch.ones_like(chosen_rewards))
            + F.binary_cross_entropy_with_logits(rejected_rewards, torch.zeros_like(rejected_rewards)))


@bugs.bug("rm_log_of_sigmoid", replaces="reward_model_loss",
          mistake="log(sigmoid(x)) underflows to -inf for a large negative difference: use F.logsigmoid")
def rm_log_sigmoid(chosen_rewards, rejected_rewards, *, margin=None):
    if chosen_rewards.shape != rejected_rewards.shape or chosen_rewards.numel() == 0:
        raise ValueError("bad shapes")
    m = 0.0 if margin is None else margin
    return -torch.log(torch.sigmoid(chosen_rewards - rejected_rewards - m)).mean()


@bugs.bug("rm_sum_not_mean", replaces="reward_model_loss",
          mistake="the pair losses are summed: the loss is their MEAN over the batch")
def rm_sum(chosen_rewards, rejected_rewards, *, margin=None):
    if chosen_rewards.shape != rejected_rewards.shape or chosen_rewards.numel() == 0:
        raise ValueError("bad shapes")
    m = 0.0 if margin is None else margin
    return -F.logsigmoid(chosen_rewards - rejected_rewards - m).sum()


# --- preference_accuracy ---------------------------------------------------------------------
@bugs.bug("acc_counts_ties", replaces="preference_accuracy",
          mistake="ties count as correct (>=): a pair is right only when chosen > rejected strictly (at step 0 "
                  "of DPO every reward is 0 and the accuracy must be 0)")
def acc_ties(chosen_rewards, rejected_rewards):
    if chosen_rewards.shape != rejected_rewards.shape or chosen_rewards.numel() == 0:
        raise ValueError("bad shapes")
    return (chosen_rewards >= rejected_rewards).float().mean().item()


@bugs.bug("acc_returns_tensor", replaces="preference_accuracy",
          mistake="the accuracy is returned as a tensor: return a Python float (.item())")
def acc_tensor(chosen_rewards, rejected_rewards):
    if chosen_rewards.shape != rejected_rewards.shape or chosen_rewards.numel() == 0:
        raise ValueError("bad shapes")
    return (chosen_rewards > rejected_rewards).float().mean()


# --- ppo_clip_loss ---------------------------------------------------------------------------




@bugs.bug("ppo_max_instead_of_min", replaces="ppo_clip_loss",
          mistake="the surrogate takes the max of the clipped and unclipped terms: PPO takes the MIN (the "
                  "pessimistic bound) of the objective, i.e. the max of the two LOSSES -r*A and -clip(r)*A")
def ppo_max(logp_new, logp_old, advantages, *, clip_eps=0.2, mask=None):
    if logp_old.shape != logp_new.shape or not 0 < clip_eps < 1:
        raise ValueError("bad arguments")
    r = torch.exp(logp_new - logp_old.detach())
    a = advantages.detach()
    obj = torch.maximum(r * a, r.clamp(1 - clip_eps, 1 + clip_eps) * a)
    keep = torch.ones_like(obj, dtype=torch.bool) if mask is None else mask.bool()
    if keep.sum() == 0:
        raise ValueError("mask selects no position")
    return -obj.masked_fill(~keep, 0.0).sum() / keep.sum()


@bugs.bug("ppo_ratio_inverted", replaces="ppo_clip_loss",
          mistake="the ratio is inverted (exp(logp_old - logp_new)): r = pi_new / pi_old = exp(logp_new - logp_old)")
def ppo_inverted(logp_new, logp_old, advantages, *, clip_eps=0.2, mask=None):
    if logp_old.shape != logp_new.shape or not 0 < clip_eps < 1:
        raise ValueError("bad arguments")
    r = torch.exp(logp_old.detach() - logp_new)
    a = advantages.detach()
    obj = torch.minimum(r * a, r.clamp(1 - clip_eps, 1 + clip_eps) * a)
    keep = torch.ones_like(obj, dtype=torch.bool) if mask is None else mask.bool()
    if keep.sum() == 0:
        raise ValueError("mask selects no position")
    return -obj.masked_fill(~keep, 0.0).sum() / keep.sum()


@bugs.bug("ppo_mask_ignored", replaces="ppo_clip_loss",
          mistake="the mask is ignored: padding positions enter the mean; average only where mask is True")
def ppo_mask_ignored(logp_new, logp_old, advantages, *, clip_eps=0.2, mask=None):
    if logp_old.shape != logp_new.shape or not 0 < clip_eps < 1:
        raise ValueError("bad arguments")
    r = torch.exp(logp_new - logp_old.detach())
    a = advantages.detach()
    return -torch.minimum(r * a, r.clamp(1 - clip_eps, 1 + clip_eps) * a).mean()


@bugs.bug("ppo_mask_not_in_denominator", replaces="ppo_clip_loss",
          mistake="masked positions are zeroed but the mean still divides by ALL positions ((x * mask).mean()): "
                  "divide by the number of positions where mask is True")
def ppo_mask_mean(logp_new, logp_old, advantages, *, clip_eps=0.2, mask=None):
    if logp_old.shape != logp_new.shape or not 0 < clip_eps < 1:
        raise ValueError("bad arguments")
    r = torch.exp(logp_new - logp_old.detach())
    a = advantages.detach()
    obj = torch.minimum(r * a, r.clamp(1 - clip_eps, 1 + clip_eps) * a)
    return -(obj * mask).mean() if mask is not None else -obj.mean()


@bugs.bug("ppo_clips_advantage", replaces="ppo_clip_loss",
          mistake="the advantage is clipped instead of the probability ratio: clip r to [1-eps, 1+eps]")
def ppo_clip_adv(logp_new, logp_old, advantages, *, clip_eps=0.2, mask=None):
    if logp_old.shape != logp_new.shape or not 0 < clip_eps < 1:
        raise ValueError("bad arguments")
    r = torch.exp(logp_new - logp_old.detach())
    a = advantages.detach()
    obj = torch.minimum(r * a, r * a.clamp(1 - clip_eps, 1 + clip_eps))
    keep = torch.ones_like(obj, dtype=torch.bool) if mask is None else mask.bool()
    if keep.sum() == 0:
        raise ValueError("mask selects no position")
    return -obj.masked_fill(~keep, 0.0).sum() / keep.sum()


@bugs.bug("ppo_clip_range_from_eps", replaces="ppo_clip_loss",
          mistake="the clip range is [eps, 1+eps]: the ratio is clipped to [1-eps, 1+eps] around 1")
def ppo_clip_range(logp_new, logp_old, advantages, *, clip_eps=0.2, mask=None):
    if logp_old.shape != logp_new.shape or not 0 < clip_eps < 1:
        raise ValueError("bad arguments")
    r = torch.exp(logp_new - logp_old.detach())
    a = advantages.detach()
    obj = torch.minimum(r * a, r.clamp(clip_eps, 1 + clip_eps) * a)
    keep = torch.ones_like(obj, dtype=torch.bool) if mask is None else mask.bool()
    if keep.sum() == 0:
        raise ValueError("mask selects no position")
    return -obj.masked_fill(~keep, 0.0).sum() / keep.sum()


@bugs.bug("ppo_objective_not_negated", replaces="ppo_clip_loss",
          mistake="the objective is returned as the loss: PPO MAXIMISES the clipped surrogate, so the loss to "
                  "minimise is its negative")
def ppo_no_neg(logp_new, logp_old, advantages, *, clip_eps=0.2, mask=None):
    if logp_old.shape != logp_new.shape or not 0 < clip_eps < 1:
        raise ValueError("bad arguments")
    r = torch.exp(logp_new - logp_old.detach())
    a = advantages.detach()
    obj = torch.minimum(r * a, r.clamp(1 - clip_eps, 1 + clip_eps) * a)
    keep = torch.ones_like(obj, dtype=torch.bool) if mask is None else mask.bool()
    if keep.sum() == 0:
        raise ValueError("mask selects no position")
    return obj.masked_fill(~keep, 0.0).sum() / keep.sum()


@bugs.bug("ppo_advantages_not_detached", replaces="ppo_clip_loss",
          mistake="gradient flows into the advantages (and the old log-probs): they are constants computed from "
                  "the rollout; detach them so only logp_new is trained by this loss")
def ppo_adv_attached(logp_new, logp_old, advantages, *, clip_eps=0.2, mask=None):
    if logp_old.shape != logp_new.shape or not 0 < clip_eps < 1:
        raise ValueError("bad arguments")
    r = torch.exp(logp_new - logp_old)
    obj = torch.minimum(r * advantages, r.clamp(1 - clip_eps, 1 + clip_eps) * advantages)
    keep = torch.ones_like(obj, dtype=torch.bool) if mask is None else mask.bool()
    if keep.sum() == 0:
        raise ValueError("mask selects no position")
    return -obj.masked_fill(~keep, 0.0).sum() / keep.sum()
