"""Realistic buggy variants of ``causal_mask``."""
import torch

from llmlab.grading.variants import Variants

bugs = Variants("causal_mask")


@bugs.bug("top_left_alignment", replaces="causal_mask",
          mistake="the causal mask is aligned top-left (like SDPA's is_causal=True): with a KV cache, query i sits "
                  "at position k_len - q_len + i, so align the triangle bottom-right (tril(diagonal=k_len - q_len))")
def causal_top_left(q_len, k_len=None, *, device=None):
    k_len = q_len if k_len is None else k_len
    if q_len < 0 or k_len < q_len:
        raise ValueError("bad lengths")
    return torch.ones(q_len, k_len, dtype=torch.bool, device=device).tril()


@bugs.bug("diagonal_excluded", replaces="causal_mask",
          mistake="the diagonal is excluded: a token may attend to itself (tril, not tril(-1) / triu(1) inverted "
                  "off by one)")
def causal_no_diagonal(q_len, k_len=None, *, device=None):
    k_len = q_len if k_len is None else k_len
    if q_len < 0 or k_len < q_len:
        raise ValueError("bad lengths")
    return torch.ones(q_len, k_len, dtype=torch.bool, device=device).tril(diagonal=k_len - q_len - 1)


@bugs.bug("causal_inverted", replaces="causal_mask",
          mistake="the causal mask is inverted (True above the diagonal): True must mean 'may attend'")
def causal_inverted(q_len, k_len=None, *, device=None):
    k_len = q_len if k_len is None else k_len
    if q_len < 0 or k_len < q_len:
        raise ValueError("bad lengths")
    return torch.ones(q_len, k_len, dtype=torch.bool, device=device).triu(diagonal=k_len - q_len + 1)


@bugs.bug("causal_float_mask", replaces="causal_mask",
          mistake="the mask is a float tensor (0 / -inf) rather than bool (True = may attend)")
def causal_float(q_len, k_len=None, *, device=None):
    k_len = q_len if k_len is None else k_len
    if q_len < 0 or k_len < q_len:
        raise ValueError("bad lengths")
    allowed = torch.ones(q_len, k_len, dtype=torch.bool, device=device).tril(diagonal=k_len - q_len)
    return torch.zeros(q_len, k_len).masked_fill(~allowed, float("-inf"))


@bugs.bug("no_length_validation", replaces="causal_mask",
          mistake="k_len < q_len (or a negative length) is accepted: it must raise ValueError")
def causal_no_validation(q_len, k_len=None, *, device=None):
    k_len = q_len if k_len is None else k_len
    return torch.ones(max(q_len, 0), max(k_len, 0), dtype=torch.bool, device=device).tril(diagonal=k_len - q_len)


@bugs.bug("padding_on_query_axis", replaces="padding_mask",
          mistake="padding is applied on the wrong axis: the mask must be (B, 1, 1, S) so that it hides padded "
                  "KEYS from every query, not (B, 1, S, 1)")
def padding_query_axis(attention_mask):
    if attention_mask.dim() != 2:
        raise ValueError("attention_mask must be (B, S)")
    return (attention_mask != 0)[:, None, :, None]


@bugs.bug("padding_inverted", replaces="padding_mask",
          mistake="the padding mask is inverted: True must mark real tokens (attention_mask == 1)")
def padding_inverted(attention_mask):
    if attention_mask.dim() != 2:
        raise ValueError("attention_mask must be (B, S)")
    return (attention_mask == 0)[:, None, None, :]


@bugs.bug("decoder_or_instead_of_and", replaces="decoder_mask",
          mistake="causal and padding masks are combined with OR: a key must be both in the past AND a real token")
def decoder_or(attention_mask):
    S = attention_mask.shape[1]
    return causal_mask(S)[None, None] | padding_mask(attention_mask)  # noqa: F821 - the reference's own


@bugs.bug("decoder_pads_queries", replaces="decoder_mask",
          mistake="the padding is applied to queries instead of keys: real tokens can still attend to padding")
def decoder_pad_queries(attention_mask):
    S = attention_mask.shape[1]
    return causal_mask(S)[None, None] & (attention_mask != 0)[:, None, :, None]  # noqa: F821


@bugs.bug("decoder_right_padding_only", replaces="decoder_mask",
          mistake="the decoder mask assumes right padding (it uses sequence lengths): with left padding the "
                  "real tokens sit at the end of the row")
def decoder_lengths(attention_mask):
    B, S = attention_mask.shape
    lengths = (attention_mask != 0).sum(-1)
    keys = torch.arange(S)[None, :] < lengths[:, None]
    return causal_mask(S)[None, None] & keys[:, None, None, :]  # noqa: F821
