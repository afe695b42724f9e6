"""Realistic buggy variants of ``encoder_decoder``: the mistakes people make rebuilding the 2017 Transformer.

Each is the reference with a small edit (``bugs.patch``); every other line is the reference's.
"""
from llmlab.grading.variants import Variants

bugs = Variants("encoder_decoder")

# --- positions -----------------------------------------------------------------------------------
bugs.patch("sin_cos_swapped", "sinusoidal_positions", "out[:, 0::2] = torch.sin(angles)",
           "out[:, 0::2] = torch.cos(angles)",
           mistake="sin and cos are swapped: sin goes on the even features (0, 2, ...), cos on the odd ones")
bugs.patch("sin_cos_swapped", "sinusoidal_positions", "out[:, 1::2] = torch.cos(angles[:, : d_model // 2])",
           "out[:, 1::2] = torch.sin(angles[:, : d_model // 2])")

bugs.patch("frequency_exponent_without_two", "sinusoidal_positions",
           "freq = 10000.0 ** (-torch.arange(0, d_model, 2, dtype=torch.float64) / d_model)",
           "freq = 10000.0 ** (-torch.arange(0, (d_model + 1) // 2, dtype=torch.float64) / d_model)",
           mistake="the frequencies use 10000 ** (-i / d_model) for pair i: the exponent is -2i / d_model "
                   "(the even feature index over d_model)")

# --- layers --------------------------------------------------------------------------------------
bugs.patch("post_norm", "EncoderLayer.forward", """
x = x + self.dropout(self.self_attn(self.norm1(x), mask))
return x + self.dropout(_feed_forward(self.norm2(x), self.linear1, self.linear2))
""", """
x = self.norm1(x + self.dropout(self.self_attn(x, mask)))
return self.norm2(x + self.dropout(_feed_forward(x, self.linear1, self.linear2)))
""", mistake="post-norm (normalise after adding the residual, as the 2017 paper): this layer is pre-norm, "
             "x + sublayer(norm(x)), as norm_first=True")
bugs.patch("post_norm", "DecoderLayer.forward", """
x = x + self.dropout(self.self_attn(self.norm1(x), self_mask))
x = x + self.dropout(self.cross_attn(self.norm2(x), memory_mask, context=memory))
return x + self.dropout(_feed_forward(self.norm3(x), self.linear1, self.linear2))
""", """
x = self.norm1(x + self.dropout(self.self_attn(x, self_mask)))
x = self.norm2(x + self.dropout(self.cross_attn(x, memory_mask, context=memory)))
return self.norm3(x + self.dropout(_feed_forward(x, self.linear1, self.linear2)))
""")

bugs.patch("cross_attention_keys_from_decoder", "DecoderLayer.forward",
           "self.cross_attn(self.norm2(x), memory_mask, context=memory)",
           "self.cross_attn(self.norm2(x), memory_mask, context=self.norm2(x))",
           mistake="the cross-attention takes its keys and values from the decoder: queries come from the decoder, "
                   "keys and values from the encoder's output (context=memory)")

bugs.patch("in_proj_split_k_q_v", "_copy_attention",
           "enumerate((mine.q_proj, mine.k_proj, mine.v_proj))", "enumerate((mine.k_proj, mine.q_proj, mine.v_proj))",
           mistake="torch's in_proj_weight is split in the wrong order: its rows are q, then k, then v")

bugs.patch("norm_eps_not_copied", "EncoderLayer.from_torch",
           "mine = cls(d_model, n_heads, layer.linear1.out_features, norm_eps=layer.norm1.eps)",
           "mine = cls(d_model, n_heads, layer.linear1.out_features)",
           mistake="the LayerNorm eps of the torch layer is not copied (the default 1e-5 is kept)")
bugs.patch("norm_eps_not_copied", "DecoderLayer.from_torch",
           "mine = cls(d_model, n_heads, layer.linear1.out_features, norm_eps=layer.norm1.eps)",
           "mine = cls(d_model, n_heads, layer.linear1.out_features)")

# --- the model -----------------------------------------------------------------------------------
bugs.patch("encoder_causal_mask", "EncoderDecoder.encode", "mask = padding_mask(src_mask)",
           "mask = decoder_mask(src_mask)",
           mistake="the encoder uses a causal mask: its self-attention is bidirectional, every real source token "
                   "sees every real source token (only padding is masked)")

bugs.patch("decoder_without_causal_mask", "EncoderDecoder.decode", "self_mask = decoder_mask(tgt_mask)",
           "self_mask = padding_mask(tgt_mask)",
           mistake="the decoder's self-attention is not causal: target position t must not see the target tokens "
                   "after it (decoder_mask: causal and padding)")

bugs.patch("source_padding_not_masked", "EncoderDecoder.decode", "memory_mask = padding_mask(src_mask)",
           "memory_mask = None",
           mistake="the cross-attention reads the source padding: mask it with padding_mask(src_mask)")

bugs.patch("target_positions_not_added", "EncoderDecoder.decode",
           "h = self.tgt_embed(tgt_ids) * math.sqrt(self.d_model) + self.positions[:T]",
           "h = self.tgt_embed(tgt_ids) * math.sqrt(self.d_model)",
           mistake="no position encoding is added to the target embeddings (the decoder needs positions too)")

bugs.patch("embeddings_not_scaled", "EncoderDecoder.encode",
           "h = self.src_embed(src_ids) * math.sqrt(self.d_model) + self.positions[:S]",
           "h = self.src_embed(src_ids) + self.positions[:S]",
           mistake="the token embeddings are not multiplied by sqrt(d_model) before the positions are added")
bugs.patch("embeddings_not_scaled", "EncoderDecoder.decode",
           "h = self.tgt_embed(tgt_ids) * math.sqrt(self.d_model) + self.positions[:T]",
           "h = self.tgt_embed(tgt_ids) + self.positions[:T]")

bugs.patch("encoder_final_norm_missing", "EncoderDecoder.encode", "return self.encoder_norm(h)", "return h",
           mistake="the memory is not normalised by encoder_norm: a pre-norm stack ends with a final LayerNorm")

# --- greedy decoding -----------------------------------------------------------------------------
bugs.patch("greedy_keeps_bos", "greedy_translate", "out = [[] for _ in range(B)]",
           "out = [[bos_id] for _ in range(B)]",
           mistake="the output starts with BOS: return only the generated tokens")

bugs.patch("greedy_runs_past_eos", "greedy_translate", "if not done[b]:", "if True:",
           mistake="a row keeps collecting tokens after its EOS (until every row is done): stop each row at its "
                   "own EOS")

bugs.patch("greedy_keeps_eos", "greedy_translate", """
if int(step[b]) == eos_id:
    done[b] = True
else:
    out[b].append(int(step[b]))
""", """
out[b].append(int(step[b]))
if int(step[b]) == eos_id:
    done[b] = True
""", mistake="EOS is kept in the output: stop at EOS and leave it out")
