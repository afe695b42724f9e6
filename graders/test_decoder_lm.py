"""Hidden graders for ``decoder_lm`` (API.md §9): a Llama decoder from the student's own parts.

Every value is cross-checked against transformers' own Llama modules with the same weights:
``LlamaRMSNorm``, ``LlamaRotaryEmbedding`` + ``apply_rotary_pos_emb``, ``LlamaMLP``,
``LlamaDecoderLayer`` and ``LlamaForCausalLM`` (its logits and its causal-LM loss), on tiny random
configurations that hypothesis draws: 1-2 layers, grouped-query attention (1-2 key/value heads, 1-3
query heads each), head sizes 2-8, tied or separate embeddings, attention biases, several RoPE bases
and norm epsilons, left and right padding. The random weights are scaled so that every part
matters (default initialisation would make the logits nearly constant and hide mistakes).

Tolerances: float32 values 1e-5 absolute + 1e-4 relative for single operations, 1e-4 absolute +
1e-4 relative for whole models (the bar API.md sets); float64 1e-10.
"""
from __future__ import annotations

import functools
import math

import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from graders.strategies import batch_shapes, padded_attention_masks, randn, seeds
from llmlab.grading import factories
from llmlab.grading.checks import (CheckFailed, check, diagnose, diagnosing, expect_close, expect_float64_close,
                                   expect_raises, expect_tensor, known_mistake, later)
from llmlab.grading.compose import composed, expected_or_composed

T_RMS = "decoder_lm.rms_norm"
T_ROPE = "decoder_lm.rotary_embedding"
T_SWIGLU = "decoder_lm.swiglu"
T_BLOCK_INIT = "decoder_lm.DecoderBlock.__init__"
T_BLOCK = "decoder_lm.DecoderBlock.forward"
T_LM_INIT = "decoder_lm.DecoderLM.__init__"
T_LM = "decoder_lm.DecoderLM.forward"
T_FROM_HF = "decoder_lm.DecoderLM.from_hf"
T_LOSS = "decoder_lm.next_token_loss"
ATOL, RTOL = 1e-5, 1e-4  # one operation, float32
MODEL_ATOL, MODEL_RTOL = 1e-4, 1e-4  # a whole model, float32
# A model example builds the student's module in the worker (several round trips) for each submission of a
# class: fewer examples for whole blocks and models, whose configurations vary in many ways at once.
MODEL_EXAMPLES = 6
LOSS_EXAMPLES = 12
# One cause, one loss: a composite also passes when it equals the reference composite run over the student's
# own building blocks (llmlab.grading.compose), so a broken part costs its own checks only. Each composite
# routes its parts, never itself. (causal_mask is not routed: the reference passes it a torch.device.)
BLOCK_PARTS = ("rms_norm", "rotary_embedding", "swiglu", "scaled_dot_product_attention")
LM_PARTS = ("DecoderBlock", "rms_norm", "decoder_mask")
FROM_HF_PARTS = ("DecoderLM",)


# ---------------------------------------------------------------------------------------------
# Tiny random Llamas (also used by the sampling graders)
# ---------------------------------------------------------------------------------------------
@st.composite
def llama_configs(draw, max_layers: int = 2, max_vocab: int = 24):
    """A tiny ``LlamaConfig`` as a dict: GQA head counts, even head sizes, varied RoPE base and eps."""
    n_kv = draw(st.integers(1, 2))
    n_heads = n_kv * draw(st.integers(1, 3))
    head_dim = draw(st.sampled_from([4, 8, 2, 6]))
    return dict(vocab_size=draw(st.integers(5, max_vocab)), hidden_size=n_heads * head_dim,
                intermediate_size=draw(st.integers(2, 12)), num_hidden_layers=draw(st.integers(1, max_layers)),
                num_attention_heads=n_heads, num_key_value_heads=n_kv, head_dim=head_dim,
                rope_theta=draw(st.sampled_from([500.0, 10000.0, 1e6])),
                rms_norm_eps=draw(st.sampled_from([0.1, 1e-5, 1e-6])),
                tie_word_embeddings=draw(st.booleans()), attention_bias=draw(st.booleans()),
                max_position_embeddings=64, bos_token_id=None, eos_token_id=None, pad_token_id=None)


def llama_state(config: dict, seed: int) -> dict:
    """A state dict of ``LlamaForCausalLM(config)`` with weights of unit scale (seeded).

    Matrices ~ N(0, 1/fan_in) (embeddings N(0, 1)), norm weights ~ 1 + N(0, 0.3), biases ~ N(0, 0.1);
    a tied LM head is the embedding matrix itself.
    """
    state = {}
    shapes = _llama_shapes(config)
    for n, (key, shape) in enumerate(sorted(shapes.items())):
        if key.endswith("norm.weight"):
            state[key] = 1 + 0.3 * randn(seed + n, *shape)
        elif key.endswith(".bias"):
            state[key] = 0.1 * randn(seed + n, *shape)
        elif "embed_tokens" in key:
            state[key] = randn(seed + n, *shape)
        else:
            state[key] = randn(seed + n, *shape) / math.sqrt(shape[1])
    if config.get("tie_word_embeddings"):
        state["lm_head.weight"] = state["model.embed_tokens.weight"]
    return state


def _llama_shapes(c: dict) -> dict:
    """Parameter shapes of ``LlamaForCausalLM(LlamaConfig(**c))``, by transformers' names."""
    d, f, V = c["hidden_size"], c["intermediate_size"], c["vocab_size"]
    hd = c.get("head_dim") or d // c["num_attention_heads"]
    q, kv = c["num_attention_heads"] * hd, c.get("num_key_value_heads", c["num_attention_heads"]) * hd
    shapes = {"model.embed_tokens.weight": (V, d), "model.norm.weight": (d,), "lm_head.weight": (V, d)}
    for i in range(c["num_hidden_layers"]):
        p = f"model.layers.{i}."
        shapes.update({p + "input_layernorm.weight": (d,), p + "post_attention_layernorm.weight": (d,),
                       p + "self_attn.q_proj.weight": (q, d), p + "self_attn.k_proj.weight": (kv, d),
                       p + "self_attn.v_proj.weight": (kv, d), p + "self_attn.o_proj.weight": (d, q),
                       p + "mlp.gate_proj.weight": (f, d), p + "mlp.up_proj.weight": (f, d),
                       p + "mlp.down_proj.weight": (d, f)})
        if c.get("attention_bias"):
            shapes.update({p + "self_attn.q_proj.bias": (q,), p + "self_attn.k_proj.bias": (kv,),
                           p + "self_attn.v_proj.bias": (kv,), p + "self_attn.o_proj.bias": (d,)})
    return shapes


