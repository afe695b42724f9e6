"""One cause, one loss: composite checks that do not charge a broken building block again.

A composite (``DecoderBlock`` built from ``rms_norm``, ``rotary_embedding`` and ``swiglu``, say) is
graded against the pure reference. A student whose ``rms_norm`` is wrong would then lose every
check of the block and of the model built from it, although the block itself may be right. So a
composite check also accepts the student's answer when it equals the *reference composite run over
the student's own building blocks*:

* :func:`composed` re-imports the topic's reference here, in the trusted grader process, with the
  named building blocks routed to the submission: a function becomes a remote call
  ``sub.call(name, ...)``; a class keeps the reference's parameters (so weights load by the spec's
  names) but its ``forward`` runs the submission's own class, built with the same arguments and
  loaded with the same weights. No reference code ever enters the worker: only the tensors the
  reference passes to the building blocks do.
* :func:`expected_or_composed` picks what a check compares with: the pure reference, or, when the
  answer misses it but matches the composed reference, the composed one. A failing answer is always
  reported against the pure reference, so the feedback stays as it was. (:func:`try_compose` gives
  the composed answer itself, for checks that compare something other than tensors.)

A check must never route the function it grades (the composed answer would then be the student's
own, and always match): each check names the building blocks it routes, and those are graded by
checks of their own. When a building block raises, is unfinished or returns something the reference
cannot use, no composed reference exists and the pure one alone decides.
"""
from __future__ import annotations

import sys
import types
from typing import Callable, Iterable

import torch

from ..paths import SOLUTIONS
from .remote import Unfinished

_CODE: dict[str, types.CodeType] = {}


def composed(sub, names: Iterable[str]) -> types.ModuleType:
    """The reference module of ``sub.topic``, run in this process, with each of ``names`` (functions or
    ``nn.Module`` classes of the topic module) routed to the submission ``sub``."""
    topic = sub.topic
    if topic not in _CODE:
        path = SOLUTIONS / f"{topic}.py"
        _CODE[topic] = compile(path.read_text(), str(path), "exec")
    name = f"solutions._composed_{topic}"
    mod = types.ModuleType(name)
    mod.__package__ = "solutions"  # its relative imports (``from .attention import ...``) find the reference
    mod.__file__ = f"<{topic} over the submission's building blocks>"
    sys.modules[name] = mod  # dataclasses look their module up while the classes are created
    exec(_CODE[topic], mod.__dict__)
    for part in names:
        local = mod.__dict__.get(part)
        if isinstance(local, type) and issubclass(local, torch.nn.Module):
            setattr(mod, part, _remote_class(sub, part, local))
        else:
            setattr(mod, part, _remote_function(sub, part))
    return mod


def _remote_function(sub, name: str) -> Callable:
    def call(*args, **kwargs):
        return sub.call(name, *args, **kwargs)
    call.__name__ = name
    return call


def _remote_class(sub, name: str, local: type) -> type:
    """A subclass of the reference class ``local`` whose ``forward`` is the submission's class ``name``."""

    class Remote(local):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            self._llmlab_args = (args, kwargs)

        def forward(self, *args, **kwargs):
            a, kw = self._llmlab_args
            obj = sub.new(name, *a, **kw)
            obj.call("load_state_dict", self.state_dict())
            obj.call("train", self.training)
            return obj(*args, **kwargs)

    Remote.__name__ = Remote.__qualname__ = name
    return Remote


def expected_or_composed(actual, expected: torch.Tensor, compose: Callable[[], object], *, atol: float,
                         rtol: float, keep: Callable = lambda t: t) -> torch.Tensor:
    """What a composite check compares ``actual`` with: ``expected`` (the pure reference), unless
    ``actual`` misses it but matches ``compose()`` (the reference composite over the submission's own
    building blocks, see :func:`composed`), to the same tolerance; ``keep`` selects the entries compared
    (e.g. the non-padding positions). ``compose`` runs only when the pure reference is missed."""
    if _close(actual, expected, atol, rtol, keep):
        return expected
    other = try_compose(compose)
    if isinstance(other, torch.Tensor) and other.dtype == expected.dtype and _close(actual, other, atol, rtol, keep):
        return other
    return expected


def try_compose(compose: Callable[[], object]):
    """``compose()`` (a reference composite over the submission's building blocks), or ``None`` when a
    building block raises, is unfinished, hangs or returns what the reference cannot use."""
    try:
        with torch.no_grad():
            return compose()
    except (Exception, Unfinished):  # noqa: BLE001 - a building block that fails leaves the pure reference
        return None


def _close(actual, expected, atol, rtol, keep) -> bool:
    if not (isinstance(actual, torch.Tensor) and isinstance(expected, torch.Tensor)):
        return False
    if actual.shape != expected.shape or actual.dtype != expected.dtype:
        return False
    a, e = keep(actual.detach()).double(), keep(expected.detach()).double()
    if torch.isnan(a).any() and not torch.isnan(e).any():
        return False
    return bool(torch.allclose(a, e, atol=atol, rtol=rtol, equal_nan=True))
