"""Realistic buggy variants of ``dpo``: each is a patch of the reference (see llmlab.grading.variants)."""
from llmlab.grading.variants import Variants

bugs = Variants("dpo")

# --- sequence_logprobs ---------------------------------------------------------------------------
SUM = "return token_logps.masked_fill(~counted, 0.0).sum(dim=-1)"
TOKEN_LOGPS = "token_logps = scores.gather(-1, safe).squeeze(-1) - torch.logsumexp(scores, dim=-1)"
bugs.patch("seq_mean_over_tokens", "sequence_logprobs", SUM, SUM + " / counted.sum(-1).clamp(min=1)",
           mistake="the per-token log-probs are averaged instead of summed: log pi(y|x) is the SUM over the "
                   "completion's tokens (a mean makes long and short answers look alike)")
bugs.patch("seq_no_shift", "sequence_logprobs", "targets = labels[:, 1:]", "targets = labels",
           mistake="the logits at position t are scored against the label at position t: a causal LM's logits at t "
                   "predict the NEXT token, so score logits[:, :-1] against labels[:, 1:]")
bugs.patch("seq_no_shift", "sequence_logprobs", "scores = logits[:, :-1]", "scores = logits")
bugs.patch("seq_mask_not_shifted", "sequence_logprobs", "scores = logits[:, :-1]",
           "scores = logits[:, :-1]\ncounted = (labels != ignore_index)[:, :-1]",
           mistake="the labels are shifted but the ignore mask is not: it must come from labels[:, 1:] too, or the "
                   "last prompt token counts and the last completion token is dropped")
bugs.patch("seq_mask_not_shifted", "sequence_logprobs", "targets.masked_fill(~counted, 0)", "targets.clamp(min=0)")
bugs.patch("seq_ignored_positions_counted", "sequence_logprobs", SUM, "return token_logps.sum(dim=-1)",
           mistake="positions labelled ignore_index are counted (as token 0): replacing -100 by 0 for the gather is "
                   "fine, but those positions must then be zeroed out of the sum")
bugs.patch("seq_log_of_softmax", "sequence_logprobs", TOKEN_LOGPS,
           "token_logps = torch.log(torch.softmax(scores, dim=-1).gather(-1, safe).squeeze(-1))",
           mistake="log(softmax(logits)) underflows to log(0) = -inf for unlikely tokens: use log_softmax (or logits "
                   "- logsumexp)")
bugs.patch("seq_raw_logits", "sequence_logprobs", TOKEN_LOGPS, "token_logps = scores.gather(-1, safe).squeeze(-1)",
           mistake="the raw logits are summed: normalise them first with log_softmax over the vocabulary")
bugs.patch("seq_breaks_graph", "sequence_logprobs", SUM,
           "return torch.tensor([row.masked_fill(~c, 0.0).sum().item() for row, c in zip(token_logps, counted)], "
           "dtype=logits.dtype)",
           mistake="the result is rebuilt from Python numbers (.item() / torch.tensor(list)): no gradient reaches the "
                   "logits, so DPO cannot train the model")
bugs.patch("seq_modifies_labels_in_place", "sequence_logprobs", "safe = targets.masked_fill(~counted, 0).long()",
           "labels[labels == ignore_index] = 0\nsafe = targets.long()",
           mistake="the labels are modified in place (labels[labels == ignore_index] = 0): the caller's labels "
                   "change; work on a copy (masked_fill, clamp) instead")
# The argument checks use ignore_index; the masking after them hard-codes -100.
bugs.patch("seq_ignore_index_hard_coded", "sequence_logprobs", "scores = logits[:, :-1]",
           "counted = targets != -100\nscores = logits[:, :-1]", mistake="-100 is hard-coded: use the ignore_index argument")
bugs.patch("seq_ignore_index_hard_coded", "sequence_logprobs", "targets.masked_fill(~counted, 0)",
           "targets.clamp(0, logits.shape[-1] - 1)")

# --- dpo_loss ------------------------------------------------------------------------------------
IPO = "losses = (delta - 1 / (2 * beta)) ** 2"
SIGMOID = "losses = -(1 - eps) * F.logsigmoid(beta * delta) - eps * F.logsigmoid(-beta * delta)"
bugs.patch("dpo_sign_flipped", "dpo_loss", "delta = chosen_logratios - rejected_logratios",
           "delta = rejected_logratios - chosen_logratios",
           mistake="the sign of the preference is flipped (logsigmoid of beta*(rejected - chosen) ratios): the loss "
                   "then pushes the policy towards the REJECTED answers")
