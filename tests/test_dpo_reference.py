"""The `dpo` reference against the numbers SEMANTICS.md §4.2-4.4 states, and against TRL 1.16.0's DPOTrainer.

The graders compute their expected values with the reference, so the reference itself is pinned here:
to the spec's test vectors (written in the spec, verified there against trl 1.16.0 / 0.19.1), and to
TRL's own ``DPOTrainer._compute_loss`` on a tiny random Llama, which checks ``sequence_logprobs``
(shift, sum over completion tokens, masking of prompt and padding) and ``dpo_loss`` together.

TRL version differences (SEMANTICS.md §4.2), and how they are compared:
* ``sigmoid`` in trl 1.16 ignores ``label_smoothing``; the kit's cDPO (trl 0.19's ``sigmoid``) is the
  mixture ``(1-eps) * L(delta) + eps * L(-delta)``, and ``L(-delta)`` is TRL's loss on the swapped pairs.
  TRL 1.16's ``robust`` loss pins the sign: ``robust * (1 - 2 eps) = (1-eps) L(delta) - eps L(-delta)``.
* ``ipo`` in trl 1.16 divides each log-ratio by its completion length first; the kit's ``ipo`` takes the
  log-probs it is given, so it is compared on length-normalised log-probs.
"""
from __future__ import annotations

import copy
import math
import tempfile

import pytest
import torch

from solutions import dpo

# one worker runs the whole module, so its module-scoped fixture is built once, not once per worker
pytestmark = pytest.mark.xdist_group("trl")

TRL_VERSION = "1.16.0"

PC, PR = torch.tensor([-10.0, -5.0]), torch.tensor([-12.0, -4.0])
RC, RR = torch.tensor([-11.0, -6.0]), torch.tensor([-11.0, -4.5])


def close(actual, expected, atol=1e-6):
    torch.testing.assert_close(actual, torch.as_tensor(expected, dtype=actual.dtype), atol=atol, rtol=0)


# --- SEMANTICS.md test vectors ------------------------------------------------------------------
def test_dpo_sigmoid_vector():
    losses, chosen, rejected = dpo.dpo_loss(PC, PR, RC, RR, beta=0.1)
    close(losses, [0.598139, 0.668460])
    close(losses.mean(), 0.633299)
    close(chosen, [0.1, 0.1])
    close(rejected, [-0.1, 0.05])
    assert dpo.preference_accuracy(chosen, rejected) == 1.0
    close((chosen - rejected).mean(), 0.125)


def test_dpo_cdpo_hinge_ipo_vectors():
    close(dpo.dpo_loss(PC, PR, RC, RR, beta=0.1, label_smoothing=0.1)[0], [0.618139, 0.673460])
    close(dpo.dpo_loss(PC, PR, RC, RR, beta=0.1, loss_type="hinge")[0], [0.8, 0.95])
    # ipo: delta = [2, 0.5], 1/(2 beta) = 5
    close(dpo.dpo_loss(PC, PR, RC, RR, beta=0.1, loss_type="ipo")[0], [9.0, 20.25])


def test_robust_vector_relates_to_cdpo():
    # SEMANTICS.md: robust eps=0.1 gives [0.573139, 0.662210]; robust*(1-2eps) = (1-eps)L(d) - eps L(-d)
    plain = dpo.dpo_loss(PC, PR, RC, RR)[0]
    swapped = dpo.dpo_loss(PR, PC, RR, RC)[0]
    robust = (0.9 * plain - 0.1 * swapped) / 0.8
    close(robust, [0.573139, 0.662210])
    close(dpo.dpo_loss(PC, PR, RC, RR, label_smoothing=0.1)[0], 0.9 * plain + 0.1 * swapped)


def test_reward_model_vectors():
    rc, rr = torch.tensor([1.0, 0.2]), torch.tensor([0.5, 0.7])
    close(dpo.reward_model_loss(rc, rr), 0.724077)
    close(dpo.reward_model_loss(rc, rr, margin=0.5), 1.003204)
    close(dpo.reward_model_loss(rc, rr, margin=torch.tensor([0.5, 0.5])), 1.003204)


def test_ppo_vectors():
    # per-sample objectives [0.5, 0.9, 1.1, 1.2] (A=+1) and [-0.8, -1.5] (A=-1); the loss is minus their mean
    r = torch.tensor([0.5, 0.9, 1.1, 1.5])
    close(dpo.ppo_clip_loss(r.log(), torch.zeros(4), torch.ones(4)), -(0.5 + 0.9 + 1.1 + 1.2) / 4)
    r = torch.tensor([0.5, 1.5])
    close(dpo.ppo_clip_loss(r.log(), torch.zeros(2), -torch.ones(2)), (0.8 + 1.5) / 2)


