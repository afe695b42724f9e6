"""Realistic buggy variants of ``decoder_lm``: the mistakes people make when rebuilding Llama.

Each replaces one function or method of the reference; the rest of the reference calls it as a
student's module would. Names used without import (``rms_norm``, ``rotary_embedding``,
``scaled_dot_product_attention``, ``decoder_mask``, ...) are the reference module's own.
"""
import torch
import torch.nn.functional as F

from llmlab.grading.variants import Variants

bugs = Variants("decoder_lm")


# --- rms_norm ----------------------------------------------------------------------------------
@bugs.bug("rms_norm_subtracts_mean", replaces="rms_norm",
          mistake="rms_norm subtracts the mean (that is LayerNorm): RMSNorm divides x itself by sqrt(mean(x**2) + eps), "
                  "without centring")
def rms_norm_layernorm(x, weight, eps=1e-6):
    if weight.shape != (x.shape[-1],):
        raise ValueError("weight must match the last dimension")
    h = x - x.mean(dim=-1, keepdim=True)
    return weight * h * torch.rsqrt(h.pow(2).mean(dim=-1, keepdim=True) + eps)


@bugs.bug("rms_norm_eps_outside_sqrt", replaces="rms_norm",
          mistake="eps is added after the square root: divide by sqrt(mean(x**2) + eps), eps inside the root")
def rms_norm_eps_outside(x, weight, eps=1e-6):
    if weight.shape != (x.shape[-1],):
        raise ValueError("weight must match the last dimension")
    return weight * x / (x.pow(2).mean(dim=-1, keepdim=True).sqrt() + eps)