bugs.patch("dpo_log_of_sigmoid", "dpo_loss", SIGMOID,
           "losses = -(1 - eps) * torch.log(torch.sigmoid(beta * delta)) "
           "- eps * torch.log(torch.sigmoid(-beta * delta))",
           mistake="log(sigmoid(x)) underflows: sigmoid(-1e4) is 0 in floating point and log(0) = -inf (and its "
                   "gradient NaN); use F.logsigmoid")
bugs.patch("dpo_smoothing_wrong_side", "dpo_loss", "- eps * F.logsigmoid(-beta * delta)",
           "+ eps * F.logsigmoid(-beta * delta)",
           mistake="label smoothing has the wrong sign: conservative DPO SUBTRACTS eps * logsigmoid(-beta*delta) "
                   "(-(1-eps) logsig(bd) - eps logsig(-bd)); '+' is TRL's 'robust' numerator")
bugs.patch("dpo_rewards_not_detached", "dpo_loss", """
    chosen_rewards = (beta * chosen_logratios).detach()
    rejected_rewards = (beta * rejected_logratios).detach()
""", """
    chosen_rewards = beta * chosen_logratios
    rejected_rewards = beta * rejected_logratios
""", mistake="the returned rewards are not detached: they are for logging, so return beta*(policy - ref).detach() "
             "(otherwise they keep the graph alive, and backpropagating through them trains on them)")
bugs.patch("dpo_rewards_from_policy_alone", "dpo_loss", """
    chosen_rewards = (beta * chosen_logratios).detach()
    rejected_rewards = (beta * rejected_logratios).detach()
""", """
    chosen_rewards = (beta * policy_chosen_logps).detach()
    rejected_rewards = (beta * policy_rejected_logps).detach()
""", mistake="the rewards are beta * policy log-probs: the implicit reward is beta * (policy - reference) "
             "log-probs, a log-RATIO")
bugs.patch("dpo_ipo_target_times_beta", "dpo_loss", IPO, "losses = (delta - beta / 2) ** 2",
           mistake="the IPO target is scaled by beta (beta/2): IPO regresses delta onto 1/(2*beta)")
bugs.patch("dpo_ipo_beta_times_delta", "dpo_loss", IPO, "losses = (beta * delta - 0.5) ** 2",
           mistake="IPO is written (beta*delta - 1/2)**2: that is beta**2 times the IPO loss; use (delta - "
                   "1/(2*beta))**2 without beta on delta")
bugs.patch("dpo_beta_on_one_term", "dpo_loss", "delta = chosen_logratios - rejected_logratios",
           "delta = chosen_logratios - rejected_logratios\nz = beta * chosen_logratios - rejected_logratios",
           mistake="beta multiplies only the chosen log-ratio: it must scale the whole difference beta * ((pc - rc) - "
                   "(pr - rr))")
bugs.patch("dpo_beta_on_one_term", "dpo_loss", SIGMOID,
           "losses = -(1 - eps) * F.logsigmoid(z) - eps * F.logsigmoid(-z)")
bugs.patch("dpo_beta_on_one_term", "dpo_loss", "torch.relu(1 - beta * delta)", "torch.relu(1 - z)")
bugs.patch("dpo_reference_not_detached", "dpo_loss", """
    chosen_logratios = policy_chosen_logps - ref_chosen_logps.detach()
    rejected_logratios = policy_rejected_logps - ref_rejected_logps.detach()
""", """
    chosen_logratios = policy_chosen_logps - ref_chosen_logps
    rejected_logratios = policy_rejected_logps - ref_rejected_logps
""", mistake="gradient flows into the reference log-probs: the reference model is frozen, so detach "
             "ref_chosen_logps and ref_rejected_logps (or compute them under torch.no_grad())")
bugs.patch("dpo_hinge_without_beta", "dpo_loss", "torch.relu(1 - beta * delta)", "torch.relu(1 - delta)",
           mistake="the hinge loss ignores beta: it is relu(1 - beta * delta)")
