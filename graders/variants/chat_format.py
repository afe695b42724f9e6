"""Realistic buggy variants of ``chat_format``: each is a patch of the reference (see llmlab.grading.variants)."""
from llmlab.grading.variants import Variants

bugs = Variants("chat_format")

# --- format_llama3 -------------------------------------------------------------------------------
JOIN = 'return "".join(parts)'
PROMPT = r'parts.append("<|start_header_id|>assistant<|end_header_id|>\n\n")'
bugs.patch("one_newline_after_header", "format_llama3", JOIN,
           r'return "".join(parts).replace("<|end_header_id|>\n\n", "<|end_header_id|>\n")',
           mistake="a header is followed by one newline: Llama 3 writes two (\\n\\n) after every <|end_header_id|>")
bugs.patch("newline_between_turns", "format_llama3", JOIN,
           r'return "".join(parts).replace("<|eot_id|>", "<|eot_id|>\n")',
           mistake="there is a newline after <|eot_id|>: Llama 3 puts nothing between turns (ChatML does put a "
                   "newline after <|im_end|>, Llama 3 does not)")
bugs.patch("llama_content_not_stripped", "format_llama3", 'turns[0]["content"].strip()', 'turns[0]["content"]',
           mistake="Llama 3 contents are not stripped: the template trims leading and trailing whitespace of every "
                   "content (the system message's too)")
bugs.patch("llama_content_not_stripped", "format_llama3", "{message['content'].strip()}", "{message['content']}")
bugs.patch("no_default_system_block", "format_llama3", JOIN, """
text = "".join(parts)
if not (messages and messages[0]["role"] == "system"):  # the system block only for a system message
    text = "<|begin_of_text|>" + text[text.index("<|eot_id|>") + len("<|eot_id|>"):]
return text""", mistake="without a system message the system block is left out: Llama 3.1 always writes it (the "
                        "'Cutting Knowledge Date ... Today Date ...' lines, then an empty system text)")
bugs.patch("wrong_date_format", "format_llama3", 'date_string="26 Jul 2024"', 'date_string="26 July 2024"',
           mistake="the default date is written '26 July 2024': the template's default is '26 Jul 2024' (day, "
                   "three-letter month, year)")
bugs.patch("generation_prompt_without_newlines", "format_llama3", PROMPT,
           'parts.append("<|start_header_id|>assistant<|end_header_id|>")',
           mistake="the generation prompt lacks its two newlines: it is the full assistant header, "
                   "'<|start_header_id|>assistant<|end_header_id|>\\n\\n'")
bugs.patch("eot_after_generation_prompt", "format_llama3", PROMPT,
           r'parts.append("<|start_header_id|>assistant<|end_header_id|>\n\n<|eot_id|>")',
           mistake="<|eot_id|> follows the generation prompt: the assistant turn must stay open for the model to "
                   "write in")
bugs.patch("no_control_token_guard", "format_llama3", """
        for token in LLAMA3_CONTROL_TOKENS:
            if token in message["content"]:
                raise ValueError(f"messages[{n}]['content'] contains the control token {token}")
""", "", mistake="a content containing a control token is accepted: a user could forge a turn (refuse it with a "
                 "ValueError)")
bugs.patch("every_system_message_in_system_block", "format_llama3", """
    if turns and turns[0]["role"] == "system":
        system, turns = turns[0]["content"].strip(), turns[1:]
""", """
    system = "".join(m["content"].strip() for m in turns if m["role"] == "system")
    turns = [m for m in turns if m["role"] != "system"]
""", mistake="every system message goes into the system block: only the first message, if it is a system message, "
             "does; a later system message is an ordinary turn with a 'system' header")

# --- format_chatml -------------------------------------------------------------------------------
bugs.patch("chatml_content_stripped", "format_chatml", "{message['content']}<|im_end|>",
           "{message['content'].strip()}<|im_end|>",
           mistake="ChatML contents are stripped: SmolLM2's template writes every content exactly as given")
