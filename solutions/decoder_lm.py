"""A decoder-only language model, built from your own parts (notes §2.3).

A decoder-only LM is four pieces in a row:

1. a **tokenizer** turns text into token ids (here: SmolLM2's, given);
2. an **embedding** table turns each id into a vector of ``d_model`` numbers;
3. a stack of identical **transformer blocks** mixes information between positions (masked, causal
   self-attention: a position sees only itself and the past) and within each position (a small MLP);
4. an **LM head** turns each final vector into one score (logit) per vocabulary entry: at position
   ``t`` the scores for the token at ``t + 1``.

Training maximises the log-likelihood of the next token at every position (``next_token_loss``);
generation repeatedly picks a next token and appends it (the ``sampling`` topic).

This module builds the Llama architecture (Llama 2/3, SmolLM2, ...) from three small functions,
your ``MultiHeadAttention`` and ``scaled_dot_product_attention`` (topic ``attention``) and your
``decoder_mask`` (topic ``causal_mask``), then loads real weights into it with ``DecoderLM.from_hf``:

* **RMSNorm** instead of LayerNorm: rescale each vector by its root mean square (no centring, no
  bias), then multiply by a learned per-feature weight;
* **pre-norm** blocks: each sub-layer sees a normalised copy of the residual stream and adds its
  output back to the un-normalised stream;
* **rotary position embeddings (RoPE)**: no position vectors are added to the input; instead the
  queries and keys of every head are rotated by an angle proportional to their position, so the
  score between a query at ``m`` and a key at ``n`` depends only on ``m - n``;
* **SwiGLU** feed-forward: ``down(silu(gate(x)) * up(x))``;
* **grouped-query attention**: several query heads share one key/value head.

Conventions follow transformers' ``LlamaForCausalLM`` exactly, so the logits match it to 1e-4.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

try:  # your own parts: attention.py and causal_mask.py sit next to this file
    from .attention import MultiHeadAttention, scaled_dot_product_attention
    from .causal_mask import causal_mask, decoder_mask
except ImportError as missing:  # graded alone: a notebook defines these parts in its own cells
    if missing.name is not None and not missing.name.endswith((".attention", ".causal_mask")):
        raise  # an error inside your attention.py or causal_mask.py


def rms_norm(x, weight, eps=1e-6):
    """Root-mean-square normalisation over the last dimension (Llama's ``RMSNorm``).

    ``y = weight * x / sqrt(mean(x ** 2, dim=-1) + eps)``: no mean is subtracted and there is no bias.

    Args:
        x: ``(..., D)`` float tensor.
        weight: ``(D,)``, the learned per-feature scale.
        eps: added to the mean square, inside the square root (``>= 0``).

    Returns:
        A tensor of the shape and dtype of ``x``. float16/bfloat16 inputs are normalised in float32
        and cast back, as transformers does; float32 and float64 keep their precision. The inputs are
        not modified.

    Raises:
        ValueError: if ``x`` has no dimension, ``weight`` is not ``(D,)`` with ``D = x.shape[-1]``, or
            ``eps < 0``.
    """
    ### BEGIN SOLUTION
    if not isinstance(x, torch.Tensor) or not isinstance(weight, torch.Tensor):
        raise TypeError("x and weight must be torch.Tensors")
    if x.dim() < 1:
        raise ValueError("x must have at least one dimension (..., D)")
    if weight.shape != (x.shape[-1],):
        raise ValueError(f"weight must have shape ({x.shape[-1]},) to match x's last dimension, "
                         f"got {tuple(weight.shape)}")
    if eps < 0:
        raise ValueError(f"eps must be >= 0, got {eps}")
    compute = torch.float32 if x.dtype in (torch.float16, torch.bfloat16) else x.dtype
    h = x.to(compute)
    h = h * torch.rsqrt(h.pow(2).mean(dim=-1, keepdim=True) + eps)
    return weight.to(x.dtype) * h.to(x.dtype)
    ### END SOLUTION


def rotary_embedding(x, positions, base=10000.0):
    """Rotary position embedding (RoPE), in transformers' Llama "rotate half" layout.

    Feature ``i`` of the first half is paired with feature ``i + D/2`` of the second half, and the
    pair is rotated by the angle ``position * base ** (-2i / D)`` for ``i = 0 .. D/2 - 1``::

        freqs = positions[..., None] * inv_freq          # inv_freq[i] = base ** (-2i / D)
        cos, sin = cos(cat(freqs, freqs)), sin(cat(freqs, freqs))   # (.., T, D)
        out = x * cos + rotate_half(x) * sin              # rotate_half(x) = cat(-x[D/2:], x[:D/2])

    (The original Meta code rotates interleaved pairs ``(x0, x1), (x2, x3), ...`` instead; the
    weights transformers ships are permuted for the half layout, so the half layout is what matches.)

    Args:
        x: queries or keys, ``(B, H, T, D)`` with ``D`` even.
        positions: ``(T,)`` (the same positions for every row) or ``(B, T)`` (one row each), integer
            (or float) positions.
        base: the RoPE base (``rope_theta`` in a transformers config).

    Returns:
        ``(B, H, T, D)``, the dtype of ``x``. For float32 the angles are computed in float32, exactly as
        transformers does; float64 inputs get float64 angles.

    Raises:
        ValueError: if ``x`` is not 4-dimensional, ``D`` is odd, or ``positions`` does not have shape
            ``(T,)`` or ``(B, T)``.
    """
    ### BEGIN SOLUTION
    if not isinstance(x, torch.Tensor) or x.dim() != 4:
        raise ValueError(f"x must have shape (B, H, T, D), got {tuple(getattr(x, 'shape', ()))}")
    B, _, T, D = x.shape
    if D % 2:
        raise ValueError(f"the head dimension D must be even for rotary embeddings, got {D}")
    positions = torch.as_tensor(positions, device=x.device)
    if positions.shape not in ((T,), (B, T)):
        raise ValueError(f"positions must have shape ({T},) or ({B}, {T}), got {tuple(positions.shape)}")
    compute = torch.float64 if x.dtype == torch.float64 else torch.float32
    inv_freq = 1.0 / (base ** (torch.arange(0, D, 2, dtype=compute, device=x.device) / D))  # (D/2,)
    pos = positions.to(compute)
    if pos.dim() == 1:
        pos = pos[None]  # (1, T): broadcast over the batch
    freqs = pos[..., None] * inv_freq  # (B or 1, T, D/2)
    angles = torch.cat((freqs, freqs), dim=-1)  # (B or 1, T, D)
    cos = angles.cos().to(x.dtype)[:, None]  # (B or 1, 1, T, D): broadcast over heads
    sin = angles.sin().to(x.dtype)[:, None]
    half = D // 2
    rotated = torch.cat((-x[..., half:], x[..., :half]), dim=-1)
    return x * cos + rotated * sin
    ### END SOLUTION


def swiglu(x, w_gate, w_up, w_down):
    """The SwiGLU feed-forward network of a Llama block: ``down(silu(gate(x)) * up(x))``.

    Weights use ``nn.Linear``'s layout (``out_features, in_features``); there are no biases.

    Args:
        x: ``(..., d_model)``.
        w_gate: ``(d_ff, d_model)``, the projection that goes through SiLU (``x * sigmoid(x)``).
        w_up: ``(d_ff, d_model)``, the projection it multiplies.
        w_down: ``(d_model, d_ff)``, back to the model width.

    Returns:
        ``(..., d_model)``, the dtype of ``x``.

    Raises:
        ValueError: if the shapes do not fit together.
    """
    ### BEGIN SOLUTION
    d_model = x.shape[-1]
    if w_gate.dim() != 2 or w_gate.shape[1] != d_model or w_up.shape != w_gate.shape:
        raise ValueError(f"w_gate and w_up must both have shape (d_ff, {d_model}), got {tuple(w_gate.shape)} and "
                         f"{tuple(w_up.shape)}")
    if w_down.shape != (d_model, w_gate.shape[0]):
        raise ValueError(f"w_down must have shape ({d_model}, {w_gate.shape[0]}), got {tuple(w_down.shape)}")
    return F.linear(F.silu(F.linear(x, w_gate)) * F.linear(x, w_up), w_down)
    ### END SOLUTION


class DecoderBlock(nn.Module):
    """One pre-norm Llama transformer block::

        h   = x + attention(rms_norm(x, attn_norm))            # causal self-attention, RoPE on q and k
        out = h + swiglu(rms_norm(h, mlp_norm), gate, up, down)

    The attention is your own: queries, keys and values come from ``attn.q_proj``, ``attn.k_proj``,
    ``attn.v_proj`` (split into heads of ``head_dim = d_model // n_heads`` features), queries and keys
    are rotated with ``rotary_embedding``, each group of ``n_heads // n_kv_heads`` consecutive query
    heads shares one key/value head, the heads go through your ``scaled_dot_product_attention`` and
    are merged by ``attn.o_proj``. Values are not rotated.

    Submodules and parameters (names are part of the spec; graders load weights by these names):
        attn_norm: ``Parameter (d_model,)``, initialised to ones.
        attn: ``MultiHeadAttention(d_model, n_heads, n_kv_heads, bias=attention_bias)``.
        mlp_norm: ``Parameter (d_model,)``, initialised to ones.
        gate_proj, up_proj: ``Linear(d_model, d_ff, bias=False)``.
        down_proj: ``Linear(d_ff, d_model, bias=False)``.
    Attributes ``n_heads``, ``n_kv_heads``, ``head_dim``, ``norm_eps`` and ``rope_base`` keep the
    arguments.

    Args:
        d_model, n_heads, d_ff: model width, number of query heads, hidden width of the MLP.
        n_kv_heads: number of key/value heads (``None``: ``n_heads``).
        norm_eps: ``eps`` of both RMSNorms.
        rope_base: the RoPE base.
        attention_bias: whether the four attention projections have biases.

    Raises:
        ValueError: for head counts ``MultiHeadAttention`` rejects, or an odd ``head_dim`` (RoPE
            rotates pairs of features).
    """

    def __init__(self, d_model, n_heads, d_ff, n_kv_heads=None, *, norm_eps=1e-6, rope_base=10000.0,
                 attention_bias=False):
        super().__init__()
        ### BEGIN SOLUTION
        n_kv_heads = n_heads if n_kv_heads is None else n_kv_heads
        self.attn = MultiHeadAttention(d_model, n_heads, n_kv_heads, bias=attention_bias)
        self.n_heads, self.n_kv_heads = n_heads, n_kv_heads
        self.head_dim = d_model // n_heads
        if self.head_dim % 2:
            raise ValueError(f"head_dim = d_model // n_heads = {self.head_dim} must be even for rotary embeddings")
        self.norm_eps, self.rope_base = norm_eps, rope_base
        self.attn_norm = nn.Parameter(torch.ones(d_model))
        self.mlp_norm = nn.Parameter(torch.ones(d_model))
        self.gate_proj = nn.Linear(d_model, d_ff, bias=False)
        self.up_proj = nn.Linear(d_model, d_ff, bias=False)
        self.down_proj = nn.Linear(d_ff, d_model, bias=False)
        ### END SOLUTION

    def forward(self, x, mask=None, positions=None):
        """Apply the block.

        Args:
            x: ``(B, T, d_model)``.
            mask: bool, broadcastable to ``(B, n_heads, T, T)``, True = may attend (e.g. from
                ``decoder_mask``); ``None``: the plain causal mask.
            positions: ``(T,)`` or ``(B, T)`` positions for RoPE; ``None``: ``0 .. T-1``.

        Returns:
            ``(B, T, d_model)``.
        """
        ### BEGIN SOLUTION
        B, T, _ = x.shape
        if mask is None:
            mask = causal_mask(T, device=x.device)
        if positions is None:
            positions = torch.arange(T, device=x.device)
        a = self.attn
        h = rms_norm(x, self.attn_norm, self.norm_eps)
        q = a.q_proj(h).view(B, T, self.n_heads, self.head_dim).transpose(1, 2)
        k = a.k_proj(h).view(B, T, self.n_kv_heads, self.head_dim).transpose(1, 2)
        v = a.v_proj(h).view(B, T, self.n_kv_heads, self.head_dim).transpose(1, 2)
        q = rotary_embedding(q, positions, self.rope_base)
        k = rotary_embedding(k, positions, self.rope_base)
        group = self.n_heads // self.n_kv_heads
        if group > 1:  # query heads h*group .. h*group+group-1 share key/value head h
            k = k.repeat_interleave(group, dim=1)
            v = v.repeat_interleave(group, dim=1)
        out, _ = scaled_dot_product_attention(q, k, v, mask)
        x = x + a.o_proj(out.transpose(1, 2).reshape(B, T, self.n_heads * self.head_dim))
        h = rms_norm(x, self.mlp_norm, self.norm_eps)
        return x + swiglu(h, self.gate_proj.weight, self.up_proj.weight, self.down_proj.weight)
        ### END SOLUTION


class DecoderLM(nn.Module):
    """A Llama-architecture decoder-only language model.

    ``input_ids -> embed_tokens -> layers[0] -> ... -> layers[-1] -> rms_norm(final_norm) -> lm_head``.

    Submodules and parameters (names are part of the spec; graders load weights by these names):
        embed_tokens: ``Embedding(vocab_size, d_model)``.
        layers: ``ModuleList`` of ``n_layers`` ``DecoderBlock(d_model, n_heads, d_ff, n_kv_heads,
            norm_eps=norm_eps, rope_base=rope_base, attention_bias=attention_bias)``.
        final_norm: ``Parameter (d_model,)``, initialised to ones.
        lm_head: ``Linear(d_model, vocab_size, bias=False)``; with ``tie_embeddings=True`` its weight
            **is** ``embed_tokens.weight`` (one shared parameter, as in SmolLM2 and Llama 3.2 1B).
    Attribute ``norm_eps`` keeps the argument.

    Args:
        vocab_size, d_model, n_layers, n_heads, d_ff: sizes.
        n_kv_heads: key/value heads (``None``: ``n_heads``).
        rope_base, norm_eps, attention_bias: passed to every block (``norm_eps`` also to the final norm).
        tie_embeddings: share the embedding matrix with the LM head.
    """

    def __init__(self, vocab_size, d_model, n_layers, n_heads, d_ff, n_kv_heads=None, *, rope_base=10000.0,
                 norm_eps=1e-6, tie_embeddings=False, attention_bias=False):
        super().__init__()
        ### BEGIN SOLUTION
        self.norm_eps = norm_eps
        self.embed_tokens = nn.Embedding(vocab_size, d_model)
        self.layers = nn.ModuleList(
            DecoderBlock(d_model, n_heads, d_ff, n_kv_heads, norm_eps=norm_eps, rope_base=rope_base,
                         attention_bias=attention_bias) for _ in range(n_layers))
        self.final_norm = nn.Parameter(torch.ones(d_model))
        self.lm_head = nn.Linear(d_model, vocab_size, bias=False)
        if tie_embeddings:
            self.lm_head.weight = self.embed_tokens.weight
        ### END SOLUTION

    def forward(self, input_ids, attention_mask=None, position_ids=None):
        """Next-token logits at every position.

        Args:
            input_ids: ``(B, T)`` long.
            attention_mask: ``(B, T)`` of 0/1 (or bool) as a tokenizer returns it, left or right
                padding; ``None``: no padding. Real tokens never attend to padding (``decoder_mask``).
            position_ids: ``(B, T)`` or ``(T,)`` RoPE positions; ``None``: ``0 .. T-1`` in every row (as
                transformers). For a left-padded batch pass positions counted from each row's first real
                token (e.g. ``(attention_mask.cumsum(-1) - 1).clamp(min=0)``) to get the logits each row
                would get alone.

        Returns:
            ``(B, T, vocab_size)`` logits, equal to ``LlamaForCausalLM(...)(input_ids,
            attention_mask=..., position_ids=...).logits`` with the same weights to 1e-4 at every
            non-padding position. Padding positions hold unspecified (finite) values.
        """
        ### BEGIN SOLUTION
        if input_ids.dim() != 2:
            raise ValueError(f"input_ids must have shape (B, T), got {tuple(input_ids.shape)}")
        B, T = input_ids.shape
        if attention_mask is None:
            attention_mask = torch.ones(B, T, dtype=torch.long, device=input_ids.device)
        mask = decoder_mask(attention_mask)  # (B, 1, T, T)
        positions = torch.arange(T, device=input_ids.device) if position_ids is None else position_ids
        h = self.embed_tokens(input_ids)
        for layer in self.layers:
            h = layer(h, mask, positions)
        return self.lm_head(rms_norm(h, self.final_norm, self.norm_eps))
        ### END SOLUTION

    @classmethod
    def from_hf(cls, model):
        """A ``DecoderLM`` holding a copy of every weight of a transformers ``LlamaForCausalLM``.

        Sizes, ``rms_norm_eps``, the RoPE base (``config.rope_parameters["rope_theta"]``),
        ``attention_bias`` and ``tie_word_embeddings`` come from ``model.config``; the result is in
        eval mode, with the dtype of ``model``'s weights, and shares no tensor with ``model``.

        Raises:
            ValueError: for a config this architecture cannot express: an activation other than SiLU,
                MLP biases, ``head_dim != hidden_size // num_attention_heads``, or a RoPE scaling type
                other than ``"default"``.
        """
        ### BEGIN SOLUTION
        cfg = model.config
        if getattr(cfg, "hidden_act", "silu") != "silu":
            raise ValueError(f"only SiLU (SwiGLU) MLPs are supported, got hidden_act={cfg.hidden_act!r}")
        if getattr(cfg, "mlp_bias", False):
            raise ValueError("MLP biases are not supported")
        head_dim = getattr(cfg, "head_dim", None) or cfg.hidden_size // cfg.num_attention_heads
        if head_dim != cfg.hidden_size // cfg.num_attention_heads:
            raise ValueError(f"head_dim={head_dim} differs from hidden_size // num_attention_heads")
        rope = dict(getattr(cfg, "rope_parameters", None) or {})
        if rope.get("rope_type", "default") != "default":
            raise ValueError(f"RoPE scaling {rope['rope_type']!r} is not supported")
        base = rope.get("rope_theta", getattr(cfg, "rope_theta", 10000.0))
        n_kv = getattr(cfg, "num_key_value_heads", None) or cfg.num_attention_heads
        lm = cls(cfg.vocab_size, cfg.hidden_size, cfg.num_hidden_layers, cfg.num_attention_heads,
                 cfg.intermediate_size, n_kv, rope_base=float(base), norm_eps=float(cfg.rms_norm_eps),
                 tie_embeddings=bool(getattr(cfg, "tie_word_embeddings", False)),
                 attention_bias=bool(getattr(cfg, "attention_bias", False)))
        src = model.state_dict()
        ours = {"embed_tokens.weight": "model.embed_tokens.weight", "final_norm": "model.norm.weight",
                "lm_head.weight": "lm_head.weight"}
        for i in range(cfg.num_hidden_layers):
            hf, me = f"model.layers.{i}.", f"layers.{i}."
            ours[me + "attn_norm"] = hf + "input_layernorm.weight"
            ours[me + "mlp_norm"] = hf + "post_attention_layernorm.weight"
            for p in ("q_proj", "k_proj", "v_proj", "o_proj"):
                ours[f"{me}attn.{p}.weight"] = f"{hf}self_attn.{p}.weight"
                if lm.layers[i].attn.q_proj.bias is not None:
                    ours[f"{me}attn.{p}.bias"] = f"{hf}self_attn.{p}.bias"
            for p in ("gate_proj", "up_proj", "down_proj"):
                ours[f"{me}{p}.weight"] = f"{hf}mlp.{p}.weight"
        if lm.lm_head.weight is lm.embed_tokens.weight:
            del ours["lm_head.weight"]  # shared: copied once, with the embedding
        lm = lm.to(next(model.parameters()).dtype)
        params = dict(lm.named_parameters())
        with torch.no_grad():
            for name, hf_name in ours.items():
                params[name].copy_(src[hf_name])
        return lm.eval()
        ### END SOLUTION


def next_token_loss(logits, input_ids, attention_mask=None):
    """Mean cross-entropy of predicting token ``t + 1`` from the logits at position ``t``.

    The pair ``(t, t + 1)`` counts when both positions are real tokens (``attention_mask`` 1): padding
    is never a target and never a context. The mean is over all counted pairs of the batch (one
    token, one vote), as transformers' causal-LM loss.

    Args:
        logits: ``(B, T, V)`` float.
        input_ids: ``(B, T)`` long: the tokens the logits were computed from.
        attention_mask: ``(B, T)`` of 0/1 or bool; ``None``: no padding.

    Returns:
        A 0-dimensional tensor (float32 for half-precision logits, else the dtype of ``logits``), through
    which gradients flow back to ``logits``. For
        unpadded and right-padded batches it equals ``model(input_ids, attention_mask=...,
        labels=input_ids.masked_fill(attention_mask == 0, -100)).loss`` of a transformers causal LM.

    Raises:
        ValueError: on mismatched shapes, or when no pair counts (e.g. ``T == 1``).
    """
    ### BEGIN SOLUTION
    if logits.dim() != 3 or input_ids.shape != logits.shape[:2]:
        raise ValueError(f"logits must be (B, T, V) and input_ids (B, T); got {tuple(logits.shape)} and "
                         f"{tuple(input_ids.shape)}")
    if attention_mask is not None and attention_mask.shape != input_ids.shape:
        raise ValueError(f"attention_mask must have shape {tuple(input_ids.shape)}, got {tuple(attention_mask.shape)}")
    if logits.dtype in (torch.float16, torch.bfloat16):
        logits = logits.float()
    pred, target = logits[:, :-1], input_ids[:, 1:]
    if attention_mask is None:
        counted = torch.ones_like(target, dtype=torch.bool)
    else:
        real = attention_mask != 0
        counted = real[:, :-1] & real[:, 1:]
    if not counted.any():
        raise ValueError("no position has a real next token to predict")
    return F.cross_entropy(pred[counted], target[counted])
    ### END SOLUTION
