"""The reference ``decoder_lm`` against transformers' Llama, beyond what the graders check.

* random configs (GQA, tied embeddings, biases, RoPE bases) in float32 and float64;
* ``from_hf`` refuses configs the architecture cannot express;
* slow: SmolLM2-135M-Instruct copied into ``DecoderLM`` gives its logits, its loss and its greedy text.
"""
from __future__ import annotations

import copy
import math

import pytest
import torch

from graders.test_decoder_lm import hf_model, llama_state
from solutions.decoder_lm import DecoderLM, next_token_loss

CONFIGS = [
    dict(vocab_size=40, hidden_size=24, intermediate_size=20, num_hidden_layers=3, num_attention_heads=6,
         num_key_value_heads=2, head_dim=4, rope_theta=500000.0, rms_norm_eps=1e-5, tie_word_embeddings=True,
         attention_bias=False, max_position_embeddings=64),
    dict(vocab_size=17, hidden_size=16, intermediate_size=8, num_hidden_layers=2, num_attention_heads=2,
         num_key_value_heads=2, head_dim=8, rope_theta=100.0, rms_norm_eps=0.1, tie_word_embeddings=False,
         attention_bias=True, max_position_embeddings=64),
]


@pytest.mark.parametrize("config", CONFIGS)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_random_llamas_match_in_float32_and_float64(config, dtype):
    state = llama_state(config, 0)
    hf = hf_model(config, state).to(dtype)
    lm = DecoderLM.from_hf(hf)
    assert next(lm.parameters()).dtype == dtype
    am = torch.tensor([[0, 0, 0, 1, 1, 1, 1, 1, 1, 1], [1] * 10, [0] * 9 + [1]])
    ids = torch.randint(0, config["vocab_size"], am.shape, generator=torch.Generator().manual_seed(1))
    pos = (am.cumsum(-1) - 1).clamp(min=0)
    with torch.no_grad():
        mine = lm(ids, am, pos)
        theirs = hf(ids, attention_mask=am, position_ids=pos).logits
    tol = 1e-4 if dtype == torch.float32 else 1e-5  # transformers computes RoPE angles in float32 even here
    assert (mine - theirs).abs()[am.bool()].max() < tol


def test_loss_equals_transformers_loss_on_right_padding():
    config = CONFIGS[0]
    hf = hf_model(config, llama_state(config, 2))
    lm = DecoderLM.from_hf(hf)
    am = torch.tensor([[1] * 8, [1] * 5 + [0] * 3])
    ids = torch.randint(0, config["vocab_size"], am.shape, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        theirs = hf(ids, attention_mask=am, labels=ids.masked_fill(am == 0, -100)).loss
        mine = next_token_loss(lm(ids, am), ids, am)
    torch.testing.assert_close(mine, theirs)


@pytest.mark.parametrize("change", [dict(hidden_act="gelu"), dict(mlp_bias=True), dict(head_dim=4),
                                    dict(rope_parameters={"rope_type": "linear", "factor": 2.0, "rope_theta": 1e4})])
def test_from_hf_refuses_what_it_cannot_express(change):
    config = dict(CONFIGS[1], **change)
    hf = hf_model(config, None)
    with pytest.raises(ValueError):
        DecoderLM.from_hf(hf)


@pytest.mark.slow
def test_smollm2_logits_loss_and_text():
    from llmlab.models import load_smollm2

    hf, tokenizer = load_smollm2()
    lm = DecoderLM.from_hf(hf)
    assert lm.lm_head.weight is lm.embed_tokens.weight and lm.layers[0].rope_base == 100000.0
    tokenizer.padding_side = "left"
    batch = tokenizer(["The three primary colors are", "Paris is the capital of France, and"],
                      return_tensors="pt", padding=True)
    pos = (batch["attention_mask"].cumsum(-1) - 1).clamp(min=0)
    with torch.no_grad():
        mine = lm(batch["input_ids"], batch["attention_mask"], pos)
        theirs = hf(**batch, position_ids=pos).logits
        real = batch["attention_mask"].bool()
        assert (mine - theirs).abs()[real].max() < 1e-3
        ids = batch["input_ids"][1:]
        loss = next_token_loss(lm(ids), ids)
        torch.testing.assert_close(loss, hf(ids, labels=ids).loss, atol=1e-4, rtol=1e-4)
        assert math.isfinite(loss.item())
        out = ids
        for _ in range(8):
            out = torch.cat([out, lm(out)[:, -1].argmax(-1, keepdim=True)], -1)
        never_stop = copy.deepcopy(hf.generation_config)
        never_stop.eos_token_id = None
        expected = hf.generate(ids, attention_mask=torch.ones_like(ids), max_new_tokens=8, do_sample=False,
                               generation_config=never_stop)
    assert torch.equal(out, expected)
