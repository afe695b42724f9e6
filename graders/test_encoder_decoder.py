"""Hidden graders for ``encoder_decoder`` (API.md §15): the original Transformer from the student's parts.

Every layer and model is cross-checked against torch's own ``nn.TransformerEncoderLayer`` /
``nn.TransformerDecoderLayer`` (``batch_first=True, norm_first=True``, ReLU, no dropout) and, for the
whole model, ``nn.TransformerEncoder`` / ``nn.TransformerDecoder`` with their final LayerNorms, with
the same (copied) weights, on sizes hypothesis draws: 1-3 heads of 1-4 features, feed-forward widths
1-8, LayerNorm epsilons, left- or right-padded sources, right-padded targets. torch is run with
gradients enabled so that it takes its plain (not the fused "fast path") code, then detached. Random
weights have unit scale (matrices N(0, 1/fan_in), norm weights around 1, biases around 0.1) so that
every part matters.

Decoding loops are graded on a scripted stand-in model (``scripted_translator`` factory) whose every
row has a planned output, so stopping at EOS, BOS and the length cap are isolated from the model.

Tolerances: float32 1e-5 absolute + 1e-4 relative for one layer, 1e-4 + 1e-4 for whole models.
"""
from __future__ import annotations

import math

import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from graders.strategies import padded_attention_masks, randn, seeds
from graders.test_decoder_lm import _expect_state_shapes, memo
from llmlab.grading import factories
from llmlab.grading.compose import composed, expected_or_composed
from llmlab.grading.checks import (CheckFailed, check, diagnose, diagnosing, expect_close, expect_equal,
                                  expect_raises, expect_tensor, known_mistake, later)

TOPIC = "encoder_decoder"
T_POS = f"{TOPIC}.sinusoidal_positions"
T_ENC_INIT, T_ENC, T_ENC_TORCH = (f"{TOPIC}.EncoderLayer.{m}" for m in ("__init__", "forward", "from_torch"))
T_DEC_INIT, T_DEC, T_DEC_TORCH = (f"{TOPIC}.DecoderLayer.{m}" for m in ("__init__", "forward", "from_torch"))
T_MODEL_INIT, T_ENCODE, T_DECODE, T_FORWARD = (f"{TOPIC}.EncoderDecoder.{m}"
                                                for m in ("__init__", "encode", "decode", "forward"))
T_GREEDY = f"{TOPIC}.greedy_translate"
ATOL, RTOL = 1e-5, 1e-4  # one layer, float32
MODEL_ATOL, MODEL_RTOL = 1e-4, 1e-4  # a whole model
# A layer or model example builds the student's module in the worker (several round trips): fewer examples.
LAYER_EXAMPLES = 8
MODEL_EXAMPLES = 6


# ---------------------------------------------------------------------------------------------
# Sizes, weights and the trusted torch computations
# ---------------------------------------------------------------------------------------------
@st.composite
def layer_sizes(draw):
    """(d_model, n_heads, d_ff, norm_eps) of a tiny layer."""
    n_heads = draw(st.integers(1, 3))
    return (n_heads * draw(st.integers(1, 4)), n_heads, draw(st.integers(1, 8)),
            draw(st.sampled_from([1e-5, 1e-3, 0.1])))


def unit_scale_state(shapes: dict, seed: int) -> dict:
    """Seeded weights for a state dict of these shapes: matrices N(0, 1/fan_in), norm weights 1 + N(0, 0.3)
    (a name with ``norm``), other vectors N(0, 0.1); embeddings N(0, 1)."""
    state = {}
    for n, (key, shape) in enumerate(sorted(shapes.items())):
        if "embed" in key:
            state[key] = randn(seed + n, *shape)
        elif len(shape) == 2:
            state[key] = randn(seed + n, *shape) / math.sqrt(shape[1])
        elif "norm" in key and key.endswith("weight"):
            state[key] = 1 + 0.3 * randn(seed + n, *shape)
        else:
            state[key] = 0.1 * randn(seed + n, *shape)
    return state


def torch_layer_state(kind: str, sizes: tuple, seed: int) -> dict:
    d, h, f, eps = sizes
    shapes = {k: tuple(v.shape) for k, v in factories.torch_transformer_layer(kind, d, h, f).state_dict().items()}
    return unit_scale_state(shapes, seed)


def spec_layer_state(torch_state: dict, prefix: str = "") -> dict:
    """A torch layer's state dict under the spec's names (q, k, v split out of ``in_proj``)."""
    out = {}
    for key, value in torch_state.items():
        if not key.startswith(prefix):
            continue
        key = key[len(prefix):]
        attn, _, rest = key.partition(".")
        if attn in ("self_attn", "multihead_attn"):
            mine = "self_attn" if attn == "self_attn" else "cross_attn"
            if rest.startswith("in_proj_"):
                kind = rest[len("in_proj_"):]
                for i, p in enumerate(("q_proj", "k_proj", "v_proj")):
                    out[f"{mine}.{p}.{kind}"] = value.chunk(3)[i]
            else:
                out[f"{mine}.o_proj.{rest.partition('.')[2]}"] = value
        else:
            out[key] = value
    return out


