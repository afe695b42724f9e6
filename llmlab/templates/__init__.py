"""Chat templates (Jinja) that the kit writes itself, for transformers' ``apply_chat_template``.

* ``llama31_text.jinja``: the Llama 3.1 Instruct format for text-only conversations (the string Meta's
  template renders; ``date_string`` variable, default ``26 Jul 2024``);
* ``chatml.jinja``: ChatML as SmolLM2-Instruct writes it (``default_system`` variable).

Both mark assistant turns with ``{% generation %}``, so ``return_assistant_tokens_mask=True`` gives the
tokens a supervised fine-tuning loss is computed on. Use them as
``tokenizer.apply_chat_template(messages, chat_template=read_template("llama31_text"), tokenize=False)``.
"""
from __future__ import annotations

from pathlib import Path

TEMPLATES = Path(__file__).resolve().parent


def template_path(name: str) -> Path:
    """Path of the kit's template ``name`` (without ``.jinja``)."""
    path = TEMPLATES / f"{name}.jinja"
    if not path.exists():
        known = ", ".join(sorted(p.stem for p in TEMPLATES.glob("*.jinja")))
        raise KeyError(f"no chat template {name!r}; the kit has: {known}")
    return path


def read_template(name: str) -> str:
    """The text of the kit's template ``name`` (``llama31_text`` or ``chatml``)."""
    return template_path(name).read_text(encoding="utf-8")
