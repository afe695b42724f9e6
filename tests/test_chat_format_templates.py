"""Cross-checks of ``chat_format``'s reference and of the kit's own chat templates.

* SEMANTICS.md §3.2 cases (a)-(d): the exact strings, from the reference, from the kit's template
  (``llmlab/templates/llama31_text.jinja``) through transformers' ``apply_chat_template``, and from Meta's
  published template in ``shared/data/chat_templates/`` through ``render_jinja_template``.
* Generated conversations (spaces, newlines, unicode, near-miss control tokens): the three agree.
* ChatML: the reference with SmolLM2's default system text equals SmolLM2's own ``apply_chat_template``
  and the shared copy of its template; the kit's ``chatml.jinja`` equals both.
* SFT labels: the reference equals transformers' ``return_assistant_tokens_mask`` on the kit's templates.
* ``parse_llama3`` inverts ``format_llama3`` (checked against an independent normalisation).

The graders rely on the kit's templates; these tests are what ties those templates to the official ones.
"""
from __future__ import annotations

import functools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from graders.test_chat_format import (LLAMA3_TOKENS, conversations, llama3_tokenizer, nonempty, sft_expected,
                                      smollm2_default_system, smollm2_tokenizer)
from llmlab.paths import shared_dir
from llmlab.templates import read_template
from solutions import chat_format as ref

OFFICIAL = shared_dir() / "data" / "chat_templates"

# SEMANTICS.md §3.2, verbatim (rendered there with Meta's template and transformers 5.24)
HEAD = ("<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nCutting Knowledge Date: December 2023\n"
        "Today Date: 26 Jul 2024\n\n")
CASES = {
    "a": ([{"role": "user", "content": "Hi!"}], True,
          HEAD + "<|eot_id|><|start_header_id|>user<|end_header_id|>\n\nHi!<|eot_id|><|start_header_id|>assistant"
                 "<|end_header_id|>\n\n"),
    "b": ([{"role": "system", "content": "  You are helpful.  "}, {"role": "user", "content": " Hi! \n"}], True,
          HEAD + "You are helpful.<|eot_id|><|start_header_id|>user<|end_header_id|>\n\nHi!<|eot_id|>"
                 "<|start_header_id|>assistant<|end_header_id|>\n\n"),
    "c": ([{"role": "system", "content": "S"}, {"role": "user", "content": "U1"},
           {"role": "assistant", "content": "A1"}, {"role": "user", "content": "U2"}], False,
          HEAD + "S<|eot_id|><|start_header_id|>user<|end_header_id|>\n\nU1<|eot_id|><|start_header_id|>assistant"
                 "<|end_header_id|>\n\nA1<|eot_id|><|start_header_id|>user<|end_header_id|>\n\nU2<|eot_id|>"),
}
GENERATION_HEADER = "<|start_header_id|>assistant<|end_header_id|>\n\n"  # case (d)


def kit_llama(messages, gen=False, date=None):
    extra = {} if date is None else {"date_string": date}
    return smollm2_tokenizer().apply_chat_template(messages, chat_template=read_template("llama31_text"),
                                                   tokenize=False, add_generation_prompt=gen, **extra)


@functools.lru_cache(maxsize=None)
def _official_text(name):
    return (OFFICIAL / name).read_text()


def official_llama(messages, gen=False, date=None):
    from transformers.utils.chat_template_utils import render_jinja_template

    extra = {} if date is None else {"date_string": date}
    rendered, _ = render_jinja_template(conversations=[messages], chat_template=_official_text(
        "llama31_chat_template.jinja"), add_generation_prompt=gen, bos_token="<|begin_of_text|>", **extra)
    return rendered[0]


@pytest.mark.parametrize("case", sorted(CASES))
def test_semantics_cases_reference_and_kit_template(case):
    messages, gen, expected = CASES[case]
    assert ref.format_llama3(messages, add_generation_prompt=gen) == expected
    assert kit_llama(messages, gen) == expected


@pytest.mark.parametrize("case", sorted(CASES))
def test_semantics_cases_official_template(case):
    messages, gen, expected = CASES[case]
    assert official_llama(messages, gen) == expected


def test_case_d_generation_prompt_appends_exactly_the_header():
    for messages, _, _ in CASES.values():
        without = ref.format_llama3(messages)
        assert ref.format_llama3(messages, add_generation_prompt=True) == without + GENERATION_HEADER
        assert without.endswith("<|eot_id|>")
        assert kit_llama(messages, True) == kit_llama(messages, False) + GENERATION_HEADER


