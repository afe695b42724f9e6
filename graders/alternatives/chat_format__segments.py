"""Alternative correct `chat_format`: each conversation is a list of (text, trained) segments; SFT labels come
from the tokenizer's char_to_token on the trained segments; the parser walks the text with str methods."""
CONTROL = {
    "llama3": ["<|begin_of_text|>", "<|end_of_text|>", "<|start_header_id|>", "<|end_header_id|>", "<|eot_id|>",
               "<|eom_id|>", "<|python_tag|>"],
    "chatml": ["<|im_start|>", "<|im_end|>"],
}


def _check(messages, fmt):
    if not isinstance(messages, (list, tuple)):
        raise TypeError("messages must be a list")
    for i, m in enumerate(messages):
        if not isinstance(m, dict):
            raise TypeError(f"message {i} is not a dict")
        role, content = m.get("role"), m.get("content", None)
        if role not in ("system", "user", "assistant"):
            raise ValueError(f"message {i}: bad role {role!r}")
        if "content" not in m:
            raise ValueError(f"message {i}: no content")
        if type(content) is not str:
            raise TypeError(f"message {i}: content must be a str")
        for tok in CONTROL[fmt]:
            if tok in content:
                raise ValueError(f"message {i} contains {tok}")


def _llama_segments(messages, add_generation_prompt, date_string):
    _check(messages, "llama3")
    if not isinstance(date_string, str):
        raise TypeError("date_string must be a str")
    if any(tok in date_string for tok in CONTROL["llama3"]):
        raise ValueError("date_string contains a control token")
    msgs = list(messages)
    system = msgs.pop(0)["content"].strip() if msgs and msgs[0]["role"] == "system" else ""
    segs = [("<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nCutting Knowledge Date: December 2023"
             "\nToday Date: " + date_string + "\n\n" + system + "<|eot_id|>", False)]
    for m in msgs:
        segs.append(("<|start_header_id|>" + m["role"] + "<|end_header_id|>\n\n", False))
        segs.append((m["content"].strip() + "<|eot_id|>", m["role"] == "assistant"))
    if add_generation_prompt:
        segs.append(("<|start_header_id|>assistant<|end_header_id|>\n\n", False))
    return segs


def _chatml_segments(messages, add_generation_prompt, default_system):
    _check(messages, "chatml")
    if default_system is not None:
        if not isinstance(default_system, str):
            raise TypeError("default_system must be a str")
        if any(tok in default_system for tok in CONTROL["chatml"]):
            raise ValueError("default_system contains a control token")
    segs = []
    if default_system is not None and len(messages) > 0 and messages[0]["role"] != "system":
        segs.append(("<|im_start|>system\n" + default_system + "<|im_end|>\n", False))
    for m in messages:
        segs.append(("<|im_start|>" + m["role"] + "\n", False))
        segs.append((m["content"] + "<|im_end|>", m["role"] == "assistant"))
        segs.append(("\n", False))
    if add_generation_prompt:
        segs.append(("<|im_start|>assistant\n", False))
    return segs


def format_llama3(messages, *, add_generation_prompt=False, date_string="26 Jul 2024"):
    return "".join(text for text, _ in _llama_segments(messages, add_generation_prompt, date_string))


def format_chatml(messages, *, add_generation_prompt=False, default_system=None):
    return "".join(text for text, _ in _chatml_segments(messages, add_generation_prompt, default_system))


def parse_llama3(text):
    if not isinstance(text, str):
        raise TypeError("text must be a str")
    head = "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\n"
    preamble = "Cutting Knowledge Date: December 2023\nToday Date: "
    if not text.startswith(head + preamble):
        raise ValueError("missing <|begin_of_text|>, system header or date preamble")
    rest = text[len(head) + len(preamble):]
    date, sep, rest = rest.partition("\n\n")
    if not sep:
        raise ValueError("the date line is not followed by a blank line")
    pieces = rest.split("<|eot_id|>")
    tail = pieces.pop()  # after the last <|eot_id|>: nothing, or the generation prompt
    if tail not in ("", "<|start_header_id|>assistant<|end_header_id|>\n\n"):
        raise ValueError("text after the last turn")
    messages = [{"role": "system", "content": pieces[0]}]
    for piece in pieces[1:]:
        if not piece.startswith("<|start_header_id|>"):
            raise ValueError("text between turns")
        role, sep, content = piece[len("<|start_header_id|>"):].partition("<|end_header_id|>\n\n")
        if not sep or role not in ("system", "user", "assistant"):
            raise ValueError("malformed header")
        messages.append({"role": role, "content": content})
    for m in messages:
        if any(tok in m["content"] for tok in CONTROL["llama3"]) or any(tok in date for tok in CONTROL["llama3"]):
            raise ValueError("a control token inside a message")
    return messages[1:] if messages[0]["content"] == "" else messages


def build_sft_example(messages, tokenizer, *, fmt="chatml"):
    if fmt == "llama3":
        segs, end = _llama_segments(messages, False, "26 Jul 2024"), "<|eot_id|>"
    elif fmt == "chatml":
        segs, end = _chatml_segments(messages, False, None), "<|im_end|>"
    else:
        raise ValueError(f"unknown fmt {fmt!r}")
    enc = tokenizer("".join(t for t, _ in segs), add_special_tokens=False)
    ids = list(enc["input_ids"])
    end_id = tokenizer.convert_tokens_to_ids(end)
    labels = [-100] * len(ids)
    pos = 0
    for text, trained in segs:
        if trained:
            first = enc.char_to_token(pos)
            last = enc.char_to_token(pos + len(text) - 1)
            if last is None or ids[last] != end_id:
                raise ValueError(f"the tokenizer splits {end}")
            for t in range(first, last + 1):
                labels[t] = ids[t]
        pos += len(text)
    return {"input_ids": ids, "labels": labels}