def hf_model(config: dict, state: dict):
    """The trusted transformers model, in the grader's process."""
    return factories.hf_llama(config, state)


# ---------------------------------------------------------------------------------------------
# Memoised references: one grading session grades many submissions on the same (derandomised)
# examples, so each trusted reference value is computed once per distinct input, not once per submission.
# ---------------------------------------------------------------------------------------------
_MEMO: dict = {}
_MEMO_LIMIT = 20_000


def _fingerprint(x):
    if isinstance(x, torch.Tensor):
        return ("tensor", str(x.dtype), tuple(x.shape), x.detach().cpu().contiguous().numpy().tobytes())
    if isinstance(x, dict):
        return ("dict",) + tuple((k, _fingerprint(v)) for k, v in sorted(x.items()))
    if isinstance(x, (list, tuple)):
        return (type(x).__name__,) + tuple(_fingerprint(v) for v in x)
    return x


def memo(fn):
    """Cache a trusted, deterministic reference computation by the value of its arguments. Callers only
    read the results (never modify them in place)."""
    @functools.wraps(fn)
    def cached(*args, **kwargs):
        key = (fn.__qualname__, _fingerprint(args), _fingerprint(kwargs))
        if key not in _MEMO:
            if len(_MEMO) >= _MEMO_LIMIT:
                _MEMO.clear()
            _MEMO[key] = fn(*args, **kwargs)
        return _MEMO[key]
    return cached


@memo
def hf_logits(config: dict, state: dict, ids, **kwargs):
    """``LlamaForCausalLM(...)(ids, **kwargs).logits`` of the trusted model with these weights."""
    with torch.no_grad():
        return hf_model(config, state)(ids, **kwargs).logits


def _ours_from_hf(config: dict, state: dict) -> dict:
    """The HF state dict under the spec's ``DecoderLM`` names."""
    out = {"embed_tokens.weight": state["model.embed_tokens.weight"], "final_norm": state["model.norm.weight"],
           "lm_head.weight": state["lm_head.weight"]}
    for i in range(config["num_hidden_layers"]):
        out.update({f"layers.{i}.{k}": v for k, v in _block_from_hf(state, f"model.layers.{i}.").items()})
    return out


def _block_from_hf(state: dict, prefix: str) -> dict:
    out = {"attn_norm": state[prefix + "input_layernorm.weight"],
           "mlp_norm": state[prefix + "post_attention_layernorm.weight"]}
    for p in ("q_proj", "k_proj", "v_proj", "o_proj"):
        out[f"attn.{p}.weight"] = state[f"{prefix}self_attn.{p}.weight"]
        if f"{prefix}self_attn.{p}.bias" in state:
            out[f"attn.{p}.bias"] = state[f"{prefix}self_attn.{p}.bias"]
    for p in ("gate_proj", "up_proj", "down_proj"):
        out[f"{p}.weight"] = state[f"{prefix}mlp.{p}.weight"]
    return out


def _later(compute, actual):
    """A diagnosis computed only when the feedback is written (for the minimal failing input)."""
    return later(lambda: diagnose(compute, actual))


def _lm_args(config: dict) -> tuple[tuple, dict]:
    c = config
    return ((c["vocab_size"], c["hidden_size"], c["num_hidden_layers"], c["num_attention_heads"],
             c["intermediate_size"], c["num_key_value_heads"]),
            dict(rope_base=c["rope_theta"], norm_eps=c["rms_norm_eps"], tie_embeddings=c["tie_word_embeddings"],
                 attention_bias=c["attention_bias"]))


def _block_args(config: dict) -> tuple[tuple, dict]:
    c = config
    return ((c["hidden_size"], c["num_attention_heads"], c["intermediate_size"], c["num_key_value_heads"]),
            dict(norm_eps=c["rms_norm_eps"], rope_base=c["rope_theta"], attention_bias=c["attention_bias"]))


def _expect_state_shapes(have, want: dict, what: str, local_shapes) -> None:
    """The submission's ``state_dict()`` has exactly the spec's names and shapes."""
    if not isinstance(have, dict):
        raise CheckFailed(f"{what}.state_dict() returned {type(have).__name__}")
    shapes = {k: tuple(v.shape) for k, v in have.items() if isinstance(v, torch.Tensor)}
    want = {k: tuple(v.shape) for k, v in want.items()}
    if shapes == want:
        return
    missing, extra = sorted(set(want) - set(shapes)), sorted(set(shapes) - set(want))
    wrong = sorted(k for k in set(want) & set(shapes) if want[k] != shapes[k])
    parts = []
    if missing:
        parts.append(f"missing parameters {missing[:6]}" + (" ..." if len(missing) > 6 else ""))
    if extra:
        parts.append(f"unexpected parameters {extra[:6]}" + (" ..." if len(extra) > 6 else ""))
    if wrong:
        parts.append("wrong shapes " + ", ".join(f"{k}: {shapes[k]} (expected {want[k]})" for k in wrong[:4]))
    raise CheckFailed(f"{what} has " + "; ".join(parts), diagnosis=_later(local_shapes, shapes))


def _build_lm(sub, config: dict, state: dict):
    """The student's ``DecoderLM``, built by its constructor and loaded with the spec's names."""
    args, kwargs = _lm_args(config)
    ours = _ours_from_hf(config, state)
    obj = sub.new("DecoderLM", *args, **kwargs)
    _expect_state_shapes(obj.call("state_dict"), ours, f"DecoderLM{args} with {kwargs}",
                         lambda m: {k: tuple(v.shape) for k, v in m.DecoderLM(*args, **kwargs).state_dict().items()})
    obj.call("load_state_dict", ours)
    obj.call("eval")
    return obj


