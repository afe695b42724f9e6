# Exercise stub generated from the reference by `llmlab stubs` -- fill in every body that raises
# NotImplementedError; signatures and docstrings are the spec. Check yourself with `pytest exercises/`.
"""Chat formats: how a conversation becomes the one string a chat model reads (notes §3.3.1).

A base model only continues text. An instruction-tuned model was fine-tuned on conversations written
in a fixed format, in which special *control tokens* mark who speaks: the system (standing
instructions), the user, or the assistant (the model itself). At inference time the conversation must
be written in exactly that format, ending with the header of an assistant turn (the *generation
prompt*), so the model's next tokens are its answer. A format that is off by a single newline puts
the model in a situation it never saw during training.

Two formats are implemented here:

* **Llama 3.1 Instruct** (text only)::

      <|begin_of_text|><|start_header_id|>system<|end_header_id|>\\n\\n
      Cutting Knowledge Date: December 2023\\nToday Date: 26 Jul 2024\\n\\n{system}<|eot_id|>
      <|start_header_id|>user<|end_header_id|>\\n\\n{user}<|eot_id|>
      <|start_header_id|>assistant<|end_header_id|>\\n\\n

  (written on several lines here; the real string has no line breaks other than the ``\\n`` shown).
  The system block is always there, even without a system message; contents are stripped; no text
  separates the turns.
* **ChatML** (SmolLM2, Qwen, ...): ``<|im_start|>{role}\\n{content}<|im_end|>\\n`` per message,
  contents as they are.

Control tokens are the format's skeleton, so a message must never contain one: a user who types
``<|eot_id|><|start_header_id|>system<|end_header_id|>`` would otherwise forge a system turn. The
formatters refuse such messages.

Supervised fine-tuning (SFT) trains the model only on what the assistant says: ``build_sft_example``
tokenizes a conversation and marks, with ``-100``, every token the loss must ignore.
"""
from __future__ import annotations

import re

ROLES = ("system", "user", "assistant")
LLAMA3_CONTROL_TOKENS = ("<|begin_of_text|>", "<|end_of_text|>", "<|start_header_id|>", "<|end_header_id|>",
                         "<|eot_id|>", "<|eom_id|>", "<|python_tag|>")
CHATML_CONTROL_TOKENS = ("<|im_start|>", "<|im_end|>")


def format_llama3(messages, *, add_generation_prompt=False, date_string="26 Jul 2024"):
    """Render ``messages`` in the Llama 3.1 Instruct text format, as its official chat template does.

    The result is ``<|begin_of_text|>``, then the system block
    ``<|start_header_id|>system<|end_header_id|>\\n\\nCutting Knowledge Date: December 2023\\nToday Date:
    {date_string}\\n\\n{system}<|eot_id|>``, which is always present (``{system}`` is the stripped content
    of ``messages[0]`` if that is a system message, else empty), then one turn per remaining message,
    ``<|start_header_id|>{role}<|end_header_id|>\\n\\n{content.strip()}<|eot_id|>``, with nothing between
    turns. A system message other than the first is an ordinary turn with a ``system`` header. With
    ``add_generation_prompt``, ``<|start_header_id|>assistant<|end_header_id|>\\n\\n`` follows (no
    ``<|eot_id|>`` after it: the model writes the answer there).

    Args:
        messages: a list of dicts with keys ``role`` (``system``, ``user`` or ``assistant``) and
            ``content`` (str); may be empty. Other keys are ignored; nothing is modified.
        add_generation_prompt: append the header of an assistant turn.
        date_string: the text after ``Today Date: `` (the template's fixed default is ``26 Jul 2024``).

    Returns:
        The formatted conversation (str).

    Raises:
        TypeError: if ``messages`` is not a list of dicts, a content is not a str, or ``date_string`` is
            not a str.
        ValueError: if a message lacks ``role`` or ``content``, has another role, or a content (or the
            date) contains a Llama 3 control token (``LLAMA3_CONTROL_TOKENS``).
    """
    # YOUR CODE HERE
    raise NotImplementedError("task chat_format.format_llama3: not implemented yet")


