"""Example tests for `decoder_lm` (the hidden graders compare everything with transformers' Llama:
RMSNorm, RoPE, the MLP, whole blocks and models with padding, GQA, tied embeddings, and the loss)."""
import math

import torch

from exercises.decoder_lm import DecoderLM, next_token_loss, rms_norm, rotary_embedding, swiglu


def test_rms_norm_gives_unit_root_mean_square():
    x = torch.randn(3, 8) * 5
    y = rms_norm(x, torch.ones(8), eps=0.0)
    torch.testing.assert_close(y.pow(2).mean(-1), torch.ones(3))
    torch.testing.assert_close(rms_norm(x, 2 * torch.ones(8), eps=0.0), 2 * y)  # the weight scales each feature


def test_rotary_embedding_rotates_pairs_by_their_position():
    x = torch.randn(1, 2, 3, 4)
    torch.testing.assert_close(rotary_embedding(x, torch.zeros(3, dtype=torch.long)), x)  # angle 0: unchanged
    out = rotary_embedding(x, torch.arange(3))
    pair_norm = lambda t: t[..., :2].pow(2) + t[..., 2:].pow(2)  # noqa: E731 - feature i pairs with i + D/2
    torch.testing.assert_close(pair_norm(out), pair_norm(x))  # a rotation keeps each pair's length
    # feature 0 of position 1 turns by 1 radian (inv_freq[0] = 1)
    c, s = math.cos(1.0), math.sin(1.0)
    torch.testing.assert_close(out[..., 1, 0], x[..., 1, 0] * c - x[..., 1, 2] * s)


def test_swiglu_small_example():
    x = torch.tensor([[1.0, 2.0]])
    w_gate, w_up, w_down = torch.tensor([[1.0, 0.0]]), torch.tensor([[0.0, 1.0]]), torch.tensor([[1.0], [-1.0]])
    silu = 1.0 / (1.0 + math.exp(-1.0))  # silu(1) = 1 * sigmoid(1)
    torch.testing.assert_close(swiglu(x, w_gate, w_up, w_down), torch.tensor([[2 * silu, -2 * silu]]))


def test_decoder_lm_shapes_and_causality():
    torch.manual_seed(0)
    lm = DecoderLM(vocab_size=11, d_model=8, n_layers=2, n_heads=2, d_ff=16, n_kv_heads=1).eval()
    ids = torch.randint(0, 11, (2, 5))
    logits = lm(ids)
    assert logits.shape == (2, 5, 11)
    changed = ids.clone()
    changed[:, 3:] = (changed[:, 3:] + 1) % 11  # change the future
    torch.testing.assert_close(lm(changed)[:, :3], logits[:, :3])  # ... the past does not see it


def test_next_token_loss_of_uniform_logits_is_log_vocab():
    logits = torch.zeros(2, 4, 7)
    ids = torch.randint(0, 7, (2, 4))
    torch.testing.assert_close(next_token_loss(logits, ids), torch.tensor(math.log(7)))
