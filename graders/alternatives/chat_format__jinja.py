"""Alternative correct `chat_format`: Jinja templates written from scratch, a regex parser, and SFT labels from
transformers' own assistant-token mask."""
import re

import jinja2
import jinja2.ext
import jinja2.nodes

LLAMA = (
    "{{ '<|begin_of_text|><|start_header_id|>system<|end_header_id|>\\n\\n' }}"
    "{{ 'Cutting Knowledge Date: December 2023\\nToday Date: ' ~ date_string ~ '\\n\\n' }}"
    "{% if messages and messages[0].role == 'system' %}{{ messages[0].content | trim }}"
    "{% set rest = messages[1:] %}{% else %}{% set rest = messages %}{% endif %}{{ '<|eot_id|>' }}"
    "{% for m in rest %}{{ '<|start_header_id|>' ~ m.role ~ '<|end_header_id|>\\n\\n' }}"
    "{% if m.role == 'assistant' %}{% generation %}{{ m.content | trim }}{{ '<|eot_id|>' }}{% endgeneration %}"
    "{% else %}{{ m.content | trim }}{{ '<|eot_id|>' }}{% endif %}{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|start_header_id|>assistant<|end_header_id|>\\n\\n' }}{% endif %}"
)
CHATML = (
    "{% for m in messages %}{% if loop.first and default_system is not none and m.role != 'system' %}"
    "{{ '<|im_start|>system\\n' ~ default_system ~ '<|im_end|>\\n' }}{% endif %}"
    "{{ '<|im_start|>' ~ m.role ~ '\\n' }}{% if m.role == 'assistant' %}{% generation %}{{ m.content }}"
    "{{ '<|im_end|>' }}{% endgeneration %}{% else %}{{ m.content }}{{ '<|im_end|>' }}{% endif %}{{ '\\n' }}"
    "{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
)
SPECIAL = {"llama3": ("<|begin_of_text|>", "<|end_of_text|>", "<|start_header_id|>", "<|end_header_id|>",
                      "<|eot_id|>", "<|eom_id|>", "<|python_tag|>"),
           "chatml": ("<|im_start|>", "<|im_end|>")}


class _Generation(jinja2.ext.Extension):
    """Accept (and ignore) transformers' {% generation %} blocks when rendering here."""
    tags = {"generation"}

    def parse(self, parser):
        lineno = next(parser.stream).lineno
        body = parser.parse_statements(("name:endgeneration",), drop_needle=True)
        return jinja2.nodes.Scope(body, lineno=lineno)


_env = jinja2.Environment(extensions=[_Generation], autoescape=False, keep_trailing_newline=True)


def _validate(messages, fmt, *extra):
    if not isinstance(messages, (list, tuple)) or not all(isinstance(m, dict) for m in messages):
        raise TypeError("messages must be a list of dicts")
    for m in messages:
        if m.get("role") not in ("system", "user", "assistant"):
            raise ValueError(f"role {m.get('role')!r} is not system, user or assistant")
        if "content" not in m:
            raise ValueError("a message has no content")
        if not isinstance(m["content"], str):
            raise TypeError("content must be a str")
    for text in [m["content"] for m in messages] + [e for e in extra if e is not None]:
        if any(tok in text for tok in SPECIAL[fmt]):
            raise ValueError(f"a control token of the {fmt} format appears in the text")


def format_llama3(messages, *, add_generation_prompt=False, date_string="26 Jul 2024"):
    if not isinstance(date_string, str):
        raise TypeError("date_string must be a str")
    _validate(messages, "llama3", date_string)
    return _env.from_string(LLAMA).render(messages=list(messages), add_generation_prompt=add_generation_prompt,
                                          date_string=date_string)


def format_chatml(messages, *, add_generation_prompt=False, default_system=None):
    if default_system is not None and not isinstance(default_system, str):
        raise TypeError("default_system must be a str")
    _validate(messages, "chatml", default_system)
    return _env.from_string(CHATML).render(messages=list(messages), add_generation_prompt=add_generation_prompt,
                                           default_system=default_system)


_TURN = r"<\|start_header_id\|>(system|user|assistant)<\|end_header_id\|>\n\n((?:(?!<\|).|<\|(?!(?:begin_of_text|end_of_text|start_header_id|end_header_id|eot_id|eom_id|python_tag)\|>))*?)<\|eot_id\|>"  # noqa: E501
_TEXT = r"(?:(?!<\|).|<\|(?!(?:begin_of_text|end_of_text|start_header_id|end_header_id|eot_id|eom_id|python_tag)\|>))*?"  # noqa: E501
_WHOLE = re.compile(
    r"<\|begin_of_text\|><\|start_header_id\|>system<\|end_header_id\|>\n\n"
    r"Cutting Knowledge Date: December 2023\nToday Date: " + _TEXT + r"\n\n"
    r"(?P<system>" + _TEXT + r")<\|eot_id\|>"
    r"(?P<turns>(?:" + _TURN.replace("(system|user|assistant)", "(?:system|user|assistant)").replace(
        "((?:(?!", "(?:(?:(?!") + r")*)"
    r"(?P<prompt><\|start_header_id\|>assistant<\|end_header_id\|>\n\n)?", re.S)


def parse_llama3(text):
    if not isinstance(text, str):
        raise TypeError("text must be a str")
    match = _WHOLE.fullmatch(text)
    if match is None:
        raise ValueError("not a well-formed Llama 3.1 conversation")
    out = [{"role": "system", "content": match["system"]}] if match["system"] else []
    out += [{"role": r, "content": c} for r, c in re.findall(_TURN, match["turns"], re.S)]
    return out


def build_sft_example(messages, tokenizer, *, fmt="chatml"):
    if fmt not in ("chatml", "llama3"):
        raise ValueError("fmt must be 'chatml' or 'llama3'")
    text = format_llama3(messages) if fmt == "llama3" else format_chatml(messages)
    end = "<|eot_id|>" if fmt == "llama3" else "<|im_end|>"
    if len(tokenizer.encode(end, add_special_tokens=False)) != 1:
        raise ValueError(f"{end} must be one token")
    if not messages:
        ids = tokenizer(text, add_special_tokens=False)["input_ids"]
        return {"input_ids": list(ids), "labels": [-100] * len(ids)}
    out = tokenizer.apply_chat_template(list(messages), chat_template=LLAMA if fmt == "llama3" else CHATML,
                                        tokenize=True, return_dict=True, return_assistant_tokens_mask=True,
                                        date_string="26 Jul 2024", default_system=None)
    ids = [int(i) for i in out["input_ids"]]
    return {"input_ids": ids, "labels": [i if keep else -100 for i, keep in zip(ids, out["assistant_masks"])]}