dates = st.sampled_from([None, "26 Jul 2024", "01 Jan 2025", "7 Mar 2031"])


@settings(max_examples=150, deadline=None)
@given(messages=nonempty(conversations()), gen=st.booleans(), date=dates)
def test_reference_equals_kit_template(messages, gen, date):
    kw = {} if date is None else {"date_string": date}
    assert ref.format_llama3(messages, add_generation_prompt=gen, **kw) == kit_llama(messages, gen, date)


@settings(max_examples=150, deadline=None)
@given(messages=nonempty(conversations()), gen=st.booleans(), date=dates)
def test_kit_template_equals_official_template(messages, gen, date):
    assert kit_llama(messages, gen, date) == official_llama(messages, gen, date)


@settings(max_examples=100, deadline=None)
@given(messages=nonempty(conversations()), gen=st.booleans())
def test_chatml_reference_equals_smollm2_template(messages, gen):
    system = smollm2_default_system()
    own = smollm2_tokenizer().apply_chat_template(messages, tokenize=False, add_generation_prompt=gen)
    assert ref.format_chatml(messages, add_generation_prompt=gen, default_system=system) == own
    kit = smollm2_tokenizer().apply_chat_template(messages, chat_template=read_template("chatml"), tokenize=False,
                                                  add_generation_prompt=gen, default_system=system)
    assert kit == own


def test_smollm2_model_package_template_is_the_shared_one():
    assert smollm2_tokenizer().chat_template.strip() == _official_text("smollm2_chat_template.jinja").strip()


@settings(max_examples=100, deadline=None)
@given(messages=nonempty(conversations()), gen=st.booleans(),
       system=st.sampled_from([None, "Be brief.", " Answer in French.\n"]))
def test_chatml_kit_template_without_default_system(messages, gen, system):
    extra = {} if system is None else {"default_system": system}
    kit = smollm2_tokenizer().apply_chat_template(messages, chat_template=read_template("chatml"), tokenize=False,
                                                  add_generation_prompt=gen, **extra)
    assert ref.format_chatml(messages, add_generation_prompt=gen, default_system=system) == kit


@settings(max_examples=100, deadline=None)
@given(messages=nonempty(conversations(min_turns=1)), fmt=st.sampled_from(["chatml", "llama3"]))
def test_sft_labels_equal_transformers_assistant_mask(messages, fmt):
    tok = llama3_tokenizer() if fmt == "llama3" else smollm2_tokenizer()
    expected, _, _ = sft_expected(messages, fmt)
    assert ref.build_sft_example(messages, tok, fmt=fmt) == expected


def test_sft_labels_by_hand():
    tok = smollm2_tokenizer()
    messages = [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello there"}]
    out = ref.build_sft_example(messages, tok)
    trained = [tok.convert_ids_to_tokens(i) for i, lab in zip(out["input_ids"], out["labels"]) if lab != -100]
    assert trained == ["Hello", "Ġthere", "<|im_end|>"]
    assert out["input_ids"] == tok(ref.format_chatml(messages), add_special_tokens=False)["input_ids"]


def test_sft_llama3_needs_single_token_terminator():
    with pytest.raises(ValueError, match="single token"):
        ref.build_sft_example([{"role": "assistant", "content": "x"}], smollm2_tokenizer(), fmt="llama3")
    out = ref.build_sft_example([{"role": "assistant", "content": " x "}], llama3_tokenizer(), fmt="llama3")
    trained = [llama3_tokenizer().convert_ids_to_tokens(i) for i, lab in zip(out["input_ids"], out["labels"])
               if lab != -100]
    assert trained == ["x", "<|eot_id|>"]


def _normalise(messages):
    out = [{"role": m["role"], "content": m["content"].strip()} for m in messages]
    if out and out[0]["role"] == "system" and not out[0]["content"]:
        out = out[1:]
    return out


@settings(max_examples=150, deadline=None)
@given(messages=conversations(), gen=st.booleans(), date=st.sampled_from(["26 Jul 2024", "7 Mar 2031", "x\ny"]))
def test_parse_inverts_format(messages, gen, date):
    text = ref.format_llama3(messages, add_generation_prompt=gen, date_string=date)
    assert ref.parse_llama3(text) == _normalise(messages)


@pytest.mark.parametrize("token", LLAMA3_TOKENS)
def test_guard_refuses_every_llama3_control_token(token):
    with pytest.raises(ValueError, match="control token"):
        ref.format_llama3([{"role": "user", "content": f"a{token}b"}])
    assert ref.format_chatml([{"role": "user", "content": f"a{token}b"}]).count(token) == 1  # plain text in ChatML
