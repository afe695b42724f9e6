"""Alternative correct `causal_mask`: plain Python loops, as a beginner would write it."""
import torch


def causal_mask(q_len, k_len=None, *, device=None):
    if k_len is None:
        k_len = q_len
    if q_len < 0 or k_len < 0:
        raise ValueError("lengths must be non-negative")
    if k_len < q_len:
        raise ValueError("k_len must be at least q_len")
    offset = k_len - q_len
    rows = [[j <= offset + i for j in range(k_len)] for i in range(q_len)]
    return torch.tensor(rows, dtype=torch.bool, device=device).reshape(q_len, k_len)


def padding_mask(attention_mask):
    if len(attention_mask.shape) != 2:
        raise ValueError("attention_mask must be 2-D")
    B, S = attention_mask.shape
    out = torch.zeros(B, 1, 1, S, dtype=torch.bool)
    for b in range(B):
        for s in range(S):
            out[b, 0, 0, s] = bool(attention_mask[b, s])
    return out


def decoder_mask(attention_mask):
    B, S = attention_mask.shape
    out = torch.zeros(B, 1, S, S, dtype=torch.bool)
    for b in range(B):
        for i in range(S):
            for j in range(i + 1):
                out[b, 0, i, j] = bool(attention_mask[b, j])
    return out