def _ref_layer(kind: str, sizes: tuple, state: dict):
    d, h, f, eps = sizes
    return factories.torch_transformer_layer(kind, d, h, f, state, layer_norm_eps=eps)


@memo
def torch_encoder_layer(sizes: tuple, state: dict, x, am):
    """torch's layer output; ``am`` the 0/1 mask (``None``: no padding). Grad enabled: no fast path."""
    layer = _ref_layer("encoder", sizes, state)
    return layer(x, src_key_padding_mask=None if am is None else am == 0).detach()


@memo
def torch_decoder_layer(sizes: tuple, state: dict, x, memory, tgt_am, src_am):
    layer = _ref_layer("decoder", sizes, state)
    T = x.shape[1]
    forbidden = ~torch.ones(T, T, dtype=torch.bool).tril()
    return layer(x, memory, tgt_mask=forbidden, tgt_key_padding_mask=None if tgt_am is None else tgt_am == 0,
                 memory_key_padding_mask=None if src_am is None else src_am == 0).detach()


def _later(compute, actual):
    return later(lambda: diagnose(compute, actual))


def _spec_shapes(cls: str, *args, **kwargs):
    return lambda m: {k: tuple(v.shape) for k, v in getattr(m, cls)(*args, **kwargs).state_dict().items()}


def _build_layer(sub, kind: str, sizes: tuple, seed: int):
    """The student's layer from its constructor, loaded with the spec's names; and the torch state."""
    cls = "EncoderLayer" if kind == "encoder" else "DecoderLayer"
    d, h, f, eps = sizes
    torch_state = torch_layer_state(kind, sizes, seed)
    ours = spec_layer_state(torch_state)
    obj = sub.new(cls, d, h, f, norm_eps=eps)
    _expect_state_shapes(obj.call("state_dict"), ours, f"{cls}({d}, {h}, {f}, norm_eps={eps})",
                         _spec_shapes(cls, d, h, f, norm_eps=eps))
    obj.call("load_state_dict", ours)
    obj.call("eval")
    return obj, torch_state, ours


def _local_layer(module, kind: str, sizes: tuple, ours: dict):
    d, h, f, eps = sizes
    layer = getattr(module, "EncoderLayer" if kind == "encoder" else "DecoderLayer")(d, h, f, norm_eps=eps)
    layer.load_state_dict(ours)
    return layer.eval()


def _keep_real(t, am):
    """``t`` (B, L, ...) with the rows of padding positions zeroed (their values are unspecified)."""
    real = am.bool().reshape(am.shape + (1,) * (t.dim() - 2))
    return torch.where(real, t, torch.zeros_like(t))


def _padding_mask(am):
    return (am != 0)[:, None, None, :]


def _decoder_mask(am):
    T = am.shape[1]
    return torch.ones(T, T, dtype=torch.bool).tril()[None, None] & _padding_mask(am)


# ---------------------------------------------------------------------------------------------
# sinusoidal_positions
# ---------------------------------------------------------------------------------------------
@check(T_POS, points=2, spec=("sin on the even features, cos on the odd ones", "A float32 tensor of shape"))
@given(n=st.integers(0, 40), d=st.integers(1, 12))
def test_sinusoidal_positions_follow_the_formula(sub, ref, n, d):
    out = sub.call("sinusoidal_positions", n, d)
    expect_close(out, ref.sinusoidal_positions(n, d), what=f"sinusoidal_positions({n}, {d})", atol=ATOL, rtol=RTOL,
                 inputs=dict(n_positions=n, d_model=d), diagnose_with=lambda m: m.sinusoidal_positions(n, d))


@check(T_POS, points=1, spec="if ``n_positions < 0`` or ``d_model < 1``")
def test_sinusoidal_positions_reject_bad_sizes(sub, ref):
    # a valid call first, with the right answer: only a working function earns this point
    expect_close(sub.call("sinusoidal_positions", 4, 6), ref.sinusoidal_positions(4, 6),
                 what="sinusoidal_positions(4, 6)", atol=ATOL, rtol=RTOL, inputs=dict(n_positions=4, d_model=6),
                 diagnose_with=lambda m: m.sinusoidal_positions(4, 6))
    expect_raises(lambda: sub.call("sinusoidal_positions", -1, 4), "ValueError", what="sinusoidal_positions(-1, 4)")
    expect_raises(lambda: sub.call("sinusoidal_positions", 3, 0), "ValueError", what="sinusoidal_positions(3, 0)")