def _local_lm(module, config: dict, state: dict):
    args, kwargs = _lm_args(config)
    lm = module.DecoderLM(*args, **kwargs)
    lm.load_state_dict(_ours_from_hf(config, state))
    return lm.eval()


def _token_batch(seed: int, am: torch.Tensor, vocab: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, vocab, tuple(am.shape), generator=g)


def _positions(am: torch.Tensor) -> torch.Tensor:
    """Positions counted from each row's first real token (padding at 0), as ``generate()`` makes them."""
    return (am.long().cumsum(-1) - 1).masked_fill(am == 0, 0)


def _random_positions(seed: int, B: int, T: int) -> torch.Tensor:
    """Increasing positions with gaps, different in each row (as packed or resumed sequences have)."""
    g = torch.Generator().manual_seed(seed)
    return torch.randint(1, 4, (B, T), generator=g).cumsum(-1) + torch.randint(0, 5, (B, 1), generator=g) - 1


def _compare_real(actual, expected, am, *, what, inputs, diagnose_with, compose=None):
    """Logits compared at the non-padding positions only (padding rows are unspecified); ``compose``: the
    reference composite over the student's own parts, also accepted (see ``expected_or_composed``)."""
    expect_tensor(actual, what=what, shape=tuple(expected.shape), dtype=expected.dtype, inputs=inputs,
                  diagnose_with=diagnose_with)
    real = am.bool()
    keep = lambda t: torch.where(real[..., None], t, torch.zeros_like(t))  # noqa: E731
    if compose is not None:
        expected = expected_or_composed(actual, expected, compose, atol=MODEL_ATOL, rtol=MODEL_RTOL, keep=keep)
    expect_close(keep(actual), keep(expected), what=what + " (at the non-padding positions)", atol=MODEL_ATOL,
                 rtol=MODEL_RTOL, inputs=inputs, diagnose_with=lambda m: keep(diagnose_with(m)))


# ---------------------------------------------------------------------------------------------
# rms_norm
# ---------------------------------------------------------------------------------------------
@check(T_RMS, points=2,
       spec="``y = weight * x / sqrt(mean(x ** 2, dim=-1) + eps)``: no mean is subtracted and there is no bias")
@given(lead=batch_shapes, D=st.integers(1, 8), seed=seeds, scale=st.sampled_from([1.0, 1e-3, 50.0]),
       eps=st.sampled_from([1e-6, 1e-2, 0.5]))
def test_rms_norm_matches_llama_rmsnorm(sub, lead, D, seed, scale, eps):
    from transformers.models.llama.modeling_llama import LlamaRMSNorm

    x = scale * randn(seed, *lead, D)
    weight = 1 + 0.5 * randn(seed + 1, D)
    out = sub.call("rms_norm", x, weight, eps)
    norm = LlamaRMSNorm(D, eps=eps)
    with torch.no_grad():
        norm.weight.copy_(weight)
        expected = norm(x)
    inputs = dict(x=x, weight=weight, eps=eps)
    expect_close(out, expected, what="rms_norm(x, weight, eps) (compared with transformers' LlamaRMSNorm)",
                 atol=ATOL, rtol=RTOL, inputs=inputs, diagnose_with=lambda m: m.rms_norm(x, weight, eps))


@check(T_RMS, points=1, spec=("float32 and float64 keep their precision", "The inputs are not modified"))
@given(lead=batch_shapes, D=st.integers(1, 8), seed=seeds)
def test_rms_norm_float64_and_inputs_unchanged(sub, ref, lead, D, seed):
    x = randn(seed, *lead, D, dtype=torch.float64)
    weight = 1 + 0.5 * randn(seed + 1, D, dtype=torch.float64)
    out, after, _ = sub.call_echo("rms_norm", x, weight, 1e-6)
    inputs = dict(x=x, weight=weight, eps=1e-6)
    own32 = sub.call("rms_norm", x.float(), weight.float(), 1e-6)
    expect_float64_close(out, ref.rms_norm(x, weight, 1e-6), what="float64 rms_norm (dtype kept, full precision)",
                         own_float32=own32, atol=1e-10, rtol=1e-9, inputs=inputs,
                         hint="compute in the dtype of x: no float32 tensors or casts on the way")
    for name, before, now in zip(("x", "weight"), (x, weight), after):
        if not (isinstance(now, torch.Tensor) and torch.equal(now, before)):
            raise CheckFailed(f"rms_norm changed its input {name} in place", inputs=inputs)


@check(T_RMS, points=1,
       spec="ValueError: if ``x`` has no dimension, ``weight`` is not ``(D,)`` with ``D = x.shape[-1]``, or ``eps < "
            "0``")
def test_rms_norm_rejects_mismatched_weight(sub, ref):
    x, weight = randn(0, 2, 4), 1 + 0.5 * randn(1, 4)
    # a valid call first, with the right answer: only a working function earns this point
    expect_close(sub.call("rms_norm", x, weight), ref.rms_norm(x, weight), what="rms_norm(x, weight)", atol=ATOL,
                 rtol=RTOL, inputs=dict(x=x, weight=weight), diagnose_with=lambda m: m.rms_norm(x, weight))
    expect_raises(lambda: sub.call("rms_norm", randn(0, 2, 4), torch.ones(3)), "ValueError",
                  what="rms_norm of a (2, 4) tensor with a weight of shape (3,)")


# ---------------------------------------------------------------------------------------------
# rotary_embedding
# ---------------------------------------------------------------------------------------------
@memo
def _hf_rotary(x: torch.Tensor, positions: torch.Tensor, base: float) -> torch.Tensor:
    """transformers' Llama RoPE applied to ``x`` (B, H, T, D)."""
    from transformers import LlamaConfig
    from transformers.models.llama.modeling_llama import LlamaRotaryEmbedding, apply_rotary_pos_emb

    B, H, T, D = x.shape
    config = LlamaConfig(hidden_size=H * D, num_attention_heads=H, num_key_value_heads=H, head_dim=D,
                         rope_theta=base, max_position_embeddings=128)
    pos = positions if positions.dim() == 2 else positions[None].expand(B, T)
    cos, sin = LlamaRotaryEmbedding(config)(x, pos)
    return apply_rotary_pos_emb(x, x, cos, sin)[0]


