"""Realistic buggy variants of ``chat_format`` (SEMANTICS.md §3.4 lists the classics).

Each variant is the reference with one mistake. Several reuse the reference function itself (bound as
a default argument, ``_ref=...``, when the variant is defined, i.e. before the name is rebound to the
variant) and then make the one mistake on its result, so that they keep the reference's argument
checks and differ from it in exactly one behaviour.
"""
from solutions.chat_format import build_sft_example, format_chatml, format_llama3, parse_llama3

from llmlab.grading.variants import Variants

bugs = Variants("chat_format")


# --- format_llama3 ------------------------------------------------------------------------------
@bugs.bug("one_newline_after_header", replaces="format_llama3",
          mistake="a header is followed by one newline: Llama 3 writes two (\\n\\n) after every <|end_header_id|>")
def llama_one_newline(messages, *, add_generation_prompt=False, date_string="26 Jul 2024", _ref=format_llama3):
    text = _ref(messages, add_generation_prompt=add_generation_prompt, date_string=date_string)
    return text.replace("<|end_header_id|>\n\n", "<|end_header_id|>\n")


@bugs.bug("newline_between_turns", replaces="format_llama3",
          mistake="there is a newline after <|eot_id|>: Llama 3 puts nothing between turns (ChatML does put a "
                  "newline after <|im_end|>, Llama 3 does not)")
def llama_newline_between_turns(messages, *, add_generation_prompt=False, date_string="26 Jul 2024",
                                _ref=format_llama3):
    text = _ref(messages, add_generation_prompt=add_generation_prompt, date_string=date_string)
    return text.replace("<|eot_id|>", "<|eot_id|>\n")


@bugs.bug("llama_content_not_stripped", replaces="format_llama3",
          mistake="Llama 3 contents are not stripped: the template trims leading and trailing whitespace of every "
                  "content (the system message's too)")
def llama_not_stripped(messages, *, add_generation_prompt=False, date_string="26 Jul 2024", _ref=format_llama3):
    _ref(messages, add_generation_prompt=add_generation_prompt, date_string=date_string)  # same argument checks
    system, turns = "", list(messages)
    if turns and turns[0]["role"] == "system":
        system, turns = turns[0]["content"], turns[1:]
    text = ("<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nCutting Knowledge Date: December 2023\n"
            f"Today Date: {date_string}\n\n{system}<|eot_id|>")
    for m in turns:
        text += f"<|start_header_id|>{m['role']}<|end_header_id|>\n\n{m['content']}<|eot_id|>"
    if add_generation_prompt:
        text += "<|start_header_id|>assistant<|end_header_id|>\n\n"
    return text


@bugs.bug("no_default_system_block", replaces="format_llama3",
          mistake="without a system message the system block is left out: Llama 3.1 always writes it (the "
                  "'Cutting Knowledge Date ... Today Date ...' lines, then an empty system text)")
def llama_no_default_system(messages, *, add_generation_prompt=False, date_string="26 Jul 2024", _ref=format_llama3):
    text = _ref(messages, add_generation_prompt=add_generation_prompt, date_string=date_string)
    if messages and messages[0]["role"] == "system":
        return text
    return "<|begin_of_text|>" + text[text.index("<|eot_id|>") + len("<|eot_id|>"):]


@bugs.bug("wrong_date_format", replaces="format_llama3",
          mistake="the default date is written '26 July 2024': the template's default is '26 Jul 2024' (day, "
                  "three-letter month, year)")
def llama_wrong_date(messages, *, add_generation_prompt=False, date_string="26 July 2024", _ref=format_llama3):
    return _ref(messages, add_generation_prompt=add_generation_prompt, date_string=date_string)


@bugs.bug("generation_prompt_without_newlines", replaces="format_llama3",
          mistake="the generation prompt lacks its two newlines: it is the full assistant header, "
                  "'<|start_header_id|>assistant<|end_header_id|>\\n\\n'")