# ---------------------------------------------------------------------------------------------
# EncoderLayer and DecoderLayer: constructor, forward, from_torch
# ---------------------------------------------------------------------------------------------
@check(T_ENC_INIT, points=1, spec="names are part of the spec")
@settings(max_examples=LAYER_EXAMPLES)
@given(sizes=layer_sizes())
def test_encoder_layer_parameters_follow_the_spec(sub, sizes):
    _build_layer(sub, "encoder", sizes, 0)


@check(T_DEC_INIT, points=1, spec="names are part of the spec")
@settings(max_examples=LAYER_EXAMPLES)
@given(sizes=layer_sizes())
def test_decoder_layer_parameters_follow_the_spec(sub, sizes):
    _build_layer(sub, "decoder", sizes, 0)


@check(T_ENC, points=2, spec="every position attends to every position")
@settings(max_examples=LAYER_EXAMPLES)
@given(sizes=layer_sizes(), seed=seeds, B=st.integers(1, 2), S=st.integers(1, 6))
def test_encoder_layer_matches_torch(sub, sizes, seed, B, S):
    obj, torch_state, ours = _build_layer(sub, "encoder", sizes, seed)
    x = randn(seed + 99, B, S, sizes[0])
    run = lambda m: _local_layer(m, "encoder", sizes, ours)(x)  # noqa: E731
    with diagnosing(run):
        out = obj(x)
    expect_close(out, torch_encoder_layer(sizes, torch_state, x, None), what="EncoderLayer(x) without a mask "
                 "(compared with torch.nn.TransformerEncoderLayer, norm_first=True)", atol=ATOL, rtol=RTOL,
                 inputs=dict(sizes=sizes, x=x), diagnose_with=run)


@check(T_ENC, points=2, spec="True = may attend")
@settings(max_examples=LAYER_EXAMPLES)
@given(sizes=layer_sizes(), seed=seeds, am=padded_attention_masks(max_batch=3, max_len=6))
def test_encoder_layer_padding_mask(sub, sizes, seed, am):
    obj, torch_state, ours = _build_layer(sub, "encoder", sizes, seed)
    x = randn(seed + 99, *am.shape, sizes[0])
    mask = _padding_mask(am)
    run = lambda m: _keep_real(_local_layer(m, "encoder", sizes, ours)(x, mask), am)  # noqa: E731
    with diagnosing(run):
        out = expect_tensor(obj(x, mask), what="EncoderLayer(x, mask)", shape=tuple(x.shape))
    expect_close(_keep_real(out, am), _keep_real(torch_encoder_layer(sizes, torch_state, x, am), am),
                 what="EncoderLayer(x, mask) with a padding mask, at the real positions (compared with torch's "
                 "layer and src_key_padding_mask)", atol=ATOL, rtol=RTOL, inputs=dict(sizes=sizes, x=x, mask=mask),
                 diagnose_with=run)


@check(T_DEC, points=2, spec=("``None``: the plain causal mask", "cross_attn(norm2(h), memory_mask, context=memory)"))
@settings(max_examples=LAYER_EXAMPLES)
@given(sizes=layer_sizes(), seed=seeds, B=st.integers(1, 2), T=st.integers(1, 5), S=st.integers(1, 5))
def test_decoder_layer_matches_torch(sub, sizes, seed, B, T, S):
    obj, torch_state, ours = _build_layer(sub, "decoder", sizes, seed)
    x, memory = randn(seed + 99, B, T, sizes[0]), randn(seed + 98, B, S, sizes[0])
    run = lambda m: _local_layer(m, "decoder", sizes, ours)(x, memory)  # noqa: E731
    with diagnosing(run):
        out = obj(x, memory)
    expect_close(out, torch_decoder_layer(sizes, torch_state, x, memory, None, None), what="DecoderLayer(x, memory) "
                 "with the default (causal) self-attention mask (compared with torch.nn.TransformerDecoderLayer, "
                 "norm_first=True)", atol=ATOL, rtol=RTOL, inputs=dict(sizes=sizes, x=x, memory=memory),
                 diagnose_with=run)


@check(T_DEC, points=2, spec=("e.g. ``decoder_mask(tgt_mask)``", "e.g. ``padding_mask(src_mask)``"))
@settings(max_examples=LAYER_EXAMPLES)
@given(sizes=layer_sizes(), seed=seeds, tgt_am=padded_attention_masks(max_batch=2, max_len=5, side="right"),
       S=st.integers(1, 5), left=st.booleans())