bugs.patch("dpo_batch_mean", "dpo_loss", "return losses, chosen_rewards", "return losses.mean(), chosen_rewards",
           mistake="the losses are averaged over the batch: return one loss per pair, shape (B,), and let the "
                   "training loop take the mean")
bugs.patch("dpo_no_argument_checks", "dpo_loss", """
    if isinstance(beta, bool) or not isinstance(beta, (int, float)) or not beta > 0:
        raise ValueError(f"beta must be a number > 0, got {beta!r}")
    if isinstance(label_smoothing, bool) or not isinstance(label_smoothing, (int, float)) or not (
            0.0 <= label_smoothing < 0.5):
        raise ValueError(f"label_smoothing must be in [0, 0.5), got {label_smoothing!r}")
    if loss_type not in LOSS_TYPES:
        raise ValueError(f"loss_type must be one of {LOSS_TYPES}, got {loss_type!r}")
""", "", mistake="bad arguments are accepted: beta <= 0, label_smoothing < 0 or >= 0.5, and an unknown loss_type must "
                 "raise ValueError")

# --- reward_model_loss ---------------------------------------------------------------------------
bugs.patch("rm_sign_flipped", "reward_model_loss", "diff = chosen_rewards - rejected_rewards",
           "diff = rejected_rewards - chosen_rewards",
           mistake="the reward-model loss has its sign flipped (logsigmoid(rejected - chosen)): it rewards scoring "
                   "the rejected answer higher")
bugs.patch("rm_margin_added", "reward_model_loss", "diff = diff - margin", "diff = diff + margin",
           mistake="the margin is added: the chosen answer must win BY the margin, -logsigmoid(chosen - rejected - "
                   "margin)")
bugs.patch("rm_pointwise_bce", "reward_model_loss", "return -F.logsigmoid(diff).mean()", """
return (F.binary_cross_entropy_with_logits(chosen_rewards, torch.ones_like(chosen_rewards))
        + F.binary_cross_entropy_with_logits(rejected_rewards, torch.zeros_like(rejected_rewards)))""",
           mistake="the rewards are scored one by one (BCE of sigmoid(chosen) vs 1 and sigmoid(rejected) vs 0): "
                   "Bradley-Terry is PAIRWISE, only the difference chosen - rejected matters")
bugs.patch("rm_log_of_sigmoid", "reward_model_loss", "-F.logsigmoid(diff)", "-torch.log(torch.sigmoid(diff))",
           mistake="log(sigmoid(x)) underflows to -inf for a large negative difference: use F.logsigmoid")
bugs.patch("rm_sum_not_mean", "reward_model_loss", "-F.logsigmoid(diff).mean()", "-F.logsigmoid(diff).sum()",
           mistake="the pair losses are summed: the loss is their MEAN over the batch")

# --- preference_accuracy -------------------------------------------------------------------------
bugs.patch("acc_counts_ties", "preference_accuracy", "chosen_rewards > rejected_rewards",
           "chosen_rewards >= rejected_rewards",
           mistake="ties count as correct (>=): a pair is right only when chosen > rejected strictly (at step 0 of "
                   "DPO every reward is 0 and the accuracy must be 0)")
bugs.patch("acc_returns_tensor", "preference_accuracy", ".double().mean().item()", ".float().mean()",
           mistake="the accuracy is returned as a tensor: return a Python float (.item())")

# --- ppo_clip_loss -------------------------------------------------------------------------------
bugs.patch("ppo_max_instead_of_min", "ppo_clip_loss", "torch.minimum(", "torch.maximum(",
           mistake="the surrogate takes the max of the clipped and unclipped terms: PPO takes the MIN (the "
                   "pessimistic bound) of the objective, i.e. the max of the two LOSSES -r*A and -clip(r)*A")
bugs.patch("ppo_ratio_inverted", "ppo_clip_loss", "torch.exp(logp_new - logp_old.detach())",
           "torch.exp(logp_old.detach() - logp_new)",
           mistake="the ratio is inverted (exp(logp_old - logp_new)): r = pi_new / pi_old = exp(logp_new - logp_old)")
bugs.patch("ppo_mask_ignored", "ppo_clip_loss", "if mask is None:", "if True:",
           mistake="the mask is ignored: padding positions enter the mean; average only where mask is True")
