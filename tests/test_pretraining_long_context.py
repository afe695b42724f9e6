"""Long context (API.md §10b): the reference's RoPE scaling against transformers' ``rope_type="llama3"``,
and its attention cost against torch's FLOP counter and a real KV cache."""
from __future__ import annotations

import warnings

import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

from solutions.pretraining import attention_cost, llama3_rope_frequencies


def _transformers(head_dim, base, factor, low, high, L):
    from transformers import LlamaConfig
    from transformers.modeling_rope_utils import ROPE_INIT_FUNCTIONS

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        config = LlamaConfig(hidden_size=head_dim, num_attention_heads=1, head_dim=head_dim,
                             max_position_embeddings=int(L * factor) + 1,
                             rope_parameters=dict(rope_type="llama3", rope_theta=base, factor=factor,
                                                  low_freq_factor=low, high_freq_factor=high,
                                                  original_max_position_embeddings=L))
        return ROPE_INIT_FUNCTIONS["llama3"](config, "cpu")[0]


@pytest.mark.parametrize("seed", range(12))
def test_rope_frequencies_equal_transformers_on_drawn_parameters(seed):
    g = torch.Generator().manual_seed(seed)
    pick = lambda options: options[int(torch.randint(len(options), (1,), generator=g))]  # noqa: E731
    head_dim = 2 * int(torch.randint(1, 65, (1,), generator=g))
    base, factor = pick([50.0, 10000.0, 500000.0]), pick([1.0, 4.0, 8.0, 32.0])
    low = pick([0.5, 1.0, 2.0])
    high, L = low + pick([0.25, 1.0, 3.0]), pick([32, 512, 8192])
    want = _transformers(head_dim, base, factor, low, high, L)
    got = llama3_rope_frequencies(head_dim, base, factor=factor, low_freq_factor=low, high_freq_factor=high,
                                  original_max_position=L)
    assert got.dtype == torch.float32 and got.shape == want.shape
    torch.testing.assert_close(got, want, atol=0.0, rtol=2e-6)


def test_llama31_settings_touch_all_three_regimes():
    """With Llama 3.1's own settings the three branches all occur (so the test above is not vacuous)."""
    plain = 500000.0 ** (-torch.arange(0, 128, 2, dtype=torch.float64) / 128)
    got = llama3_rope_frequencies(128, 500000.0, factor=8.0, low_freq_factor=1.0, high_freq_factor=4.0,
                                  original_max_position=8192).double()
    ratio = got / plain
    assert (ratio > 1 - 1e-6).sum() > 0 and (ratio < 1 / 8 + 1e-6).sum() > 0
    assert ((ratio < 1 - 1e-6) & (ratio > 1 / 8 + 1e-6)).sum() > 0


@pytest.mark.parametrize("T,d_model,n_heads,n_kv", [(7, 32, 4, 2), (33, 48, 6, 3), (64, 16, 2, 1)])
def test_attention_flops_equal_torch_flop_counter(T, d_model, n_heads, n_kv):
    head_dim, n_layers = d_model // n_heads, 3
    q = torch.randn(n_heads, T, head_dim)
    k = v = torch.randn(n_heads, T, head_dim)  # grouped-query heads repeated: every query head does the work
    with FlopCounterMode(display=False) as counter:
        for _ in range(n_layers):
            weights = torch.softmax(q @ k.transpose(-1, -2) / head_dim**0.5, dim=-1)
            weights @ v
    cost = attention_cost(T, d_model=d_model, n_layers=n_layers, n_heads=n_heads, n_kv_heads=n_kv)
    assert cost["flops"] == counter.get_total_flops()


def test_kv_cache_bytes_equal_a_real_transformers_cache():
    from transformers import LlamaConfig, LlamaForCausalLM

    config = LlamaConfig(vocab_size=32, hidden_size=24, intermediate_size=32, num_hidden_layers=3,
                         num_attention_heads=6, num_key_value_heads=2)
    model = LlamaForCausalLM(config).eval()
    with torch.no_grad():
        cache = model(torch.randint(0, 32, (1, 10)), use_cache=True).past_key_values
    stored = sum(t.numel() * t.element_size() for layer in cache.layers for t in (layer.keys, layer.values))
    cost = attention_cost(10, d_model=24, n_layers=3, n_heads=6, n_kv_heads=2, bytes_per_value=4)
    assert cost["kv_cache_bytes"] == stored