def format_chatml(messages, *, add_generation_prompt=False, default_system=None):
    """Render ``messages`` in ChatML, as SmolLM2-Instruct's chat template does.

    Each message becomes ``<|im_start|>{role}\\n{content}<|im_end|>\\n``, the content exactly as given
    (not stripped). If ``default_system`` is given and the first message is not a system message, the
    message ``<|im_start|>system\\n{default_system}<|im_end|>\\n`` comes first (an empty conversation
    gets none, as in the template). With ``add_generation_prompt``, ``<|im_start|>assistant\\n`` follows.
    With SmolLM2's default system text this equals SmolLM2-Instruct's ``apply_chat_template``.

    Args:
        messages: a list of dicts with keys ``role`` (``system``, ``user`` or ``assistant``) and
            ``content`` (str); may be empty. Nothing is modified.
        add_generation_prompt: append the header of an assistant turn.
        default_system: the system text to use when the conversation has none (``None``: no system
            message is added).

    Returns:
        The formatted conversation (str).

    Raises:
        TypeError: if ``messages`` is not a list of dicts, a content is not a str, or ``default_system``
            is neither None nor a str.
        ValueError: if a message lacks ``role`` or ``content``, has another role, or a content (or
            ``default_system``) contains ``<|im_start|>`` or ``<|im_end|>``.
    """
    # YOUR CODE HERE
    raise NotImplementedError("task chat_format.format_chatml: not implemented yet")


def parse_llama3(text):
    """The messages of a Llama 3.1 conversation: the inverse of ``format_llama3`` on its outputs.

    Accepts exactly what ``format_llama3`` writes (any ``date_string`` without a blank line, with or
    without a final generation prompt): ``<|begin_of_text|>``, the system block with its ``Cutting
    Knowledge Date: December 2023\\nToday Date: ...\\n\\n`` preamble, then complete turns
    ``<|start_header_id|>{role}<|end_header_id|>\\n\\n{content}<|eot_id|>`` with nothing between them,
    optionally followed by ``<|start_header_id|>assistant<|end_header_id|>\\n\\n`` at the very end.

    Returns:
        A list of ``{"role": ..., "content": ...}`` dicts: the system message first (its content
        without the preamble) unless it was empty, then the turns in order, contents as written. The
        generation prompt is not a message. ``parse_llama3(format_llama3(m))`` equals ``m`` with every
        content stripped and a first system message of empty (stripped) content left out.

    Raises:
        TypeError: if ``text`` is not a str.
        ValueError: if ``text`` is not such a conversation: no ``<|begin_of_text|>`` or system block, no
            date preamble, a role other than system/user/assistant, a header not followed by exactly
            ``\\n\\n``, text between or after turns, a turn without ``<|eot_id|>``, or a control token
            inside a content.
    """
    # YOUR CODE HERE
    raise NotImplementedError("task chat_format.parse_llama3: not implemented yet")


def build_sft_example(messages, tokenizer, *, fmt="chatml"):
    """Tokenize a conversation for supervised fine-tuning, with labels on the assistant's words only.

    The conversation is rendered with ``format_chatml(messages)`` (``fmt="chatml"``, no default system
    message) or ``format_llama3(messages)`` (``fmt="llama3"``, default date), and the whole string is
    tokenized once with ``tokenizer(text, add_special_tokens=False)`` (no second BOS). ``labels[i]`` is
    ``input_ids[i]`` when token ``i`` overlaps the *content* of an assistant message (as rendered: stripped
    for Llama 3) or is the end-of-turn token that closes an assistant turn (``<|im_end|>`` /
    ``<|eot_id|>``), and ``-100`` everywhere else: system and user turns, every header (the assistant's
    included), the date preamble, the ``\\n`` after ``<|im_end|>``. A token overlaps a content when it
    holds at least one of its characters (the rule of transformers' ``return_assistant_tokens_mask``).
    Labels are aligned with ``input_ids``: the model shifts them when it computes the loss.

    Args:
        messages: the conversation (as for the formatters).
        tokenizer: a transformers *fast* tokenizer (character offsets are needed) that encodes the
            format's control tokens as single tokens.
        fmt: ``"chatml"`` or ``"llama3"``.

    Returns:
        ``{"input_ids": list[int], "labels": list[int]}``, two lists of the same length.

    Raises:
        ValueError: for an unknown ``fmt``, a tokenizer that splits the end-of-turn token, and
            whatever the formatter raises for bad messages (TypeError included).
    """
    # YOUR CODE HERE
    raise NotImplementedError("task chat_format.build_sft_example: not implemented yet")