def test_decoder_layer_padding_masks(sub, sizes, seed, tgt_am, S, left):
    obj, torch_state, ours = _build_layer(sub, "decoder", sizes, seed)
    B, T = tgt_am.shape
    lengths = torch.randint(1, S + 1, (B,), generator=torch.Generator().manual_seed(seed))
    src_am = (torch.arange(S)[None] < lengths[:, None]).long()
    if left:
        src_am = src_am.flip(-1)
    x, memory = randn(seed + 99, B, T, sizes[0]), randn(seed + 98, B, S, sizes[0])
    self_mask, memory_mask = _decoder_mask(tgt_am), _padding_mask(src_am)
    run = lambda m: _keep_real(_local_layer(m, "decoder", sizes, ours)(x, memory, self_mask, memory_mask),  # noqa
                               tgt_am)
    with diagnosing(run):
        out = expect_tensor(obj(x, memory, self_mask, memory_mask), what="DecoderLayer(x, memory, self_mask, "
                            "memory_mask)", shape=tuple(x.shape))
    expected = torch_decoder_layer(sizes, torch_state, x, memory, tgt_am, src_am)
    expect_close(_keep_real(out, tgt_am), _keep_real(expected, tgt_am), what="DecoderLayer(x, memory, self_mask, "
                 "memory_mask) with a padded target and a padded source, at the real target positions (compared with "
                 "torch's layer and its key-padding masks)", atol=ATOL, rtol=RTOL,
                 inputs=dict(sizes=sizes, x=x, memory=memory, self_mask=self_mask, memory_mask=memory_mask),
                 diagnose_with=run)


def _from_torch(sub, kind: str, sizes: tuple, state: dict, **options):
    cls = sub.get("EncoderLayer" if kind == "encoder" else "DecoderLayer")
    d, h, f, eps = sizes
    layer = sub.factory("torch_transformer_layer", kind, d, h, f, state, layer_norm_eps=eps, **options)
    return sub._wrap(cls.call("from_torch", layer))


def _check_from_torch(sub, kind: str, sizes: tuple, seed: int):
    cls = "EncoderLayer" if kind == "encoder" else "DecoderLayer"
    torch_state = torch_layer_state(kind, sizes, seed)
    ours = spec_layer_state(torch_state)
    with diagnosing(lambda m: getattr(m, cls).from_torch(_ref_layer(kind, sizes, torch_state)).state_dict()):
        mine = _from_torch(sub, kind, sizes, torch_state)
    if mine.type_name != cls:
        raise CheckFailed(f"{cls}.from_torch(layer) returned a {mine.type_name}, expected a {cls}")
    have = mine.call("state_dict")
    what = f"{cls}.from_torch(torch.nn.Transformer{kind.title()}Layer{sizes[:3]})"
    _expect_state_shapes(have, ours, what, _spec_shapes(cls, *sizes[:3], norm_eps=sizes[3]))
    for key, value in ours.items():
        expect_close(have[key], value, what=f"{what}.state_dict()[{key!r}] (copied from the torch layer)", atol=0,
                     rtol=0, inputs=dict(sizes=sizes),
                     diagnose_with=lambda m, key=key: getattr(m, cls).from_torch(
                         _ref_layer(kind, sizes, torch_state)).state_dict()[key])
    norms = ("norm1", "norm2") if kind == "encoder" else ("norm1", "norm2", "norm3")
    for norm in norms:
        eps = sub._wrap(mine.get(norm)).get("eps")
        if not isinstance(eps, float) or not math.isclose(eps, sizes[3]):
            raise CheckFailed(f"{what}.{norm}.eps is {eps!r}, but the torch layer's is {sizes[3]}: copy layer_norm_eps "
                              "too", inputs=dict(sizes=sizes), diagnosis=[known_mistake("norm_eps_not_copied")])
    if mine.get("training") is not False:
        raise CheckFailed(f"{what} returned a layer in training mode: call .eval() on it", inputs=dict(sizes=sizes))


@check(T_ENC_TORCH, points=2, spec=("q, then k, then v", "The LayerNorms' ``eps`` is copied too", "in eval mode"))
@settings(max_examples=LAYER_EXAMPLES)
@given(sizes=layer_sizes(), seed=seeds)
def test_encoder_layer_from_torch_copies_every_weight(sub, sizes, seed):
    _check_from_torch(sub, "encoder", sizes, seed)


@check(T_DEC_TORCH, points=2, spec=("its ``multihead_attn`` (the cross-attention) becomes ``cross_attn``",
                                    "q, then k, then v", "in eval mode"))
@settings(max_examples=LAYER_EXAMPLES)
@given(sizes=layer_sizes(), seed=seeds)
def test_decoder_layer_from_torch_copies_every_weight(sub, sizes, seed):
    _check_from_torch(sub, "decoder", sizes, seed)


