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
    ### BEGIN SOLUTION
    if not isinstance(messages, (list, tuple)):
        raise TypeError(f"messages must be a list of dicts, got {type(messages).__name__}")
    if not isinstance(date_string, str):
        raise TypeError(f"date_string must be a str, got {type(date_string).__name__}")
    for n, message in enumerate(messages):
        if not isinstance(message, dict):
            raise TypeError(f"messages[{n}] must be a dict, got {type(message).__name__}")
        if "role" not in message or "content" not in message:
            raise ValueError(f"messages[{n}] must have the keys 'role' and 'content'")
        if message["role"] not in ROLES:
            raise ValueError(f"messages[{n}] has role {message['role']!r}; allowed roles: {', '.join(ROLES)}")
        if not isinstance(message["content"], str):
            raise TypeError(f"messages[{n}]['content'] must be a str, got {type(message['content']).__name__}")
        for token in LLAMA3_CONTROL_TOKENS:
            if token in message["content"]:
                raise ValueError(f"messages[{n}]['content'] contains the control token {token}")
    for token in LLAMA3_CONTROL_TOKENS:
        if token in date_string:
            raise ValueError(f"date_string contains the control token {token}")

    system, turns = "", list(messages)
    if turns and turns[0]["role"] == "system":
        system, turns = turns[0]["content"].strip(), turns[1:]
    parts = ["<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\n",
             "Cutting Knowledge Date: December 2023\n", f"Today Date: {date_string}\n\n", system, "<|eot_id|>"]
    for message in turns:
        parts.append(f"<|start_header_id|>{message['role']}<|end_header_id|>\n\n{message['content'].strip()}<|eot_id|>")
    if add_generation_prompt:
        parts.append("<|start_header_id|>assistant<|end_header_id|>\n\n")
    return "".join(parts)
    ### END SOLUTION


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
    ### BEGIN SOLUTION
    if not isinstance(messages, (list, tuple)):
        raise TypeError(f"messages must be a list of dicts, got {type(messages).__name__}")
    if default_system is not None and not isinstance(default_system, str):
        raise TypeError(f"default_system must be None or a str, got {type(default_system).__name__}")
    for n, message in enumerate(messages):
        if not isinstance(message, dict):
            raise TypeError(f"messages[{n}] must be a dict, got {type(message).__name__}")
        if "role" not in message or "content" not in message:
            raise ValueError(f"messages[{n}] must have the keys 'role' and 'content'")
        if message["role"] not in ROLES:
            raise ValueError(f"messages[{n}] has role {message['role']!r}; allowed roles: {', '.join(ROLES)}")
        if not isinstance(message["content"], str):
            raise TypeError(f"messages[{n}]['content'] must be a str, got {type(message['content']).__name__}")
        for token in CHATML_CONTROL_TOKENS:
            if token in message["content"]:
                raise ValueError(f"messages[{n}]['content'] contains the control token {token}")
    for token in CHATML_CONTROL_TOKENS:
        if default_system is not None and token in default_system:
            raise ValueError(f"default_system contains the control token {token}")

    parts = []
    if default_system is not None and messages and messages[0]["role"] != "system":
        parts.append(f"<|im_start|>system\n{default_system}<|im_end|>\n")
    for message in messages:
        parts.append(f"<|im_start|>{message['role']}\n{message['content']}<|im_end|>\n")
    if add_generation_prompt:
        parts.append("<|im_start|>assistant\n")
    return "".join(parts)
    ### END SOLUTION


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
    ### BEGIN SOLUTION
    if not isinstance(text, str):
        raise TypeError(f"text must be a str, got {type(text).__name__}")
    start, end, eot = "<|start_header_id|>", "<|end_header_id|>\n\n", "<|eot_id|>"
    opening = "<|begin_of_text|>" + start + "system" + end
    if not text.startswith(opening):
        raise ValueError("a Llama 3.1 conversation starts with <|begin_of_text|> and the system header")
    close = text.find(eot, len(opening))
    if close < 0:
        raise ValueError("the system block is not closed by <|eot_id|>")
    block = re.fullmatch(r"Cutting Knowledge Date: December 2023\nToday Date: (.*?)\n\n(.*)",
                         text[len(opening):close], re.S)
    if block is None:
        raise ValueError("the system block does not start with the 'Cutting Knowledge Date: ... Today Date: "
                         "...' preamble followed by a blank line")
    contents = [("system", block.group(2))]
    pos = close + len(eot)
    while pos < len(text):
        if not text.startswith(start, pos):
            raise ValueError(f"unexpected text between turns at character {pos}: {text[pos:pos + 30]!r}")
        header_end = text.find("<|end_header_id|>", pos)
        if header_end < 0:
            raise ValueError(f"the header at character {pos} is not closed by <|end_header_id|>")
        role = text[pos + len(start):header_end]
        if role not in ROLES:
            raise ValueError(f"unknown role {role!r} in the header at character {pos}")
        if not text.startswith(end, header_end):
            raise ValueError(f"the header at character {pos} must be followed by exactly two newlines")
        body = header_end + len(end)
        close = text.find(eot, body)
        if close < 0:
            if role == "assistant" and body == len(text):
                break  # the generation prompt: an assistant turn left open for the model
            raise ValueError(f"the {role} turn at character {pos} is not closed by <|eot_id|>")
        contents.append((role, text[body:close]))
        pos = close + len(eot)
    for role, content in contents:
        for token in LLAMA3_CONTROL_TOKENS:
            if token in content:
                raise ValueError(f"a {role} message contains the control token {token}: the text is malformed")
    messages = [{"role": role, "content": content} for role, content in contents]
    return messages if messages[0]["content"] else messages[1:]
    ### END SOLUTION


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
    ### BEGIN SOLUTION
    if fmt == "chatml":
        render, terminator = format_chatml, "<|im_end|>"
    elif fmt == "llama3":
        render, terminator = format_llama3, "<|eot_id|>"
    else:
        raise ValueError(f"fmt must be 'chatml' or 'llama3', got {fmt!r}")
    text = render(messages)
    spans = []  # character spans [start, end) to train on: assistant content + its end-of-turn token
    for n, message in enumerate(messages):
        if message["role"] != "assistant":
            continue
        # everything before this turn, plus its header: exactly what the generation prompt adds
        begin = len(render(messages[:n], add_generation_prompt=True))
        content = message["content"].strip() if fmt == "llama3" else message["content"]
        spans.append((begin, begin + len(content) + len(terminator)))
    encoding = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
    input_ids = [int(i) for i in encoding["input_ids"]]
    offsets = encoding["offset_mapping"]
    terminator_id = tokenizer.convert_tokens_to_ids(terminator)
    labels = [-100] * len(input_ids)
    for begin, stop in spans:
        closing = [t for t, (a, b) in enumerate(offsets) if (a, b) == (stop - len(terminator), stop)]
        if len(closing) != 1 or input_ids[closing[0]] != terminator_id:
            raise ValueError(f"the tokenizer does not encode {terminator} as a single token")
        for t, (a, b) in enumerate(offsets):
            if a < stop and b > begin:
                labels[t] = input_ids[t]
    return {"input_ids": input_ids, "labels": labels}
    ### END SOLUTION