def llama_prompt_no_newline(messages, *, add_generation_prompt=False, date_string="26 Jul 2024", _ref=format_llama3):
    text = _ref(messages, add_generation_prompt=False, date_string=date_string)
    return text + ("<|start_header_id|>assistant<|end_header_id|>" if add_generation_prompt else "")


@bugs.bug("eot_after_generation_prompt", replaces="format_llama3",
          mistake="<|eot_id|> follows the generation prompt: the assistant turn must stay open for the model to "
                  "write in")
def llama_prompt_closed(messages, *, add_generation_prompt=False, date_string="26 Jul 2024", _ref=format_llama3):
    text = _ref(messages, add_generation_prompt=add_generation_prompt, date_string=date_string)
    return text + ("<|eot_id|>" if add_generation_prompt else "")


@bugs.bug("no_control_token_guard", replaces="format_llama3",
          mistake="a content containing a control token is accepted: a user could forge a turn (refuse it with a "
                  "ValueError)")
def llama_no_guard(messages, *, add_generation_prompt=False, date_string="26 Jul 2024"):
    system, turns = "", list(messages)
    for m in turns:
        if m["role"] not in ("system", "user", "assistant"):
            raise ValueError(f"unknown role {m['role']!r}")
        if not isinstance(m["content"], str):
            raise TypeError("content must be a str")
    if turns and turns[0]["role"] == "system":
        system, turns = turns[0]["content"].strip(), turns[1:]
    text = ("<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nCutting Knowledge Date: December 2023\n"
            f"Today Date: {date_string}\n\n{system}<|eot_id|>")
    for m in turns:
        text += f"<|start_header_id|>{m['role']}<|end_header_id|>\n\n{m['content'].strip()}<|eot_id|>"
    if add_generation_prompt:
        text += "<|start_header_id|>assistant<|end_header_id|>\n\n"
    return text


@bugs.bug("every_system_message_in_system_block", replaces="format_llama3",
          mistake="every system message goes into the system block: only the first message, if it is a system "
                  "message, does; a later system message is an ordinary turn with a 'system' header")
def llama_all_systems(messages, *, add_generation_prompt=False, date_string="26 Jul 2024", _ref=format_llama3):
    _ref(messages, add_generation_prompt=add_generation_prompt, date_string=date_string)  # same argument checks
    system = "".join(m["content"].strip() for m in messages if m["role"] == "system")
    text = ("<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nCutting Knowledge Date: December 2023\n"
            f"Today Date: {date_string}\n\n{system}<|eot_id|>")
    for m in messages:
        if m["role"] != "system":
            text += f"<|start_header_id|>{m['role']}<|end_header_id|>\n\n{m['content'].strip()}<|eot_id|>"
    if add_generation_prompt:
        text += "<|start_header_id|>assistant<|end_header_id|>\n\n"
    return text


# --- format_chatml ------------------------------------------------------------------------------
@bugs.bug("chatml_content_stripped", replaces="format_chatml",
          mistake="ChatML contents are stripped: SmolLM2's template writes every content exactly as given")
def chatml_stripped(messages, *, add_generation_prompt=False, default_system=None, _ref=format_chatml):
    _ref(messages, add_generation_prompt=add_generation_prompt, default_system=default_system)
    stripped = [{**m, "content": m["content"].strip()} for m in messages]
    return _ref(stripped, add_generation_prompt=add_generation_prompt, default_system=default_system)


@bugs.bug("chatml_no_newline_after_im_end", replaces="format_chatml",
          mistake="no newline after <|im_end|>: in ChatML every message ends with '<|im_end|>\\n'")
def chatml_no_newline(messages, *, add_generation_prompt=False, default_system=None, _ref=format_chatml):
    text = _ref(messages, add_generation_prompt=add_generation_prompt, default_system=default_system)
    return text.replace("<|im_end|>\n", "<|im_end|>")


@bugs.bug("chatml_default_system_always", replaces="format_chatml",
          mistake="the default system message is added even when the conversation starts with its own system "
                  "message: it is only a fallback")