@check(T_ENC_TORCH, points=1, spec="if it is post-norm (``norm_first=False``), its activation is not ReLU")
def test_encoder_layer_from_torch_rejects_other_architectures(sub):
    sizes = (4, 2, 6, 1e-5)
    _check_from_torch(sub, "encoder", sizes, 0)  # only a working from_torch earns this point
    state = torch_layer_state("encoder", sizes, 0)
    expect_raises(lambda: _from_torch(sub, "encoder", sizes, state, norm_first=False), "ValueError",
                  what="EncoderLayer.from_torch of a post-norm layer (norm_first=False)")
    expect_raises(lambda: _from_torch(sub, "encoder", sizes, state, activation="gelu"), "ValueError",
                  what="EncoderLayer.from_torch of a layer with activation='gelu'")


@check(T_DEC_TORCH, points=1, spec="if it is post-norm (``norm_first=False``), its activation is not ReLU")
def test_decoder_layer_from_torch_rejects_other_architectures(sub):
    sizes = (4, 2, 6, 1e-5)
    _check_from_torch(sub, "decoder", sizes, 0)  # only a working from_torch earns this point
    state = torch_layer_state("decoder", sizes, 0)
    expect_raises(lambda: _from_torch(sub, "decoder", sizes, state, norm_first=False), "ValueError",
                  what="DecoderLayer.from_torch of a post-norm layer (norm_first=False)")
    expect_raises(lambda: _from_torch(sub, "decoder", sizes, state, activation="gelu"), "ValueError",
                  what="DecoderLayer.from_torch of a layer with activation='gelu'")


# ---------------------------------------------------------------------------------------------
# EncoderDecoder, against torch's TransformerEncoder / TransformerDecoder with final norms
# ---------------------------------------------------------------------------------------------
@st.composite
def model_configs(draw):
    n_heads = draw(st.integers(1, 2))
    return dict(src_vocab=draw(st.integers(3, 12)), tgt_vocab=draw(st.integers(3, 12)),
                d_model=n_heads * draw(st.integers(1, 4)), n_heads=n_heads, n_layers=draw(st.integers(1, 2)),
                d_ff=draw(st.integers(1, 8)), max_len=draw(st.integers(6, 9)), pad_id=draw(st.integers(0, 2)))


def _config_args(c: dict):
    return (c["src_vocab"], c["tgt_vocab"]), {k: c[k] for k in ("d_model", "n_heads", "n_layers", "d_ff", "max_len",
                                                                "pad_id")}


def model_state(c: dict, seed: int) -> dict:
    """Weights of an ``EncoderDecoder`` under the spec's names (from torch layers' shapes)."""
    d, f, n = c["d_model"], c["d_ff"], c["n_layers"]
    shapes = {"src_embed.weight": (c["src_vocab"], d), "tgt_embed.weight": (c["tgt_vocab"], d),
              "encoder_norm.weight": (d,), "encoder_norm.bias": (d,), "decoder_norm.weight": (d,),
              "decoder_norm.bias": (d,), "out_proj.weight": (c["tgt_vocab"], d), "out_proj.bias": (c["tgt_vocab"],)}
    for kind, name in (("encoder", "encoder_layers"), ("decoder", "decoder_layers")):
        layer = spec_layer_state(factories.torch_transformer_layer(kind, d, c["n_heads"], f).state_dict())
        for i in range(n):
            shapes.update({f"{name}.{i}.{k}": tuple(v.shape) for k, v in layer.items()})
    return unit_scale_state(shapes, seed)


def _torch_layer_from_spec(kind: str, c: dict, state: dict, prefix: str):
    """A torch layer holding the spec-named weights under ``prefix`` (the inverse of ``spec_layer_state``)."""
    layer = factories.torch_transformer_layer(kind, c["d_model"], c["n_heads"], c["d_ff"])
    theirs = {}
    for key in layer.state_dict():
        attn, _, rest = key.partition(".")
        if attn in ("self_attn", "multihead_attn"):
            mine = prefix + ("self_attn" if attn == "self_attn" else "cross_attn")
            if rest.startswith("in_proj_"):
                kind_ = rest[len("in_proj_"):]
                theirs[key] = torch.cat([state[f"{mine}.{p}.{kind_}"] for p in ("q_proj", "k_proj", "v_proj")])
            else:
                theirs[key] = state[f"{mine}.o_proj.{rest.partition('.')[2]}"]
        else:
            theirs[key] = state[prefix + key]
    layer.load_state_dict(theirs)
    return layer


def _embed(c: dict, table, ids, positions):
    return table[ids] * math.sqrt(c["d_model"]) + positions[:ids.shape[1]]


@memo
def torch_encode(c: dict, state: dict, src, src_am, positions):
    """The spec's encoder computed with torch's layers; ``positions`` from the reference."""
    layers = [_torch_layer_from_spec("encoder", c, state, f"encoder_layers.{i}.") for i in range(c["n_layers"])]
    h = _embed(c, state["src_embed.weight"], src, positions)
    for layer in layers:
        h = layer(h, src_key_padding_mask=src_am == 0)
    return torch.nn.functional.layer_norm(h, (c["d_model"],), state["encoder_norm.weight"],
                                          state["encoder_norm.bias"]).detach()


