"""A small, safe wire format for the grader <-> worker protocol.

Only plain data crosses the process boundary: None, bool, int, float, str, bytes, lists, tuples,
dicts with str keys, and tensors (dtype, shape and raw bytes). Decoding never executes code and
never builds an object of a type the submission chose, so a worker cannot smuggle a payload
(a pickle, an object whose ``__eq__`` lies) into the grader.
"""
from __future__ import annotations

import collections
import json
import math
import struct

import torch

# dtypes that may cross the boundary; anything else is refused by name
_DTYPES = {
    "float16": torch.float16, "bfloat16": torch.bfloat16, "float32": torch.float32,
    "float64": torch.float64, "int8": torch.int8, "uint8": torch.uint8, "int16": torch.int16,
    "int32": torch.int32, "int64": torch.int64, "bool": torch.bool,
    "complex64": torch.complex64,
}
_NAMES = {v: k for k, v in _DTYPES.items()}

MAX_MESSAGE_BYTES = 512 * 1024 * 1024


class CodecError(ValueError):
    """A value cannot be encoded, or a message is malformed."""


class Handle:
    """A reference to an object that lives in the worker (a module instance, say)."""

    __slots__ = ("id", "type_name")

    def __init__(self, id: int, type_name: str = "object"):
        self.id = int(id)
        self.type_name = str(type_name)

    def __repr__(self) -> str:
        return f"<remote {self.type_name} #{self.id}>"

    def __eq__(self, other):
        return isinstance(other, Handle) and other.id == self.id

    def __hash__(self):
        return hash(self.id)


def _encode(value, buffers: list, depth: int = 0):
    if depth > 64:
        raise CodecError("value nested too deeply")
    # exact type checks: a subclass of int/str/tuple could carry lying methods
    t = type(value)
    if value is None or t is bool or t is str:
        return value
    if t is int:
        return {"int": str(value)} if abs(value) > 2**53 else value
    if t is float:
        if math.isfinite(value):
            return value
        return {"float": repr(value)}
    if t is bytes:
        buffers.append(value)
        return {"bytes": len(buffers) - 1}
    if t is list:
        return [_encode(v, buffers, depth + 1) for v in value]
    if t is tuple:
        return {"tuple": [_encode(v, buffers, depth + 1) for v in value]}
    if t is dict or t is collections.OrderedDict:
        out = {}
        for k, v in value.items():
            if type(k) is not str:
                raise CodecError("dict keys must be str")
            out[k] = _encode(v, buffers, depth + 1)
        return {"dict": out}
    if t is Handle:
        return {"handle": value.id, "type": value.type_name}
    if isinstance(value, torch.Tensor):
        # Tensor subclasses (Parameter, or a student's own) are flattened to plain data
        tensor = torch.Tensor.detach(value)
        if tensor.is_sparse or tensor.layout is not torch.strided:
            tensor = tensor.to_dense()
        tensor = tensor.to("cpu").contiguous()
        if tensor.dtype not in _NAMES:
            raise CodecError(f"tensor dtype {tensor.dtype} is not supported")
        raw = tensor.reshape(-1).view(torch.uint8).numpy().tobytes() if tensor.numel() else b""
        buffers.append(raw)
        return {"tensor": len(buffers) - 1, "dtype": _NAMES[tensor.dtype],
                "shape": list(tensor.shape), "requires_grad": bool(value.requires_grad)}
    raise CodecError(f"cannot send a value of type {t.__module__}.{t.__qualname__}")


def encode(value) -> bytes:
    """Encode ``value`` into one message: a JSON header followed by raw buffers."""
    buffers: list[bytes] = []
    header = json.dumps(_encode(value, buffers), separators=(",", ":")).encode()
    parts = [struct.pack("<II", len(header), len(buffers)), header]
    for b in buffers:
        parts.append(struct.pack("<Q", len(b)))
        parts.append(b)
    return b"".join(parts)


def _decode(node, buffers):
    if node is None or isinstance(node, (bool, int, float, str)):
        return node
    if isinstance(node, list):
        return [_decode(v, buffers) for v in node]
    if not isinstance(node, dict) or len(node) == 0:
        raise CodecError("malformed message")
    if "int" in node:
        return int(node["int"])
    if "float" in node:
        return float(node["float"])
    if "bytes" in node:
        return buffers[node["bytes"]]
    if "tuple" in node:
        return tuple(_decode(v, buffers) for v in node["tuple"])
    if "dict" in node:
        return {str(k): _decode(v, buffers) for k, v in node["dict"].items()}
    if "handle" in node:
        return Handle(node["handle"], node.get("type", "object"))
    if "tensor" in node:
        dtype = _DTYPES.get(node["dtype"])
        if dtype is None:
            raise CodecError(f"unknown dtype {node['dtype']!r}")
        shape = [int(s) for s in node["shape"]]
        raw = buffers[node["tensor"]]
        n = math.prod(shape)
        itemsize = torch.empty((), dtype=dtype).element_size()
        if len(raw) != n * itemsize:
            raise CodecError("tensor buffer has the wrong size")
        if n == 0:
            return torch.empty(shape, dtype=dtype)
        flat = torch.frombuffer(bytearray(raw), dtype=torch.uint8).view(dtype)
        tensor = flat.reshape(shape)
        if node.get("requires_grad"):
            tensor.requires_grad_(True)
        return tensor
    raise CodecError("malformed message")


def decode(data: bytes):
    """Inverse of :func:`encode`. Raises :class:`CodecError` on anything malformed."""
    try:
        hlen, nbuf = struct.unpack_from("<II", data, 0)
        pos = 8
        header = json.loads(data[pos:pos + hlen])
        pos += hlen
        buffers = []
        for _ in range(nbuf):
            (blen,) = struct.unpack_from("<Q", data, pos)
            pos += 8
            buffers.append(data[pos:pos + blen])
            pos += blen
    except (struct.error, ValueError, UnicodeDecodeError) as exc:
        raise CodecError(f"malformed message: {exc}") from None
    return _decode(header, buffers)
