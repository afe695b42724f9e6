"""Example tests for `encoder_decoder` (the hidden graders compare every layer and the whole model with
torch's own TransformerEncoderLayer / TransformerDecoderLayer with copied weights, with padding and causal
masks, and run greedy_translate on scripted models)."""
import math

import torch
from torch import nn

from exercises.encoder_decoder import (DecoderLayer, EncoderDecoder, EncoderLayer, greedy_translate,
                                       sinusoidal_positions)


def test_sinusoidal_positions_small_example():
    P = sinusoidal_positions(3, 4)
    assert P.shape == (3, 4) and P.dtype == torch.float32
    expected = torch.tensor([[math.sin(p), math.cos(p), math.sin(p / 100), math.cos(p / 100)] for p in range(3)])
    torch.testing.assert_close(P, expected)


def test_encoder_layer_from_torch_gives_torchs_output():
    theirs = nn.TransformerEncoderLayer(8, 2, 16, dropout=0.0, batch_first=True, norm_first=True).eval()
    x = torch.randn(2, 5, 8)
    torch.testing.assert_close(EncoderLayer.from_torch(theirs)(x), theirs(x).detach(), atol=1e-5, rtol=1e-4)


def test_decoder_layer_is_causal_and_reads_the_memory():
    torch.manual_seed(0)
    layer = DecoderLayer(8, 2, 16).eval()
    x, memory = torch.randn(1, 4, 8), torch.randn(1, 3, 8)
    out = layer(x, memory)
    changed = x.clone()
    changed[:, 2:] += 1.0  # change the future: the first two positions do not see it
    torch.testing.assert_close(layer(changed, memory)[:, :2], out[:, :2])
    assert not torch.allclose(layer(x, memory + 1.0), out)  # ... but every position reads the memory


def test_encoder_decoder_shapes_and_padding():
    torch.manual_seed(0)
    model = EncoderDecoder(10, 12, d_model=8, n_heads=2, n_layers=1, d_ff=16, max_len=6).eval()
    src, src_mask = torch.tensor([[3, 4, 5], [6, 7, 0]]), torch.tensor([[1, 1, 1], [1, 1, 0]])
    tgt = torch.tensor([[1, 8], [1, 9]])
    logits = model(src, src_mask, tgt, None)
    assert logits.shape == (2, 2, 12)
    alone = model(src[1:, :2], src_mask[1:, :2], tgt[1:], None)  # row 1 without its padding
    torch.testing.assert_close(logits[1:], alone, atol=1e-5, rtol=1e-4)


def test_greedy_translate_stops_at_eos():
    class Counting(nn.Module):  # says 5, 6, 7, ... then EOS (2) after `stop` tokens; `stop` differs per row
        def encode(self, src_ids, src_mask):
            return src_ids[:, :1, None].float()  # the row's first source token: its stop

        def decode(self, tgt_ids, memory, src_mask, tgt_mask):
            B, T = tgt_ids.shape
            logits = torch.zeros(B, T, 20)
            for b in range(B):
                stop = int(memory[b, 0, 0])
                for t in range(T):
                    logits[b, t, 5 + t if t < stop else 2] = 1.0
            return logits

    src = torch.tensor([[2, 9], [0, 9], [4, 9]])
    out = greedy_translate(Counting(), src, torch.ones_like(src), bos_id=1, eos_id=2, max_len=3)
    assert out == [[5, 6], [], [5, 6, 7]]