@st.composite
def rotary_cases(draw):
    B, H, T = draw(st.integers(1, 2)), draw(st.integers(1, 3)), draw(st.integers(1, 6))
    D = draw(st.sampled_from([4, 2, 6, 8]))
    seed = draw(seeds)
    x = randn(seed, B, H, T, D)
    if draw(st.booleans()):  # one set of positions for every row, not starting at 0
        positions = torch.arange(T) + draw(st.integers(0, 20))
    else:  # one row each, e.g. a left-padded batch
        positions = torch.randint(0, 40, (B, T), generator=torch.Generator().manual_seed(seed + 1))
    base = draw(st.sampled_from([10000.0, 100.0, 500000.0]))
    return x, positions, base


@check(T_ROPE, points=3,
       spec=("in transformers' Llama \"rotate half\" layout",
             "For float32 the angles are computed in float32, exactly as transformers does"))
@given(case=rotary_cases())
def test_rotary_matches_transformers(sub, case):
    x, positions, base = case
    out = sub.call("rotary_embedding", x, positions, base)
    inputs = dict(x=x, positions=positions, base=base)
    expect_close(out, _hf_rotary(x, positions, base), what="rotary_embedding(x, positions, base) (compared with "
                 "transformers' LlamaRotaryEmbedding + apply_rotary_pos_emb)", atol=ATOL, rtol=RTOL, inputs=inputs,
                 diagnose_with=lambda m: m.rotary_embedding(x, positions, base))


@check(T_ROPE, points=1, spec="the pair is rotated by the angle ``position * base ** (-2i / D)``")
@given(T=st.integers(2, 6), D=st.sampled_from([4, 8]), seed=seeds, shift=st.integers(1, 30))
def test_rotary_scores_depend_only_on_relative_positions(sub, T, D, seed, shift):
    """RoPE's point: q·k after rotation depends on the positions only through their difference."""
    q, k = randn(seed, 1, 1, T, D), randn(seed + 1, 1, 1, T, D)
    pos = torch.arange(T)
    scores = []
    for p in (pos, pos + shift):
        rq = expect_tensor(sub.call("rotary_embedding", q, p, 10000.0), what="rotary_embedding(q, ...)",
                           shape=tuple(q.shape))
        rk = expect_tensor(sub.call("rotary_embedding", k, p, 10000.0), what="rotary_embedding(k, ...)",
                           shape=tuple(k.shape))
        scores.append(rq @ rk.transpose(-2, -1))
    if not torch.allclose(scores[0], scores[1], atol=1e-4, rtol=1e-4):
        raise CheckFailed(f"shifting every position by {shift} changes the scores q·k of the rotated queries and keys:"
                          " a rotation by an angle proportional to the position (the same frequencies for q and k) "
                          "keeps them unchanged", inputs=dict(q=q, k=k, positions=pos, shift=shift))
    # a rotation that does nothing also keeps the scores: the rotated queries must be the right ones
    shifted = pos + shift
    expect_close(sub.call("rotary_embedding", q, shifted, 10000.0), _hf_rotary(q, shifted, 10000.0),
                 what="rotary_embedding(q, positions, 10000.0) (compared with transformers)", atol=ATOL, rtol=RTOL,
                 inputs=dict(x=q, positions=shifted, base=10000.0),
                 diagnose_with=lambda m: m.rotary_embedding(q, shifted, 10000.0))
    same = expect_tensor(sub.call("rotary_embedding", q, torch.zeros(T, dtype=torch.long), 10000.0),
                         what="rotary_embedding at position 0", shape=tuple(q.shape))
    expect_close(same, q, what="rotary_embedding at position 0 (a rotation by angle 0 is the identity)", atol=1e-6,
                 rtol=1e-6, inputs=dict(x=q, positions=torch.zeros(T, dtype=torch.long)),
                 diagnose_with=lambda m: m.rotary_embedding(q, torch.zeros(T, dtype=torch.long), 10000.0))


@check(T_ROPE, points=1, spec="float64 inputs get float64 angles")
@given(case=rotary_cases())
def test_rotary_float64_precision(sub, ref, case):
    """transformers computes the angles in float32 even for float64 input (off by ~1e-6): the spec asks for more."""
    x, positions, base = case
    x = x.double()
    out = sub.call("rotary_embedding", x, positions, base)
    own32 = sub.call("rotary_embedding", x.float(), positions, base)
    expect_float64_close(out, ref.rotary_embedding(x, positions, base), what="float64 rotary_embedding (float64 "
                         "angles)", own_float32=own32, atol=1e-10, rtol=1e-9, inputs=dict(x=x, positions=positions,
                                                                                          base=base),
                         diagnose_with=lambda m: m.rotary_embedding(x, positions, base))


@check(T_ROPE, points=1, spec="ValueError: if ``x`` is not 4-dimensional, ``D`` is odd")
def test_rotary_rejects_odd_head_dimension(sub):
    x = randn(0, 1, 2, 3, 4)
    # a valid call first, with the right answer: only a working function earns this point
    expect_close(sub.call("rotary_embedding", x, torch.arange(3) + 2), _hf_rotary(x, torch.arange(3) + 2, 10000.0),
                 what="rotary_embedding(x, positions) (compared with transformers)", atol=ATOL, rtol=RTOL,
                 inputs=dict(x=x, positions=torch.arange(3) + 2),
                 diagnose_with=lambda m: m.rotary_embedding(x, torch.arange(3) + 2))
    expect_raises(lambda: sub.call("rotary_embedding", randn(0, 1, 2, 3, 5), torch.arange(3)), "ValueError",
                  what="rotary_embedding of a head dimension of 5 (features are rotated in pairs)")


