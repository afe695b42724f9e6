"""Realistic buggy variants of ``decoder_lm``: the mistakes people make when rebuilding Llama.

Each is a patch of the reference (see llmlab.grading.variants).
"""
from llmlab.grading.variants import Variants

bugs = Variants("decoder_lm")

# --- rms_norm, rotary_embedding, swiglu ----------------------------------------------------------
bugs.patch("rms_norm_subtracts_mean", "rms_norm", "h = x.to(compute)",
           "h = x.to(compute)\nh = h - h.mean(dim=-1, keepdim=True)",
           mistake="rms_norm subtracts the mean (that is LayerNorm): RMSNorm divides x itself by sqrt(mean(x**2) + "
                   "eps), without centring")
bugs.patch("rms_norm_eps_outside_sqrt", "rms_norm", "h = h * torch.rsqrt(h.pow(2).mean(dim=-1, keepdim=True) + eps)",
           "h = h / (h.pow(2).mean(dim=-1, keepdim=True).sqrt() + eps)",
           mistake="eps is added after the square root: divide by sqrt(mean(x**2) + eps), eps inside the root")
ROTATED = "rotated = torch.cat((-x[..., half:], x[..., :half]), dim=-1)"
bugs.patch("rotary_interleaved_pairs", "rotary_embedding", "angles = torch.cat((freqs, freqs), dim=-1)",
           "angles = freqs.repeat_interleave(2, dim=-1)",
           mistake="RoPE rotates interleaved pairs (x0, x1), (x2, x3), ... (the original Meta / GPT-J layout): "
                   "transformers' Llama pairs feature i with feature i + D/2 (rotate_half)")
bugs.patch("rotary_interleaved_pairs", "rotary_embedding", ROTATED,
           "rotated = torch.stack((-x[..., 1::2], x[..., 0::2]), dim=-1).flatten(-2)")
bugs.patch("rotary_wrong_frequencies", "rotary_embedding", "torch.arange(0, D, 2, dtype=compute",
           "torch.arange(0, D // 2, dtype=compute",
           mistake="the RoPE frequencies are base ** (-i / D) for i = 0 .. D/2-1: the exponent is -2i / D "
                   "(torch.arange(0, D, 2) / D)")
bugs.patch("rotary_rotates_backwards", "rotary_embedding", ROTATED,
           "rotated = torch.cat((x[..., half:], -x[..., :half]), dim=-1)",
           mistake="the rotation goes the wrong way: rotate_half(x) is cat(-x2, x1) (x1, x2 the two halves), not "
                   "cat(x2, -x1)")
bugs.patch("rotary_ignores_positions", "rotary_embedding", "pos = positions.to(compute)",
           "pos = torch.arange(T, device=x.device).to(compute)",
           mistake="the given positions are ignored (0 .. T-1 is used): rotate each token by its own position, which "
                   "need not start at 0 (left padding, a KV cache)")
bugs.patch("swiglu_silu_on_up", "swiglu", "F.silu(F.linear(x, w_gate)) * F.linear(x, w_up)",
           "F.linear(x, w_gate) * F.silu(F.linear(x, w_up))",
           mistake="SiLU is applied to the up projection: it is silu(gate(x)) * up(x), the gate goes through SiLU")
bugs.patch("swiglu_gelu", "swiglu", "F.silu(", "F.gelu(",
           mistake="the gate uses GELU: Llama's SwiGLU uses SiLU, x * sigmoid(x)")

# --- DecoderBlock.forward ------------------------------------------------------------------------
BLOCK = "DecoderBlock.forward"
MLP = """
        h = rms_norm(x, self.mlp_norm, self.norm_eps)
        return x + swiglu(h, self.gate_proj.weight, self.up_proj.weight, self.down_proj.weight)
"""
bugs.patch("block_post_norm", BLOCK, "h = rms_norm(x, self.attn_norm, self.norm_eps)", "h = x",
           mistake="the block normalises after adding the residual (post-norm, as the 2017 Transformer): Llama is "
                   "pre-norm, x + attention(rms_norm(x)), and the residual stream itself is never normalised")
bugs.patch("block_post_norm", BLOCK,
           "x = x + a.o_proj(out.transpose(1, 2).reshape(B, T, self.n_heads * self.head_dim))",
           "x = rms_norm(x + a.o_proj(out.transpose(1, 2).reshape(B, T, self.n_heads * self.head_dim)), "
           "self.attn_norm, self.norm_eps)")
