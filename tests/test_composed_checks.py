"""One cause, one loss: a composite check accepts the reference composite run over the student's own
building blocks (``llmlab.grading.compose``), so a broken building block costs its own checks only, while
a composite that is wrong itself still fails.
"""
from __future__ import annotations

import ast
import importlib
import shutil

import pytest
import torch

from llmlab.grading.compose import composed, expected_or_composed
from llmlab.grading.remote import LocalSubmission
from llmlab.grading.runner import grade
from llmlab.paths import GRADERS, SOLUTIONS

# rms_norm by the mean absolute value instead of the root mean square (a norm, but not Llama's)
WRONG_RMS = ("h = h * torch.rsqrt(h.pow(2).mean(dim=-1, keepdim=True) + eps)",
             "h = h / (h.abs().mean(dim=-1, keepdim=True) + eps)")
# the block's first norm written inline, as LayerNorm without a bias: rms_norm itself stays correct
INLINED_NORM = ("h = rms_norm(x, self.attn_norm, self.norm_eps)",
                "h = self.attn_norm * (x - x.mean(-1, keepdim=True)) * torch.rsqrt(x.var(-1, keepdim=True, "
                "unbiased=False) + self.norm_eps)")


def _submission(folder, old: str, new: str):
    """The reference modules decoder_lm builds on, with one edit of ``decoder_lm.py``."""
    folder.mkdir()
    for topic in ("attention", "causal_mask"):
        shutil.copyfile(SOLUTIONS / f"{topic}.py", folder / f"{topic}.py")
    text = (SOLUTIONS / "decoder_lm.py").read_text()
    assert text.count(old) == 1
    (folder / "decoder_lm.py").write_text(text.replace(old, new))
    return folder


def _failed(result) -> set[str]:
    return {c["check"] for c in result.topics["decoder_lm"].checks if c["status"] != "passed"}


def test_a_broken_part_costs_its_own_checks_and_an_inlined_one_the_composite(tmp_path):
    subs = {"wrong_rms": _submission(tmp_path / "a", *WRONG_RMS),
            "inlined": _submission(tmp_path / "b", *INLINED_NORM)}
    results = grade(subs, ["decoder_lm"], max_examples=4)  # isolated workers: the composition is remote
    errors = [c["internal"] for r in results.values() for c in r.topics["decoder_lm"].checks if c["status"] == "error"]
    assert not errors
    wrong_rms = _failed(results["wrong_rms"])
    assert "rms_norm_matches_llama_rmsnorm" in wrong_rms
    assert all(name.startswith("rms_norm_") for name in wrong_rms), wrong_rms  # no block, model or from_hf check
    assert _failed(results["inlined"]) == {"block_matches_llama_decoder_layer",
                                           "block_uses_the_given_mask_and_positions"}


def _module_with(old: str, new: str):
    import types

    mod = types.ModuleType("solutions._test_composed")
    mod.__package__ = "solutions"
    exec(compile((SOLUTIONS / "decoder_lm.py").read_text().replace(old, new), "<test>", "exec"), mod.__dict__)
    return mod


def test_the_composed_reference_runs_the_submissions_parts_and_nothing_else():
    ref = importlib.import_module("solutions.decoder_lm")
    student = _module_with(*WRONG_RMS)
    sub = LocalSubmission("s", "decoder_lm", student)
    x, w = torch.randn(2, 3, 4), torch.rand(4) + 0.5
    mod = composed(sub, ("rms_norm",))
    assert torch.equal(mod.rms_norm(x, w), student.rms_norm(x, w))
    assert not torch.allclose(mod.rms_norm(x, w), ref.rms_norm(x, w))
    assert torch.equal(mod.swiglu(x, w[None].expand(3, 4), w[None].expand(3, 4), w[:, None].expand(4, 3)),
                       ref.swiglu(x, w[None].expand(3, 4), w[None].expand(3, 4), w[:, None].expand(4, 3)))


def test_a_part_that_raises_leaves_the_pure_reference():
    student = _module_with("if eps < 0:", "if True:")  # rms_norm always raises
    sub = LocalSubmission("s", "decoder_lm", student)
    pure, wrong = torch.zeros(3), torch.ones(3)
    got = expected_or_composed(wrong, pure, lambda: composed(sub, ("rms_norm",)).rms_norm(torch.ones(1, 3),
                                                                                            torch.ones(3)),
                               atol=1e-5, rtol=1e-4)
    assert got is pure
    # and a matching composed answer is taken only when the pure reference is missed
    assert expected_or_composed(pure, pure, lambda: wrong, atol=1e-5, rtol=1e-4) is pure
    assert expected_or_composed(wrong, pure, lambda: wrong, atol=1e-5, rtol=1e-4) is wrong


def _routes(path):
    """(check, task, routed names) of every check in a grader file that builds a composed reference. The
    names are read from the source and resolved in the imported grader module (constants may be built)."""
    module = importlib.import_module(f"graders.{path.stem}")
    tree = ast.parse(path.read_text())

    def value(node):
        return getattr(module, node.id) if isinstance(node, ast.Name) else ast.literal_eval(node)

    for fn in tree.body:
        if not isinstance(fn, ast.FunctionDef):
            continue
        task = next((d.args[0] for d in fn.decorator_list if isinstance(d, ast.Call)
                     and getattr(d.func, "id", "") == "check"), None)
        for call in ast.walk(fn):
            if task is not None and isinstance(call, ast.Call) and getattr(call.func, "id", "") == "composed":
                yield fn.name, value(task), value(call.args[1])


@pytest.mark.parametrize("path", sorted(GRADERS.glob("test_*.py")), ids=lambda p: p.stem)
def test_no_check_routes_what_it_grades(path):
    """Routing the graded function (or the class whose method is graded) would make the composed answer the
    student's own: it would always match."""
    for name, task, parts in _routes(path):
        graded = task.split(".")[1:]  # [function] or [Class, method]
        assert graded[0] not in parts or (len(graded) == 2 and graded[1] not in ("forward", "__init__")), \
            f"{name} routes {graded[0]}, which it grades"


def test_the_route_audit_sees_the_composite_checks():
    routed = {name for name, _, _ in _routes(GRADERS / "test_decoder_lm.py")}
    assert {"test_block_matches_llama_decoder_layer", "test_lm_right_padding",
            "test_from_hf_matches_the_hf_model"} <= routed
    routed = {name for name, _, _ in _routes(GRADERS / "test_encoder_decoder.py")}
    assert {"test_encode_matches_torch_encoder", "test_decode_matches_torch_decoder",
            "test_forward_is_decode_of_encode"} <= routed
