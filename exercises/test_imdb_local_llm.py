"""Example tests for `imdb_local_llm` (the hidden graders check batching against one-at-a-time scoring on many
conversations, label tokenization, calibration and classify's use of your prompts)."""
import functools

import torch

from exercises.imdb_local_llm import build_messages, calibrate, classify, label_logprobs


@functools.lru_cache(maxsize=None)
def tiny_model_and_tokenizer():
    """A tiny random Llama with SmolLM2's vocabulary, and SmolLM2's real tokenizer (fast to run)."""
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    from llmlab.models import smollm2_dir

    torch.manual_seed(0)
    config = LlamaConfig(vocab_size=49152, hidden_size=16, intermediate_size=32, num_hidden_layers=2,
                         num_attention_heads=2, num_key_value_heads=1, initializer_range=0.5)
    return LlamaForCausalLM(config).eval(), AutoTokenizer.from_pretrained(smollm2_dir())


def test_build_messages_few_shot_layout():
    msgs = build_messages("So boring.", examples=[("Loved it!", 1), ("Awful.", 0)])
    roles = [m["role"] for m in msgs]
    assert roles[-5:] == ["user", "assistant", "user", "assistant", "user"]
    assert "Loved it!" in msgs[-5]["content"] and msgs[-4]["content"] == "positive"
    assert "Awful." in msgs[-3]["content"] and msgs[-2]["content"] == "negative"
    assert "So boring." in msgs[-1]["content"]


def test_label_logprobs_batch_equals_one_at_a_time():
    model, tokenizer = tiny_model_and_tokenizer()
    batch = [build_messages("Great."), build_messages("A long and rather tedious film about nothing at all.")]
    together = label_logprobs(model, tokenizer, batch)
    alone = torch.cat([label_logprobs(model, tokenizer, [m]) for m in batch])
    assert together.shape == (2, 2) and (together <= 0).all()
    torch.testing.assert_close(together, alone, atol=1e-4, rtol=1e-4)
    assert tokenizer.padding_side == "right"  # unchanged


def test_calibrate_by_hand():
    lp = torch.log(torch.tensor([[0.30, 0.02]]))
    cf = torch.log(torch.tensor([0.20, 0.01]))
    torch.testing.assert_close(calibrate(lp, cf).exp(), torch.tensor([[1.5, 2.0]]) / 3.5)


def test_classify_uncalibrated_is_the_argmax():
    model, tokenizer = tiny_model_and_tokenizer()
    reviews = ["I loved every minute.", "A waste of time.", "Fine."]
    scores = label_logprobs(model, tokenizer, [build_messages(r) for r in reviews])
    assert classify(model, tokenizer, reviews, calibrated=False) == scores.argmax(-1).tolist()
