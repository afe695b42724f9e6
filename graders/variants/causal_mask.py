"""Realistic buggy variants of ``causal_mask``: each is a patch of the reference (see llmlab.grading.variants)."""
from llmlab.grading.variants import Variants

bugs = Variants("causal_mask")

bugs.patch("top_left_alignment", "causal_mask", ".tril(diagonal=k_len - q_len)", ".tril()",
           mistake="the causal mask is aligned top-left (like SDPA's is_causal=True): with a KV cache, query i sits "
                   "at position k_len - q_len + i, so align the triangle bottom-right (tril(diagonal=k_len - q_len))")
bugs.patch("diagonal_excluded", "causal_mask", "tril(diagonal=k_len - q_len)", "tril(diagonal=k_len - q_len - 1)",
           mistake="the diagonal is excluded: a token may attend to itself (tril, not tril(-1) / triu(1) inverted "
                   "off by one)")
bugs.patch("causal_inverted", "causal_mask", "tril(diagonal=k_len - q_len)", "triu(diagonal=k_len - q_len + 1)",
           mistake="the causal mask is inverted (True above the diagonal): True must mean 'may attend'")
bugs.patch("causal_float_mask", "causal_mask",
           "return torch.ones(q_len, k_len, dtype=torch.bool, device=device).tril(diagonal=k_len - q_len)", """
allowed = torch.ones(q_len, k_len, dtype=torch.bool, device=device).tril(diagonal=k_len - q_len)
return torch.zeros(q_len, k_len).masked_fill(~allowed, float("-inf"))""",
           mistake="the mask is a float tensor (0 / -inf) rather than bool (True = may attend)")

# The mistake is the missing checks; negative sizes are clamped as a student's torch.ones call would need.
bugs.patch("no_length_validation", "causal_mask", """
        if n < 0:
            raise ValueError(f"{name} must be >= 0, got {n}")
""", "", mistake="k_len < q_len (or a negative length) is accepted: it must raise ValueError")
bugs.patch("no_length_validation", "causal_mask", """
    if k_len < q_len:
        raise ValueError(f"k_len ({k_len}) must be >= q_len ({q_len})")
""", "")
bugs.patch("no_length_validation", "causal_mask", "torch.ones(q_len, k_len,",
           "torch.ones(max(q_len, 0), max(k_len, 0),")

bugs.patch("padding_on_query_axis", "padding_mask", "[:, None, None, :]", "[:, None, :, None]",
           mistake="padding is applied on the wrong axis: the mask must be (B, 1, 1, S) so that it hides padded "
                   "KEYS from every query, not (B, 1, S, 1)")
bugs.patch("padding_inverted", "padding_mask", "(attention_mask != 0)", "(attention_mask == 0)",
           mistake="the padding mask is inverted: True must mark real tokens (attention_mask == 1)")
bugs.patch("decoder_or_instead_of_and", "decoder_mask", "[None, None] & keys", "[None, None] | keys",
           mistake="causal and padding masks are combined with OR: a key must be both in the past AND a real token")
bugs.patch("decoder_pads_queries", "decoder_mask", "keys = padding_mask(attention_mask)",
           "keys = (attention_mask != 0)[:, None, :, None]",
           mistake="the padding is applied to queries instead of keys: real tokens can still attend to padding")
bugs.patch("decoder_right_padding_only", "decoder_mask", "keys = padding_mask(attention_mask)",
           "keys = (torch.arange(attention_mask.shape[1]) < (attention_mask != 0).sum(-1)[:, None])[:, None, None, :]",
           mistake="the decoder mask assumes right padding (it uses sequence lengths): with left padding the "
                   "real tokens sit at the end of the row")