bugs.patch("ppo_mask_not_in_denominator", "ppo_clip_loss", "return -objective.masked_fill(~keep, 0.0).sum() / count",
           "return -(objective * mask).mean()",
           mistake="masked positions are zeroed but the mean still divides by ALL positions ((x * mask).mean()): "
                   "divide by the number of positions where mask is True")
bugs.patch("ppo_clips_advantage", "ppo_clip_loss", "ratio.clamp(1 - clip_eps, 1 + clip_eps) * adv",
           "ratio * adv.clamp(1 - clip_eps, 1 + clip_eps)",
           mistake="the advantage is clipped instead of the probability ratio: clip r to [1-eps, 1+eps]")
bugs.patch("ppo_clip_range_from_eps", "ppo_clip_loss", "clamp(1 - clip_eps, 1 + clip_eps)",
           "clamp(clip_eps, 1 + clip_eps)",
           mistake="the clip range is [eps, 1+eps]: the ratio is clipped to [1-eps, 1+eps] around 1")
bugs.patch("ppo_objective_not_negated", "ppo_clip_loss", "return -objective.mean()", "return objective.mean()",
           mistake="the objective is returned as the loss: PPO MAXIMISES the clipped surrogate, so the loss to "
                   "minimise is its negative")
bugs.patch("ppo_objective_not_negated", "ppo_clip_loss", "return -objective.masked_fill",
           "return objective.masked_fill")
bugs.patch("ppo_advantages_not_detached", "ppo_clip_loss", """
    ratio = torch.exp(logp_new - logp_old.detach())
    adv = advantages.detach()
""", """
    ratio = torch.exp(logp_new - logp_old)
    adv = advantages
""", mistake="gradient flows into the advantages (and the old log-probs): they are constants computed from the "
             "rollout; detach them so only logp_new is trained by this loss")


# ---- added for fairness (issue 16)
bugs.patch("seq_float32", "sequence_logprobs", "scores = logits[:, :-1]", "scores = logits[:, :-1].float()",
           mistake="the log-probs are computed in float32 (.float()) and cast back: float64 logits must keep "
                   "float64 precision, so compute in the dtype of the logits")
bugs.patch("seq_float32", "sequence_logprobs", "return token_logps.masked_fill(~counted, 0.0).sum(dim=-1)",
           "return token_logps.masked_fill(~counted, 0.0).sum(dim=-1).to(logits.dtype)",
           mistake="the log-probs are computed in float32 (.float()) and cast back: float64 logits must keep "
                   "float64 precision, so compute in the dtype of the logits")
bugs.patch("dpo_no_hinge", "dpo_loss", "losses = torch.relu(1 - beta * delta)",
           'raise ValueError(f"unsupported loss_type {loss_type!r}")',
           mistake="the hinge (SLiC) loss is missing: loss_type='hinge' must give relu(1 - beta * delta)")
bugs.patch("dpo_float32", "dpo_loss", "delta = chosen_logratios - rejected_logratios",
           "delta = (chosen_logratios - rejected_logratios).float()",
           mistake="the losses are computed in float32 (.float()): float64 log-probs must keep float64 precision")
bugs.patch("dpo_float32", "dpo_loss", "return losses, chosen_rewards, rejected_rewards",
           "return losses.to(chosen_logratios.dtype), chosen_rewards, rejected_rewards",
           mistake="the losses are computed in float32 (.float()): float64 log-probs must keep float64 precision")
bugs.patch("rm_float32", "reward_model_loss", "diff = chosen_rewards - rejected_rewards",
           "diff = (chosen_rewards - rejected_rewards).float()",
           mistake="the loss is computed in float32 (.float()): float64 rewards must keep float64 precision")
bugs.patch("rm_float32", "reward_model_loss", "return -F.logsigmoid(diff).mean()",
           "return -F.logsigmoid(diff).mean().to(chosen_rewards.dtype)",
           mistake="the loss is computed in float32 (.float()): float64 rewards must keep float64 precision")
bugs.patch("ppo_float32", "ppo_clip_loss", "ratio = torch.exp(logp_new - logp_old.detach())",
           "ratio = torch.exp((logp_new - logp_old.detach()).float())",
           mistake="the probability ratio is computed in float32 (.float()): float64 log-probs must keep float64 "
                   "precision")
