"""Cross-checks of ``imdb_local_llm``'s reference against transformers and against the calibration paper.

* ``label_logprobs`` equals the first-step scores of transformers' own ``generate`` on a left-padded
  batch (``output_logits=True``): the library's handling of padding, positions and the last position is
  the reference for ours. Checked on the graders' tiny random Llama and, marked slow, on SmolLM2.
* ``calibrate`` equals Zhao et al.'s formulation in probability space: ``W p`` with
  ``W = diag(1 / p_cf)``, renormalised.
* ``classify`` equals the argmax of the calibrated scores computed step by step.
* The full-size script runs end to end on a handful of reviews (slow).
"""
from __future__ import annotations

import subprocess
import sys

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from graders.strategies import one_torch_thread  # noqa: F401  (an autouse fixture)
from graders.test_imdb_local_llm import conversations, local_model, local_tokenizer
from llmlab.paths import KIT_ROOT
from solutions import imdb_local_llm as ref


def generate_first_step(model, tokenizer, batch, labels=("negative", "positive")):
    """Label log-probs from ``model.generate``'s first step on a batch padded left by the tokenizer."""
    texts = [tokenizer.apply_chat_template(m, tokenize=False, add_generation_prompt=True) for m in batch]
    saved = tokenizer.padding_side
    tokenizer.padding_side = "left"
    try:
        enc = tokenizer(texts, add_special_tokens=False, padding=True, return_tensors="pt")
    finally:
        tokenizer.padding_side = saved
    out = model.generate(**enc, max_new_tokens=1, do_sample=False, output_logits=True, return_dict_in_generate=True,
                         pad_token_id=tokenizer.pad_token_id)
    ids = [tokenizer.encode(w, add_special_tokens=False)[0] for w in labels]
    return torch.log_softmax(out.logits[0].float(), dim=-1)[:, ids]


@settings(max_examples=30, deadline=None)
@given(batch=st.lists(conversations(), min_size=1, max_size=4))
def test_label_logprobs_equals_generate_first_step_tiny_llama(batch):
    model, tok = local_model(), local_tokenizer()
    torch.testing.assert_close(ref.label_logprobs(model, tok, batch), generate_first_step(model, tok, batch),
                               atol=1e-4, rtol=1e-4)
    assert tok.padding_side == "right"


@pytest.mark.slow
def test_label_logprobs_equals_generate_first_step_smollm2():
    from llmlab.data import load_imdb
    from llmlab.models import load_smollm2

    model, tok = load_smollm2()
    texts = [" ".join(r["text"].split()[:n]) for r, n in zip(load_imdb("test", 4), (12, 40, 25, 60))]
    batch = [ref.build_messages(t, examples=[("Loved it.", 1), ("Dull.", 0)]) for t in texts]
    ours = ref.label_logprobs(model, tok, batch)
    torch.testing.assert_close(ours, generate_first_step(model, tok, batch), atol=2e-4, rtol=1e-4)
    torch.testing.assert_close(ours, torch.cat([ref.label_logprobs(model, tok, [m]) for m in batch]), atol=2e-4,
                               rtol=1e-4)
    # the few-shot prompt makes the label words the model's real candidates
    assert ours.exp().sum(-1).min() > 0.5, ours.exp()


@settings(max_examples=50, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), B=st.integers(1, 6), n=st.integers(2, 4))
def test_calibrate_equals_zhao_probability_form(seed, B, n):
    g = torch.Generator().manual_seed(seed)
    p = torch.softmax(3 * torch.randn(B, 40, generator=g, dtype=torch.float64), -1)[:, :n]
    p_cf = torch.softmax(3 * torch.randn(40, generator=g, dtype=torch.float64), -1)[:n]
    q = p @ torch.diag(1 / p_cf)  # W p with W = diag(p_cf)^-1, b = 0 (Zhao et al. 2021, eq. 2)
    q = q / q.sum(-1, keepdim=True)
    torch.testing.assert_close(ref.calibrate(p.log(), p_cf.log()), q.log(), atol=1e-12, rtol=1e-10)


def test_classify_is_argmax_of_calibrated_scores():
    model, tok = local_model(), local_tokenizer()
    texts = ["great fun", "awful", "the plot was slow but the cast was wonderful", "10/10", "not good at all"]
    examples = [("brilliant", 1), ("boring", 0)]
    scores = ref.label_logprobs(model, tok, [ref.build_messages(t, examples=examples) for t in texts])
    neutral = ref.label_logprobs(model, tok, [ref.build_messages("N/A", examples=examples)])
    expected = ref.calibrate(scores, neutral).argmax(-1).tolist()
    for batch_size in (1, 2, 8):
        assert ref.classify(model, tok, texts, examples=examples, batch_size=batch_size) == expected
    assert ref.classify(model, tok, texts, examples=examples, calibrated=False) == scores.argmax(-1).tolist()


@pytest.mark.slow
def test_full_size_script_runs_small(tmp_path):
    out = tmp_path / "results.json"
    done = subprocess.run([sys.executable, str(KIT_ROOT / "scripts" / "imdb_local_llm_full.py"), "--n", "6",
                           "--shots", "2", "--max-words", "40", "--check", "4", "--content-free", "N/A",
                           "--out", str(out)], capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    import json

    results = json.loads(out.read_text())
    assert results["n"] == 6 and "2-shot, calibrated ('N/A')" in results["rows"]
    assert all(p["classify_agrees"] for p in results["prompts"].values())