def test_ppo_matches_trl_019_formula_with_mask():
    """TRL 0.19.1 PPOTrainer: pg_loss = masked_mean(max(-A r, -A clip(r))) over non-pad tokens."""
    g = torch.Generator().manual_seed(0)
    new, old, adv = torch.randn(3, 5, generator=g), torch.randn(3, 5, generator=g), torch.randn(3, 5, generator=g)
    mask = torch.rand(3, 5, generator=g) < 0.6
    ratio = (new - old).exp()
    pg = torch.max(-adv * ratio, -adv * ratio.clamp(0.8, 1.2))
    close(dpo.ppo_clip_loss(new, old, adv, mask=mask), (pg * mask).sum() / mask.sum(), atol=1e-6)


def test_dpo_gradient_is_the_papers_weighting():
    """DPO's gradient weights each pair by sigmoid(r_rejected - r_chosen) (SEMANTICS.md §4.1)."""
    pc, pr = PC.clone().requires_grad_(), PR.clone().requires_grad_()
    losses, chosen, rejected = dpo.dpo_loss(pc, pr, RC, RR, beta=0.1)
    losses.sum().backward()
    close(pc.grad, -0.1 * torch.sigmoid(rejected - chosen))
    close(pr.grad, 0.1 * torch.sigmoid(rejected - chosen))


def test_sequence_logprobs_by_enumeration():
    """Against a plain double loop over positions, on random logits and labels."""
    g = torch.Generator().manual_seed(1)
    logits = torch.randn(3, 6, 5, generator=g, dtype=torch.float64)
    labels = torch.randint(0, 5, (3, 6), generator=g)
    labels[torch.rand(3, 6, generator=g) < 0.4] = -100
    want = torch.zeros(3, dtype=torch.float64)
    for b in range(3):
        for t in range(5):
            if labels[b, t + 1] != -100:
                want[b] += torch.log_softmax(logits[b, t], -1)[labels[b, t + 1]]
    close(dpo.sequence_logprobs(logits, labels), want, atol=1e-12)


def test_stability_extremes():
    for z in (1e4, -1e4):
        pc = torch.tensor([z / 0.1 - 20.0], requires_grad=True)
        losses, _, _ = dpo.dpo_loss(pc, torch.tensor([-20.0]), torch.tensor([-20.0]), torch.tensor([-20.0]))
        losses.sum().backward()
        assert torch.isfinite(losses).all() and torch.isfinite(pc.grad).all()
        assert math.isclose(losses.item(), max(-z, 0.0), abs_tol=1e-3)


# --- TRL 1.16.0 DPOTrainer ------------------------------------------------------------------
@pytest.fixture(scope="module")
def trl_setup():
    import trl  # a test extra: a missing or other trl fails here with its reason, never skips

    assert trl.__version__ == TRL_VERSION, f"compared against trl {TRL_VERSION}, found {trl.__version__}"
    from datasets import Dataset
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    from llmlab.models import smollm2_dir

    tokenizer = AutoTokenizer.from_pretrained(smollm2_dir())  # ModelNotInstalled says how to install it
    config = LlamaConfig(vocab_size=len(tokenizer), hidden_size=16, intermediate_size=32, num_hidden_layers=2,
                         num_attention_heads=2, num_key_value_heads=1, max_position_embeddings=256,
                         pad_token_id=tokenizer.pad_token_id)
    torch.manual_seed(0)
    policy, reference = LlamaForCausalLM(config), LlamaForCausalLM(config)
    rows = [
        {"prompt": "The capital of France is", "chosen": " Paris.", "rejected": " a city, I think, maybe Lyon?"},
        {"prompt": "2 + 2 =", "chosen": " 4", "rejected": " five"},
        {"prompt": "Say something kind:", "chosen": " You did great today!", "rejected": " No."},
    ]
    return tokenizer, policy, reference, Dataset.from_list(rows)


def _trl_loss(trl_setup, loss_type, swap=False, **kw):
    """TRL's mean loss and metrics on the three pairs (rejected and chosen swapped when ``swap``)."""
    from trl import DPOConfig, DPOTrainer

    tokenizer, policy, reference, data = trl_setup
    if swap:
        data = data.rename_columns({"chosen": "rejected", "rejected": "chosen"})
    # bf16=False: DPOConfig defaults to bf16 autocast, which accelerate applies to the reference model's
    # forward (even on CPU); the comparison must run in float32 on both sides
    args = DPOConfig(output_dir=tempfile.mkdtemp(prefix="llmlab-trl-"), report_to=[], use_cpu=True, bf16=False,
                     per_device_train_batch_size=3, loss_type=[loss_type], max_length=64, **kw)
    # fresh copies: a DPOTrainer patches its models' forward (fused LM head, autocast); the originals stay
    # plain and are what the kit's side uses
    trainer = DPOTrainer(model=copy.deepcopy(policy), ref_model=copy.deepcopy(reference), args=args,
                         train_dataset=data, processing_class=tokenizer)
    batch = trainer.data_collator([trainer.train_dataset[i] for i in range(len(trainer.train_dataset))])
    trainer.model.train(False)  # no dropout in this config anyway; the metrics land under "eval"
    with torch.no_grad():
        loss = trainer._compute_loss(trainer.model, batch, False)
    metrics = {k: v[-1] for k, v in trainer._metrics["eval"].items()}
    return loss.item(), metrics, batch


