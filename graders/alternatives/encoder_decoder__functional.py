"""A correct ``encoder_decoder`` written with functional calls and tensors instead of lists.

* positions: float32 ``exp(-log(10000) * 2i / d)`` frequencies, sin/cos written by interleaving;
* layers: ``F.layer_norm`` with the module's own weights, masks combined by hand;
* ``from_torch`` loads a state dict made from torch's (q, k, v from ``in_proj`` by ``chunk``);
* greedy decoding keeps a ``finished`` tensor and cuts every row at its first EOS at the end.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from .attention import MultiHeadAttention


def sinusoidal_positions(n_positions, d_model):
    if n_positions < 0 or d_model < 1:
        raise ValueError("n_positions must be >= 0 and d_model >= 1")
    half = (d_model + 1) // 2
    freq = torch.exp(-math.log(10000.0) * torch.arange(half, dtype=torch.float32) * 2 / d_model)
    angles = torch.arange(n_positions, dtype=torch.float32)[:, None] * freq
    both = torch.stack((angles.sin(), angles.cos()), dim=-1).reshape(n_positions, 2 * half)
    return both[:, :d_model].contiguous()


def _state_from_torch(layer, attn_names):
    out = {}
    for key, value in layer.state_dict().items():
        head, _, rest = key.partition(".")
        if head in attn_names:
            mine = attn_names[head]
            if rest.startswith("in_proj_"):
                kind = rest[len("in_proj_"):]
                for name, part in zip(("q_proj", "k_proj", "v_proj"), value.chunk(3)):
                    out[f"{mine}.{name}.{kind}"] = part.clone()
            else:
                out[f"{mine}.o_proj.{rest.split('.')[-1]}"] = value.clone()
        else:
            out[key] = value.clone()
    return out


def _validate(layer, cls):
    if not isinstance(layer, cls):
        raise TypeError(f"need a {cls.__name__}")
    relu = layer.activation is F.relu or isinstance(layer.activation, nn.ReLU)
    if not (layer.norm_first and relu and layer.self_attn.batch_first):
        raise ValueError("only batch_first, norm_first=True, ReLU torch layers can be copied")
    if layer.linear1.bias is None:
        raise ValueError("layers without biases are not supported here")


class EncoderLayer(nn.Module):
    def __init__(self, d_model, n_heads, d_ff, *, dropout=0.0, norm_eps=1e-5):
        super().__init__()
        self.self_attn = MultiHeadAttention(d_model, n_heads, bias=True)
        self.norm1, self.norm2 = nn.LayerNorm(d_model, eps=norm_eps), nn.LayerNorm(d_model, eps=norm_eps)
        self.linear1, self.linear2 = nn.Linear(d_model, d_ff), nn.Linear(d_ff, d_model)
        self.p = dropout

    def forward(self, x, mask=None):
        n1 = F.layer_norm(x, x.shape[-1:], self.norm1.weight, self.norm1.bias, self.norm1.eps)
        x = x + F.dropout(self.self_attn(n1, mask), self.p, self.training)
        n2 = F.layer_norm(x, x.shape[-1:], self.norm2.weight, self.norm2.bias, self.norm2.eps)
        return x + F.dropout(self.linear2(self.linear1(n2).clamp(min=0)), self.p, self.training)

    @classmethod
    def from_torch(cls, layer):
        _validate(layer, nn.TransformerEncoderLayer)
        mine = cls(layer.self_attn.embed_dim, layer.self_attn.num_heads, layer.linear1.out_features,
                   norm_eps=layer.norm2.eps)
        mine.load_state_dict(_state_from_torch(layer, {"self_attn": "self_attn"}))
        mine.train(False)
        return mine


class DecoderLayer(nn.Module):
    def __init__(self, d_model, n_heads, d_ff, *, dropout=0.0, norm_eps=1e-5):
        super().__init__()
        self.self_attn = MultiHeadAttention(d_model, n_heads, bias=True)
        self.cross_attn = MultiHeadAttention(d_model, n_heads, bias=True)
        self.norm1, self.norm2, self.norm3 = (nn.LayerNorm(d_model, eps=norm_eps) for _ in range(3))
        self.linear1, self.linear2 = nn.Linear(d_model, d_ff), nn.Linear(d_ff, d_model)
        self.p = dropout

    def forward(self, x, memory, self_mask=None, memory_mask=None):
        T = x.shape[1]
        if self_mask is None:
            idx = torch.arange(T, device=x.device)
            self_mask = idx[None, :] <= idx[:, None]
        x = x + F.dropout(self.self_attn(self.norm1(x), self_mask), self.p, self.training)
        x = x + F.dropout(self.cross_attn(self.norm2(x), memory_mask, memory), self.p, self.training)
        return x + F.dropout(self.linear2(F.relu(self.linear1(self.norm3(x)))), self.p, self.training)

    @classmethod
    def from_torch(cls, layer):
        _validate(layer, nn.TransformerDecoderLayer)
        mine = cls(layer.self_attn.embed_dim, layer.self_attn.num_heads, layer.linear1.out_features,
                   norm_eps=layer.norm3.eps)
        mine.load_state_dict(_state_from_torch(layer, {"self_attn": "self_attn", "multihead_attn": "cross_attn"}))
        return mine.eval()


def _key_mask(mask, ids):
    real = torch.ones_like(ids, dtype=torch.bool) if mask is None else mask.bool()
    if real.shape != ids.shape:
        raise ValueError("mask and ids must have the same shape")
    return real[:, None, None, :]


class EncoderDecoder(nn.Module):
    def __init__(self, src_vocab, tgt_vocab, *, d_model, n_heads, n_layers, d_ff, max_len, pad_id=0, dropout=0.0):
        super().__init__()
        if d_model % n_heads:
            raise ValueError("d_model must be divisible by n_heads")
        self.d_model, self.max_len, self.pad_id, self.p = d_model, max_len, pad_id, dropout
        self.src_embed = nn.Embedding(src_vocab, d_model, padding_idx=pad_id)
        self.tgt_embed = nn.Embedding(tgt_vocab, d_model, padding_idx=pad_id)
        self.encoder_layers = nn.ModuleList([EncoderLayer(d_model, n_heads, d_ff, dropout=dropout)
                                             for _ in range(n_layers)])
        self.decoder_layers = nn.ModuleList([DecoderLayer(d_model, n_heads, d_ff, dropout=dropout)
                                             for _ in range(n_layers)])
        self.encoder_norm, self.decoder_norm = nn.LayerNorm(d_model), nn.LayerNorm(d_model)
        self.out_proj = nn.Linear(d_model, tgt_vocab)
        self.register_buffer("pe", sinusoidal_positions(max_len, d_model), persistent=False)

    def _embed(self, table, ids):
        if ids.dim() != 2 or ids.shape[1] > self.max_len:
            raise ValueError("ids must be (B, L) with L <= max_len")
        return F.dropout(table(ids) * self.d_model ** 0.5 + self.pe[:ids.shape[1]], self.p, self.training)

    def encode(self, src_ids, src_mask=None):
        h = self._embed(self.src_embed, src_ids)
        keys = _key_mask(src_mask, src_ids)
        for layer in self.encoder_layers:
            h = layer(h, keys)
        return self.encoder_norm(h)

    def decode(self, tgt_ids, memory, src_mask=None, tgt_mask=None):
        h = self._embed(self.tgt_embed, tgt_ids)
        T = tgt_ids.shape[1]
        causal = torch.ones(T, T, dtype=torch.bool, device=h.device).tril()
        self_mask = causal & _key_mask(tgt_mask, tgt_ids)
        memory_mask = None if src_mask is None else src_mask.bool()[:, None, None, :]
        for layer in self.decoder_layers:
            h = layer(h, memory, self_mask, memory_mask)
        return self.out_proj(self.decoder_norm(h))

    def forward(self, src_ids, src_mask, tgt_ids, tgt_mask):
        return self.decode(tgt_ids, self.encode(src_ids, src_mask), src_mask, tgt_mask)


@torch.no_grad()
def greedy_translate(model, src_ids, src_mask, *, bos_id, eos_id, max_len):
    if src_ids.dim() != 2:
        raise ValueError("src_ids must be (B, S)")
    if max_len < 1:
        raise ValueError("max_len must be >= 1")
    memory = model.encode(src_ids, src_mask)
    tgt = torch.full((src_ids.shape[0], 1), bos_id, dtype=torch.long)
    finished = torch.zeros(src_ids.shape[0], dtype=torch.bool)
    while tgt.shape[1] <= max_len and not finished.all():
        nxt = model.decode(tgt, memory, src_mask, None)[:, -1].argmax(-1)
        tgt = torch.cat([tgt, nxt[:, None]], dim=1)
        finished |= nxt == eos_id
    rows = []
    for row in tgt[:, 1:].tolist():
        rows.append(row[:row.index(eos_id)] if eos_id in row else row)
    return rows
