"""The reference ``sampling`` against transformers, beyond what the graders check.

* every filter equals transformers' warper, bit for bit, on thousands of random logits (ties,
  ``-inf``, ``k >= V``, ``p`` in {0, 1}, ``min_tokens_to_keep > 1``): the reference uses the same
  algorithms, so even the float-boundary and tie cases the graders avoid agree;
* sampling equals transformers' ``generate(do_sample=True)`` token for token with the same seed;
* greedy ``generate`` equals ``model.generate`` on tiny random Llamas and on SmolLM2 (slow);
* the graders' chi-square threshold equals scipy's.
"""
from __future__ import annotations

import pytest
import torch
from transformers.generation.logits_process import (MinPLogitsWarper, RepetitionPenaltyLogitsProcessor,
                                                    TemperatureLogitsWarper, TopKLogitsWarper, TopPLogitsWarper)

from graders.test_decoder_lm import hf_model, llama_state
from solutions import sampling as ref

CONFIG = dict(vocab_size=24, hidden_size=16, intermediate_size=12, num_hidden_layers=2, num_attention_heads=4,
              num_key_value_heads=2, head_dim=4, max_position_embeddings=64, bos_token_id=None, eos_token_id=None,
              pad_token_id=None)


def _random_logits(g, it):
    B, V = int(torch.randint(1, 4, (1,), generator=g)), int(torch.randint(1, 12, (1,), generator=g))
    kind = it % 3
    if kind == 0:
        x = torch.randn(B, V, generator=g) * 3
    elif kind == 1:
        x = torch.randint(-3, 3, (B, V), generator=g).float()  # many ties
    else:
        x = torch.randn(B, V, generator=g) * 3
        x[torch.rand(B, V, generator=g) < 0.3] = float("-inf")
        x[:, 0] = 0.5
    return x


def test_filters_equal_transformers_bit_for_bit():
    g = torch.Generator().manual_seed(0)
    for it in range(600):  # every branch (k beyond V, p in {0, 1, random}) many times over
        x = _random_logits(g, it)
        V = x.shape[-1]
        k = int(torch.randint(1, V + 3, (1,), generator=g))
        p = [0.0, 1.0, float(torch.rand(1, generator=g))][it % 3]
        m = int(torch.randint(1, 4, (1,), generator=g))
        t = 0.1 + 3 * float(torch.rand(1, generator=g))
        ids = torch.randint(0, V, (x.shape[0], 5), generator=g)
        assert torch.equal(ref.apply_temperature(x, t), TemperatureLogitsWarper(t)(None, x))
        assert torch.equal(ref.top_k_filter(x, k), TopKLogitsWarper(k)(None, x))
        assert torch.equal(ref.top_p_filter(x, p, min_tokens_to_keep=m), TopPLogitsWarper(p, min_tokens_to_keep=m)(None, x))
        assert torch.equal(ref.min_p_filter(x, p, min_tokens_to_keep=m), MinPLogitsWarper(p, min_tokens_to_keep=m)(None, x))
        assert torch.equal(ref.apply_repetition_penalty(x, ids, 1.7), RepetitionPenaltyLogitsProcessor(1.7)(ids, x.clone()))


@pytest.mark.parametrize("settings", [dict(temperature=1.0), dict(temperature=0.7, top_k=5),
                                      dict(temperature=1.3, top_p=0.8), dict(temperature=0.9, min_p=0.1),
                                      dict(temperature=1.1, top_k=8, top_p=0.9, min_p=0.05)])
def test_sampling_equals_transformers_with_the_same_seed(settings):
    model = hf_model(CONFIG, llama_state(CONFIG, 3))
    ids = torch.randint(0, 24, (4, 5), generator=torch.Generator().manual_seed(1))
    torch.manual_seed(123)  # transformers draws with torch's global generator
    theirs = model.generate(ids, attention_mask=torch.ones_like(ids), do_sample=True, max_new_tokens=8,
                            top_k=settings.get("top_k", 0), **{k: v for k, v in settings.items() if k != "top_k"})
    mine = ref.generate(model, ids, max_new_tokens=8, generator=torch.Generator().manual_seed(123), **settings)
    assert torch.equal(mine, theirs)