# ---------------------------------------------------------------------------------------------
# swiglu
# ---------------------------------------------------------------------------------------------
@check(T_SWIGLU, points=2, spec="The SwiGLU feed-forward network of a Llama block: ``down(silu(gate(x)) * up(x))``")
@given(lead=batch_shapes, d=st.integers(1, 6), d_ff=st.integers(1, 10), seed=seeds)
def test_swiglu_matches_llama_mlp(sub, lead, d, d_ff, seed):
    from types import SimpleNamespace

    from transformers.models.llama.modeling_llama import LlamaMLP

    x = randn(seed, *lead, d)
    wg, wu = randn(seed + 1, d_ff, d), randn(seed + 2, d_ff, d)
    wd = randn(seed + 3, d, d_ff) / math.sqrt(d_ff)
    out = sub.call("swiglu", x, wg, wu, wd)
    mlp = LlamaMLP(SimpleNamespace(hidden_size=d, intermediate_size=d_ff, mlp_bias=False, hidden_act="silu"))
    mlp.load_state_dict({"gate_proj.weight": wg, "up_proj.weight": wu, "down_proj.weight": wd})
    with torch.no_grad():
        expected = mlp(x)
    expect_close(out, expected, what="swiglu(x, w_gate, w_up, w_down) (compared with transformers' LlamaMLP)",
                 atol=ATOL, rtol=RTOL, inputs=dict(x=x, w_gate=wg, w_up=wu, w_down=wd),
                 diagnose_with=lambda m: m.swiglu(x, wg, wu, wd))


@check(T_SWIGLU, points=1, spec="ValueError: if the shapes do not fit together")
def test_swiglu_rejects_mismatched_shapes(sub, ref):
    x, wg, wu, wd = randn(0, 2, 4), randn(1, 6, 4), randn(2, 6, 4), randn(3, 4, 6)
    # a valid call first, with the right answer: only a working function earns this point
    expect_close(sub.call("swiglu", x, wg, wu, wd), ref.swiglu(x, wg, wu, wd), what="swiglu(x, w_gate, w_up, w_down)",
                 atol=ATOL, rtol=RTOL, inputs=dict(x=x, w_gate=wg, w_up=wu, w_down=wd),
                 diagnose_with=lambda m: m.swiglu(x, wg, wu, wd))
    expect_raises(lambda: sub.call("swiglu", x, wg, randn(4, 5, 4), wd), "ValueError",
                  what="swiglu with w_gate (6, 4) and w_up (5, 4)")
    expect_raises(lambda: sub.call("swiglu", x, wg, wu, randn(4, 6, 4)), "ValueError",
                  what="swiglu with w_down of shape (6, 4) instead of (4, 6)")


# ---------------------------------------------------------------------------------------------
# DecoderBlock
# ---------------------------------------------------------------------------------------------
def _block_state(config: dict, seed: int) -> dict:
    return _block_from_hf(llama_state(config, seed), "model.layers.0.")


def _build_block(sub, config: dict, seed: int):
    args, kwargs = _block_args(config)
    state = _block_state(config, seed)
    obj = sub.new("DecoderBlock", *args, **kwargs)
    _expect_state_shapes(obj.call("state_dict"), state, f"DecoderBlock{args} with {kwargs}",
                         lambda m: {k: tuple(v.shape) for k, v in m.DecoderBlock(*args, **kwargs).state_dict().items()})
    obj.call("load_state_dict", state)
    obj.call("eval")
    return obj, state


def _local_block(module, config, state):
    args, kwargs = _block_args(config)
    block = module.DecoderBlock(*args, **kwargs)
    block.load_state_dict(state)
    return block.eval()


@memo
def _hf_layer(config: dict, state: dict, x, mask, positions):
    """transformers' ``LlamaDecoderLayer`` with the same weights (eager attention, additive mask)."""
    from transformers import LlamaConfig
    from transformers.models.llama.modeling_llama import LlamaDecoderLayer, LlamaRotaryEmbedding

    cfg = LlamaConfig(**config)
    cfg._attn_implementation = "eager"
    layer = LlamaDecoderLayer(cfg, 0).eval()
    hf_state = {"input_layernorm.weight": state["attn_norm"], "post_attention_layernorm.weight": state["mlp_norm"]}
    for k, v in state.items():
        if k.startswith("attn."):
            hf_state["self_attn." + k[len("attn."):]] = v
        elif k.endswith("proj.weight"):
            hf_state["mlp." + k] = v
    layer.load_state_dict(hf_state)
    B, T, _ = x.shape
    pos = positions if positions.dim() == 2 else positions[None].expand(B, T)
    bias = torch.zeros(mask.shape).masked_fill(~mask, torch.finfo(torch.float32).min)
    with torch.no_grad():
        out = layer(x, attention_mask=bias, position_embeddings=LlamaRotaryEmbedding(cfg)(x, pos), position_ids=pos)
    return out[0] if isinstance(out, tuple) else out


@check(T_BLOCK_INIT, points=1,
       spec="Submodules and parameters (names are part of the spec; graders load weights by these names)")
@settings(max_examples=MODEL_EXAMPLES)  # builds models only: a few configurations suffice
@given(config=llama_configs())
def test_block_parameters_follow_the_spec(sub, config):
    _build_block(sub, config, 0)


@check(T_BLOCK_INIT, points=1, spec="or an odd ``head_dim`` (RoPE rotates pairs of features)")
def test_block_rejects_odd_head_dim(sub):
    # a valid block first, with the spec's parameters: only a working constructor earns this point
    _build_block(sub, dict(hidden_size=8, num_attention_heads=2, intermediate_size=8, num_key_value_heads=1,
                           head_dim=4, num_hidden_layers=1, vocab_size=5, rope_theta=10000.0, rms_norm_eps=1e-6,
                           attention_bias=False), 0)
    expect_raises(lambda: sub.new("DecoderBlock", 6, 2, 8), "ValueError",
                  what="DecoderBlock(d_model=6, n_heads=2, d_ff=8) (head_dim 3 cannot be rotated in pairs)")


