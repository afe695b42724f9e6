"""The registry of topics: which module, which notebook, which tasks.

A topic is one module ``solutions/<topic>.py`` (the reference), its generated stub
``exercises/<topic>.py``, its hidden graders ``graders/test_<topic>.py`` and its buggy variants
``graders/variants/<topic>.py``. Notebooks may teach several topics.
"""
from __future__ import annotations

from dataclasses import dataclass

from .paths import GRADERS, SOLUTIONS


@dataclass(frozen=True)
class Topic:
    """A graded topic: its module ``name``, the ``notebook`` that teaches it, and a ``title``."""
    name: str
    notebook: str  # notebook file name under notebooks/<stem>/
    title: str


# Order is the order of the course. A topic appears here once its reference exists.
_ALL = [
    Topic("attention", "attention.ipynb", "Scaled dot-product and multi-head attention"),
    Topic("causal_mask", "attention.ipynb", "Causal and padding masks"),
    Topic("bert_masking", "imdb-bert.ipynb", "BERT masked-LM corruption and NSP pairs"),
    Topic("sampling", "sampling.ipynb", "Logits warpers, sampling and generation"),
    Topic("chat_format", "chat-format.ipynb", "Chat templates and SFT labels"),
    Topic("dpo", "dpo.ipynb", "Reward model, PPO clip and DPO losses"),
    Topic("refusal_loss", "refusal-training.ipynb", "Decoupled refusal training"),
    Topic("code_attack", "code-attack.ipynb", "CodeAttack encoding and refusal judging"),
    Topic("decoder_lm", "decoder-lm.ipynb", "A Llama decoder from your own parts"),
    Topic("pretraining", "llama3-pretraining.ipynb", "Scaling laws and LR schedules"),
    Topic("imdb_bert", "imdb-bert.ipynb", "Fine-tuning BERT on IMDB"),
    Topic("imdb_local_llm", "imdb-local-llm.ipynb", "A local LLM as a classifier"),
    Topic("imdb_remote_llm", "imdb-remote-llm.ipynb", "A remote LLM through the OpenAI API"),
    Topic("tokenizer", "tokenizer.ipynb", "Byte-level BPE tokenization"),
    Topic("encoder_decoder", "encoder-decoder.ipynb", "The original encoder-decoder Transformer"),
    Topic("sft", "sft.ipynb", "Supervised fine-tuning on dialogue"),
]


def all_topics() -> list[Topic]:
    """Topics whose reference and graders exist in this checkout."""
    return [t for t in _ALL if (SOLUTIONS / f"{t.name}.py").exists() and (GRADERS / f"test_{t.name}.py").exists()]


def topic_names() -> list[str]:
    """Names of :func:`all_topics`, in course order."""
    return [t.name for t in all_topics()]


def get(name: str) -> Topic:
    """The topic called ``name`` (whether or not it exists in this checkout); ``KeyError`` if unknown."""
    for t in _ALL:
        if t.name == name:
            return t
    raise KeyError(name)


def topics_of_notebook(filename: str) -> list[str]:
    """Names of the available topics taught in notebook ``filename`` (e.g. ``attention.ipynb``)."""
    return [t.name for t in all_topics() if t.notebook == filename]
