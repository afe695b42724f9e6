"""The registry of topics: which module, which notebook, which tasks.

A topic is one module ``solutions/<topic>.py`` (the reference), its generated stub
``exercises/<topic>.py``, its hidden graders ``graders/test_<topic>.py`` and its buggy variants
``graders/variants/<topic>.diff``. Notebooks may teach several topics.
"""
from __future__ import annotations

from dataclasses import dataclass

from .paths import GRADERS, SOLUTIONS


# CPU seconds one call into a submission may take when a topic states no limit of its own (and the
# most any topic's limit may be): a contributor's new topic starts generous, then gets measured.
DEFAULT_CALL_LIMIT = 20.0


@dataclass(frozen=True)
class Topic:
    """A graded topic: its module ``name``, the ``notebook`` that teaches it, a ``title``, and its
    ``call_limit``: the CPU seconds one call into a submission may take while this topic is graded
    (``llmlab grade --timeout`` overrides it). Each limit is at least 10x the slowest call of the
    reference and 3x the slowest call of the correct alternatives, as measured by
    ``benchmarks/call_limits.py``; a small limit is what keeps a class run short when a student's
    code hangs (a hung call holds a grading worker for one limit)."""
    name: str
    notebook: str  # notebook file name under notebooks/<stem>/
    title: str
    call_limit: float = DEFAULT_CALL_LIMIT


# Order is the order of the course. A topic appears here once its reference exists. The last field is
# the topic's call limit in CPU seconds (``python3 benchmarks/call_limits.py`` prints what each needs).
_ALL = [
    Topic("attention", "attention.ipynb", "Scaled dot-product and multi-head attention", 6),
    Topic("causal_mask", "attention.ipynb", "Causal and padding masks", 5),
    Topic("bert_masking", "imdb-bert.ipynb", "BERT masked-LM corruption and NSP pairs", 5),
    Topic("sampling", "sampling.ipynb", "Logits warpers, sampling and generation", 5),
    Topic("chat_format", "chat-format.ipynb", "Chat templates and SFT labels", 10),
    Topic("dpo", "dpo.ipynb", "Reward model, PPO clip and DPO losses", 5),
    Topic("refusal_loss", "refusal-training.ipynb", "Decoupled refusal training", 5),
    Topic("code_attack", "code-attack.ipynb", "CodeAttack encoding and refusal judging", 5),
    Topic("decoder_lm", "decoder-lm.ipynb", "A Llama decoder from your own parts", 5),
    Topic("pretraining", "llama3-pretraining.ipynb", "Scaling laws and LR schedules", 5),
    Topic("imdb_bert", "imdb-bert.ipynb", "Fine-tuning BERT on IMDB", 5),
    Topic("imdb_local_llm", "imdb-local-llm.ipynb", "A local LLM as a classifier", 10),
    Topic("imdb_remote_llm", "imdb-remote-llm.ipynb", "A remote LLM through the OpenAI API", 10),
    Topic("tokenizer", "tokenizer.ipynb", "Byte-level BPE tokenization", 5),
    Topic("encoder_decoder", "encoder-decoder.ipynb", "The original encoder-decoder Transformer", 5),
    Topic("sft", "sft.ipynb", "Supervised fine-tuning on dialogue", 5),
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


def call_limit(name: str) -> float:
    """The CPU seconds one call may take while topic ``name`` is graded (:data:`DEFAULT_CALL_LIMIT` for
    a topic the registry does not know)."""
    try:
        return get(name).call_limit
    except KeyError:
        return DEFAULT_CALL_LIMIT


def topics_of_notebook(filename: str) -> list[str]:
    """Names of the available topics taught in notebook ``filename`` (e.g. ``attention.ipynb``)."""
    return [t.name for t in all_topics() if t.notebook == filename]
