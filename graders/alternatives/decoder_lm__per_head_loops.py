"""A correct ``decoder_lm`` written the long way: one head at a time, explicit sin/cos pairs.

* RoPE: each feature pair (i, i + D/2) rotated with an explicit 2x2 rotation;
* attention: a Python loop over query heads, each calling the student's own
  ``scaled_dot_product_attention`` with the key/value head of its group, mask from ``decoder_mask``;
* ``from_hf`` copies parameter by parameter through the transformers module tree;
* the loss sums per-row cross-entropies and divides by the number of counted tokens.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .attention import MultiHeadAttention, scaled_dot_product_attention
from .causal_mask import decoder_mask


def rms_norm(x, weight, eps=1e-6):
    if x.dim() < 1 or tuple(weight.shape) != (x.shape[-1],):
        raise ValueError("weight must have shape (D,) with D the last dimension of x")
    if eps < 0:
        raise ValueError("eps must be >= 0")
    wide = x.float() if x.dtype in (torch.float16, torch.bfloat16) else x
    scale = 1.0 / torch.sqrt((wide * wide).sum(-1, keepdim=True) / x.shape[-1] + eps)
    return (weight * (wide * scale)).to(x.dtype)


def rotary_embedding(x, positions, base=10000.0):
    if x.dim() != 4:
        raise ValueError("x must be (B, H, T, D)")
    B, H, T, D = x.shape
    if D % 2:
        raise ValueError("D must be even")
    positions = torch.as_tensor(positions)
    if positions.dim() == 1:
        positions = positions.expand(B, T) if positions.shape == (T,) else positions
    if positions.shape != (B, T):
        raise ValueError("positions must be (T,) or (B, T)")
    wide = torch.float64 if x.dtype == torch.float64 else torch.float32
    out = torch.empty_like(x)
    half = D // 2
    for i in range(half):
        freq = 1.0 / (base ** (torch.tensor(2 * i, dtype=wide) / D))
        angle = (positions.to(wide) * freq)[:, None, :]  # (B, 1, T)
        c, s = angle.cos().to(x.dtype), angle.sin().to(x.dtype)
        a, b = x[..., i], x[..., i + half]
        out[..., i] = a * c - b * s
        out[..., i + half] = b * c + a * s
    return out


def swiglu(x, w_gate, w_up, w_down):
    d_ff, d = w_gate.shape
    if d != x.shape[-1] or w_up.shape != (d_ff, d) or w_down.shape != (d, d_ff):
        raise ValueError("the weight shapes do not fit")
    return F.linear(F.silu(F.linear(x, w_gate)) * F.linear(x, w_up), w_down)


class DecoderBlock(nn.Module):
    def __init__(self, d_model, n_heads, d_ff, n_kv_heads=None, *, norm_eps=1e-6, rope_base=10000.0,
                 attention_bias=False):
        super().__init__()
        self.n_heads = n_heads
        self.n_kv_heads = n_heads if n_kv_heads is None else n_kv_heads
        self.attn = MultiHeadAttention(d_model, n_heads, self.n_kv_heads, bias=attention_bias)
        self.head_dim = d_model // n_heads
        if self.head_dim % 2 == 1:
            raise ValueError("RoPE needs an even head_dim")
        self.norm_eps = norm_eps
        self.rope_base = rope_base
        self.attn_norm = nn.Parameter(torch.ones(d_model))
        self.mlp_norm = nn.Parameter(torch.ones(d_model))
        self.gate_proj = nn.Linear(d_model, d_ff, bias=False)
        self.up_proj = nn.Linear(d_model, d_ff, bias=False)
        self.down_proj = nn.Linear(d_ff, d_model, bias=False)

    def _split(self, t, n):
        B, T, _ = t.shape
        return t.reshape(B, T, n, self.head_dim).transpose(1, 2)

    def forward(self, x, mask=None, positions=None):
        B, T, _ = x.shape
        if mask is None:
            mask = torch.tril(torch.ones(T, T)).bool()
        if positions is None:
            positions = torch.arange(T)
        normed = rms_norm(x, self.attn_norm, self.norm_eps)
        q = rotary_embedding(self._split(self.attn.q_proj(normed), self.n_heads), positions, self.rope_base)
        k = rotary_embedding(self._split(self.attn.k_proj(normed), self.n_kv_heads), positions, self.rope_base)
        v = self._split(self.attn.v_proj(normed), self.n_kv_heads)
        group = self.n_heads // self.n_kv_heads
        mask = mask.expand(B, 1, T, T)
        outs = []
        for h in range(self.n_heads):
            o, _ = scaled_dot_product_attention(q[:, h], k[:, h // group], v[:, h // group], mask[:, 0])
            outs.append(o)
        x = x + self.attn.o_proj(torch.cat(outs, dim=-1))
        normed = rms_norm(x, self.mlp_norm, self.norm_eps)
        return x + swiglu(normed, self.gate_proj.weight, self.up_proj.weight, self.down_proj.weight)


class DecoderLM(nn.Module):
    def __init__(self, vocab_size, d_model, n_layers, n_heads, d_ff, n_kv_heads=None, *, rope_base=10000.0,
                 norm_eps=1e-6, tie_embeddings=False, attention_bias=False):
        super().__init__()
        self.norm_eps = norm_eps
        self.embed_tokens = nn.Embedding(vocab_size, d_model)
        self.layers = nn.ModuleList()
        for _ in range(n_layers):
            self.layers.append(DecoderBlock(d_model, n_heads, d_ff, n_kv_heads, norm_eps=norm_eps,
                                            rope_base=rope_base, attention_bias=attention_bias))
        self.final_norm = nn.Parameter(torch.ones(d_model))
        self.lm_head = nn.Linear(d_model, vocab_size, bias=False)
        if tie_embeddings:
            self.lm_head.weight = self.embed_tokens.weight

    def forward(self, input_ids, attention_mask=None, position_ids=None):
        B, T = input_ids.shape
        real = torch.ones_like(input_ids) if attention_mask is None else attention_mask
        if position_ids is None:
            position_ids = torch.arange(T).repeat(B, 1)
        mask = decoder_mask(real)
        hidden = self.embed_tokens(input_ids)
        for block in self.layers:
            hidden = block(hidden, mask, position_ids)
        hidden = rms_norm(hidden, self.final_norm, self.norm_eps)
        return self.lm_head(hidden)

    @classmethod
    def from_hf(cls, model):
        c = model.config
        rope = getattr(c, "rope_parameters", None) or {}
        lm = cls(c.vocab_size, c.hidden_size, c.num_hidden_layers, c.num_attention_heads, c.intermediate_size,
                 n_kv_heads=c.num_key_value_heads, rope_base=rope.get("rope_theta", 10000.0),
                 norm_eps=c.rms_norm_eps, tie_embeddings=bool(c.tie_word_embeddings),
                 attention_bias=bool(c.attention_bias))
        lm = lm.to(model.dtype)
        with torch.no_grad():
            lm.embed_tokens.weight.copy_(model.model.embed_tokens.weight)
            lm.final_norm.copy_(model.model.norm.weight)
            if not c.tie_word_embeddings:
                lm.lm_head.weight.copy_(model.lm_head.weight)
            for mine, theirs in zip(lm.layers, model.model.layers):
                mine.attn_norm.copy_(theirs.input_layernorm.weight)
                mine.mlp_norm.copy_(theirs.post_attention_layernorm.weight)
                for name in ("q_proj", "k_proj", "v_proj", "o_proj"):
                    src, dst = getattr(theirs.self_attn, name), getattr(mine.attn, name)
                    dst.weight.copy_(src.weight)
                    if dst.bias is not None:
                        dst.bias.copy_(src.bias)
                for name in ("gate_proj", "up_proj", "down_proj"):
                    getattr(mine, name).weight.copy_(getattr(theirs.mlp, name).weight)
        lm.eval()
        return lm


def next_token_loss(logits, input_ids, attention_mask=None):
    B, T = input_ids.shape
    if logits.shape[:2] != (B, T):
        raise ValueError("logits and input_ids disagree")
    real = [[True] * T] * B if attention_mask is None else attention_mask.bool().tolist()
    total, count = logits.new_zeros(()), 0
    for b in range(B):
        keep = [t for t in range(T - 1) if real[b][t] and real[b][t + 1]]
        if keep:
            idx = torch.tensor(keep)
            total = total + F.cross_entropy(logits[b, idx], input_ids[b, idx + 1], reduction="sum")
            count += len(keep)
    if count == 0:
        raise ValueError("no token to predict")
    return total / count