def chatml_system_always(messages, *, add_generation_prompt=False, default_system=None, _ref=format_chatml):
    text = _ref(messages, add_generation_prompt=add_generation_prompt, default_system=default_system)
    if default_system is not None and messages and messages[0]["role"] == "system":
        text = f"<|im_start|>system\n{default_system}<|im_end|>\n" + text
    return text


@bugs.bug("chatml_no_control_token_guard", replaces="format_chatml",
          mistake="a ChatML content containing <|im_start|> or <|im_end|> is accepted: a user could forge a turn "
                  "(refuse it with a ValueError)")
def chatml_no_guard(messages, *, add_generation_prompt=False, default_system=None):
    text = ""
    for m in messages:
        if m["role"] not in ("system", "user", "assistant"):
            raise ValueError(f"unknown role {m['role']!r}")
        if not isinstance(m["content"], str):
            raise TypeError("content must be a str")
    if default_system is not None and messages and messages[0]["role"] != "system":
        text += f"<|im_start|>system\n{default_system}<|im_end|>\n"
    for m in messages:
        text += f"<|im_start|>{m['role']}\n{m['content']}<|im_end|>\n"
    if add_generation_prompt:
        text += "<|im_start|>assistant\n"
    return text


# --- parse_llama3 -------------------------------------------------------------------------------
@bugs.bug("parse_keeps_date_preamble", replaces="parse_llama3",
          mistake="the parsed system message keeps the 'Cutting Knowledge Date ... Today Date ...' preamble: it is "
                  "part of the format, not of the message")
def parse_with_preamble(text, _ref=parse_llama3):
    messages = _ref(text)
    body = text.split("<|end_header_id|>\n\n", 1)[1].split("<|eot_id|>", 1)[0]  # the whole system block
    if body.endswith("\n\n"):  # nothing after the preamble: the reference left the system message out
        return [{"role": "system", "content": body}] + messages
    return [{"role": "system", "content": body}] + messages[1:]


@bugs.bug("parse_splits_on_blank_lines", replaces="parse_llama3",
          mistake="the date preamble is removed by splitting on blank lines: a system message that itself contains "
                  "a blank line loses its first part (remove the preamble once, from the start)")
def parse_split_blank(text, _ref=parse_llama3):
    messages = _ref(text)
    body = text.split("<|end_header_id|>\n\n", 1)[1].split("<|eot_id|>", 1)[0]
    if not body.endswith("\n\n"):
        messages[0] = {"role": "system", "content": body.split("\n\n")[-1]}
    return messages


@bugs.bug("parse_accepts_malformed_text", replaces="parse_llama3",
          mistake="malformed text is accepted: parse_llama3 must raise ValueError on anything format_llama3 cannot "
                  "produce (missing <|begin_of_text|> or <|eot_id|>, text between turns, one newline after a "
                  "header, unknown roles, ...)")
def parse_lenient(text):
    import re

    if not isinstance(text, str):
        raise TypeError("text must be a str")
    messages = []
    for role, content in re.findall(r"<\|start_header_id\|>(.*?)<\|end_header_id\|>\n*(.*?)(?:<\|eot_id\|>|$)",
                                    text, re.S):
        if not messages and role == "system":
            content = re.sub(r"^Cutting Knowledge Date:.*?\nToday Date:.*?\n\n", "", content, flags=re.S)
            if not content:
                messages.append(None)
                continue
        if content or role != "assistant":
            messages.append({"role": role, "content": content})
    return [m for m in messages if m is not None]


@bugs.bug("parse_keeps_empty_system", replaces="parse_llama3",
          mistake="an empty system message is returned: when the system block holds only the date preamble, the "
                  "conversation had no system message")
def parse_empty_system(text, _ref=parse_llama3):
    messages = _ref(text)
    body = text.split("<|end_header_id|>\n\n", 1)[1].split("<|eot_id|>", 1)[0]
    if body.endswith("\n\n"):  # the system block holds nothing after the preamble
        return [{"role": "system", "content": ""}] + messages
    return messages