def test_greedy_generate_equals_transformers_on_random_llamas():
    for seed in range(4):
        state = llama_state(CONFIG, seed)
        model = hf_model(CONFIG, state)
        g = torch.Generator().manual_seed(seed)
        am = torch.tensor([[0, 0, 1, 1, 1, 1], [1, 1, 1, 1, 1, 1], [0, 0, 0, 0, 0, 1]])
        ids = torch.randint(1, 24, am.shape, generator=g).masked_fill(am == 0, 0)
        for use_cache in (True, False):
            for eos in (None, int(ids[1, -1])):
                for penalty in (1.0, 1.4):
                    kw = dict(attention_mask=am, max_new_tokens=8, use_cache=use_cache, repetition_penalty=penalty)
                    theirs = model.generate(ids, do_sample=False, eos_token_id=eos, pad_token_id=0 if eos is None else eos,
                                            **kw)
                    mine = ref.generate(model, ids, eos_token_id=eos, **kw)
                    assert torch.equal(mine, theirs), (seed, use_cache, eos, penalty)


def test_chi_square_threshold_matches_scipy():
    import scipy.stats as stats  # declared in the test extra
    from graders.test_sampling import chi2_critical

    for df in (1, 2, 5, 7, 20):
        for alpha in (1e-2, 1e-6):
            assert chi2_critical(df, alpha) == pytest.approx(stats.chi2.isf(alpha, df), rel=1e-6)


@pytest.mark.slow
def test_greedy_generate_equals_transformers_on_smollm2():
    from llmlab.models import load_smollm2

    model, tokenizer = load_smollm2()
    tokenizer.padding_side = "left"
    chats = [[{"role": "user", "content": "What is the capital of France?"}],
             [{"role": "user", "content": "Count from one to five, please."}]]
    text = [tokenizer.apply_chat_template(c, add_generation_prompt=True, tokenize=False) for c in chats]
    batch = tokenizer(text, return_tensors="pt", padding=True)
    eos = tokenizer.eos_token_id
    for use_cache in (True, False):
        theirs = model.generate(**batch, max_new_tokens=8, do_sample=False, eos_token_id=eos, pad_token_id=eos,
                                use_cache=use_cache)
        mine = ref.generate(model, batch["input_ids"], attention_mask=batch["attention_mask"], max_new_tokens=8,
                            eos_token_id=eos, use_cache=use_cache)
        assert torch.equal(mine, theirs)


def test_the_graders_statistical_cases_are_far_from_float_boundaries():
    """A correct sampler must never lose a statistical check to rounding: no kept set may hinge on it."""
    from graders.test_sampling import SAMPLING_CASES, _case_logits, _min_p_ambiguous, _top_p_ambiguous

    for seed, settings in SAMPLING_CASES:
        scores = ref.apply_temperature(_case_logits(seed), settings["temperature"])
        values = scores[0].sort(descending=True).values
        if "top_k" in settings:
            assert values[settings["top_k"] - 1] - values[settings["top_k"]] > 1e-3
            scores = ref.top_k_filter(scores, settings["top_k"])
        if "top_p" in settings:
            assert not _top_p_ambiguous(scores, settings["top_p"], 1)
            scores = ref.top_p_filter(scores, settings["top_p"])
        if "min_p" in settings:
            assert not _min_p_ambiguous(scores, settings["min_p"], 1)


def test_the_graders_generate_sampling_case_has_a_clear_top_k():
    from graders.test_sampling import SAMPLING_MODEL, SAMPLING_MODEL_SEED, SAMPLING_MODEL_SETTINGS, SAMPLING_PROMPT

    with torch.no_grad():
        logits = hf_model(SAMPLING_MODEL, llama_state(SAMPLING_MODEL, SAMPLING_MODEL_SEED))(SAMPLING_PROMPT).logits
    values = (logits[0, -1] / SAMPLING_MODEL_SETTINGS["temperature"]).sort(descending=True).values
    k = SAMPLING_MODEL_SETTINGS["top_k"]
    assert values[k - 1] - values[k] > 1e-3