@memo
def torch_decode(c: dict, state: dict, tgt, memory, src_am, tgt_am, positions):
    layers = [_torch_layer_from_spec("decoder", c, state, f"decoder_layers.{i}.") for i in range(c["n_layers"])]
    T = tgt.shape[1]
    h = _embed(c, state["tgt_embed.weight"], tgt, positions)
    for layer in layers:
        h = layer(h, memory, tgt_mask=~torch.ones(T, T, dtype=torch.bool).tril(), tgt_key_padding_mask=tgt_am == 0,
                  memory_key_padding_mask=src_am == 0)
    h = torch.nn.functional.layer_norm(h, (c["d_model"],), state["decoder_norm.weight"], state["decoder_norm.bias"])
    return torch.nn.functional.linear(h, state["out_proj.weight"], state["out_proj.bias"]).detach()


def _build_model(sub, c: dict, state: dict):
    args, kwargs = _config_args(c)
    obj = sub.new("EncoderDecoder", *args, **kwargs)
    _expect_state_shapes(obj.call("state_dict"), state, f"EncoderDecoder{args} with {kwargs}",
                         _spec_shapes("EncoderDecoder", *args, **kwargs))
    obj.call("load_state_dict", state)
    obj.call("eval")
    return obj


def _local_model(module, c: dict, state: dict):
    args, kwargs = _config_args(c)
    model = module.EncoderDecoder(*args, **kwargs)
    model.load_state_dict(state)
    return model.eval()


@st.composite
def batches(draw, c_strategy=model_configs()):
    """(config, seed, src, src_am, tgt, tgt_am): a padded source (either side) and a right-padded target."""
    c, seed = draw(c_strategy), draw(seeds)
    src_am = draw(padded_attention_masks(max_batch=3, max_len=c["max_len"]))
    B = src_am.shape[0]
    T = draw(st.integers(1, c["max_len"]))
    lengths = draw(st.lists(st.integers(1, T), min_size=B, max_size=B))
    tgt_am = (torch.arange(T)[None] < torch.tensor(lengths)[:, None]).long()
    g = torch.Generator().manual_seed(seed)
    src = torch.randint(0, c["src_vocab"], src_am.shape, generator=g).masked_fill(src_am == 0, c["pad_id"])
    tgt = torch.randint(0, c["tgt_vocab"], tgt_am.shape, generator=g).masked_fill(tgt_am == 0, c["pad_id"])
    return c, seed, src, src_am, tgt, tgt_am


@check(T_MODEL_INIT, points=1, spec="names are part of the spec")
@settings(max_examples=MODEL_EXAMPLES)
@given(c=model_configs())
def test_model_parameters_follow_the_spec(sub, c):
    _build_model(sub, c, model_state(c, 0))


@check(T_MODEL_INIT, points=1, spec="if ``d_model`` is not divisible by ``n_heads``")
def test_model_rejects_heads_that_do_not_divide(sub):
    c = dict(src_vocab=5, tgt_vocab=6, d_model=4, n_heads=2, n_layers=1, d_ff=3, max_len=6, pad_id=0)
    _build_model(sub, c, model_state(c, 0))  # only a working constructor earns this point
    expect_raises(lambda: sub.new("EncoderDecoder", 5, 6, d_model=6, n_heads=4, n_layers=1, d_ff=3, max_len=6),
                  "ValueError", what="EncoderDecoder(5, 6, d_model=6, n_heads=4, ...)")


@check(T_ENCODE, points=2, spec=("``embed(ids) * sqrt(d_model) + P[:L]``",
                                 "every real token sees every real token"))
@settings(max_examples=MODEL_EXAMPLES)
@given(case=batches())
def test_encode_matches_torch_encoder(sub, ref, case):
    c, seed, src, src_am, _, _ = case
    state = model_state(c, seed)
    obj = _build_model(sub, c, state)
    run = lambda m: _keep_real(_local_model(m, c, state).encode(src, src_am), src_am)  # noqa: E731
    with diagnosing(run):
        memory = expect_tensor(obj.call("encode", src, src_am), what="encode(src_ids, src_mask)",
                               shape=(*src.shape, c["d_model"]))
    expected = expected_or_composed(_keep_real(memory, src_am), _keep_real(torch_encode(c, state, src, src_am, _positions(
        ref, c)), src_am), lambda: run(composed(sub, MODEL_PARTS)), atol=MODEL_ATOL, rtol=MODEL_RTOL)
    expect_close(_keep_real(memory, src_am), expected, what="encode(src_ids, src_mask) at the "
                 "real source positions (compared with torch's encoder layers and final LayerNorm)", atol=MODEL_ATOL,
                 rtol=MODEL_RTOL, inputs=dict(config=c, src_ids=src, src_mask=src_am), diagnose_with=run)


