"""Trusted builders the grader may ask a worker to run.

Graders send plain specifications (a seed, a config dict, a state dict); the worker builds the
library object here, before or after the submission is loaded, and keeps it behind a handle. This
lets a submission receive real library objects (a ``torch.Generator``, a transformers model) as
arguments without any object crossing the process boundary.
"""
from __future__ import annotations

import torch


def torch_generator(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(int(seed))


def python_random(seed: int):
    import random

    return random.Random(int(seed))


def hf_llama(config: dict, state_dict: dict | None = None, seed: int = 0):
    """A transformers ``LlamaForCausalLM`` from a config dict (and weights, if given)."""
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(seed)
    model = LlamaForCausalLM(LlamaConfig(**config)).eval()
    if state_dict is not None:
        model.load_state_dict(state_dict)
    return model


def hf_bert(config: dict, state_dict: dict | None = None, seed: int = 0):
    """A transformers ``BertModel`` from a config dict (and weights, if given)."""
    from transformers import BertConfig, BertModel

    torch.manual_seed(seed)
    model = BertModel(BertConfig(**config)).eval()
    if state_dict is not None:
        model.load_state_dict(state_dict)
    return model


def smollm2_tokenizer():
    """SmolLM2-135M-Instruct's real tokenizer (from the kit's model cache)."""
    from transformers import AutoTokenizer

    from ..models import smollm2_dir

    return AutoTokenizer.from_pretrained(smollm2_dir())


def scripted_openai(reviews: list, script: list, **options):
    """An ``openai.OpenAI`` client answered inside the worker by a script, with every request logged.

    Returns a :class:`llmlab.serve.ScriptedEndpoint`: pass ``endpoint.get("client")`` to the
    submission; read ``endpoint.call("log")`` (requests: review, attempt, start/end times, requests in
    flight, status, SDK retry count) and ``endpoint.call("describe", results)`` (a returned list of
    results as plain data) back. The client sends through
    ``openai.DefaultHttpx2Client(transport=httpx2.MockTransport(...))``: no socket is opened, so the
    worker's network guard stays up. ``script[i]`` lists the planned answers to review ``i``'s attempts;
    ``options``: ``hold``, ``sdk_max_retries``, ``seed``, ``timeout`` (see ``ScriptedEndpoint``).
    """
    from ..serve import ScriptedEndpoint

    return ScriptedEndpoint(reviews, script, **options)