@check(T_BLOCK, points=3, spec=("One pre-norm Llama transformer block", "Values are not rotated"))
@settings(max_examples=MODEL_EXAMPLES)
@given(config=llama_configs(), seed=seeds, B=st.integers(1, 2), T=st.integers(1, 6))
def test_block_matches_llama_decoder_layer(sub, config, seed, B, T):
    obj, state = _build_block(sub, config, seed)
    x = randn(seed + 50, B, T, config["hidden_size"])
    with diagnosing(lambda m: _local_block(m, config, state)(x)):
        out = obj(x)
    causal = torch.ones(T, T, dtype=torch.bool).tril()[None, None].expand(B, 1, T, T)
    expected = expected_or_composed(out, _hf_layer(config, state, x, causal, torch.arange(T)),
                                    lambda: _local_block(composed(sub, BLOCK_PARTS), config, state)(x),
                                    atol=MODEL_ATOL, rtol=MODEL_RTOL)
    expect_close(out, expected, what="DecoderBlock(x) with the default causal mask and positions 0..T-1 (compared "
                 "with transformers' LlamaDecoderLayer)", atol=MODEL_ATOL, rtol=MODEL_RTOL,
                 inputs=dict(config=config, x=x), diagnose_with=lambda m: _local_block(m, config, state)(x))


@check(T_BLOCK, points=2,
       spec=("mask: bool, broadcastable to ``(B, n_heads, T, T)``, True = may attend",
             "positions: ``(T,)`` or ``(B, T)`` positions for RoPE"))
@settings(max_examples=MODEL_EXAMPLES)
@given(config=llama_configs(), seed=seeds, am=padded_attention_masks(max_batch=3, max_len=6, side="left"))
def test_block_uses_the_given_mask_and_positions(sub, config, seed, am):
    obj, state = _build_block(sub, config, seed)
    B, T = am.shape
    x = randn(seed + 50, B, T, config["hidden_size"])
    mask = torch.ones(T, T, dtype=torch.bool).tril()[None, None] & am.bool()[:, None, None, :]
    pos = _random_positions(seed, B, T)
    with diagnosing(lambda m: _local_block(m, config, state)(x, mask, pos)):
        out = obj(x, mask, pos)
    expected = _hf_layer(config, state, x, mask, pos)
    _compare_real(out, expected, am, what="DecoderBlock(x, mask, positions) on a left-padded batch, positions with gaps",
                  inputs=dict(config=config, x=x, mask=mask, positions=pos),
                  diagnose_with=lambda m: _local_block(m, config, state)(x, mask, pos),
                  compose=lambda: _local_block(composed(sub, BLOCK_PARTS), config, state)(x, mask, pos))


# ---------------------------------------------------------------------------------------------
# DecoderLM
# ---------------------------------------------------------------------------------------------
@check(T_LM_INIT, points=1,
       spec="Submodules and parameters (names are part of the spec; graders load weights by these names)")
@settings(max_examples=10)  # builds models only: a few configurations suffice
@given(config=llama_configs())
def test_lm_parameters_follow_the_spec(sub, config):
    _build_lm(sub, config, llama_state(config, 0))


@check(T_LM_INIT, points=1, spec="with ``tie_embeddings=True`` its weight **is** ``embed_tokens.weight``")
@settings(max_examples=10)  # builds models only: a few configurations suffice
@given(config=llama_configs())
def test_lm_tied_embeddings_share_one_parameter(sub, config):
    """With tie_embeddings the LM head *is* the embedding (loading one name sets both)."""
    args, kwargs = _lm_args(config)
    state = _ours_from_hf(config, llama_state(config, 0))
    distinct = dict(state)
    distinct["lm_head.weight"] = state["embed_tokens.weight"] + 1.0
    obj = sub.new("DecoderLM", *args, **kwargs)
    # only a model with the spec's parameters earns this point
    _expect_state_shapes(obj.call("state_dict"), state, f"DecoderLM{args} with {kwargs}",
                         lambda m: {k: tuple(v.shape) for k, v in m.DecoderLM(*args, **kwargs).state_dict().items()})
    obj.call("load_state_dict", distinct, strict=False)
    after = obj.call("state_dict")
    if not isinstance(after, dict) or not {"embed_tokens.weight", "lm_head.weight"} <= set(after):
        raise CheckFailed("DecoderLM.state_dict() lacks embed_tokens.weight or lm_head.weight")
    shared = torch.equal(after["embed_tokens.weight"], after["lm_head.weight"])
    if shared != bool(kwargs["tie_embeddings"]):
        problem = ("with tie_embeddings=True, lm_head.weight must be the same Parameter as embed_tokens.weight"
                   if kwargs["tie_embeddings"] else "with tie_embeddings=False, lm_head and embed_tokens must have "
                   "separate weights")
        raise CheckFailed(problem, inputs=dict(args=args, **kwargs),
                          diagnosis=[known_mistake("lm_head_not_tied")] if kwargs["tie_embeddings"] else [])


@check(T_LM, points=3, spec="with the same weights to 1e-4 at every non-padding position")
@settings(max_examples=MODEL_EXAMPLES)
@given(config=llama_configs(), seed=seeds, B=st.integers(1, 3), T=st.integers(1, 6))
def test_lm_matches_llama_for_causal_lm(sub, config, seed, B, T):
    state = llama_state(config, seed)
    obj = _build_lm(sub, config, state)
    ids = torch.randint(0, config["vocab_size"], (B, T), generator=torch.Generator().manual_seed(seed))
    with diagnosing(lambda m: _local_lm(m, config, state)(ids)):
        out = obj(ids)
    expected = expected_or_composed(out, hf_logits(config, state, ids),
                                    lambda: _local_lm(composed(sub, LM_PARTS), config, state)(ids),
                                    atol=MODEL_ATOL, rtol=MODEL_RTOL)
    expect_close(out, expected, what="DecoderLM(input_ids) logits (compared with transformers' LlamaForCausalLM)",
                 atol=MODEL_ATOL, rtol=MODEL_RTOL, inputs=dict(config=config, input_ids=ids),
                 diagnose_with=lambda m: _local_lm(m, config, state)(ids))


