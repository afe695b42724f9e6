"""Example tests for `sampling` (the hidden graders compare every filter with transformers' warpers on
many random inputs, test the sampling distribution statistically, and compare `generate` with
`model.generate` on tiny Llamas: left padding, EOS, KV cache on and off)."""
import torch

from exercises.sampling import (apply_repetition_penalty, apply_temperature, generate, sample_next_token,
                                top_k_filter, top_p_filter)

INF = float("inf")


def test_temperature_divides_the_logits():
    logits = torch.tensor([[2.0, -1.0, 0.5]])
    torch.testing.assert_close(apply_temperature(logits, 0.5), torch.tensor([[4.0, -2.0, 1.0]]))


def test_top_k_keeps_ties_at_the_kth_value():
    logits = torch.tensor([[1.0, 2.0, 2.0, 2.0, 0.5]])
    assert torch.equal(top_k_filter(logits, 2), torch.tensor([[-INF, 2.0, 2.0, 2.0, -INF]]))


def test_top_p_keeps_the_token_that_crosses_p():
    logits = torch.tensor([[0.5, 0.3, 0.15, 0.05]]).log()
    kept = torch.isfinite(top_p_filter(logits, 0.7))
    assert kept.tolist() == [[True, True, False, False]]  # 0.5 < 0.7 <= 0.5 + 0.3


def test_repetition_penalty_pushes_repeated_tokens_down():
    logits = torch.tensor([[2.0, -1.0, 0.0, -2.0]])
    out = apply_repetition_penalty(logits, torch.tensor([[0, 0, 3]]), 2.0)
    assert out.tolist() == [[1.0, -1.0, 0.0, -4.0]]  # once per distinct id; negative logits are multiplied


def test_sampling_greedy_and_filtered():
    logits = torch.tensor([[0.0, 3.0, 1.0, 3.0]])
    assert sample_next_token(logits, temperature=0).tolist() == [1]  # the lowest id among the maxima
    many = sample_next_token(logits.expand(500, 4), top_k=2, generator=torch.Generator().manual_seed(0))
    assert set(many.tolist()) == {1, 3}  # only the two tokens top-k keeps, both of them
    assert abs((many == 1).float().mean().item() - 0.5) < 0.1  # a fair sampler misses this with probability < 1e-5


def test_generate_extends_each_row():
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    model = LlamaForCausalLM(LlamaConfig(vocab_size=20, hidden_size=8, intermediate_size=16, num_hidden_layers=1,
                                         num_attention_heads=2, num_key_value_heads=1)).eval()
    ids = torch.tensor([[0, 5, 6, 7], [4, 5, 6, 7]])
    mask = torch.tensor([[0, 1, 1, 1], [1, 1, 1, 1]])  # row 0 is left-padded
    out = generate(model, ids, max_new_tokens=3, attention_mask=mask)
    assert out.shape == (2, 7) and torch.equal(out[:, :4], ids)
    assert torch.equal(out, generate(model, ids, max_new_tokens=3, attention_mask=mask, use_cache=False))