bugs.patch("block_post_norm", BLOCK, MLP, """
        mlp = swiglu(x, self.gate_proj.weight, self.up_proj.weight, self.down_proj.weight)
        return rms_norm(x + mlp, self.mlp_norm, self.norm_eps)
""")
bugs.patch("block_rotates_values", BLOCK, "k = rotary_embedding(k, positions, self.rope_base)",
           "k = rotary_embedding(k, positions, self.rope_base)\nv = rotary_embedding(v, positions, self.rope_base)",
           mistake="RoPE is applied to the values too: only queries and keys are rotated (positions enter through "
                   "the scores)")
bugs.patch("block_no_mlp_residual", BLOCK, "return x + swiglu(", "return swiglu(",
           mistake="the MLP output replaces the hidden state: add it to the residual stream, x + mlp(rms_norm(x))")
bugs.patch("block_one_norm_weight", BLOCK, "h = rms_norm(x, self.mlp_norm, self.norm_eps)",
           "h = rms_norm(x, self.attn_norm, self.norm_eps)",
           mistake="the MLP input is normalised with attn_norm: each sub-layer has its own RMSNorm weight (attn_norm "
                   "before attention, mlp_norm before the MLP)")

# --- DecoderLM -----------------------------------------------------------------------------------
LAYER = "h = layer(h, mask, positions)"
bugs.patch("lm_no_final_norm", "DecoderLM.forward", "return self.lm_head(rms_norm(h, self.final_norm, self.norm_eps))",
           "return self.lm_head(h)",
           mistake="the final RMSNorm (final_norm) before the LM head is missing")
bugs.patch("lm_ignores_attention_mask", "DecoderLM.forward", LAYER, "h = layer(h, None, positions)",
           mistake="the attention mask is not used (a causal mask only): with left padding, real tokens attend to "
                   "the padding before them; build the mask with decoder_mask(attention_mask)")
bugs.patch("lm_ignores_position_ids", "DecoderLM.forward", LAYER, "h = layer(h, mask, torch.arange(T))",
           mistake="position_ids are ignored (always 0 .. T-1): rotate each token by the position it is given")
bugs.patch("lm_head_not_tied", "DecoderLM.__init__", """
        if tie_embeddings:
            self.lm_head.weight = self.embed_tokens.weight
""", "", mistake="with tie_embeddings=True the LM head gets its own weight: assign lm_head.weight = "
                 "embed_tokens.weight so both are one Parameter")
bugs.patch("from_hf_default_rope_base", "DecoderLM.from_hf", "rope_base=float(base)", "rope_base=10000.0",
           mistake="from_hf ignores the model's RoPE base: read config.rope_parameters['rope_theta'] (SmolLM2 uses "
                   "100000, Llama 3 500000, not the default 10000)")
bugs.patch("from_hf_default_eps", "DecoderLM.from_hf", "norm_eps=float(cfg.rms_norm_eps)", "norm_eps=1e-6",
           mistake="from_hf ignores config.rms_norm_eps and keeps the default eps")

# --- next_token_loss -----------------------------------------------------------------------------
COUNTED = "counted = real[:, :-1] & real[:, 1:]"
bugs.patch("loss_not_shifted", "next_token_loss", "pred, target = logits[:, :-1], input_ids[:, 1:]",
           "pred, target = logits, input_ids",
           mistake="the loss compares the logits at position t with token t: position t predicts token t + 1 (drop "
                   "the last logits and the first token)")
bugs.patch("loss_not_shifted", "next_token_loss", COUNTED, "counted = real")
bugs.patch("loss_counts_padding", "next_token_loss", COUNTED, "counted = torch.ones_like(target, dtype=torch.bool)",
           mistake="padding is counted in the loss: only pairs whose input and target are both real tokens count")
bugs.patch("loss_mean_of_row_means", "next_token_loss", "return F.cross_entropy(pred[counted], target[counted])", """
return torch.stack([F.cross_entropy(pred[b][counted[b]], target[b][counted[b]])
                    for b in range(pred.shape[0]) if counted[b].any()]).mean()""",
           mistake="the loss averages each row's mean: average over all predicted tokens of the batch instead (a "
                   "long row has more tokens, so more weight)")


# ---- added for fairness (issue 16)
bugs.patch("rotary_float32_angles", "rotary_embedding",
           "compute = torch.float64 if x.dtype == torch.float64 else torch.float32", "compute = torch.float32",
           mistake="the RoPE angles are computed in float32 even for float64 input (as transformers does): "
                   "float64 inputs need float64 angles")
