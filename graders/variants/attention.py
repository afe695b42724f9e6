"""Realistic buggy variants of ``attention`` (SEMANTICS.md §8 lists the classics).

Each function replaces one name in the reference module; the grader's tests check that every
variant loses points, and the diagnoser names the mistake when a student's output matches.
"""
import math

import torch

from llmlab.grading.variants import Variants

bugs = Variants("attention")


def _softmax_rows(scores):
    return torch.softmax(scores, dim=-1)


@bugs.bug("no_scaling", replaces="scaled_dot_product_attention",
          mistake="scores are not scaled: multiply q·kᵀ by 1/sqrt(E) (or by `scale` when given)")
def sdpa_no_scaling(q, k, v, mask=None, *, scale=None):
    scores = q @ k.transpose(-2, -1)
    if mask is not None:
        scores = scores.masked_fill(~mask, float("-inf"))
    w = torch.nan_to_num(torch.softmax(scores, dim=-1))
    return w @ v, w


@bugs.bug("scale_by_E", replaces="scaled_dot_product_attention",
          mistake="scores are divided by E instead of sqrt(E)")
def sdpa_scale_by_E(q, k, v, mask=None, *, scale=None):
    scale = 1.0 / q.shape[-1] if scale is None else scale
    scores = (q @ k.transpose(-2, -1)) * scale
    if mask is not None:
        scores = scores.masked_fill(~mask, float("-inf"))
    w = torch.nan_to_num(torch.softmax(scores, dim=-1))
    return w @ v, w


@bugs.bug("scale_after_softmax", replaces="scaled_dot_product_attention",
          mistake="the scale is applied after the softmax: scale the scores, then normalise")
def sdpa_scale_after_softmax(q, k, v, mask=None, *, scale=None):
    scale = 1.0 / math.sqrt(q.shape[-1]) if scale is None else scale
    scores = q @ k.transpose(-2, -1)
    if mask is not None:
        scores = scores.masked_fill(~mask, float("-inf"))
    w = torch.nan_to_num(torch.softmax(scores, dim=-1)) * scale
    return w @ v, w


@bugs.bug("softmax_over_queries", replaces="scaled_dot_product_attention",
          mistake="weights are normalised over queries, not keys: did you take the softmax over the wrong axis "
                  "(dim=-2 instead of dim=-1)?")
def sdpa_softmax_over_queries(q, k, v, mask=None, *, scale=None):
    scale = 1.0 / math.sqrt(q.shape[-1]) if scale is None else scale
    scores = (q @ k.transpose(-2, -1)) * scale
    if mask is not None:
        scores = scores.masked_fill(~mask, float("-inf"))
    w = torch.nan_to_num(torch.softmax(scores, dim=-2))
    return w @ v, w


@bugs.bug("mask_inverted", replaces="scaled_dot_product_attention",
          mistake="the mask is inverted: True means the query MAY attend to the key (torch SDPA's convention, "
                  "the opposite of nn.MultiheadAttention's)")
def sdpa_mask_inverted(q, k, v, mask=None, *, scale=None):
    scale = 1.0 / math.sqrt(q.shape[-1]) if scale is None else scale
    scores = (q @ k.transpose(-2, -1)) * scale
    if mask is not None:
        scores = scores.masked_fill(mask, float("-inf"))
    w = torch.nan_to_num(torch.softmax(scores, dim=-1))
    return w @ v, w


@bugs.bug("nan_on_fully_masked_rows", replaces="scaled_dot_product_attention",
          mistake="a query row whose mask allows no key gives NaN: a softmax over all -inf is 0/0; give such rows "
                  "zero weights (and a zero output)")
def sdpa_nan_rows(q, k, v, mask=None, *, scale=None):
    scale = 1.0 / math.sqrt(q.shape[-1]) if scale is None else scale
    scores = (q @ k.transpose(-2, -1)) * scale
    if mask is not None:
        scores = scores.masked_fill(~mask, float("-inf"))
    w = torch.softmax(scores, dim=-1)
    return w @ v, w


@bugs.bug("uniform_on_fully_masked_rows", replaces="scaled_dot_product_attention",
          mistake="masked scores are filled with a large finite negative number: a row with no allowed key then "
                  "averages all values uniformly instead of giving zeros")