def _kit_logps(trl_setup, batch):
    """The kit's sequence log-probs of TRL's batch, for the policy and the reference."""
    _, policy, reference, _ = trl_setup
    labels = batch["input_ids"].masked_fill(batch["completion_mask"] == 0, -100)
    with torch.no_grad():
        out = [dpo.sequence_logprobs(m(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits,
                                     labels).chunk(2) for m in (policy, reference)]
    lengths = (labels[:, 1:] != -100).sum(-1).chunk(2)
    return out[0], out[1], lengths


@pytest.mark.slow
def test_sigmoid_loss_and_metrics_match_trl(trl_setup):
    loss, metrics, batch = _trl_loss(trl_setup, "sigmoid", beta=0.1)
    (pc, pr), (rc, rr), _ = _kit_logps(trl_setup, batch)
    losses, chosen, rejected = dpo.dpo_loss(pc, pr, rc, rr, beta=0.1)
    assert math.isclose(losses.mean().item(), loss, abs_tol=1e-5)
    assert math.isclose(pc.mean().item(), metrics["logps/chosen"], rel_tol=1e-5)
    assert math.isclose(pr.mean().item(), metrics["logps/rejected"], rel_tol=1e-5)
    assert math.isclose(chosen.mean().item(), metrics["rewards/chosen"], abs_tol=1e-6)
    assert math.isclose(rejected.mean().item(), metrics["rewards/rejected"], abs_tol=1e-6)
    assert math.isclose((chosen - rejected).mean().item(), metrics["rewards/margins"], abs_tol=1e-6)
    assert dpo.preference_accuracy(chosen, rejected) == pytest.approx(metrics["rewards/accuracies"])


@pytest.mark.slow
def test_hinge_loss_matches_trl(trl_setup):
    loss, _, batch = _trl_loss(trl_setup, "hinge", beta=2.0)
    (pc, pr), (rc, rr), _ = _kit_logps(trl_setup, batch)
    assert math.isclose(dpo.dpo_loss(pc, pr, rc, rr, beta=2.0, loss_type="hinge")[0].mean().item(), loss,
                        abs_tol=1e-5)


@pytest.mark.slow
def test_ipo_matches_trl_on_length_normalised_logps(trl_setup):
    loss, _, batch = _trl_loss(trl_setup, "ipo", beta=0.5)
    (pc, pr), (rc, rr), (nc, nr) = _kit_logps(trl_setup, batch)
    ours = dpo.dpo_loss(pc / nc, pr / nr, rc / nc, rr / nr, beta=0.5, loss_type="ipo")[0].mean().item()
    assert math.isclose(ours, loss, rel_tol=1e-5)
    unnormalised = dpo.dpo_loss(pc, pr, rc, rr, beta=0.5, loss_type="ipo")[0].mean().item()
    assert not math.isclose(unnormalised, loss, rel_tol=1e-3)  # the version difference is real


@pytest.mark.slow
def test_conservative_dpo_is_trls_mixture_and_not_robust(trl_setup):
    eps = 0.2
    plain, _, batch = _trl_loss(trl_setup, "sigmoid", beta=0.1)
    swapped, _, _ = _trl_loss(trl_setup, "sigmoid", swap=True, beta=0.1)
    robust, _, _ = _trl_loss(trl_setup, "robust", beta=0.1, label_smoothing=eps)
    smoothed, _, _ = _trl_loss(trl_setup, "sigmoid", beta=0.1, label_smoothing=eps)
    (pc, pr), (rc, rr), _ = _kit_logps(trl_setup, batch)
    ours = dpo.dpo_loss(pc, pr, rc, rr, beta=0.1, label_smoothing=eps)[0].mean().item()
    assert math.isclose(ours, (1 - eps) * plain + eps * swapped, abs_tol=1e-5)
    assert math.isclose(robust * (1 - 2 * eps), (1 - eps) * plain - eps * swapped, abs_tol=1e-5)
    assert math.isclose(smoothed, plain, abs_tol=1e-7)  # trl 1.16 ignores label_smoothing for sigmoid