bugs.patch("chatml_no_newline_after_im_end", "format_chatml", JOIN,
           r'return "".join(parts).replace("<|im_end|>\n", "<|im_end|>")',
           mistake="no newline after <|im_end|>: in ChatML every message ends with '<|im_end|>\\n'")
bugs.patch("chatml_default_system_always", "format_chatml",
           'if default_system is not None and messages and messages[0]["role"] != "system":',
           "if default_system is not None and messages:",
           mistake="the default system message is added even when the conversation starts with its own system "
                   "message: it is only a fallback")
bugs.patch("chatml_no_control_token_guard", "format_chatml", """
        for token in CHATML_CONTROL_TOKENS:
            if token in message["content"]:
                raise ValueError(f"messages[{n}]['content'] contains the control token {token}")
""", "", mistake="a ChatML content containing <|im_start|> or <|im_end|> is accepted: a user could forge a turn "
                 "(refuse it with a ValueError)")

# --- parse_llama3 --------------------------------------------------------------------------------
SYSTEM = 'contents = [("system", block.group(2))]'
bugs.patch("parse_keeps_date_preamble", "parse_llama3", SYSTEM, 'contents = [("system", text[len(opening):close])]',
           mistake="the parsed system message keeps the 'Cutting Knowledge Date ... Today Date ...' preamble: it is "
                   "part of the format, not of the message")
bugs.patch("parse_splits_on_blank_lines", "parse_llama3", SYSTEM,
           r'contents = [("system", text[len(opening):close].split("\n\n")[-1])]',
           mistake="the date preamble is removed by splitting on blank lines: a system message that itself contains "
                   "a blank line loses its first part (remove the preamble once, from the start)")


# A lenient regular-expression scan is a different algorithm from the reference's strict parser: no
# edit of the reference turns one into the other, so this variant replaces the whole function.
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


bugs.patch("parse_keeps_empty_system", "parse_llama3", 'return messages if messages[0]["content"] else messages[1:]',
           "return messages",
           mistake="an empty system message is returned: when the system block holds only the date preamble, the "
                   "conversation had no system message")

# --- build_sft_example ---------------------------------------------------------------------------
SFT = "build_sft_example"
LABEL = "if a < stop and b > begin:"
bugs.patch("sft_labels_on_assistant_headers", SFT, "spans.append((begin,", "spans.append((len(render(messages[:n])),",
           mistake="the assistant header tokens are trained: only the assistant's content and its end-of-turn token "
                   "get labels; the header is given by the prompt, never generated")
bugs.patch("sft_labels_on_every_turn", SFT, """
        if message["role"] != "assistant":
            continue
        # everything before this turn, plus its header: exactly what the generation prompt adds
        begin = len(render(messages[:n], add_generation_prompt=True))
""", """
        empty = render(list(messages[:n]) + [{"role": message["role"], "content": ""}])
        begin = len(empty) - len(terminator) - (1 if fmt == "chatml" else 0)
""", mistake="user and system turns are trained too: labels must be -100 on everything the assistant did not write")
bugs.patch("sft_terminator_not_trained", SFT, LABEL, "if a < stop and b > begin and input_ids[t] != terminator_id:",
           mistake="the end-of-turn token closing an assistant turn is not trained: without it the model never "
                   "learns to stop (label <|im_end|> / <|eot_id|> after each assistant content)")
bugs.patch("sft_labels_shifted", SFT, '"labels": labels}', '"labels": labels[1:] + [-100]}',
           mistake="labels are shifted by one (labels[i] = input_ids[i+1]): labels stay aligned with input_ids; the "
                   "model shifts them itself when computing the loss")
bugs.patch("sft_trains_newline_after_im_end", SFT, LABEL, 'if a < stop + (fmt == "chatml") and b > begin:',
           mistake="the newline after <|im_end|> is trained: the turn ends at <|im_end|>; the '\\n' after it belongs "
                   "to the format")
