"""A correct ``encoder_decoder`` written the long way, close to the paper's formulas.

* positions: a double loop over positions and feature pairs (``math.sin``/``math.cos``);
* layers: one pre-norm base class (residual step, feed-forward, ``from_torch``) that the encoder and
  decoder layers specialise; the masks from the student's own ``causal_mask`` module;
* ``from_torch`` copies parameter by parameter with slices of ``in_proj``;
* greedy decoding keeps only the unfinished rows in the batch (shrinking the batch as rows end).
"""
from __future__ import annotations

import math

import torch
from torch import nn

from .attention import MultiHeadAttention
from .causal_mask import causal_mask, decoder_mask, padding_mask


def sinusoidal_positions(n_positions, d_model):
    if n_positions < 0:
        raise ValueError("n_positions must be >= 0")
    if d_model < 1:
        raise ValueError("d_model must be >= 1")
    table = [[0.0] * d_model for _ in range(n_positions)]
    for pos in range(n_positions):
        for i in range(0, d_model, 2):
            angle = pos / 10000 ** (i / d_model)
            table[pos][i] = math.sin(angle)
            if i + 1 < d_model:
                table[pos][i + 1] = math.cos(angle)
    return torch.tensor(table, dtype=torch.float32).reshape(n_positions, d_model)


def _copy(dst, src):
    with torch.no_grad():
        dst.copy_(src)


def _copy_mha(mine, theirs):
    d = theirs.embed_dim
    for n, proj in enumerate([mine.q_proj, mine.k_proj, mine.v_proj]):
        _copy(proj.weight, theirs.in_proj_weight[n * d:(n + 1) * d])
        _copy(proj.bias, theirs.in_proj_bias[n * d:(n + 1) * d])
    _copy(mine.o_proj.weight, theirs.out_proj.weight)
    _copy(mine.o_proj.bias, theirs.out_proj.bias)


def _copy_rest(mine, theirs, names):
    for name in names:
        _copy(getattr(mine, name).weight, getattr(theirs, name).weight)
        _copy(getattr(mine, name).bias, getattr(theirs, name).bias)


def _require(layer, kind):
    if not isinstance(layer, kind):
        raise TypeError(f"expected {kind.__name__}")
    if layer.norm_first is not True:
        raise ValueError("post-norm torch layers are not this architecture")
    if not (layer.activation is torch.nn.functional.relu or isinstance(layer.activation, nn.ReLU)):
        raise ValueError("activation must be ReLU")
    if not layer.self_attn.batch_first:
        raise ValueError("batch_first=True required")


class _PreNormLayer(nn.Module):
    """What both layers share: pre-norm residual sub-layers, a ReLU feed-forward, the copy from torch.

    A subclass names its attentions (each with the torch attribute it is copied from), its number of
    LayerNorms and the torch layer it mirrors."""
    ATTENTIONS = {"self_attn": "self_attn"}
    N_NORMS = 2
    TORCH_LAYER = nn.TransformerEncoderLayer

    def __init__(self, d_model, n_heads, d_ff, *, dropout=0.0, norm_eps=1e-5):
        super().__init__()
        for name in self.ATTENTIONS:
            self.add_module(name, MultiHeadAttention(d_model, n_heads, bias=True))
        for i in range(1, self.N_NORMS + 1):
            self.add_module(f"norm{i}", nn.LayerNorm(d_model, eps=norm_eps))
        self.linear1 = nn.Linear(d_model, d_ff)
        self.linear2 = nn.Linear(d_ff, d_model)
        self.drop = nn.Dropout(dropout)

    def _residual(self, x, norm, sublayer):
        """``x + dropout(sublayer(norm(x)))``: one pre-norm step."""
        return x + self.drop(sublayer(norm(x)))

    def _feed_forward(self, h):
        return self.linear2(torch.relu(self.linear1(h)))

    @classmethod
    def from_torch(cls, layer):
        _require(layer, cls.TORCH_LAYER)
        attn = layer.self_attn
        out = cls(attn.embed_dim, attn.num_heads, layer.linear1.out_features, norm_eps=layer.norm1.eps)
        for mine, theirs in cls.ATTENTIONS.items():
            _copy_mha(getattr(out, mine), getattr(layer, theirs))
        _copy_rest(out, layer, [f"norm{i}" for i in range(1, cls.N_NORMS + 1)] + ["linear1", "linear2"])
        return out.eval()


class EncoderLayer(_PreNormLayer):
    def forward(self, x, mask=None):
        x = self._residual(x, self.norm1, lambda h: self.self_attn(h, mask))
        return self._residual(x, self.norm2, self._feed_forward)