@check(T_LM, points=2, spec="For a left-padded batch pass positions counted from each row's first real token")
@settings(max_examples=MODEL_EXAMPLES)
@given(config=llama_configs(), seed=seeds, am=padded_attention_masks(max_batch=3, max_len=6, side="left"))
def test_lm_left_padding_with_position_ids(sub, config, seed, am):
    state = llama_state(config, seed)
    obj = _build_lm(sub, config, state)
    ids, pos = _token_batch(seed, am, config["vocab_size"]), _positions(am)
    run = lambda m: _local_lm(m, config, state)(ids, attention_mask=am, position_ids=pos)  # noqa: E731
    with diagnosing(run):
        out = obj(ids, attention_mask=am, position_ids=pos)
    expected = hf_logits(config, state, ids, attention_mask=am, position_ids=pos)
    _compare_real(out, expected, am, what="DecoderLM logits of a left-padded batch (attention_mask and position_ids "
                  "given)", inputs=dict(config=config, input_ids=ids, attention_mask=am, position_ids=pos),
                  diagnose_with=run, compose=lambda: run(composed(sub, LM_PARTS)))


@check(T_LM, points=1, spec="position_ids: ``(B, T)`` or ``(T,)`` RoPE positions")
@settings(max_examples=MODEL_EXAMPLES)
@given(config=llama_configs(), seed=seeds, B=st.integers(1, 3), T=st.integers(2, 6))
def test_lm_uses_the_given_position_ids(sub, config, seed, B, T):
    """RoPE depends on position differences, so only positions with gaps show whether they are used."""
    state = llama_state(config, seed)
    obj = _build_lm(sub, config, state)
    ids = torch.randint(0, config["vocab_size"], (B, T), generator=torch.Generator().manual_seed(seed))
    pos = _random_positions(seed + 1, B, T)
    run = lambda m: _local_lm(m, config, state)(ids, position_ids=pos)  # noqa: E731
    with diagnosing(run):
        out = obj(ids, position_ids=pos)
    expected = expected_or_composed(out, hf_logits(config, state, ids, position_ids=pos),
                                    lambda: run(composed(sub, LM_PARTS)), atol=MODEL_ATOL, rtol=MODEL_RTOL)
    expect_close(out, expected, what="DecoderLM(input_ids, position_ids=...) logits with positions that have gaps",
                 atol=MODEL_ATOL, rtol=MODEL_RTOL, inputs=dict(config=config, input_ids=ids, position_ids=pos),
                 diagnose_with=run)


@check(T_LM, points=1, spec="Real tokens never attend to padding (``decoder_mask``)")
@settings(max_examples=MODEL_EXAMPLES)
@given(config=llama_configs(), seed=seeds, am=padded_attention_masks(max_batch=3, max_len=6, side="right"))
def test_lm_right_padding(sub, config, seed, am):
    state = llama_state(config, seed)
    obj = _build_lm(sub, config, state)
    ids = _token_batch(seed, am, config["vocab_size"])
    run = lambda m: _local_lm(m, config, state)(ids, attention_mask=am)  # noqa: E731
    with diagnosing(run):
        out = obj(ids, attention_mask=am)
    expected = hf_logits(config, state, ids, attention_mask=am)
    _compare_real(out, expected, am, what="DecoderLM logits of a right-padded batch", diagnose_with=run,
                  inputs=dict(config=config, input_ids=ids, attention_mask=am),
                  compose=lambda: run(composed(sub, LM_PARTS)))


# ---------------------------------------------------------------------------------------------
# DecoderLM.from_hf
# ---------------------------------------------------------------------------------------------
def _from_hf(sub, config: dict, state: dict):
    cls = sub.get("DecoderLM")
    hf = sub.factory("hf_llama", config, state)
    # a method's result comes back as a bare handle: wrap it like sub.call's results
    return sub._wrap(cls.call("from_hf", hf)), hf


def _local_from_hf(module, config, state):
    return module.DecoderLM.from_hf(hf_model(config, state))


@check(T_FROM_HF, points=3,
       spec=("A ``DecoderLM`` holding a copy of every weight of a transformers ``LlamaForCausalLM``",
             "the RoPE base (``config.rope_parameters[\"rope_theta\"]``)"))
@settings(max_examples=MODEL_EXAMPLES)
@given(config=llama_configs(), seed=seeds, am=padded_attention_masks(max_batch=3, max_len=6, side="left"))
def test_from_hf_matches_the_hf_model(sub, config, seed, am):
    state = llama_state(config, seed)
    ids, pos = _token_batch(seed, am, config["vocab_size"]), _positions(am)
    run = lambda m: _local_from_hf(m, config, state)(ids, attention_mask=am, position_ids=pos)  # noqa: E731
    with diagnosing(run):
        lm, _ = _from_hf(sub, config, state)
        out = lm(ids, attention_mask=am, position_ids=pos)
    expected = hf_logits(config, state, ids, attention_mask=am, position_ids=pos)
    _compare_real(out, expected, am, what="DecoderLM.from_hf(model) logits (compared with the transformers model it "
                  "was loaded from; its config sets the sizes, rope_theta, rms_norm_eps and tied embeddings)",
                  inputs=dict(config=config, input_ids=ids, attention_mask=am, position_ids=pos), diagnose_with=run,
                  compose=lambda: run(composed(sub, FROM_HF_PARTS)))


@check(T_FROM_HF, points=1,
       spec="the result is in eval mode, with the dtype of ``model``'s weights, and shares no tensor with ``model``")