# What an EncoderDecoder is built from, each graded by checks of its own: the model's checks also accept
# the reference model over the student's own parts (llmlab.grading.compose), so a wrong layer or
# positional table is not charged again on encode, decode and forward.
MODEL_PARTS = ("sinusoidal_positions", "EncoderLayer", "DecoderLayer")


def _positions(ref, c: dict):
    return ref.sinusoidal_positions(c["max_len"], c["d_model"])


@check(T_DECODE, points=3, spec=("Self-attention is causal and skips target padding",
                                 "cross-attention never reads source padding"))
@settings(max_examples=MODEL_EXAMPLES)
@given(case=batches())
def test_decode_matches_torch_decoder(sub, ref, case):
    c, seed, src, src_am, tgt, tgt_am = case
    state = model_state(c, seed)
    obj = _build_model(sub, c, state)
    memory = randn(seed + 7, *src.shape, c["d_model"])  # any memory: decode is graded apart from encode
    run = lambda m: _keep_real(_local_model(m, c, state).decode(tgt, memory, src_am, tgt_am), tgt_am)  # noqa: E731
    with diagnosing(run):
        logits = expect_tensor(obj.call("decode", tgt, memory, src_am, tgt_am),
                               what="decode(tgt_ids, memory, src_mask, tgt_mask)", shape=(*tgt.shape, c["tgt_vocab"]))
    expected = expected_or_composed(_keep_real(logits, tgt_am), _keep_real(torch_decode(
        c, state, tgt, memory, src_am, tgt_am, _positions(ref, c)), tgt_am), lambda: run(composed(sub, MODEL_PARTS)),
        atol=MODEL_ATOL, rtol=MODEL_RTOL)
    expect_close(_keep_real(logits, tgt_am), expected, what="decode(tgt_ids, memory, src_mask, "
                 "tgt_mask) logits at the real target positions (compared with torch's decoder layers, final LayerNorm "
                 "and out_proj)", atol=MODEL_ATOL, rtol=MODEL_RTOL,
                 inputs=dict(config=c, tgt_ids=tgt, memory=memory, src_mask=src_am, tgt_mask=tgt_am), diagnose_with=run)


@check(T_FORWARD, points=1, spec="``decode(tgt_ids, encode(src_ids, src_mask), src_mask, tgt_mask)``")
@settings(max_examples=MODEL_EXAMPLES)
@given(case=batches())
def test_forward_is_decode_of_encode(sub, ref, case):
    c, seed, src, src_am, tgt, tgt_am = case
    state = model_state(c, seed)
    obj = _build_model(sub, c, state)
    run = lambda m: _keep_real(_local_model(m, c, state)(src, src_am, tgt, tgt_am), tgt_am)  # noqa: E731
    with diagnosing(run):
        logits = expect_tensor(obj(src, src_am, tgt, tgt_am), what="model(src_ids, src_mask, tgt_ids, tgt_mask)",
                               shape=(*tgt.shape, c["tgt_vocab"]))
    positions = _positions(ref, c)
    expected = expected_or_composed(_keep_real(logits, tgt_am), _keep_real(torch_decode(
        c, state, tgt, torch_encode(c, state, src, src_am, positions), src_am, tgt_am, positions), tgt_am),
        lambda: run(composed(sub, MODEL_PARTS)), atol=MODEL_ATOL, rtol=MODEL_RTOL)
    expect_close(_keep_real(logits, tgt_am), expected, what="model(src_ids, src_mask, tgt_ids, "
                 "tgt_mask) logits at the real target positions (compared with torch's encoder and decoder)",
                 atol=MODEL_ATOL, rtol=MODEL_RTOL,
                 inputs=dict(config=c, src_ids=src, src_mask=src_am, tgt_ids=tgt, tgt_mask=tgt_am), diagnose_with=run)


@check(T_ENCODE, points=1, spec="longer than ``max_len``")
def test_encode_rejects_too_long_sources(sub):
    c = dict(src_vocab=5, tgt_vocab=6, d_model=4, n_heads=2, n_layers=1, d_ff=3, max_len=6, pad_id=0)
    obj = _build_model(sub, c, model_state(c, 0))
    src = torch.ones(1, 6, dtype=torch.long)
    expect_tensor(obj.call("encode", src, torch.ones_like(src)), what="encode of a (1, 6) source (max_len=6)",
                  shape=(1, 6, 4))  # a working encode first: only it earns this point
    long = torch.ones(1, 7, dtype=torch.long)
    expect_raises(lambda: obj.call("encode", long, torch.ones_like(long)), "ValueError",
                  what="encode of a (1, 7) source when max_len=6")


