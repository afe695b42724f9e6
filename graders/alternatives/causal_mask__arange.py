"""Alternative correct `causal_mask`: position arithmetic with arange."""
import torch


def causal_mask(q_len, k_len=None, *, device=None):
    k_len = q_len if k_len is None else k_len
    if q_len < 0 or k_len < 0 or k_len < q_len:
        raise ValueError("need 0 <= q_len <= k_len")
    query_pos = torch.arange(k_len - q_len, k_len, device=device)[:, None]
    key_pos = torch.arange(k_len, device=device)[None, :]
    return key_pos <= query_pos


def padding_mask(attention_mask):
    if attention_mask.ndim != 2:
        raise ValueError("attention_mask must be (B, S)")
    return attention_mask.bool().unsqueeze(1).unsqueeze(2)


def decoder_mask(attention_mask):
    S = attention_mask.shape[-1]
    return torch.logical_and(padding_mask(attention_mask), causal_mask(S).view(1, 1, S, S))