@settings(max_examples=3)  # a property of the returned object: a few configurations suffice
@given(config=llama_configs(max_layers=1), seed=seeds)
def test_from_hf_returns_an_independent_model_in_eval_mode(sub, config, seed):
    state = llama_state(config, seed)
    lm, hf = _from_hf(sub, config, state)
    if lm.type_name != "DecoderLM":
        raise CheckFailed(f"DecoderLM.from_hf(model) returned a {lm.type_name}, expected a DecoderLM")
    if lm.get("training") is not False:
        raise CheckFailed("DecoderLM.from_hf(model) returned a model in training mode: call .eval() on it")
    ids = torch.arange(config["vocab_size"])[None] % config["vocab_size"]
    before = lm(ids)
    # only a model that holds the copied weights earns this point: its logits must be the HF model's
    expected = expected_or_composed(before, hf_logits(config, state, ids),
                                    lambda: _local_from_hf(composed(sub, FROM_HF_PARTS), config, state)(ids),
                                    atol=MODEL_ATOL, rtol=MODEL_RTOL)
    expect_close(before, expected, what="DecoderLM.from_hf(model)(input_ids) logits (compared with the transformers "
                 "model it was loaded from)", atol=MODEL_ATOL, rtol=MODEL_RTOL,
                 inputs=dict(config=config, input_ids=ids),
                 diagnose_with=lambda m: _local_from_hf(m, config, state)(ids))
    hf.call("load_state_dict", llama_state(config, seed + 1))  # change the source model's weights
    after = lm(ids)
    if not (isinstance(after, torch.Tensor) and torch.equal(before, after)):
        raise CheckFailed("changing the transformers model's weights after from_hf changes your model too: copy the "
                          "weights (param.copy_(...)) instead of sharing the tensors", inputs=dict(config=config))


# ---------------------------------------------------------------------------------------------
# next_token_loss
# ---------------------------------------------------------------------------------------------
@memo
def _hf_loss(logits, ids, am=None):
    """transformers' causal-LM loss (the one ``LlamaForCausalLM(labels=...)`` computes)."""
    from transformers.loss.loss_utils import ForCausalLMLoss

    labels = ids if am is None else ids.masked_fill(am == 0, -100)
    return ForCausalLMLoss(logits, labels, vocab_size=logits.shape[-1])


@st.composite
def loss_cases(draw, side):
    """(logits, input_ids, attention_mask): row 0 has >= 2 real tokens, so at least one pair counts."""
    B, T = draw(st.integers(1, 3)), draw(st.integers(2, 7))
    lengths = [draw(st.integers(2, T))] + [draw(st.integers(1, T)) for _ in range(B - 1)]
    am = torch.zeros(B, T, dtype=torch.long)
    for b, n in enumerate(lengths):
        if side == "left":
            am[b, T - n:] = 1
        else:
            am[b, :n] = 1
    if side is None:
        am[:] = 1
    V, seed = draw(st.integers(2, 9)), draw(seeds)
    logits = 2 * randn(seed, B, T, V)
    return logits, _token_batch(seed + 1, am, V), am


@check(T_LOSS, points=3,
       spec=("The mean is over all counted pairs of the batch (one token, one vote), as transformers' causal-LM loss",
             "Mean cross-entropy of predicting token ``t + 1`` from the logits at position ``t``"))
@settings(max_examples=LOSS_EXAMPLES)
@given(case=loss_cases(side=None), right=loss_cases(side="right"))
def test_loss_matches_transformers(sub, case, right):
    for (logits, ids, am), mask in ((case, None), (right, right[2])):
        inputs = dict(logits=logits, input_ids=ids, attention_mask=mask)
        with diagnosing(lambda m: m.next_token_loss(logits, ids, mask)):
            out = sub.call("next_token_loss", logits, ids, mask)
        expect_close(out, _hf_loss(logits, ids, mask), what="next_token_loss (compared with transformers' causal-LM "
                     "loss, labels = input_ids with padding set to -100)", atol=ATOL, rtol=RTOL, inputs=inputs,
                     diagnose_with=lambda m: m.next_token_loss(logits, ids, mask))


@check(T_LOSS, points=1, spec="padding is never a target and never a context")
@settings(max_examples=LOSS_EXAMPLES)
@given(case=loss_cases(side="left"))
def test_loss_left_padding_counts_only_real_pairs(sub, case):
    logits, ids, am = case
    total, count = 0.0, 0
    for b in range(am.shape[0]):  # each row alone, without its padding, pooled by token count
        real = am[b].bool()
        n = int(real.sum()) - 1
        if n > 0:
            total += float(_hf_loss(logits[b:b + 1, real], ids[b:b + 1, real])) * n
            count += n
    expected = torch.tensor(total / count, dtype=logits.dtype)
    with diagnosing(lambda m: m.next_token_loss(logits, ids, am)):
        out = sub.call("next_token_loss", logits, ids, am)
    expect_close(out, expected, what="next_token_loss of a left-padded batch (each row's real tokens only, averaged "
                 "over all predicted tokens)", atol=ATOL, rtol=RTOL,
                 inputs=dict(logits=logits, input_ids=ids, attention_mask=am),
                 diagnose_with=lambda m: m.next_token_loss(logits, ids, am))


@check(T_LOSS, points=1, spec="through which gradients flow back to ``logits``")
@settings(max_examples=LOSS_EXAMPLES)
@given(case=loss_cases(side="right"))
def test_loss_is_differentiable(sub, ref, case):
    logits, ids, am = case
    leaf = logits.clone().requires_grad_(True)
    out, grads = sub.call_grad("next_token_loss", leaf, ids, am)
    expect_tensor(out, what="next_token_loss", shape=())
    theirs = leaf.detach().clone().requires_grad_(True)
    ref.next_token_loss(theirs, ids, am).backward()
    if not grads or grads[0] is None:
        raise CheckFailed("no gradient reaches the logits: keep the loss a tensor computed from them (no .item(), no "
                          ".detach())", inputs=dict(logits=logits, input_ids=ids, attention_mask=am))
    if not torch.allclose(out.detach().double(), ref.next_token_loss(logits, ids, am).double(), atol=ATOL, rtol=RTOL):
        return  # a wrong loss has a wrong gradient too: the checks of the value charge that mistake
    expect_close(grads[0], theirs.grad, what="the gradient of next_token_loss with respect to the logits", atol=1e-6,
                 rtol=1e-4, inputs=dict(logits=logits, input_ids=ids, attention_mask=am))
