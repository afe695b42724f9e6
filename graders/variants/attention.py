"""Realistic buggy variants of ``attention``: each is a patch of the reference (see llmlab.grading.variants).

The grader's tests check that every variant loses points, and the diagnoser names the mistake when a
student's output matches.
"""
from llmlab.grading.variants import Variants

bugs = Variants("attention")

# --- scaled_dot_product_attention ----------------------------------------------------------------
SDPA = "scaled_dot_product_attention"
SCORES = "scores = (q @ k.transpose(-2, -1)) * scale"
MASK_FILL = 'scores = scores.masked_fill(~mask, float("-inf"))'
RETURN = "return weights @ v, weights"
bugs.patch("no_scaling", SDPA, SCORES, "scores = q @ k.transpose(-2, -1)",
           mistake="scores are not scaled: multiply q·kᵀ by 1/sqrt(E) (or by `scale` when given)")
bugs.patch("scale_by_E", SDPA, "scale = 1.0 / math.sqrt(q.shape[-1])", "scale = 1.0 / q.shape[-1]",
           mistake="scores are divided by E instead of sqrt(E)")
bugs.patch("scale_after_softmax", SDPA, SCORES, "scores = q @ k.transpose(-2, -1)",
           mistake="the scale is applied after the softmax: scale the scores, then normalise")
bugs.patch("scale_after_softmax", SDPA, RETURN, "weights = weights * scale\n" + RETURN)
bugs.patch("softmax_over_queries", SDPA, "scores.amax(dim=-1, keepdim=True)", "scores.amax(dim=-2, keepdim=True)",
           mistake="weights are normalised over queries, not keys: did you take the softmax over the wrong axis "
                   "(dim=-2 instead of dim=-1)?")
bugs.patch("softmax_over_queries", SDPA, "exp.sum(dim=-1, keepdim=True)", "exp.sum(dim=-2, keepdim=True)")
bugs.patch("mask_inverted", SDPA, MASK_FILL, 'scores = scores.masked_fill(mask, float("-inf"))',
           mistake="the mask is inverted: True means the query MAY attend to the key (torch SDPA's convention, the "
                   "opposite of nn.MultiheadAttention's)")
bugs.patch("nan_on_fully_masked_rows", SDPA,
           "row_max = torch.where(torch.isfinite(row_max), row_max, torch.zeros_like(row_max))", "",
           mistake="a query row whose mask allows no key gives NaN: a softmax over all -inf is 0/0; give such rows "
                   "zero weights (and a zero output)")
bugs.patch("nan_on_fully_masked_rows", SDPA, "torch.where(total > 0, total, torch.ones_like(total))", "total")
bugs.patch("uniform_on_fully_masked_rows", SDPA, MASK_FILL,
           "scores = scores.masked_fill(~mask, torch.finfo(scores.dtype).min)",
           mistake="masked scores are filled with a large finite negative number: a row with no allowed key then "
                   "averages all values uniformly instead of giving zeros")
bugs.patch("mask_multiplied", SDPA, MASK_FILL, "scores = scores * mask",
           mistake="the mask is multiplied into the scores (0 instead of -inf): forbidden keys still get weight")
bugs.patch("mask_after_softmax", SDPA, MASK_FILL, "",
           mistake="the mask is applied after the softmax without renormalising: rows no longer sum to 1")
bugs.patch("mask_after_softmax", SDPA, RETURN, "if mask is not None:\n    weights = weights * mask\n" + RETURN)
bugs.patch("scale_multiplies_default", SDPA, """
    if scale is None:
        scale = 1.0 / math.sqrt(q.shape[-1])
""", "scale = (1.0 if scale is None else scale) / math.sqrt(q.shape[-1])",
           mistake="a given `scale` is applied on top of 1/sqrt(E): it must replace the default")
bugs.patch("modifies_input_in_place", SDPA, SCORES, "scores = q.mul_(scale) @ k.transpose(-2, -1)",
           mistake="an input is modified in place: use out-of-place operations (q * s, not q.mul_(s); masked_fill, "
                   "not masked_fill_)")

# --- MultiHeadAttention --------------------------------------------------------------------------
FORWARD = "MultiHeadAttention.forward"
OUT = "out.transpose(1, 2).reshape(B, L, self.n_heads * self.head_dim)"
bugs.patch("gqa_heads_tiled", FORWARD, "k = k.repeat_interleave(group, dim=1)", "k = k.repeat(1, group, 1, 1)",
           mistake="grouped-query heads are tiled (repeat) instead of grouped (repeat_interleave): query head h must "
                   "use key/value head h // (n_heads // n_kv_heads)")
bugs.patch("gqa_heads_tiled", FORWARD, "v = v.repeat_interleave(group, dim=1)", "v = v.repeat(1, group, 1, 1)")
bugs.patch("heads_split_without_transpose", FORWARD,
           "self.q_proj(x).view(B, L, self.n_heads, self.head_dim).transpose(1, 2)",
           "self.q_proj(x).reshape(B, self.n_heads, L, self.head_dim)",
           mistake="heads are split with view(B, n_heads, L, head_dim) directly: split the features as (B, L, "
                   "n_heads, head_dim) and then transpose, or tokens get mixed across heads")
for proj in ("k_proj", "v_proj"):
    bugs.patch("heads_split_without_transpose", FORWARD,
               f"self.{proj}(source).view(B, S, self.n_kv_heads, self.head_dim).transpose(1, 2)",
               f"self.{proj}(source).reshape(B, self.n_kv_heads, S, self.head_dim)")
bugs.patch("heads_split_without_transpose", FORWARD, OUT, "out.reshape(B, L, self.n_heads * self.head_dim)")
bugs.patch("scale_by_d_model", FORWARD, "scaled_dot_product_attention(q, k, v, mask)",
           "scaled_dot_product_attention(q, k, v, mask, scale=1 / math.sqrt(self.d_model))",
           mistake="scores are scaled by 1/sqrt(d_model): each head must use 1/sqrt(head_dim)")
bugs.patch("cross_attention_values_from_x", FORWARD, "v = self.v_proj(source).view(B, S,",
           "v = self.v_proj(x).view(B, L,",
           mistake="in cross-attention the values come from x: keys AND values must come from `context`")
bugs.patch("no_output_projection", FORWARD, f"return self.o_proj({OUT})", f"return {OUT}",
           mistake="the heads are concatenated but o_proj is never applied")
bugs.patch("kv_projections_full_width", "MultiHeadAttention.__init__", """
        self.k_proj = nn.Linear(d_model, n_kv_heads * self.head_dim, bias=bias)
        self.v_proj = nn.Linear(d_model, n_kv_heads * self.head_dim, bias=bias)
""", """
        self.k_proj = nn.Linear(d_model, n_heads * self.head_dim, bias=bias)
        self.v_proj = nn.Linear(d_model, n_heads * self.head_dim, bias=bias)
""", mistake="k_proj and v_proj project to n_heads*head_dim: with grouped-query attention they have only "
             "n_kv_heads*head_dim outputs")
bugs.patch("kv_projections_full_width", "MultiHeadAttention.__init__", "= d_model, n_heads, n_kv_heads",
           "= d_model, n_heads, n_heads")


# ---- added for fairness (issue 16)
bugs.patch("softmax_in_float32", "scaled_dot_product_attention",
           "exp = torch.exp(scores - row_max)", "exp = torch.exp((scores - row_max).float()).to(scores.dtype)",
           mistake="the softmax is computed in float32: float64 inputs must keep float64 precision throughout")
