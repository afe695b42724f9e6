"""Example tests for `causal_mask`."""
import torch

from exercises.causal_mask import causal_mask, decoder_mask, padding_mask


def test_causal_mask_square():
    assert torch.equal(causal_mask(3), torch.tensor([[True, False, False],
                                                     [True, True, False],
                                                     [True, True, True]]))


def test_causal_mask_with_cache_is_bottom_right():
    # 2 new queries after 2 cached tokens: they sit at positions 2 and 3
    assert torch.equal(causal_mask(2, 4), torch.tensor([[True, True, True, False],
                                                        [True, True, True, True]]))


def test_padding_mask_shape():
    am = torch.tensor([[1, 1, 0], [1, 1, 1]])
    assert padding_mask(am).shape == (2, 1, 1, 3)


def test_decoder_mask_right_padding():
    am = torch.tensor([[1, 1, 0]])
    expected = torch.tensor([[True, False, False],
                             [True, True, False],
                             [True, True, False]])
    assert torch.equal(decoder_mask(am)[0, 0], expected)