def sdpa_finfo_min(q, k, v, mask=None, *, scale=None):
    scale = 1.0 / math.sqrt(q.shape[-1]) if scale is None else scale
    scores = (q @ k.transpose(-2, -1)) * scale
    if mask is not None:
        scores = scores.masked_fill(~mask, torch.finfo(scores.dtype).min)
    w = torch.softmax(scores, dim=-1)
    return w @ v, w


@bugs.bug("mask_multiplied", replaces="scaled_dot_product_attention",
          mistake="the mask is multiplied into the scores (0 instead of -inf): forbidden keys still get weight")
def sdpa_mask_multiplied(q, k, v, mask=None, *, scale=None):
    scale = 1.0 / math.sqrt(q.shape[-1]) if scale is None else scale
    scores = (q @ k.transpose(-2, -1)) * scale
    if mask is not None:
        scores = scores * mask
    w = torch.softmax(scores, dim=-1)
    return w @ v, w


@bugs.bug("mask_after_softmax", replaces="scaled_dot_product_attention",
          mistake="the mask is applied after the softmax without renormalising: rows no longer sum to 1")
def sdpa_mask_after_softmax(q, k, v, mask=None, *, scale=None):
    scale = 1.0 / math.sqrt(q.shape[-1]) if scale is None else scale
    w = torch.softmax((q @ k.transpose(-2, -1)) * scale, dim=-1)
    if mask is not None:
        w = w * mask
    return w @ v, w


@bugs.bug("scale_multiplies_default", replaces="scaled_dot_product_attention",
          mistake="a given `scale` is applied on top of 1/sqrt(E): it must replace the default")
def sdpa_scale_on_top(q, k, v, mask=None, *, scale=None):
    s = 1.0 / math.sqrt(q.shape[-1]) * (1.0 if scale is None else scale)
    scores = (q @ k.transpose(-2, -1)) * s
    if mask is not None:
        scores = scores.masked_fill(~mask, float("-inf"))
    w = torch.nan_to_num(torch.softmax(scores, dim=-1))
    return w @ v, w


@bugs.bug("modifies_input_in_place", replaces="scaled_dot_product_attention",
          mistake="an input is modified in place: use out-of-place operations (q * s, not q.mul_(s); masked_fill, "
                  "not masked_fill_)")
def sdpa_in_place(q, k, v, mask=None, *, scale=None):
    q.mul_(1.0 / math.sqrt(q.shape[-1]) if scale is None else scale)
    scores = q @ k.transpose(-2, -1)
    if mask is not None:
        scores = scores.masked_fill(~mask, float("-inf"))
    w = torch.nan_to_num(torch.softmax(scores, dim=-1))
    return w @ v, w


# --- MultiHeadAttention ----------------------------------------------------------------------
@bugs.bug("gqa_heads_tiled", replaces="MultiHeadAttention.forward",
          mistake="grouped-query heads are tiled (repeat) instead of grouped (repeat_interleave): query head h must "
                  "use key/value head h // (n_heads // n_kv_heads)")
def mha_forward_tiled(self, x, mask=None, context=None):
    source = x if context is None else context
    B, L, _ = x.shape
    S = source.shape[1]
    q = self.q_proj(x).view(B, L, self.n_heads, self.head_dim).transpose(1, 2)
    k = self.k_proj(source).view(B, S, self.n_kv_heads, self.head_dim).transpose(1, 2)
    v = self.v_proj(source).view(B, S, self.n_kv_heads, self.head_dim).transpose(1, 2)
    group = self.n_heads // self.n_kv_heads
    k, v = k.repeat(1, group, 1, 1), v.repeat(1, group, 1, 1)
    out, _ = scaled_dot_product_attention(q, k, v, mask)  # noqa: F821 - the reference's own
    return self.o_proj(out.transpose(1, 2).reshape(B, L, -1))


@bugs.bug("heads_split_without_transpose", replaces="MultiHeadAttention.forward",
          mistake="heads are split with view(B, n_heads, L, head_dim) directly: split the features as (B, L, "
                  "n_heads, head_dim) and then transpose, or tokens get mixed across heads")
def mha_forward_bad_split(self, x, mask=None, context=None):
    source = x if context is None else context
    B, L, _ = x.shape
    S = source.shape[1]
    q = self.q_proj(x).reshape(B, self.n_heads, L, self.head_dim)
    k = self.k_proj(source).reshape(B, self.n_kv_heads, S, self.head_dim)
    v = self.v_proj(source).reshape(B, self.n_kv_heads, S, self.head_dim)
    group = self.n_heads // self.n_kv_heads
    k, v = k.repeat_interleave(group, dim=1), v.repeat_interleave(group, dim=1)
    out, _ = scaled_dot_product_attention(q, k, v, mask)  # noqa: F821
    return self.o_proj(out.reshape(B, L, -1))