# --- build_sft_example --------------------------------------------------------------------------
@bugs.bug("sft_labels_on_assistant_headers", replaces="build_sft_example",
          mistake="the assistant header tokens are trained: only the assistant's content and its end-of-turn token "
                  "get labels; the header is given by the prompt, never generated")
def sft_headers(messages, tokenizer, *, fmt="chatml", _ref=build_sft_example):
    out = _ref(messages, tokenizer, fmt=fmt)
    render = format_llama3 if fmt == "llama3" else format_chatml
    labels = list(out["labels"])
    enc = tokenizer(render(messages), add_special_tokens=False, return_offsets_mapping=True)
    for n, m in enumerate(messages):
        if m["role"] == "assistant":
            begin = len(render(messages[:n]))
            stop = len(render(messages[:n], add_generation_prompt=True))
            for t, (a, b) in enumerate(enc["offset_mapping"]):
                if a < stop and b > begin:
                    labels[t] = out["input_ids"][t]
    return {"input_ids": out["input_ids"], "labels": labels}


@bugs.bug("sft_labels_on_every_turn", replaces="build_sft_example",
          mistake="user and system turns are trained too: labels must be -100 on everything the assistant did not "
                  "write")
def sft_every_turn(messages, tokenizer, *, fmt="chatml", _ref=build_sft_example):
    out = _ref(messages, tokenizer, fmt=fmt)
    render, term = (format_llama3, "<|eot_id|>") if fmt == "llama3" else (format_chatml, "<|im_end|>")
    enc = tokenizer(render(messages), add_special_tokens=False, return_offsets_mapping=True)
    labels = list(out["labels"])
    for n, m in enumerate(messages):  # every message's content and terminator, whoever wrote it
        empty = render(list(messages[:n]) + [{"role": m["role"], "content": ""}])
        begin = len(empty) - len(term) - (1 if fmt == "chatml" else 0)
        content = m["content"].strip() if fmt == "llama3" else m["content"]
        stop = begin + len(content) + len(term)
        for t, (a, b) in enumerate(enc["offset_mapping"]):
            if a < stop and b > begin:
                labels[t] = out["input_ids"][t]
    return {"input_ids": out["input_ids"], "labels": labels}


@bugs.bug("sft_terminator_not_trained", replaces="build_sft_example",
          mistake="the end-of-turn token closing an assistant turn is not trained: without it the model never "
                  "learns to stop (label <|im_end|> / <|eot_id|> after each assistant content)")
def sft_no_terminator(messages, tokenizer, *, fmt="chatml", _ref=build_sft_example):
    out = _ref(messages, tokenizer, fmt=fmt)
    end = tokenizer.convert_tokens_to_ids("<|eot_id|>" if fmt == "llama3" else "<|im_end|>")
    return {"input_ids": out["input_ids"], "labels": [-100 if x == end else x for x in out["labels"]]}


@bugs.bug("sft_labels_shifted", replaces="build_sft_example",
          mistake="labels are shifted by one (labels[i] = input_ids[i+1]): labels stay aligned with input_ids; the "
                  "model shifts them itself when computing the loss")
def sft_shifted(messages, tokenizer, *, fmt="chatml", _ref=build_sft_example):
    out = _ref(messages, tokenizer, fmt=fmt)
    labels = out["labels"][1:] + [-100]
    return {"input_ids": out["input_ids"], "labels": labels}


@bugs.bug("sft_trains_newline_after_im_end", replaces="build_sft_example",
          mistake="the newline after <|im_end|> is trained: the turn ends at <|im_end|>; the '\\n' after it "
                  "belongs to the format")
def sft_newline(messages, tokenizer, *, fmt="chatml", _ref=build_sft_example):
    out = _ref(messages, tokenizer, fmt=fmt)
    labels = list(out["labels"])
    end = tokenizer.convert_tokens_to_ids("<|eot_id|>" if fmt == "llama3" else "<|im_end|>")
    for t in range(len(labels) - 1):
        if labels[t] == end and fmt == "chatml":
            labels[t + 1] = out["input_ids"][t + 1]
    return {"input_ids": out["input_ids"], "labels": labels}
