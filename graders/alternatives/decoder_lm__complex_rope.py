"""A correct ``decoder_lm`` written differently: RoPE as complex multiplication, torch's fused attention.

* RMSNorm through ``torch.linalg.vector_norm`` (``||x|| / sqrt(D)`` is the root mean square);
* RoPE: the two halves of each head form complex numbers ``x1 + i x2``, rotated by ``exp(i angle)``;
* attention through ``torch.nn.functional.scaled_dot_product_attention(enable_gqa=True)``;
* the mask built from the attention mask by hand, the weights loaded with one renamed state dict;
* the loss from ``log_softmax`` and ``gather``.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .attention import MultiHeadAttention


def rms_norm(x, weight, eps=1e-6):
    if weight.shape != (x.shape[-1],):
        raise ValueError(f"weight must have shape ({x.shape[-1]},)")
    if eps < 0:
        raise ValueError("eps must be >= 0")
    D = x.shape[-1]
    ms = torch.linalg.vector_norm(x, dim=-1, keepdim=True).pow(2) / D
    return weight * (x / torch.sqrt(ms + eps))


def rotary_embedding(x, positions, base=10000.0):
    if x.dim() != 4 or x.shape[-1] % 2:
        raise ValueError("x must have shape (B, H, T, D) with an even D")
    B, H, T, D = x.shape
    positions = torch.as_tensor(positions)
    if positions.shape not in ((T,), (B, T)):
        raise ValueError("positions must have shape (T,) or (B, T)")
    real = torch.float64 if x.dtype == torch.float64 else torch.float32
    inv_freq = torch.pow(torch.tensor(base, dtype=real), -torch.arange(0, D, 2, dtype=real) / D)
    angle = positions.to(real).reshape(-1, 1, T, 1) * inv_freq  # (B or 1, 1, T, D/2)
    z = torch.complex(x[..., : D // 2].to(real), x[..., D // 2:].to(real)) * torch.polar(torch.ones_like(angle), angle)
    return torch.cat((z.real, z.imag), dim=-1).to(x.dtype)


def swiglu(x, w_gate, w_up, w_down):
    if w_gate.shape != w_up.shape or w_gate.shape[1] != x.shape[-1] or w_down.shape != (x.shape[-1], w_gate.shape[0]):
        raise ValueError("the weight shapes do not fit")
    g = x @ w_gate.T
    return ((g * torch.sigmoid(g)) * (x @ w_up.T)) @ w_down.T


class DecoderBlock(nn.Module):
    def __init__(self, d_model, n_heads, d_ff, n_kv_heads=None, *, norm_eps=1e-6, rope_base=10000.0,
                 attention_bias=False):
        super().__init__()
        n_kv_heads = n_kv_heads or n_heads
        if (d_model // n_heads) % 2:
            raise ValueError("head_dim must be even")
        self.attn = MultiHeadAttention(d_model, n_heads, n_kv_heads, bias=attention_bias)
        self.n_heads, self.n_kv_heads, self.head_dim = n_heads, n_kv_heads, d_model // n_heads
        self.norm_eps, self.rope_base = norm_eps, rope_base
        # two RMSNorm gains (ones), then the SwiGLU projections: gate and up widen, down narrows back
        self.attn_norm, self.mlp_norm = (nn.Parameter(torch.ones(d_model)) for _ in range(2))
        self.gate_proj, self.up_proj = (nn.Linear(d_model, d_ff, bias=False) for _ in range(2))
        self.down_proj = nn.Linear(d_ff, d_model, bias=False)

    def forward(self, x, mask=None, positions=None):
        B, T, _ = x.shape
        if mask is None:
            mask = torch.ones(T, T, dtype=torch.bool).tril()
        if positions is None:
            positions = torch.arange(T)
        h = rms_norm(x, self.attn_norm, self.norm_eps)

        def heads(proj, n):
            return proj(h).unflatten(-1, (n, self.head_dim)).permute(0, 2, 1, 3)

        q = rotary_embedding(heads(self.attn.q_proj, self.n_heads), positions, self.rope_base)
        k = rotary_embedding(heads(self.attn.k_proj, self.n_kv_heads), positions, self.rope_base)
        v = heads(self.attn.v_proj, self.n_kv_heads)
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, enable_gqa=True)
        x = x + self.attn.o_proj(out.permute(0, 2, 1, 3).flatten(2))
        return x + swiglu(rms_norm(x, self.mlp_norm, self.norm_eps), self.gate_proj.weight, self.up_proj.weight,
                          self.down_proj.weight)


class DecoderLM(nn.Module):
    def __init__(self, vocab_size, d_model, n_layers, n_heads, d_ff, n_kv_heads=None, *, rope_base=10000.0,
                 norm_eps=1e-6, tie_embeddings=False, attention_bias=False):
        super().__init__()
        per_block = dict(norm_eps=norm_eps, rope_base=rope_base, attention_bias=attention_bias)
        self.embed_tokens = nn.Embedding(vocab_size, d_model)
        self.layers = nn.ModuleList([DecoderBlock(d_model, n_heads, d_ff, n_kv_heads, **per_block)
                                     for _ in range(n_layers)])
        self.lm_head = nn.Linear(d_model, vocab_size, bias=False)
        if tie_embeddings:  # one shared Parameter, not a copy
            self.lm_head.weight = self.embed_tokens.weight
        self.final_norm = nn.Parameter(torch.ones(d_model))
        self.norm_eps = norm_eps

    def forward(self, input_ids, attention_mask=None, position_ids=None):
        B, T = input_ids.shape
        real = torch.ones(B, T, dtype=torch.bool) if attention_mask is None else attention_mask.bool()
        future = torch.arange(T)[None, :] > torch.arange(T)[:, None]  # (query, key): key after query
        mask = (~future)[None, None] & real[:, None, None, :]
        positions = torch.arange(T) if position_ids is None else position_ids
        h = self.embed_tokens(input_ids)
        for layer in self.layers:
            h = layer(h, mask, positions)
        return F.linear(rms_norm(h, self.final_norm, self.norm_eps), self.lm_head.weight)

    @classmethod
    def from_hf(cls, model):
        c = model.config
        theta = (getattr(c, "rope_parameters", None) or {}).get("rope_theta", 10000.0)
        lm = cls(c.vocab_size, c.hidden_size, c.num_hidden_layers, c.num_attention_heads, c.intermediate_size,
                 c.num_key_value_heads, rope_base=theta, norm_eps=c.rms_norm_eps,
                 tie_embeddings=c.tie_word_embeddings, attention_bias=c.attention_bias)
        renames = [("model.embed_tokens.", "embed_tokens."), ("model.norm.weight", "final_norm"),
                   (".input_layernorm.weight", ".attn_norm"), (".post_attention_layernorm.weight", ".mlp_norm"),
                   (".self_attn.", ".attn."), (".mlp.", "."), ("model.layers.", "layers.")]
        state = {}
        for key, value in model.state_dict().items():
            for old, new in renames:
                key = key.replace(old, new)
            state[key] = value.detach().clone()
        lm.load_state_dict(state)
        return lm.to(model.dtype).eval()


def next_token_loss(logits, input_ids, attention_mask=None):
    if logits.dim() != 3 or logits.shape[:2] != input_ids.shape:
        raise ValueError("logits must be (B, T, V) and input_ids (B, T)")
    real = torch.ones_like(input_ids, dtype=torch.bool) if attention_mask is None else attention_mask.bool()
    weight = (real[:, 1:] & real[:, :-1]).to(logits.dtype)
    if weight.sum() == 0:
        raise ValueError("nothing to predict")
    logp = logits[:, :-1].log_softmax(-1).gather(-1, input_ids[:, 1:, None]).squeeze(-1)
    return -(logp * weight).sum() / weight.sum()