@bugs.bug("scale_by_d_model", replaces="MultiHeadAttention.forward",
          mistake="scores are scaled by 1/sqrt(d_model): each head must use 1/sqrt(head_dim)")
def mha_forward_d_model_scale(self, x, mask=None, context=None):
    source = x if context is None else context
    B, L, _ = x.shape
    S = source.shape[1]
    q = self.q_proj(x).view(B, L, self.n_heads, self.head_dim).transpose(1, 2)
    k = self.k_proj(source).view(B, S, self.n_kv_heads, self.head_dim).transpose(1, 2)
    v = self.v_proj(source).view(B, S, self.n_kv_heads, self.head_dim).transpose(1, 2)
    group = self.n_heads // self.n_kv_heads
    k, v = k.repeat_interleave(group, dim=1), v.repeat_interleave(group, dim=1)
    out, _ = scaled_dot_product_attention(q, k, v, mask, scale=1 / math.sqrt(self.d_model))  # noqa: F821
    return self.o_proj(out.transpose(1, 2).reshape(B, L, -1))


@bugs.bug("cross_attention_values_from_x", replaces="MultiHeadAttention.forward",
          mistake="in cross-attention the values come from x: keys AND values must come from `context`")
def mha_forward_values_from_x(self, x, mask=None, context=None):
    source = x if context is None else context
    B, L, _ = x.shape
    S = source.shape[1]
    q = self.q_proj(x).view(B, L, self.n_heads, self.head_dim).transpose(1, 2)
    k = self.k_proj(source).view(B, S, self.n_kv_heads, self.head_dim).transpose(1, 2)
    v = self.v_proj(x).view(B, L, self.n_kv_heads, self.head_dim).transpose(1, 2)
    group = self.n_heads // self.n_kv_heads
    k, v = k.repeat_interleave(group, dim=1), v.repeat_interleave(group, dim=1)
    out, _ = scaled_dot_product_attention(q, k, v, mask)  # noqa: F821
    return self.o_proj(out.transpose(1, 2).reshape(B, L, -1))


@bugs.bug("no_output_projection", replaces="MultiHeadAttention.forward",
          mistake="the heads are concatenated but o_proj is never applied")
def mha_forward_no_o_proj(self, x, mask=None, context=None):
    source = x if context is None else context
    B, L, _ = x.shape
    S = source.shape[1]
    q = self.q_proj(x).view(B, L, self.n_heads, self.head_dim).transpose(1, 2)
    k = self.k_proj(source).view(B, S, self.n_kv_heads, self.head_dim).transpose(1, 2)
    v = self.v_proj(source).view(B, S, self.n_kv_heads, self.head_dim).transpose(1, 2)
    group = self.n_heads // self.n_kv_heads
    k, v = k.repeat_interleave(group, dim=1), v.repeat_interleave(group, dim=1)
    out, _ = scaled_dot_product_attention(q, k, v, mask)  # noqa: F821
    return out.transpose(1, 2).reshape(B, L, -1)


@bugs.bug("kv_projections_full_width", replaces="MultiHeadAttention.__init__",
          mistake="k_proj and v_proj project to n_heads*head_dim: with grouped-query attention they have only "
                  "n_kv_heads*head_dim outputs")
def mha_init_full_kv(self, d_model, n_heads, n_kv_heads=None, bias=False):
    torch.nn.Module.__init__(self)
    n_kv_heads = n_heads if n_kv_heads is None else n_kv_heads
    if d_model % n_heads or n_heads % n_kv_heads:
        raise ValueError("bad head counts")
    self.d_model, self.n_heads, self.n_kv_heads = d_model, n_heads, n_heads
    self.head_dim = d_model // n_heads
    self.q_proj = torch.nn.Linear(d_model, d_model, bias=bias)
    self.k_proj = torch.nn.Linear(d_model, d_model, bias=bias)
    self.v_proj = torch.nn.Linear(d_model, d_model, bias=bias)
    self.o_proj = torch.nn.Linear(d_model, d_model, bias=bias)