# ---------------------------------------------------------------------------------------------
# greedy_translate, on a scripted model
# ---------------------------------------------------------------------------------------------
BOS, EOS, WRONG, VOCAB = 1, 2, 3, 9


@st.composite
def scripts(draw, max_len):
    """One planned output per row: content tokens (4..8), then EOS at a drawn step, or no EOS at all."""
    B = draw(st.integers(1, 4))
    rows = []
    for _ in range(B):
        n = draw(st.integers(0, max_len + 1))
        row = draw(st.lists(st.integers(4, VOCAB - 1), min_size=n, max_size=n))
        rows.append(row + [EOS] if draw(st.booleans()) else row)  # past its end the model says WRONG
    return rows


def _greedy(sub, script, max_len):
    B = len(script)
    src = torch.full((B, 3), 5, dtype=torch.long)
    am = torch.ones_like(src)
    model = sub.factory("scripted_translator", script, BOS, WRONG, VOCAB)
    out = sub.call("greedy_translate", model, src, am, bos_id=BOS, eos_id=EOS, max_len=max_len)
    local = lambda m: m.greedy_translate(factories.scripted_translator(script, BOS, WRONG, VOCAB), src, am,  # noqa
                                         bos_id=BOS, eos_id=EOS, max_len=max_len)
    return out, local, dict(planned_outputs=script, bos_id=BOS, eos_id=EOS, max_len=max_len)


def _expected(script, max_len):
    out = []
    for row in script:
        said = row + [WRONG] * max_len  # what the scripted model answers, step by step
        out.append(said[:min(said.index(EOS) if EOS in said else max_len, max_len)])
    return out


def _expect_lists(out, B, what, inputs):
    if not (isinstance(out, list) and len(out) == B and all(isinstance(r, list) for r in out)):
        raise CheckFailed(f"{what} should return a list of {B} lists (one per row), got {out!r:.200}", inputs=inputs)
    if not all(type(t) is int for r in out for t in r):
        raise CheckFailed(f"{what} should return plain Python ints (int(token)), got {out!r:.200}", inputs=inputs)


@check(T_GREEDY, points=3, spec=("without BOS, stopping at (and excluding) EOS",
                                 "Nothing a row would produce after its EOS appears"))
@settings(max_examples=15)
@given(script=scripts(max_len=8))
def test_greedy_stops_each_row_at_its_eos(sub, script):
    max_len = 10  # longer than every planned output: only EOS ends a row
    with diagnosing(lambda m: _greedy_local(m, script, max_len)):
        out, local, inputs = _greedy(sub, script, max_len)
    _expect_lists(out, len(script), "greedy_translate", inputs)
    expect_equal(out, _expected(script, max_len), what="greedy_translate's output (the model's greedy choices, "
                 "a row ending at its own EOS)", inputs=inputs, diagnose_with=local)


def _greedy_local(module, script, max_len):
    src = torch.full((len(script), 3), 5, dtype=torch.long)
    return module.greedy_translate(factories.scripted_translator(script, BOS, WRONG, VOCAB), src, torch.ones_like(src),
                                   bos_id=BOS, eos_id=EOS, max_len=max_len)


@check(T_GREEDY, points=1, spec="a row that produced no EOS has ``max_len`` tokens")
@settings(max_examples=10)
@given(script=scripts(max_len=6), max_len=st.integers(1, 5))
def test_greedy_stops_after_max_len_tokens(sub, script, max_len):
    with diagnosing(lambda m: _greedy_local(m, script, max_len)):
        out, local, inputs = _greedy(sub, script, max_len)
    _expect_lists(out, len(script), "greedy_translate", inputs)
    expect_equal(out, _expected(script, max_len), what=f"greedy_translate's output with max_len={max_len}",
                 inputs=inputs, diagnose_with=local)


@check(T_GREEDY, points=1, spec="if ``src_ids`` is not 2-dimensional or ``max_len < 1``")
def test_greedy_rejects_bad_arguments(sub):
    script = [[4, 5, EOS]]
    out, local, inputs = _greedy(sub, script, 4)  # a working loop first: only it earns this point
    expect_equal(out, _expected(script, 4), what="greedy_translate's output", inputs=inputs, diagnose_with=local)
    model = sub.factory("scripted_translator", script, BOS, WRONG, VOCAB)
    src = torch.full((1, 3), 5, dtype=torch.long)
    expect_raises(lambda: sub.call("greedy_translate", model, src, torch.ones_like(src), bos_id=BOS, eos_id=EOS,
                                   max_len=0), "ValueError", what="greedy_translate(..., max_len=0)")
    expect_raises(lambda: sub.call("greedy_translate", model, src[0], torch.ones_like(src[0]), bos_id=BOS,
                                   eos_id=EOS, max_len=3), "ValueError", what="greedy_translate of a 1-d src_ids")