class DecoderLayer(_PreNormLayer):
    ATTENTIONS = {"self_attn": "self_attn", "cross_attn": "multihead_attn"}
    N_NORMS = 3
    TORCH_LAYER = nn.TransformerDecoderLayer

    def forward(self, x, memory, self_mask=None, memory_mask=None):
        if self_mask is None:
            self_mask = causal_mask(x.shape[1], device=x.device)
        x = self._residual(x, self.norm1, lambda h: self.self_attn(h, self_mask))
        x = self._residual(x, self.norm2, lambda h: self.cross_attn(h, memory_mask, context=memory))
        return self._residual(x, self.norm3, self._feed_forward)


class EncoderDecoder(nn.Module):
    def __init__(self, src_vocab, tgt_vocab, *, d_model, n_heads, n_layers, d_ff, max_len, pad_id=0, dropout=0.0):
        super().__init__()
        if d_model % n_heads != 0:
            raise ValueError(f"n_heads={n_heads} does not divide d_model={d_model}")
        self.d_model = d_model
        self.max_len = max_len
        self.pad_id = pad_id
        self.src_embed = nn.Embedding(src_vocab, d_model, padding_idx=pad_id)
        self.tgt_embed = nn.Embedding(tgt_vocab, d_model, padding_idx=pad_id)
        self.encoder_layers = nn.ModuleList()
        self.decoder_layers = nn.ModuleList()
        for _ in range(n_layers):
            self.encoder_layers.append(EncoderLayer(d_model, n_heads, d_ff, dropout=dropout))
            self.decoder_layers.append(DecoderLayer(d_model, n_heads, d_ff, dropout=dropout))
        self.encoder_norm = nn.LayerNorm(d_model)
        self.decoder_norm = nn.LayerNorm(d_model)
        self.out_proj = nn.Linear(d_model, tgt_vocab)
        self.embed_dropout = nn.Dropout(dropout)
        self.register_buffer("table", sinusoidal_positions(max_len, d_model), persistent=False)

    def _positions(self, n):
        if n > self.max_len:
            raise ValueError(f"sequence of {n} tokens is longer than max_len={self.max_len}")
        return self.table[:n]

    def encode(self, src_ids, src_mask=None):
        if src_ids.dim() != 2:
            raise ValueError("src_ids must be (B, S)")
        if src_mask is None:
            src_mask = torch.ones_like(src_ids)
        x = self.embed_dropout(math.sqrt(self.d_model) * self.src_embed(src_ids) + self._positions(src_ids.shape[1]))
        for layer in self.encoder_layers:
            x = layer(x, padding_mask(src_mask))
        return self.encoder_norm(x)

    def decode(self, tgt_ids, memory, src_mask=None, tgt_mask=None):
        if tgt_ids.dim() != 2:
            raise ValueError("tgt_ids must be (B, T)")
        if tgt_mask is None:
            tgt_mask = torch.ones_like(tgt_ids)
        cross = None if src_mask is None else padding_mask(src_mask)
        y = self.embed_dropout(math.sqrt(self.d_model) * self.tgt_embed(tgt_ids) + self._positions(tgt_ids.shape[1]))
        for layer in self.decoder_layers:
            y = layer(y, memory, decoder_mask(tgt_mask), cross)
        return self.out_proj(self.decoder_norm(y))

    def forward(self, src_ids, src_mask, tgt_ids, tgt_mask):
        memory = self.encode(src_ids, src_mask)
        return self.decode(tgt_ids, memory, src_mask, tgt_mask)


def greedy_translate(model, src_ids, src_mask, *, bos_id, eos_id, max_len):
    if src_ids.dim() != 2:
        raise ValueError("src_ids must be 2-dimensional")
    if max_len < 1:
        raise ValueError("max_len must be at least 1")
    if src_mask is None:
        src_mask = torch.ones_like(src_ids)
    results = [[] for _ in range(src_ids.shape[0])]
    with torch.no_grad():
        memory = model.encode(src_ids, src_mask)
        alive = list(range(src_ids.shape[0]))  # rows still decoding, in batch order
        prefix = torch.full((len(alive), 1), bos_id, dtype=torch.long)
        for _ in range(max_len):
            rows = torch.tensor(alive)
            nxt = model.decode(prefix, memory[rows], src_mask[rows], None)[:, -1].argmax(-1).tolist()
            keep = []
            for k, (row, token) in enumerate(zip(alive, nxt)):
                if token != eos_id:
                    results[row].append(token)
                    keep.append(k)
            if not keep:
                break
            prefix = torch.cat([prefix, torch.tensor(nxt)[:, None]], dim=1)[keep]
            alive = [alive[k] for k in keep]
    return results
