"""The original Transformer: an encoder-decoder for translation (notes §2.1).

Translation reads a whole sentence, then writes another. The 2017 Transformer splits the work in two:

* the **encoder** reads the source sentence. Its self-attention is *bidirectional*: every source token
  sees every other (real) source token, before and after it. Its output, the *memory*, holds one
  vector per source token;
* the **decoder** writes the target sentence one token at a time. Its self-attention is *causal* (a
  position sees only the target tokens before it, as in a decoder-only LM), and a second attention,
  **cross-attention**, lets every target position read the memory: queries come from the decoder,
  keys and values from the encoder's output. That is where the model looks up which source words it
  is translating.

Attention alone ignores word order, so the original adds a fixed **sinusoidal position encoding** to
the (scaled) token embeddings. Each block is a residual sub-layer stack with LayerNorm and a ReLU
feed-forward network; this module uses the **pre-norm** arrangement (normalise the input of each
sub-layer, add its output back to the un-normalised stream), which trains more stably than the
paper's post-norm and is what ``norm_first=True`` selects in torch's own layers.

The parts are your own: ``MultiHeadAttention`` (topic ``attention``; with ``context=`` it is
cross-attention) and the masks ``padding_mask`` and ``decoder_mask`` (topic ``causal_mask``). Masks
follow the kit's convention: bool, True where a query may attend to a key.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

try:  # your own parts: attention.py and causal_mask.py sit next to this file
    from .attention import MultiHeadAttention
    from .causal_mask import causal_mask, decoder_mask, padding_mask
except ImportError as missing:  # graded alone: a notebook defines these parts in its own cells
    if missing.name is not None and not missing.name.endswith((".attention", ".causal_mask")):
        raise  # an error inside your attention.py or causal_mask.py


def sinusoidal_positions(n_positions, d_model):
    """The sinusoidal position encoding of "Attention Is All You Need" (Vaswani et al., 2017).

    Row ``pos``, features ``2i`` and ``2i + 1`` share one frequency ``10000 ** (-2i / d_model)``::

        P[pos, 2i]     = sin(pos * 10000 ** (-2i / d_model))
        P[pos, 2i + 1] = cos(pos * 10000 ** (-2i / d_model))

    sin on the even features, cos on the odd ones. An odd ``d_model`` simply has one more sin feature
    than cos features.

    Args:
        n_positions: number of positions (rows), ``>= 0``.
        d_model: number of features (columns), ``>= 1``.

    Returns:
        A float32 tensor of shape ``(n_positions, d_model)``.

    Raises:
        ValueError: if ``n_positions < 0`` or ``d_model < 1``.
    """
    ### BEGIN SOLUTION
    for name, n in (("n_positions", n_positions), ("d_model", d_model)):
        if isinstance(n, bool) or not isinstance(n, int):
            raise TypeError(f"{name} must be an int, got {type(n).__name__}")
    if n_positions < 0:
        raise ValueError(f"n_positions must be >= 0, got {n_positions}")
    if d_model < 1:
        raise ValueError(f"d_model must be >= 1, got {d_model}")
    pos = torch.arange(n_positions, dtype=torch.float64)[:, None]  # (n, 1)
    freq = 10000.0 ** (-torch.arange(0, d_model, 2, dtype=torch.float64) / d_model)  # (ceil(d/2),)
    angles = pos * freq  # float64 angles: exact enough at every position
    out = torch.zeros(n_positions, d_model, dtype=torch.float64)
    out[:, 0::2] = torch.sin(angles)
    out[:, 1::2] = torch.cos(angles[:, : d_model // 2])
    return out.float()
    ### END SOLUTION


def _feed_forward(x, linear1, linear2):
    """The position-wise ReLU network of every block: ``linear2(relu(linear1(x)))``."""
    return linear2(F.relu(linear1(x)))


def _copy_attention(mine, theirs):
    """Copy a ``torch.nn.MultiheadAttention`` into a ``MultiHeadAttention`` with biases."""
    if not theirs._qkv_same_embed_dim:
        raise ValueError("only attention layers with kdim = vdim = d_model can be copied")
    d = theirs.embed_dim
    w = theirs.in_proj_weight.detach()
    b = theirs.in_proj_bias.detach() if theirs.in_proj_bias is not None else torch.zeros(3 * d)
    with torch.no_grad():
        for i, proj in enumerate((mine.q_proj, mine.k_proj, mine.v_proj)):  # in_proj stacks q, k, v
            proj.weight.copy_(w[i * d:(i + 1) * d])
            proj.bias.copy_(b[i * d:(i + 1) * d])
        mine.o_proj.weight.copy_(theirs.out_proj.weight)
        mine.o_proj.bias.copy_(theirs.out_proj.bias if theirs.out_proj.bias is not None else torch.zeros(d))


def _copy_weight_and_bias(mine, theirs):
    """Copy a LayerNorm's or Linear's weight and bias (zeros where the torch layer has no bias)."""
    with torch.no_grad():
        mine.weight.copy_(theirs.weight)
        mine.bias.copy_(theirs.bias if theirs.bias is not None else torch.zeros_like(mine.bias))


def _check_torch_layer(layer, kind):
    """The torch layer must be the architecture this module implements, or ``ValueError``."""
    if not isinstance(layer, kind):
        raise TypeError(f"expected a torch.nn.{kind.__name__}, got {type(layer).__name__}")
    if not layer.norm_first:
        raise ValueError("the torch layer is post-norm (norm_first=False); this layer is pre-norm")
    if layer.activation is not F.relu and not isinstance(layer.activation, nn.ReLU):
        raise ValueError(f"the torch layer's activation is {layer.activation}, not ReLU")
    if not layer.self_attn.batch_first:
        raise ValueError("the torch layer must be built with batch_first=True")


class EncoderLayer(nn.Module):
    """One pre-norm encoder block::

        h   = x + self_attn(norm1(x), mask)            # bidirectional self-attention
        out = h + linear2(relu(linear1(norm2(h))))     # position-wise feed-forward

    Submodules (names are part of the spec; graders load weights by these names):
        self_attn: ``MultiHeadAttention(d_model, n_heads, bias=True)``.
        norm1, norm2: ``LayerNorm(d_model, eps=norm_eps)``.
        linear1: ``Linear(d_model, d_ff)``; linear2: ``Linear(d_ff, d_model)``.
    Dropout (probability ``dropout``) is applied to each sub-layer's output before it is added back,
    in training mode only.

    Args:
        d_model, n_heads, d_ff: model width, attention heads, hidden width of the feed-forward network.
        dropout: dropout probability.
        norm_eps: ``eps`` of both LayerNorms.

    Raises:
        ValueError: if ``d_model`` is not divisible by ``n_heads`` (from ``MultiHeadAttention``).
    """

    def __init__(self, d_model, n_heads, d_ff, *, dropout=0.0, norm_eps=1e-5):
        super().__init__()
        ### BEGIN SOLUTION
        self.self_attn = MultiHeadAttention(d_model, n_heads, bias=True)
        self.norm1 = nn.LayerNorm(d_model, eps=norm_eps)
        self.norm2 = nn.LayerNorm(d_model, eps=norm_eps)
        self.linear1 = nn.Linear(d_model, d_ff)
        self.linear2 = nn.Linear(d_ff, d_model)
        self.dropout = nn.Dropout(dropout)
        ### END SOLUTION

    def forward(self, x, mask=None):
        """Apply the block.

        Args:
            x: ``(B, S, d_model)``.
            mask: bool, broadcastable to ``(B, n_heads, S, S)``, True = may attend (e.g.
                ``padding_mask(src_mask)``); ``None``: every position attends to every position.

        Returns:
            ``(B, S, d_model)``.
        """
        ### BEGIN SOLUTION
        x = x + self.dropout(self.self_attn(self.norm1(x), mask))
        return x + self.dropout(_feed_forward(self.norm2(x), self.linear1, self.linear2))
        ### END SOLUTION

    @classmethod
    def from_torch(cls, layer):
        """A new ``EncoderLayer`` holding copies of a torch layer's weights, in eval mode.

        ``layer`` is a ``torch.nn.TransformerEncoderLayer`` built with ``batch_first=True,
        norm_first=True, activation="relu"``. Its attention packs the query, key and value projections
        in one ``in_proj_weight`` (``3 * d_model`` rows: q, then k, then v) and ``in_proj_bias``; the
        output projection is ``out_proj``. The LayerNorms' ``eps`` is copied too. With the same mask
        (torch's ``src_key_padding_mask`` is True at *padding*, the opposite of the kit's masks) the
        outputs equal torch's to 1e-5 (float32). A layer built with ``bias=False`` is copied with zero
        biases.

        Raises:
            TypeError: if ``layer`` is not a ``torch.nn.TransformerEncoderLayer``.
            ValueError: if it is post-norm (``norm_first=False``), its activation is not ReLU, or it is
                not ``batch_first``.
        """
        ### BEGIN SOLUTION
        _check_torch_layer(layer, nn.TransformerEncoderLayer)
        d_model, n_heads = layer.self_attn.embed_dim, layer.self_attn.num_heads
        mine = cls(d_model, n_heads, layer.linear1.out_features, norm_eps=layer.norm1.eps)
        _copy_attention(mine.self_attn, layer.self_attn)
        for name in ("norm1", "norm2", "linear1", "linear2"):
            _copy_weight_and_bias(getattr(mine, name), getattr(layer, name))
        return mine.eval()
        ### END SOLUTION


class DecoderLayer(nn.Module):
    """One pre-norm decoder block::

        h   = x + self_attn(norm1(x), self_mask)                         # causal self-attention
        h   = h + cross_attn(norm2(h), memory_mask, context=memory)      # queries from the decoder,
                                                                         # keys/values from the encoder
        out = h + linear2(relu(linear1(norm3(h))))                       # feed-forward

    The memory (the encoder's output) is used as it is: it is not normalised by this layer.

    Submodules (names are part of the spec; graders load weights by these names):
        self_attn, cross_attn: ``MultiHeadAttention(d_model, n_heads, bias=True)``.
        norm1, norm2, norm3: ``LayerNorm(d_model, eps=norm_eps)``.
        linear1: ``Linear(d_model, d_ff)``; linear2: ``Linear(d_ff, d_model)``.
    Dropout (probability ``dropout``) is applied to each sub-layer's output before it is added back,
    in training mode only.

    Args:
        d_model, n_heads, d_ff: model width, attention heads, hidden width of the feed-forward network.
        dropout: dropout probability.
        norm_eps: ``eps`` of the three LayerNorms.

    Raises:
        ValueError: if ``d_model`` is not divisible by ``n_heads`` (from ``MultiHeadAttention``).
    """

    def __init__(self, d_model, n_heads, d_ff, *, dropout=0.0, norm_eps=1e-5):
        super().__init__()
        ### BEGIN SOLUTION
        self.self_attn = MultiHeadAttention(d_model, n_heads, bias=True)
        self.cross_attn = MultiHeadAttention(d_model, n_heads, bias=True)
        self.norm1 = nn.LayerNorm(d_model, eps=norm_eps)
        self.norm2 = nn.LayerNorm(d_model, eps=norm_eps)
        self.norm3 = nn.LayerNorm(d_model, eps=norm_eps)
        self.linear1 = nn.Linear(d_model, d_ff)
        self.linear2 = nn.Linear(d_ff, d_model)
        self.dropout = nn.Dropout(dropout)
        ### END SOLUTION

    def forward(self, x, memory, self_mask=None, memory_mask=None):
        """Apply the block.

        The cross-attention is ``cross_attn(norm2(h), memory_mask, context=memory)``: queries from the
        decoder, keys and values from the memory.

        Args:
            x: ``(B, T, d_model)``, the target sequence so far.
            memory: ``(B, S, d_model)``, the encoder's output.
            self_mask: bool, broadcastable to ``(B, n_heads, T, T)``, True = may attend (e.g.
                ``decoder_mask(tgt_mask)``); ``None``: the plain causal mask ``causal_mask(T)``.
            memory_mask: bool, broadcastable to ``(B, n_heads, T, S)`` (e.g. ``padding_mask(src_mask)``);
                ``None``: every target position may read every source position.

        Returns:
            ``(B, T, d_model)``.
        """
        ### BEGIN SOLUTION
        if self_mask is None:
            self_mask = causal_mask(x.shape[1], device=x.device)
        x = x + self.dropout(self.self_attn(self.norm1(x), self_mask))
        x = x + self.dropout(self.cross_attn(self.norm2(x), memory_mask, context=memory))
        return x + self.dropout(_feed_forward(self.norm3(x), self.linear1, self.linear2))
        ### END SOLUTION

    @classmethod
    def from_torch(cls, layer):
        """A new ``DecoderLayer`` holding copies of a torch layer's weights, in eval mode.

        ``layer`` is a ``torch.nn.TransformerDecoderLayer`` built with ``batch_first=True,
        norm_first=True, activation="relu"``: its ``self_attn`` becomes ``self_attn``, its
        ``multihead_attn`` (the cross-attention) becomes ``cross_attn``, ``norm1/2/3``, ``linear1/2``
        keep their names; packed ``in_proj_weight`` rows are q, then k, then v. With the same masks
        (torch's ``tgt_mask``/``*_key_padding_mask`` are True where attention is *forbidden*) the
        outputs equal torch's to 1e-5 (float32). A layer built with ``bias=False`` is copied with zero
        biases.

        Raises:
            TypeError: if ``layer`` is not a ``torch.nn.TransformerDecoderLayer``.
            ValueError: if it is post-norm (``norm_first=False``), its activation is not ReLU, or it is
                not ``batch_first``.
        """
        ### BEGIN SOLUTION
        _check_torch_layer(layer, nn.TransformerDecoderLayer)
        d_model, n_heads = layer.self_attn.embed_dim, layer.self_attn.num_heads
        mine = cls(d_model, n_heads, layer.linear1.out_features, norm_eps=layer.norm1.eps)
        _copy_attention(mine.self_attn, layer.self_attn)
        _copy_attention(mine.cross_attn, layer.multihead_attn)
        for name in ("norm1", "norm2", "norm3", "linear1", "linear2"):
            _copy_weight_and_bias(getattr(mine, name), getattr(layer, name))
        return mine.eval()
        ### END SOLUTION


def _check_ids(ids, mask, max_len, what):
    """Token ids ``(B, L)`` with ``L <= max_len`` and a matching 0/1 mask (``None``: all ones)."""
    if not isinstance(ids, torch.Tensor) or ids.dim() != 2:
        raise ValueError(f"{what}_ids must have shape (B, length), got {tuple(getattr(ids, 'shape', ()))}")
    if ids.shape[1] > max_len:
        raise ValueError(f"{what}_ids has {ids.shape[1]} positions, more than max_len={max_len}")
    if mask is None:
        return torch.ones_like(ids)
    if not isinstance(mask, torch.Tensor) or mask.shape != ids.shape:
        raise ValueError(f"{what}_mask must have the shape of {what}_ids {tuple(ids.shape)}, "
                         f"got {tuple(getattr(mask, 'shape', ()))}")
    return mask


class EncoderDecoder(nn.Module):
    """The whole encoder-decoder Transformer (pre-norm).

    Embedding of a sequence: ``embed(ids) * sqrt(d_model) + P[:L]`` with ``P =
    sinusoidal_positions(max_len, d_model)`` (kept as a buffer that is not saved in the state dict),
    then dropout. Then::

        memory = encoder_norm(encoder_layers(embedded source, padding_mask(src_mask)))
        h      = decoder_layers(embedded target, memory, decoder_mask(tgt_mask), padding_mask(src_mask))
        logits = out_proj(decoder_norm(h))

    Submodules (names are part of the spec; graders load weights by these names):
        src_embed: ``Embedding(src_vocab, d_model, padding_idx=pad_id)``;
        tgt_embed: ``Embedding(tgt_vocab, d_model, padding_idx=pad_id)``;
        encoder_layers: ``ModuleList`` of ``n_layers`` ``EncoderLayer(d_model, n_heads, d_ff,
        dropout=dropout)``; decoder_layers: the same with ``DecoderLayer``;
        encoder_norm, decoder_norm: ``LayerNorm(d_model)`` (pre-norm stacks need a final norm);
        out_proj: ``Linear(d_model, tgt_vocab)``.
    Attributes ``d_model``, ``max_len`` and ``pad_id`` keep the arguments.

    Args:
        src_vocab, tgt_vocab: vocabulary sizes of the two languages.
        d_model, n_heads, n_layers, d_ff: sizes (``n_layers`` encoder and ``n_layers`` decoder layers).
        max_len: the longest source or target sequence the model accepts.
        pad_id: the padding token of both vocabularies.
        dropout: dropout probability (embeddings and every sub-layer).

    Raises:
        ValueError: if ``d_model`` is not divisible by ``n_heads``, or a size is not positive.
    """

    def __init__(self, src_vocab, tgt_vocab, *, d_model, n_heads, n_layers, d_ff, max_len, pad_id=0,
                 dropout=0.0):
        super().__init__()
        ### BEGIN SOLUTION
        for name, n in (("src_vocab", src_vocab), ("tgt_vocab", tgt_vocab), ("d_model", d_model),
                        ("n_heads", n_heads), ("n_layers", n_layers), ("d_ff", d_ff), ("max_len", max_len)):
            if n < 1:
                raise ValueError(f"{name} must be >= 1, got {n}")
        if d_model % n_heads:
            raise ValueError(f"d_model={d_model} is not divisible by n_heads={n_heads}")
        self.d_model, self.max_len, self.pad_id = d_model, max_len, pad_id
        self.src_embed = nn.Embedding(src_vocab, d_model, padding_idx=pad_id)
        self.tgt_embed = nn.Embedding(tgt_vocab, d_model, padding_idx=pad_id)
        self.encoder_layers = nn.ModuleList(EncoderLayer(d_model, n_heads, d_ff, dropout=dropout)
                                            for _ in range(n_layers))
        self.decoder_layers = nn.ModuleList(DecoderLayer(d_model, n_heads, d_ff, dropout=dropout)
                                            for _ in range(n_layers))
        self.encoder_norm = nn.LayerNorm(d_model)
        self.decoder_norm = nn.LayerNorm(d_model)
        self.out_proj = nn.Linear(d_model, tgt_vocab)
        self.dropout = nn.Dropout(dropout)
        self.register_buffer("positions", sinusoidal_positions(max_len, d_model), persistent=False)
        ### END SOLUTION

    def encode(self, src_ids, src_mask=None):
        """Run the encoder on the source embedded as ``embed(ids) * sqrt(d_model) + P[:L]`` (see the class).

        Args:
            src_ids: ``(B, S)`` long, ``S <= max_len``.
            src_mask: ``(B, S)`` of 0/1 (or bool), 1 = real token, left or right padding; ``None``: no
                padding. Padding is never attended to; every real token sees every real token.

        Returns:
            memory ``(B, S, d_model)``, after ``encoder_norm``.

        Raises:
            ValueError: if ``src_ids`` is not 2-dimensional, longer than ``max_len``, or the mask's shape
                differs.
        """
        ### BEGIN SOLUTION
        src_mask = _check_ids(src_ids, src_mask, self.max_len, "src")
        S = src_ids.shape[1]
        h = self.src_embed(src_ids) * math.sqrt(self.d_model) + self.positions[:S]
        h = self.dropout(h)
        mask = padding_mask(src_mask)  # (B, 1, 1, S): a real token sees all real tokens
        for layer in self.encoder_layers:
            h = layer(h, mask)
        return self.encoder_norm(h)
        ### END SOLUTION

    def decode(self, tgt_ids, memory, src_mask=None, tgt_mask=None):
        """Run the decoder on the target tokens so far (teacher forcing in training).

        Args:
            tgt_ids: ``(B, T)`` long, ``T <= max_len``; usually BOS followed by the target tokens.
            memory: ``(B, S, d_model)`` from ``encode``.
            src_mask: the ``(B, S)`` 0/1 source mask given to ``encode`` (cross-attention never reads
                source padding); ``None``: no padding.
            tgt_mask: ``(B, T)`` 0/1 target mask; ``None``: no padding. Self-attention is causal and
                skips target padding (``decoder_mask``).

        Returns:
            logits ``(B, T, tgt_vocab)``: at position ``t`` the scores of the target token ``t + 1``.

        Raises:
            ValueError: if ``tgt_ids`` is not 2-dimensional, longer than ``max_len``, a mask's shape
                differs, or ``memory`` is not ``(B, S, d_model)``.
        """
        ### BEGIN SOLUTION
        tgt_mask = _check_ids(tgt_ids, tgt_mask, self.max_len, "tgt")
        if memory.dim() != 3 or memory.shape[0] != tgt_ids.shape[0] or memory.shape[2] != self.d_model:
            raise ValueError(f"memory must have shape ({tgt_ids.shape[0]}, S, {self.d_model}), "
                             f"got {tuple(memory.shape)}")
        if src_mask is None:
            src_mask = torch.ones(memory.shape[:2], dtype=torch.long, device=memory.device)
        T = tgt_ids.shape[1]
        h = self.tgt_embed(tgt_ids) * math.sqrt(self.d_model) + self.positions[:T]
        h = self.dropout(h)
        self_mask = decoder_mask(tgt_mask)  # (B, 1, T, T): causal and no target padding
        memory_mask = padding_mask(src_mask)  # (B, 1, 1, S): no source padding
        for layer in self.decoder_layers:
            h = layer(h, memory, self_mask, memory_mask)
        return self.out_proj(self.decoder_norm(h))
        ### END SOLUTION

    def forward(self, src_ids, src_mask, tgt_ids, tgt_mask):
        """``decode(tgt_ids, encode(src_ids, src_mask), src_mask, tgt_mask)``: logits ``(B, T, tgt_vocab)``."""
        ### BEGIN SOLUTION
        return self.decode(tgt_ids, self.encode(src_ids, src_mask), src_mask, tgt_mask)
        ### END SOLUTION


def greedy_translate(model, src_ids, src_mask, *, bos_id, eos_id, max_len):
    """Translate a batch by greedy decoding: always the most likely next token.

    Encode the source once (``model.encode(src_ids, src_mask)``); start every row with ``[bos_id]``;
    at each step call ``model.decode(tgt, memory, src_mask, None)`` on the tokens so far and append
    the argmax of the logits at the last position (ties: the lowest id, as ``torch.argmax``). A row is
    finished when it produces ``eos_id``; decoding stops when every row is finished or after
    ``max_len`` steps. Runs without gradients.

    Args:
        model: anything with ``encode`` and ``decode`` as ``EncoderDecoder`` has them.
        src_ids: ``(B, S)`` long; src_mask: ``(B, S)`` 0/1 (``None``: no padding).
        bos_id, eos_id: the target's begin- and end-of-sequence tokens.
        max_len: the most tokens generated per row (EOS included), ``>= 1``.

    Returns:
        One list of ints per row, without BOS, stopping at (and excluding) EOS: a row that produced no
        EOS has ``max_len`` tokens. Nothing a row would produce after its EOS appears.

    Raises:
        ValueError: if ``src_ids`` is not 2-dimensional or ``max_len < 1``.
    """
    ### BEGIN SOLUTION
    if not isinstance(src_ids, torch.Tensor) or src_ids.dim() != 2:
        raise ValueError(f"src_ids must have shape (B, S), got {tuple(getattr(src_ids, 'shape', ()))}")
    if max_len < 1:
        raise ValueError(f"max_len must be >= 1, got {max_len}")
    B = src_ids.shape[0]
    with torch.no_grad():
        memory = model.encode(src_ids, src_mask)
        tgt = torch.full((B, 1), bos_id, dtype=torch.long, device=src_ids.device)
        out = [[] for _ in range(B)]
        done = [False] * B
        for _ in range(max_len):
            logits = model.decode(tgt, memory, src_mask, None)
            step = logits[:, -1].argmax(-1)
            for b in range(B):
                if not done[b]:
                    if int(step[b]) == eos_id:
                        done[b] = True
                    else:
                        out[b].append(int(step[b]))
            if all(done):
                break
            tgt = torch.cat([tgt, step[:, None]], dim=1)
    return out
    ### END SOLUTION