# --- rotary_embedding ---------------------------------------------------------------------------
def _angles(positions, D, base, dtype, exponent_step=2):
    inv_freq = 1.0 / (base ** (torch.arange(0, D // 2, dtype=torch.float32) * exponent_step / D))
    pos = torch.as_tensor(positions).float()
    if pos.dim() == 1:
        pos = pos[None]
    return (pos[..., None] * inv_freq)[:, None].to(dtype)  # (B or 1, 1, T, D/2)


@bugs.bug("rotary_interleaved_pairs", replaces="rotary_embedding",
          mistake="RoPE rotates interleaved pairs (x0, x1), (x2, x3), ... (the original Meta / GPT-J layout): "
                  "transformers' Llama pairs feature i with feature i + D/2 (rotate_half)")
def rotary_interleaved(x, positions, base=10000.0):
    if x.dim() != 4 or x.shape[-1] % 2:
        raise ValueError("x must be (B, H, T, D) with D even")
    a = _angles(positions, x.shape[-1], base, x.dtype)
    cos, sin = a.cos(), a.sin()
    even, odd = x[..., 0::2], x[..., 1::2]
    return torch.stack((even * cos - odd * sin, even * sin + odd * cos), dim=-1).flatten(-2)


@bugs.bug("rotary_wrong_frequencies", replaces="rotary_embedding",
          mistake="the RoPE frequencies are base ** (-i / D) for i = 0 .. D/2-1: the exponent is -2i / D "
                  "(torch.arange(0, D, 2) / D)")
def rotary_wrong_freq(x, positions, base=10000.0):
    if x.dim() != 4 or x.shape[-1] % 2:
        raise ValueError("x must be (B, H, T, D) with D even")
    a = _angles(positions, x.shape[-1], base, x.dtype, exponent_step=1)
    a = torch.cat((a, a), dim=-1)
    half = x.shape[-1] // 2
    return x * a.cos() + torch.cat((-x[..., half:], x[..., :half]), dim=-1) * a.sin()


@bugs.bug("rotary_rotates_backwards", replaces="rotary_embedding",
          mistake="the rotation goes the wrong way: rotate_half(x) is cat(-x2, x1) (x1, x2 the two halves), "
                  "not cat(x2, -x1)")
def rotary_backwards(x, positions, base=10000.0):
    if x.dim() != 4 or x.shape[-1] % 2:
        raise ValueError("x must be (B, H, T, D) with D even")
    a = _angles(positions, x.shape[-1], base, x.dtype)
    a = torch.cat((a, a), dim=-1)
    half = x.shape[-1] // 2
    return x * a.cos() + torch.cat((x[..., half:], -x[..., :half]), dim=-1) * a.sin()


@bugs.bug("rotary_ignores_positions", replaces="rotary_embedding",
          mistake="the given positions are ignored (0 .. T-1 is used): rotate each token by its own position, which "
                  "need not start at 0 (left padding, a KV cache)")
def rotary_arange(x, positions, base=10000.0):
    if x.dim() != 4 or x.shape[-1] % 2:
        raise ValueError("x must be (B, H, T, D) with D even")
    a = _angles(torch.arange(x.shape[2]), x.shape[-1], base, x.dtype)
    a = torch.cat((a, a), dim=-1)
    half = x.shape[-1] // 2
    return x * a.cos() + torch.cat((-x[..., half:], x[..., :half]), dim=-1) * a.sin()


# --- swiglu -------------------------------------------------------------------------------------
@bugs.bug("swiglu_silu_on_up", replaces="swiglu",
          mistake="SiLU is applied to the up projection: it is silu(gate(x)) * up(x), the gate goes through SiLU")
def swiglu_swapped(x, w_gate, w_up, w_down):
    if w_gate.shape != w_up.shape or w_down.shape != (x.shape[-1], w_gate.shape[0]):
        raise ValueError("shapes do not fit")
    return F.linear(F.linear(x, w_gate) * F.silu(F.linear(x, w_up)), w_down)


@bugs.bug("swiglu_gelu", replaces="swiglu",
          mistake="the gate uses GELU: Llama's SwiGLU uses SiLU, x * sigmoid(x)")
def swiglu_gelu(x, w_gate, w_up, w_down):
    if w_gate.shape != w_up.shape or w_down.shape != (x.shape[-1], w_gate.shape[0]):
        raise ValueError("shapes do not fit")
    return F.linear(F.gelu(F.linear(x, w_gate)) * F.linear(x, w_up), w_down)


# --- DecoderBlock -------------------------------------------------------------------------------
def _attention(self, h, mask, positions, rotate_values=False):
    """The reference block's attention (heads, RoPE, GQA, SDPA, o_proj) on already-normalised input."""
    B, T, _ = h.shape
    a = self.attn
    q = a.q_proj(h).view(B, T, self.n_heads, self.head_dim).transpose(1, 2)
    k = a.k_proj(h).view(B, T, self.n_kv_heads, self.head_dim).transpose(1, 2)
    v = a.v_proj(h).view(B, T, self.n_kv_heads, self.head_dim).transpose(1, 2)
    q = rotary_embedding(q, positions, self.rope_base)  # noqa: F821 - the reference's own
    k = rotary_embedding(k, positions, self.rope_base)  # noqa: F821
    if rotate_values:
        v = rotary_embedding(v, positions, self.rope_base)  # noqa: F821
    group = self.n_heads // self.n_kv_heads
    k, v = k.repeat_interleave(group, dim=1), v.repeat_interleave(group, dim=1)
    out, _ = scaled_dot_product_attention(q, k, v, mask)  # noqa: F821
    return a.o_proj(out.transpose(1, 2).reshape(B, T, -1))


def _defaults(x, mask, positions):
    T = x.shape[1]
    mask = torch.ones(T, T, dtype=torch.bool).tril() if mask is None else mask
    return mask, (torch.arange(T) if positions is None else positions)


def _mlp(self, h):
    return swiglu(h, self.gate_proj.weight, self.up_proj.weight, self.down_proj.weight)  # noqa: F821


@bugs.bug("block_post_norm", replaces="DecoderBlock.forward",
          mistake="the block normalises after adding the residual (post-norm, as the 2017 Transformer): Llama is "
                  "pre-norm, x + attention(rms_norm(x)), and the residual stream itself is never normalised")
def block_post_norm(self, x, mask=None, positions=None):
    mask, positions = _defaults(x, mask, positions)
    x = rms_norm(x + _attention(self, x, mask, positions), self.attn_norm, self.norm_eps)  # noqa: F821
    return rms_norm(x + _mlp(self, x), self.mlp_norm, self.norm_eps)  # noqa: F821


@bugs.bug("block_rotates_values", replaces="DecoderBlock.forward",
          mistake="RoPE is applied to the values too: only queries and keys are rotated (positions enter through "
                  "the scores)")
def block_rotates_values(self, x, mask=None, positions=None):
    mask, positions = _defaults(x, mask, positions)
    x = x + _attention(self, rms_norm(x, self.attn_norm, self.norm_eps), mask, positions,  # noqa: F821
                       rotate_values=True)
    return x + _mlp(self, rms_norm(x, self.mlp_norm, self.norm_eps))  # noqa: F821


@bugs.bug("block_no_mlp_residual", replaces="DecoderBlock.forward",
          mistake="the MLP output replaces the hidden state: add it to the residual stream, x + mlp(rms_norm(x))")
def block_no_mlp_residual(self, x, mask=None, positions=None):
    mask, positions = _defaults(x, mask, positions)
    x = x + _attention(self, rms_norm(x, self.attn_norm, self.norm_eps), mask, positions)  # noqa: F821
    return _mlp(self, rms_norm(x, self.mlp_norm, self.norm_eps))  # noqa: F821


@bugs.bug("block_one_norm_weight", replaces="DecoderBlock.forward",
          mistake="the MLP input is normalised with attn_norm: each sub-layer has its own RMSNorm weight (attn_norm "
                  "before attention, mlp_norm before the MLP)")
def block_one_norm(self, x, mask=None, positions=None):
    mask, positions = _defaults(x, mask, positions)
    x = x + _attention(self, rms_norm(x, self.attn_norm, self.norm_eps), mask, positions)  # noqa: F821
    return x + _mlp(self, rms_norm(x, self.attn_norm, self.norm_eps))  # noqa: F821


# --- DecoderLM ----------------------------------------------------------------------------------
@bugs.bug("lm_no_final_norm", replaces="DecoderLM.forward",
          mistake="the final RMSNorm (final_norm) before the LM head is missing")
def lm_no_final_norm(self, input_ids, attention_mask=None, position_ids=None):
    B, T = input_ids.shape
    am = torch.ones(B, T, dtype=torch.long) if attention_mask is None else attention_mask
    mask = decoder_mask(am)  # noqa: F821
    positions = torch.arange(T) if position_ids is None else position_ids
    h = self.embed_tokens(input_ids)
    for layer in self.layers:
        h = layer(h, mask, positions)
    return self.lm_head(h)


@bugs.bug("lm_ignores_attention_mask", replaces="DecoderLM.forward",
          mistake="the attention mask is not used (a causal mask only): with left padding, real tokens attend to the "
                  "padding before them; build the mask with decoder_mask(attention_mask)")
def lm_ignores_mask(self, input_ids, attention_mask=None, position_ids=None):
    B, T = input_ids.shape
    positions = torch.arange(T) if position_ids is None else position_ids
    h = self.embed_tokens(input_ids)
    for layer in self.layers:
        h = layer(h, None, positions)
    return self.lm_head(rms_norm(h, self.final_norm, self.norm_eps))  # noqa: F821


@bugs.bug("lm_ignores_position_ids", replaces="DecoderLM.forward",
          mistake="position_ids are ignored (always 0 .. T-1): rotate each token by the position it is given")
def lm_ignores_positions(self, input_ids, attention_mask=None, position_ids=None):
    B, T = input_ids.shape
    am = torch.ones(B, T, dtype=torch.long) if attention_mask is None else attention_mask
    mask = decoder_mask(am)  # noqa: F821
    h = self.embed_tokens(input_ids)
    for layer in self.layers:
        h = layer(h, mask, torch.arange(T))
    return self.lm_head(rms_norm(h, self.final_norm, self.norm_eps))  # noqa: F821


@bugs.bug("lm_head_not_tied", replaces="DecoderLM.__init__",
          mistake="with tie_embeddings=True the LM head gets its own weight: assign lm_head.weight = "
                  "embed_tokens.weight so both are one Parameter")
def lm_init_untied(self, vocab_size, d_model, n_layers, n_heads, d_ff, n_kv_heads=None, *, rope_base=10000.0,
                   norm_eps=1e-6, tie_embeddings=False, attention_bias=False):
    torch.nn.Module.__init__(self)
    self.norm_eps = norm_eps
    self.embed_tokens = torch.nn.Embedding(vocab_size, d_model)
    self.layers = torch.nn.ModuleList(
        DecoderBlock(d_model, n_heads, d_ff, n_kv_heads, norm_eps=norm_eps, rope_base=rope_base,  # noqa: F821
                     attention_bias=attention_bias) for _ in range(n_layers))
    self.final_norm = torch.nn.Parameter(torch.ones(d_model))
    self.lm_head = torch.nn.Linear(d_model, vocab_size, bias=False)


def _copy_from_hf(model, rope_base=None, norm_eps=None):
    """The reference's from_hf with a wrong value for one config entry."""
    cfg = model.config
    rope = dict(getattr(cfg, "rope_parameters", None) or {})
    lm = DecoderLM(cfg.vocab_size, cfg.hidden_size, cfg.num_hidden_layers, cfg.num_attention_heads,  # noqa: F821
                   cfg.intermediate_size, cfg.num_key_value_heads,
                   rope_base=rope.get("rope_theta", 10000.0) if rope_base is None else rope_base,
                   norm_eps=cfg.rms_norm_eps if norm_eps is None else norm_eps,
                   tie_embeddings=cfg.tie_word_embeddings, attention_bias=cfg.attention_bias)
    src = model.state_dict()
    with torch.no_grad():
        lm.embed_tokens.weight.copy_(src["model.embed_tokens.weight"])
        lm.final_norm.copy_(src["model.norm.weight"])
        lm.lm_head.weight.copy_(src["lm_head.weight"])
        for i, layer in enumerate(lm.layers):
            p = f"model.layers.{i}."
            layer.attn_norm.copy_(src[p + "input_layernorm.weight"])
            layer.mlp_norm.copy_(src[p + "post_attention_layernorm.weight"])
            for name in ("q_proj", "k_proj", "v_proj", "o_proj"):
                getattr(layer.attn, name).load_state_dict(
                    {k.split(".")[-1]: v for k, v in src.items() if k.startswith(f"{p}self_attn.{name}.")})
            for name in ("gate_proj", "up_proj", "down_proj"):
                getattr(layer, name).weight.copy_(src[f"{p}mlp.{name}.weight"])
    return lm.eval()


@bugs.bug("from_hf_default_rope_base", replaces="DecoderLM.from_hf",
          mistake="from_hf ignores the model's RoPE base: read config.rope_parameters['rope_theta'] (SmolLM2 uses "
                  "100000, Llama 3 500000, not the default 10000)")
def from_hf_default_base(model):
    return _copy_from_hf(model, rope_base=10000.0)


@bugs.bug("from_hf_default_eps", replaces="DecoderLM.from_hf",
          mistake="from_hf ignores config.rms_norm_eps and keeps the default eps")
def from_hf_default_eps(model):
    return _copy_from_hf(model, norm_eps=1e-6)


# --- next_token_loss ----------------------------------------------------------------------------
@bugs.bug("loss_not_shifted", replaces="next_token_loss",
          mistake="the loss compares the logits at position t with token t: position t predicts token t + 1 "
                  "(drop the last logits and the first token)")
def loss_not_shifted(logits, input_ids, attention_mask=None):
    counted = torch.ones_like(input_ids, dtype=torch.bool) if attention_mask is None else attention_mask != 0
    return F.cross_entropy(logits[counted], input_ids[counted])


@bugs.bug("loss_counts_padding", replaces="next_token_loss",
          mistake="padding is counted in the loss: only pairs whose input and target are both real tokens count")
def loss_counts_padding(logits, input_ids, attention_mask=None):
    V = logits.shape[-1]
    return F.cross_entropy(logits[:, :-1].reshape(-1, V), input_ids[:, 1:].reshape(-1))


@bugs.bug("loss_mean_of_row_means", replaces="next_token_loss",
          mistake="the loss averages each row's mean: average over all predicted tokens of the batch instead (a "
                  "long row has more tokens, so more weight)")
def loss_row_means(logits, input_ids, attention_mask=None):
    am = torch.ones_like(input_ids) if attention_mask is None else attention_mask
    real = am != 0
    counted = real[:, :-1] & real[:, 1:]
    losses = []
    for b in range(input_ids.shape[0]):
        if counted[b].any():
            losses.append(F.cross_entropy(logits[b, :-1][counted[b]], input_ids[b, 1:][counted[b]]))
    return torch.stack(losses).mean()


# A variant's module holds only the code registered with it: helpers travel with the variants using them.
for _variant, _needs in {
    "rotary_interleaved_pairs": [_angles], "rotary_wrong_frequencies": [_angles], "rotary_rotates_backwards": [_angles],
    "rotary_ignores_positions": [_angles], "block_post_norm": [_attention, _defaults, _mlp],
    "block_rotates_values": [_attention, _defaults, _mlp], "block_no_mlp_residual": [_attention, _defaults, _mlp],
    "block_one_norm_weight": [_attention, _defaults, _mlp], "from_hf_default_rope_base": [_copy_from_hf],
    "from_hf_default_eps": [_copy_from_hf],
}.items():
    for _fn in _needs:
        bugs.bug(_variant, replaces=_fn.__name__, mistake="")(_fn)
